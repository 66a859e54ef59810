#!/usr/bin/env bash
# shellcheck disable=SC2119
# Disaster-recovery actions of a replication consistency group (api.md groups
# section; semantics.md group actions table, access rules, faults), black box,
# with real NBD clients and checksums at every step, on a 2-pair group of
# 1 GiB volumes (az1 production, az2 DR):
#  1. the full DR cycle: reverse, write on the new production, reverse back,
#     pause, failover (old production fenced read-only), reprotect;
#  2. reprotect resyncs exactly the union of the chunks written on the old
#     production after the pause and on the new one after the failover
#     (bytes_copied delta, whole-disk equality);
#  3. every 409 of the DR actions (non-empty message, state unchanged);
#  4. failover while copying (forced: slow DR writes), then reprotect;
#  7. kill -9 during reverse (forced: slow flushes) and during reprotect,
#     then recovery;
#  5. extend (both request shapes, sizes, NBD sizes, old data intact, new space
#     zero and mirrored, errors 400/404/409);
#  6. a production disk file deleted: fault_level "2", failover still works.
# Every action must answer exactly 200 with an empty body.
# Two-node mode (EVSREP_TEST_NODES=2, lib_cluster.sh: az1 on node a, az2 on
# node b): the slowed-disk fault rules go to the node holding that disk
# (EVSREP_FAULT_AZ), each kill -9 hits the node carrying out the action (the
# production node: crash_az), and the DR sleeps are longer (below).
. "$(dirname "$0")/lib.sh"

M=$((1024 * 1024))
GIB=$((1024 * M))
CHUNK=$((64 * 1024))
G=.replication_consistency_group
SYNC=os-sync-replication-consistency-group
PAUSE=os-stop-replication-consistency-group
REVERSE=os-reverse-replication-consistency-group
FAILOVER=os-failover-replication-consistency-group
REPROTECT=os-reprotect-replication-consistency-group
EXTEND=os-extend-replication-volumes
NOSUCH=6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10
RO_RE='Operation not permitted|Permission denied|read-only|read only'
T0=$SECONDS
# A slow DR disk: every write to it sleeps SLOW_US. On one node the resync
# writes 1 MiB pieces one at a time, so 64 MiB take > 1 s at 20 ms. Across
# two nodes it sends 16 pieces of 256 KiB at once over the link, and the
# DR node's sleeps overlap: 200 ms per write keeps 64 MiB at > 3 s.
SLOW_US=20000
[ "${EVSREP_TEST_NODES:-1}" = 2 ] && SLOW_US=200000

declare -a P D R U1 U2
PROD_AZ=az1 # AZ of the current production side (the test's own model)

# --- small helpers -----------------------------------------------------------

chk_eq() { expect_eq "$@" || true; }
step() { log "=== $* (t=$((SECONDS - T0))s)"; }

# uris: recompute every NBD URI (ports change across restarts).
uris() {
  local i
  for i in 1 2; do
    U1[i]=$(nbd_uri az1 "${P[i]}")
    U2[i]=$(nbd_uri az2 "${D[i]}")
  done
}
other_az() { if [ "$1" = az1 ]; then echo az2; else echo az1; fi; }
# uri_of AZ I / vol_of AZ I: the az1 or az2 side of pair I.
uri_of() { if [ "$1" = az1 ]; then echo "${U1[$2]}"; else echo "${U2[$2]}"; fi; }
vol_of() { if [ "$1" = az1 ]; then echo "${P[$2]}"; else echo "${D[$2]}"; fi; }
prod_uri() { uri_of "$PROD_AZ" "$1"; }
dr_uri() { uri_of "$(other_az "$PROD_AZ")" "$1"; }

gget() { api GET "$RCGS/$GID"; jget "$G.$1"; }
pget() { api GET "$PAIRS/$1"; jget ".replication.$2"; }

# act KEY [VALUE] WHAT: a group action that must answer exactly 200 with an
# empty body; anything else is fatal (every later step depends on it).
act() {
  local key=$1 val=$2 what=$3
  group_action "$GID" "$key" "$val"
  [ "$STATUS" = 200 ] || die "$what: want HTTP 200, got $STATUS: $BODY"
  [ -z "$BODY" ] || fail "$what: 200 with a non-empty body: $BODY"
}
# expect_409 WHAT: 409 with {error:{code,message}} and a non-empty message.
expect_409() {
  expect_status 409 "$1" || return 0
  jq -e '.error.code and (.error.message | type == "string" and length > 0)' <<<"$BODY" >/dev/null ||
    fail "$1: 409 without a non-empty error message: $BODY"
  log "  409 for $1: $(jget .error.message)"
}
expect_400() {
  expect_status 400 "$1" || return 0
  jq -e '.error.message | type == "string" and length > 0' <<<"$BODY" >/dev/null ||
    fail "$1: 400 without a non-empty error message: $BODY"
}

# expect_group STATUS REPL PRIO WHAT: the group and both pairs, right now.
expect_group() {
  local st=$1 rs=$2 prio=$3 what=$4 i
  api GET "$RCGS/$GID"
  chk_eq "$(jget "$G.status")" "$st" "$what: group status"
  chk_eq "$(jget "$G.replication_status")" "$rs" "$what: group replication_status"
  chk_eq "$(jget "$G.priority_station")" "$prio" "$what: group priority_station"
  for i in 1 2; do
    api GET "$PAIRS/${R[i]}"
    chk_eq "$(jget .replication.priority_station)" "$prio" "$what: pair $i priority_station"
    chk_eq "$(jget .replication.replication_status)" "$rs" "$what: pair $i replication_status"
    chk_eq "$(jget .replication.volume_ids)" "${P[i]},${D[i]}" "$what: pair $i volume_ids (order never changes)"
  done
}

