#!/usr/bin/env bash
# Scale (issue 13): how evsrepd's cost grows with the work, as four curves,
# each with the shape it should have. Every curve is written to a .dat file
# and plotted (gnuplot) with a least-squares fit of the expected shape, so a
# curve that bends away from its fit is visible at a glance.
#
#  pairs    N pairs of 1 GiB volumes on one node (N in COUNTS), grouped: the
#           first min(N, 16) in one group (the fence group), the others in
#           groups of 10 (1000 pairs: 1 + 99 groups). Per N:
#             - start-up: exec to the API answering GET of the pairs list,
#               after a clean stop. Expected a + b*N (each pair opens its
#               meta file and volumes; nothing walks all pairs per pair);
#             - RSS after start-up. Expected a + b*N (one bitmap of 16384
#               bits, an activity log and two open volumes per 1 GiB pair);
#             - GET pairs list p99 (wrk --latency, limit 1000). Expected
#               a + b*N (the reply lists N pairs; each row costs the same);
#             - pause fence p99 of the fence group while fio writes to up to
#               8 of the other pairs (PAUSES pauses, each followed by a sync).
#               Expected constant in N (the fence touches the group's members
#               only).
#  size     one pair of S GiB sparse volumes (S in SIZES) with 16 MiB written:
#             - bitmap and meta file: RSS growth of evsrepd from before the
#               pair to after it is active, and the meta file's size on disk
#               (allocated) and apparent. Expected linear in S: one bit per
#               64 KiB chunk (2 KiB per GiB, 32 MiB at 16 TiB), RSS only for
#               bitmap words touched;
#             - create: POST of the pair until replication_status active.
#               Expected a + b*S with a small b (the initial sync skips holes
#               with SEEK_DATA; the meta file's bitmap area is written once);
#             - open after a clean stop and after kill -9: exec to the pair
#               reading active again. Expected a + b*S (the bitmap is read
#               back), the unclean open adding only the activity log.
#  dirty    one pair of DIRTY_GIB GiB in a group, paused, P% of its chunks
#           written (one 4 KiB write per chunk; 100%: all of it), the
#           production file flushed (its writeback is fio's, not the
#           resync's), then a sync: resync time from the engine's "resync
#           started"/"resync done" log lines. Expected dirty bytes / the
#           disk's copy rate (dd conv=fdatasync of a file of the same size
#           on the same disk, its source evicted from the page cache with
#           POSIX_FADV_DONTNEED), and ref-s: copy_file_range of as many
#           random 64 KiB chunks of that cold file into a sparse one, then
#           fdatasync (the same copies without the engine). The group's
#           resync keeps the DR image recoverable (sidecar, copy-on-write of
#           every DR chunk with data before it is overwritten); SIDECAR=0
#           runs the curve without it (EVSREP_SIDECAR_OFF=1, test builds).
#  clients  N NBD connections (N in CLIENTS), fio 4 KiB random reads QD1 on
#           each: all on one volume, and each on its own volume. Expected:
#           aggregate IOPS rising with N until the cores are busy (2 here),
#           then flat, never falling.
#
# Short by default (about 5 minutes on 2 cores); FULL=1 runs the whole
# sweep of issue 13 (1,000 pairs, 16 TiB - 1 GiB, 7 dirty fractions, 7
# client counts): 26 minutes when the pairs were made one curl + jq call at a
# time (671 s of it for 1,000 pairs); make_pairs now makes 1,000 in about
# 40 s over one connection, so expect about 15. ONLY=pairs (size, dirty,
# clients) runs one curve. The pairs curve also prints evsrepd's CPU time
# per GET of the list (utime + stime over the wrk run), which unlike the
# latency does not depend on what else shares the cores. Writes scale-*.dat
# and, with gnuplot, scale-*.png to OUT_DIR (default: the top directory, next
# to BENCHMARKS.md, which links them).
#
#   bench/scale.sh                 # COUNTS="1 10 100" SIZES="1 64 1024" ...
#   FULL=1 bench/scale.sh          # COUNTS="1 10 100 1000" SIZES="1 64 1024 16383"
#   ONLY=size SIZES="1 16383" bench/scale.sh
. "$(dirname "$0")/lib.sh"
need wrk
if [ "${FULL:-0}" = 1 ]; then
  COUNTS=${COUNTS:-1 10 100 1000}
  SIZES=${SIZES:-1 64 1024 16383} # 16 TiB - 1 GiB: ext4 caps a file at 16 TiB - 4 KiB
  DIRTY=${DIRTY:-0.1 0.3 1 3 10 30 100}
  DIRTY_GIB=${DIRTY_GIB:-4}
  CLIENTS=${CLIENTS:-1 2 4 8 16 32 64}
  PAUSES=${PAUSES:-100}
  DURATION=${DURATION:-5}
