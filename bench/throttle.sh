#!/usr/bin/env bash
# Resync throttle (issue 14, item 4), side by side in one run:
#  1. Ceiling: a group of PAIRS (2) pairs; DATA_MIB (256) MiB written on every
#     production disk while paused, then synced unthrottled (rate_free), then
#     the same again under a ceiling of CEIL_MIB MiB/s (default: a third of
#     rate_free, so the ceiling binds). Rates are data bytes over the
#     engine's resync time (first "resync started" to last "resync done" in
#     the daemon log). Target: rate / ceiling within 0.9..1.1.
#  2. Adaptive: 4 KiB random client writes (fio, QD 4) on one production disk
#     while the group resyncs FULL_MIB per disk: unthrottled, then adaptive
#     (floor ADAPT_MIN_MIB). Client write latency p50/p99 and resync rate of
#     each: what the adaptive mode gives the client and what it costs the
#     resync.
#
#   bench/throttle.sh                        # PAIRS=2 DATA_MIB=256
#   ONLY=ceiling bench/throttle.sh           # or ONLY=adaptive
. "$(dirname "$0")/lib.sh"
PAIRS=${PAIRS:-2}
DATA_MIB=${DATA_MIB:-256}
FULL_MIB=${FULL_MIB:-768}
ADAPT_MIN_MIB=${ADAPT_MIN_MIB:-8}
RCGS=os-vendor-replication-consistency-groups
PAUSE='{"os-stop-replication-consistency-group": null}'
SYNC='{"os-sync-replication-consistency-group": null}'
G=.replication_consistency_group

EV_LOG_LEVEL=info ev_start

PV=()
ids=""
for _ in $(seq 1 "$PAIRS"); do
  p=$(volume az1 1)
  d=$(volume az2 1)
  r=$(pair "$p" "$d")
  PV+=("$p")
  ids+="\"$r\","
done
for r in $(echo "${ids%,}" | tr -d '"' | tr , ' '); do
  wait_json "os-vendor-replications/$r" .replication.replication_status active >/dev/null
done
GID=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[${ids%,}],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r "$G.id")
wait_json "$RCGS/$GID" "$G.status" available >/dev/null

throttle() { # throttle JSON_SETTING
  api POST "$RCGS/$GID/action" "{\"os-set-resync-throttle\": $1}" >/dev/null
}

# dirty MIB: pause, write MIB of data from offset 0 of every production disk.
dirty() {
  local p
  api POST "$RCGS/$GID/action" "$PAUSE" >/dev/null
  for p in "${PV[@]}"; do
    fio --name=d --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=write --bs=1M --iodepth=4 \
      --size="${1}M" --randrepeat=0 >/dev/null 2>&1
  done
}

# resync: sync and wait; prints "engine_seconds data_bytes" (data bytes
# from the engine's "bytes of data copied" counters, per pair, as a delta).
resync() {
  local mark
  mark=$(wc -l <"$TMP/evsrepd.log")
  api POST "$RCGS/$GID/action" "$SYNC" >/dev/null
  wait_json "$RCGS/$GID" "$G.replication_status" active >/dev/null
  tail -n +"$mark" "$TMP/evsrepd.log" | python3 -c '
import sys, re, datetime
ts = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
st, done = [], {}
for l in sys.stdin:
    if "resync started" in l:
        st.append(ts(l))
    m = re.search(r"pair (\S+): resync done .* (\d+) bytes of data copied", l)
    if m:
        st.append(ts(l))
        done[m.group(1)] = int(m.group(2))
print("%.3f" % (max(st) - min(st) if st else 0))'
}

# data_total: data bytes copied by every pair's mirror so far (the engine
# logs it at each "resync done"; the last line per pair is cumulative).
data_total() {
  python3 - "$TMP/evsrepd.log" <<'PY'
import re, sys
last = {}
for l in open(sys.argv[1]):
    m = re.search(r"pair (\S+): resync done .* (\d+) bytes of data copied", l)
    if m:
        last[m.group(1)] = int(m.group(2))
print(sum(last.values()))
PY
}

mibps() { python3 -c 'import sys; b,s=float(sys.argv[1]),float(sys.argv[2]); print("%.1f" % (b/s/1048576 if s else 0))' "$1" "$2"; }

if [ -z "${ONLY:-}" ] || [ "$ONLY" = ceiling ]; then
  api POST "$RCGS/$GID/action" "$SYNC" >/dev/null
  wait_json "$RCGS/$GID" "$G.replication_status" active >/dev/null
  throttle '{}'
  dirty "$DATA_MIB"
  d0=$(data_total)
  s_free=$(resync)
  d_free=$(($(data_total) - d0))
  r_free=$(mibps "$d_free" "$s_free")
  CEIL_MIB=${CEIL_MIB:-$(python3 -c "print(max(8, int(float('$r_free') / 3)))")}
  throttle "{\"max_mib_per_sec\": $CEIL_MIB}"
  dirty "$DATA_MIB"
  d0=$(data_total)
  s_thr=$(resync)
  d_thr=$(($(data_total) - d0))
  r_thr=$(mibps "$d_thr" "$s_thr")
  throttle '{}'
  echo "unthrottled resync: $d_free data bytes in ${s_free}s = $r_free MiB/s"
  echo "throttled resync, ceiling $CEIL_MIB MiB/s: $d_thr data bytes in ${s_thr}s = $r_thr MiB/s"
  echo "ratio throttled/ceiling: $(ratio "$r_thr" "$CEIL_MIB")   (target 0.90..1.10); throttled/unthrottled: $(ratio "$r_thr" "$r_free")"
fi

if [ -z "${ONLY:-}" ] || [ "$ONLY" = adaptive ]; then
  api POST "$RCGS/$GID/action" "$SYNC" >/dev/null
  wait_json "$RCGS/$GID" "$G.replication_status" active >/dev/null
  # client_during_resync SETTING: client p50/p99 (us) and resync MiB/s.
  client_during_resync() {
    local fio_pid d0 s
    throttle "$1"
    dirty "$FULL_MIB"
    d0=$(data_total)
    fio --name=c --ioengine=nbd --uri="$(nbd_uri "${PV[0]}")" --rw=randwrite --bs=4k --iodepth=4 \
      --offset=$((FULL_MIB + 16))M --size=128M --time_based --runtime=600 --norandommap \
      --randrepeat=0 --output-format=json >"$TMP/cfio.json" 2>"$TMP/cfio.err" &
    fio_pid=$!
    sleep 1
    s=$(resync)
    kill -INT $fio_pid 2>/dev/null || true
    wait $fio_pid 2>/dev/null || true
    python3 - "$TMP/cfio.json" "$(($(data_total) - d0))" "$s" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
w = json.loads(t[t.index("{"):])["jobs"][0]["write"]
p = w["clat_ns"]["percentile"]
b, s = float(sys.argv[2]), float(sys.argv[3])
print("client 4k QD4 write latency p50 %.0f us, p99 %.0f us; resync %.1f MiB/s"
      % (float(p["50.000000"]) / 1000, float(p["99.000000"]) / 1000, b / s / 1048576 if s else 0))
PY
  }
  echo "unthrottled, under client load: $(client_during_resync '{}')"
  echo "adaptive (floor $ADAPT_MIN_MIB MiB/s), under client load: $(client_during_resync "{\"adaptive\": true, \"min_mib_per_sec\": $ADAPT_MIN_MIB}")"
  throttle '{}'
fi
