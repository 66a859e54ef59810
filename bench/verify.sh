#!/usr/bin/env bash
# Online verify rate vs plain read rate of the volume files (docs/operations.md
# "Online verify"). One pair of GIB GiB (default 1) filled with data; the
# group is verified VERIFY_RUNS times (default 3) with no throttle; then the
# two files are read with dd (page cache as the verify left it). Prints the
# rates and the ratio verify / (dd of both files).
#   EVSREPD=build/evsrepd EVSREP_BUILD=build bash bench/verify.sh
set -euo pipefail
: "${EVSREPD:=build/evsrepd}"
export EVSREPD
. "$(dirname "$0")/../tests/func/lib.sh"
GIB=${GIB:-1}
RUNS=${VERIFY_RUNS:-3}
G=.replication_consistency_group
start_daemon
P=$(create_volume az1 "$GIB" bp)
D=$(create_volume az2 "$GIB" bd)
head -c $((GIB * 1024 * 1024 * 1024)) /dev/urandom >"$TMP/src"
nbdcopy -- "$TMP/src" "$(nbd_uri az1 "$P")"
rm -f "$TMP/src"
R=$(create_pair "$P" "$D" bpair)
wait_pair_active "$R" 600
GID=$(create_group bench "$R")
group_action "$GID" os-sync-replication-consistency-group
wait_field "$RCGS/$GID" "$G.replication_status" active 600
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s.%N)
  group_action "$GID" os-evsrep-verify
  wait_field "$RCGS/$GID" "$G.verify.status" done 600 >/dev/null
  t1=$(date +%s.%N)
  api GET "$RCGS/$GID"
  printf 'verify run %d: %s bytes in %.2f s: %.0f MiB/s (daemon: %s B/s), mismatches %s\n' "$i" \
    "$(jget "$G.verify.bytes_done")" "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$(jget "$G.verify.bytes_done") / ($t1 - $t0) / 1048576" | bc -l)" \
    "$(jget "$G.verify.rate_bytes_per_sec")" "$(jget "$G.verify.mismatched_chunks")"
done
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s.%N)
  dd if="$DATA/az1/$P" of=/dev/null bs=1M status=none
  dd if="$DATA/az2/$D" of=/dev/null bs=1M status=none
  t1=$(date +%s.%N)
  printf 'dd of both files, run %d: %.0f MiB/s of volume (%.0f MiB/s read)\n' "$i" \
    "$(echo "$GIB * 1024 / ($t1 - $t0)" | bc -l)" "$(echo "2 * $GIB * 1024 / ($t1 - $t0)" | bc -l)"
done
finish
