#!/usr/bin/env bash
# Mirroring over a DR link between two nodes vs mirroring locally (issue 12's
# performance goals), every row side by side with its peer:
#
#  1. 4 KiB random write QD16 (IOPS) and 1 MiB sequential write QD1 (MiB/s),
#     fio over NBD on the production export of an active pair: the pair of a
#     two-node cluster (node a serves az1 on 127.0.0.21, node b az2 on
#     127.0.0.22, PostgreSQL store, the DR leg over the NBD + TLS-PSK link)
#     vs the pair of an all-in-one daemon (both legs local). Target >= 0.8.
#  2. QD1 4 KiB write latency p50 with RTT_US (1000) added between the nodes
#     (this kernel has no netem: bench_tcpdelay, a delaying proxy, holds
#     every chunk RTT_US/2 in each direction; the link of a second pair goes
#     through it) vs the local pair's p50. Target: link p50 <= local p50 +
#     RTT + 150 us. The proxy is measured alone first (fio QD1 p50 on an
#     unpaired volume of node b, direct vs through the proxy without and
#     with the delay): the RTT used is what the delayed proxy adds, i.e.
#     the configured delay plus the proxy's own cost.
#  3. Initial sync over the link (engine log: "resync started" to "resync
#     done" on node a) vs `nbdcopy --flush` between the same two kinds of
#     exports (a fresh az1 volume on node a to a fresh az2 volume on node b,
#     plain NBD), both volumes DATA_MIB (1024: full) of random data. Target
#     >= 0.8 (throughput: nbdcopy time / sync time).
#
# Rounds alternate which side goes first; the figures are means (1, 3) or
# medians (2) with every round's value printed. A missing figure prints n/a
# and fails the run (exit 1).
#
#   bench/link.sh                 # RUNTIME=5 ROUNDS=3 RTT_US=1000 DATA_MIB=1024
#   ONLY=write|latency|sync bench/link.sh
#   PROFILE='perf stat -e task-clock,context-switches -p $PIDS' ONLY=write bench/link.sh
#                                 # a profiler next to an extra run of each side
#                                 # ($PIDS: node a,node b / the all-in-one daemon)
. "$(dirname "$0")/lib.sh"
need nbdcopy psql openssl qemu-img
RUNTIME=${RUNTIME:-5}
ROUNDS=${ROUNDS:-3}
RTT_US=${RTT_US:-1000}
DATA_MIB=${DATA_MIB:-1024}
BUILD=${EVSREP_BUILD:-$SRC/build}
[ -x "$BUILD/bench/bench_tcpdelay" ] || cmake --build "$BUILD" -j1 --target bench_tcpdelay >/dev/null
TCPDELAY=$BUILD/bench/bench_tcpdelay
only() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }
COLS="-22 11 11 9 8" # the rows' columns: job, link, its peer, ratio, target

# --- the all-in-one daemon (local legs) ---------------------------------------------
EV_LOG_LEVEL=info ev_start
LOCAL_URL=$URL

# --- PostgreSQL and the two nodes -------------------------------------------------------
bash "$SRC/tests/tools/pg_cluster.sh" start "$TMP/pg" >/dev/null
declare -A NPID=() IP=([a]=127.0.0.21 [b]=127.0.0.22) NURL=() NNBD=()
PROXY_PIDS=()
cluster_down() {
  local p
  for p in "${PROXY_PIDS[@]}" "${NPID[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PROXY_PIDS[@]}" "${NPID[@]}"; do wait "$p" 2>/dev/null || true; done
  bash "$SRC/tests/tools/pg_cluster.sh" stop "$TMP/pg" >/dev/null 2>&1 || true
}
BENCH_CLEANUP+=(cluster_down)
PG=$(cat "$TMP/pg/url")
DBURL="${PG%/*}/evsrep_bench_link"
psql -q "$PG" -c "CREATE DATABASE evsrep_bench_link" >/dev/null
PROJECT=${URL##*/}
node_start() { # node_start NAME AZ
  local n=$1 dir=$TMP/n$1
  mkdir -p "$dir"
  cat >"$TMP/$n.conf" <<EOF
[DEFAULT]
data_dir = $dir
db = $DBURL
tokens = $DATA/tokens
listen = ${IP[$n]}:0
availability_zones = $2
node_name = node-$n
cluster_key_file = $TMP/cluster.key
log_level = info
[az:$2]
nbd_listen = ${IP[$n]}:0
EOF
  "$EVSREPD" --config "$TMP/$n.conf" ${EVSREPD_ARGS:-} >>"$TMP/$n.log" 2>&1 &
  NPID[$n]=$!
  for _ in $(seq 1 300); do
    [ -s "$dir/evsrepd.ports" ] && break
    kill -0 "${NPID[$n]}" 2>/dev/null || { tail -n 20 "$TMP/$n.log" >&2; exit 1; }
    sleep 0.05
  done
  NURL[$n]="http://${IP[$n]}:$(awk -F= '$1=="http"{print $2}' "$dir/evsrepd.ports")/v2/$PROJECT"
  NNBD[$n]="${IP[$n]}:$(awk -F= '$1 ~ /^nbd\./{print $2}' "$dir/evsrepd.ports")"
}
node_start a az1
node_start b az2
CLUSTER_URL=${NURL[a]}
local_side() { URL=$LOCAL_URL; }
link_side() { URL=$CLUSTER_URL; }

fill_full() { # fill_full VOLUME: allocate every block (as after real use)
  fio --name=fill --ioengine=nbd --uri="$(nbd_uri "$1")" --rw=write --bs=1M --iodepth=4 --size=100% \
    >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
}
# fio_p50 URI: QD1 4 KiB random write completion latency p50 (us)
fio_p50() {
  fio --name=b --ioengine=nbd --uri="$1" --rw=randwrite --bs=4k --iodepth=1 --time_based \
    --runtime="$RUNTIME" --norandommap --randrepeat=0 --output-format=json >"$TMP/fio.json" \
    2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
  python3 - "$TMP/fio.json" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]["write"]
print("%.0f" % (j["clat_ns"]["percentile"]["50.000000"] / 1000.0))
PY
}
# new_pair SIDE: a fresh 1 GiB pair on that side, active; prints "PROD PAIR"
new_pair() {
  "$1"
  local p d r
  p=$(volume az1 1)
  d=$(volume az2 1)
  r=$(pair "$p" "$d")
  wait_json "os-vendor-replications/$r" .replication.replication_status active
  echo "$p $r"
}