else
  COUNTS=${COUNTS:-1 10 100}
  SIZES=${SIZES:-1 64 1024}
  DIRTY=${DIRTY:-0.1 1 10 100}
  DIRTY_GIB=${DIRTY_GIB:-1}
  CLIENTS=${CLIENTS:-1 4 16 64}
  PAUSES=${PAUSES:-20}
  DURATION=${DURATION:-3}
fi
OUT_DIR=${OUT_DIR:-$SRC} # next to BENCHMARKS.md
PAIRS_PATH=os-vendor-replications
RCGS=os-vendor-replication-consistency-groups
PAUSE='{"os-stop-replication-consistency-group": null}'
SYNC='{"os-sync-replication-consistency-group": null}'
CONF=$TMP/scale.conf
# 1,000 pairs are 2,000 volumes, 16 TiB pairs 32 TiB of sparse files: lift
# the quotas and the free-space check (this is a benchmark, not a tenant).
printf '[DEFAULT]\nquota_volumes = -1\nquota_gigabytes = -1\ncapacity_overcommit = 0\n' >"$CONF"
mkdir -p "$OUT_DIR"
T_ALL=$SECONDS

now() { date +%s.%N; }
ms_since() { python3 -c "import time,sys; print('%.0f' % ((time.time() - float(sys.argv[1])) * 1000))" "$1"; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$EV_PID/status"; }
start() { ev_start --config "$CONF" "$@"; }
# restart_timed [kill]: stop (SIGTERM, or SIGKILL with "kill"), start again;
# sets RESTART_T0 (the exec instant) and RESTART_MS (exec to the API answering).
restart_timed() {
  if [ "${1:-}" = kill ]; then
    kill -KILL "$EV_PID"
    wait "$EV_PID" 2>/dev/null || true
    EV_PID=""
  else
    ev_stop
  fi
  rm -f "$TMP"/attach.* # the NBD ports change with the restart
  RESTART_T0=$(now)
  start
  until curl -sf -o /dev/null -H "X-Auth-Token: $TOKEN" "$URL/$PAIRS_PATH?limit=1"; do sleep 0.01; done
  RESTART_MS=$(ms_since "$RESTART_T0")
}
pctl99() { # pctl99 FILE: p99 of the numbers in FILE (n/a when empty)
  python3 - "$1" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]).read().split())
