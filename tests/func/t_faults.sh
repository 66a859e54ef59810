#!/usr/bin/env bash
# Fault-injection driver for the service layer (docs/design/faults.md), the
# way SQLite tests its I/O errors: for each scenario and fault rule, N = 1, 2,
# 3, ... the daemon is restarted with the Nth call of the rule failing, the
# scenario runs, and the loop stops when a run completes without reaching
# the fault. After every run (and a clean restart without faults):
#   - no status is stuck in a transitional state (reversing, failovering,
#     creating, updating, extending);
#   - the roles are one: the disk in the group's priority_station is
#     writable over NBD, the other one refuses writes (no two productions);
#   - a group sync brings replication back to active and DR equal to
#     production, byte for byte; every write acknowledged before the
#     scenario is still on production;
#   - the NBD size of every disk equals the size the API reports;
#   - no request answered 5xx except the one that met the injected fault.
# Scenarios on objects of their own (group create, pair delete, group
# delete) also check, before the restart, that the request left no
# transitional status behind, and after it, that the object is either done
# or in a status a documented request leaves (retrying it must work).
# EVSREP_FAULT_ONLY (an ERE) runs only the scenarios whose name matches.
# N is bounded per rule by EVSREP_FAULT_MAXN (default 3; scripts/test.sh
# uses 1 under the sanitizers); EVSREP_FAULT_SWEEP=full lifts the bound.
. "$(dirname "$0")/lib.sh"
require_fault_injection
MAXN=${EVSREP_FAULT_MAXN:-3}
[ "${EVSREP_FAULT_SWEEP:-}" = full ] && MAXN=1000
G=.replication_consistency_group
SYNC=os-sync-replication-consistency-group
PAUSE=os-stop-replication-consistency-group
RUNS=0
POINTS=0

start_daemon
P1=$(create_volume az1 1 fp1)
D1=$(create_volume az2 1 fd1)
P2=$(create_volume az1 1 fp2)
D2=$(create_volume az2 1 fd2)
R1=$(create_pair "$P1" "$D1" fr1)
R2=$(create_pair "$P2" "$D2" fr2)
wait_pair_active "$R1"
wait_pair_active "$R2"
GID=$(create_group faults "$R1" "$R2")
group_action "$GID" "$SYNC"
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120
qemu-io -f raw -c 'write -P 0x5a 0 1M' -c flush "$(nbd_uri az1 "$P1")" >/dev/null || die "seed P1"
qemu-io -f raw -c 'write -P 0x6b 4M 1M' -c flush "$(nbd_uri az1 "$P2")" >/dev/null || die "seed P2"
# A third pair, in no group, for the scenarios that create and delete
# pairs and groups (R3 and G2 are remade after each run that consumed them).
P3=$(create_volume az1 1 fp3)
D3=$(create_volume az2 1 fd3)
qemu-io -f raw -c 'write -P 0x7c 2M 1M' -c flush "$(nbd_uri az1 "$P3")" >/dev/null || die "seed P3"
R3=""
G2=""

vol_az() { api GET "volumes/$1"; jget .volume.availability_zone; }
nbd_size() { nbdinfo --size "$(nbd_uri "$(vol_az "$1")" "$1")" 2>/dev/null || echo "?"; }

# check WHAT: restart without faults; the fixture group's checks (unless
# the scenario works on objects of its own: FIXTURE=0), the scenario's own
# (EXTRA), and no 5xx for any request of the checks.
FIXTURE=1
EXTRA=""
check() {
  local what=$1 from
  stop_daemon
  start_daemon
  from=$(wc -l <"$TMP/daemon.log")
  [ "$FIXTURE" = 0 ] || check_fixture "$what"
  [ -z "$EXTRA" ] || "$EXTRA" "$what"
  if tail -n +"$from" "$TMP/daemon.log" | grep -E ' 5[0-9][0-9] [0-9.]+ms$' >&2; then
    fail "$what: a request answered 5xx without a fault"
  fi
}

