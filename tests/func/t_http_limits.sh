#!/usr/bin/env bash
# HTTP hardening: while one client misbehaves (1,100 half-sent request heads
# from one address; 200 unauthenticated half-sent 1 MiB bodies; a slowloris),
# a legitimate client on 127.0.0.1 is still served and the daemon's RSS stays
# within a generous bound; an unauthenticated body is answered 401 before it
# is sent; a silent connection is closed by the idle timeout; HTTPS with a
# self-signed certificate (curl --cacert), and plain HTTP to the HTTPS port
# fails without hurting the daemon. The misbehaving client is
# tests/func/http_attack.py (raw sockets, loopback source addresses).
# No check depends on timing: the bounds below only stop a broken daemon's
# run from hanging.
. "$(dirname "$0")/lib.sh"
ATTACK="$(dirname "$0")/http_attack.py"
RSS_GROWTH_MAX_KIB=$((64 * 1024)) # generous: a fixed daemon grows by a few MiB

# On any exit, stop a running attacker first (it would hold its sockets for
# up to 120 s), then lib.sh's cleanup with the exit status.
APID=""
# (set +e first: under errexit, `(exit $rc)` would end the trap before
# cleanup, leaving the daemon running.)
trap 'rc=$?; set +e; [ -n "$APID" ] && kill "$APID" 2>/dev/null; (exit $rc); cleanup' EXIT

rss_kib() { awk '$1=="VmRSS:"{print $2}' "/proc/$DAEMON_PID/status"; }
# rss_peak_kib: the highest RSS over 20 samples 0.25 s apart. A fixed daemon
# stays low whatever the timing; the samples give a broken one time to read
# what the attacker sent, so the break shows.
rss_peak_kib() {
  local peak=0 r
  for _ in $(seq 1 20); do
    r=$(rss_kib)
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.25
  done
  echo "$peak"
}