if only write; then
  read -r LP _ < <(new_pair local_side)
  read -r CP _ < <(new_pair link_side)
  local_side; fill_full "$LP"; LURI=$(nbd_uri "$LP")
  link_side; fill_full "$CP"; CURI=$(nbd_uri "$CP")
  bench_line "$COLS" job "over link" local ratio target "($ROUNDS rounds x ${RUNTIME}s)"
  side_figure() { if [ "$1" = link ]; then fio_figure "$CURI" "$rw" "$bs" "$qd" "$RUNTIME"; else
    fio_figure "$LURI" "$rw" "$bs" "$qd" "$RUNTIME"; fi; }
  for job in "randwrite-4k-qd16 randwrite 4k 16 IOPS" "seqwrite-1m-qd1 write 1M 1 MiB/s"; do
    read -r name rw bs qd unit <<<"$job"
    if [ -n "${PROFILE:-}" ]; then
      # PROFILE="perf stat -e task-clock -p \$PIDS": runs for RUNTIME s next
      # to an extra run of each side, with PIDS the side's daemons (link:
      # node a,node b; local: the all-in-one daemon)
      for side in link local; do
        if [ $side = link ]; then pids="${NPID[a]},${NPID[b]}" uri=$CURI; else pids=$EV_PID uri=$LURI; fi
        (export PIDS=$pids; eval "$PROFILE -- sleep $RUNTIME") >"$TMP/profile.out" 2>&1 &
        fig=$(fio_figure "$uri" "$rw" "$bs" "$qd" "$RUNTIME")
        wait $! || true
        echo "profile of $name, $side side ($pids), $fig $unit:"; cat "$TMP/profile.out"
      done
    fi
    bench_rounds "$ROUNDS" side_figure local link
    cv=${BENCH_VALS[link]} lv=${BENCH_VALS[local]}
    c=$(mean $cv) l=$(mean $lv)
    bench_line "$COLS" "$name" "$c" "$l" "$(ratio "$c" "$l" "$name link/local")" ">= 0.8" "$unit" \
      "(link: $cv| local: $lv)"
  done
fi