check_fixture() {
  local what=$1 st az i p d
  api GET "$RCGS/$GID"
  st=$(jget "$G.status")
  az=$(jget "$G.priority_station")
  [[ "$st" =~ ^(available|failovered|error|error_reversing|error_failovering)$ ]] ||
    fail "$what: group stuck in '$st' after a restart"
  if [[ "$st" =~ ^error ]]; then
    # What an operator does after a failed step: sync heals it.
    group_action "$GID" "$SYNC"
    expect_status 200 "$what: sync of a group in error"
    wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive|error' 120
    api GET "$RCGS/$GID"
    st=$(jget "$G.status")
    expect_eq "$st" available "$what: a sync heals a group in error"
  fi
  if [ "$(jget "$G.replication_ids | length")" != 2 ]; then
    # A fault undid an update: the group lost R2; put it back (no faults now).
    group_action "$GID" "$PAUSE"
    api PUT "$RCGS/$GID" "{\"replication_consistency_group\": {\"add_replication_ids\": [\"$R2\"]}}"
    expect_status 202 "$what: add R2 back"
    wait_through "$RCGS/$GID" "$G.status" available updating 60
    api GET "$RCGS/$GID"
    st=$(jget "$G.status")
  fi
  if [ "$st" = failovered ]; then
    group_action "$GID" os-reprotect-replication-consistency-group
    expect_status 200 "$what: reprotect after a failover"
  fi
  group_action "$GID" "$SYNC"
  [[ "$STATUS" =~ ^200$ ]] || fail "$what: sync answered $STATUS: $BODY"
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive|error' 120
  api GET "$RCGS/$GID"
  az=$(jget "$G.priority_station")
  for i in 1 2; do
    if [ $i = 1 ]; then p=$P1 d=$D1; else p=$P2 d=$D2; fi
    api GET "$PAIRS/$([ $i = 1 ] && echo "$R1" || echo "$R2")"
    expect_eq "$(jget .replication.priority_station)" "$az" "$what: pair $i role agrees with the group"
    # Production is the disk in az; the other one must refuse writes.
    if [ "$(vol_az "$d")" = "$az" ]; then local t=$p; p=$d; d=$t; fi
    qemu-io -f raw -c 'write -P 0x11 900M 4k' "$(nbd_uri "$az" "$p")" >/dev/null 2>&1 ||
      fail "$what: production $p (in $az) refuses writes"
    if qemu-io -f raw -c 'write -P 0x22 900M 4k' "$(nbd_uri "$(vol_az "$d")" "$d")" >/dev/null 2>&1; then
      fail "$what: DR disk $d accepted a client write (two productions)"
    fi
    # qemu-img compare skips what both sides report as holes (fast on 1 GiB).
    qemu-img compare -q -f raw -F raw "$(nbd_uri "$az" "$p")" "$(nbd_uri "$(vol_az "$d")" "$d")" ||
      fail "$what: pair $i DR differs from production"
    for v in "$p" "$d"; do
      api GET "volumes/$v"
      expect_eq "$(nbd_size "$v")" "$(($(jget .volume.size) * 1024 * 1024 * 1024))" "$what: NBD size of $v equals its API size"
      [[ "$(jget .volume.status)" =~ ^(available|in-use)$ ]] || fail "$what: volume $v is $(jget .volume.status)"
    done
  done
  # Acknowledged before the scenarios: still there, whichever side leads.
  local u1 u2
  if [ "$(vol_az "$P1")" = "$az" ]; then u1=$(nbd_uri az1 "$P1"); else u1=$(nbd_uri "$az" "$D1"); fi
  if [ "$(vol_az "$P2")" = "$az" ]; then u2=$(nbd_uri az1 "$P2"); else u2=$(nbd_uri "$az" "$D2"); fi
  qemu-io -f raw -r -c 'read -P 0x5a 0 1M' "$u1" >/dev/null || fail "$what: P1's acknowledged data lost"
  qemu-io -f raw -r -c 'read -P 0x6b 4M 1M' "$u2" >/dev/null || fail "$what: P2's acknowledged data lost"
}

