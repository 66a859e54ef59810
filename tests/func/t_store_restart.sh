#!/usr/bin/env bash
# The store restarted under load (issue 12, multi-site.md "Leases": a store
# outage shorter than lease/2 is invisible to the data plane). One node on a
# PostgreSQL cluster of this test's own (tests/tools/pg_cluster.sh: the
# shared fixture must not go down under other tests), a replicated group,
# seqwriter writing on the production disk throughout:
#  1. PostgreSQL stops for 2 s and starts again on the same port
#  2. while it is down, the API answers 503 with Retry-After (a volume create
#     and a GET), never 500 and never a hang
#  3. the writer's acknowledgements go on while the store is down (the data
#     plane does not need the store) and the node does not self-fence
#  4. once the store is back the API works again, the pair is still active,
#     and every acknowledged block is on production and on DR
. "$(dirname "$0")/lib.sh"
require_fault_injection
SRC=${EVSREP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

PGSTATE="$TMP/pg"
bash "$SRC/tests/tools/pg_cluster.sh" start "$PGSTATE" >"$TMP/pg.log" 2>&1 ||
  die "cannot start a PostgreSQL cluster: $(cat "$TMP/pg.log")"
WPID=""
teardown() {
  if [ -n "$WPID" ]; then kill "$WPID" 2>/dev/null || true; fi
  if [ -n "$DAEMON_PID" ]; then kill -KILL "$DAEMON_PID" 2>/dev/null || true; fi
  bash "$SRC/tests/tools/pg_cluster.sh" stop "$PGSTATE" >/dev/null 2>&1 || true
}
trap 'rc=$?; teardown; (exit $rc); cleanup' EXIT

cat >"$TMP/a.conf" <<EOF
[DEFAULT]
db = $(cat "$PGSTATE/url")
node_name = node-a
cluster_key_file = $TMP/cluster.key
lease_ms = ${T_STORE_RESTART_LEASE_MS:-12000}
EOF
start_daemon --config "$TMP/a.conf"

P=$(create_volume az1 1 prod)
D=$(create_volume az2 1 dr)
PAIR=$(create_pair "$P" "$D" sr)
wait_pair_active "$PAIR" 120 || die "pair never active"
G=$(create_group g "$PAIR")
group_action "$G" os-sync-replication-consistency-group # a new group starts paused
[ "$STATUS" = 200 ] || [ "$STATUS" = 202 ] || fail "sync the new group: HTTP $STATUS $BODY"
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active 60 || die "group never active"
U=$(nbd_uri az1 "$P")
REGION=$((32 << 20))
RUN=$((RANDOM + 1))
prog() { cat "$TMP/prog" 2>/dev/null || echo 0; }

"$SW" -r "$REGION" -R "$RUN" -F -p "$TMP/prog" -P 0 -s "$TMP/stop" -t 240 "$U" >"$TMP/sw.out" 2>"$TMP/sw.err" &
WPID=$!
for _ in $(seq 1 300); do [ "$(prog)" -gt 20 ] && break; sleep 0.1; done
[ "$(prog)" -gt 20 ] || die "the writer does not progress: $(cat "$TMP/sw.err")"

# --- 1-3. the store goes away for 2 s ---------------------------------------
bash "$SRC/tests/tools/pg_cluster.sh" restart "$PGSTATE" 2 >"$TMP/restart.log" 2>&1 &
RPID=$!
S0=$(prog)
saw503=0
saw_other=""
while kill -0 "$RPID" 2>/dev/null; do
  code=$(curl -s -m 10 -o "$TMP/out.body" -D "$TMP/out.hdrs" -w '%{http_code}' \
    -X POST -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"volume":{"size":1,"availability_zone":"az1","name":"during"}}' \
    "$URL/v2/$PROJECT/volumes") || code=000
  case "$code" in
    503)
      saw503=1
      grep -qi '^retry-after: [0-9]' "$TMP/out.hdrs" || fail "a 503 during the outage has no Retry-After: $(cat "$TMP/out.hdrs")"
      ;;
    202) ;; # before the stop or after the start
    *) saw_other="$saw_other $code" ;;
  esac
  g=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/volumes/$P") || g=000
  case "$g" in 200 | 503) ;; *) saw_other="$saw_other GET:$g" ;; esac
  sleep 0.2
done
wait "$RPID" || die "pg_cluster.sh restart failed: $(cat "$TMP/restart.log")"
S1=$(prog)
[ "$saw503" = 1 ] || fail "no 503 while the store was down"
[ -z "$saw_other" ] || fail "answers other than 202/200/503 while the store was down:$saw_other"
[ "$S1" -gt "$S0" ] || fail "no write acknowledged while the store was down ($S0 -> $S1)"
if grep -q 'self-fenced' "$TMP/daemon.log"; then fail "the node self-fenced during a 2 s store outage"; fi
log "store down 2 s: writer $S0 -> $S1 acknowledged, API 503 with Retry-After"

# --- 4. back ---------------------------------------------------------------
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
  api GET "volumes/$P"
  [ "$STATUS" = 200 ] && break
  sleep 0.2
done
expect_status 200 "GET after the store came back"
api GET "$PAIRS/$PAIR"
expect_eq "$(jget .replication.replication_status)" active "pair after the store outage"
touch "$TMP/stop"
wait "$WPID" || fail "writer: $(cat "$TMP/sw.err")"
WPID=""
LAST=$(tail -n 1 "$TMP/sw.out")
"$SC" -r "$REGION" -R "$RUN" -a "$LAST" -b "$LAST" -q "$U" >/dev/null ||
  fail "production does not hold exactly the $LAST acknowledged blocks"
group_action "$G" os-stop-replication-consistency-group
expect_status 200 "pause to read DR"
"$SC" -r "$REGION" -R "$RUN" -a "$LAST" -b "$LAST" -q "$(nbd_uri az2 "$D")" >/dev/null ||
  fail "DR does not hold exactly the $LAST acknowledged blocks"
finish
