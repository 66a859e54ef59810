#!/usr/bin/env bash
# Reverse and failover answer once the swap is under way (docs/design/faults.md,
# "Behind the status"): the request returns 200 when `reversing` /
# `failovering` is recorded; the flushes, the fence and the role switch run
# on a worker that holds the group.
#   A. a reverse with a large dirty page cache (WRITE_MIB written through NBD
#      without a flush just before): 200, the group is `reversing` (or already
#      `available`), then `available` with the roles flipped and the bytes
#      identical on both legs and equal to what was written (checksums);
#   B. the worker held in its flushes (fault rule vol_flush^FILE): the group
#      shows `reversing` after the 200, every other action on the group
#      (pause, sync, reverse, failover, reprotect, PUT, DELETE, verify, clone:
#      evsrep extensions) gets a 409
#      naming `reversing` at once instead of queueing behind the worker; a
#      failover behind `failovering` the same; once let go, the swap completes;
#   C. SIGTERM while a worker is held: the daemon waits for it (log line),
#      exits 0, and the swap is complete after the restart;
#   D. an injected failure in the background (every flush of the DR disk of
#      pair 1 fails, so the fenced preflight refuses): 200, then `available`
#      with the roles unchanged, the reason in the log, data intact on both
#      legs, production writable and DR read-only; a reverse works again
#      once the fault is gone.
# EVSREP_SWAP_WRITE_MIB (default 256) sets the dirty data of A.
. "$(dirname "$0")/lib.sh"
"$EVSREPD" --version | grep -q fault-injection ||
  die "evsrepd was built without fault injection (cmake -DEVSREP_FAULT_INJECTION=ON)"

G=.replication_consistency_group
REVERSE=os-reverse-replication-consistency-group
FAILOVER=os-failover-replication-consistency-group
WRITE_MIB=${EVSREP_SWAP_WRITE_MIB:-256}
HOLD=$TMP/hold

# write_src AZ VOL FILE MIB: MIB of random bytes into FILE, then onto the
# volume through NBD with no flush (nbdcopy flushes only with --flush).
write_src() {
  head -c "$4M" /dev/urandom >"$3"
  nbdcopy -- "$3" "$(nbd_uri "$1" "$2")" || fail "nbdcopy onto $2 failed"
}
# prefix_sum URI BYTES: sha256 of the first BYTES of the export (nbdcopy
# reads on; head stops it).
prefix_sum() {
  (
    set +o pipefail
    nbdcopy -- "$1" - 2>/dev/null | head -c "$2" | sha256sum | cut -d' ' -f1
  )
}
group_field() { api GET "$RCGS/$GID"; jget "$G.$1"; }
# check_legs WHAT: each pair's two legs hold the bytes written ($TMP/srcN at
# offset 0: checksums), and are equal on the whole disk (qemu-img compare,
# quick over holes).
check_legs() {
  local i a b n want
  for i in 1 2; do
    a=$(nbd_uri az1 "${P[i]}")
    b=$(nbd_uri az2 "${D[i]}")
    n=$(stat -c %s "$TMP/src$i")
    want=$(sha256sum <"$TMP/src$i" | cut -d' ' -f1)
    expect_eq "$(prefix_sum "$a" "$n")" "$want" "$1: pair $i az1 leg holds the data written"
    expect_eq "$(prefix_sum "$b" "$n")" "$want" "$1: pair $i az2 leg holds the data written"
    qemu-img compare -q -f raw -F raw "$a" "$b" || fail "$1: pair $i legs differ"
  done
}
# check_roles WHAT AZ: the group and both pairs have production in AZ; the
# production disk takes a write, the DR disk refuses it.
check_roles() {
  local i prod dr
  expect_eq "$(group_field priority_station)" "$2" "$1: group priority_station"
  for i in 1 2; do
    api GET "$PAIRS/${R[i]}"
    expect_eq "$(jget .replication.priority_station)" "$2" "$1: pair $i priority_station"
  done
  if [ "$2" = az1 ]; then prod=$(nbd_uri az1 "${P[1]}") dr=$(nbd_uri az2 "${D[1]}"); else
    prod=$(nbd_uri az2 "${D[1]}") dr=$(nbd_uri az1 "${P[1]}")
  fi
  # Zeroes where the disk holds zeroes: the checksums stay what they were.
  qemu-io -f raw -c 'write -z 1000M 64k' "$prod" >/dev/null 2>&1 || fail "$1: production refuses a write"
  if qemu-io -f raw -c 'write -z 1000M 64k' "$dr" >/dev/null 2>&1; then
    fail "$1: the DR disk accepted a client write (two productions)"
  fi
}
# expect_409_now WHAT METHOD PATH [JSON]: 409 naming `reversing`/`failovering`,
# answered while the worker is held (a request queued behind the worker
# would not be answered before the hold goes: curl gives up, HTTP 000).
expect_409_now() {
  local what=$1 want=$2
  shift 2
  api "$@" -m 20
  expect_status 409 "$what during $want" || return 0
  [[ "$(jget .error.message)" == *"$want"* ]] || fail "$what during $want: 409 does not name '$want': $BODY"
}

