#!/usr/bin/env bash
# A remote sidecar whose discard was lost stays released after a later
# pause or fault freeze: a failover from the survivor folds it and keeps
# every write acknowledged before the pause (freeze), never rolls back to
# the older instant; and a new resync replaces it by one of the pause's
# instant (docs/design/replication.md, sidecars, "The release record",
# R5-R7). Node A serves az1 (production), node B az2 (the DR disks over
# NBD links), one PostgreSQL store, lease_ms 3000. A runs with
# EVSREP_DRCOW_NO_DISCARD=1: its discard requests fail unsent.
#  1. three groups of 2 pairs each (GP: r1 r2, GF: r3 r4, GR: r5 r6) with
#     data (0x11), paused, rewritten (0x22), synced again: B opens a
#     sidecar per pair; every group reaches active, A records the release,
#     the discards are lost and the six sidecar files stay on B
#  2. written again in SYNC (0x33 on every disk), acknowledged: on B too
#  3. GR paused, rewritten (0x55), resynced at 1 MiB/s: the open replaces
#     each released sidecar by one of the pause's instant (R6); GP paused;
#     then B killed while GR is copying (its DR disks written, its
#     resync not completed), which freezes GR, and a write on r3's
#     production disk (0x44), acknowledged, freezes GF on the DR fault: no
#     group's rows say active any more
#  4. kill -9 A; B restarted; failover of the three groups on B once A's
#     lease lapsed: GP's and GF's sidecars are released (folded, not
#     rolled back), GR's are rolled back: every DR disk holds the 0x33
#     writes (each group's instant: GP's pause, GF's freeze, GR's pause),
#     r3's not the 0x44 one; no sidecar file is left
# Seen red without the release record (R4 rolled GP and GF back to 0x11
# from their rows, and GR's kept sidecars too) and with R6 off (GR's
# stale sidecars folded: its DR disks hold the 0x55 copies). Needs PostgreSQL
# (EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE, the pg_cluster fixture).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection

NODE_EXEC[a]="env EVSREP_DRCOW_NO_DISCARD=1"
count() { grep -c "$1" "$2" || true; } # grep -c prints 0, and fails, on no match
ALL=(1 2 3 4 5 6)
region_is() { # FILE BYTE: the first MIB MiB of FILE are all BYTE
  cmp -s -n "$((MIB << 20))" "$1" <(head -c "$((MIB << 20))" /dev/zero | tr '\0' "\\$(printf '%03o' "$2")")
}
write_on() { # BYTE LEN_MIB INDEX...
  local b=$1 len=$2 i
  shift 2
  for i in "$@"; do
    qemu-io -f raw -c "write -P $b 0 ${len}M" -c flush "${PU[$i]}" >"$TMP/qio" 2>&1 ||
      fail "write $b on p$i: $(cat "$TMP/qio")"
  done
}

# --- 1. three groups resynced with sidecars on B, whose discards are lost ---------------
# P D R PU 1..6 and GIDS 1..3, synced (0x11) and paused (lib_nodes.sh)
nodes_paused_group t_msrp 127.0.0.25 127.0.0.26 4 3
GP=${GIDS[1]} GF=${GIDS[2]} GR=${GIDS[3]}
sync_all() {
  local g
  for g in "$GP" "$GF" "$GR"; do
    group_action "$g" os-sync-replication-consistency-group
    expect_status 200 "sync of $g"
  done
  for g in "$GP" "$GF" "$GR"; do wait_group a "$g" replication_status active 60 || die "group $g not active"; done
}
pause() {
  group_action "$1" os-stop-replication-consistency-group
  expect_status 200 "pause of $1"
  wait_group a "$1" replication_status active-stopped 10 || die "group $1 not paused"
}
write_on 0x22 "$MIB" "${ALL[@]}"
lost0=$(count 'the DR node did not discard the sidecars' "$TMP/a.log")
sync_all
lost() { echo $(($(count 'the DR node did not discard the sidecars' "$TMP/a.log") - lost0)); }
for _ in $(seq 1 50); do [ "$(lost)" -ge 3 ] && break; sleep 0.1; done
expect_eq "$(lost)" 3 "discards A tried (and lost) at the end of the resyncs"
for i in "${ALL[@]}"; do
  [ -f "$(node_file b az2 "pair-${R[$i]}.drcow")" ] || die "precondition: no sidecar of r$i left on B"
