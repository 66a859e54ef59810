#!/usr/bin/env bash
# A failover from the survivor that lands in a resync of remote pairs gives
# the group's frozen instant on every DR disk (docs/design/replication.md,
# sidecars, "Remote links"). Node A serves az1 (production), node B az2 (the
# DR disks, reached over NBD links), one PostgreSQL store, lease_ms 3000.
#  1. a group of 2 pairs in SYNC with data (pattern 0x11); paused: the DR
#     disks hold the frozen instant (their first 40 MiB checksummed on B)
#  2. heavy writes on production while paused (0x22 over the same 40 MiB),
#     resync throttled to 4 MiB/s, sync: B opens a sidecar per pair (log);
#     once it is under way, throttled to 1 MiB/s
#  3. B restarted mid-resync (SIGTERM): the links break, A resumes the
#     group when B is back, and B reopens its sidecars when the link
#     exports are granted again (S4 on the DR node)
#  4. kill -9 A while both members are between 1% and 99%; the DR disks are
#     a mix of old and new chunks then (checked)
#  5. failover sent to B once A's lease lapsed: B rolls both disks back
#     from its sidecars (log) and every DR disk holds exactly the frozen
#     instant (checksums); the sidecar files are gone
#  6. A restarts, reprotect through B: the rolled-back chunks were marked,
#     so afterwards A's old production files equal B's (qemu-img compare)
# Seen red: EVSREP_SIDECAR_NO_ROLLBACK=1 (no rollback on B) or
# EVSREP_DRCOW_NO_PRESERVE=1 (B does not preserve) in the test's
# environment: step 5 finds mixed DR disks. Needs PostgreSQL
# (EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE, the pg_cluster fixture).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection

# As nodes_two_sites, with the default link_timeout (5 s): a preserve adds
# two fdatasyncs on B to a link write, slow on a loaded machine.
LINK_TIMEOUT=${EVSREP_MSRF_LINK_TIMEOUT:-5}
progress() { on a GET "$PAIRS/$1"; jget .replication.progress; }

# --- 1. a group in SYNC with data, paused: the frozen instant ------------------------
nodes_paused_group t_msrf 127.0.0.21 127.0.0.22 40
F1=$(region_sum "$(b_file "$D1")")
F2=$(region_sum "$(b_file "$D2")")
[ "$F1" = "$(region_sum "$(a_file "$P1")")" ] || fail "d1 does not hold p1's data at the pause"

# --- 2. heavy writes while paused, a throttled sync ------------------------------------
for u in "$PU1" "$PU2"; do
  qemu-io -f raw -c "write -P 0x22 0 ${MIB}M" -c flush "$u" >"$TMP/qio" 2>&1 || fail "paused write: $(cat "$TMP/qio")"
done
N1=$(region_sum "$(a_file "$P1")")
[ "$N1" != "$F1" ] || die "the paused write changed nothing"
group_action "$GID" os-set-resync-throttle '{"max_mib_per_sec": 4}'
expect_status 200 "throttle"
opened0=$(grep -c 'sidecar opened on the DR node' "$TMP/b.log")
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync (the resync)"
expect_eq "$(($(grep -c 'sidecar opened on the DR node' "$TMP/b.log") - opened0))" 2 "sidecars opened by B for the resync"
for f in "$(node_file b az2 "pair-$R1.drcow")" "$(node_file b az2 "pair-$R2.drcow")"; do
  [ -f "$f" ] || fail "no sidecar file $f on B"
done

# --- 3. B restarted mid-resync: sidecars reopened, the group resumes --------------------
for _ in $(seq 1 100); do [ "$(progress "$R1")" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
# Slower from here: the resumed resync must still be under way when A dies,
# however long B's restart and the resume take (ASan, a loaded machine).
group_action "$GID" os-set-resync-throttle '{"max_mib_per_sec": 1}'
expect_status 200 "throttle lowered"
nodes_stop b
nodes_start b
for _ in $(seq 1 400); do # A notices at its next link write, reconnects after 2 s
  [ "$(grep -c 'sidecar reopened on the DR node' "$TMP/b.log")" -ge 2 ] && break
  sleep 0.1
done
expect_eq "$(grep -c 'sidecar reopened on the DR node' "$TMP/b.log")" 2 "sidecars reopened by B after its restart"
wait_group a "$GID" replication_status copying 30 || fail "the group did not resume after B came back"

# --- 4. kill -9 A in the middle of the resync --------------------------------------------
ok=0
for _ in $(seq 1 300); do
  a1=$(progress "$R1")
  a2=$(progress "$R2")
  if [ "${a1:-0}" -ge 1 ] 2>/dev/null && [ "${a2:-0}" -ge 1 ] && [ "$a1" -le 99 ] && [ "$a2" -le 99 ]; then
    ok=1
    break
  fi
  sleep 0.1
done
[ "$ok" = 1 ] || die "no point where both members were between 1% and 99% ($a1%, $a2%)"
nodes_kill a
log "A killed with the members at $a1% and $a2%"
M1=$(region_sum "$(b_file "$D1")")
M2=$(region_sum "$(b_file "$D2")")
[ "$M1" != "$F1" ] && [ "$M1" != "$N1" ] || fail "d1 is not mixed when A died (the test missed the resync)"
[ "$M2" != "$F2" ] || fail "d2 still holds the frozen instant when A died (the test missed the resync)"

# --- 5. failover from the survivor: the frozen instant on every DR disk -----------------
for _ in $(seq 1 40); do
  on b POST "$RCGS/$GID/action" '{"os-failover-replication-consistency-group": null}'
  [ "$STATUS" = 409 ] || break
  sleep 1
done
expect_status 200 "failover from the survivor"
on b GET "$RCGS/$GID"
expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")" failovered/az2 "group after the failover"
expect_eq "$(grep -c "from the DR node's sidecar\|NOT rolled back" "$TMP/b.log")" 2 "members rolled back on B"
expect_eq "$(region_sum "$(b_file "$D1")")" "$F1" "d1 after the failover (the frozen instant)"
expect_eq "$(region_sum "$(b_file "$D2")")" "$F2" "d2 after the failover (the frozen instant)"
NU1=$(attach b "$D1")
qemu-io -f raw -c "read -P 0x11 0 ${MIB}M" "$NU1" >"$TMP/qio" 2>&1 ||
  fail "d1 read over NBD on B is not the frozen image: $(tail -n 3 "$TMP/qio")"
for r in "$R1" "$R2"; do
  [ ! -e "$(node_file b az2 "pair-$r.drcow")" ] || fail "sidecar of $r left on B after the failover"
done

# --- 6. A back, reprotect: the rolled-back chunks are copied back to A -------------------
nodes_start a
URL=$URL_b
group_action "$GID" os-set-resync-throttle '{}'
expect_status 200 "throttle lifted"
for _ in $(seq 1 20); do
  on b POST "$RCGS/$GID/action" '{"os-reprotect-replication-consistency-group": null}'
  [ "$STATUS" = 409 ] || break
  sleep 0.5
done
expect_status 200 "reprotect"
wait_group b "$GID" replication_status active 60 || fail "reprotect did not finish"
same_files "r1 after the reprotect" "$P1" "$D1"
same_files "r2 after the reprotect" "$P2" "$D2"
finish
