#!/usr/bin/env bash
# Self-fence on lease loss (docs/design/multi-site.md "Self-fence as built").
# One node on PostgreSQL, reached through tests/tools/tcpproxy.py so the test
# can cut the node off from its store without touching PostgreSQL itself.
# A pair replicates; seqwriter writes sequence-numbered blocks on the
# production disk, one at a time, and records each acknowledgement.
#  1. healthy: acknowledgements flow; the log says the self-fence is on
#  2. the store is cut (proxy stalled): the node logs that it self-fenced,
#     and from then on no write is acknowledged (the writer's count stands)
#  3. the store is back: the fence is lowered, the writer goes on, and every
#     acknowledged block reads back with no gap (seqcheck)
#  4. cut again; while the node is fenced its roles_generation is bumped
#     behind its back (what a failover from the survivor does); healed, the
#     renewal finds its roles gone: the waiting write fails (the writer
#     stops with an I/O error), the disk holds exactly the acknowledged
#     blocks, and the disk is read-only
#  5. metrics: evsrep_node_self_fences_total counts both fences
#  6. an all-in-one node on SQLite says its self-fence is off
# Needs PostgreSQL: EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE (the ctest
# fixture, tests/tools/pg_cluster.sh).
. "$(dirname "$0")/lib.sh"

if [ -z "${EVSREP_TEST_PG_URL:-}" ] && [ -n "${EVSREP_TEST_PG_URL_FILE:-}" ]; then
  EVSREP_TEST_PG_URL=$(cat "$EVSREP_TEST_PG_URL_FILE")