done

# --- 2. acknowledged writes in SYNC -------------------------------------------------
write_on 0x33 "$MIB" "${ALL[@]}"
for i in "${ALL[@]}"; do
  region_is "$(b_file "${D[$i]}")" 0x33 || fail "d$i does not hold the acknowledged SYNC writes"
done

# --- 3. GR resyncs again, GP paused, then B lost: GR and GF frozen ----------------------
pause "$GR"
write_on 0x55 "$MIB" 5 6
group_action "$GR" os-set-resync-throttle '{"max_mib_per_sec": 1}'
expect_status 200 "throttle of gr"
repl0=$(count 'replaced by one of generation' "$TMP/b.log")
group_action "$GR" os-sync-replication-consistency-group
expect_status 200 "sync of gr (the second resync)"
expect_eq "$(($(count 'replaced by one of generation' "$TMP/b.log") - repl0))" 2 "released sidecars replaced by GR's opens (R6)"
# The batch (the whole 4 MiB) is copied at once, then the throttle's debt
# holds the resync (seconds) before it can end: GR is copying, its DR disks
# written, when B dies.
for _ in $(seq 1 200); do
  region_is "$(b_file "${D[5]}")" 0x33 || region_is "$(b_file "${D[6]}")" 0x33 || break
  sleep 0.05
done
for i in 5 6; do
  ! region_is "$(b_file "${D[$i]}")" 0x33 || die "GR's resync wrote nothing to d$i"
done
on a GET "$RCGS/$GR"
expect_eq "$(jget "$G.replication_status")" copying "gr before B's loss (its resync not completed)"
pause "$GP"
nodes_kill b
write_on 0x44 1 3
for _ in $(seq 1 100); do
  on a GET "$PAIRS/${R[3]}"
  [ "$(jget .replication.fault_level)" = 5 ] && break
  sleep 0.1
done
expect_eq "$(jget .replication.replication_status)/$(jget .replication.fault_level)" inactive/5 "r3 after the DR fault"
for g in "$GF" "$GR"; do
  on a GET "$RCGS/$g"
  [ "$(jget "$G.replication_status")" != active ] || fail "group $g still reads active after B's loss"
done

# --- 4. A lost, B back: the failovers keep every acknowledged write ---------------------
nodes_kill a
nodes_start b
for g in "$GP" "$GF" "$GR"; do
  for _ in $(seq 1 40); do
    on b POST "$RCGS/$g/action" '{"os-failover-replication-consistency-group": null}'
    [ "$STATUS" = 409 ] || break
    sleep 1
  done
  expect_status 200 "failover of $g from the survivor"
  on b GET "$RCGS/$g"
  expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")" failovered/az2 "group $g after the failover"
done
for i in "${ALL[@]}"; do
  NU=$(attach b "${D[$i]}")
  qemu-io -f raw -c "read -P 0x33 0 ${MIB}M" "$NU" >"$TMP/qio" 2>&1 ||
    fail "d$i after the failover is not the group's instant (0x33): $(tail -n 3 "$TMP/qio")"
done
expect_eq "$(count "sidecar (generation [1-9][0-9]*, .*) was released" "$TMP/b.log")" 4 "released sidecars folded on B (GP, GF)"
expect_eq "$(count "from the DR node's sidecar" "$TMP/b.log")" 2 "members rolled back on B (GR)"
for i in "${ALL[@]}"; do
  [ ! -e "$(node_file b az2 "pair-${R[$i]}.drcow")" ] || fail "sidecar of r$i left on B after the failover"
done
finish
