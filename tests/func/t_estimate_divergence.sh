#!/usr/bin/env bash
# The reprotect estimate counts the old production node's divergence
# (docs/api.md §4.8, multi-site.md "Reprotect estimate"), on a two-node
# cluster (lib_cluster.sh: node a az1, node b az2, PostgreSQL):
#  1. a group of one pair az1 -> az2, paused; 4 MiB written on production
#     (dirty on node a only); failover (both nodes up: node a keeps its
#     bitmap); 1 MiB written on the new production (node b)
#  2. GET .../estimate?action=reprotect: the member's old node divergence is
#     "included" and the estimate equals what the reprotect then copies
#     (the pair's bytes_copied delta), at least the 5 MiB written
#  3. failover back (production on node a, node b keeps its divergence),
#     kill -9 node b: the estimate says the divergence is unknown, naming
#     node b, and is not allowed (the reprotect would refuse)
# Needs PostgreSQL: EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE (the ctest
# pg_cluster fixture), as every two-node test.
EVSREP_TEST_NODES=2
. "$(dirname "$0")/lib.sh"

G=.replication_consistency_group
PAUSE=os-stop-replication-consistency-group
FAILOVER=os-failover-replication-consistency-group
REPROTECT=os-reprotect-replication-consistency-group
M=$((1024 * 1024))
act() { # act GROUP ACTION WHAT
  group_action "$1" "$2"
  [[ "$STATUS" =~ ^20[02]$ ]] || die "$3: HTTP $STATUS: $BODY"
}
estimate() { api GET "$RCGS/$GID/estimate?action=reprotect"; expect_status 200 "estimate reprotect"; }
copied() { api GET "$PAIRS/$R"; jget .replication.bytes_copied; }

start_daemon
P=$(create_volume az1 1 prod)
D=$(create_volume az2 1 dr)
R=$(create_pair "$P" "$D" p1)
wait_pair_active "$R" || die "pair never active"
GID=$(create_group g "$R")
act "$GID" os-sync-replication-consistency-group "initial sync"
wait_field "$RCGS/$GID" "$G.replication_status" active 60 || die "group never active"

log "1. pause, 4 MiB on node a, failover, 1 MiB on node b"
act "$GID" "$PAUSE" pause
wait_field "$RCGS/$GID" "$G.status" available 60 >/dev/null
qemu-io -f raw -c "write -P 0x33 0 $((4 * M))" "$(nbd_uri az1 "$P")" >/dev/null || fail "write on production (az1)"
act "$GID" "$FAILOVER" failover
wait_field "$RCGS/$GID" "$G.status" failovered 60 || die "failover did not finish"
qemu-io -f raw -c "write -P 0x44 $((16 * M)) $M" "$(nbd_uri az2 "$D")" >/dev/null || fail "write on the new production (az2)"

log "2. the estimate includes node a's divergence and equals the copy"
estimate
log "estimate: $(jq -c .estimate <<<"$BODY")"
EST=$(jget .estimate.bytes)
CB=$(jget '.estimate.replications[0].chunk_bytes')
expect_eq "$(jget '.estimate.replications[0].old_node_divergence')" included "old node divergence asked"
expect_eq "$(jget .estimate.divergence_unknown)" null "nothing unknown with both nodes up"
[ "$(jget '.estimate.replications[0].old_node_chunks')" -ge $((4 * M / CB)) ] ||
  fail "old_node_chunks below the 4 MiB written on node a: $BODY"
[ "$EST" -ge $((5 * M)) ] || fail "estimate $EST below the 5 MiB written on both sides"
C0=$(copied)
act "$GID" "$REPROTECT" reprotect
wait_field "$RCGS/$GID" "$G.replication_status" active 120 || die "reprotect did not finish"
C1=$(copied)
expect_eq "$((C1 - C0))" "$EST" "bytes the reprotect copied = the estimate"
qemu-img compare -q -f raw -F raw "$(nbd_uri az2 "$D")" "$(nbd_uri az1 "$P")" ||
  fail "after the reprotect the old production differs"

log "3. failover back, kill -9 node b: its divergence is unknown"
act "$GID" "$FAILOVER" "failover back"
wait_field "$RCGS/$GID" "$G.status" failovered 60 || die "failover back did not finish"
kill -KILL "$NODE_B_PID"
wait "$NODE_B_PID" 2>/dev/null || true
NODE_B_PID=""
estimate
log "estimate: $(jq -c .estimate <<<"$BODY")"
expect_eq "$(jget '.estimate.replications[0].old_node_divergence')" unknown "old node down: divergence unknown"
grep -q node-b <<<"$(jget .estimate.divergence_unknown)" || fail "divergence_unknown does not name node b: $BODY"
expect_eq "$(jget .estimate.allowed)" false "reprotect estimate not allowed while node b is down"

finish