# expect_ro VOLUME WANT WHAT: connection_info.data.read_only of a volume.
expect_ro() {
  api POST "volumes/$1/action" '{"os-initialize_connection": {"connector": {}}}'
  expect_status 200 "$3: os-initialize_connection" || return 0
  chk_eq "$(jget .connection_info.data.read_only)" "$2" "$3: connection_info read_only"
}

# qw URI PATTERN OFFSET LENGTH WHAT: a qemu-io write that must succeed.
qw() {
  local out rc=0
  out=$(qemu-io -f raw -c "write -P $2 $3 $4" "$1" 2>&1) || rc=$?
  if [ $rc -ne 0 ] || grep -qiE 'fail|error|denied|not permitted' <<<"$out"; then
    fail "$5: write $2 at $3+$4 on $1 failed (rc $rc): $out"
    return 1
  fi
}
# qr URI PATTERN OFFSET LENGTH WHAT: read back a pattern (read-only open).
qr() {
  local out rc=0
  out=$(qemu-io -r -f raw -c "read -P $2 $3 $4" "$1" 2>&1) || rc=$?
  if [ $rc -ne 0 ] || grep -qiE 'fail|error|mismatch' <<<"$out"; then
    fail "$5: read -P $2 at $3+$4 on $1 (rc $rc): $(head -c 300 <<<"$out")"
    return 1
  fi
}
# qrefused URI OFFSET WHAT: a write must be refused (read-only export).
qrefused() {
  local out rc=0
  out=$(qemu-io -f raw -c "write -P 0xee $2 4k" "$1" 2>&1) || rc=$?
  if ! grep -qiE "$RO_RE" <<<"$out"; then
    fail "$3: write at $2 on $1 was not refused as read-only (rc $rc): $out"
    return 1
  fi
}

# mark FILE OFFSET LENGTH: record the 64 KiB chunks a write touches.
mark() {
  local c
  for c in $(seq $(($2 / CHUNK)) $((($2 + $3 - 1) / CHUNK))); do echo "$c" >>"$1"; done
}
# qwm I URI PATTERN OFFSET LENGTH WHAT: write and mark the chunks of pair I.
qwm() {
  qw "$2" "$3" "$4" "$5" "$6" || true
  mark "$TMP/chunks.$1" "$4" "$5"
}

bytes_copied() { gget bytes_copied; }

# Whole-disk comparisons are the bulk of the runtime (pipes and hole reads are
# slow on small VMs), so: equality of two exports with qemu-img compare (both
# read in one process; the two pairs in parallel), and checksums from sparse
# nbdcopy images, hashing only their data extents (holes are zeros): sha256
# over (offset, block) of every non-zero 64 KiB block, plus the size. Equal
# signature <=> equal bytes.
cat >"$TMP/sig.py" <<'PY'
import hashlib, os, sys
B = 65536
Z = bytes(B)
out = []
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    h = hashlib.sha256()
    off = 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        e = os.lseek(fd, d, os.SEEK_HOLE)
        d -= d % B
        while d < e:
            b = os.pread(fd, B, d)
            if b != Z[:len(b)]:
                h.update(d.to_bytes(8, "little"))
                h.update(b)
            d += B
        off = d
    h.update(size.to_bytes(8, "little"))
    os.close(fd)
    out.append(h.hexdigest()[:24])
print(" ".join(out))
PY
# The signature helpers run in the test's own shell (never inside $(...),
# where a `fail` used to be lost and two failed reads compared equal) and set
# SIG; a read or hash that fails is fatal, and SIG is always one 24-hex-digit
# signature per input.
# sig_files FILE...: signatures of image files, space separated, into SIG.
sig_files() {
  local out t s
  out=$(python3 "$TMP/sig.py" "$@") || die "sig.py $* failed"
  read -r -a t <<<"$out"
  [ "${#t[@]}" -eq $# ] || die "sig.py $*: want $# signatures, got '$out'"
  for s in "${t[@]}"; do [[ "$s" =~ ^[0-9a-f]{24}$ ]] || die "sig.py $*: bad signature '$s' in '$out'"; done
  SIG=$out
}
# sig URI...: signatures of exports, space separated (nbdcopy in parallel).
sig() {
  local n=0 u pids=() files=() rc=0 p
  SIG=""
  for u in "$@"; do
    n=$((n + 1))
    rm -f "$TMP/sig.$n"
    nbdcopy -- "$u" "$TMP/sig.$n" &
    pids+=($!)
    files+=("$TMP/sig.$n")
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc -eq 0 ] || die "nbdcopy of $* failed"
  sig_files "${files[@]}"
  rm -f "${files[@]}"
}
# sums AZ: signatures of both volumes of one side, "s1 s2", into SIG.
sums() { sig "$(uri_of "$1" 1)" "$(uri_of "$1" 2)"; }
# qcmp URI_A URI_B WHAT: whole-disk byte compare (first mismatch named).
qcmp() {
  local out rc=0
  out=$(qemu-img compare -f raw -F raw "$1" "$2" 2>&1) || rc=$?
  [ $rc -eq 0 ] || fail "$3: $1 vs $2 differ (rc $rc): $out"
}
# cmp_pairs WHAT: byte equality of both pairs.
cmp_pairs() {
  local i pids=()
  for i in 1 2; do
    qemu-img compare -f raw -F raw "${U1[i]}" "${U2[i]}" >"$TMP/qcmp.$i" 2>&1 &
    pids[i]=$!
  done
  for i in 1 2; do
    wait "${pids[i]}" || fail "$1: pair $i az1 vs az2 differ: $(cat "$TMP/qcmp.$i")"
  done
}