# legit WHAT: an authenticated GET from 127.0.0.1 must answer 200.
legit() {
  local code
  code=$(curl -s --max-time 60 --interface 127.0.0.1 -o /dev/null -w '%{http_code}' \
    -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/volumes") || code=000
  expect_eq "$code" 200 "legitimate client while $1" || true # go on: report every scenario
}

# attack MODE N SRC: start http_attack.py and wait until its connections are
# set up (it holds them until stop_attack); prints nothing.
attack() {
  ADIR=$(mktemp -d "$TMP/attack.XXXXXX")
  python3 "$ATTACK" "$1" "${URL##*:}" "$2" "$3" "$ADIR" 2>>"$TMP/attack.log" &
  APID=$!
  for _ in $(seq 1 1200); do # bound: 120 s
    [ -s "$ADIR/ready" ] && break
    kill -0 "$APID" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$ADIR/ready" ] || die "http_attack.py $1 did not get ready: $(cat "$TMP/attack.log")"
  log "attack $1: $(cat "$ADIR/ready")"
}
stop_attack() {
  touch "$ADIR/stop"
  wait "$APID" || fail "http_attack.py exited with $?"
  APID=""
}

# --- 1. connection limits: one address holds at most its share
cat >"$TMP/limits.conf" <<'EOF'
[DEFAULT]
http_threads = 2
http_max_connections = 64
http_max_connections_per_ip = 8
http_connection_timeout = 30
EOF
start_daemon --config "$TMP/limits.conf"
legit "nothing else happens"
rss0=$(rss_kib)

attack headers 1100 127.0.0.2
legit "127.0.0.2 has 1,100 half-sent request heads open"
grow=$(($(rss_peak_kib) - rss0))
log "RSS growth under 1,100 half-sent heads: $grow KiB"
[ "$grow" -lt $RSS_GROWTH_MAX_KIB ] || fail "RSS grew by $grow KiB under 1,100 half-sent heads"
stop_attack

attack slowloris 100 127.0.0.3
legit "127.0.0.3 sends 100 request heads a byte at a time"
grow=$(($(rss_peak_kib) - rss0))
log "RSS growth under a 100-connection slowloris: $grow KiB"
[ "$grow" -lt $RSS_GROWTH_MAX_KIB ] || fail "RSS grew by $grow KiB under a slowloris"
stop_attack
legit "the attacks stopped"
stop_daemon

# --- 2. unauthenticated bodies: 401 before the body, nothing buffered. 200
# connections over 25 addresses (8 each: within the per-address limit) and a
# total limit above 200, so only the token check stands between them and
# 200 x 900 KiB of buffered bodies.
cat >"$TMP/bodies.conf" <<'EOF'
[DEFAULT]
http_threads = 2
http_max_connections = 1024
http_max_connections_per_ip = 8
http_connection_timeout = 600
EOF
# (a long idle timeout: a daemon that waits for the bodies must not drop
# them before http_attack.py sends them, or the RSS check would see nothing)
start_daemon --config "$TMP/bodies.conf"
legit "nothing else happens"
rss0=$(rss_kib)
attack bodies 200 127.0.0.10/25
legit "200 unauthenticated half-sent bodies are open"
grow=$(($(rss_peak_kib) - rss0))
log "RSS growth under 200 unauthenticated half-sent bodies: $grow KiB"
[ "$grow" -lt $RSS_GROWTH_MAX_KIB ] || fail "RSS grew by $grow KiB under 200 unauthenticated half-sent bodies"
expect_eq "$(jq .answered_401_before_body "$ADIR/ready")" 200 "unauthenticated POSTs answered 401 before their body" || true
stop_attack
# with a token, a declared body over 1 MiB is 413 before it is read
code=$(curl -s --max-time 60 -o "$TMP/b" -w '%{http_code}' -H "X-Auth-Token: $TOKEN" \
  -H 'Content-Type: application/json' --data-binary @<(head -c $((2 * 1024 * 1024)) /dev/zero) \
  "$URL/v2/$PROJECT/volumes") || code=000
expect_eq "$code" 413 "authenticated 2 MiB body"
# a chunked body (no Content-Length) over 1 MiB: read and dropped, then 413
code=$(curl -s --max-time 60 -o "$TMP/b" -w '%{http_code}' -H "X-Auth-Token: $TOKEN" \
  -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
  --data-binary @<(head -c $((2 * 1024 * 1024)) /dev/zero) "$URL/v2/$PROJECT/volumes") || code=000
expect_eq "$code" 413 "authenticated 2 MiB chunked body"
# without one, the same request is 401 (401 is decided before 413)
code=$(curl -s --max-time 60 -o "$TMP/b" -w '%{http_code}' \
  -H 'Content-Type: application/json' --data-binary @<(head -c $((2 * 1024 * 1024)) /dev/zero) \
  "$URL/v2/$PROJECT/volumes") || code=000
expect_eq "$code" 401 "unauthenticated 2 MiB body"
expect_eq "$(jq -r .error.code "$TMP/b")" EVS.1002 "401 error code"
stop_daemon

# --- 3. HTTPS (self-signed certificate) and the idle timeout
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null || die "openssl req failed"
cat >"$TMP/tls.conf" <<EOF
[DEFAULT]
tls_cert = $TMP/cert.pem
tls_key = $TMP/key.pem
http_connection_timeout = 1
EOF
start_daemon --config "$TMP/tls.conf"
expect_eq "${URL%%://*}" https "scheme in the ports file ($(head -n1 "$DATA/evsrepd.ports"))"
grep -q "API URL:  https://127.0.0.1:${URL##*:}/v2/" "$TMP/daemon.log" || fail "the banner does not show the https URL"
code=$(curl -s --max-time 60 --cacert "$TMP/cert.pem" -o /dev/null -w '%{http_code}' \
  -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/volumes") || code=000
expect_eq "$code" 200 "HTTPS request with --cacert"
code=$(curl -s --max-time 60 --cacert "$TMP/cert.pem" -o /dev/null -w '%{http_code}' "$URL/v2/$PROJECT/volumes") || code=000
expect_eq "$code" 401 "HTTPS request without a token"
if curl -s --max-time 60 -o /dev/null -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/volumes"; then
  fail "HTTPS with an unknown CA was accepted by curl"
fi
rc=0
curl -s --max-time 60 -o "$TMP/plain" -H "X-Auth-Token: $TOKEN" "http://127.0.0.1:${URL##*:}/v2/$PROJECT/volumes" || rc=$?
[ "$rc" -ne 0 ] || fail "plain HTTP to the HTTPS port succeeded: $(head -c 200 "$TMP/plain")"
! grep -q "$PROJECT" "$TMP/plain" 2>/dev/null || fail "plain HTTP to the HTTPS port got API data"
kill -0 "$DAEMON_PID" || die "evsrepd died after plain HTTP to its HTTPS port"
code=$(curl -s --max-time 60 --cacert "$TMP/cert.pem" -o /dev/null -w '%{http_code}' \
  -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/volumes") || code=000
expect_eq "$code" 200 "HTTPS after a plain HTTP attempt"
# idle timeout (1 s here): a connection that sends half a request head and
# then nothing is closed by the daemon. 60 s only bounds a broken daemon.
python3 - "${URL##*:}" <<'PY' || fail "an idle half-sent connection was not closed by the daemon"
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'\x16\x03\x01')  # the first bytes of a TLS record, then silence
s.settimeout(60)
try:
    data = s.recv(4096)
    while data:  # an alert or nothing, then end of stream
        data = s.recv(4096)
except ConnectionResetError:
    pass
except socket.timeout:
    sys.exit(1)
PY
stop_daemon

# a bad key or a missing file: refused at start with a clear message
printf '[DEFAULT]\ntls_cert = %s\ntls_key = %s\n' "$TMP/cert.pem" "$TMP/missing.pem" >"$TMP/badtls.conf"
rc=0
timeout 60 "$EVSREPD" "${STORE_ARGS[@]}" --config "$TMP/badtls.conf" --data-dir "$DATA" --listen 127.0.0.1:0 \
  --nbd-listen az1=127.0.0.1:0 --nbd-listen az2=127.0.0.1:0 >"$TMP/badtls.log" 2>&1 || rc=$?
expect_eq "$rc" 1 "start with a missing tls_key"
grep -q "cannot read tls_key $TMP/missing.pem" "$TMP/badtls.log" || fail "missing tls_key message: $(cat "$TMP/badtls.log")"
printf '[DEFAULT]\ntls_cert = %s\n' "$TMP/cert.pem" >"$TMP/halftls.conf"
rc=0
timeout 60 "$EVSREPD" --config "$TMP/halftls.conf" --data-dir "$DATA" --check-config >"$TMP/halftls.log" 2>&1 || rc=$?
expect_eq "$rc" 2 "tls_cert without tls_key"
grep -q "set both" "$TMP/halftls.log" || fail "tls_cert without tls_key message: $(cat "$TMP/halftls.log")"
finish
