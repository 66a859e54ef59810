#!/usr/bin/env bash
# Multi-site step 2 (docs/design/multi-site.md): two nodes sharing one
# PostgreSQL store and one cluster key, node A serving az1 and node B az2.
#  1. node list on both shows both with a positive lease (API and CLI)
#  2. a volume created in az2 through A is created by B (file in B's az2
#     dir); GET through A and B agree; os-extend through A is carried out by B
#  3. attach through A: an export on B's NBD endpoint that qemu-io writes
#     and reads
#  4. a pair across the two nodes (created through B, carried out by A):
#     active, DR on B equal to production on A, then deleted; the internal
#     release route answers 409 while the pair lives and 404 once it is gone
#  5. forged internal requests (bad HMAC, replayed nonce, stale timestamp):
#     404 and nothing created
#  6. kill -9 B: an az2 request through A answers 503 with Retry-After and
#     names node B, within a bound; node list shows B's lease running out;
#     after the lapse still 503 naming B
#  7. B restarted: az2 works again through A
#  8. a third node claiming az1 while A's lease is valid refuses to start
#     with a message naming node A and az1
# Needs PostgreSQL: EVSREP_TEST_PG_URL (a maintenance database's URI) or
# EVSREP_TEST_PG_URL_FILE (written by tests/tools/pg_cluster.sh, the ctest
# fixture). The test gets a database of its own and drops it after.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"

CLI=${EVSREP_BUILD:-$(dirname "$EVSREPD")}/evsrep
nodes_db_create t_nodes # EVSREP_TEST_PG_URL_FILE: the pg_cluster fixture
nodes_tokens operator   # one tokens file for both nodes: a tenant and an operator

# node_field NAME NODE JQ: a field of NODE in NAME's node list (operator)
node_list() {
  local var="URL_$1"
  curl -s -m 10 -H "X-Auth-Token: $OPTOKEN" "${!var}/v2/$OPPROJECT/os-evsrep-nodes"
}

nodes_write_conf a az1
nodes_write_conf b az2
nodes_start a
nodes_start b
[ "$(stat -c %a "$KEY")" = 600 ] || fail "cluster key file mode is $(stat -c %a "$KEY"), want 600"

# --- 1. node list ----------------------------------------------------------------
for n in a b; do
  out=$(node_list "$n")
  for m in node-a node-b; do
    rem=$(printf '%s' "$out" | jq -r ".nodes[] | select(.name==\"$m\") | .lease_remaining_seconds")
    awk -v r="${rem:-0}" 'BEGIN{exit !(r > 0)}' || fail "node list on $n: $m lease '$rem' not positive: $out"
  done
  expect_eq "$(printf '%s' "$out" | jq -r '.nodes[] | select(.name=="node-b") | .availability_zones | join(",")')" az2 "node list on $n: node-b AZs"
done
on a GET "/v2/$PROJECT/os-evsrep-nodes"
expect_status 403 "node list with a tenant token"
var=URL_a
"$CLI" --url "${!var}" --token "$OPTOKEN" --project "$OPPROJECT" node list >"$TMP/cli.out" 2>&1 ||
  fail "evsrep node list: $(cat "$TMP/cli.out")"
grep -q 'node-b' "$TMP/cli.out" && grep -q 'az2' "$TMP/cli.out" || fail "evsrep node list lacks node-b az2: $(cat "$TMP/cli.out")"
"$CLI" --url "${!var}" --token "$OPTOKEN" --project "$OPPROJECT" -o json node list >"$TMP/cli.json" 2>&1 ||
  fail "evsrep -o json node list: $(cat "$TMP/cli.json")"
[ "$(jq -r '.nodes | length' "$TMP/cli.json" 2>/dev/null)" = 2 ] || fail "evsrep -o json node list: $(cat "$TMP/cli.json")"
# Positive once a renewal is in (polled: on a loaded machine a renewal can
# be late enough for the value, "as of the last renewal", to dip below 0).
ok=""
for _ in $(seq 1 50); do
  curl -s -H "X-Auth-Token: $OPTOKEN" "${!var}/metrics" |
    grep -q '^evsrep_node_lease_remaining_seconds{node="node-a"} [0-9]' && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || fail "metrics: no positive evsrep_node_lease_remaining_seconds for node-a"

# --- 2. volume in az2 through A --------------------------------------------------
on a POST volumes '{"volume":{"size":1,"availability_zone":"az2","name":"v2"}}'
expect_status 202 "create az2 volume through A" || die "no volume"
V2=$(jget .volume.id)
grep -q "forwarded to node node-b" "$TMP/a.log" || fail "A's log does not say it forwarded to node-b"
URL=$URL_a wait_field "volumes/$V2" .volume.status available 60
[ -f "$TMP/nb/az2/$V2" ] || fail "volume file $V2 is not in B's az2 dir"
[ ! -e "$TMP/na/az2/$V2" ] || fail "volume file $V2 appeared on A"
on a GET "volumes/$V2"
A_VIEW=$(printf '%s' "$BODY" | jq -c '.volume | {id, status, size, availability_zone}')
on b GET "volumes/$V2"
B_VIEW=$(printf '%s' "$BODY" | jq -c '.volume | {id, status, size, availability_zone}')
expect_eq "$A_VIEW" "$B_VIEW" "GET through A and B"
on a POST "volumes/$V2/action" '{"os-extend":{"new_size":2}}'
expect_status 202 "os-extend through A"
URL=$URL_b wait_field "volumes/$V2" .volume.size 2 60
URL=$URL_b wait_field "volumes/$V2" .volume.status available 60
expect_eq "$(stat -c %s "$TMP/nb/az2/$V2")" $((2 << 30)) "B's file size after the extend"