# wait_active WHAT: group replication_status -> active, through copying only.
wait_active() {
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active' 120 || true
  api GET "$RCGS/$GID"
  chk_eq "$(jget "$G.status")" available "$1: status once active"
}

# access_check WHAT: production side writable (conn read_only false), DR side
# refuses writes (conn read_only true). Offsets used are scratch-free: the
# refused write must not change anything, the accepted one goes to 1000M.
access_check() {
  local what=$1 dr i
  dr=$(other_az "$PROD_AZ")
  for i in 1 2; do
    expect_ro "$(vol_of "$PROD_AZ" "$i")" false "$what: production $PROD_AZ vol $i"
    expect_ro "$(vol_of "$dr" "$i")" true "$what: DR $dr vol $i"
    qrefused "$(uri_of "$dr" "$i")" $((1000 * M)) "$what: DR $dr vol $i"
  done
}

restart_crashed() {
  crash_daemon
  start_daemon
  uris
}

# --- set-up: 2 pairs of 1 GiB volumes with data, in a group, synced ---------
start_daemon
step "set-up"
log "data dir layout: $(cd "$DATA" && printf '%s ' *)"
for i in 1 2; do
  P[i]=$(create_volume az1 1 "drp$i")
  D[i]=$(create_volume az2 1 "drd$i")
done
uris
for i in 1 2; do
  qw "${U1[i]}" "0x1$i" 0 $((4 * M)) "initial data P$i"
  qw "${U1[i]}" "0xa$i" $((900 * M)) $((1 * M)) "initial data P$i"
  R[i]=$(create_pair "${P[i]}" "${D[i]}" "drpair$i")
done
for i in 1 2; do wait_pair_active "${R[i]}"; done
# A pair outside the group, for the extend errors.
P3=$(create_volume az1 1 drp3)
D3=$(create_volume az2 1 drd3)
R3=$(create_pair "$P3" "$D3" drpair3)
GID=$(create_group dr "${R[1]}" "${R[2]}")
expect_group available active-stopped az1 "new group"
act "$SYNC" null "initial sync"
wait_active "initial sync"
cmp_pairs "after the initial sync"
access_check "after the initial sync"

# --- 1. full DR cycle ----------------------------------------------------------
step "1. reverse"
sums az1
S_BEFORE=$SIG
act "$REVERSE" null "reverse az1 -> az2"
expect_group available active az2 "right after reverse"
PROD_AZ=az2
access_check "after reverse"
sums az2
chk_eq "$SIG" "$S_BEFORE" "new production az2 holds what az1 held before the reverse"
for i in 1 2; do
  qw "${U2[i]}" "0x2$i" $((100 * M)) $((2 * M)) "write on the new production D$i"
  qw "${U2[i]}" "0x3$i" $((1020 * M)) $((64 * 1024)) "write on the new production D$i"
  qr "${U1[i]}" "0x2$i" $((100 * M)) $((2 * M)) "reverse-mirrored data on old production P$i"
  qr "${U1[i]}" "0x3$i" $((1020 * M)) $((64 * 1024)) "reverse-mirrored data on old production P$i"
  qr "${U1[i]}" "0x1$i" 0 $((4 * M)) "older data still on P$i"
done
api GET "$RCGS/$GID"
chk_eq "$(jget "$G.replication_status")" active "still active after writes on the new production"
cmp_pairs "after writes on the new production az2"
access_check "after writes on the new production az2"

step "1. reverse back"
act "$REVERSE" null "reverse az2 -> az1"
expect_group available active az1 "right after reverse back"
PROD_AZ=az1
access_check "after reverse back"
for i in 1 2; do qw "${U1[i]}" "0x4$i" $((200 * M)) $((1 * M)) "write on production P$i after reverse back"; done
cmp_pairs "after reverse back and a write"

step "1. pause, write, failover"
act "$PAUSE" null "pause"
expect_group available active-stopped az1 "right after pause"
sums az2
S_DR=$SIG
for i in 1 2; do qw "${U1[i]}" "0x5$i" $((300 * M)) $((1 * M)) "write on paused production P$i"; done
sums az2
chk_eq "$SIG" "$S_DR" "DR az2 unchanged by writes while paused"
sums az1
S_AZ1=$SIG
act "$FAILOVER" null "failover az1 -> az2"
expect_group failovered active-stopped az2 "right after failover"
PROD_AZ=az2
sums az2
chk_eq "$SIG" "$S_DR" "new production az2 = the DR image frozen by the pause"
sums az1
chk_eq "$SIG" "$S_AZ1" "old production az1 keeps its data"
access_check "after failover (old production fenced)"
for i in 1 2; do
  qw "${U2[i]}" "0x6$i" $((400 * M)) $((1 * M)) "write on the new production D$i after failover"
  qr "${U2[i]}" "0x6$i" $((400 * M)) $((1 * M)) "read back D$i after failover"
done
sums az1
chk_eq "$SIG" "$S_AZ1" "fenced old production az1 unchanged by the refused writes and by failover writes"
sums az2
S_NEW=$SIG

step "1. reprotect"
act "$REPROTECT" null "reprotect (production az2)"
api GET "$RCGS/$GID"
chk_eq "$(jget "$G.status")" available "right after reprotect: status"
chk_eq "$(jget "$G.priority_station")" az2 "right after reprotect: priority_station kept"
[[ "$(jget "$G.replication_status")" =~ ^(copying|active)$ ]] ||
  fail "right after reprotect: replication_status '$(jget "$G.replication_status")', want copying or active"
