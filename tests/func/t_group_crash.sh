#!/usr/bin/env bash
# shellcheck disable=SC2119
# kill -9 while a group is paused with dirty chunks, and during its sync:
# after a restart the bitmap is intact (DR still holds the frozen image, the
# dirty bytes are exactly the chunks written while paused) and a sync
# converges to byte equality. Production is checked against what its client
# was told, before and after each sync (a sync that copied DR over production
# would leave both equal, and stale): the 4 KiB writes made while paused
# (flushed) are there; the 32 MiB written before the second sync are there;
# and a writer that keeps writing (FUA, one dependent write at a time) during
# that sync until the kill finds every write it had acknowledged on
# production (seqcheck -a LAST). Seeds: EVSREP_CRASH_SEEDS (default 4) from
# EVSREP_CRASH_SEED_BASE (default 1).
. "$(dirname "$0")/lib.sh"
SW=$TOOLS/seqwriter
SC=$TOOLS/seqcheck
if [ ! -x "$SW" ] || [ ! -x "$SC" ]; then die "seqwriter/seqcheck not built in $TOOLS"; fi
WOFF=64M   # the writer's region on each production disk: 64M..68M,
WREGION=4M # away from the 32 MiB written at 0
M=$((1024 * 1024))
NSEEDS=${EVSREP_CRASH_SEEDS:-4}
BASE=${EVSREP_CRASH_SEED_BASE:-1}
PAUSE=os-stop-replication-consistency-group
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group
CHUNK=65536

start_daemon
declare -a P D R
make_active_pairs 2 k
# The kill -9 "during its sync" must land during the sync, which copies 32 MiB
# a disk in a few ms unthrottled: from here on every daemon (all restarts
# included) slows each write to the DR disks by 30 ms (the resync writes 1 MiB
# pieces: >= 1 s for the 32 MiB; DR gets no other writes while paused), and
# the group must still be `copying` right before the kill.
stop_daemon
export EVSREP_FAULT="vol_write@${D[1]}~30000;vol_write@${D[2]}~30000"
start_daemon
GID=$(create_group crash "${R[1]}" "${R[2]}")
group_action "$GID" "$SYNC"
wait_through "$RCGS/$GID" "$G.replication_status" active copying 120

uris() { for i in 1 2; do PU[i]=$(nbd_uri az1 "${P[i]}"); DU[i]=$(nbd_uri az2 "${D[i]}"); done; }
declare -a PU DU
uris
dirty_bytes() { api GET "$PAIRS/$1"; jget '.replication.dirty_bytes // 0'; }
# prod_has I WHAT: production disk I holds every paused write of this seed
# (read back from $TMP/reads.I, one qemu-io read -P command a line).
prod_has() {
  local i=$1 what=$2 cmds=() c
  while read -r c; do cmds+=(-c "$c"); done <"$TMP/reads.$i"
  if ! qemu-io -f raw -r "${cmds[@]}" "${PU[i]}" >"$TMP/qio" 2>&1 || grep -q 'Pattern verification failed' "$TMP/qio"; then
    fail "$what: production P$i lost writes acknowledged while paused: $(grep -m1 -B1 'Pattern verification failed' "$TMP/qio" | tr '\n' ' ')"
  fi
}
# pair_cmp_bulk I WHAT: P_I == D_I byte for byte, and the first 32 MiB of P_I
# are the bytes written there ($TMP/d$I).
pair_cmp_bulk() {
  local i=$1 what=$2 out
  if ! nbdcopy -- "${PU[i]}" "$TMP/cmp.a" || ! nbdcopy -- "${DU[i]}" "$TMP/cmp.b"; then
    fail "$what: nbdcopy failed"
  else
    out=$(cmp "$TMP/cmp.a" "$TMP/cmp.b" 2>&1) || fail "$what: production and DR differ: $out"
    out=$(cmp -n $((32 * M)) "$TMP/cmp.a" "$TMP/d$i" 2>&1) ||
      fail "$what: production lost the 32 MiB written before the sync: $out"
  fi
  rm -f "$TMP/cmp.a" "$TMP/cmp.b"
}
WP=""

