#!/usr/bin/env bash
# Consistency groups (issue 4), side by side in one run:
#  1. A group of PAIRS (16) pairs while fio keeps every production disk busy
#     (4 KiB random writes, QD 4 each); PAUSES (100) pauses, each followed by
#     a sync back to active, all while fio runs (fio is started with no end
#     and stopped right after the last pause; a fio that ended early, failed,
#     or fewer fence samples than pauses fail the run). Reported:
#       - the fence of each pause (p50/p99/max, from the daemon's own
#         "fence held" log lines; target p99 < 5 ms);
#       - the pause request as the client sees it (curl, p50/p99/max;
#         target p99 < 100 ms);
#       - the wait, after the fence, for the writes that were mirrored at
#         the switch (the pause fence does not drain; the answer waits);
#       - fio's write latency (p50, p99.9, max) over the run with pauses vs
#         the same load without pauses, run right after it for as long, at
#         most 60 s (BASE_SECS overrides; target p99.9 with pauses <= 1.2 x
#         without);
#       - where the pause request's time goes: the daemon's whole request
#         (its access log line: headers in to reply sent), and from its
#         "DR image frozen" lines the action's parts: locks and reads, the
#         pause, the store record.
#         The run with pauses also carries the resyncs of the syncs.
#  2. Incremental resync: time to resync 1% dirty vs 100% dirty of the same
#     group (from the engine's resync start/done log lines, and as a client
#     polling the API sees it). Target ratio <= 0.02.
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
if not v:
    print("n=0 (no samples)")
    sys.exit(0)
q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print("n=%d p50=%.0f p99=%.0f max=%.0f" % (len(v), q(0.5), q(0.99), v[-1]))
PY
}

# fio_busy SECONDS OUT: one fio job per production disk, 4 KiB random writes
# QD 4, for SECONDS; fails the run when fio does.
fio_busy() {
  local args=() p
  for p in "${PV[@]}"; do
    args+=(--name="w$p" --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k --iodepth=4
      --time_based --runtime="$1" --norandommap --randrepeat=0)
  done
  fio --output-format=json "${args[@]}" >"$2" 2>"$TMP/fio.err" ||
    { cat "$TMP/fio.err" >&2; echo "bench: fio failed" >&2; exit 1; }
}
# fio_start OUT: the same load with no end (a day); fio_stop ends it with
# SIGINT (fio then writes its report and exits 0, or 128 for the signal) and
# fails the run when fio had ended by itself or reported an error.
fio_start() {
  local args=() p
  for p in "${PV[@]}"; do
    args+=(--name="w$p" --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k --iodepth=4
      --time_based --runtime=86400 --norandommap --randrepeat=0)
  done
  set -m # its own process group: a background job of a script ignores SIGINT otherwise
  fio --output-format=json "${args[@]}" >"$1" 2>"$TMP/fio.err" &
  FIO=$!
  set +m
  BENCH_CLEANUP+=("kill -KILL $FIO 2>/dev/null")
}
fio_stop() { # fio_stop OUT
  local rc=0
  kill -0 "$FIO" 2>/dev/null || { cat "$TMP/fio.err" >&2; echo "bench: fio ended before the last pause" >&2; exit 1; }
  kill -INT "$FIO"
  wait "$FIO" || rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 128 ]; then
    cat "$TMP/fio.err" >&2
    echo "bench: fio exited with $rc" >&2
    exit 1
  fi
  python3 - "$1" <<'PY' || { cat "$TMP/fio.err" >&2; exit 1; }
import json, sys
t = open(sys.argv[1]).read()
jobs = json.loads(t[t.index("{"):])["jobs"]
bad = [j["jobname"] for j in jobs if j.get("error") or not j["write"]["total_ios"]]
if bad:
    sys.exit("bench: fio jobs failed or wrote nothing: %s" % " ".join(bad))
PY
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

# p999 JSON: the highest p99.9 write completion latency over the jobs (us)
p999() {
  python3 - "$1" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
jobs = json.loads(t[t.index("{"):])["jobs"]
print("%.0f" % (max(float(j["write"]["clat_ns"]["percentile"].get("99.900000", 0)) for j in jobs) / 1000))
PY
}