start_daemon
declare -a P D R
make_active_pairs 2 swap
GID=$(create_group swapg "${R[1]}" "${R[2]}")
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync of the new group"
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped' 120

# --- A. reverse with a large dirty page cache ------------------------------------
log "A. reverse right after $WRITE_MIB MiB written without a flush"
write_src az1 "${P[1]}" "$TMP/src1" "$WRITE_MIB"
write_src az1 "${P[2]}" "$TMP/src2" 16
SWAP_NOWAIT=1 group_action "$GID" "$REVERSE"
expect_status 200 "A: reverse"
st=$(group_field status)
log "A: status right after the answer: $st"
[[ "$st" =~ ^(reversing|available)$ ]] || fail "A: status right after the reverse answered: '$st'"
wait_swap "$GID"
expect_eq "$(group_field status)" available "A: status after the reverse"
check_roles "A: after the reverse" az2
check_legs "A: after the reverse"
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active "A: replication_status after the reverse"
# The rest runs on less data (a short test): A's data is zeroed on the new
# production (mirrored), 16 MiB written in its place.
qemu-io -f raw -c "write -z 0 ${WRITE_MIB}M" "$(nbd_uri az2 "${D[1]}")" >/dev/null ||
  fail "A: cannot zero the data written"
write_src az2 "${D[1]}" "$TMP/src1" 16

# --- B. a held worker: the status, and 409 for everything else -------------------
log "B. the worker held in its flushes"
stop_daemon
EVSREP_FAULT="vol_flush^$HOLD" start_daemon
touch "$HOLD"
# -m: a request held until the swap is done would never be answered here.
api POST "$RCGS/$GID/action" "{\"$REVERSE\": null}" -m 20
expect_status 200 "B: reverse (answered while its flushes are held)"
expect_eq "$(group_field status)" reversing "B: status while the worker is held"
expect_409_now "B: pause" reversing POST "$RCGS/$GID/action" '{"os-stop-replication-consistency-group": null}'
expect_409_now "B: sync" reversing POST "$RCGS/$GID/action" '{"os-sync-replication-consistency-group": null}'
expect_409_now "B: reverse" reversing POST "$RCGS/$GID/action" "{\"$REVERSE\": null}"
expect_409_now "B: failover" reversing POST "$RCGS/$GID/action" "{\"$FAILOVER\": null}"
expect_409_now "B: reprotect" reversing POST "$RCGS/$GID/action" '{"os-reprotect-replication-consistency-group": null}'
expect_409_now "B: PUT" reversing PUT "$RCGS/$GID" '{"replication_consistency_group": {"name": "renamed"}}'
expect_409_now "B: DELETE" reversing DELETE "$RCGS/$GID" ''
expect_409_now "B: verify" reversing POST "$RCGS/$GID/action" '{"os-evsrep-verify": null}'
expect_409_now "B: clone" reversing POST "$RCGS/$GID/action" '{"os-evsrep-clone-replication-consistency-group": null}'
expect_eq "$(group_field status)" reversing "B: status after the refused actions"
rm -f "$HOLD"
wait_swap "$GID"
expect_eq "$(group_field status)" available "B: status after the reverse"
expect_eq "$(group_field name)" swapg "B: the refused PUT changed nothing"
check_roles "B: after the reverse" az1
check_legs "B: after the reverse"

