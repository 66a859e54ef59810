#!/usr/bin/env bash
# Replication pairs (issue 3), side by side in one run:
#  1. Mirrored vs unmirrored writes: fio over NBD on the production volume of
#     an active pair, on an unpaired volume of the same daemon, and on
#     `nbdkit file` serving a plain file: 1 MiB sequential write (MiB/s) and
#     4 KiB random write at QD 1 and 16 (IOPS). Targets: mirrored sequential
#     >= 0.6 x unmirrored, mirrored 4 KiB IOPS >= 0.8 x unmirrored.
#  2. Initial sync vs `cp --sparse=always` of the same data and vs nbdcopy
#     between two exports of the same daemon (target >= 0.9 x cp), and the
#     initial sync of a 64 GiB volume holding 256 MiB vs a 1 GiB volume
#     holding the same (target <= 1.2). The sync is timed by the engine
#     itself: from its "resync started" to its "resync done" log line for
#     the pair (pair creation and API polling are not in it); cp is timed
#     with its final sync -f, nbdcopy with --flush, so all three end durable.
#
#   bench/pair.sh                       # RUNTIME=10 ROUNDS=2 DATA_MIB=256
#   ONLY=sync bench/pair.sh             # or ONLY=mirror
. "$(dirname "$0")/lib.sh"
need nbdkit nbdcopy
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-2}
DATA_MIB=${DATA_MIB:-256}
SYNC_ROUNDS=${SYNC_ROUNDS:-3}

EV_LOG_LEVEL=info ev_start

if [ -z "${ONLY:-}" ] || [ "$ONLY" = mirror ]; then
  P=$(volume az1 1)
  D=$(volume az2 1)
  U=$(volume az1 1)
  R=$(pair "$P" "$D")
  wait_json "os-vendor-replications/$R" .replication.replication_status active
  KIT_FILE=$TMP/kit.img
  truncate -s 1G "$KIT_FILE"
  KIT_PORT=$(free_port)
  nbdkit -f -i 127.0.0.1 -p "$KIT_PORT" -t 16 file "$KIT_FILE" >"$TMP/nbdkit.log" 2>&1 &
  KIT_PID=$!
  BENCH_CLEANUP+=("kill $KIT_PID; wait $KIT_PID")
  for _ in $(seq 1 100); do nbdinfo --size "nbd://127.0.0.1:$KIT_PORT/" >/dev/null 2>&1 && break; sleep 0.05; done
  declare -A URI=([mirrored]="$(nbd_uri "$P")" [unmirrored]="$(nbd_uri "$U")" [nbdkit]="nbd://127.0.0.1:$KIT_PORT/")
  # Precondition all three (allocated files, as after real use).
  for s in mirrored unmirrored nbdkit; do
    fio --name=fill --ioengine=nbd --uri="${URI[$s]}" --rw=write --bs=1M --iodepth=4 --size=100% \
      >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
  done
  COLS="-15 11 11 11 9 9"
  bench_line "$COLS" job mirrored unmirrored nbdkit mir/unm unm/kit "($ROUNDS rounds x ${RUNTIME}s)"
  side_figure() { fio_figure "${URI[$1]}" "$rw" "$bs" "$qd" "$RUNTIME"; }
  for job in "seqwrite write 1M 1 MiB/s" "randwrite-qd1 randwrite 4k 1 IOPS" \
    "randwrite-qd16 randwrite 4k 16 IOPS"; do
    read -r name rw bs qd unit <<<"$job"
    bench_rounds "$ROUNDS" side_figure mirrored unmirrored nbdkit
    m=$(mean ${BENCH_VALS[mirrored]}) u=$(mean ${BENCH_VALS[unmirrored]}) k=$(mean ${BENCH_VALS[nbdkit]})
    bench_line "$COLS" "$name" "$m" "$u" "$k" "$(ratio "$m" "$u" "$name mirrored/unmirrored")" \
      "$(ratio "$u" "$k" "$name unmirrored/nbdkit")" "$unit"
  done
  st=$(api GET "os-vendor-replications/$R" | jq -r .replication.replication_status)
  echo "pair still $st after the write jobs"
