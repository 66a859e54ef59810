#!/usr/bin/env bash
# Scale (issue 13), first curve: how evsrepd's cost grows with the number of
# pairs on one node. For each N in COUNTS (1 10 100): N pairs of 1 GiB
# volumes (idle, active), then a clean restart of evsrepd, and:
#   - start-up time: from exec to the API answering GET of the pairs list
#     (expected: linear in N, small constant: each pair opens its meta file);
#   - RSS after start-up (expected: constant + linear in N: one bitmap of
#     16384 bits and the AL per 1 GiB pair);
#   - API list latency p99 (wrk --latency, GET of the pairs list; expected:
#     linear in N, the reply lists N pairs).
# Prints a table and writes scale.dat; with gnuplot installed also
# scale.png (OUT_DIR, default bench/). Still to come (issue 13, "Scale"):
# 1,000 pairs, the pause fence of a 16-pair group while the others
# replicate, volume size 1 GiB -> 16 TiB, dirty fraction, client count.
#
#   bench/scale.sh                      # COUNTS="1 10 100" DURATION=5
. "$(dirname "$0")/lib.sh"
need wrk
COUNTS=${COUNTS:-1 10 100}
DURATION=${DURATION:-5}
OUT_DIR=${OUT_DIR:-$SRC/bench}
PAIRS_PATH=os-vendor-replications

ms_since() { python3 -c "import time,sys; print('%.0f' % ((time.time() - float(sys.argv[1])) * 1000))" "$1"; }

: >"$TMP/scale.dat"
printf '%-7s %12s %10s %16s\n' pairs start-up-ms rss-MiB list-p99-ms
have=0
ev_start
for n in $COUNTS; do
  for _ in $(seq $((have + 1)) "$n"); do
    p=$(volume az1 1)
    d=$(volume az2 1)
    pair "$p" "$d" >/dev/null
  done
  have=$n
  for r in $(api GET "$PAIRS_PATH" | jq -r '.replications[].id'); do
    wait_json "$PAIRS_PATH/$r" .replication.replication_status active >/dev/null
  done
  got=$(api GET "$PAIRS_PATH" | jq '.replications | length')
  [ "$got" -eq "$n" ] || bench_fail "$n pairs asked, the list has $got"
  ev_stop
  t0=$(date +%s.%N)
  ev_start
  until api GET "$PAIRS_PATH" >/dev/null 2>&1; do sleep 0.01; done
  start_ms=$(ms_since "$t0")
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$EV_PID/status")
  out=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 5s --latency -H "X-Auth-Token: $TOKEN" "$URL/$PAIRS_PATH") ||
    { echo "bench: wrk failed: $out" >&2; exit 1; }
  if grep -q 'Socket errors\|Non-2xx' <<<"$out"; then echo "bench: wrk errors: $out" >&2; exit 1; fi
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000} print v}' <<<"$out")
  [ -n "$p99" ] || bench_fail "$n pairs: no p99 from wrk"
  printf '%-7s %12s %10s %16s\n' "$n" "$start_ms" "$rss" "${p99:-n/a}"
  echo "$n $start_ms $rss ${p99:-0}" >>"$TMP/scale.dat"
done
mkdir -p "$OUT_DIR"
cp "$TMP/scale.dat" "$OUT_DIR/scale.dat"
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 900,600
set output "$OUT_DIR/scale.png"
set multiplot layout 3,1 title "evsrepd cost vs pairs on one node (1 GiB pairs, idle)"
set logscale x
set xlabel "pairs"
set ylabel "start-up (ms)"
plot "$OUT_DIR/scale.dat" using 1:2 with linespoints title "measured"
set ylabel "RSS (MiB)"
plot "$OUT_DIR/scale.dat" using 1:3 with linespoints title "measured"
set ylabel "GET pairs p99 (ms)"
plot "$OUT_DIR/scale.dat" using 1:4 with linespoints title "measured"
unset multiplot
GP
  echo "wrote $OUT_DIR/scale.dat and $OUT_DIR/scale.png"
else
  echo "wrote $OUT_DIR/scale.dat (no gnuplot: apt-get install gnuplot-nox for scale.png)"
fi
