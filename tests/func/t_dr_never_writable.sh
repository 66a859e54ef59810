#!/usr/bin/env bash
# A DR disk is never writable by a client, also while evsrepd starts
# (docs/design/nbd.md "Start-up order"). A client holding the DR disk's
# attachment writes to it as fast as it can, ignoring the read-only flag,
# through clean restarts and kill -9 restarts on a fixed NBD port; the server
# must acknowledge none of those writes, and afterwards the pair is active
# and DR is byte-identical to production.
# (Found: the NBD listeners used to accept before the pairs had marked their
# DR disks read-only; a DR disk took a client write in one restart of three.)
. "$(dirname "$0")/lib.sh"
RAW="python3 ${EVSREP_SRC:?EVSREP_SRC must point at the source tree}/tests/tools/nbd_raw.py"
RESTARTS=${EVSREP_DR_RESTARTS:-12}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT2=$(free_port)
start() { start_daemon --nbd-listen "az2=127.0.0.1:$PORT2"; }

start
P=$(create_volume az1 1 prod)
D=$(create_volume az2 1 dr)
qemu-io -f raw -c 'write -P 0xaa 0 4M' -c flush "$(nbd_uri az1 "$P")" >/dev/null || fail "write production"
PAIR=$(create_pair "$P" "$D" pair)
wait_pair_active "$PAIR"
api POST "volumes/$D/action" '{"os-initialize_connection": {"connector": {"host": "intruder"}}}'
expect_status 200 "attach the DR disk"
expect_eq "$(jget .connection_info.data.read_only)" true "DR attachment read_only"
ED=$(jget .connection_info.data.export_name)
[ "${NBD_AZ2##*:}" = "$PORT2" ] || die "az2 NBD port is ${NBD_AZ2##*:}, not the fixed $PORT2"

# The writer runs for as long as the restarts take (bounded).
$RAW "127.0.0.1:$PORT2" "$ED" hammer $((RESTARTS * 8 + 10)) 0 0x66 "$TMP/restarts-done" >"$TMP/hammer" 2>&1 &
HAMMER=$!
for i in $(seq 1 "$RESTARTS"); do
  if [ $((i % 2)) = 0 ]; then crash_daemon; else stop_daemon; fi
  start
  # Let the writer see the fresh listener for a moment.
  sleep 0.5
done
touch "$TMP/restarts-done"
wait "$HAMMER" || fail "the writer failed: $(cat "$TMP/hammer")"
log "writer: $(tr '\n' ' ' <"$TMP/hammer")"
grep -q '^hammer: ok 0 ' "$TMP/hammer" || fail "a write to the DR disk was acknowledged: $(cat "$TMP/hammer")"
grep -Eq 'eperm [1-9]' "$TMP/hammer" || fail "the writer never reached the DR disk (test did not exercise it): $(cat "$TMP/hammer")"

wait_pair_active "$PAIR"
api GET "$PAIRS/$PAIR"
log "pair after the restarts: $(jget .replication.replication_status), status $(jget .replication.status)"
nbd_cmp "$(nbd_uri az1 "$P")" "$(nbd_uri az2 "$D")" "DR vs production after the restarts"
qemu-io -f raw -c 'read -P 0xaa 0 4M' "$(nbd_uri az2 "$D")" | grep -q 'Pattern verification failed' &&
  fail "DR disk changed by the intruder"
finish
