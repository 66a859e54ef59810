#!/usr/bin/env bash
# DR drill on a clone (issue 14): how long a clone of a group takes, by disk
# size, when the disks hold little data. One active pair per size (SIZES,
# GiB), DATA_MIB of data written to production in 1 MiB pieces spread over
# the disk, then `os-evsrep-clone-replication-consistency-group`: the time
# until the answer (the instant is taken under the production fences: the
# fence time is reported too) and until the clone is `available` (copy
# path: the background copy; reflink path: at once). Replication stays
# active throughout (checked).
#
#   bench/clone.sh                          # SIZES="1 64" DATA_MIB=64
#   CLONE_BENCH_DIR=/mnt/xfs bench/clone.sh # data dir on a file system with reflink
. "$(dirname "$0")/lib.sh"
need qemu-io
SIZES=${SIZES:-1 64}
DATA_MIB=${DATA_MIB:-64}
RCGS=os-vendor-replication-consistency-groups
if [ -n "${CLONE_BENCH_DIR:-}" ]; then
  DATA=$(mktemp -d "$CLONE_BENCH_DIR/evsrep-bench.XXXXXX")
  BENCH_CLEANUP+=("rm -rf '$DATA'")
fi
ev_start --log-level info
now() { date +%s.%N; }
printf '%-6s %-8s %-8s %-10s %-10s %-10s %s\n' GiB data method answer_s fence_us available_s fs
for gib in $SIZES; do
  P=$(volume az1 "$gib")
  D=$(volume az2 "$gib")
  R=$(pair "$P" "$D")
  wait_json "os-vendor-replications/$R" .replication.replication_status active
  G=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[\"$R\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication_consistency_group.id)
  wait_json "$RCGS/$G" .replication_consistency_group.status available
  api POST "$RCGS/$G/action" '{"os-sync-replication-consistency-group": null}' >/dev/null
  wait_json "$RCGS/$G" .replication_consistency_group.replication_status active
  cmds=()
  step=$((gib * 1024 / DATA_MIB))
  for ((k = 0; k < DATA_MIB; k++)); do cmds+=(-c "write -P $((k % 250 + 1)) $((k * step))M 1M"); done
  qemu-io -f raw "${cmds[@]}" "$(nbd_uri "$P")" >/dev/null
  t0=$(now)
  ans=$(api POST "$RCGS/$G/action" '{"os-evsrep-clone-replication-consistency-group": null}')
  t1=$(now)
  id=$(jq -r '.clone.volumes[0].id' <<<"$ans")
  while [ "$(api GET "volumes/$id" | jq -r .volume.status)" != available ]; do
    [ "$(api GET "$RCGS/$G" | jq -r .replication_consistency_group.replication_status)" = active ] ||
      { echo "bench: replication left active during the clone" >&2; exit 1; }
    sleep 0.02
  done
  t2=$(now)
  printf '%-6s %-8s %-8s %-10.3f %-10s %-10.3f %s\n' "$gib" "${DATA_MIB}MiB" \
    "$(jq -r '.clone.volumes[0].method' <<<"$ans")" "$(echo "$t1 - $t0" | bc)" \
    "$(jq -r .clone.fence_usec <<<"$ans")" "$(echo "$t2 - $t0" | bc)" "$(stat -f -c %T "$DATA")"
  api DELETE "volumes/$id" >/dev/null
done