wait_active "reprotect"
expect_group available active az2 "after reprotect"
cmp_pairs "after reprotect"
sums az2
chk_eq "$SIG" "$S_NEW" "new production az2 unchanged by reprotect"
sums az1
chk_eq "$SIG" "$S_NEW" "old production az1 (now DR) = new production"
access_check "after reprotect"

# --- 2. divergence for reprotect, and 3. the 409s --------------------------------
step "2. reverse to az1, pause, 409s while paused"
act "$REVERSE" null "reverse az2 -> az1 (after reprotect)"
expect_group available active az1 "reverse after reprotect"
PROD_AZ=az1
cmp_pairs "after the reverse that follows a reprotect"
act "$PAUSE" null "pause before divergence"
group_action "$GID" "$REVERSE"
expect_409 "reverse when paused (active-stopped)"
group_action "$GID" "$REPROTECT"
expect_409 "reprotect when not failovered (available, active-stopped)"
expect_group available active-stopped az1 "after refused reverse/reprotect"
C0=$(bytes_copied)
[[ "$C0" =~ ^[0-9]+$ ]] || die "group bytes_copied is not a number: '$C0'"
rm -f "$TMP/chunks.1" "$TMP/chunks.2"
sums az2
S_DR=$SIG
# Set A, only on production az1, never replicated.
for k in 0 1 2 3 4 5 6 7; do
  qwm 1 "${U1[1]}" 0x7$k $((k * 3 * M + 4096)) 4096 "A on P1"
done
qwm 1 "${U1[1]}" 0x78 $((50 * M + CHUNK - 2048)) 4096 "A on P1 (straddles two chunks)"
for k in 0 1 2; do
  qwm 2 "${U1[2]}" 0x8$k $((600 * M + k * 2 * CHUNK)) "$CHUNK" "A on P2"
done
sums az2
chk_eq "$SIG" "$S_DR" "DR az2 unchanged by set A"
act "$FAILOVER" null "failover az1 -> az2 (divergence)"
expect_group failovered active-stopped az2 "failover (divergence)"
PROD_AZ=az2
step "3. 409s while failovered"
group_action "$GID" "$SYNC"
expect_409 "sync when failovered"
group_action "$GID" "$FAILOVER"
expect_409 "failover twice"
group_action "$GID" "$REVERSE"
expect_409 "reverse when failovered"
group_action "$GID" "$EXTEND" "{\"replications\": [{\"id\": \"${R[1]}\", \"new_size\": 2}]}"
expect_409 "extend when failovered"
api PUT "$RCGS/$GID" '{"replication_consistency_group":{"name":"nope"}}'
expect_409 "update when failovered"
expect_group failovered active-stopped az2 "after the refused actions"
access_check "failovered (divergence)"
# Set B, only on the new production az2: overlapping A in places.
qwm 1 "${U2[1]}" 0x90 $((0 * 3 * M + 32768)) 4096 "B on D1 (chunk of A)"
qwm 1 "${U2[1]}" 0x91 $((1 * 3 * M + 4096)) 4096 "B on D1 (same bytes as A)"
for k in 0 1 2 3 4; do
  qwm 1 "${U2[1]}" 0x9$((k + 2)) $((700 * M + k * M)) 4096 "B on D1"
done
qwm 2 "${U2[2]}" 0xb0 $((600 * M)) "$CHUNK" "B on D2 (chunk of A)"
qwm 2 "${U2[2]}" 0xb1 $((800 * M)) $((2 * CHUNK)) "B on D2"
qwm 2 "${U2[2]}" 0xb2 $((810 * M + 1000)) 100 "B on D2 (unaligned)"
# Pause is allowed when failovered: a no-op that keeps the tracked writes.
group_action "$GID" "$PAUSE"
expect_status 200 "pause when failovered (allowed by the table: no-op)" || true
expect_group failovered active-stopped az2 "after pause when failovered"
sums az2
S_NEW=$SIG
n1=$(sort -un "$TMP/chunks.1" | wc -l)
n2=$(sort -un "$TMP/chunks.2" | wc -l)
nchunks=$((n1 + n2))
want=$((nchunks * CHUNK))
act "$REPROTECT" null "reprotect (divergence)"
wait_active "reprotect (divergence)"
expect_group available active az2 "after reprotect (divergence)"
C1=$(bytes_copied)
delta=$((C1 - C0))
maxb=$((want * 3 / 2 + 2 * 4 * M))
log "reprotect of divergence: |A u B| = $n1 + $n2 = $nchunks chunks = $want bytes; bytes_copied $C0 -> $C1, delta $delta (allowed $want..$maxb)"
[ "$delta" -ge "$want" ] || fail "reprotect copied $delta bytes, less than |A u B| = $nchunks chunks ($want bytes)"
[ "$delta" -le "$maxb" ] || fail "reprotect copied $delta bytes for |A u B| = $nchunks chunks ($want bytes): more than $maxb, not incremental"
for i in 1 2; do nbd_cmp "${U1[i]}" "${U2[i]}" "after reprotect of a divergence: pair $i (whole disk)"; done
sums az2
chk_eq "$SIG" "$S_NEW" "production az2 unchanged by reprotect (divergence)"
qr "${U1[2]}" 0xb0 $((600 * M)) "$CHUNK" "B chunk over A on old production P2"
qr "${U1[1]}" 0x96 $((704 * M)) 4096 "B on old production P1"
sums az1
chk_eq "$SIG" "$S_NEW" "old production az1: A-only chunks reverted, B chunks present"

