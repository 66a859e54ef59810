#!/usr/bin/env bash
# NBD denial-of-service bounds (docs/design/nbd.md, "Bounds") against
# misbehaving raw-socket clients (nbd_rogue.py) next to real clients:
#  - payload budget: two connections flooding 32 MiB READs without reading
#    the replies keep the daemon's memory bounded, a qemu-io client on
#    another connection is served meanwhile, and the send timeout drops the
#    flooders; one request bigger than the connection budget is served;
#  - connection caps per source address and in total, refused at accept;
#  - handshake deadline (a one-byte-per-second handshake is dropped) and
#    idle timeout.
# Attackers bind 127.0.0.2..5, legitimate clients use 127.0.0.1. No timing
# assertion: every wait is "eventually, within a generous bound".
. "$(dirname "$0")/lib.sh"
ROGUE=(python3 "$(dirname "$0")/nbd_rogue.py")
MIB=$((1024 * 1024))
# Background clients of this test, stopped on any exit (then lib.sh's cleanup).
BG=()
trap 'rc=$?; for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done; (exit $rc); cleanup' EXIT

# conf KEY=VALUE...: the config file of the next start_daemon.
conf() {
  printf '[DEFAULT]\n' >"$TMP/evsrep.conf"
  printf '%s\n' "$@" >>"$TMP/evsrep.conf"
}

# export_name ID: the NBD export name the API hands out for the volume.
export_name() {
  api POST "volumes/$1/action" '{"os-initialize_connection": {"connector": {}}}'
  expect_status 200 "os-initialize_connection" || die "no connection info"
  jget .connection_info.data.export_name
}

status_kib() { awk -v k="$1:" '$1==k{print $2}' "/proc/$DAEMON_PID/status"; }

# wait_line FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_line() {
  local end=$((SECONDS + $3))
  while [ $SECONDS -lt $end ]; do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------------------
