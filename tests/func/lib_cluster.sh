# Two-node mode of the black-box tests (issue 12: "run the functional suite
# against a two-node cluster"). Sourced by lib.sh when EVSREP_TEST_NODES=2:
# it replaces start_daemon, stop_daemon and crash_daemon so that a test
# written for the all-in-one daemon talks to a cluster instead:
#
#   node a: az1, the API the test talks to (URL), NBD_AZ1
#   node b: az2, NBD_AZ2; every az2 request the test sends to node a is
#           forwarded to b over the internal channel
#   PostgreSQL: a database of the test's own in the pg_cluster fixture
#           (EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE), dropped at exit
#
# Both nodes share the tokens file and the cluster key (in node a's data
# directory, $DATA) and the test's extra evsrepd arguments. Node b's data
# directory is $DATA/node-b; $DATA/az2 is a link to its az2 directory, so a
# test that looks at volume files finds them where the all-in-one daemon
# keeps them. DAEMON_PID is node a's process; NODE_B_PID node b's.
#
# stop_az AZ / crash_az AZ stop or kill the one node serving AZ (a test
# aims a kill at the node that carries out the action); start_daemon then
# starts only the nodes that are down. EVSREP_FAULT_AZ=AZ next to
# EVSREP_FAULT gives the fault rules to that AZ's node only (a slow DR disk
# slows the DR node, not the production node's own writes).

