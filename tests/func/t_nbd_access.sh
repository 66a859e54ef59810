#!/usr/bin/env bash
# The NBD data plane as an attacker on the same network sees it
# (docs/design/nbd.md "Attachments"): without an attachment no export of any
# tenant can be listed, read or written; with project A's attachment only
# A's volume; a read-only attachment writes nothing even for a client that
# ignores the flag; a revoked attachment stops working at once, on its open
# connections too; attachments survive a restart; deleting a volume revokes
# its attachments; bad connectors are 400s.
. "$(dirname "$0")/lib.sh"
RAW="python3 ${EVSREP_SRC:?EVSREP_SRC must point at the source tree}/tests/tools/nbd_raw.py"

start_daemon
# A second tenant: project B with its own token (read at start: restart).
TOKEN_A=$TOKEN PROJECT_A=$PROJECT
TOKEN_B=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PROJECT_B=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s %s\n' "$TOKEN_B" "$PROJECT_B" >>"$DATA/tokens"
stop_daemon
start_daemon
as_a() { TOKEN=$TOKEN_A PROJECT=$PROJECT_A; }
as_b() { TOKEN=$TOKEN_B PROJECT=$PROJECT_B; }

as_a
VA=$(create_volume az1 1 va)
qemu-io -f raw -c 'write -P 0xaa 0 1M' -c flush "$(nbd_uri az1 "$VA")" >/dev/null || fail "write A"
as_b
VB=$(create_volume az1 1 vb)

# attach VOL [CONNECTOR-JSON]: os-initialize_connection as the current
# tenant; sets EXP (export name), RO, URI_PATH.
attach() {
  api POST "volumes/$1/action" "{\"os-initialize_connection\": {\"connector\": ${2:-{\}}}}"
  EXP=$(jget '.connection_info.data.export_name // empty')
  RO=$(jget '.connection_info.data.read_only')
}
terminate() {
  api POST "volumes/$1/action" "{\"os-terminate_connection\": {\"connector\": ${2:-{\}}}}"
}

step() { log "=== $*"; }

step "no attachment: nothing listed, the volume id opens nothing"
for ep in "$NBD_AZ1" "$NBD_AZ2"; do
  out=$($RAW "$ep" list)
  [[ "$out" == refused:* ]] || fail "NBD_OPT_LIST on $ep answered '$out'"
  for v in "$VA" "$VB"; do
    out=$($RAW "$ep" "$v" info)
    [[ "$out" == refused:* ]] || fail "volume id $v opened on $ep: '$out'"
    out=$($RAW "$ep" "$v" write 0 4096 0x66)
    [[ "$out" == refused:* ]] || fail "volume id $v written on $ep: '$out'"
  done
done
if nbdinfo --list "nbd://$NBD_AZ1" 2>/dev/null | grep -q "$VA"; then fail "nbdinfo --list shows a volume"; fi
if qemu-io -f raw -c 'read 0 4k' "nbd://$NBD_AZ1/$VA" >/dev/null 2>&1; then fail "qemu-io read by volume id"; fi

step "A's attachment opens A's volume only"
as_b
attach "$VA"
expect_status 404 "B attaches A's volume"
as_a
attach "$VB"
expect_status 404 "A attaches B's volume"
attach "$VA" '{"host": "h1"}'
expect_status 200 "A attaches VA (h1)"
E1=$EXP
[[ "$E1" =~ ^[0-9a-f]{40}$ ]] || fail "export name '$E1' is not 160 random bits in hex"
expect_eq "$RO" false "read_only of a plain attachment"
expect_eq "$(jget .connection_info.data.uri)" "nbd://$NBD_AZ1/$E1" "uri"
out=$($RAW "$NBD_AZ1" "$E1" info)
expect_eq "$out" "size: $((1 << 30)) ro: 0" "info through A's attachment"
qemu-io -f raw -c 'read -P 0xaa 0 1M' "nbd://$NBD_AZ1/$E1" | grep -q 'Pattern verification failed' &&
  fail "A's data read through the attachment"
out=$($RAW "$NBD_AZ2" "$E1" info)
[[ "$out" == refused:* ]] || fail "az1 attachment opened on az2: '$out'"
attach "$VA" '{"host": "h2"}'
E2=$EXP
[ "$E2" != "$E1" ] || fail "a second attachment reuses the export name"
out=$($RAW "$NBD_AZ1" "$E2" info)
expect_eq "$out" "size: $((1 << 30)) ro: 0" "second attachment"