for seed in $(seq "$BASE" $((BASE + NSEEDS - 1))); do
  RANDOM=$seed
  tag="seed $seed"
  log "$tag"
  # --- paused with dirty chunks, kill -9
  group_action "$GID" "$PAUSE"
  expect_status 200 "$tag: pause"
  declare -a SUMD
  for i in 1 2; do SUMD[i]=$(nbd_sha256 "${DU[i]}"); done
  # k distinct chunks per disk, one 4 KiB write each
  declare -a WANT
  for i in 1 2; do
    k=$((RANDOM % 20 + 5))
    cmds=()
    : >"$TMP/reads.$i"
    for c in $(shuf -i 0-16383 -n "$k" --random-source=<(yes "$seed$i")); do
      w="-P 0x$((RANDOM % 9 + 1))$i $((c * CHUNK + (RANDOM % 15) * 4096)) 4k"
      cmds+=(-c "write $w")
      echo "read $w" >>"$TMP/reads.$i"
    done
    qemu-io -f raw "${cmds[@]}" -c flush "${PU[i]}" >/dev/null || fail "$tag: dirty P$i"
    WANT[i]=$((k * CHUNK))
  done
  wait_settled # exact bits below: the pause's flushes must be done (crash rule)
  crash_daemon
  start_daemon
  uris
  api GET "$RCGS/$GID"
  expect_eq "$(jget "$G.replication_status")" active-stopped "$tag: paused group after kill -9"
  for i in 1 2; do
    expect_eq "$(dirty_bytes "${R[i]}")" "${WANT[i]}" "$tag: pair $i dirty bytes after kill -9 (bitmap intact)"
    expect_eq "$(nbd_sha256 "${DU[i]}")" "${SUMD[i]}" "$tag: DR $i still the frozen image after kill -9"
    prod_has "$i" "$tag: after kill -9 while paused"
  done
  group_action "$GID" "$SYNC"
  expect_status 200 "$tag: sync after restart"
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|inactive|active-stopped' 120
  for i in 1 2; do
    nbd_cmp "${PU[i]}" "${DU[i]}" "$tag: pair $i after sync"
    prod_has "$i" "$tag: after the sync that followed the kill"
  done

  # --- kill -9 during a sync of 32 MiB per disk
  group_action "$GID" "$PAUSE"
  expect_status 200 "$tag: pause 2"
  for i in 1 2; do
    head -c $((32 * M)) /dev/urandom >"$TMP/d$i"
    nbdcopy "$TMP/d$i" "${PU[i]}" || fail "$tag: bulk dirty P$i"
  done
  # A client that keeps writing through the sync and the kill.
  runid=$((seed * 1000 + 7))
  rm -f "$TMP/prog"
  "$SW" -q --fua -R "$runid" -o "$WOFF" -r "$WREGION" -t 60 -p "$TMP/prog" "${PU[1]}" "${PU[2]}" \
    >"$TMP/sw.out" 2>"$TMP/sw.err" &
  WP=$!
  for _ in $(seq 1 400); do # the progress file reads 0 until the first acknowledged write
    v=$(cat "$TMP/prog" 2>/dev/null || true)
    [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] && break
    sleep 0.05
  done
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || die "$tag: the writer acknowledged no write: $(cat "$TMP/sw.err")"
  group_action "$GID" "$SYNC"
  expect_status 200 "$tag: sync before kill"
  sleep "0.0$((RANDOM % 9 + 1))"
  api GET "$RCGS/$GID"
  before="$(jget "$G.replication_status") (HTTP $STATUS)"
  crash_daemon
  [ "$before" = "copying (HTTP 200)" ] ||
    fail "$tag: the kill -9 meant to land during the sync found the group $before, want copying"
  rc=0
  wait "$WP" || rc=$?
  WP=""
  LAST=$(cat "$TMP/sw.out")
  [[ "$LAST" =~ ^[0-9]+$ ]] || { fail "$tag: writer printed no last seq: $(cat "$TMP/sw.err")"; LAST=0; }
  [[ $rc =~ ^(0|2)$ ]] || fail "$tag: writer exit $rc: $(cat "$TMP/sw.err")"
  [ "$LAST" -gt 0 ] || fail "$tag: the writer made no progress before the kill"
  log "$tag: group right before the kill -9 during sync: $before; writer's last acknowledged seq $LAST"
  start_daemon
  uris
  api GET "$RCGS/$GID"
  r=$(jget "$G.replication_status")
  [[ "$r" =~ ^(copying|active|inactive)$ ]] || fail "$tag: after kill -9 during sync: '$r'"
  if [ "$r" = inactive ]; then group_action "$GID" "$SYNC"; fi
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|inactive' 120
  # Every write acknowledged before the kill is on production (and at most
  # the one in flight beyond it), and so, once active, on DR.
  "$SC" -q -R "$runid" -o "$WOFF" -r "$WREGION" -a "$LAST" -b $((LAST + 1)) "${PU[1]}" "${PU[2]}" \
    >/dev/null 2>"$TMP/sc.err" ||
    fail "$tag: production after a sync interrupted by kill -9 (writer's last acknowledged seq $LAST): $(cat "$TMP/sc.err")"
  for i in 1 2; do pair_cmp_bulk "$i" "$tag: pair $i after a sync interrupted by kill -9"; done
done
[ -z "$WP" ] || kill "$WP" 2>/dev/null || true
finish