pg_test_admin_url # EVSREP_TEST_NODES=2 needs PostgreSQL (lib_pg.sh)
CLUSTER_DB="evsrep_2n_$(printf '%s' "${TEST_NAME#t_}" | tr -c 'a-z0-9_' '_' | cut -c1-40)_$$"
CLUSTER_DB_URL=""
NODE_B_PID=""

cluster_teardown() {
  if [ -n "$NODE_B_PID" ]; then
    kill -KILL "$NODE_B_PID" 2>/dev/null || true
    wait "$NODE_B_PID" 2>/dev/null || true
    NODE_B_PID=""
  fi
  pg_test_db_drop_all
}
trap 'rc=$?; [ -n "$DAEMON_PID" ] && kill -KILL "$DAEMON_PID" 2>/dev/null; cluster_teardown; (exit $rc); cleanup' EXIT

# cluster_wait_ports DIR PID WHAT: wait for DIR/evsrepd.ports.
cluster_wait_ports() {
  for _ in $(seq 1 300); do
    [ -s "$1/evsrepd.ports" ] && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited during start"
    sleep 0.05
  done
  die "$3 did not write its ports file"
}

# cluster_env AZ: the environment prefix of the node serving AZ: without the
# fault rules when EVSREP_FAULT_AZ names the other node's AZ.
cluster_env() {
  CENV=(env)
  if [ -n "${EVSREP_FAULT_AZ:-}" ] && [ "$EVSREP_FAULT_AZ" != "$1" ]; then CENV=(env -u EVSREP_FAULT); fi
}
cluster_start_a() {
  cluster_env az1
  rm -f "$DATA/evsrepd.ports"
  "${CENV[@]}" "$EVSREPD" --config "$TMP/node-a.conf" --data-dir "$DATA" --listen 127.0.0.1:0 \
    --nbd-listen az1=127.0.0.1:0 "$@" >>"$TMP/daemon.log" 2>&1 &
  DAEMON_PID=$!
  cluster_wait_ports "$DATA" "$DAEMON_PID" "node a"
}
cluster_start_b() {
  cluster_env az2
  rm -f "$DATA/node-b/evsrepd.ports"
  "${CENV[@]}" "$EVSREPD" --config "$TMP/node-b.conf" --data-dir "$DATA/node-b" --listen 127.0.0.1:0 \
    --nbd-listen az2=127.0.0.1:0 "$@" >>"$TMP/daemon-b.log" 2>&1 &
  NODE_B_PID=$!
  cluster_wait_ports "$DATA/node-b" "$NODE_B_PID" "node b"
}

start_daemon() {
  if [ -n "${EVSREP_FAULT:-}" ] && ! grep -qa 'fault injection armed' "$EVSREPD"; then
    die "EVSREP_FAULT='$EVSREP_FAULT' needs an evsrepd built with -DEVSREP_FAULT_INJECTION=ON ($EVSREPD is not)"
  fi
  if [ -z "$CLUSTER_DB_URL" ]; then
    pg_test_db_create "$CLUSTER_DB"
    CLUSTER_DB_URL=$PG_TEST_DB_URL
  fi
  local b="$DATA/node-b"
  mkdir -p "$DATA" "$b"
  cat >"$TMP/node-a.conf" <<EOF
[DEFAULT]
db = $CLUSTER_DB_URL
node_name = node-a
availability_zones = az1
cluster_key_file = $DATA/cluster.key
tokens = $DATA/tokens
lease_ms = 6000
EOF
  sed -e 's/^node_name = node-a$/node_name = node-b/' -e 's/^availability_zones = az1$/availability_zones = az2/' \
    "$TMP/node-a.conf" >"$TMP/node-b.conf"
  # The first start: node a creates the tokens file and the cluster key, so
  # it goes first. A restart starts the DR side first, so the production
  # node's mirrors find their links up, as the all-in-one daemon finds its
  # DR disks at start (a stopped node has released its lease: a production
  # node started first would open its links broken). The DR side is node b
  # unless every group's production (with no group, every pair's) is in
  # az2 now. A node still running (after stop_az or crash_az of the other
  # one) is left alone.
  if [ -s "$DATA/tokens" ] && [ -s "$DATA/cluster.key" ]; then
    local prods
    prods=$(psql -qtA "$CLUSTER_DB_URL" -c "SELECT coalesce((SELECT string_agg(DISTINCT priority_station, ',') FROM groups), (SELECT string_agg(DISTINCT priority_station, ',') FROM pairs))" 2>/dev/null) || prods=""
    if [ "$prods" = az2 ]; then
      [ -n "$DAEMON_PID" ] || cluster_start_a "$@"
      [ -n "$NODE_B_PID" ] || cluster_start_b "$@"
    else
      [ -n "$NODE_B_PID" ] || cluster_start_b "$@"
      [ -n "$DAEMON_PID" ] || cluster_start_a "$@"
    fi
  else
    cluster_start_a "$@"
    cluster_start_b "$@"
  fi
  [ -e "$DATA/az2" ] || ln -s node-b/az2 "$DATA/az2"
  local http az1 az2
  http=$(awk -F= '$1=="http"{print $2}' "$DATA/evsrepd.ports")
  az1=$(awk -F= '$1=="nbd.az1"{print $2}' "$DATA/evsrepd.ports")
  az2=$(awk -F= '$1=="nbd.az2"{print $2}' "$b/evsrepd.ports")
  URL="http://127.0.0.1:$http"
  NBD_AZ1="127.0.0.1:$az1"
  NBD_AZ2="127.0.0.1:$az2"
  read -r TOKEN PROJECT < <(grep -v '^#' "$DATA/tokens" | head -n 1)
  export URL NBD_AZ1 NBD_AZ2 TOKEN PROJECT
}

# stop_daemon: SIGTERM to both nodes, expect clean exits.
stop_daemon() {
  local rc=0
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
    [ $rc -eq 0 ] || fail "node a exited with $rc after SIGTERM"
  fi
  if [ -n "$NODE_B_PID" ]; then
    rc=0
    kill -TERM "$NODE_B_PID"
    wait "$NODE_B_PID" || rc=$?
    NODE_B_PID=""
    [ $rc -eq 0 ] || fail "node b exited with $rc after SIGTERM"
  fi
}

# stop_az AZ / crash_az AZ: SIGTERM / kill -9 the node serving AZ only
# (lib.sh); the next start_daemon starts it again, alone.
stop_az() {
  local rc=0 what
  if [ "$1" = az1 ]; then what="node a"; else what="node b"; fi
  if [ "$1" = az1 ] && [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
  elif [ "$1" != az1 ] && [ -n "$NODE_B_PID" ]; then
    kill -TERM "$NODE_B_PID"
    wait "$NODE_B_PID" || rc=$?
    NODE_B_PID=""
  fi
  [ $rc -eq 0 ] || fail "$what exited with $rc after SIGTERM"
}
crash_az() {
  if [ "$1" = az1 ] && [ -n "$DAEMON_PID" ]; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
  elif [ "$1" != az1 ] && [ -n "$NODE_B_PID" ]; then
    kill -KILL "$NODE_B_PID" 2>/dev/null || true
    wait "$NODE_B_PID" 2>/dev/null || true
    NODE_B_PID=""
  fi
}

# crash_daemon: kill -9 both nodes (the all-in-one daemon's crash is the
# loss of both sites' processes at once).
crash_daemon() {
  local p
  for p in "$DAEMON_PID" "$NODE_B_PID"; do
    [ -n "$p" ] || continue
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  DAEMON_PID=""
  NODE_B_PID=""
}