if [ -z "${ONLY:-}" ] || [ "$ONLY" = fence ]; then
  make_group "$PAIRS"
  G=$GID
  sync_wait "$G"
  # Pauses under load: pause, then sync back to active, PAUSES times, all
  # while fio runs; the pause request is timed as the client sees it.
  : >"$TMP/pause_curl.log"
  mark=$(wc -l <"$TMP/evsrepd.log")
  t_load=$(date +%s)
  fio_start "$TMP/load.json"
  sleep 2
  for i in $(seq 1 "$PAUSES"); do
    kill -0 "$FIO" 2>/dev/null || { cat "$TMP/fio.err" >&2; echo "bench: fio ended before pause $i" >&2; exit 1; }
    # curl's own clock: connected, first byte of the reply, done (us)
    curl -sf -o /dev/null -w '%{time_connect} %{time_starttransfer} %{time_total}\n' -X POST \
      -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' --data-binary "$PAUSE" \
      "$URL/$RCGS/$G/action" | awk '{printf "%.0f %.0f %.0f\n", $1 * 1e6, $2 * 1e6, $3 * 1e6}' \
      >>"$TMP/pause_curl.log" || { echo "bench: pause $i failed" >&2; exit 1; }
    sync_wait "$G" >/dev/null
  done
  fio_stop "$TMP/load.json"
  # Baseline: the same load, no pauses, as long as the run with them.
  BASE_SECS=${BASE_SECS:-$(($(date +%s) - t_load))}
  [ "$BASE_SECS" -le 60 ] || BASE_SECS=60 # steady by then; a pause cycle is ~10 s
  fio_busy "$BASE_SECS" "$TMP/base.json"
  awk '{print $3}' "$TMP/pause_curl.log" >"$TMP/pause_req.log"
  awk '{print $1}' "$TMP/pause_curl.log" >"$TMP/connect.log"
  awk '{print $2}' "$TMP/pause_curl.log" >"$TMP/firstbyte.log"
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*$G: paused $PAIRS pair(s); fence held \([0-9]*\) us.*/\1/p" >"$TMP/fence.log"
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*$G: paused $PAIRS pair(s); fence held [0-9]* us; mirrored writes in flight at the switch done \([0-9]*\) us.*/\1/p" >"$TMP/inflight.log"
  tail -n +"$mark" "$TMP/evsrepd.log" | grep "group $G: DR image frozen" >"$TMP/frozen.log" || true
  sed -n 's/.*locks and reads \([0-9]*\) us.*/\1/p' "$TMP/frozen.log" >"$TMP/locks.log"
  sed -n 's/.*pause in all \([0-9]*\) us.*/\1/p' "$TMP/frozen.log" >"$TMP/pause_all.log"
  sed -n 's/.*record \([0-9]*\) us).*/\1/p' "$TMP/frozen.log" >"$TMP/record.log"
  # The daemon's access log: each action POST on G from its headers to its
  # reply sent; after the mark they alternate pause, sync (sync_wait).
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s#.* POST /v2/[^ ]*/$G/action [0-9]* \([0-9.]*\)ms\$#\1#p" |
    awk 'NR % 2 == 1 {printf "%.0f\n", $1 * 1000}' >"$TMP/http.log"
  for f in fence inflight pause_req connect firstbyte http locks pause_all record; do
    n=$(wc -l <"$TMP/$f.log")
    [ "$n" -eq "$PAUSES" ] || bench_fail "$f: $n samples for $PAUSES pauses"
  done
  echo "fence of a pause, $PAIRS pairs under load (us): $(pctl "$TMP/fence.log")   (target p99 < 5000)"
  echo "writes in flight at the switch, done after the fence (us): $(pctl "$TMP/inflight.log")"
  echo "pause request, as the client waits for it (us): $(pctl "$TMP/pause_req.log")   (target p99 < 100000)"
  echo "  curl connected after: $(pctl "$TMP/connect.log"); first byte of the reply after: $(pctl "$TMP/firstbyte.log")"
  echo "  in the daemon, headers in to reply sent: $(pctl "$TMP/http.log")"
  echo "  of which the action: locks and reads $(pctl "$TMP/locks.log"); quiesce, fence and writes in flight $(pctl "$TMP/pause_all.log"); store record $(pctl "$TMP/record.log")"
  echo "fio without pauses ($BASE_SECS s): $(fio_lat "$TMP/base.json")"
  echo "fio with $PAUSES pauses (until the last): $(fio_lat "$TMP/load.json")"
  echo "write latency p99.9 with/without pauses: $(ratio "$(p999 "$TMP/load.json")" "$(p999 "$TMP/base.json")" "p99.9 with/without pauses")   (target <= 1.2)"
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
          --size=100% >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
      else
        # pct% of the 16384 64 KiB chunks, one 4 KiB write in each
        fio --name=d --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k \
          --blockalign=64k --number_ios=$((16384 * pct / 100)) --norandommap=0 --randrepeat=0 \
          --size=100% >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
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
print("%.3f" % (max(st) - min(st)) if len(st) >= 2 else "n/a", end=" ")'
    python3 -c "print('%.3f %d' % ($t1 - $t0, $b1 - $b0))"
  }
  read -r e1 a1 b1 < <(resync_time 1)
  read -r e100 a100 b100 < <(resync_time 100)
  echo "resync of 1% dirty: engine ${e1}s, API-observed ${a1}s, $b1 bytes"
  echo "resync of 100% dirty: engine ${e100}s, API-observed ${a100}s, $b100 bytes"
  echo "ratio 1%/100%: engine $(ratio "$e1" "$e100" "resync engine 1%/100%"), API-observed $(ratio "$a1" "$a100" "resync API 1%/100%")   (target <= 0.02)"
fi