# --- 4. failover while copying ----------------------------------------------------
step "4. failover while copying (production $PROD_AZ)"
act "$PAUSE" null "pause before the 64 MiB write"
# Force the failover to land while copying: every write to pair 1's DR disk
# sleeps 20 ms (the resync writes 1 MiB pieces, so the 64 MiB take > 1 s).
# The fault rule needs the volume id at daemon start: a clean restart; the
# next restart (section 7) drops the rule.
DRV1=$(vol_of "$(other_az "$PROD_AZ")" 1)
stop_daemon
EVSREP_FAULT="vol_write@${DRV1}~$SLOW_US" EVSREP_FAULT_AZ=$(other_az "$PROD_AZ") start_daemon
uris
expect_group available active-stopped "$PROD_AZ" "after the restart with a slow DR"
qw "$(prod_uri 1)" 0x5a $((128 * M)) $((64 * M)) "64 MiB on paused production pair 1"
act "$SYNC" null "sync before the failover"
api GET "$RCGS/$GID"
before=$(jget "$G.replication_status")
act "$FAILOVER" null "failover while copying"
api GET "$RCGS/$GID"
log "failover while copying: replication_status right before the failover '$before'; group now $(jget "$G.status")/$(jget "$G.replication_status")"
# The precondition, checked both ways: copying right before the failover, and
# the copy unfinished after it (pair 1 still has dirty bytes: the failover
# interrupted the resync rather than following it).
chk_eq "$before" copying "failover while copying: group replication_status right before the failover"
if [ "${EVSREP_TEST_NODES:-1}" = 2 ]; then
  # Across nodes the interrupted copy's chunks stay dirty in the old
  # production node's kept bitmap (the new one starts clean): the
  # reprotect estimate counts them as that node's divergence.
  api GET "$RCGS/$GID/estimate?action=reprotect"
  d1=$(jq -r --arg r "${R[1]}" '.estimate.replications[] | select(.id == $r) | .old_node_chunks' <<<"$BODY")
  [[ "$d1" =~ ^[0-9]+$ ]] && [ "$d1" -gt 0 ] ||
    fail "failover while copying: pair 1 old_node_chunks '$d1' in the reprotect estimate (want > 0: the copy was still running): $BODY"
else
  d1=$(pget "${R[1]}" dirty_bytes)
  [[ "$d1" =~ ^[0-9]+$ ]] && [ "$d1" -gt 0 ] ||
    fail "failover while copying: pair 1 dirty_bytes '$d1' after the failover (want > 0: the copy was still running)"
fi
NEW_AZ=$(other_az "$PROD_AZ")
expect_group failovered active-stopped "$NEW_AZ" "failover while copying"
PROD_AZ=$NEW_AZ
access_check "after failover while copying"
for i in 1 2; do qw "$(prod_uri "$i")" 0x5b $((10 * M)) $((1 * M)) "write on the new production after failover while copying"; done
sums "$PROD_AZ"
S_NEW=$SIG
act "$REPROTECT" null "reprotect after failover while copying"
wait_active "reprotect after failover while copying"
expect_group available active "$PROD_AZ" "reprotect after failover while copying"
cmp_pairs "reprotect after failover while copying"
sums "$PROD_AZ"
chk_eq "$SIG" "$S_NEW" "production unchanged by reprotect (after failover while copying)"
access_check "reprotect after failover while copying"

# --- 7. kill -9 during reverse and during reprotect ------------------------------
# bg_action KEY: send a group action in the background (own output files).
bg_action() {
  curl -s -X POST -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "{\"$1\": null}" -o "$TMP/bg.body" -w '%{http_code}' \
    "$URL/v2/$PROJECT/$RCGS/$GID/action" >"$TMP/bg.code" 2>/dev/null &
  BG=$!
}
# recover WHAT: after a restart, the group settles within 30 s in available,
# failovered or error; then sync/reprotect to active. Sets PROD_AZ.
recover() {
  local what=$1 st="" end=$((SECONDS + 30)) seen=""
  while [ $SECONDS -lt $end ]; do
    api GET "$RCGS/$GID"
    st=$(jget "$G.status" 2>/dev/null || true)
    [[ " $seen " == *" $st "* ]] || seen="$seen $st"
    [[ "$st" =~ ^(available|failovered|error)$ ]] && break
    [[ "$st" =~ ^(reversing|failovering)$ ]] || { fail "$what: group status '$st' (HTTP $STATUS) after restart"; break; }
    sleep 0.2
  done
  log "$what: after restart status seen:$seen; now $(jget "$G.status")/$(jget "$G.replication_status"), priority $(jget "$G.priority_station")"
  [[ "$st" =~ ^(available|failovered|error)$ ]] || die "$what: group stuck in '$st' for 30 s after restart"
  PROD_AZ=$(jget "$G.priority_station")
  case "$st" in
  failovered) act "$REPROTECT" null "$what: reprotect after restart" ;;
  *) act "$SYNC" null "$what: sync after restart" ;;
  esac
  wait_active "$what: after restart"
  expect_group available active "$PROD_AZ" "$what: recovered"
  cmp_pairs "$what: recovered"
}

