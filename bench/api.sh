#!/usr/bin/env bash
# API throughput (issue 4): requests per second of GET on a consistency
# group and of a pause on an already-paused group, with wrk on loopback,
# side by side with nginx serving a static JSON file of the same size as
# the GET reply. Target: evsrepd >= 0.8 x nginx. A wrk run with non-2xx
# replies, socket errors (connect, read, write) or timeouts fails the run.
#
#   bench/api.sh                     # DURATION=10 CONNS=32 THREADS=2
. "$(dirname "$0")/lib.sh"
need wrk nginx
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
RCGS=os-vendor-replication-consistency-groups

ev_start --log-level warn
P=$(volume az1 1)
D=$(volume az2 1)
R=$(pair "$P" "$D")
wait_json "os-vendor-replications/$R" .replication.replication_status active
G=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[\"$R\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r .replication_consistency_group.id)
wait_json "$RCGS/$G" .replication_consistency_group.status available

# nginx with the GET reply as a static file, same size, same content type.
mkdir -p "$TMP/www" "$TMP/nginx"
chmod 755 "$TMP" "$TMP/www" # nginx workers run as an unprivileged user
api GET "$RCGS/$G" >"$TMP/www/group.json"
chmod 644 "$TMP/www/group.json"
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

cat >"$TMP/pause.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"os-stop-replication-consistency-group": null}'
wrk.headers["Content-Type"] = "application/json"
LUA
api POST "$RCGS/$G/action" '{"os-stop-replication-consistency-group": null}' >/dev/null

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
get_ev=$(rps "$URL/$RCGS/$G" -H "X-Auth-Token: $TOKEN")
get_ngx=$(rps "http://127.0.0.1:$NGX_PORT/group.json")
pause_ev=$(rps "$URL/$RCGS/$G/action" -H "X-Auth-Token: $TOKEN" -s "$TMP/pause.lua")
printf '%-34s %10s %10s %7s  (wrk -t%s -c%s -d%ss, %s-byte reply)\n' request evsrepd nginx ratio \
  "$THREADS" "$CONNS" "$DURATION" "$(stat -c %s "$TMP/www/group.json")"
printf '%-34s %10s %10s %7s\n' "GET group" "$get_ev" "$get_ngx" "$(ratio "$get_ev" "$get_ngx" "GET group")"
printf '%-34s %10s %10s %7s\n' "pause (already paused)" "$pause_ev" "$get_ngx" "$(ratio "$pause_ev" "$get_ngx" "pause")"