fi
[ -n "${EVSREP_TEST_PG_URL:-}" ] || die "needs EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE (PostgreSQL)"
SW=$TOOLS/seqwriter
SC=$TOOLS/seqcheck
[ -x "$SW" ] && [ -x "$SC" ] || die "seqwriter/seqcheck not built in $TOOLS"
SRC=${EVSREP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

ADMIN=$EVSREP_TEST_PG_URL
DBNAME="evsrep_t_self_fence_$$"
psql -q "$ADMIN" -c "CREATE DATABASE $DBNAME" >/dev/null || die "cannot create database $DBNAME"
PG_HOSTPORT=$(printf '%s' "$ADMIN" | sed -E 's|^[a-z]+://([^@/]*@)?([^/]+)/.*$|\2|')

PROXY_PID=""
WPID=""
teardown() {
  [ -n "$WPID" ] && kill "$WPID" 2>/dev/null
  [ -n "$PROXY_PID" ] && kill -USR2 "$PROXY_PID" 2>/dev/null # heal, so the daemon can stop
  if [ -n "$DAEMON_PID" ]; then kill -KILL "$DAEMON_PID" 2>/dev/null || true; fi
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'rc=$?; teardown; (exit $rc); cleanup' EXIT

python3 "$SRC/tests/tools/tcpproxy.py" --listen 127.0.0.1:0 --target "$PG_HOSTPORT" \
  --port-file "$TMP/proxy.port" --max-seconds 300 >"$TMP/proxy.log" 2>&1 &
PROXY_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/proxy.port" ] && break; sleep 0.05; done
[ -s "$TMP/proxy.port" ] || die "tcpproxy did not start: $(cat "$TMP/proxy.log")"
DBURL="postgresql://$(printf '%s' "$ADMIN" | sed -E 's|^[a-z]+://(([^@/]*)@)?.*$|\2|')@127.0.0.1:$(cat "$TMP/proxy.port")/$DBNAME"

cat >"$TMP/a.conf" <<EOF
[DEFAULT]
db = $DBURL
node_name = node-a
cluster_key_file = $TMP/cluster.key
lease_ms = 3000
EOF
start_daemon --config "$TMP/a.conf"
grep -q 'self-fence on' "$TMP/daemon.log" || fail "the start-up log does not say the self-fence is on"

# wait_log PATTERN SECONDS WHAT
wait_log() {
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    grep -q -- "$1" "$TMP/daemon.log" && return 0
    sleep 0.1
  done
  fail "$3: no '$1' in the daemon log within $2 s"
  return 1
}
prog() { cat "$TMP/prog" 2>/dev/null || echo 0; }
# wait_prog_above N SECONDS WHAT
wait_prog_above() {
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    [ "$(prog)" -gt "$1" ] && return 0
    sleep 0.1
  done
  fail "$3: the writer's acknowledged count stayed at $(prog) (want > $1)"
  return 1
}

P=$(create_volume az1 1 prod)
D=$(create_volume az2 1 dr)
PAIR=$(create_pair "$P" "$D" fence)
wait_pair_active "$PAIR" 120 || die "pair never active"
U=$(nbd_uri az1 "$P")
REGION=$((64 << 20))
RUN=$((RANDOM + 1))

# --- 1. healthy -----------------------------------------------------------
"$SW" -r "$REGION" -R "$RUN" -p "$TMP/prog" -P 0 -s "$TMP/stop" -t 240 "$U" >"$TMP/sw.out" 2>"$TMP/sw.err" &
WPID=$!
wait_prog_above 20 30 "healthy writer" || die "the writer does not progress"

# --- 2. store cut: self-fence ------------------------------------------------
FENCES_BEFORE=$(grep -c 'self-fenced' "$TMP/daemon.log" || true)
kill -USR1 "$PROXY_PID"
wait_log 'self-fenced' 30 "store cut" || die "no self-fence"
sleep 0.3 # -P 0: the progress file is renamed after every acknowledgement
S1=$(prog)
sleep 2
S2=$(prog)
expect_eq "$S2" "$S1" "acknowledged writes while self-fenced (2 s apart)"
kill -0 "$WPID" 2>/dev/null || fail "the writer exited while fenced (its writes must wait): $(cat "$TMP/sw.err")"

# --- 3. store back: fence lowered, writes resume, nothing lost ---------------
kill -USR2 "$PROXY_PID"
wait_log 'self-fence lowered' 30 "store back"
wait_prog_above "$S2" 30 "writer after the fence lowered"
touch "$TMP/stop"
wait "$WPID" || fail "writer exited with an error: $(cat "$TMP/sw.err")"
WPID=""
LAST=$(tail -n 1 "$TMP/sw.out")
"$SC" -r "$REGION" -R "$RUN" -a "$LAST" -b "$LAST" -q "$U" >/dev/null ||
  fail "seqcheck after the self-fence: the disk does not hold exactly the $LAST acknowledged blocks"
log "fence 1: held at $S1 acknowledged writes for 2 s; $LAST acknowledged in all, all on disk"

# --- 4. roles taken while fenced --------------------------------------------
RUN2=$((RUN + 1))
rm -f "$TMP/stop" "$TMP/prog"
"$SW" -r "$REGION" -R "$RUN2" -o "$REGION" -p "$TMP/prog" -P 0 -t 240 "$U" >"$TMP/sw2.out" 2>"$TMP/sw2.err" &
WPID=$!
wait_prog_above 20 30 "second writer" || die "the second writer does not progress"
N1=$(grep -c 'self-fenced' "$TMP/daemon.log")
kill -USR1 "$PROXY_PID"
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ] && [ "$(grep -c 'self-fenced' "$TMP/daemon.log")" -le "$N1" ]; do sleep 0.1; done
[ "$(grep -c 'self-fenced' "$TMP/daemon.log")" -gt "$N1" ] || die "second cut: no self-fence within 30 s"
sleep 0.3
S3=$(prog)
psql -q "$ADMIN/../$DBNAME" -c "UPDATE nodes SET roles_generation = roles_generation + 1 WHERE name = 'node-a'" >/dev/null 2>&1 ||
  psql -q "${ADMIN%/*}/$DBNAME" -c "UPDATE nodes SET roles_generation = roles_generation + 1 WHERE name = 'node-a'" >/dev/null ||
  die "cannot bump roles_generation"
kill -USR2 "$PROXY_PID"
wait_log "took this node's roles" 30 "roles taken"
rc=0
for _ in $(seq 1 100); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$WPID" 2>/dev/null; then
  fail "the writer is still running 10 s after the roles were taken (its waiting write must fail)"
  kill "$WPID"
fi
wait "$WPID" || rc=$?
WPID=""
[ "$rc" -ne 0 ] || fail "the writer exited 0: its waiting write must have failed"
LAST2=$(tail -n 1 "$TMP/sw2.out")
expect_eq "$LAST2" "$S3" "acknowledged writes after the roles were taken"
"$SC" -r "$REGION" -o "$REGION" -R "$RUN2" -a "$LAST2" -b "$LAST2" -q "$U" >/dev/null ||
  fail "seqcheck after the roles were taken: the disk does not hold exactly the $LAST2 acknowledged blocks"
if qemu-io -f raw -c 'write -P 0x11 0 4k' "$U" >"$TMP/qio" 2>&1 && ! grep -qi 'error\|failed' "$TMP/qio"; then
  fail "a write on the old production disk succeeded after its roles were taken"
fi
log "fence 2: $LAST2 acknowledged, all on disk, the waiting write failed, the disk is read-only"

# --- 5. metrics ----------------------------------------------------------------
M=$(curl -s -m 10 -H "X-Auth-Token: $TOKEN" "$URL/metrics")
TOTAL=$(printf '%s\n' "$M" | awk '/^evsrep_node_self_fences_total\{/{print $2}')
expect_eq "$TOTAL" 2 "evsrep_node_self_fences_total"
printf '%s\n' "$M" | grep -q '^evsrep_node_self_fenced{node="node-a"} 1' ||
  fail "evsrep_node_self_fenced is not 1 after the roles were taken"
stop_daemon

# --- 6. SQLite: off --------------------------------------------------------------
DATA=$TMP/data2
: >"$TMP/daemon.log"
start_daemon
grep -q 'self-fence off' "$TMP/daemon.log" || fail "an all-in-one SQLite node does not say its self-fence is off"
finish
