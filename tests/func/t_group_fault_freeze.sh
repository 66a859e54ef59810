#!/usr/bin/env bash
# A group freezes as one when any member faults (docs/semantics.md "Faults",
# docs/design/faults.md F1). For each seed: the daemon is restarted with one
# injected DR write failure (ENOSPC) on the DR disk of a seeded member at a
# seeded write count; seqwriter writes dependent sequence-numbered blocks
# round-robin across the 4 production disks of an active 4-pair group; the
# fault hits mid-load. Then:
#  - the writer saw no error (a DR fault never fails a client write);
#  - the 4 DR disks hold ONE prefix of the sequence (seqcheck): no member
#    kept mirroring after another froze;
#  - the production disks hold every acknowledged write;
#  - the faulted pair reports inactive with fault_level 5, the others
#    active-stopped, the group replication_status error with a fault_message
#    naming the member;
#  - a group sync heals it: active, and every DR disk equals its production.
# EVSREP_FREEZE_RUNS (default 20) seeds from EVSREP_FREEZE_SEED (default 1).
# Needs a fault-injection build (scripts/test.sh builds one).
. "$(dirname "$0")/lib.sh"
require_fault_injection
RUNS=${EVSREP_FREEZE_RUNS:-20}
SEED=${EVSREP_FREEZE_SEED:-1}
REGION=8M
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group

start_daemon
declare -a P D R PU DU
for i in 1 2 3 4; do
  P[i]=$(create_volume az1 1 "fp$i")
  D[i]=$(create_volume az2 1 "fd$i")
  R[i]=$(create_pair "${P[i]}" "${D[i]}" "fpair$i")
done
for i in 1 2 3 4; do wait_pair_active "${R[i]}"; done
GID=$(create_group freeze "${R[1]}" "${R[2]}" "${R[3]}" "${R[4]}")
uris() { for i in 1 2 3 4; do PU[i]=$(nbd_uri az1 "${P[i]}"); DU[i]=$(nbd_uri az2 "${D[i]}"); done; }
sync_active() {
  group_action "$GID" "$SYNC"
  expect_status 200 "$1: sync" || return 1
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive|error' 120
}
uris
sync_active "initial"

RANDOM=$SEED
log "fault-freeze runs: $RUNS, seed $SEED (rerun with EVSREP_FREEZE_SEED=$SEED)"
for run in $(seq 1 "$RUNS"); do
  f=$((RANDOM % 4 + 1))         # the member whose DR disk fails
  k=$((RANDOM % 300 + 20))      # at its k-th DR write after the restart
  runid=$((SEED * 100000 + run))
  tag="run $run/$RUNS (seed $SEED, member $f, DR write $k)"
  fails_before=$FAILS
  stop_daemon
  EVSREP_FAULT="vol_write@${D[f]}=${k}/ENOSPC" start_daemon
  uris
  api GET "$RCGS/$GID"
  expect_eq "$(jget "$G.replication_status")" active "$tag: group active after the restart"

  rm -f "$TMP/stop" "$TMP/prog"
  "$SW" -q -R "$runid" -r "$REGION" -s "$TMP/stop" -t 60 -p "$TMP/prog" -P 1 \
    "${PU[1]}" "${PU[2]}" "${PU[3]}" "${PU[4]}" >"$TMP/sw.out" 2>"$TMP/sw.err" &
  WP=$!
  # The fault is reached after about 4k writes; wait for the group to say so.
  state=""
  for _ in $(seq 1 300); do
    api GET "$RCGS/$GID"
    state=$(jget "$G.replication_status")
    [ "$state" = error ] && break
    sleep 0.05
  done
  sleep 0.2 # writes keep flowing on production after the freeze
  touch "$TMP/stop"
  rc=0
  wait "$WP" || rc=$?
  F=$(cat "$TMP/sw.out")
  [[ "$F" =~ ^[0-9]+$ ]] || F=0
  expect_eq "$state" error "$tag: group replication_status after the fault" || {
    grep -c "fault injected" "$TMP/daemon.log" >&2 || true
  }
  expect_eq "$rc" 0 "$tag: writer exit (a DR fault must not fail client writes): $(cat "$TMP/sw.err")"
  [ "$F" -gt 0 ] || fail "$tag: the writer made no progress"

  # One prefix across every DR disk.
  if ! "$SC" -q -t -R "$runid" -r "$REGION" -b "$F" \
    "${DU[1]}" "${DU[2]}" "${DU[3]}" "${DU[4]}" >"$TMP/sc.out" 2>"$TMP/sc.err"; then
    fail "$tag: DR disks are not one instant: $(cat "$TMP/sc.err") (final acknowledged $F)"
  fi
  frozen=$("$SC" -m -R "$runid" -r "$REGION" "${DU[1]}" "${DU[2]}" "${DU[3]}" "${DU[4]}" 2>/dev/null || echo 0)
  [ "${frozen:-0}" -gt 0 ] || fail "$tag: nothing reached DR before the fault"
  [ "${frozen:-0}" -lt "$F" ] || fail "$tag: DR holds every write ($frozen of $F): the fault froze nothing"
  # Production: every acknowledged write.
  if ! "$SC" -q -R "$runid" -r "$REGION" -a "$F" -b "$F" \
    "${PU[1]}" "${PU[2]}" "${PU[3]}" "${PU[4]}" >/dev/null 2>"$TMP/sc.err"; then
    fail "$tag: production lost acknowledged writes: $(cat "$TMP/sc.err")"
  fi
  # Statuses.
  for i in 1 2 3 4; do
    api GET "$PAIRS/${R[i]}"
    st=$(jget .replication.replication_status)
    fl=$(jget .replication.fault_level)
    if [ "$i" = "$f" ]; then
      expect_eq "$st/$fl" "inactive/5" "$tag: faulted pair $i status/fault_level"
    else
      expect_eq "$st/$fl" "active-stopped/0" "$tag: pair $i frozen with the group"
    fi
  done
  api GET "$RCGS/$GID"
  expect_eq "$(jget "$G.fault_level")" 5 "$tag: group fault_level"
  jget "$G.fault_message" | grep -q "${R[f]}" || fail "$tag: fault_message does not name pair ${R[f]}: $(jget "$G.fault_message")"
  log "$tag: DR frozen at seq $frozen of $F acknowledged"
  # Heal.
  sync_active "$tag"
  # The faulted member every run; all of them every 5th run and at the end.
  for i in 1 2 3 4; do
    if [ "$i" = "$f" ] || [ $((run % 5)) -eq 0 ] || [ "$run" = "$RUNS" ]; then
      nbd_cmp "${PU[i]}" "${DU[i]}" "$tag: P$i vs D$i after the healing sync"
    fi
  done
  [ "$FAILS" -eq "$fails_before" ] || log "$tag FAILED"
done
finish
