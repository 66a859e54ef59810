#!/usr/bin/env bash
# DR drill on a clone (os-evsrep-clone-replication-consistency-group, evsrep
# extension; api.md §4.7, design: docs/design/replication.md "DR drill on a
# clone"), black box with real NBD clients, on a 2-pair group of 1 GiB
# volumes (az1 production, az2 DR):
#  1. clone while active: the clones hold exactly the production data of the
#     drill instant (writes made after the answer are not in them, though
#     they reach DR during the copy: copy-before-write), replication stays
#     active throughout (polled), DR == production afterwards; the clones are
#     listed, carry their origin in metadata, are writable through an
#     attachment without changing DR or production, and can be deleted;
#  2. clone while paused (CLI, --wait): the clones hold the frozen image
#     although production moved on and a sync rewrites DR during the copy;
#  3. refusals: a second clone while one is copying (409), a bad body (400),
#     quota (413, nothing left behind), a failed-over group (409);
#  4. a daemon killed during a copy: the clone is error after the restart,
#     DR and production intact.
# The copy of the first member is slowed (fault rule clone_work@<DR 1>~USEC
# per chunk) so that writes land while it runs; the reflink attempt is
# forced to fail (clone_link) so the copy path is what is tested on every
# file system. When the test
# directory can reflink, the reflink path is checked too (section 5).
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
require_fault_injection
CLI=$EVSREP_BUILD/evsrep
M=$((1024 * 1024))
G=.replication_consistency_group
SYNC=os-sync-replication-consistency-group
PAUSE=os-stop-replication-consistency-group
FAILOVER=os-failover-replication-consistency-group
CLONE=os-evsrep-clone-replication-consistency-group
T0=$SECONDS
step() { log "=== $* (t=$((SECONDS - T0))s)"; }
# Checks that record a failure and go on (lib.sh's return 1 under set -e).
chk_eq() { expect_eq "$@" || true; }
chk_st() { expect_status "$@" || true; }
FAULTS="clone_link=1+"

# CLONE_TEST_DIR: keep the daemon's data there (e.g. a file system with
# reflink, to test that path too; /tmp is usually ext4 or tmpfs).
if [ -n "${CLONE_TEST_DIR:-}" ]; then
  DATA=$(mktemp -d "$CLONE_TEST_DIR/evsrep-clone-data.XXXXXX")
  clone_cleanup() { # lib.sh's cleanup, then the data dir when the test passed
    local rc=$?
    if [ $rc -eq 0 ]; then
      cleanup
      rm -rf "$DATA"
    else
      (exit $rc) || cleanup # cleanup reads the status from $?
    fi
  }
  trap clone_cleanup EXIT
fi
# Tokens before the first start: the tenant and an operator (quota changes).
mkdir -p "$DATA"
TT=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
OT=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
PJ=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
printf "%s %s\n%s %s operator\n" "$TT" "$PJ" "$OT" "operators" >"$DATA/tokens"
chmod 600 "$DATA/tokens"
EVSREP_FAULT=$FAULTS start_daemon
asop() { TOKEN=$OT PROJECT=operators api "$@"; }

declare -a P D U1 U2 PR PB FZ KB RX
for i in 1 2; do
  P[i]=$(create_volume az1 1 "prod$i")
  D[i]=$(create_volume az2 1 "dr$i")
  PR[i]=$(create_pair "${P[i]}" "${D[i]}" "pair$i")
done
for i in 1 2; do wait_pair_active "${PR[i]}"; done
# The worker copies the members in order (pair 1 first): hold it back on
# DR 1 (every chunk it copies there waits), so that writes to pair 2 made
# after a clone's answer reach DR 2 before the worker does, which makes the
# copy-before-write path certain (evsrep_clone_preserved_chunks_total).
FAULTS="clone_link=1+;clone_work@${D[1]}~${CLONE_WORK_DELAY_USEC:-1200000}"
stop_daemon
EVSREP_FAULT=$FAULTS start_daemon
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT # the CLI's settings
GID=$(create_group drill "${PR[1]}" "${PR[2]}")
group_action "$GID" "$SYNC"
expect_status 200 "sync" || die "sync failed"
wait_field "$RCGS/$GID" "$G.replication_status" active 60 || die "group not active"
for i in 1 2; do
  U1[i]=$(nbd_uri az1 "${P[i]}")
  U2[i]=$(nbd_uri az2 "${D[i]}")