sums "$PROD_AZ"
S_ALL=$SIG
# The kills must land during the reverse, which unthrottled takes a few ms
# (both kills used to find it done: HTTP 200, and at 500 ms per flush a CI
# machine once found it done 1 s in): the daemon to be killed sleeps 1.5 s in
# every volume flush (the reverse flushes both legs of each pair before
# swapping it: >= 6 s in all); the delay counts from the first GET that
# shows `reversing`, and right before the kill the group must still be
# `reversing` and the reverse request still unanswered (1 s in, pair 1 may
# already be swapped in the engine while nothing is recorded). The daemon
# started after the kill has no fault rule. Across two nodes the production
# node carries out the reverse (it flushes its own legs, and the DR legs
# through the links): it alone gets the rule (>= 3 s), and it alone is
# killed.
for delay in 0 1; do
  step "7. kill -9 ${delay} s into a reverse (production $PROD_AZ)"
  stop_daemon
  EVSREP_FAULT="vol_flush~1500000" EVSREP_FAULT_AZ=$PROD_AZ start_daemon
  uris
  bg_action "$REVERSE"
  seen=""
  : >"$TMP/poll.trace"
  for _ in $(seq 1 250); do
    api GET "$RCGS/$GID"
    echo "$(date +%T.%N | cut -c1-12) HTTP $STATUS $(jget "$G.status" 2>/dev/null)" >>"$TMP/poll.trace"
    [ "$(jget "$G.status")" != reversing ] || { seen=yes; break; }
    # Across nodes the answer comes at the end: stop polling then. On one
    # node it comes once `reversing` is recorded, maybe before this GET saw
    # it: poll on (the held flushes keep it `reversing` for seconds).
    [ "${EVSREP_TEST_NODES:-1}" = 1 ] || [ ! -s "$TMP/bg.code" ] || break
    sleep 0.02
  done
  if [ -z "$seen" ]; then
    fail "kill -9 ${delay} s into a reverse: the group never showed 'reversing'"
    log "poll trace (time after each GET's answer): $(tr '\n' ';' <"$TMP/poll.trace")"
    log "daemon log of the reverse: $(grep -a 'reverse started\|reverse done\|/action ' "$TMP/daemon.log" | tail -n 3 | tr '\n' ';')"
  fi
  # One node: the answer comes right after `reversing` is recorded.
  [ "${EVSREP_TEST_NODES:-1}" = 2 ] || wait "$BG" || true
  sleep "$delay"
  api GET "$RCGS/$GID"
  before="$(jget "$G.status") (HTTP $STATUS)"
  if [ -s "$TMP/bg.code" ]; then before="$before, request answered"; else before="$before, request pending"; fi
  crash_az "$PROD_AZ"
  wait "$BG" || true
  log "reverse before kill -9: HTTP $(cat "$TMP/bg.code" 2>/dev/null); group right before the kill: $before"
  # One node: the request is answered once `reversing` is recorded, the
  # flushes and the swap run behind it. Across nodes (handoff) the request
  # is answered at the end.
  want="reversing (HTTP 200), request answered"
  [ "${EVSREP_TEST_NODES:-1}" = 2 ] && want="reversing (HTTP 200), request pending"
  chk_eq "$before" "$want" "kill -9 ${delay} s into a reverse: group status right before the kill"
  start_daemon
  uris
  recover "kill -9 ${delay} s into a reverse"
  sums az1
  chk_eq "$SIG" "$S_ALL" "az1 after kill -9 during reverse: data unchanged"
  sums az2
  chk_eq "$SIG" "$S_ALL" "az2 after kill -9 during reverse: data unchanged"
  access_check "after kill -9 during reverse"
done

# --- 8. a GET answers while an action holds its request --------------------------
# A reverse that flushes for seconds must not hold other clients' requests:
# the action's connection is accepted first (head only), 40 more after it,
# then the action runs (1.5 s per flush, >= 6 s) while each of the 40 sends
# a GET. Every GET must be answered before the action (an order, not a
# time). When actions ran on the HTTP pool thread that accepted them, the
# GETs that thread had accepted waited for the whole reverse (CI saw a poll
# loop of step 7 find no `reversing` at all).
step "8. GETs during a slow reverse (production $PROD_AZ)"
stop_daemon
EVSREP_FAULT="vol_flush~1500000" EVSREP_FAULT_AZ=$PROD_AZ start_daemon
out=$(python3 "$(dirname "$0")/http_slow_action.py" "${URL##*:}" "$TOKEN" \
  "/v2/$PROJECT/$RCGS/$GID/action" "{\"$REVERSE\": null}" "/v2/$PROJECT/$RCGS/$GID" 40) ||
  fail "http_slow_action.py: exit $?: $out"
log "GETs during a slow reverse: $out"
if [ "${EVSREP_TEST_NODES:-1}" = 2 ]; then
  chk_eq "$(jq -c '[.action_status, .gets_before_action, .gets_after_action, .get_statuses]' <<<"$out")" \
    "[200,40,0,[200]]" "GETs during a slow reverse: [action status, GETs answered before it, after it, GET statuses]"
else
  # One node: the reverse answers once `reversing` is recorded (its flushes
  # run behind the status), so no order is forced; every answer must come.
  chk_eq "$(jq -c '[.action_status, .gets_before_action + .gets_after_action, .get_statuses]' <<<"$out")" \
    "[200,40,[200]]" "GETs during a reverse: [action status, GETs answered, GET statuses]"
  wait_swap "$GID"
fi
stop_daemon
start_daemon
uris
api GET "$RCGS/$GID"
PROD_AZ=$(jget "$G.priority_station")
expect_group available active "$PROD_AZ" "after the reverse with GETs"

