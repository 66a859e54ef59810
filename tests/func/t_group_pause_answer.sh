#!/usr/bin/env bash
# The pause answers once every member is in TRACK, without waiting for the
# flushes that follow it (docs/design/replication.md, "What a pause answer
# waits for"). A fault-injection hold keeps the DR flush of pair 1 half way
# (vol_flush@D1^GATE: every flush of D1 waits while the file GATE exists),
# so the order is certain without any timing:
#   1. pause with the flush held: the 200 arrives while the daemon log says
#      the flush is waiting; the group is active-stopped with frozen_at; the
#      DR disk holds the frozen image and does not follow later writes;
#      evsrep_settles_running counts the held settle;
#   2. a sync while the flush is still held resumes replication; after the
#      flush is let go the pair converges byte for byte;
#   3. kill -9 while a pause's flush is held: after the restart the group is
#      still paused, DR still holds the frozen image, the pair has dirty bits
#      (the activity log's extents were folded in, as the crash rule says)
#      and a sync converges.
. "$(dirname "$0")/lib.sh"
require_fault_injection
PAUSE=os-stop-replication-consistency-group
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group
GATE=$TMP/gate

start_daemon
declare -a P D R
make_active_pairs 2 a
stop_daemon
export EVSREP_FAULT="vol_flush@${D[1]}^$GATE"
start_daemon
GID=$(create_group answer "${R[1]}" "${R[2]}")
group_action "$GID" "$SYNC"
expect_status 200 "first sync"
wait_through "$RCGS/$GID" "$G.replication_status" active copying 120
declare -a PU DU
uris() { for i in 1 2; do PU[i]=$(nbd_uri az1 "${P[i]}"); DU[i]=$(nbd_uri az2 "${D[i]}"); done; }
uris
dirty_bytes() { api GET "$PAIRS/$1"; jget '.replication.dirty_bytes // 0'; }
settles() { curl -s -H "X-Auth-Token: $TOKEN" "$URL/metrics" | awk '$1=="evsrep_settles_running" {print $2}'; }
# mirrored writes (SYNC, no flush): the activity log of both pairs is hot
hot_writes() {
  for i in 1 2; do
    qemu-io -f raw -c "write -P 0x$1$i 0 4M" -c "write -P 0x$1$i 512M 1M" "${PU[i]}" >/dev/null ||
      fail "writes on P$i"
  done
}
# held_pause WHAT: pause with the gate up; the 200 must come while the
# flush of D1 is waiting.
held_pause() {
  local what=$1 mark
  mark=$(wc -l <"$TMP/daemon.log")
  touch "$GATE"
  # --max-time only guards against a hang: a pause that waited for the held
  # flush would never answer while the gate is up.
  api POST "$RCGS/$GID/action" "{\"$PAUSE\": null}" --max-time 60
  expect_status 200 "$what: pause answered while the DR flush is held"
  # The settle reaches the held flush after the answer (or already has):
  # wait for the daemon to say so; the gate is still up.
  wait_log "$mark" "fault hold: vol_flush of ${D[1]} .* waits" ||
    fail "$what: the settle never reached the DR flush of pair 1"
  if tail -n +"$mark" "$TMP/daemon.log" | grep -q "fault hold: vol_flush of ${D[1]} .* released"; then
    fail "$what: the held flush was released with the gate still up"
  fi
  # pair 2 settles on its own thread; pair 1's settle stays counted
  local n=""
  for _ in $(seq 1 600); do
    n=$(settles)
    [ "$n" = 1 ] && break
    sleep 0.1
  done
  expect_eq "$n" 1 "$what: evsrep_settles_running once pair 2 settled and pair 1 is held"
}

log "1. pause with the DR flush held"
hot_writes a
SUMP1=$(nbd_sha256 "${PU[1]}")
held_pause "1"
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "1: group replication_status"
[ "$(jget "$G.frozen_at // empty")" != "" ] || fail "1: no frozen_at after the pause"
qemu-io -f raw -c "write -P 0xee 8M 64k" "${PU[1]}" >/dev/null || fail "1: write while paused"
expect_eq "$(nbd_sha256 "${DU[1]}")" "$SUMP1" "1: DR 1 holds the frozen image while its flush is held"
expect_eq "$(dirty_bytes "${R[1]}")" 65536 "1: the write made while paused is tracked"

log "2. sync while the flush is still held"
group_action "$GID" "$SYNC"
expect_status 200 "2: sync while the settle of pair 1 is held"
api GET "$RCGS/$GID"
[[ "$(jget "$G.replication_status")" =~ ^(copying|active)$ ]] ||
  fail "2: group $(jget "$G.replication_status") after the sync"
# (the resync's own DR flush waits on the gate too: release it)
rm -f "$GATE"
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120
wait_settled
hot_writes b
grep -q "fault hold: vol_flush of ${D[1]} .* released" "$TMP/daemon.log" || fail "2: held flush never released"
nbd_cmp "${PU[1]}" "${DU[1]}" "2: pair 1 after sync and release"

log "3. kill -9 while a pause's flush is held"
hot_writes c
SUMP1=$(nbd_sha256 "${PU[1]}")
held_pause "3"
crash_daemon
rm -f "$GATE"
start_daemon
uris
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "3: group after kill -9"
expect_eq "$(nbd_sha256 "${DU[1]}")" "$SUMP1" "3: DR 1 still the frozen image after kill -9"
d=$(dirty_bytes "${R[1]}")
[ "$d" -gt 0 ] || fail "3: the hot extents of pair 1 were not folded in after kill -9 (dirty_bytes $d)"
group_action "$GID" "$SYNC"
expect_status 200 "3: sync after restart"
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120
for i in 1 2; do nbd_cmp "${PU[i]}" "${DU[i]}" "3: pair $i after the sync"; done
finish