done

# w URI PATTERN OFFSET LEN: qemu-io write.
w() { qemu-io -f raw -c "write -P $2 $3 $4" "$1" >/dev/null || fail "write $2 at $3 to $1"; }
# img URI FILE: the whole export into FILE.
img() { nbdcopy -- "$1" "$2" || fail "nbdcopy $1"; }
# same FILE_A FILE_B WHAT: equal bytes (sparse-aware: 1 GiB disks, little data).
SCMP=$(dirname "$0")/sparse_cmp.py
same() {
  local out
  out=$(python3 "$SCMP" "$1" "$2") || fail "$3: $out"
}
# wsum URI: sha256 of the windows that hold every byte this test writes
# (the rest of each 1 GiB disk is never written): cheap byte checks, where a
# whole-disk read would cost seconds (the server has no block status).
# Whole-disk comparisons are made where the clone's content is the point.
NBD_RAW=$(dirname "$0")/../tools/nbd_raw.py
WINDOWS="0 $((4 * M)) $((10 * M)) $((4 * M)) $((300 * M)) $M $((700 * M)) $M $((900 * M)) $M"
wsum() {
  local rest=${1#nbd://} out
  # shellcheck disable=SC2086
  out=$(python3 "$NBD_RAW" "${rest%%/*}" "${rest#*/}" sha256 $WINDOWS) || true
  [[ "$out" =~ ^sha256:\ [0-9a-f]{64}$ ]] || { fail "wsum $1: $out"; out="failed-$RANDOM$RANDOM"; }
  printf '%s\n' "${out#sha256: }"
}
# ncmp URI_A URI_B WHAT: two exports hold the same bytes (in the windows).
ncmp() { chk_eq "$(wsum "$1")" "$(wsum "$2")" "$3"; }
gstat() { api GET "$RCGS/$GID"; jget "$G.replication_status"; }
# clone_vols: ids of the volumes in the last clone answer (BODY).
clone_vols() { jget '.clone.volumes[].id'; }

# poll_clones WHAT REPL IDS...: poll until every clone is available; each
# round the group's replication_status must be REPL (when not empty).
poll_clones() {
  local what=$1 repl=$2 id st n end=$((SECONDS + 60))
  shift 2
  while [ $SECONDS -lt $end ]; do
    n=0
    for id in "$@"; do
      api GET "volumes/$id"
      st=$(jget .volume.status)
      case "$st" in
        available) n=$((n + 1)) ;;
        creating) ;;
        *) fail "$what: clone $id is $st: $(jget .volume.error_message)"; return 1 ;;
      esac
    done
    if [ -n "$repl" ]; then
      st=$(gstat)
      [ "$st" = "$repl" ] || fail "$what: group replication_status $st during the copy (want $repl)"
    fi
    [ $n -eq $# ] && return 0
    sleep 0.05
  done
  fail "$what: clones not available in time"
  return 1
}

# ---------------------------------------------------------------------------
step "1. clone while active"
w "${U1[1]}" 0xa1 0 2M
w "${U1[1]}" 0xa2 $((300 * M)) 1M
w "${U1[2]}" 0xb1 $((10 * M)) 3M
for i in 1 2; do img "${U1[i]}" "$TMP/exp$i"; done

api GET "volumes/detail"
NVOL0=$(jget '.volumes | length')
group_action "$GID" "$CLONE" '{"name_prefix": "drill1"}'
expect_status 202 "clone while active" || die "clone refused: $BODY"
chk_eq "$(jget .clone.source)" active "clone source"
chk_eq "$(jget '.clone.volumes | length')" 2 "one clone per member"
chk_eq "$(jget '[.clone.volumes[].method] | unique | join(",")')" copy "method (reflink forced off)"
chk_eq "$(jget '[.clone.volumes[].availability_zone] | unique | join(",")')" az2 "clones in the DR zone"
INSTANT=$(jget .clone.instant)
mapfile -t C < <(clone_vols)
declare -A SRC
for k in 0 1; do SRC[${C[k]}]=$(jget ".clone.volumes[$k].source_volume_id"); done
# The worker copies volume 1 (slowed), then volume 2: volume 2 is still
# creating, with a progress figure.
C2ID=${C[1]}
api GET "volumes/$C2ID"
chk_eq "$(jget .volume.status)" creating "second clone right after the answer"
[[ "$(jget '.volume.progress // empty')" =~ ^[0-9]+$ ]] || fail "no progress while creating: $BODY"
# A second clone while the first is copying: 409.
group_action "$GID" "$CLONE"
if [ "$STATUS" = 202 ]; then
  die "second clone while the first copies: 202 (want 409; was the copy already done?)"