# scenario NAME RULE ACTION...: the fault loop. In RULE, @R3 and @G2 stand
# for the current ids of the spare pair and group (rules per row id). With
# EXTRA set, "$EXTRA WHAT" runs in check, on the same fault-free daemon.
scenario() {
  local name=$1 rule=$2 n hit r
  shift 2
  # EVSREP_FAULT_ONLY=ERE runs only the scenarios whose name matches.
  [[ "$name" =~ ^(${EVSREP_FAULT_ONLY:-.*})$ ]] || return 0
  POINTS=$((POINTS + 1))
  for n in $(seq 1 "$MAXN"); do
    stop_daemon
    r=${rule//@R3/@$R3}
    r=${r//@G2/@$G2}
    EVSREP_FAULT="$r=$n" start_daemon
    "$@"
    RUNS=$((RUNS + 1))
    hit=$(grep -c "fault injected" "$TMP/daemon.log" || true)
    log "$name: $rule=$n (action HTTP $STATUS)"
    check "$name $rule=$n"
    [ "$FAILS" -eq 0 ] || die "$name $rule=$n failed; daemon log kept in $TMP"
    mv "$TMP/daemon.log" "$TMP/daemon.log.old"
    [ "$hit" -gt 0 ] || break
  done
}

do_reverse() { group_action "$GID" os-reverse-replication-consistency-group; }
do_failover() { group_action "$GID" os-failover-replication-consistency-group; }
do_pause() { group_action "$GID" "$PAUSE"; }
do_extend() {
  api GET "volumes/$P1"
  local sz
  sz=$(jget .volume.size)
  group_action "$GID" os-extend-replication-volumes "{\"replications\": [{\"id\": \"$R1\", \"new_size\": $((sz + 1))}]}"
}
settled() { # the group leaves updating (available, or error after a fault)
  local st=""
  for _ in $(seq 1 300); do
    api GET "$RCGS/$GID"
    st=$(jget "$G.status")
    [[ "$st" =~ ^(available|error)$ ]] && return 0
    [ "$st" = updating ] || { fail "update: group went to '$st'"; return 1; }
    sleep 0.1
  done
  fail "update: group stuck in '$st'"
}
do_update() { # remove R2 and add it back (group paused first)
  group_action "$GID" "$PAUSE"
  api PUT "$RCGS/$GID" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"$R2\"]}}"
  settled
  api PUT "$RCGS/$GID" "{\"replication_consistency_group\": {\"add_replication_ids\": [\"$R2\"]}}"
  settled
}

# ---- objects of their own: group create, pair delete, group delete ----

# settle PATH JQ FINAL_ERE: poll until PATH is 404 (prints "gone") or the
# value matches FINAL_ERE (prints it); anything but a transitional status
# on the way fails.
settle() {
  local path=$1 filter=$2 final=$3 got=""
  for _ in $(seq 1 300); do
    api GET "$path"
    if [ "$STATUS" = 404 ]; then echo gone; return 0; fi
    got=$(jget "$filter")
    if [[ "$got" =~ ^($final)$ ]]; then echo "$got"; return 0; fi
    [[ "$got" =~ ^(creating|deleting|updating)$ ]] || { fail "$path: went to '$got'"; echo "$got"; return 1; }
    sleep 0.1
  done
  fail "$path: stuck in '$got'"
  echo "$got"
}
spare_pair() { # R3 = a pair P3 -> D3 in no group, replicating
  if [ -n "$R3" ]; then api GET "$PAIRS/$R3"; [ "$STATUS" = 200 ] && return 0; fi
  R3=$(create_pair "$P3" "$D3" fr3)
  wait_pair_active "$R3"
}
spare_group() { # G2 = an empty group, available
  spare_pair
  G2=$(create_group spare "$R3")
  group_action "$G2" "$PAUSE"
  api PUT "$RCGS/$G2" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"$R3\"]}}"
  expect_status 202 "spare group: remove R3"
  [ "$(settle "$RCGS/$G2" "$G.status" available)" = available ] || die "spare group not available"
}
# R3's production (P3) holds what was acknowledged; D3 refuses writes while
# the pair exists; after a sync of its group D3 equals P3.
check_spare_data() {
  local what=$1
  qemu-io -f raw -r -c 'read -P 0x7c 2M 1M' "$(nbd_uri az1 "$P3")" >/dev/null ||
    fail "$what: P3's acknowledged data lost"
}

do_gcreate() { # R3 exists (made before the loop, kept by check_gcreate)
  api POST "$RCGS" "{\"replication_consistency_group\":{\"name\":\"g2\",\"replication_ids\":[\"$R3\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  [[ "$STATUS" =~ ^(202|500|503)$ ]] || fail "group create answered $STATUS: $BODY"
  G2=""
  if [ "$STATUS" = 202 ]; then
    G2=$(jget "$G.id")
    # The call returns when the engine step is recorded: no "creating" left.
    api GET "$RCGS/$G2"
    [[ "$(jget "$G.status")" =~ ^(available|error)$ ]] || fail "group create left '$(jget "$G.status")'"
  fi
}
check_gcreate() { # the group holds R3 consistently, or never existed
  local what=$1 st
  check_spare_data "$what"
  api GET "$PAIRS/$R3"
  local gid
  gid=$(jget '.replication.replication_consistency_group_id // empty' 2>/dev/null || true)
  [ -n "$G2" ] || G2=$gid
  [ -z "$G2" ] && return 0
  st=$(settle "$RCGS/$G2" "$G.status" 'available|error')
  [ "$st" = gone ] && { fail "$what: group $G2 vanished"; return; }
  group_action "$G2" "$SYNC"
  expect_status 200 "$what: sync of the new group ($st)"
  wait_through "$RCGS/$G2" "$G.replication_status" active 'copying|active-stopped|inactive|error' 120
  expect_eq "$(settle "$RCGS/$G2" "$G.status" available)" available "$what: the new group heals"
  qemu-img compare -q -f raw -F raw "$(nbd_uri az1 "$P3")" "$(nbd_uri az2 "$D3")" ||
    fail "$what: R3's DR differs from production"
  # Undo: the group goes (no faults now), R3 stays in no group.
  group_action "$G2" "$PAUSE"
  api PUT "$RCGS/$G2" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"$R3\"]}}"
  expect_status 202 "$what: remove R3"
  settle "$RCGS/$G2" "$G.status" available >/dev/null
  api DELETE "$RCGS/$G2"
  expect_status 202 "$what: delete the new group"
  G2=""
}

do_pdelete() {
  api DELETE "$PAIRS/$R3"
  [[ "$STATUS" =~ ^(202|500|503)$ ]] || fail "pair delete answered $STATUS: $BODY"
  settle "$PAIRS/$R3" .replication.status 'available|error|error_deleting' >/dev/null
}
check_pdelete() { # gone (D3 writable again), or a DELETE finishes it
  local what=$1 st
  check_spare_data "$what"
  st=$(settle "$PAIRS/$R3" .replication.status 'available|error|error_deleting')
  if [ "$st" != gone ]; then
    api DELETE "$PAIRS/$R3"
    expect_status 202 "$what: DELETE of a pair left '$st'"
    expect_eq "$(settle "$PAIRS/$R3" .replication.status 'available|error|error_deleting')" gone \
      "$what: a second DELETE removes the pair"
  fi
  # The delete makes D3 writable before the row goes: on one node itself,
  # across two nodes by asking the DR node to release it first
  # (docs/design/multi-site.md "Remote DR links", Delete). So once the API
  # says gone, D3 takes writes at once.
  qemu-io -f raw -c 'write -P 0x7c 2M 4k' "$(nbd_uri az2 "$D3")" >/dev/null 2>&1 ||
    fail "$what: D3 stays read-only after its pair is gone"
  R3=""
  spare_pair # for the next run, made without faults
}

do_gdelete() {
  local st
  api DELETE "$RCGS/$G2"
  [[ "$STATUS" =~ ^(202|500|503)$ ]] || fail "group delete answered $STATUS: $BODY"
  st=$(settle "$RCGS/$G2" "$G.status" 'available|error|error_deleting')
  if [ "$st" != gone ]; then # the way out, on the daemon that failed
    api DELETE "$RCGS/$G2"
    expect_status 202 "group delete: DELETE of a group left '$st'"
  fi
}
check_gdelete() {
  local what=$1 st
  st=$(settle "$RCGS/$G2" "$G.status" 'available|error|error_deleting')
  if [ "$st" != gone ]; then
    api DELETE "$RCGS/$G2"
    expect_status 202 "$what: DELETE of a group left '$st' (after a restart)"
    expect_eq "$(settle "$RCGS/$G2" "$G.status" 'available|error|error_deleting')" gone "$what: deleted"
  fi
  spare_group
}

# ---- group sync: a write while paused, then sync ----
prod1_uri() { # pair 1's production disk, whichever side leads now
  api GET "$RCGS/$GID"
  if [ "$(vol_az "$P1")" = "$(jget "$G.priority_station")" ]; then nbd_uri az1 "$P1"; else nbd_uri az2 "$D1"; fi
}
do_gsync() {
  local u
  group_action "$GID" "$PAUSE"
  u=$(prod1_uri)
  # With a meta fault the write may fail (its dirty bit could not be made
  # durable, so it is not acknowledged); only an acknowledged one must stay.
  ACKED=0
  qemu-io -f raw -c "write -P 0x3d 8M 64k" -c flush "$u" >/dev/null 2>&1 && ACKED=1
  group_action "$GID" "$SYNC"
}
check_gsync() {
  [ "$ACKED" = 1 ] || return 0
  qemu-io -f raw -r -c 'read -P 0x3d 8M 64k' "$(prod1_uri)" >/dev/null ||
    fail "$1: the write acknowledged before the sync is lost"
}

scenario reverse store_commit do_reverse
scenario reverse store_busy do_reverse
scenario failover store_commit do_failover
scenario reverse-meta meta_bits do_reverse
scenario failover-meta meta_al do_failover
scenario pause store_commit do_pause
scenario extend store_commit do_extend
scenario extend vol_grow do_extend
scenario update store_commit do_update
EXTRA=check_gsync
scenario sync store_commit do_gsync
# Objects of their own: the fixture group is not touched.
FIXTURE=0
spare_pair
EXTRA=check_gcreate
scenario gcreate store_commit do_gcreate
EXTRA=check_pdelete
scenario pdelete store_write@R3 do_pdelete
spare_group
EXTRA=check_gdelete
scenario gdelete store_write@G2 do_gdelete
log "fault-injection driver: $POINTS scenario/point combinations, $RUNS runs"
finish
