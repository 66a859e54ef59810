# Shared by the bench/*.sh scripts: start evsrepd on free ports with a fresh
# data dir, talk to its API, run fio over NBD. Source it; set EVSREPD first
# (default build/evsrepd). Everything is cleaned up on exit.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVSREPD=${EVSREPD:-$SRC/build/evsrepd}
[ -x "$EVSREPD" ] || { echo "bench: no evsrepd at $EVSREPD (set EVSREPD)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/evsrep-bench.XXXXXX)
DATA=$TMP/data
EV_PID=""
BENCH_CLEANUP=()
# A figure that could not be measured (ratio of a missing or zero value, too
# few samples) is printed as n/a and recorded here: the run then exits 1.
BENCH_FAILED=$TMP/failed
: >"$BENCH_FAILED"
bench_fail() { echo "bench: $*" >&2; echo "$*" >>"$BENCH_FAILED"; }
bench_cleanup() {
  local rc=$? c
  for c in "${BENCH_CLEANUP[@]}"; do eval "$c" || true; done
  [ -n "$EV_PID" ] && kill -TERM "$EV_PID" 2>/dev/null && wait "$EV_PID" 2>/dev/null
  if [ $rc -eq 0 ] && [ -s "$BENCH_FAILED" ]; then
    echo "bench: FAILED: $(wc -l <"$BENCH_FAILED") figure(s) missing:" >&2
    sed 's/^/  /' "$BENCH_FAILED" >&2
    rc=1
  fi
  rm -rf "$TMP"
  exit $rc
}
trap bench_cleanup EXIT

need() { # need TOOL... : fail with a hint when a tool is missing
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "bench: needs $t (apt-get install it)" >&2; exit 1; }
  done
}
need curl jq fio python3

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ev_start [evsrepd args...]: sets URL, TOKEN, NBD1, NBD2 (host:port).
ev_start() {
  mkdir -p "$DATA"
  rm -f "$DATA/evsrepd.ports"
  "$EVSREPD" --data-dir "$DATA" --listen 127.0.0.1:0 --nbd-listen az1=127.0.0.1:0 \
    --nbd-listen az2=127.0.0.1:0 --log-level "${EV_LOG_LEVEL:-warn}" "$@" ${EVSREPD_ARGS:-} \
    >>"$TMP/evsrepd.log" 2>&1 &
  EV_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$DATA/evsrepd.ports" ] && break
    kill -0 "$EV_PID" 2>/dev/null || { cat "$TMP/evsrepd.log" >&2; exit 1; }
    sleep 0.05
  done
  local ports=$DATA/evsrepd.ports project
  read -r TOKEN project < <(grep -v '^#' "$DATA/tokens" | head -n 1)
  URL="http://127.0.0.1:$(awk -F= '$1=="http"{print $2}' "$ports")/v2/$project"
  NBD1="127.0.0.1:$(awk -F= '$1=="nbd.az1"{print $2}' "$ports")"
  NBD2="127.0.0.1:$(awk -F= '$1=="nbd.az2"{print $2}' "$ports")"
}

ev_stop() {
  [ -n "$EV_PID" ] && kill -TERM "$EV_PID" 2>/dev/null && wait "$EV_PID" 2>/dev/null
  EV_PID=""
}

# api METHOD PATH [JSON]: prints the body; fails on a non-2xx status.
api() {
  local args=(-sf -X "$1" -H "X-Auth-Token: $TOKEN")
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}" "$URL/$2"
}

# wait_json PATH JQ WANT [seconds]
wait_json() {
  local end=$((SECONDS + ${4:-600})) got=""
  while [ $SECONDS -lt $end ]; do
    got=$(api GET "$1" | jq -r "$2")
    [ "$got" = "$3" ] && return 0
    sleep 0.05
  done
  echo "bench: timeout waiting for $1 $2 == $3 (last $got)" >&2
  exit 1
}

# volume AZ GIB: prints the id once available.
volume() {
  local id
  id=$(api POST volumes "{\"volume\":{\"size\":$2,\"availability_zone\":\"$1\"}}" | jq -r .volume.id)
  wait_json "volumes/$id" .volume.status available
  echo "$id"
}

# nbd_uri ID: the volume's NBD URI through an attachment (the volume id opens
# nothing), made once per volume and run.
nbd_uri() {
  local f="$TMP/attach.$1"
  if [ ! -s "$f" ]; then
    api POST "volumes/$1/action" '{"os-initialize_connection": {"connector": {"host": "bench"}}}' |
      jq -r .connection_info.data.uri >"$f"
  fi
  cat "$f"
}

# pair PROD DR: prints the pair id once available (maybe still copying).
pair() {
  local id
  id=$(api POST os-vendor-replications "{\"replication\":{\"volume_ids\":[\"$1\",\"$2\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication.id)
  wait_json "os-vendor-replications/$id" .replication.status available
  echo "$id"
}

# fio_figure URI RW BS QD RUNTIME: MiB/s for sequential jobs, IOPS for random ones.
fio_figure() {
  fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" --time_based \
    --runtime="$5" --norandommap --randrepeat=0 --output-format=json >"$TMP/fio.json" \
    2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }
  python3 - "$TMP/fio.json" "$2" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
d = j["write"] if "write" in sys.argv[2] else j["read"]
print("%.1f" % (d["bw"] / 1024.0) if not sys.argv[2].startswith("rand") else "%.0f" % d["iops"])
PY
}

# mean X...: arithmetic mean
mean() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print("%.1f" % (sum(v)/len(v)))' "$@"; }
# ratio A B: A/B, or n/a (and the run fails) when either is missing or zero.
ratio() {
  local r
  r=$(python3 -c '
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
except ValueError:
    a, b = 0, 0
print("%.2f" % (a / b) if a > 0 and b > 0 else "n/a")' "${1:-}" "${2:-}")
  [ "$r" = n/a ] && bench_fail "ratio of '${1:-}' to '${2:-}' (${3:-a figure}) is missing"
  echo "$r"
}
# median X...: the middle value (robust to the odd stall of a shared machine)
median() { python3 -c 'import sys, statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# bench_rounds ROUNDS CMD SIDE...: runs `CMD SIDE` (which prints one figure)
# once per round for every side; round r starts with side (r-1) mod n, so
# each side goes first in turn. The figures land in BENCH_VALS[SIDE], each
# followed by a space (as the rows print them).
declare -A BENCH_VALS=()
bench_rounds() {
  local rounds=$1 cmd=$2 r k s
  shift 2
  local -a sides=("$@")
  for s in "${sides[@]}"; do BENCH_VALS[$s]=""; done
  for r in $(seq 1 "$rounds"); do
    for k in "${!sides[@]}"; do
      s=${sides[$(((r - 1 + k) % ${#sides[@]}))]}
      BENCH_VALS[$s]+="$($cmd "$s") "
    done
  done
}
# bench_line WIDTHS FIELD...: one line of a table. The first fields are
# printed with the printf widths in WIDTHS ("-22 11 11 9 8": a left-aligned
# name, then right-aligned columns), separated by one space; the fields past
# the widths (unit, notes, every round's figures) follow, each after two.
bench_line() {
  local -a w
  local out="" cell i=0 f
  read -r -a w <<<"$1"
  shift
  for f in "$@"; do
    if [ "$i" -lt "${#w[@]}" ]; then
      printf -v cell "%${w[$i]}s" "$f"
      if [ "$i" -gt 0 ]; then out+=" $cell"; else out=$cell; fi
    else
      out+="  $f"
    fi
    i=$((i + 1))
  done
  printf '%s\n' "$out"
}