step "read-only attachment: no write reaches the disk"
attach "$VA" '{"host": "h3", "mode": "ro"}'
E3=$EXP
expect_eq "$RO" true "read_only with mode ro"
out=$($RAW "$NBD_AZ1" "$E3" info)
expect_eq "$out" "size: $((1 << 30)) ro: 1" "read-only flag"
out=$($RAW "$NBD_AZ1" "$E3" write 0 4096 0x66)
expect_eq "$out" "write: errno 1" "write through a read-only attachment (EPERM)"
qemu-io -f raw -c 'read -P 0xaa 0 1M' "nbd://$NBD_AZ1/$E1" | grep -q 'Pattern verification failed' &&
  fail "data changed by a write through a read-only attachment"

step "revocation cuts open connections at once"
rm -f "$TMP/go"
$RAW "$NBD_AZ1" "$E1" hold "$TMP/go" 30 >"$TMP/hold1" 2>&1 &
H1=$!
$RAW "$NBD_AZ1" "$E2" hold "$TMP/go" 30 >"$TMP/hold2" 2>&1 &
H2=$!
for _ in $(seq 1 100); do
  grep -q read-before "$TMP/hold1" && grep -q read-before "$TMP/hold2" && break
  sleep 0.05
done
terminate "$VA" '{"host": "h1", "mode": "ro"}' # mode is not part of the match
expect_status 202 "terminate h1"
touch "$TMP/go"
wait "$H1" "$H2" || true
expect_eq "$(cat "$TMP/hold1")" "read-before: ok
read-after: closed" "open connection of the revoked attachment"
expect_eq "$(cat "$TMP/hold2")" "read-before: ok
read-after: ok" "open connection of another attachment"
out=$($RAW "$NBD_AZ1" "$E1" info)
[[ "$out" == refused:* ]] || fail "revoked attachment still opens: '$out'"

step "attachments survive a restart"
stop_daemon
start_daemon
as_a
out=$($RAW "$NBD_AZ1" "$E2" info)
expect_eq "$out" "size: $((1 << 30)) ro: 0" "attachment after restart"
out=$($RAW "$NBD_AZ1" "$E1" info)
[[ "$out" == refused:* ]] || fail "revoked attachment back after restart: '$out'"
out=$($RAW "$NBD_AZ1" "$E3" write 0 4096 0x66)
expect_eq "$out" "write: errno 1" "read-only attachment after restart"

step "an empty connector ends every attachment of the volume"
terminate "$VA"
expect_status 202 "terminate all"
for e in "$E2" "$E3"; do
  out=$($RAW "$NBD_AZ1" "$e" info)
  [[ "$out" == refused:* ]] || fail "attachment $e survived terminate {}: '$out'"
done

step "deleting a volume revokes its attachments"
as_b
attach "$VB"
EB=$EXP
rm -f "$TMP/go"
$RAW "$NBD_AZ1" "$EB" hold "$TMP/go" 30 >"$TMP/holdb" 2>&1 &
HB=$!
for _ in $(seq 1 100); do grep -q read-before "$TMP/holdb" && break; sleep 0.05; done
api DELETE "volumes/$VB"
expect_status 202 "delete VB"
wait_gone "volumes/$VB"
touch "$TMP/go"
wait "$HB" || true
expect_eq "$(tail -n 1 "$TMP/holdb")" "read-after: closed" "open connection of a deleted volume"
out=$($RAW "$NBD_AZ1" "$EB" info)
[[ "$out" == refused:* ]] || fail "deleted volume's attachment opens: '$out'"

step "bad input"
as_a
api POST "volumes/$VA/action" '{"os-initialize_connection": {"connector": "h1"}}'
expect_status 400 "connector not an object"
api POST "volumes/$VA/action" '{"os-initialize_connection": {"connector": {"mode": "rx"}}}'
expect_status 400 "bad mode"
api POST "volumes/$VA/action" '{"os-initialize_connection": []}'
expect_status 400 "action not an object"
api POST "volumes/$VA/action" '{"os-terminate_connection": {"connector": 7}}'
expect_status 400 "terminate: connector not an object"
api POST "volumes/6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10/action" '{"os-terminate_connection": {"connector": {}}}'
expect_status 404 "terminate on an unknown volume"
big=$(head -c 5000 /dev/zero | tr '\0' x)
api POST "volumes/$VA/action" "{\"os-initialize_connection\": {\"connector\": {\"host\": \"$big\"}}}"
expect_status 400 "connector too large"

step "attachments per volume are bounded"
for i in $(seq 1 64); do
  attach "$VA" "{\"host\": \"n$i\"}"
  [ "$STATUS" = 200 ] || { fail "attachment $i of 64: HTTP $STATUS $BODY"; break; }
done
attach "$VA" '{"host": "one-too-many"}'
expect_status 409 "the 65th attachment"
terminate "$VA"
attach "$VA" '{"host": "after-cleanup"}'
expect_status 200 "attach after terminate {}"

finish
