#!/usr/bin/env bash
# A remote pair's sidecar whose discard never reached the DR node must not
# roll back acknowledged writes (docs/design/replication.md, sidecars,
# "Remote links", R4). Node A serves az1 (production), node B az2 (the DR
# disks over NBD links), one PostgreSQL store, lease_ms 3000. A runs with
# EVSREP_DRCOW_NO_DISCARD=1: its discard requests fail unsent, as one lost
# on its way (the window between the last member entering SYNC and the
# discard reaching B, held open).
#  1. a group of 2 pairs with data (0x11), paused, rewritten (0x22), synced
#     again: B opens a sidecar per pair; the group reaches active, the
#     discard fails, the sidecar files stay on B (the precondition)
#  2. written again in SYNC (0x33 on both), acknowledged: on both disks
#  3. kill -9 A; failover on B once A's lease lapsed: every member was
#     recorded active, so B folds the sidecars and does not roll back:
#     each DR disk holds the 0x33 writes (0 acknowledged writes lost)
# Seen red with the rule removed (B rolled back to 0x11). Needs PostgreSQL
# (EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE, the pg_cluster fixture).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection

NODE_EXEC[a]="env EVSREP_DRCOW_NO_DISCARD=1"

# --- 1. a resync with sidecars on B, whose discard is lost ---------------------------
nodes_paused_group t_msrel 127.0.0.23 127.0.0.24 8
write_all() {
  for u in "$PU1" "$PU2"; do
    qemu-io -f raw -c "write -P $1 0 ${MIB}M" -c flush "$u" >"$TMP/qio" 2>&1 || fail "write $1: $(cat "$TMP/qio")"
  done
}
write_all 0x22
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync (the resync)"
wait_group a "$GID" replication_status active 60 || die "the resync did not finish"
for _ in $(seq 1 50); do grep -q 'the DR node did not discard the sidecars' "$TMP/a.log" && break; sleep 0.1; done
grep -q 'the DR node did not discard the sidecars' "$TMP/a.log" || fail "A did not try (and fail) to discard"
for r in "$R1" "$R2"; do
  [ -f "$(node_file b az2 "pair-$r.drcow")" ] || die "precondition: no sidecar of $r left on B"
done

# --- 2. acknowledged writes in SYNC -------------------------------------------------
write_all 0x33
W1=$(region_sum "$(a_file "$P1")")
expect_eq "$(region_sum "$(b_file "$D1")")" "$W1" "d1 holds the acknowledged SYNC writes"

# --- 3. A lost: failover on B keeps them ----------------------------------------------
nodes_kill a
for _ in $(seq 1 40); do
  on b POST "$RCGS/$GID/action" '{"os-failover-replication-consistency-group": null}'
  [ "$STATUS" = 409 ] || break
  sleep 1
done
expect_status 200 "failover from the survivor"
on b GET "$RCGS/$GID"
expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")" failovered/az2 "group after the failover"
for d in "$D1" "$D2"; do
  NU=$(attach b "$d")
  qemu-io -f raw -c "read -P 0x33 0 ${MIB}M" "$NU" >"$TMP/qio" 2>&1 ||
    fail "$d after the failover lacks the acknowledged 0x33 writes: $(tail -n 3 "$TMP/qio")"
done
expect_eq "$(grep -c "from the DR node's sidecar" "$TMP/b.log")" 0 "members rolled back on B"
for r in "$R1" "$R2"; do
  [ ! -e "$(node_file b az2 "pair-$r.drcow")" ] || fail "sidecar of $r left on B after the failover"
done
finish
