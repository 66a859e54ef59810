#!/usr/bin/env bash
# A resync that completes when neither the release record of its remote
# sidecars can be written nor their discard reaches the DR node does not
# let the group read active: it is frozen (paused) as one, and stays so
# until a sync records the release (docs/design/replication.md, sidecars,
# "The release record", R8). Node A serves az1 (production), node B az2
# (the DR disks over NBD links), one PostgreSQL store, lease_ms 3000. A
# runs with EVSREP_DRCOW_NO_DISCARD=1 throughout: its discards fail unsent.
#  1. a paused group of 2 pairs holding 0x11 (nodes_paused_group); A
#     restarted with EVSREP_FAULT=release_bump=1+: every bump of the
#     release record fails
#  2. rewritten (0x22) while paused, synced: the resync opens a sidecar per
#     pair on B and copies, the bump fails 3 times, the discard is lost:
#     the group reads active-stopped, never active, its sidecars stay on B
#  3. written again (0x33), acknowledged: tracked, not mirrored; the DR
#     disks still hold the 0x22 copies, the group is still paused (no
#     automatic resync: the link is healthy)
#  4. A restarted without the fault rule; a sync makes the group active,
#     records the release (the discard still lost), and DR equals
#     production
# Seen red with the freeze of R8 removed (the group read active after the
# failed bump). Needs PostgreSQL (EVSREP_TEST_PG_URL or
# EVSREP_TEST_PG_URL_FILE, the pg_cluster fixture).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection

NODE_EXEC[a]="env EVSREP_DRCOW_NO_DISCARD=1"
count() { grep -c "$1" "$2" || true; } # grep -c prints 0, and fails, on no match
write_all() {
  local u
  for u in "$PU1" "$PU2"; do
    qemu-io -f raw -c "write -P $1 0 ${MIB}M" -c flush "$u" >"$TMP/qio" 2>&1 || fail "write $1: $(cat "$TMP/qio")"
  done
}
restart_a() { # NODE_EXEC prefix for A
  nodes_stop a
  NODE_EXEC[a]=$1
  nodes_start a
  URL=$URL_a
  PU1=$(attach a "$P1")
  PU2=$(attach a "$P2")
}

# --- 1. a paused group; A refuses every bump from now on --------------------------------
nodes_paused_group t_msru 127.0.0.57 127.0.0.58 8
restart_a "env EVSREP_DRCOW_NO_DISCARD=1 EVSREP_FAULT=release_bump=1+"

# --- 2. the resync completes, its release is neither recorded nor sent -------------------
write_all 0x22
bump='release of its sidecars cannot be recorded'
bump0=$(count "$bump" "$TMP/a.log")
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync (the resync)"
# The resync's end: its bump fails (logged whether or not R8 holds).
for _ in $(seq 1 300); do [ "$(count "$bump" "$TMP/a.log")" -gt "$bump0" ] && break; sleep 0.1; done
[ "$(count "$bump" "$TMP/a.log")" -gt "$bump0" ] || die "the resync did not end in a failed bump"
wait_group a "$GID" replication_status active-stopped 30 || die "group not paused after the failed release"
grep -q 'neither recorded nor sent: the group is frozen' "$TMP/a.log" || fail "A did not log the held release"
for r in "$R1" "$R2"; do
  on a GET "$PAIRS/$r"
  expect_eq "$(jget .replication.replication_status)" active-stopped "pair $r after the held release"
  [ -f "$(node_file b az2 "pair-$r.drcow")" ] || fail "sidecar of $r gone from B (nothing recorded it)"
done
for i in 1 2; do
  p=P$i d=D$i
  expect_eq "$(region_sum "$(b_file "${!d}")")" "$(region_sum "$(a_file "${!p}")")" \
    "d$i holds the resync's copies (0x22)"
done
S22=$(region_sum "$(b_file "$D1")")

# --- 3. writes since are tracked: DR untouched, the group still paused -----------------
write_all 0x33
expect_eq "$(region_sum "$(b_file "$D1")")" "$S22" "d1 after writes on a held group"
[ "$(region_sum "$(a_file "$P1")")" != "$S22" ] || die "precondition: production was not rewritten"
on a GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "group after the writes (no automatic resync)"

# --- 4. the store takes the bump again: a sync makes the group active -------------------
restart_a "env EVSREP_DRCOW_NO_DISCARD=1"
rec0=$(count 'release of its sidecars recorded' "$TMP/a.log")
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync once the store takes the bump"
wait_group a "$GID" replication_status active 60 || die "group not active after the sync"
[ "$(count 'release of its sidecars recorded' "$TMP/a.log")" -gt "$rec0" ] || fail "the sync recorded no release"
for i in 1 2; do
  p=P$i d=D$i
  expect_eq "$(region_sum "$(b_file "${!d}")")" "$(region_sum "$(a_file "${!p}")")" "d$i equals production (0x33)"
done
finish
