#!/usr/bin/env bash
# Consistency groups (issue 4), side by side in one run:
#  1. Fence time of a pause on a group of PAIRS (16) pairs while fio keeps
#     every production disk busy (4 KiB random writes, QD 4 each): p50/p99/max
#     over PAUSES (100) pauses, from the daemon's own "fence held" log lines,
#     and the write latency fio saw meanwhile vs. the same load without pauses.
#     Target p99 < 10 ms.
#  2. Incremental resync: time to resync 1% dirty vs 100% dirty of the same
#     group (from the engine's resync start/done log lines, and as a client
#     polling the API sees it). Target ratio <= 0.03.
#
#   bench/group.sh                      # PAIRS=16 PAUSES=100
#   ONLY=fence bench/group.sh           # or ONLY=resync
. "$(dirname "$0")/lib.sh"
PAIRS=${PAIRS:-16}
PAUSES=${PAUSES:-100}
RS_PAIRS=${RS_PAIRS:-4}
RCGS=os-vendor-replication-consistency-groups
PAUSE='{"os-stop-replication-consistency-group": null}'
SYNC='{"os-sync-replication-consistency-group": null}'

EV_LOG_LEVEL=info ev_start

# make_group N: N active pairs of 1 GiB volumes in one group; sets PV (production
# ids) and GID.
make_group() {
  local n=$1 i p d ids="" r g
  PV=()
  for i in $(seq 1 "$n"); do
    p=$(volume az1 1)
    d=$(volume az2 1)
    r=$(pair "$p" "$d")
    PV+=("$p")
    ids+="\"$r\","
  done
  for r in $(echo "${ids%,}" | tr -d '"' | tr , ' '); do
    wait_json "os-vendor-replications/$r" .replication.replication_status active >/dev/null
  done
  g=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[${ids%,}],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication_consistency_group.id)
  wait_json "$RCGS/$g" .replication_consistency_group.status available >/dev/null
  GID=$g
}

sync_wait() { # sync_wait GROUP
  api POST "$RCGS/$1/action" "$SYNC" >/dev/null
  wait_json "$RCGS/$1" .replication_consistency_group.replication_status active
}

pctl() { # pctl FILE: p50 p99 max of the numbers in FILE
  python3 - "$1" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]).read().split())
q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print("n=%d p50=%.0f p99=%.0f max=%.0f" % (len(v), q(0.5), q(0.99), v[-1]))
PY
}

# fio_busy SECONDS OUT: one fio job per production disk, 4 KiB random writes QD 4.
fio_busy() {
  local args=() p
  for p in "${PV[@]}"; do
    args+=(--name="w$p" --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k --iodepth=4
      --time_based --runtime="$1" --norandommap --randrepeat=0)
  done
  fio --output-format=json "${args[@]}" >"$2" 2>"$TMP/fio.err"
}
fio_lat() { # fio_lat JSON: IOPS and completion latency p50/p99.9/max in us, over all jobs
  python3 - "$1" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
jobs = json.loads(t[t.index("{"):])["jobs"]
iops = sum(j["write"]["iops"] for j in jobs)
p = lambda k: max(float(j["write"]["clat_ns"]["percentile"].get(k, 0)) for j in jobs) / 1000
mx = max(j["write"]["clat_ns"]["max"] for j in jobs) / 1000
print("%.0f IOPS, write latency p50 %.0f us, p99.9 %.0f us, max %.0f us" % (iops, p("50.000000"), p("99.900000"), mx))
PY
}

if [ -z "${ONLY:-}" ] || [ "$ONLY" = fence ]; then
  make_group "$PAIRS"
  G=$GID
  sync_wait "$G"
  # Baseline: the same load, no pauses.
  fio_busy 10 "$TMP/base.json"
  # Pauses under load: pause, then sync back to active, PAUSES times.
  : >"$TMP/fence.log"
  mark=$(wc -l <"$TMP/evsrepd.log")
  secs=$((PAUSES / 2 + 30))
  fio_busy "$secs" "$TMP/load.json" &
  FIO=$!
  sleep 2
  for i in $(seq 1 "$PAUSES"); do
    api POST "$RCGS/$G/action" "$PAUSE" >/dev/null
    sync_wait "$G" >/dev/null
    kill -0 $FIO 2>/dev/null || { echo "bench: fio ended before pause $i; raise its runtime" >&2; break; }
  done
  wait $FIO || true
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*$G: paused $PAIRS pair(s); fence held \([0-9]*\) us.*/\1/p" >"$TMP/fence.log"
  echo "fence of a pause, $PAIRS pairs under load (us): $(pctl "$TMP/fence.log")   (target p99 < 10000)"
  echo "fio without pauses: $(fio_lat "$TMP/base.json")"
  echo "fio with $PAUSES pauses: $(fio_lat "$TMP/load.json")"
fi

if [ -z "${ONLY:-}" ] || [ "$ONLY" = resync ]; then
  make_group "$RS_PAIRS"
  G2=$GID
  sync_wait "$G2"
  # resync_time PERCENT: dirty PERCENT of every disk's chunks while paused, then
  # time the sync. Prints "engine_seconds api_seconds bytes".
  resync_time() {
    local pct=$1 p mark t0 t1 b0 b1
    api POST "$RCGS/$G2/action" "$PAUSE" >/dev/null
    for p in "${PV[@]}"; do
      if [ "$pct" = 100 ]; then
        fio --name=d --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=write --bs=1M --iodepth=4 \
          --size=100% >/dev/null 2>&1
      else
        # pct% of the 16384 64 KiB chunks, one 4 KiB write in each
        fio --name=d --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k \
          --blockalign=64k --number_ios=$((16384 * pct / 100)) --norandommap=0 --randrepeat=0 \
          --size=100% >/dev/null 2>&1
      fi
    done
    b0=$(api GET "$RCGS/$G2" | jq -r .replication_consistency_group.bytes_copied)
    mark=$(wc -l <"$TMP/evsrepd.log")
    t0=$(date +%s.%N)
    sync_wait "$G2"
    t1=$(date +%s.%N)
    b1=$(api GET "$RCGS/$G2" | jq -r .replication_consistency_group.bytes_copied)
    tail -n +"$mark" "$TMP/evsrepd.log" | python3 -c '
import sys, datetime
ts = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
st = [ts(l) for l in sys.stdin if "resync started" in l or "resync done" in l]
print("%.3f" % (max(st) - min(st) if st else 0), end=" ")'
    python3 -c "print('%.3f %d' % ($t1 - $t0, $b1 - $b0))"
  }
  read -r e1 a1 b1 < <(resync_time 1)
  read -r e100 a100 b100 < <(resync_time 100)
  echo "resync of 1% dirty: engine ${e1}s, API-observed ${a1}s, $b1 bytes"
  echo "resync of 100% dirty: engine ${e100}s, API-observed ${a100}s, $b100 bytes"
  echo "ratio 1%/100%: engine $(ratio "$e1" "$e100"), API-observed $(ratio "$a1" "$a100")   (target <= 0.03)"
fi
