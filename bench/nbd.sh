#!/usr/bin/env bash
# NBD data path: evsrepd versus its two peers, nbdkit's file plugin and
# nbd-server (Debian package nbd-server), all serving the SAME sparse volume
# file, measured with fio's nbd ioengine (libnbd, one connection).
#
#   bench/nbd.sh                      # uses build/evsrepd
#   EVSREPD=build-x/evsrepd RUNTIME=10 ROUNDS=2 SIZE_GIB=1 bench/nbd.sh
#   EVSREPD_ARGS="-c my.conf" bench/nbd.sh   # extra evsrepd flags (e.g. nbd_threads)
#   ONLY="seqread randread-qd16" bench/nbd.sh  # a subset of the jobs
#
# Jobs: 1 MiB sequential write and read at queue depth 16 (MiB/s), 4 KiB random write and read
# at queue depth 1 and 16 (IOPS). Servers take turns run by run (the order
# rotates every round, so each goes first in turn) so drift of the machine
# hits all alike. The file is preconditioned (written end to end) first so
# reads hit data, not holes. Prints the mean of each figure per server and
# evsrepd / the BEST peer of that row (target >= 1.0). A missing figure
# prints n/a and fails the run.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
EVSREPD=${EVSREPD:-$SRC/build/evsrepd}
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-2}
SIZE_GIB=${SIZE_GIB:-1}
NBDKIT_THREADS=${NBDKIT_THREADS:-16}

for t in fio nbdkit nbd-server nbdinfo curl python3; do
  command -v "$t" >/dev/null || { echo "bench/nbd.sh: needs $t" >&2; exit 1; }
done
[ -x "$EVSREPD" ] || { echo "bench/nbd.sh: no evsrepd at $EVSREPD (set EVSREPD)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/evsrep-bench-nbd.XXXXXX)
DATA=$TMP/data
EV_PID="" KIT_PID="" NS_PID=""
cleanup() {
  [ -n "$KIT_PID" ] && kill "$KIT_PID" 2>/dev/null && wait "$KIT_PID" 2>/dev/null
  [ -n "$NS_PID" ] && kill "$NS_PID" 2>/dev/null # not our child: no wait
  [ -n "$EV_PID" ] && kill -TERM "$EV_PID" 2>/dev/null && wait "$EV_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- evsrepd with one volume ----
mkdir -p "$DATA"
"$EVSREPD" --data-dir "$DATA" --listen 127.0.0.1:0 --nbd-listen az1=127.0.0.1:0 \
  --nbd-listen az2=127.0.0.1:0 --log-level warn ${EVSREPD_ARGS:-} >"$TMP/evsrepd.log" 2>&1 &
EV_PID=$!
for _ in $(seq 1 200); do
  [ -s "$DATA/evsrepd.ports" ] && break
  kill -0 "$EV_PID" 2>/dev/null || { cat "$TMP/evsrepd.log" >&2; exit 1; }
  sleep 0.05
done
HTTP=$(awk -F= '$1=="http"{print $2}' "$DATA/evsrepd.ports")
read -r TOKEN PROJECT < <(grep -v '^#' "$DATA/tokens" | head -n 1)
URL="http://127.0.0.1:$HTTP/v2/$PROJECT"
VOL=$(curl -sf -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"volume\":{\"size\":$SIZE_GIB,\"availability_zone\":\"az1\"}}" "$URL/volumes" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["id"])')
for _ in $(seq 1 200); do
  st=$(curl -sf -H "X-Auth-Token: $TOKEN" "$URL/volumes/$VOL" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["status"])')
  [ "$st" = available ] && break
  sleep 0.05
done
# The volume id opens nothing over NBD: an attachment gives the export.
EV_URI=$(curl -sf -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
  -d '{"os-initialize_connection": {"connector": {"host": "bench"}}}' "$URL/volumes/$VOL/action" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["connection_info"]["data"]["uri"])')
FILE=$DATA/az1/$VOL
[ -f "$FILE" ] || { echo "bench/nbd.sh: volume file $FILE missing" >&2; exit 1; }

# ---- nbdkit on the same file ----
KIT_PORT=$(free_port)
nbdkit -f -i 127.0.0.1 -p "$KIT_PORT" -t "$NBDKIT_THREADS" file "$FILE" \
  >"$TMP/nbdkit.log" 2>&1 &
KIT_PID=$!
for _ in $(seq 1 100); do
  nbdinfo --size "nbd://127.0.0.1:$KIT_PORT/" >/dev/null 2>&1 && break
  sleep 0.05
done

# ---- nbd-server on the same file (foreground, its own config) ----
NS_PORT=$(free_port)
cat >"$TMP/nbd-server.conf" <<CONF
[generic]
  listenaddr = 127.0.0.1
  port = $NS_PORT
  allowlist = false
[bench]
  exportname = $FILE
CONF
# (-d would serve one connection and exit: let it daemonize, with a pid file)
nbd-server -C "$TMP/nbd-server.conf" -p "$TMP/nbd-server.pid" >"$TMP/nbd-server.log" 2>&1 ||
  { cat "$TMP/nbd-server.log" >&2; echo "bench/nbd.sh: nbd-server did not start" >&2; exit 1; }
for _ in $(seq 1 100); do
  [ -s "$TMP/nbd-server.pid" ] && NS_PID=$(cat "$TMP/nbd-server.pid")
  nbdinfo --size "nbd://127.0.0.1:$NS_PORT/bench" >/dev/null 2>&1 && break
  sleep 0.05
done
NS_PID=$(cat "$TMP/nbd-server.pid" 2>/dev/null || true)
nbdinfo --size "nbd://127.0.0.1:$NS_PORT/bench" >/dev/null ||
  { cat "$TMP/nbd-server.log" >&2; echo "bench/nbd.sh: nbd-server did not start" >&2; exit 1; }

uri() { # server
  case $1 in
  evsrepd) echo "$EV_URI" ;;
  nbdkit) echo "nbd://127.0.0.1:$KIT_PORT/" ;;
  nbd-server) echo "nbd://127.0.0.1:$NS_PORT/bench" ;;
  esac
}

