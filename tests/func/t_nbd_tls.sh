#!/usr/bin/env bash
# NBD over TLS (docs/design/nbd.md "TLS"): libnbd and qemu clients with the
# PSK of their attachment and with X.509 certificates; plain clients refused
# under `require`; a wrong key, another attachment's key, and a client
# without a certificate under verify-peer are refused; `on` serves both;
# a non-loopback listener with `on` is refused at start.
. "$(dirname "$0")/lib.sh"
RAW="python3 ${EVSREP_SRC:?EVSREP_SRC must point at the source tree}/tests/tools/nbd_raw.py"
command -v certtool >/dev/null || die "certtool missing (Debian gnutls-bin; scripts/deps.sh installs it)"

step() { log "=== $*"; }

# ---- certificates: a CA, a server certificate for 127.0.0.1, a client one
C=$TMP/pki
mkdir -p "$C/client" "$C/noclient"
cat >"$C/ca.tmpl" <<'EOF'
cn = evsrep test CA
ca
cert_signing_key
expiration_days = 2
EOF
cat >"$C/server.tmpl" <<'EOF'
cn = 127.0.0.1
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 2
EOF
cat >"$C/client.tmpl" <<'EOF'
cn = evsrep test client
tls_www_client
encryption_key
signing_key
expiration_days = 2
EOF
certtool --generate-privkey --outfile "$C/ca-key.pem" 2>/dev/null
certtool --generate-self-signed --load-privkey "$C/ca-key.pem" --template "$C/ca.tmpl" \
  --outfile "$C/ca-cert.pem" 2>/dev/null
for who in server client; do
  certtool --generate-privkey --outfile "$C/$who-key.pem" 2>/dev/null
  certtool --generate-certificate --load-privkey "$C/$who-key.pem" --load-ca-certificate "$C/ca-cert.pem" \
    --load-ca-privkey "$C/ca-key.pem" --template "$C/$who.tmpl" --outfile "$C/$who-cert.pem" 2>/dev/null
done
[ -s "$C/server-cert.pem" ] && [ -s "$C/client-cert.pem" ] || die "certtool did not make the certificates"
# The directory layouts libnbd (tls-certificates=) and qemu (tls-creds-x509 dir=) read.
cp "$C/ca-cert.pem" "$C/client-cert.pem" "$C/client-key.pem" "$C/client/"
cp "$C/ca-cert.pem" "$C/noclient/"

conf() { # conf MODE [extra lines]: writes $TMP/evsrep.conf
  printf '[DEFAULT]\nnbd_tls = %s\n%s\n' "$1" "${2:-}" >"$TMP/evsrep.conf"
}
X509="nbd_tls_cert = $C/server-cert.pem
nbd_tls_key = $C/server-key.pem
nbd_tls_ca = $C/ca-cert.pem"

# attach VOL: sets EXP, ID, KEY, URI and writes $TMP/psk.$ID/keys.psk
attach() {
  api POST "volumes/$1/action" '{"os-initialize_connection": {"connector": {"host": "tls-test"}}}'
  expect_status 200 "attach $1" || return 1
  EXP=$(jget .connection_info.data.export_name)
  ID=$(jget '.connection_info.data.tls_psk_identity // empty')
  KEY=$(jget '.connection_info.data.tls_psk_key // empty')
  URI=$(jget .connection_info.data.uri)
  [ -n "$ID" ] && [ -n "$KEY" ] || { fail "no PSK in connection_info: $BODY"; return 1; }
  mkdir -p "$TMP/psk.$ID"
  printf '%s:%s\n' "$ID" "$KEY" >"$TMP/psk.$ID/keys.psk"
}
psk_uri() { # psk_uri EXPORT ID [PSKFILE]: the PSK identity is the URI's user
  printf 'nbds://%s@%s/%s?tls-psk-file=%s' "$2" "$NBD_AZ1" "$1" "${3:-$TMP/psk.$2/keys.psk}"
}

step "require: PSK with libnbd and qemu; plain refused"
conf require
start_daemon --config "$TMP/evsrep.conf"
V=$(create_volume az1 1 tlsvol)
W=$(create_volume az1 1 other)
attach "$V"
EV=$EXP IDV=$ID
expect_eq "$URI" "nbds://$NBD_AZ1/$EV" "connection_info uri under TLS"
[[ "$KEY" =~ ^[0-9a-f]{64}$ ]] || fail "tls_psk_key '$KEY' is not 256 bits in hex"
size=$(nbdinfo --size "$(psk_uri "$EV" "$IDV")") || fail "nbdinfo over TLS-PSK"
expect_eq "${size:-}" $((1 << 30)) "size over TLS-PSK"
head -c $((8 << 20)) /dev/urandom >"$TMP/img"
nbdcopy "$TMP/img" "$(psk_uri "$EV" "$IDV")" || fail "nbdcopy into the volume over TLS"
nbdcopy "$(psk_uri "$EV" "$IDV")" - | head -c $((8 << 20)) >"$TMP/back" || true
cmp -s "$TMP/img" "$TMP/back" || fail "data read back over TLS differs"
QPSK="tls-creds-psk,id=tls0,endpoint=client,dir=$TMP/psk.$IDV,username=$IDV"
qopts() { printf 'driver=nbd,host=127.0.0.1,port=%s,export=%s,tls-creds=tls0' "${NBD_AZ1##*:}" "$EV"; }
qemu-io --object "$QPSK" --image-opts "$(qopts)" -c 'write -P 0x5a 16M 1M' -c flush >/dev/null ||
  fail "qemu-io write over TLS-PSK"
