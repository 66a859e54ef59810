#!/usr/bin/env bash
# API throughput (issues 4 and 13): requests per second of GET on a
# consistency group, GET of the pairs list (LIST_PAIRS pairs, 100), and a
# pause on an already-paused group (idempotent: 202, nothing changes), with
# wrk on loopback, side by side with nginx serving a static file of the same
# bytes as each reply (same size, same content type). Target: evsrepd >= 0.8 x
# nginx on each row. ROUNDS rounds, the side that goes first alternating;
# the ratio printed is the median over rounds, with its min..max. A wrk run
# with non-2xx replies, socket errors (connect, read, write) or timeouts
# fails the run.
#
#   bench/api.sh                     # DURATION=10 CONNS=32 THREADS=2 ROUNDS=3 LIST_PAIRS=100
. "$(dirname "$0")/lib.sh"
need wrk nginx
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
LIST_PAIRS=${LIST_PAIRS:-100}
RCGS=os-vendor-replication-consistency-groups

ev_start --log-level warn
P=$(volume az1 1)
D=$(volume az2 1)
R=$(pair "$P" "$D")
wait_json "os-vendor-replications/$R" .replication.replication_status active
G=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[\"$R\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication_consistency_group.id)
wait_json "$RCGS/$G" .replication_consistency_group.status available
# the other LIST_PAIRS - 1 pairs of the list (created in bulk, then waited for)
vids=()
for _ in $(seq 2 "$LIST_PAIRS"); do
  vids+=("$(api POST volumes '{"volume":{"size":1,"availability_zone":"az1"}}' | jq -r .volume.id)")
  vids+=("$(api POST volumes '{"volume":{"size":1,"availability_zone":"az2"}}' | jq -r .volume.id)")
done
for v in "${vids[@]}"; do wait_json "volumes/$v" .volume.status available >/dev/null; done
rids=()
for ((i = 0; i < ${#vids[@]}; i += 2)); do
  rids+=("$(api POST os-vendor-replications "{\"replication\":{\"volume_ids\":[\"${vids[$i]}\",\"${vids[$((i + 1))]}\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication.id)")
done
for r in "${rids[@]}"; do wait_json "os-vendor-replications/$r" .replication.replication_status active >/dev/null; done
LIST="os-vendor-replications?limit=1000"
[ "$(api GET "$LIST" | jq '.replications | length')" -eq "$LIST_PAIRS" ] || bench_fail "the list does not hold $LIST_PAIRS pairs"

# nginx with each reply as a static file, same bytes, same content type.
mkdir -p "$TMP/www" "$TMP/nginx"
chmod 755 "$TMP" "$TMP/www" # nginx workers run as an unprivileged user
api GET "$RCGS/$G" >"$TMP/www/group.json"
api GET "$LIST" >"$TMP/www/list.json"
NGX_PORT=$(free_port)
cat >"$TMP/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 2;
error_log $TMP/nginx/error.log;
pid $TMP/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx;
  proxy_temp_path $TMP/nginx;
  fastcgi_temp_path $TMP/nginx;
  uwsgi_temp_path $TMP/nginx;
  scgi_temp_path $TMP/nginx;
  types { application/json json; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    root $TMP/www;
  }
}
CONF
nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" 2>"$TMP/nginx/start.log" &
NGX_PID=$!
BENCH_CLEANUP+=("kill $NGX_PID; wait $NGX_PID")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$NGX_PORT/group.json" >/dev/null && break; sleep 0.05; done
NGX=http://127.0.0.1:$NGX_PORT

cat >"$TMP/pause.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"os-stop-replication-consistency-group": null}'
wrk.headers["Content-Type"] = "application/json"
LUA
api POST "$RCGS/$G/action" '{"os-stop-replication-consistency-group": null}' >/dev/null
api POST "$RCGS/$G/action" '{"os-stop-replication-consistency-group": null}' >"$TMP/www/pause.json"
[ -s "$TMP/www/pause.json" ] || echo '{}' >"$TMP/www/pause.json" # an empty reply: nginx serves 2 bytes
chmod 644 "$TMP/www/"*.json

rps() { # rps URL [wrk args]: requests/s; no non-2xx reply, socket error or timeout
  local url=$1 out
  shift
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s "$@" "$url") ||
    { echo "bench: wrk failed on $url: $out" >&2; exit 1; }
  if grep -q 'Non-2xx' <<<"$out"; then echo "bench: non-2xx replies from $url: $out" >&2; exit 1; fi
  # "Socket errors: connect 0, read 3, write 0, timeout 12" (only when any)
  if grep -q 'Socket errors' <<<"$out"; then echo "bench: socket errors or timeouts on $url: $out" >&2; exit 1; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out" | grep . || { echo "bench: no figure from wrk: $out" >&2; exit 1; }
}
# round k: evsrepd first when k is odd, nginx first when even
declare -A EV NG
for k in $(seq 1 "$ROUNDS"); do
  for side in $( ((k % 2)) && echo "ev ng" || echo "ng ev"); do
    if [ "$side" = ev ]; then
      EV[group]+=" $(rps "$URL/$RCGS/$G" -H "X-Auth-Token: $TOKEN")"
      EV[list]+=" $(rps "$URL/$LIST" -H "X-Auth-Token: $TOKEN")"
      EV[pause]+=" $(rps "$URL/$RCGS/$G/action" -H "X-Auth-Token: $TOKEN" -s "$TMP/pause.lua")"
    else
      NG[group]+=" $(rps "$NGX/group.json")"
      NG[list]+=" $(rps "$NGX/list.json")"
      NG[pause]+=" $(rps "$NGX/pause.json")"
    fi
  done
done
# row NAME KEY FILE: medians of each side, the median ratio of the rounds and its spread
row() {
  local r
  r=$(python3 - ${EV[$2]} -- ${NG[$2]} <<'PY'
import sys, statistics
a = sys.argv[1:]
i = a.index("--")
ev, ng = [float(x) for x in a[:i]], [float(x) for x in a[i + 1:]]
if not ev or len(ev) != len(ng) or min(ev + ng) <= 0:
    print("n/a")
else:
    rs = sorted(e / n for e, n in zip(ev, ng))
    print("%.0f %.0f %.2f %.2f..%.2f" % (statistics.median(ev), statistics.median(ng), statistics.median(rs), rs[0], rs[-1]))
PY
)
  [ "$r" = n/a ] && bench_fail "$1: ratio missing"
  read -r e n m sp <<<"$r"
  printf '%-34s %10s %10s %7s %12s  (%s bytes)\n' "$1" "$e" "$n" "$m" "${sp:-}" "$(stat -c %s "$TMP/www/$3")"
}
printf '%-34s %10s %10s %7s %12s  (wrk -t%s -c%s -d%ss, %s rounds alternating; medians, req/s)\n' request evsrepd nginx ratio "min..max" \
  "$THREADS" "$CONNS" "$DURATION" "$ROUNDS"
row "GET group" group group.json
row "GET pairs list ($LIST_PAIRS pairs)" list list.json
row "pause (already paused)" pause pause.json
echo "target: ratio >= 0.8 on every row"