# --- 3. attach through A, I/O on B's NBD endpoint ---------------------------------
on a POST "volumes/$V2/action" '{"os-initialize_connection":{"connector":{"host":"t-nodes"}}}'
expect_status 200 "attach through A"
EXP=$(jget .connection_info.data.export_name)
HP=$(jget '.connection_info.data.host + ":" + (.connection_info.data.port|tostring)' 2>/dev/null || true)
NBDURI="nbd://$NBD_b/$EXP"
case "$BODY" in *"${NBD_b#127.0.0.1:}"*) ;; *) fail "connection_info does not name B's NBD port ${NBD_b}: $BODY" ;; esac
qemu-io -f raw -c 'write -P 0x5a 0 1M' "$NBDURI" >"$TMP/qio" 2>&1 || fail "qemu-io write on B: $(cat "$TMP/qio")"
qemu-io -f raw -c 'read -P 0x5a 0 1M' "$NBDURI" >"$TMP/qio" 2>&1 && ! grep -q 'Pattern verification failed' "$TMP/qio" ||
  fail "qemu-io read back on B: $(cat "$TMP/qio")"
on a POST "volumes/$V2/action" "{\"os-terminate_connection\":{\"connector\":{\"host\":\"t-nodes\"}}}"
[ "$STATUS" = 202 ] || [ "$STATUS" = 200 ] || fail "terminate through A: HTTP $STATUS $BODY"

# Signed internal requests, as a node sends them (node-x; the cluster key).
HEX=$(tr -d '\n' <"$KEY")
# internal PATH BODY TS NONCE SIG: POSTs to A's internal channel; sets STATUS, BODY
sign() { # METHOD PATH TS NONCE BODY
  local bh
  bh=$(printf '%s' "$5" | sha256sum | cut -d' ' -f1)
  printf 'evsrep-forward-v1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s' "$1" "$2" "$3" "$4" "$bh" "$PROJECT" member node-x |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HEX" | awk '{print $NF}'
}
internal() { # PATH BODY TS NONCE SIG
  STATUS=$(curl -s -m 10 -o "$TMP/ib" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H "X-Evsrep-Node: node-x" -H "X-Evsrep-Timestamp: $3" -H "X-Evsrep-Nonce: $4" \
    -H "X-Evsrep-Project: $PROJECT" -H "X-Evsrep-Role: member" -H "X-Evsrep-Signature: $5" \
    --data-binary "$2" "$URL_a/internal$1") || STATUS=000
  BODY=$(cat "$TMP/ib")
}

# --- 4. a pair across nodes (remote DR link; t_multisite_link covers it) ---------
on a POST volumes '{"volume":{"size":2,"availability_zone":"az1","name":"v1"}}'
expect_status 202 "create az1 volume"
V1=$(jget .volume.id)
URL=$URL_a wait_field "volumes/$V1" .volume.status available 60
[ -f "$TMP/na/az1/$V1" ] || fail "az1 volume file not on A"
on b POST "$PAIRS" "{\"replication\":{\"name\":\"x\",\"volume_ids\":[\"$V1\",\"$V2\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
expect_status 202 "pair across nodes (sent to B, carried out by A)"
RX=$(jget .replication.id)
URL=$URL_a wait_field "$PAIRS/$RX" .replication.replication_status active 60
cmp "$TMP/na/az1/$V1" "$TMP/nb/az2/$V2" >/dev/null || fail "pair across nodes: DR file on B differs from production on A"
# The release route (the production node asks the DR node to release the
# DR volume of a pair it is deleting): refused for a pair that lives on, 404
# (with its own message, not the unknown-path one) once the pair is gone.
release_rx() {
  local rel="/v2/$PROJECT/os-evsrep-links/$RX/release" now nonce
  now=$(date +%s) nonce=$(openssl rand -hex 16)
  internal "$rel" '{}' "$now" "$nonce" "$(sign POST "$rel" "$now" "$nonce" '{}')"
}
release_rx
expect_status 409 "release of a pair that is not being deleted"
case "$BODY" in *"$RX is not being deleted"*) ;; *) fail "release 409 does not say why: $BODY" ;; esac
[ -f "$TMP/nb/az2/$V2" ] || fail "the refused release removed the DR volume's file"
URL=$URL_a wait_field "$PAIRS/$RX" .replication.replication_status active 10
on a DELETE "$PAIRS/$RX"
expect_status 202 "delete the pair across nodes"
URL=$URL_a wait_gone "$PAIRS/$RX" 30
release_rx
expect_status 404 "release of a pair that is gone"
case "$BODY" in *"$RX does not exist"*) ;; *) fail "release 404 does not name the pair: $BODY" ;; esac