print("%.0f" % v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))] if v else "n/a")
PY
}
wrk_lat() { # wrk_lat URL: "p50_ms p99_ms requests/s" of GETs (2 threads, 8 connections)
  local out
  out=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 5s --latency -H "X-Auth-Token: $TOKEN" "$1") ||
    { echo "bench: wrk failed: $out" >&2; exit 1; }
  if grep -q 'Socket errors\|Non-2xx' <<<"$out"; then echo "bench: wrk errors: $out" >&2; exit 1; fi
  awk 'function ms(v) {if (v ~ /us$/) {sub(/us/,"",v); return v/1000} if (v ~ /ms$/) {sub(/ms/,"",v); return v+0} sub(/s/,"",v); return v*1000}
       $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} $1=="Requests/sec:" {rps=$2} END {if (p99 != "") print p50, p99, rps}' <<<"$out"
}
# volumes_bulk AZ GIB N: creates N volumes, prints their ids once all are available.
volumes_bulk() {
  local ids=() i id
  for i in $(seq 1 "$3"); do
    ids+=("$(api POST volumes "{\"volume\":{\"size\":$2,\"availability_zone\":\"$1\"}}" | jq -r .volume.id)")
  done
  for id in "${ids[@]}"; do
    wait_json "volumes/$id" .volume.status available >/dev/null
    echo "$id"
  done
}
# group_of ID...: a group of those (active) pairs; prints its id when available.
group_of() {
  local ids="" r g
  for r in "$@"; do ids+="\"$r\","; done
  g=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[${ids%,}],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication_consistency_group.id)
  wait_json "$RCGS/$g" .replication_consistency_group.status available >/dev/null
  echo "$g"
}
sync_wait() { # sync_wait GROUP
  api POST "$RCGS/$1/action" "$SYNC" >/dev/null
  wait_json "$RCGS/$1" .replication_consistency_group.replication_status active >/dev/null
}