if only latency; then
  # The proxy alone: an unpaired volume of node b, direct and through it.
  link_side
  B=$(volume az2 1)
  fill_full "$B"
  BURI=$(nbd_uri "$B")
  BEXP=${BURI##*/}
  BHOST=${NNBD[b]%:*} BPORT=${NNBD[b]##*:}
  proxy() { # proxy DELAY_US: starts one (not in a subshell: its pid is kept for the cleanup)
    "$TCPDELAY" 127.0.0.23 "$TMP/proxy.$1" "$BHOST" "$BPORT" "$1" >>"$TMP/proxy.log" 2>&1 &
    PROXY_PIDS+=($!)
    for _ in $(seq 1 100); do [ -s "$TMP/proxy.$1" ] && break; sleep 0.02; done
  }
  proxy 0
  proxy $((RTT_US / 2))
  P0=$(cat "$TMP/proxy.0") PD=$(cat "$TMP/proxy.$((RTT_US / 2))")
  # The second pair's link goes through the delaying proxy: node b's NBD
  # endpoint in the store points at it while the pair is created (node a
  # reads it when it opens the link; node b writes it only at start).
  psql -q "$DBURL" -c "UPDATE nodes SET nbd = '{\"az2\":\"127.0.0.23:$PD\"}' WHERE name = 'node-b'" >/dev/null
  read -r DP DR < <(new_pair link_side)
  grep -q "link export for pair $DR .*opened by node node-a" "$TMP/b.log" ||
    { echo "bench: pair $DR has no link on node b" >&2; exit 1; }
  fill_full "$DP"
  DURI=$(nbd_uri "$DP")
  read -r LP2 _ < <(new_pair local_side)
  local_side; fill_full "$LP2"; LURI2=$(nbd_uri "$LP2")
  d0="" d1="" d2="" lv="" cv=""
  for r in $(seq 1 "$ROUNDS"); do
    d0+="$(fio_p50 "$BURI") "
    d1+="$(fio_p50 "nbd://127.0.0.23:$P0/$BEXP") "
    d2+="$(fio_p50 "nbd://127.0.0.23:$PD/$BEXP") "
    if [ $((r % 2)) = 1 ]; then
      lv+="$(fio_p50 "$LURI2") "; cv+="$(fio_p50 "$DURI") "
    else
      cv+="$(fio_p50 "$DURI") "; lv+="$(fio_p50 "$LURI2") "
    fi
  done
  med() { python3 -c 'import sys, statistics; print("%.0f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
  m0=$(med $d0) m1=$(med $d1) m2=$(med $d2) l=$(med $lv) c=$(med $cv)
  own=$((m1 - m0)) added=$((m2 - m0))
  echo "proxy alone (QD1 4 KiB write p50 on an unpaired volume of node b, medians): direct ${m0} us ($d0), through the proxy without delay ${m1} us ($d1: its own cost ${own} us), with ${RTT_US} us RTT ${m2} us ($d2: adds ${added} us)"
  bench_line "$COLS" job "over link" local "link/limit" target
  budget=$((l + added + 150))
  bench_line "$COLS" "write-4k-qd1-rtt${RTT_US}us" "$c" "$l" "$(ratio "$c" "$budget" "latency link/limit")" "<= 1.0" \
    "us p50" "(link: $cv| local: $lv; limit = local $l + RTT as measured through the proxy $added + 150 = $budget)"
  echo "  (against the nominal RTT instead: limit local $l + $RTT_US + 150 = $((l + RTT_US + 150)) us, link/limit $(ratio "$c" $((l + RTT_US + 150)) "latency link/nominal limit"))"
fi

if only sync; then
  link_side
  head -c $((DATA_MIB * 1024 * 1024)) /dev/urandom >"$TMP/data.bin"
  settle() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  }
  fill() { nbdcopy -- "$TMP/data.bin" "$(nbd_uri "$1")"; }
  sync_time() {
    local p d r mark
    p=$(volume az1 1)
    d=$(volume az2 1)
    fill "$p"
    settle
    mark=$(wc -l <"$TMP/a.log")
    r=$(pair "$p" "$d")
    wait_json "os-vendor-replications/$r" .replication.replication_status active
    tail -n +"$mark" "$TMP/a.log" | python3 -c '
import sys, datetime
rid = sys.argv[1]
ts = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
st = [ts(l) for l in sys.stdin if "pair %s: resync started" % rid in l or "pair %s: resync done" % rid in l]
print("%.3f" % (st[-1] - st[0]) if len(st) >= 2 else "n/a")' "$r"
  }
  nbdcopy_time() {
    local p q t0 t1
    p=$(volume az1 1)
    q=$(volume az2 1)
    fill "$p"
    settle
    t0=$(date +%s.%N)
    nbdcopy --flush -- "$(nbd_uri "$p")" "$(nbd_uri "$q")"
    t1=$(date +%s.%N)
    python3 -c "print('%.3f' % ($t1 - $t0))"
  }
  s=() n=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then s+=("$(sync_time)"); n+=("$(nbdcopy_time)"); else
      n+=("$(nbdcopy_time)"); s+=("$(sync_time)"); fi
  done
  for v in "${s[@]}"; do [ "$v" = n/a ] && bench_fail "an initial sync has no engine start/done log lines"; done
  ms=$(median "${s[@]/n\/a/0}") mn=$(median "${n[@]}")
  bench_line "$COLS" "initial-sync" "$ms" "$mn" "$(ratio "$mn" "$ms" "initial sync throughput link/nbdcopy")" ">= 0.8" \
    "s for $DATA_MIB MiB in a 1 GiB volume, medians" "(sync: ${s[*]} | nbdcopy: ${n[*]} )"
fi