# 1. Payload budget and send timeout. A 16 MiB connection budget: every
#    32 MiB request is admitted alone.
conf nbd_connection_budget=$((16 * MIB)) nbd_send_timeout=15
start_daemon -c "$TMP/evsrep.conf"
V=$(create_volume az1 1 limits)
U=$(nbd_uri az1 "$V")
E=$(export_name "$V")
PORT=${NBD_AZ1#*:}

timeout 120 qemu-io -f raw -c 'write -P 0x5c 0 32M' -c flush "$U" >/dev/null ||
  fail "qemu-io 32 MiB write (bigger than the connection budget)"
timeout 120 qemu-io -f raw -c 'read -P 0x5c 0 32M' "$U" >"$TMP/qio" 2>&1 ||
  fail "qemu-io 32 MiB read (bigger than the connection budget)"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "32 MiB read: wrong data"
log "RSS before the flood: $(status_kib VmRSS) KiB"

pids=()
for i in 1 2; do
  "${ROGUE[@]}" --port "$PORT" --source 127.0.0.2 --within 120 \
    flood "$E" 16 $((32 * MIB)) >"$TMP/flood$i" 2>&1 &
  pids+=($!)
  BG+=($!)
done
for i in 1 2; do
  wait_line "$TMP/flood$i" '^flooding' 60 || fail "flooder $i: no reply bytes: $(cat "$TMP/flood$i")"
done
# While both connections sit on their backed-up replies, another client
# reads and writes.
timeout 120 qemu-io -f raw -c 'write -P 0xa1 64M 4M' -c 'read -P 0xa1 64M 4M' \
  -c 'read -P 0x5c 0 32M' "$U" >"$TMP/qio" 2>&1 || fail "qemu-io during the flood"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "qemu-io during the flood: wrong data"
if grep -q '^dropped' "$TMP/flood1"; then
  log "note: flooder 1 was already dropped when qemu-io finished (slow machine?)"
fi
rss=$(status_kib VmRSS)
hwm=$(status_kib VmHWM)
log "during the flood: VmRSS $rss KiB, VmHWM $hwm KiB"
# Without the budget: 2 connections x 16 workers x 32 MiB = 1 GiB.
[ "$hwm" -lt $((256 * 1024)) ] || fail "daemon peak RSS $hwm KiB, bound 256 MiB"
for i in 1 2; do
  wait "${pids[$((i - 1))]}" || true
  grep -q '^dropped' "$TMP/flood$i" || fail "flooder $i not dropped: $(cat "$TMP/flood$i")"
done
grep -q 'client read no reply for 15 s, closing' "$TMP/daemon.log" ||
  fail "no send-timeout line in the log"
nbdinfo --size "$U" >/dev/null || fail "nbdinfo after the flood"

# ---------------------------------------------------------------------------
# 2. Connection caps. No handshake deadline here, so held sockets stay.
stop_daemon
conf nbd_max_connections_per_address=8 nbd_max_connections=20 nbd_handshake_timeout=0
start_daemon -c "$TMP/evsrep.conf"
U=$(nbd_uri az1 "$V")
PORT=${NBD_AZ1#*:}

# hold SRC N NAME: N connections from SRC, kept open until `release NAME`.
declare -A HOLD_PID
hold() {
  "${ROGUE[@]}" --port "$PORT" --source "$1" --within 300 hold "$2" >"$TMP/$3.out" 2>&1 &
  HOLD_PID[$3]=$!
  BG+=($!)
  wait_line "$TMP/$3.out" '^accepted' 60 || fail "$3: no result: $(cat "$TMP/$3.out")"
}
release() {
  kill -TERM "${HOLD_PID[$1]}"
  wait "${HOLD_PID[$1]}" 2>/dev/null || true
}

hold 127.0.0.3 12 a
expect_eq "$(cat "$TMP/a.out")" "accepted 8 refused 4" "per-address cap (8) from 127.0.0.3" || true
nbdinfo --size "$U" >/dev/null || fail "127.0.0.1 locked out by 127.0.0.3's connections"
hold 127.0.0.4 8 b
expect_eq "$(cat "$TMP/b.out")" "accepted 8 refused 0" "second address under its cap" || true
hold 127.0.0.5 8 c
expect_eq "$(cat "$TMP/c.out")" "accepted 4 refused 4" "total cap (20)" || true
if nbdinfo --size "$U" >/dev/null 2>&1; then fail "a 21st connection was accepted"; fi
grep -q 'connection limit (nbd_max_connections) reached' "$TMP/daemon.log" ||
  fail "no total-cap line in the log"
grep -q 'per-address connection limit' "$TMP/daemon.log" ||
  fail "no per-address-cap line in the log"
release a
release b
release c
ok=0
for _ in $(seq 1 150); do
  if nbdinfo --size "$U" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ $ok = 1 ] || fail "nbdinfo still refused after the held connections closed"

# ---------------------------------------------------------------------------
# 3. Handshake deadline and idle timeout (3 s each).
stop_daemon
conf nbd_handshake_timeout=3 nbd_idle_timeout=3
start_daemon -c "$TMP/evsrep.conf"
U=$(nbd_uri az1 "$V")
E=$(export_name "$V")
PORT=${NBD_AZ1#*:}

"${ROGUE[@]}" --port "$PORT" --source 127.0.0.2 --within 60 slowloris >"$TMP/slow" 2>&1 &
slow=$!
BG+=($!)
"${ROGUE[@]}" --port "$PORT" --source 127.0.0.3 --within 60 idle "$E" >"$TMP/idle" 2>&1 &
idle=$!
BG+=($!)
nbdinfo --size "$U" >/dev/null || fail "nbdinfo next to the slow clients"
wait $slow || true
wait $idle || true
expect_eq "$(cat "$TMP/slow")" dropped "one byte per second in the handshake" || true
expect_eq "$(cat "$TMP/idle")" dropped "idle connection" || true
grep -q 'handshake not done in 3 s' "$TMP/daemon.log" || fail "no handshake-deadline line in the log"
grep -q 'no request for 3 s' "$TMP/daemon.log" || fail "no idle-timeout line in the log"
qemu-io -f raw -c 'read -P 0xa1 64M 4M' "$U" >"$TMP/qio" 2>&1 || fail "qemu-io after the timeouts"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "qemu-io after the timeouts: wrong data"

finish