else
  chk_st 409 "second clone while copying"
  grep -q "still being copied" <<<"$BODY" || fail "409 does not say why: $BODY"
fi
# Writes after the answer, over the cloned data and elsewhere: they reach
# DR (replication active) while the copy is still running (the worker does
# volume 1 first, so volume 2's chunks are preserved by copy-before-write).
qemu-io -f raw -c "write -P 0xc3 $((11 * M)) 1M" -c "write -P 0xc4 $((700 * M)) 1M" "${U1[2]}" >/dev/null ||
  fail "writes to production 2 after the clone"
qemu-io -f raw -c "write -P 0xc1 0 1M" -c "write -P 0xc2 $((300 * M)) 4k" "${U1[1]}" >/dev/null ||
  fail "writes to production 1 after the clone"

poll_clones "active clone" active "${C[@]}"
# Metrics: the writes above reached DR while the copy ran, so chunks were
# preserved by copy-before-write (not merely copied by the worker).
api GET /metrics
/usr/bin/python3 "$(dirname "$0")/metrics_check.py" "$TMP/b" || fail "metrics: not valid Prometheus text"
m() { awk -v n="$1" '$1 == n {print $2}' <<<"$BODY"; }
chk_eq "$(m evsrep_clones_total)" 2 "evsrep_clones_total"
chk_eq "$(m evsrep_clones_copying)" 0 "evsrep_clones_copying after the copy"
[ "$(m evsrep_clone_preserved_chunks_total)" -ge 1 ] 2>/dev/null ||
  fail "no chunk preserved by copy-before-write: $(m evsrep_clone_preserved_chunks_total)"
[ "$(m evsrep_clone_copied_bytes_total)" -ge $((6 * M)) ] 2>/dev/null ||
  fail "evsrep_clone_copied_bytes_total $(m evsrep_clone_copied_bytes_total) < the 6 MiB of data"
chk_eq "$(gstat)" active "replication after the clone"

for k in 0 1; do
  id=${C[k]}
  api GET "volumes/$id"
  chk_eq "$(jget .volume.metadata.evsrep_clone_group)" "$GID" "metadata group of $id"
  chk_eq "$(jget .volume.metadata.evsrep_clone_instant)" "$INSTANT" "metadata instant of $id"
  chk_eq "$(jget .volume.metadata.evsrep_clone_source_volume)" "${SRC[$id]}" "metadata source of $id"
  chk_eq "$(jget .volume.availability_zone)" az2 "zone of $id"
  chk_eq "$(jget .volume.size)" 1 "size of $id"
  grep -q '^drill1-dr' <<<"$(jget .volume.name)" || fail "name of $id: $(jget .volume.name)"
done
# Which clone is whose: by source volume.
for k in 0 1; do
  [ "${SRC[${C[k]}]}" = "${D[1]}" ] && CL1=${C[k]}
  [ "${SRC[${C[k]}]}" = "${D[2]}" ] && CL2=${C[k]}
done
CU1=$(nbd_uri az2 "$CL1")
CU2=$(nbd_uri az2 "$CL2")
img "$CU1" "$TMP/c1"
img "$CU2" "$TMP/c2"
same "$TMP/c1" "$TMP/exp1" "clone 1 == production 1 at the drill instant"
same "$TMP/c2" "$TMP/exp2" "clone 2 == production 2 at the drill instant"
for i in 1 2; do ncmp "${U1[i]}" "${U2[i]}" "DR $i == production $i after the clone"; done