step "7. kill -9 during reprotect (production $PROD_AZ)"
act "$FAILOVER" null "failover before the kill -9 during reprotect"
NEW_AZ=$(other_az "$PROD_AZ")
expect_group failovered active-stopped "$NEW_AZ" "failover before kill -9"
PROD_AZ=$NEW_AZ
for i in 1 2; do qw "$(prod_uri "$i")" "0xc$i" $((256 * M)) $((64 * M)) "64 MiB on the new production $i"; done
sums "$PROD_AZ"
S_NEW=$SIG
# The kill must land while the reprotect copies (it used to find the copy
# done at times): the new DR disks (the old production) sleep SLOW_US in
# every write (2 x 64 MiB: > 1 s), and the group must be `copying` right
# before the kill. The kill hits the production node, which runs the
# reprotect; the DR side is then restarted cleanly, so that no daemon
# started after the kill has a fault rule.
DRA=$(vol_of "$(other_az "$PROD_AZ")" 1)
DRB=$(vol_of "$(other_az "$PROD_AZ")" 2)
stop_daemon
EVSREP_FAULT="vol_write@${DRA}~$SLOW_US;vol_write@${DRB}~$SLOW_US" EVSREP_FAULT_AZ=$(other_az "$PROD_AZ") start_daemon
uris
expect_group failovered active-stopped "$PROD_AZ" "after the restart with a slow new DR"
bg_action "$REPROTECT"
wait "$BG" || true
sleep 0.05
api GET "$RCGS/$GID"
before="$(jget "$G.status")/$(jget "$G.replication_status") (HTTP $STATUS)"
crash_az "$PROD_AZ"
stop_daemon
log "reprotect before kill -9: HTTP $(cat "$TMP/bg.code" 2>/dev/null); group right before the kill: $before"
chk_eq "$before" "available/copying (HTTP 200)" "kill -9 during reprotect: group right before the kill"
start_daemon
uris
WANT_AZ=$PROD_AZ
recover "kill -9 during reprotect"
chk_eq "$PROD_AZ" "$WANT_AZ" "production side after kill -9 during reprotect (failover's choice kept)"
sums az1
chk_eq "$SIG" "$S_NEW" "az1 after kill -9 during reprotect = new production data"
sums az2
chk_eq "$SIG" "$S_NEW" "az2 after kill -9 during reprotect = new production data"
access_check "after kill -9 during reprotect"

if [ "$PROD_AZ" != az1 ]; then
  act "$REVERSE" null "reverse back to az1 before extend"
  expect_group available active az1 "reverse before extend"
  PROD_AZ=az1
fi

# --- 5. extend ----------------------------------------------------------------------
step "5. extend"
# first_gib_sum URI: signature of the first 1 GiB of an export, into SIG.
first_gib_sum() {
  rm -f "$TMP/fg.img"
  nbdcopy -- "$1" "$TMP/fg.img" || die "nbdcopy of $1 failed"
  truncate -s "$GIB" "$TMP/fg.img"
  sig_files "$TMP/fg.img"
  rm -f "$TMP/fg.img"
}
nbd_size() { nbdinfo --size "$1" 2>/dev/null || echo "?"; }
# grown_sig FILE GIB: signature of an image file grown with zeros to GIB, into SIG.
grown_sig() { truncate -s $(($2 * GIB)) "$1" || die "truncate $1"; sig_files "$1"; }
sums az1
S2=$SIG
S1=${S2%% *}
rm -f "$TMP/pre.img"
nbdcopy -- "${U1[1]}" "$TMP/pre.img" || fail "nbdcopy of P1 before extend"
sums az2
chk_eq "$SIG" "$S2" "both sides equal before extend"
group_action "$GID" "$EXTEND" "{\"replications\": [{\"id\": \"${R[1]}\", \"new_size\": 2}]}"
expect_status 200 "extend pair 1 to 2 GiB" && { [ -z "$BODY" ] || fail "extend: 200 with a body: $BODY"; }
for v in "${P[1]}" "${D[1]}"; do
  api GET "volumes/$v"
  chk_eq "$(jget .volume.size)" 2 "volume $v size after extend"
  chk_eq "$(jget .volume.status)" available "volume $v status after extend"
done
for v in "${P[2]}" "${D[2]}"; do
  api GET "volumes/$v"
  chk_eq "$(jget .volume.size)" 1 "pair 2 volume $v size (not extended)"
done
expect_group available active az1 "after extend"
chk_eq "$(nbd_size "${U1[1]}")" $((2 * GIB)) "NBD size of P1 after extend"
chk_eq "$(nbd_size "${U2[1]}")" $((2 * GIB)) "NBD size of D1 after extend"
chk_eq "$(nbd_size "${U1[2]}")" "$GIB" "NBD size of P2 (not extended)"
for u in "${U1[1]}" "${U2[1]}"; do
  first_gib_sum "$u"
  chk_eq "$SIG" "$S1" "first GiB of $u after extend"
  qr "$u" 0 "$GIB" $((4 * M)) "start of the new space of $u reads as zeros"
  qr "$u" 0 $((2 * GIB - 4 * M)) $((4 * M)) "end of the new space of $u reads as zeros"
done
# Whole export == old content followed by zeros (old data intact, new space zero).
grown_sig "$TMP/pre.img" 2
G2=$SIG
for u in "${U1[1]}" "${U2[1]}"; do
  sig "$u"
  chk_eq "$SIG" "$G2" "$u after extend = old 1 GiB + 1 GiB of zeros"