qemu-io --object "$QPSK" --image-opts "$(qopts)" -c 'read -P 0x5a 16M 1M' >"$TMP/qio" 2>&1 ||
  fail "qemu-io read over TLS-PSK"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "qemu-io pattern over TLS-PSK"
# The server's cipher order decides (docs/design/nbd.md "Cipher order"):
# where its probe found AES-GCM faster, libnbd and qemu get AES-128-GCM,
# not the ChaCha20 they fall to with a TLS 1.3 PSK (12x slower here).
grep 'TLS session' "$TMP/daemon.log" | sed 's/.*TLS session //' | sort -u >"$TMP/ciphers"
[ -s "$TMP/ciphers" ] || fail "no TLS session in the log"
if grep -q 'TLS cipher probe: .*AES-GCM first' "$TMP/daemon.log"; then
  grep -qv 'AES-128-GCM' "$TMP/ciphers" && fail "TLS sessions not on AES-128-GCM: $(tr '\n' ' ' <"$TMP/ciphers")"
fi
# Plain clients: refused before any data (TLS_REQD), whatever the name.
out=$($RAW "$NBD_AZ1" "$EV" info)
expect_eq "$out" "refused: 0x80000005 TLS required: start with NBD_OPT_STARTTLS" "plain client under require"
nbdinfo "nbd://$NBD_AZ1/$EV" >/dev/null 2>&1 && fail "plain libnbd client served under require"
# A wrong key, and another attachment's key for this export.
printf '%s:%s\n' "$IDV" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$TMP/wrong.psk"
nbdinfo --size "$(psk_uri "$EV" "$IDV" "$TMP/wrong.psk")" >/dev/null 2>&1 && fail "wrong PSK accepted"
attach "$W"
IDW=$ID
nbdinfo --size "$(psk_uri "$EV" "$IDW")" >/dev/null 2>&1 &&
  fail "the key of W's attachment opened V's export"
# A revoked attachment's key no longer opens a session.
api POST "volumes/$W/action" '{"os-terminate_connection": {"connector": {}}}'
nbdinfo --size "$(psk_uri "$EXP" "$IDW")" >/dev/null 2>&1 && fail "revoked attachment's PSK accepted"
stop_daemon

step "require + X.509 with verify-peer: certificates, and no certificate refused"
conf require "$X509
nbd_tls_verify_peer = true"
start_daemon --config "$TMP/evsrep.conf"
XURI="nbds://$NBD_AZ1/$EV?tls-certificates=$C/client&tls-verify-peer=true"
nbdcopy "$XURI" - | head -c $((8 << 20)) >"$TMP/back2" || true
cmp -s "$TMP/img" "$TMP/back2" || fail "libnbd with a client certificate"
QX="tls-creds-x509,id=tls0,endpoint=client,dir=$C/client"
qemu-io --object "$QX" --image-opts "$(qopts)" -c 'read -P 0x5a 16M 1M' >"$TMP/qio" 2>&1 ||
  fail "qemu-io over X.509: $(cat "$TMP/qio")"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "qemu-io pattern over X.509"
nbdinfo --size "nbds://$NBD_AZ1/$EV?tls-certificates=$C/noclient" >/dev/null 2>&1 &&
  fail "client without a certificate served under verify-peer"
nbdinfo --size "$(psk_uri "$EV" "$IDV")" >/dev/null || fail "PSK still works with X.509 configured"
stop_daemon

step "on: plain and TLS both served"
conf on
start_daemon --config "$TMP/evsrep.conf"
nbdinfo --size "nbd://$NBD_AZ1/$EV" >/dev/null || fail "plain client under on"
nbdinfo --size "$(psk_uri "$EV" "$IDV")" >/dev/null || fail "TLS client under on"
stop_daemon

step "start-up checks"
if "$EVSREPD" --data-dir "$TMP/x" --nbd-listen az1=0.0.0.0:10809 --check-config >/dev/null 2>"$TMP/cc"; then
  :
else
  fail "non-loopback listener with the default TLS mode refused: $(cat "$TMP/cc")"
fi
"$EVSREPD" --data-dir "$TMP/x" --nbd-listen az1=0.0.0.0:10809 --check-config | grep -q '^nbd_tls = require$' ||
  fail "default nbd_tls for a non-loopback listener is not require"
conf on
if "$EVSREPD" --config "$TMP/evsrep.conf" --data-dir "$TMP/x" --nbd-listen az1=0.0.0.0:10809 \
  --check-config >/dev/null 2>"$TMP/cc"; then
  fail "nbd_tls = on accepted with a non-loopback listener"
fi
grep -q 'nbd_tls' "$TMP/cc" || fail "refusal does not name nbd_tls: $(cat "$TMP/cc")"
conf require "nbd_tls_cert = $TMP/missing.pem
nbd_tls_key = $TMP/missing.pem"
mkdir -p "$TMP/y"
if "$EVSREPD" --config "$TMP/evsrep.conf" --data-dir "$TMP/y" --listen 127.0.0.1:0 \
  --nbd-listen az1=127.0.0.1:0 --nbd-listen az2=127.0.0.1:0 >"$TMP/y.log" 2>&1; then
  fail "evsrepd started with a missing certificate"
fi
grep -q 'nbd_tls_cert' "$TMP/y.log" || fail "missing certificate not named: $(tail -n 3 "$TMP/y.log")"

finish
