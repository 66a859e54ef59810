#!/usr/bin/env bash
# shellcheck disable=SC2119
# Cost of the copy-on-write sidecars (issue 14 item 1; docs/operations.md
# "Consistent DR during resync"): the extra DR-side bytes a resync writes
# into the sidecar, as a fraction of the bytes it resynced, and the resync
# time with sidecars vs. without (EVSREP_SIDECAR_OFF=1: needs an evsrepd
# built with -DEVSREP_FAULT_INJECTION=ON, as build/ is).
#
# One pair in a group, DATA_MIB of data written and synced first; then, for
# each scenario, the group is paused, production is written, the group is
# synced, and the pair's sidecar_bytes and bytes_copied are read before and
# after:
#   overwrite  sequential rewrite of MIB_W MiB of data the DR disk holds
#   random4k   N4K random 4 KiB writes over the data area (whole 64 KiB
#              chunks are resynced and preserved for each)
#   fresh      MIB_W MiB written where the DR disk has never had data
#              (holes: nothing to preserve)
#
#   bench/sidecar.sh                     # DATA_MIB=512 MIB_W=256 N4K=4096
. "$(dirname "$0")/lib.sh"
need qemu-io
DATA_MIB=${DATA_MIB:-512}
MIB_W=${MIB_W:-256}
N4K=${N4K:-4096}
RCGS=os-vendor-replication-consistency-groups

# run_all LABEL: one daemon, the three scenarios; prints one line each.
run_all() {
  local label=$1 P D R G PU s
  EV_LOG_LEVEL=info ev_start
  P=$(volume az1 2)
  D=$(volume az2 2)
  PU=$(nbd_uri "$P")
  qemu-io -f raw -c "write -P 0x11 0 ${DATA_MIB}M" "$PU" >/dev/null
  R=$(pair "$P" "$D")
  wait_json "os-vendor-replications/$R" .replication.replication_status active
  G=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[\"$R\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication_consistency_group.id)
  wait_json "$RCGS/$G" .replication_consistency_group.status available
  api POST "$RCGS/$G/action" '{"os-sync-replication-consistency-group": null}' >/dev/null
  wait_json "$RCGS/$G" .replication_consistency_group.replication_status active
  for s in overwrite random4k fresh; do
    local sc0 bc0 sc1 bc1 t0 t1
    api POST "$RCGS/$G/action" '{"os-stop-replication-consistency-group": null}' >/dev/null
    case $s in
    overwrite) qemu-io -f raw -c "write -P 0x22 0 ${MIB_W}M" "$PU" >/dev/null ;;
    random4k)
      python3 -c "
import random
random.seed(7)
for _ in range($N4K):
    print('write -P 0x33 %d 4k' % (random.randrange($DATA_MIB * 256) * 4096))" >"$TMP/cmds"
      qemu-io -f raw "$PU" <"$TMP/cmds" >/dev/null ;;
    fresh) qemu-io -f raw -c "write -P 0x44 1024M ${MIB_W}M" "$PU" >/dev/null ;;
    esac
    read -r sc0 bc0 < <(api GET "os-vendor-replications/$R" | jq -r '.replication | "\(.sidecar_bytes) \(.bytes_copied)"')
    t0=$(date +%s.%N)
    api POST "$RCGS/$G/action" '{"os-sync-replication-consistency-group": null}' >/dev/null
    wait_json "$RCGS/$G" .replication_consistency_group.replication_status active
    t1=$(date +%s.%N)
    read -r sc1 bc1 < <(api GET "os-vendor-replications/$R" | jq -r '.replication | "\(.sidecar_bytes) \(.bytes_copied)"')
    python3 -c "
import sys
l, s, sc, bc, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
print('%-9s %-10s resynced %7.1f MiB  sidecar %7.1f MiB  (%.2f of resynced)  resync %.2f s' % (l, s, bc / 2**20, sc / 2**20, sc / bc if bc else 0, t))
" "$label" "$s" $((sc1 - sc0)) $((bc1 - bc0)) "$(python3 -c "print($t1 - $t0)")"
  done
  ev_stop
  rm -rf "$DATA"
}

run_all sidecar
EVSREP_SIDECAR_OFF=1 run_all off