fi

if [ -z "${ONLY:-}" ] || [ "$ONLY" = sync ]; then
  # Same data (DATA_MIB of random data in 16 MiB extents spread over the
  # first GiB) into a 1 GiB and a 64 GiB production volume.
  head -c $((DATA_MIB * 1024 * 1024)) /dev/urandom >"$TMP/data.bin"
  # Both sides start alike: data on disk, page cache dropped when we may (root),
  # so neither reads from a warm cache or writes into never-touched memory.
  settle() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  }
  fill() { # fill VOLUME: the data at the start of the volume
    qemu-img convert -n -f raw -O raw "$TMP/data.bin" "$(nbd_uri "$1")" 2>/dev/null ||
      nbdcopy -- "$TMP/data.bin" "$(nbd_uri "$1")"
  }
  sync_time() { # sync_time GIB: engine seconds for the initial sync of a pair of GIB volumes holding the data
    local p d r mark
    p=$(volume az1 "$1")
    d=$(volume az2 "$1")
    fill "$p"
    settle
    mark=$(wc -l <"$TMP/evsrepd.log")
    r=$(pair "$p" "$d")
    wait_json "os-vendor-replications/$r" .replication.replication_status active
    tail -n +"$mark" "$TMP/evsrepd.log" | python3 -c '
import sys, datetime
rid = sys.argv[1]
ts = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
st = [ts(l) for l in sys.stdin if "pair %s: resync started" % rid in l or "pair %s: resync done" % rid in l]
print("%.3f" % (st[-1] - st[0]) if len(st) >= 2 else "n/a")' "$r"
  }
  nbdcopy_time() { # nbdcopy between two exports of this daemon (plain volumes), 1 GiB
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
  # cp --sparse=always of a file holding the same data in the same layout.
  cp_time() {
    local f=$TMP/cpsrc.img t0 t1
    rm -f "$f" "$TMP/cpdst.img"
    truncate -s 1G "$f"
    dd if="$TMP/data.bin" of="$f" bs=1M conv=notrunc status=none
    settle
    t0=$(date +%s.%N)
    cp --sparse=always "$f" "$TMP/cpdst.img"
    sync -f "$TMP/cpdst.img"
    t1=$(date +%s.%N)
    rm -f "$f" "$TMP/cpdst.img"
    python3 -c "print('%.3f' % ($t1 - $t0))"
  }
  s1=() s64=() c=() nc=()
  for r in $(seq 1 "$SYNC_ROUNDS"); do
    # the four sides take turns going first
    for k in 0 1 2 3; do
      case $(((r - 1 + k) % 4)) in
      0) s1+=("$(sync_time 1)") ;;
      1) s64+=("$(sync_time 64)") ;;
      2) c+=("$(cp_time)") ;;
      3) nc+=("$(nbdcopy_time)") ;;
      esac
    done
  done
  for v in "${s1[@]}" "${s64[@]}"; do
    [ "$v" = n/a ] && bench_fail "an initial sync has no engine start/done log lines"
  done
  m1=$(median "${s1[@]/n\/a/0}") m64=$(median "${s64[@]/n\/a/0}") mc=$(median "${c[@]}") mn=$(median "${nc[@]}")
  echo "initial sync of $DATA_MIB MiB (medians; engine start to done): 1 GiB volume ${m1}s (${s1[*]}), 64 GiB volume ${m64}s (${s64[*]})"
  echo "peers (medians): cp --sparse=always + sync ${mc}s (${c[*]}), nbdcopy --flush between two exports ${mn}s (${nc[*]})"
  echo "throughput ratio sync/cp (1 GiB volume): $(ratio "$mc" "$m1" "sync vs cp")   (target >= 0.9)"
  echo "throughput ratio sync/nbdcopy (1 GiB volume): $(ratio "$mn" "$m1" "sync vs nbdcopy")"
  echo "time ratio 64 GiB / 1 GiB: $(ratio "$m64" "$m1" "64 GiB vs 1 GiB sync")   (target <= 1.2)"
fi
