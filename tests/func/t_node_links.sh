#!/usr/bin/env bash
# `evsrep node list` shows each node's outgoing DR links as the node owning
# them knows them (docs/cli.md, docs/api.md §6.1, multi-site.md "Link state
# in the node list"), on a two-node cluster (lib_cluster.sh: node a az1,
# node b az2, PostgreSQL):
#  1. a pair az1 -> az2 (mirror on node a, DR over the link to node b):
#     node a's link to node b is `connected`, 1 pair, 0 groups; node b has
#     no outgoing link; the table shows "node-b:connected"
#  2. kill -9 node b, write on production (the write is acknowledged and
#     breaks the link): node a's link is `reconnecting` with a last error
#     and a backoff; node b's links are unknown with a reason (unreachable,
#     then lease lapsed)
#  3. node b restarted: the link is `connected` again, the pair active,
#     DR equal to production (qemu-img compare)
# The list is asked through node b too (the links of node a come over the
# internal channel).
# Needs PostgreSQL: EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE (the ctest
# pg_cluster fixture), as every two-node test.
EVSREP_TEST_NODES=2
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
CLI=$EVSREP_BUILD/evsrep
[ -x "$CLI" ] || die "no CLI at $CLI"

# An operator token next to the member token (node list needs one); node a
# keeps a tokens file it finds.
mkdir -p "$DATA"
OPTOKEN=$(openssl rand -hex 32)
printf '%s %s\n%s ops operator\n' "$(openssl rand -hex 32)" "p$(openssl rand -hex 6)" "$OPTOKEN" >"$DATA/tokens"
chmod 600 "$DATA/tokens"
start_daemon

# nodes [URL]: the node list (CLI, -o json) through URL (node a's default).
nodes() {
  "$CLI" --url "${1:-$URL}" --token "$OPTOKEN" --project ops -o json node list 2>"$TMP/cli.err" ||
    { fail "node list: $(cat "$TMP/cli.err")"; echo '{"nodes":[]}'; }
}
# link_of JSON NODE FIELD: FIELD of NODE's first link (or "none").
link_of() { jq -r --arg n "$2" ".nodes[] | select(.name == \$n) | (.links // [])[0] // {} | .$3 // \"none\"" <<<"$1"; }
# wait_link STATE: node a's link to node b reaches STATE (20 s).
wait_link() {
  local got=""
  for _ in $(seq 1 100); do
    J=$(nodes)
    got=$(link_of "$J" node-a state)
    [ "$got" = "$1" ] && return 0
    sleep 0.2
  done
  fail "node a's link never became '$1' (last: '$got'): $J"
  return 1
}
url_b() { echo "http://127.0.0.1:$(awk -F= '$1=="http"{print $2}' "$DATA/node-b/evsrepd.ports")"; }

log "1. a pair az1 -> az2: the link is connected"
P=$(create_volume az1 1 prod)
D=$(create_volume az2 1 dr)
R=$(create_pair "$P" "$D" linked)
wait_pair_active "$R" || die "pair never active"
qemu-io -f raw -c 'write -P 0x11 0 1M' "$(nbd_uri az1 "$P")" >/dev/null || fail "write on production"
wait_link connected
expect_eq "$(link_of "$J" node-a peer_node)/$(link_of "$J" node-a peer_availability_zone)" node-b/az2 "node a's link: peer"
expect_eq "$(link_of "$J" node-a pairs)/$(link_of "$J" node-a pairs_connected)/$(link_of "$J" node-a groups)" 1/1/0 "node a's link: pairs/connected/groups"
expect_eq "$(link_of "$J" node-a last_error)" none "node a's link: no error while connected"
expect_eq "$(jq -r '.nodes[] | select(.name == "node-b") | .links | length' <<<"$J")" 0 "node b has no outgoing link"
JB=$(nodes "$(url_b)")
expect_eq "$(link_of "$JB" node-a state)" connected "node a's link seen through node b (internal channel)"
"$CLI" --url "$URL" --token "$OPTOKEN" --project ops node list >"$TMP/table" 2>&1 || fail "node list (table)"
grep -q 'node-b:connected' "$TMP/table" || fail "the table does not show node-b:connected: $(cat "$TMP/table")"
grep -Eq '^node-a +node-b +az2 +connected +1 +0 ' "$TMP/table" || fail "the link table has no row for node a's link: $(cat "$TMP/table")"

log "2. kill -9 node b, a write on production: the link breaks"
kill -KILL "$NODE_B_PID"
wait "$NODE_B_PID" 2>/dev/null || true
NODE_B_PID=""
qemu-io -f raw -c 'write -P 0x22 1M 1M' "$(nbd_uri az1 "$P")" >/dev/null ||
  fail "production refused a write with its DR node dead"
wait_link reconnecting
[ "$(link_of "$J" node-a last_error)" != none ] || fail "a broken link without a last error: $J"
jq -e '.nodes[] | select(.name == "node-a") | .links[0] | .reconnect_backoff_seconds > 0 and .down_seconds >= 0 and .pairs_connected == 0' <<<"$J" >/dev/null ||
  fail "reconnecting link: backoff, down time or counts wrong: $J"
jq -e '.nodes[] | select(.name == "node-b") | .links == null and (.links_error | length > 0)' <<<"$J" >/dev/null ||
  fail "node b's links should be unknown with a reason: $J"
"$CLI" --url "$URL" --token "$OPTOKEN" --project ops node list >"$TMP/table" 2>&1 || fail "node list (table)"
grep -q 'node-b:reconnecting' "$TMP/table" || fail "the table does not show node-b:reconnecting: $(cat "$TMP/table")"
log "$(cat "$TMP/table")"

log "3. node b restarted: the link is connected again, the pair resyncs"
rm -f "$DATA/node-b/evsrepd.ports"
cluster_start_b
NBD_AZ2="127.0.0.1:$(awk -F= '$1=="nbd.az2"{print $2}' "$DATA/node-b/evsrepd.ports")"
wait_link connected
wait_pair_active "$R" 60 || fail "the pair did not resume after the link came back"
expect_eq "$(link_of "$J" node-a last_error)" none "node a's link: no error once connected again"
qemu-img compare -q -f raw -F raw "$(nbd_uri az1 "$P")" "$(nbd_uri az2 "$D")" ||
  fail "DR differs from production after the link came back"

finish