# ---------------------------------------------------------------- pairs
# make_pairs N FG: N active pairs of 1 GiB volumes, the first FG in one group
# and the rest in groups of 10; prints the first group's id, then one
# "pair_id production_volume_id" line per pair.
make_pairs() {
  python3 - "$URL" "$TOKEN" "$1" "$2" <<'PY'
import http.client, json, sys, time, urllib.parse
url, token, n, fg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
H = {"X-Auth-Token": token, "Content-Type": "application/json"}
def req(m, p, body=None):
    c.request(m, u.path + "/" + p, body=None if body is None else json.dumps(body), headers=H)
    r = c.getresponse()
    d = r.read()
    if r.status >= 300:
        sys.exit("bench: %s %s: %d %s" % (m, p, r.status, d[:300]))
    return json.loads(d) if d else None
def wait(p, key, field, want):
    end = time.time() + 600
    while req("GET", p)[key][field] != want:
        if time.time() > end:
            sys.exit("bench: timeout waiting for %s %s == %s" % (p, field, want))
        time.sleep(0.02)
vols = {az: [req("POST", "volumes", {"volume": {"size": 1, "availability_zone": az}})["volume"]["id"]
             for _ in range(n)] for az in ("az1", "az2")}
for az in vols:
    for v in vols[az]:
        wait("volumes/" + v, "volume", "status", "available")
model = {"priority_station": "az1", "replication_model": "hypermetro"}
pairs = [req("POST", "os-vendor-replications", {"replication": dict(model, volume_ids=[a, b])})["replication"]["id"]
         for a, b in zip(vols["az1"], vols["az2"])]
for r in pairs:
    wait("os-vendor-replications/" + r, "replication", "replication_status", "active")
groups = []
for ids in [pairs[:fg]] + [pairs[i:i + 10] for i in range(fg, n, 10)]:
    g = req("POST", "os-vendor-replication-consistency-groups",
            {"replication_consistency_group": dict(model, replication_ids=ids)})["replication_consistency_group"]["id"]
    wait("os-vendor-replication-consistency-groups/" + g, "replication_consistency_group", "status", "available")
    groups.append(g)
print(groups[0])
for r, p in zip(pairs, vols["az1"]):
    print(r, p)
PY
}
curve_pairs() {
  local n prod=() rows=() i j fence_g fg loadpv=() fio_pid start_ms rss p50 p99 rps fence t0 ngroups got mark
  : >"$TMP/scale-pairs.dat"
  echo "# pairs start_ms rss_mib list_p99_ms fence_p99_us fence_group_pairs groups create_s list_p50_ms list_rps list_cpu_ms" >>"$TMP/scale-pairs.dat"
  printf '%-7s %7s %12s %9s %18s %10s %11s %16s %9s\n' pairs groups start-up-ms rss-MiB list-p50/p99-ms list-req/s list-CPU-ms fence-p99-us create-s
  for n in $COUNTS; do
    DATA=$TMP/data-pairs-$n
    EV_LOG_LEVEL=info start
    t0=$SECONDS
    # N pairs and their groups (the fence group: the first min(N, 16)
    # pairs; then groups of 10) over one keep-alive connection: curl + jq
    # per call took 671 s for 1,000 pairs, this about 40 s.
    fg=$((n < 16 ? n : 16))
    mapfile -t rows < <(make_pairs "$n" "$fg")
    [ "${#rows[@]}" -eq $((n + 1)) ] || { echo "bench: $n pairs: the loader made ${#rows[@]} rows" >&2; exit 1; }
    fence_g=${rows[0]}
    prod=()
    for ((j = 1; j <= n; j++)); do prod+=("${rows[$j]#* }"); done
    ngroups=$(api GET "$RCGS?limit=1000" | jq '.replication_consistency_groups | length')
    got=$(api GET "$PAIRS_PATH?limit=1000" | jq '.replications | length')
    [ "$got" -eq "$n" ] || bench_fail "$n pairs asked, the list has $got"
    local create_s=$((SECONDS - t0))
    # fence p99 of the fence group while fio writes to up to 8 other pairs
    loadpv=()
    for ((j = fg; j < n && j < fg + 8; j++)); do loadpv+=("${prod[$j]}"); done
    fio_pid=""
    if [ ${#loadpv[@]} -gt 0 ]; then
      local args=() p
      for p in "${loadpv[@]}"; do
        args+=(--name="w$p" --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k --iodepth=1
          --time_based --runtime=86400 --norandommap --randrepeat=0)
      done
      fio --output-format=terse "${args[@]}" >/dev/null 2>"$TMP/fio.err" &
      fio_pid=$!
      BENCH_CLEANUP+=("kill -KILL $fio_pid 2>/dev/null")
      sleep 1
    fi
    sync_wait "$fence_g" # a new group's members reach SYNC only after a first sync (as group.sh)
    mark=$(wc -l <"$TMP/evsrepd.log")
    for i in $(seq 1 "$PAUSES"); do
      api POST "$RCGS/$fence_g/action" "$PAUSE" >/dev/null
      sync_wait "$fence_g"
    done
    if [ -n "$fio_pid" ]; then
      kill -0 "$fio_pid" 2>/dev/null || { cat "$TMP/fio.err" >&2; bench_fail "$n pairs: fio load ended early"; }
      kill -KILL "$fio_pid"
      wait "$fio_pid" 2>/dev/null || true
    fi
    tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*$fence_g: paused $fg pair(s); fence held \([0-9]*\) us.*/\1/p" >"$TMP/fence.log"
    [ "$(wc -l <"$TMP/fence.log")" -eq "$PAUSES" ] || bench_fail "$n pairs: $(wc -l <"$TMP/fence.log") fence samples for $PAUSES pauses"
    fence=$(pctl99 "$TMP/fence.log")
    # start-up, RSS and list latency at log level warn (no access log line per request)
    EV_LOG_LEVEL=warn
    restart_timed
    start_ms=$RESTART_MS
    rss=$(rss_mib)
    # CPU per GET from evsrepd's utime + stime over the wrk run: unlike the
    # latency, it does not depend on what else runs on the cores
    local c0 c1 cpu_ms
    c0=$(awk '{print $14 + $15}' "/proc/$EV_PID/stat")
    read -r p50 p99 rps < <(wrk_lat "$URL/$PAIRS_PATH?limit=1000")
    c1=$(awk '{print $14 + $15}' "/proc/$EV_PID/stat")
    cpu_ms=$(python3 -c "print('%.2f' % (($c1 - $c0) * 1000.0 / $(getconf CLK_TCK) / max(1.0, ${rps:-0} * $DURATION)))")
    [ -n "$p99" ] || bench_fail "$n pairs: no p99 from wrk"
    printf '%-7s %7s %12s %9s %18s %10s %11s %16s %9s\n' "$n" "$ngroups" "$start_ms" "$rss" "${p50:-n/a}/${p99:-n/a}" "${rps:-n/a}" "$cpu_ms" "$fence ($fg pairs)" "$create_s"
    echo "$n $start_ms $rss ${p99:-0} $fence $fg $ngroups $create_s ${p50:-0} ${rps:-0} $cpu_ms" >>"$TMP/scale-pairs.dat"
    ev_stop
    rm -rf "$DATA" "$TMP"/attach.*
  done
  echo "(start-up: exec to the API answering after a clean stop; fence: of the first min(N,16) pairs' group, fio on up to 8 others; create-s: making the pairs and groups)"
  cp "$TMP/scale-pairs.dat" "$OUT_DIR/scale-pairs.dat"
}

# ---------------------------------------------------------------- size
curve_size() {
  local s p d r rss0 rss1 create_ms meta alloc clean_ms clean_active_ms unclean_ms unclean_active_ms t0
  : >"$TMP/scale-size.dat"
  echo "# gib rss_growth_mib meta_alloc_mib meta_apparent_mib create_ms clean_api_ms clean_active_ms unclean_api_ms unclean_active_ms bitmap_mib" >>"$TMP/scale-size.dat"
  printf '%-7s %10s %10s %10s %10s %14s %16s\n' GiB bitmap-MiB RSS+MiB meta-MiB create-ms clean-open-ms unclean-open-ms
  for s in $SIZES; do
    DATA=$TMP/data-size-$s
    EV_LOG_LEVEL=warn start
    p=$(volume az1 "$s")
    d=$(volume az2 "$s")
    fio --name=w --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=write --bs=1M --size=16M --offset=0 \
      >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
    rss0=$(rss_mib)
    t0=$(now)
    r=$(api POST $PAIRS_PATH "{\"replication\":{\"volume_ids\":[\"$p\",\"$d\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication.id)
    until [ "$(api GET "$PAIRS_PATH/$r" | jq -r .replication.replication_status)" = active ]; do sleep 0.01; done
    create_ms=$(ms_since "$t0")
    rss1=$(rss_mib)
    meta=$(find "$DATA" -name "pair-$r.meta" | head -n 1)
    [ -n "$meta" ] || { bench_fail "size $s: no meta file for $r"; ev_stop; continue; }
    alloc=$(du -k "$meta" | awk '{printf "%.2f", $1 / 1024}')
    local apparent
    apparent=$(stat -c %s "$meta" | awk '{printf "%.2f", $1 / 1048576}')
    restart_timed
    clean_ms=$RESTART_MS
    until [ "$(api GET "$PAIRS_PATH/$r" | jq -r .replication.replication_status)" = active ]; do sleep 0.01; done
    clean_active_ms=$(ms_since "$RESTART_T0")
    # unclean: kill -9 while a writer keeps the activity log busy
    fio --name=w --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k --iodepth=4 \
      --size=1G --time_based --runtime=60 --norandommap >/dev/null 2>&1 &
    local fpid=$!
    sleep 1
    restart_timed kill
    unclean_ms=$RESTART_MS
    kill -KILL "$fpid" 2>/dev/null || true
    wait "$fpid" 2>/dev/null || true
    until [ "$(api GET "$PAIRS_PATH/$r" | jq -r .replication.replication_status)" = active ]; do sleep 0.01; done
    unclean_active_ms=$(ms_since "$RESTART_T0")
    local rssg bitmap
    rssg=$(python3 -c "print('%.2f' % max(0.0, $rss1 - $rss0))")
    bitmap=$(python3 -c "print('%.3f' % ($s * 16384 / 8 / 1048576.0))")
    printf '%-7s %10s %10s %10s %10s %14s %16s\n' "$s" "$bitmap" "$rssg" "$alloc/$apparent" "$create_ms" \
      "$clean_ms/$clean_active_ms" "$unclean_ms/$unclean_active_ms"
    echo "$s $rssg $alloc $apparent $create_ms $clean_ms $clean_active_ms $unclean_ms $unclean_active_ms $bitmap" >>"$TMP/scale-size.dat"
    ev_stop
    rm -rf "$DATA"
  done
  echo "(open: exec to the API answering / to the pair reading active again, ms)"
  cp "$TMP/scale-size.dat" "$OUT_DIR/scale-size.dat"
}

# ---------------------------------------------------------------- dirty
flush_file() { # flush_file PATH: fdatasync of that file only
  python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fdatasync(fd)' "$1"
}
cold() { # cold PATH: flushed, then its pages dropped from the page cache
  python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fdatasync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}
# ref_copy SRC DST N: seconds to copy N random 64 KiB chunks of SRC (all of
# it when N covers it) to the same offsets of a new sparse DST with
# copy_file_range, in offset order as the resync walks its bitmap, then
# fdatasync DST.
ref_copy() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cb = 65536
size = os.path.getsize(src)
chunks = size // cb
pick = range(chunks) if n >= chunks else sorted(random.sample(range(chunks), n))
fi = os.open(src, os.O_RDONLY)
fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.ftruncate(fo, size)
t0 = time.time()
if n >= chunks:
    off = 0
    while off < size:
        off += os.copy_file_range(fi, fo, min(1 << 20, size - off), off, off)
else:
    for c in pick:
        done = 0
        while done < cb:
            done += os.copy_file_range(fi, fo, cb - done, c * cb + done, c * cb + done)
os.fdatasync(fo)
print("%.3f" % (time.time() - t0))
PY
}
curve_dirty() {
  local p d r g pct e bytes nchunks=$((DIRTY_GIB * 16384)) mark rate
  : >"$TMP/scale-dirty.dat"
  if [ "${SIDECAR:-1}" = 0 ]; then
    DATA=$TMP/data-dirty EV_LOG_LEVEL=info EVSREP_SIDECAR_OFF=1 start
  else
    DATA=$TMP/data-dirty EV_LOG_LEVEL=info start
  fi
  # the disk's copy rate: dd of a written file of the same size, flushed
  # and evicted from the page cache first (read from the disk, as a resync
  # of data written long ago would)
  fio --name=src --filename="$DATA/copy.src" --rw=write --bs=1M --size="${DIRTY_GIB}G" >/dev/null 2>&1
  cold "$DATA/copy.src"
  local t0
  t0=$(now)
  dd if="$DATA/copy.src" of="$DATA/copy.dst" bs=1M conv=fdatasync status=none
  rate=$(python3 -c "import time; print('%.1f' % ($DIRTY_GIB * 1024 / (time.time() - $t0)))")
  rm -f "$DATA/copy.dst"
  echo "# dirty_pct resync_s bytes expected_s ref_s (disk copy rate $rate MiB/s, $DIRTY_GIB GiB volume; ref_s: copy_file_range of as many random 64 KiB chunks of a cold file, fdatasync)" >>"$TMP/scale-dirty.dat"
  p=$(volume az1 "$DIRTY_GIB")
  d=$(volume az2 "$DIRTY_GIB")
  r=$(pair "$p" "$d")
  wait_json "$PAIRS_PATH/$r" .replication.replication_status active >/dev/null
  g=$(group_of "$r")
  sync_wait "$g"
  printf '%-9s %12s %14s %12s %9s  (disk copy rate %s MiB/s, dd conv=fdatasync of a cold file, %s GiB)\n' dirty-% resync-s bytes expected-s ref-s "$rate" "$DIRTY_GIB"
  for pct in $DIRTY; do
    api POST "$RCGS/$g/action" "$PAUSE" >/dev/null
    if [ "$pct" = 100 ]; then
      fio --name=d --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=write --bs=1M --iodepth=4 \
        --size=100% >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
    else
      local k
      k=$(python3 -c "print(max(1, int(round($nchunks * $pct / 100.0))))")
      fio --name=d --ioengine=nbd --uri="$(nbd_uri "$p")" --rw=randwrite --bs=4k \
        --blockalign=64k --number_ios="$k" --norandommap=0 --randrepeat=0 \
        --size=100% >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
    fi
    flush_file "$(find "$TMP" -type f -name "$p" | head -n 1)"
    mark=$(wc -l <"$TMP/evsrepd.log")
    sync_wait "$g"
    read -r e bytes < <(tail -n +"$mark" "$TMP/evsrepd.log" | python3 -c '
import sys, datetime, re
ts = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
lines = list(sys.stdin)
st = [ts(l) for l in lines if "resync started" in l or "resync done" in l]
b = 0
for l in lines:
    m = re.search(r"resync started \((\d+) dirty chunks\)", l)
    if m: b += int(m.group(1)) * 65536
print("%.3f" % (max(st) - min(st)) if len(st) >= 2 else "n/a", b)')
    [ "$e" = n/a ] && bench_fail "dirty $pct%: no resync start/done in the log"
    local exp ref
    exp=$(python3 -c "print('%.3f' % ($bytes / 1048576.0 / $rate))")
    cold "$DATA/copy.src"
    ref=$(ref_copy "$DATA/copy.src" "$DATA/copy.dst" $((bytes / 65536)))
    rm -f "$DATA/copy.dst"
    printf '%-9s %12s %14s %12s %9s\n' "$pct" "$e" "$bytes" "$exp" "$ref"
    echo "$pct $e $bytes $exp $ref" >>"$TMP/scale-dirty.dat"
  done
  rm -f "$DATA/copy.src"
  ev_stop
  cp "$TMP/scale-dirty.dat" "$OUT_DIR/scale-dirty.dat"
}

# ---------------------------------------------------------------- clients
curve_clients() {
  local n max=1 vols=() i one across
  for n in $CLIENTS; do [ "$n" -gt "$max" ] && max=$n; done
  : >"$TMP/scale-clients.dat"
  echo "# connections iops_one_volume iops_across_volumes (4 KiB random read QD1 per connection, ${DURATION}s)" >>"$TMP/scale-clients.dat"
  DATA=$TMP/data-clients EV_LOG_LEVEL=warn start
  mapfile -t vols < <(volumes_bulk az1 1 "$max")
  for i in "${vols[@]}"; do nbd_uri "$i" >/dev/null; done
  iops() { # iops URI...: aggregate IOPS of one fio job per URI
    local args=() u
    for u in "$@"; do
      args+=(--name=r --ioengine=nbd --uri="$u" --rw=randread --bs=4k --iodepth=1 --time_based
        --runtime="$DURATION" --norandommap --randrepeat=0)
    done
    fio --output-format=json "${args[@]}" >"$TMP/fio.json" 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
    python3 -c '
import json, sys
t = open(sys.argv[1]).read()
jobs = json.loads(t[t.index("{"):])["jobs"]
if any(j.get("error") or not j["read"]["total_ios"] for j in jobs): sys.exit("bench: a fio job failed")
print("%.0f" % sum(j["read"]["iops"] for j in jobs))' "$TMP/fio.json"
  }
  printf '%-12s %14s %16s\n' connections one-volume across-volumes
  for n in $CLIENTS; do
    local uris=() u
    u=$(nbd_uri "${vols[0]}")
    for ((i = 0; i < n; i++)); do uris+=("$u"); done
    one=$(iops "${uris[@]}")
    uris=()
    for ((i = 0; i < n; i++)); do uris+=("$(nbd_uri "${vols[$i]}")"); done
    across=$(iops "${uris[@]}")
    printf '%-12s %14s %16s\n' "$n" "$one" "$across"
    echo "$n $one $across" >>"$TMP/scale-clients.dat"
  done
  ev_stop
  cp "$TMP/scale-clients.dat" "$OUT_DIR/scale-clients.dat"
}

for c in pairs size dirty clients; do
  [ -z "${ONLY:-}" ] || [ "$ONLY" = "$c" ] || continue
  t=$SECONDS
  echo "-- $c"
  "curve_$c"
  echo "($c: $((SECONDS - t)) s)"
done
echo "(scale: $((SECONDS - T_ALL)) s in all)"

if command -v gnuplot >/dev/null; then
  "$SRC/bench/scale_plot.sh" "$OUT_DIR"
else
  echo "no gnuplot: apt-get install gnuplot-nox for the plots"
fi