done
qw "${U1[1]}" 0xd1 $((GIB + 5 * M)) $((1 * M)) "write into the new space of P1"
qw "${U1[1]}" 0xd2 $((2 * GIB - 4096)) 4096 "write at the new end of P1"
qr "${U2[1]}" 0xd1 $((GIB + 5 * M)) $((1 * M)) "new-space write mirrored to D1"
qr "${U2[1]}" 0xd2 $((2 * GIB - 4096)) 4096 "new-end write mirrored to D1"
qrefused "${U2[1]}" $((GIB + 100 * M)) "DR D1 new space"
qcmp "${U1[1]}" "${U2[1]}" "pair 1 after extend and writes"
# Go SDK shape.
rm -f "$TMP/pre.img"
nbdcopy -- "${U1[1]}" "$TMP/pre.img" || fail "nbdcopy of P1 before the second extend"
group_action "$GID" "$EXTEND" "{\"id\": \"${R[1]}\", \"new_size\": 3}"
expect_status 200 "extend pair 1 to 3 GiB (Go SDK shape)" && { [ -z "$BODY" ] || fail "extend (SDK): body: $BODY"; }
for v in "${P[1]}" "${D[1]}"; do
  api GET "volumes/$v"
  chk_eq "$(jget .volume.size)" 3 "volume $v size after the SDK-shape extend"
done
chk_eq "$(nbd_size "${U1[1]}")" $((3 * GIB)) "NBD size of P1 after the SDK-shape extend"
chk_eq "$(nbd_size "${U2[1]}")" $((3 * GIB)) "NBD size of D1 after the SDK-shape extend"
qr "${U1[1]}" 0xd1 $((GIB + 5 * M)) $((1 * M)) "P1 data in the first extension kept"
grown_sig "$TMP/pre.img" 3
G3=$SIG
rm -f "$TMP/pre.img"
sig "${U1[1]}"
chk_eq "$SIG" "$G3" "P1 after the SDK-shape extend = 2 GiB content + 1 GiB of zeros"
sig "${U2[1]}"
chk_eq "$SIG" "$G3" "D1 after the SDK-shape extend = 2 GiB content + 1 GiB of zeros"
expect_group available active az1 "after the SDK-shape extend"
# Errors.
group_action "$GID" "$EXTEND" "{\"replications\": [{\"id\": \"${R[1]}\", \"new_size\": 3}]}"
expect_400 "extend to the same size"
group_action "$GID" "$EXTEND" "{\"id\": \"${R[1]}\", \"new_size\": 2}"
expect_400 "extend to a smaller size"
group_action "$GID" "$EXTEND" "{\"replications\": [{\"id\": \"$R3\", \"new_size\": 2}]}"
expect_400 "extend of a pair not in the group"
group_action "$GID" "$EXTEND" "{\"replications\": [{\"id\": \"${R[2]}\", \"new_size\": 2}, {\"id\": \"$R3\", \"new_size\": 2}]}"
expect_400 "extend of a member and a non-member"
api GET "volumes/${P[2]}"
chk_eq "$(jget .volume.size)" 1 "a refused extend changed nothing (P2)"
api GET "volumes/$P3"
chk_eq "$(jget .volume.size)" 1 "a refused extend changed nothing (P3)"
group_action "$GID" "$EXTEND" "{\"replications\": [{\"id\": \"$NOSUCH\", \"new_size\": 2}]}"
expect_status 404 "extend of an unknown pair" || true
for v in "${P[1]}" "${D[1]}"; do
  api POST "volumes/$v/action" '{"os-extend": {"new_size": 4}}'
  expect_409 "volume os-extend on paired volume $v"
  api GET "volumes/$v"
  chk_eq "$(jget .volume.size)" 3 "volume $v size after refused os-extend"
done
sums az1
s_az1=$SIG
sums az2
chk_eq "$SIG" "$s_az1" "both sides equal after the extend checks"
sig "${U1[2]}"
chk_eq "$SIG" "${S2#* }" "pair 2 data untouched by the extends"

# --- 6. fault: a production disk file disappears --------------------------------
step "6. fault (production $PROD_AZ)"
[ -e "$DATA/az1/${P[2]}" ] || log "note: $DATA/az1 holds: $(cd "$DATA/az1" && printf '%s ' *)"
[ -e "$DATA/az1/${P[2]}" ] || die "production volume file $DATA/az1/${P[2]} not found (layout changed?)"
rm -f "$DATA/az1/${P[2]}"
end=$((SECONDS + 10)) got=""
while [ $SECONDS -lt $end ]; do
  api GET "$RCGS/$GID"
  gf=$(jget "$G.fault_level")
  pf=$(pget "${R[2]}" fault_level)
  got="group $gf, pair $pf"
  [ "$gf" = 2 ] || [ "$pf" = 2 ] && break
  sleep 0.2
done
log "fault levels after deleting $DATA/az1/${P[2]}: $got"
[ "$gf" = 2 ] || [ "$pf" = 2 ] || fail "fault_level after deleting a production disk: want \"2\" within 10 s, got $got"
api GET "$RCGS/$GID"
log "group with a fault: $(jget "$G.status")/$(jget "$G.replication_status"), failure_detail '$(jget "$G.failure_detail")'"
act "$FAILOVER" null "failover with a production fault"
api GET "$RCGS/$GID"
chk_eq "$(jget "$G.status")" failovered "status after failover with a fault"
chk_eq "$(jget "$G.priority_station")" az2 "priority_station after failover with a fault"
PROD_AZ=az2
for i in 1 2; do
  expect_ro "${D[i]}" false "new production D$i after failover with a fault"
  qw "${U2[i]}" 0xe$i $((30 * M)) $((1 * M)) "write on the new production D$i after failover with a fault"
  qr "${U2[i]}" 0xe$i $((30 * M)) $((1 * M)) "read back D$i after failover with a fault"
done
expect_ro "${P[1]}" true "old production P1 fenced after failover with a fault"
qrefused "${U1[1]}" $((1000 * M)) "old production P1 after failover with a fault"

log "runtime $((SECONDS - T0)) s"
finish