log "B. a failover behind failovering"
touch "$HOLD"
api POST "$RCGS/$GID/action" "{\"$FAILOVER\": null}" -m 20
expect_status 200 "B: failover (answered while its flush is held)"
expect_eq "$(group_field status)" failovering "B: status while the failover worker is held"
expect_409_now "B: reverse" failovering POST "$RCGS/$GID/action" "{\"$REVERSE\": null}"
expect_409_now "B: pause" failovering POST "$RCGS/$GID/action" '{"os-stop-replication-consistency-group": null}'
rm -f "$HOLD"
wait_swap "$GID"
expect_eq "$(group_field status)" failovered "B: status after the failover"
expect_eq "$(group_field priority_station)" az2 "B: priority_station after the failover"
group_action "$GID" os-reprotect-replication-consistency-group
expect_status 200 "B: reprotect"
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped' 120
check_roles "B: after the reprotect" az2
check_legs "B: after the reprotect"

# --- C. SIGTERM while a worker is held -------------------------------------------
log "C. SIGTERM while a reverse is held"
touch "$HOLD"
api POST "$RCGS/$GID/action" "{\"$REVERSE\": null}" -m 20
expect_status 200 "C: reverse"
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 400); do
  grep -q 'waiting for the role swaps under way' "$TMP/daemon.log" && break
  sleep 0.05
done
grep -q 'waiting for the role swaps under way' "$TMP/daemon.log" ||
  fail "C: the stopping daemon did not say it waits for the swap"
rm -f "$HOLD"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=""
expect_eq "$rc" 0 "C: exit code of the daemon stopped during a swap"
start_daemon
expect_eq "$(group_field status)" available "C: status after the restart"
check_roles "C: after the restart" az1
check_legs "C: after the restart"

# --- D. a failure in the background ------------------------------------------------
# Production az1: pair 1's DR leg is D1. Every flush of it fails: the
# preflush ignores it, the fenced preflight refuses; nothing swaps.
log "D. every flush of pair 1's DR disk fails"
stop_daemon
EVSREP_FAULT="vol_flush@${D[1]}=1+" start_daemon
from=$(wc -l <"$TMP/daemon.log")
# 16 MiB over the start of what A wrote: the expected bytes are src1 with
# its first 16 MiB replaced.
head -c 16M /dev/urandom >"$TMP/d16"
dd if="$TMP/d16" of="$TMP/src1" conv=notrunc status=none
nbdcopy -- "$TMP/d16" "$(nbd_uri az1 "${P[1]}")" || fail "D: nbdcopy onto ${P[1]} failed"
SWAP_NOWAIT=1 group_action "$GID" "$REVERSE"
expect_status 200 "D: reverse (the failure comes after the answer)"
wait_swap "$GID"
expect_eq "$(group_field status)" available "D: status after the failed reverse"
tail -n +"$from" "$TMP/daemon.log" | grep -q "group $GID: reverse failed, roles unchanged" ||
  fail "D: no 'reverse failed, roles unchanged' in the daemon log"
expect_eq "$(group_field priority_station)" az1 "D: group priority_station after the failed reverse"
for i in 1 2; do
  api GET "$PAIRS/${R[i]}"
  expect_eq "$(jget .replication.priority_station)" az1 "D: pair $i priority_station after the failed reverse"
done
check_legs "D: after the failed reverse"
# The write checks flush (qemu-io closes with one): on the daemon without
# the fault.
stop_daemon
start_daemon
check_roles "D: after the failed reverse and a restart" az1
group_action "$GID" "$REVERSE"
expect_status 200 "D: reverse once the fault is gone"
expect_eq "$(group_field status)" available "D: status after the reverse"
check_roles "D: after the reverse" az2
check_legs "D: after the reverse"

finish