api GET "volumes/detail"
chk_eq "$(jget '.volumes | length')" $((NVOL0 + 2)) "clones in the volume list"
jq -e --arg a "$CL1" --arg b "$CL2" '[.volumes[].id] | index($a) and index($b)' <<<"$BODY" >/dev/null ||
  fail "clones missing from the volume list"

# Writable through an attachment; DR and production do not change.
for i in 1 2; do PB[i]=$(wsum "${U1[i]}"); done
w "$CU1" 0xee 0 1M
w "$CU1" 0xef $((900 * M)) 64k
qemu-io -f raw -c "read -P 0xee 0 1M" "$CU1" | grep -q "read 1048576" || fail "clone does not read back its write"
for i in 1 2; do
  chk_eq "$(wsum "${U1[i]}")" "${PB[i]}" "production $i unchanged by writes to the clone"
  ncmp "${U1[i]}" "${U2[i]}" "DR $i == production $i after writes to the clone"
done
chk_eq "$(gstat)" active "replication after writing the clone"

# ---------------------------------------------------------------------------
step "2. clone while paused (CLI --wait), sync during the copy"
group_action "$GID" "$PAUSE"
chk_st 200 "pause"
api GET "$RCGS/$GID"
FROZEN=$(jget "$G.frozen_at")
for i in 1 2; do FZ[i]=$(wsum "${U1[i]}"); done
w "${U1[1]}" 0xd1 0 2M          # tracked: DR keeps the frozen image
w "${U1[2]}" 0xd2 $((10 * M)) 2M
RC=0
"$CLI" group clone "$GID" --prefix drill2 -o json >"$TMP/cli.json" 2>"$TMP/cli.err" || RC=$?
chk_eq "$RC" 0 "evsrep group clone exit code"
chk_eq "$(jq -r .clone.source "$TMP/cli.json")" frozen "clone while paused: source"
chk_eq "$(jq -r .clone.instant "$TMP/cli.json")" "$FROZEN" "clone while paused: instant == frozen_at"
mapfile -t C2 < <(jq -r '.clone.volumes[].id' "$TMP/cli.json")
group_action "$GID" "$SYNC"
chk_st 200 "sync during the paused clone's copy"
poll_clones "paused clone" "" "${C2[@]}"
for k in 0 1; do
  src=$(jq -r ".clone.volumes[$k].source_volume_id" "$TMP/cli.json")
  i=1; [ "$src" = "${D[2]}" ] && i=2
  chk_eq "$(wsum "$(nbd_uri az2 "${C2[k]}")")" "${FZ[i]}" "paused clone of DR $i == the frozen image"
done
wait_field "$RCGS/$GID" "$G.replication_status" active 60
for i in 1 2; do ncmp "${U1[i]}" "${U2[i]}" "DR $i == production $i after sync"; done
"$CLI" group clone "$GID" --prefix drill3 --wait >"$TMP/cli.out" 2>&1 || fail "CLI clone --wait: $(cat "$TMP/cli.out")"
grep -q "available" "$TMP/cli.out" || fail "CLI clone --wait output: $(cat "$TMP/cli.out")"
grep -q "copying .*%" "$TMP/cli.out" || fail "CLI clone --wait shows no progress: $(cat "$TMP/cli.out")"

# ---------------------------------------------------------------------------
step "3. refusals"
group_action "$GID" "$CLONE" '{"name_prefix": 7}'
chk_st 400 "name_prefix not a string"
group_action "$GID" "$CLONE" '"x"'
chk_st 400 "value not null nor an object"
group_action "$GID" "$CLONE" '{"bogus": 1}'
chk_st 400 "unknown member"
api POST "$RCGS/6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10/action" "{\"$CLONE\": null}"
chk_st 404 "clone of no such group"
# Deleting a clone is an ordinary delete.
api DELETE "volumes/$CL2"
chk_st 202 "delete a clone"
wait_gone "volumes/$CL2"
# Quota: room for one more volume, the clone needs two.
api GET "os-quota-sets/$PROJECT?usage=true"
INUSE=$(jget .quota_set.volumes.in_use)
asop PUT "os-quota-sets/$PROJECT" "{\"quota_set\": {\"volumes\": $((INUSE + 1))}}"
chk_st 200 "operator sets the quota"
group_action "$GID" "$CLONE"
chk_st 413 "clone over the volumes quota"
api GET "os-quota-sets/$PROJECT?usage=true"
chk_eq "$(jget .quota_set.volumes.in_use)" "$INUSE" "a refused clone leaves no volume"
asop PUT "os-quota-sets/$PROJECT" '{"quota_set": {"volumes": 1000}}'