# --- 5. forged internal requests ----------------------------------------------------
count_volumes() { on a GET volumes; jget '.volumes | length'; }
N0=$(count_volumes)
P="/v2/$PROJECT/volumes"
B1='{"volume":{"size":1,"availability_zone":"az1","name":"forged"}}'
NOW=$(date +%s)
NONCE=$(openssl rand -hex 16)
internal "$P" "$B1" "$NOW" "$NONCE" "$(printf '0%.0s' {1..64})"
expect_status 404 "internal request with a bad HMAC"
GOOD=$(sign POST "$P" "$NOW" "$NONCE" "$B1")
internal "$P" "${B1/forged/forgedX}" "$NOW" "$NONCE" "$GOOD"
expect_status 404 "internal request whose body does not match its signature"
internal "$P" "$B1" "$NOW" "$NONCE" "$GOOD"
expect_status 202 "a correctly signed internal request (the test signs like a node)"
internal "$P" "$B1" "$NOW" "$NONCE" "$GOOD"
expect_status 404 "the same internal request replayed (nonce seen)"
OLD=$((NOW - 60))
NONCE2=$(openssl rand -hex 16)
internal "$P" "$B1" "$OLD" "$NONCE2" "$(sign POST "$P" "$OLD" "$NONCE2" "$B1")"
expect_status 404 "internal request 60 s old"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$B1" "$URL_a/internal$P")
expect_status 404 "internal request without any signature"
expect_eq "$(count_volumes)" $((N0 + 1)) "volumes after the forged requests (only the signed one created)"

# --- 6. B killed ----------------------------------------------------------------------
nodes_kill b
T0=$SECONDS
on a POST volumes '{"volume":{"size":1,"availability_zone":"az2","name":"down"}}' -m 20
expect_status 503 "az2 request through A with B dead"
[ $((SECONDS - T0)) -le 15 ] || fail "the 503 took $((SECONDS - T0)) s"
grep -qi '^Retry-After: [0-9]' <<<"$HDRS" || fail "503 without Retry-After: $HDRS"
case "$BODY" in *node-b*az2*) ;; *) fail "503 does not name node-b and az2: $BODY" ;; esac
lapsed=""
for _ in $(seq 1 100); do
  rem=$(node_list a | jq -r '.nodes[] | select(.name=="node-b") | .lease_remaining_seconds')
  if awk -v r="${rem:-1}" 'BEGIN{exit !(r < 0)}'; then lapsed=$rem; break; fi
  sleep 0.1
done
[ -n "$lapsed" ] || fail "node list: node-b's lease did not run out (last $rem)"
on a POST "volumes/$V2/action" '{"os-extend":{"new_size":3}}' -m 20
expect_status 503 "os-extend of an az2 volume after B's lease lapsed"
grep -qi '^Retry-After: [0-9]' <<<"$HDRS" || fail "503 (lapsed) without Retry-After"
case "$BODY" in *node-b*lease*) ;; *) fail "lapsed 503 does not name node-b and its lease: $BODY" ;; esac

# --- 7. B back -----------------------------------------------------------------------
nodes_start b
on a POST volumes '{"volume":{"size":1,"availability_zone":"az2","name":"back"}}'
expect_status 202 "az2 through A with B back"
VB=$(jget .volume.id)
URL=$URL_a wait_field "volumes/$VB" .volume.status available 60
[ -f "$TMP/nb/az2/$VB" ] || fail "volume $VB not on B after its restart"
[ -f "$TMP/nb/az2/$V2" ] || fail "volume $V2 gone from B after its restart"
on b GET "volumes/$V2"
expect_eq "$(jget .volume.status)" available "V2 on B after its restart"

# --- 8. a third node claiming az1 ----------------------------------------------------
nodes_write_conf c az1
if timeout 20 "$EVSREPD" --config "$TMP/c.conf" >"$TMP/c.log" 2>&1; then
  fail "node c claiming az1 started while node-a holds it"
fi
grep -q 'availability zone az1 is served by node node-a' "$TMP/c.log" ||
  fail "node c's refusal does not name az1 and node-a: $(tail -n 3 "$TMP/c.log")"
grep -q 'more seconds' "$TMP/c.log" || fail "node c's refusal does not say how long the lease lasts"
[ ! -e "$TMP/nc/az1" ] || fail "node c created its az1 dir before refusing"

# --- clean stop releases the lease --------------------------------------------------
nodes_stop b
rem=$(node_list a | jq -r '.nodes[] | select(.name=="node-b") | .lease_valid')
expect_eq "$rem" false "node-b's lease right after its clean stop"
nodes_stop a
finish
