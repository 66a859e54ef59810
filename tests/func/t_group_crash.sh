#!/usr/bin/env bash
# shellcheck disable=SC2119
# kill -9 while a group is paused with dirty chunks, and during its sync:
# after a restart the bitmap is intact (DR still holds the frozen image, the
# dirty bytes are exactly the chunks written while paused) and a sync
# converges to byte equality. Seeds: EVSREP_CRASH_SEEDS (default 4) from
# EVSREP_CRASH_SEED_BASE (default 1).
. "$(dirname "$0")/lib.sh"
NSEEDS=${EVSREP_CRASH_SEEDS:-4}
BASE=${EVSREP_CRASH_SEED_BASE:-1}
PAUSE=os-stop-replication-consistency-group
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group
CHUNK=65536

start_daemon
declare -a P D R
for i in 1 2; do
  P[i]=$(create_volume az1 1 "kp$i")
  D[i]=$(create_volume az2 1 "kd$i")
  R[i]=$(create_pair "${P[i]}" "${D[i]}" "kpair$i")
done
for i in 1 2; do wait_pair_active "${R[i]}"; done
GID=$(create_group crash "${R[1]}" "${R[2]}")
group_action "$GID" "$SYNC"
wait_through "$RCGS/$GID" "$G.replication_status" active copying 120

uris() { for i in 1 2; do PU[i]=$(nbd_uri az1 "${P[i]}"); DU[i]=$(nbd_uri az2 "${D[i]}"); done; }
declare -a PU DU
uris
dirty_bytes() { api GET "$PAIRS/$1"; jget '.replication.dirty_bytes // 0'; }

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
    for c in $(shuf -i 0-16383 -n "$k" --random-source=<(yes "$seed$i")); do
      cmds+=(-c "write -P 0x$((RANDOM % 9 + 1))$i $((c * CHUNK + (RANDOM % 15) * 4096)) 4k")
    done
    qemu-io -f raw "${cmds[@]}" -c flush "${PU[i]}" >/dev/null || fail "$tag: dirty P$i"
    WANT[i]=$((k * CHUNK))
  done
  crash_daemon
  start_daemon
  uris
  api GET "$RCGS/$GID"
  expect_eq "$(jget "$G.replication_status")" active-stopped "$tag: paused group after kill -9"
  for i in 1 2; do
    expect_eq "$(dirty_bytes "${R[i]}")" "${WANT[i]}" "$tag: pair $i dirty bytes after kill -9 (bitmap intact)"
    expect_eq "$(nbd_sha256 "${DU[i]}")" "${SUMD[i]}" "$tag: DR $i still the frozen image after kill -9"
  done
  group_action "$GID" "$SYNC"
  expect_status 200 "$tag: sync after restart"
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|inactive|active-stopped' 120
  for i in 1 2; do nbd_cmp "${PU[i]}" "${DU[i]}" "$tag: pair $i after sync"; done

  # --- kill -9 during a sync of 32 MiB per disk
  group_action "$GID" "$PAUSE"
  expect_status 200 "$tag: pause 2"
  for i in 1 2; do
    head -c $((32 * 1024 * 1024)) /dev/urandom >"$TMP/d$i"
    nbdcopy "$TMP/d$i" "${PU[i]}" || fail "$tag: bulk dirty P$i"
  done
  group_action "$GID" "$SYNC"
  expect_status 200 "$tag: sync before kill"
  sleep "0.0$((RANDOM % 9 + 1))"
  crash_daemon
  start_daemon
  uris
  api GET "$RCGS/$GID"
  r=$(jget "$G.replication_status")
  [[ "$r" =~ ^(copying|active|inactive)$ ]] || fail "$tag: after kill -9 during sync: '$r'"
  if [ "$r" = inactive ]; then group_action "$GID" "$SYNC"; fi
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|inactive' 120
  for i in 1 2; do nbd_cmp "${PU[i]}" "${DU[i]}" "$tag: pair $i after a sync interrupted by kill -9"; done
done
finish