# ---------------------------------------------------------------------------
step "4. daemon killed during a copy"
for i in 1 2; do KB[i]=$(wsum "${U1[i]}"); done
group_action "$GID" "$CLONE" '{"name_prefix": "killed"}'
expect_status 202 "clone before the kill" || die "clone refused: $BODY"
mapfile -t CK < <(clone_vols)
crash_daemon # the worker copies the first clone (slowed): the second is not done
EVSREP_FAULT=$FAULTS start_daemon
rm -f "$TMP"/attach.* # new ports; attachments persist but the files hold exports only
for i in 1 2; do
  U1[i]=$(nbd_uri az1 "${P[i]}")
  U2[i]=$(nbd_uri az2 "${D[i]}")
done
api GET "volumes/${CK[1]}"
chk_eq "$(jget .volume.status)" error "second clone, interrupted by the kill"
for id in "${CK[@]}"; do
  api GET "volumes/$id"
  st=$(jget .volume.status)
  # A clone whose copy was done before the kill stays available.
  if [ "$st" != available ]; then
    chk_eq "$st" error "interrupted clone $id after restart"
    grep -q "interrupted" <<<"$(jget .volume.error_message)" || fail "no reason: $BODY"
    api DELETE "volumes/$id"
    chk_st 202 "delete an interrupted clone"
  fi
done
wait_field "$RCGS/$GID" "$G.replication_status" active 60
for i in 1 2; do
  chk_eq "$(wsum "${U1[i]}")" "${KB[i]}" "production $i intact after the kill"
  ncmp "${U1[i]}" "${U2[i]}" "DR $i == production $i after the kill"
done

# ---------------------------------------------------------------------------
if cp --reflink=always "$DATA/tokens" "$DATA/reflink.probe" 2>/dev/null; then
  rm -f "$DATA/reflink.probe"
  step "5. reflink (the file system has it): the clone is complete in the answer"
  stop_daemon
  start_daemon # no fault rules: reflink is tried
  rm -f "$TMP"/attach.*
  for i in 1 2; do U1[i]=$(nbd_uri az1 "${P[i]}"); done
  wait_field "$RCGS/$GID" "$G.replication_status" active 60
  for i in 1 2; do RX[i]=$(wsum "${U1[i]}"); done
  group_action "$GID" "$CLONE" '{"name_prefix": "reflinked"}'
  chk_st 202 "reflink clone"
  chk_eq "$(jget '[.clone.volumes[].method] | unique | join(",")')" reflink "method"
  chk_eq "$(jget '[.clone.volumes[].status] | unique | join(",")')" available "status in the answer"
  mapfile -t CR < <(clone_vols)
  mapfile -t CRS < <(jget '.clone.volumes[].source_volume_id')
  w "${U1[1]}" 0x5a 0 1M
  w "${U1[2]}" 0x5b $((10 * M)) 1M
  for k in 0 1; do
    i=1; [ "${CRS[k]}" = "${D[2]}" ] && i=2
    chk_eq "$(wsum "$(nbd_uri az2 "${CR[k]}")")" "${RX[i]}" "reflinked clone of DR $i == production $i at the instant"
  done
  for i in 1 2; do ncmp "${U1[i]}" "$(nbd_uri az2 "${D[i]}")" "DR $i == production $i after the reflink clone"; done
  chk_eq "$(gstat)" active "replication after the reflink clone"
else
  log "the test directory has no reflink ($(stat -f -c %T "$DATA")): the copy path is the one tested"
fi

# ---------------------------------------------------------------------------
step "6. failed-over group: 409"
group_action "$GID" "$FAILOVER"
chk_st 200 "failover"
group_action "$GID" "$CLONE"
chk_st 409 "clone of a failed-over group"
grep -q "failovered" <<<"$BODY" || fail "409 does not name the status: $BODY"

finish