# run_fio SERVER NAME RW BS QD -> prints the figure (MiB/s or IOPS)
run_fio() {
  local server=$1 name=$2 rw=$3 bs=$4 qd=$5
  fio --name="$name" --ioengine=nbd --uri="$(uri "$server")" --rw="$rw" --bs="$bs" \
    --iodepth="$qd" --time_based --runtime="$RUNTIME" --norandommap --randrepeat=0 \
    --output-format=json >"$TMP/fio.json" 2>"$TMP/fio.err" ||
    { cat "$TMP/fio.err" >&2; exit 1; }
  python3 - "$TMP/fio.json" "$rw" <<'EOF'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]  # fio prints a banner line first
d = j["write"] if "write" in sys.argv[2] else j["read"]
if j.get("error") or not d["total_ios"]:
    sys.exit("bench/nbd.sh: fio job failed or did no I/O")
print("%.1f" % (d["bw"] / 1024.0) if not sys.argv[2].startswith("rand") else "%.0f" % d["iops"])
EOF
}

# Precondition: data everywhere (through evsrepd; the file is shared).
fio --name=fill --ioengine=nbd --uri="$(uri evsrepd)" --rw=write --bs=1M --iodepth=4 \
  --size=100% >/dev/null 2>"$TMP/fio.err" || { cat "$TMP/fio.err" >&2; exit 1; }

JOBS=("seqwrite write 1M 16 MiB/s" "seqread read 1M 16 MiB/s"
  "randwrite-qd1 randwrite 4k 1 IOPS" "randwrite-qd16 randwrite 4k 16 IOPS"
  "randread-qd1 randread 4k 1 IOPS" "randread-qd16 randread 4k 16 IOPS")

SERVERS=(evsrepd nbdkit nbd-server)
FAILED=0
printf '%-16s %10s %10s %10s %10s %7s  (%s rounds x %ss, %s GiB file)\n' job evsrepd nbdkit \
  nbd-server best-peer ratio "$ROUNDS" "$RUNTIME" "$SIZE_GIB"
for job in "${JOBS[@]}"; do
  read -r name rw bs qd unit <<<"$job"
  [ -n "${ONLY:-}" ] && [[ ! " $ONLY " == *" $name "* ]] && continue
  declare -A vals=([evsrepd]="" [nbdkit]="" [nbd-server]="")
  for r in $(seq 1 "$ROUNDS"); do
    # round r starts with server (r-1) mod 3: each goes first in turn
    for k in 0 1 2; do
      s=${SERVERS[$(((r - 1 + k) % 3))]}
      vals[$s]+="$(run_fio "$s" "$name" "$rw" "$bs" "$qd") "
    done
  done
  python3 - "$name" "$unit" "${vals[evsrepd]}" "${vals[nbdkit]}" "${vals[nbd-server]}" <<'EOF' || FAILED=1
import sys
name, unit = sys.argv[1], sys.argv[2]
runs = [a.split() for a in sys.argv[3:6]]
m = [sum(map(float, r)) / len(r) if r else 0.0 for r in runs]
best = max(m[1], m[2])
peer = "nbdkit" if m[1] >= m[2] else "nbd-server"
ok = m[0] > 0 and best > 0
print("%-16s %10.1f %10.1f %10.1f %10s %7s  %s  (runs: evsrepd %s | nbdkit %s | nbd-server %s)"
      % (name, m[0], m[1], m[2], peer, "%.2f" % (m[0] / best) if ok else "n/a", unit,
         " ".join(runs[0]), " ".join(runs[1]), " ".join(runs[2])))
sys.exit(0 if ok else 1)
EOF
done
[ $FAILED -eq 0 ] || { echo "bench/nbd.sh: a figure is missing (n/a above)" >&2; exit 1; }
