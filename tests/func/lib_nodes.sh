# Multi-node helpers for the tests that start evsrepd nodes themselves
# (t_nodes, t_multisite_link, t_multisite_failover, t_netns_cluster): one
# PostgreSQL database per test, one tokens file and one cluster key shared by
# every node, a config and a data directory per node. Source it after
# lib.sh. (lib_cluster.sh is the other thing: it turns the all-in-one tests
# into two-node ones behind start_daemon.)
#
#   nodes_db_create TAG [ADMIN_URL]  the test's database (ADMIN_URL defaults
#                                    to the pg_cluster fixture's); sets
#                                    ADMIN, DBNAME, DBURL; dropped at exit
#   nodes_tokens [operator]          tokens file; TOKEN PROJECT (exported)
#                                    and, with "operator", OPTOKEN OPPROJECT
#   nodes_write_conf NAME AZ [LINE...]  $TMP/NAME.conf, data in $TMP/nNAME,
#                                    listening on ${IP[NAME]:-127.0.0.1};
#                                    AZ "none": an API-only node
#   nodes_start NAME                 starts it (prefixed by ${NODE_EXEC[NAME]}
#                                    if set), waits for its ports file; sets
#                                    NPID[NAME], URL_NAME, NBD_NAME
#   nodes_stop NAME                  SIGTERM, expects exit 0
#   nodes_kill NAME                  kill -9
#   on NAME METHOD PATH [BODY]...    api() against that node
#   attach NODE VOLUME               attach; prints the URI, the answer in
#                                    $TMP/att.VOLUME
#   node_file NODE AZ ID             the volume file on that node; a_file ID
#                                    and b_file ID: node a's az1, node b's az2
#   nodes_two_sites LEASE_MS         node a (az1) on 127.0.0.21 and node b
#                                    (az2) on 127.0.0.22, link_timeout 2,
#                                    both started
#   nodes_group_volumes              P1 P2 in az1, D1 D2 in az2 (through $URL)
#   same_files WHAT A_ID B_ID        qemu-img compare of node a's az1 file
#                                    with node b's az2 file
#   wait_group NODE GID FIELD WANT SECS
#   nodes_paused_group TAG IP_A IP_B MIB [GROUPS]
#                                    the set-up of the remote sidecar tests
#                                    (below); region_sum FILE: sha256 of
#                                    the first MIB MiB of a file
#
# LEASE_MS (default 3000) and LINK_TIMEOUT (unset: the default) go into
# every config written. nodes_teardown_extra, if the test defines it, runs
# first at exit (stop writers, heal partitions).

declare -A NPID=() IP=() NODE_EXEC=()
QPIDS=()

nodes_teardown() {
  if declare -F nodes_teardown_extra >/dev/null; then nodes_teardown_extra || true; fi
  local n q
  for n in "${!NPID[@]}"; do
    kill -CONT "${NPID[$n]}" 2>/dev/null || true
    kill -KILL "${NPID[$n]}" 2>/dev/null || true
    wait "${NPID[$n]}" 2>/dev/null || true
  done
  for q in "${QPIDS[@]}"; do kill "$q" 2>/dev/null || true; done
  pg_test_db_drop_all
  if declare -F nodes_teardown_last >/dev/null; then nodes_teardown_last || true; fi
}
trap 'rc=$?; nodes_teardown; (exit $rc); cleanup' EXIT

nodes_db_create() {
  DBNAME="evsrep_$1_$$"
  pg_test_db_create "$DBNAME" "${2:-}" # lib_pg.sh
  ADMIN=$PG_TEST_ADMIN
  DBURL=$PG_TEST_DB_URL
}

nodes_tokens() {
  TOKEN=$(openssl rand -hex 32)
  PROJECT=p$(openssl rand -hex 8)
  umask 077
  printf '%s %s\n' "$TOKEN" "$PROJECT" >"$TMP/tokens"
  if [ "${1:-}" = operator ]; then
    OPTOKEN=$(openssl rand -hex 32)
    OPPROJECT=ops
    printf '%s %s operator\n' "$OPTOKEN" "$OPPROJECT" >>"$TMP/tokens"
  fi
  umask 022
  export TOKEN PROJECT
}

KEY="$TMP/cluster.key"
nodes_write_conf() {
  local n=$1 az=$2 ip=${IP[$1]:-127.0.0.1}
  shift 2
  mkdir -p "$TMP/n$n"
  {
    printf '[DEFAULT]\ndata_dir = %s\ndb = %s\ntokens = %s\nlisten = %s:0\n' \
      "$TMP/n$n" "$DBURL" "$TMP/tokens" "$ip"
    printf 'availability_zones = %s\nnode_name = node-%s\ncluster_key_file = %s\nlease_ms = %s\n' \
      "$az" "$n" "$KEY" "${LEASE_MS:-3000}"
    [ -z "${LINK_TIMEOUT:-}" ] || printf 'link_timeout = %s\n' "$LINK_TIMEOUT"
    [ $# -eq 0 ] || printf '%s\n' "$@"
    [ "$az" = none ] || printf '[az:%s]\nnbd_listen = %s:0\n' "$az" "$ip"
  } >"$TMP/$n.conf"
}

nodes_start() {
  local n=$1 port nbd ip=${IP[$1]:-127.0.0.1}
  rm -f "$TMP/n$n/evsrepd.ports"
  # shellcheck disable=SC2086 # NODE_EXEC is a command prefix
  ${NODE_EXEC[$n]:-} "$EVSREPD" --config "$TMP/$n.conf" >>"$TMP/$n.log" 2>&1 &
  NPID[$n]=$!
  for _ in $(seq 1 300); do
    [ -s "$TMP/n$n/evsrepd.ports" ] && break
    kill -0 "${NPID[$n]}" 2>/dev/null || { tail -n 20 "$TMP/$n.log" >&2; die "node $n exited during start"; }
    sleep 0.05
  done
  [ -s "$TMP/n$n/evsrepd.ports" ] || die "node $n wrote no ports file"
  port=$(awk -F= '$1=="http"{print $2}' "$TMP/n$n/evsrepd.ports")
  nbd=$(awk -F= '$1 ~ /^nbd\./{print $2}' "$TMP/n$n/evsrepd.ports")
  printf -v "URL_$n" 'http://%s:%s' "$ip" "$port"
  printf -v "NBD_$n" '%s:%s' "$ip" "$nbd"
}

nodes_stop() {
  kill -TERM "${NPID[$1]}"
  wait "${NPID[$1]}" || fail "node $1 exited non-zero after SIGTERM"
  unset "NPID[$1]"
}

nodes_kill() {
  kill -KILL "${NPID[$1]}"
  wait "${NPID[$1]}" 2>/dev/null || true
  unset "NPID[$1]"
}

on() {
  local n=$1
  shift
  local var="URL_$n"
  URL=${!var} api "$@"
}

attach() {
  on "$1" POST "volumes/$2/action" "{\"os-initialize_connection\":{\"connector\":{\"host\":\"$TEST_NAME\"}}}"
  expect_status 200 "attach $2 on $1" || return 1
  printf '%s' "$BODY" >"$TMP/att.$2"
  jget .connection_info.data.uri
}

node_file() { printf '%s/n%s/%s/%s' "$TMP" "$1" "$2" "$3"; }
a_file() { node_file a az1 "$1"; }
b_file() { node_file b az2 "$1"; }

nodes_two_sites() {
  IP=([a]=127.0.0.21 [b]=127.0.0.22)
  LEASE_MS=$1
  LINK_TIMEOUT=2
  nodes_write_conf a az1
  nodes_write_conf b az2
  nodes_start a
  nodes_start b
}

nodes_group_volumes() {
  P1=$(create_volume az1 1 p1)
  P2=$(create_volume az1 1 p2)
  D1=$(create_volume az2 1 d1)
  D2=$(create_volume az2 1 d2)
  [ -f "$(a_file "$P1")" ] && [ -f "$(b_file "$D1")" ] || die "volume files not on their AZ's node"
}

same_files() {
  local a b
  a=$(a_file "$2")
  b=$(b_file "$3")
  qemu-img compare -q -f raw -F raw "$a" "$b" >/dev/null 2>&1 ||
    fail "$1: node a's file differs from node b's: $(qemu-img compare -f raw -F raw "$a" "$b" 2>&1)"
}

G=.replication_consistency_group
wait_group() {
  local end=$((SECONDS + $5)) got=""
  while [ $SECONDS -lt $end ]; do
    on "$1" GET "$RCGS/$2"
    got=$(jget "$G.$3")
    [ "$got" = "$4" ] && return 0
    sleep 0.2
  done
  fail "group $2: want $3 $4, last $got ($BODY)"
  return 1
}

# --- a paused group of two remote pairs (t_multisite_resync_failover,
# t_multisite_sidecar_release) ----------------------------------------------
# nodes_paused_group TAG IP_A IP_B MIB [GROUPS]: the test's database (TAG),
# one tokens file, node a (az1) on IP_A and node b (az2) on IP_B, lease_ms
# 3000, LINK_TIMEOUT and NODE_EXEC as the test set them, both started; URL
# is node a's. GROUPS (default 1) groups of two pairs each: for i = 1 ..
# 2*GROUPS, P[i] (az1, attached on a as PU[i]) holds MIB MiB of 0x11
# (flushed), and pair R[i] replicates it to D[i] (az2); group k (GIDS[k],
# named g, g2, g3, ...) holds R[2k-1] and R[2k]. Every group is synced to
# active, then paused: the DR disks hold the frozen instant of 0x11. P1 P2
# D1 D2 PU1 PU2 R1 R2 GID name the first group's.
nodes_paused_group() {
  local i k n=$((2 * ${5:-1}))
  nodes_db_create "$1" # EVSREP_TEST_PG_URL_FILE: the pg_cluster fixture
  nodes_tokens
  IP=([a]=$2 [b]=$3)
  LEASE_MS=3000
  MIB=$4
  nodes_write_conf a az1
  nodes_write_conf b az2
  nodes_start a
  nodes_start b
  URL=$URL_a
  P=() D=() PU=() R=() GIDS=()
  for ((i = 1; i <= n; i++)); do
    P[i]=$(create_volume az1 1 "p$i")
    D[i]=$(create_volume az2 1 "d$i")
    PU[i]=$(attach a "${P[i]}")
    qemu-io -f raw -c "write -P 0x11 0 ${MIB}M" -c flush "${PU[i]}" >"$TMP/qio" 2>&1 ||
      fail "first write: $(cat "$TMP/qio")"
  done
  [ -f "$(a_file "${P[1]}")" ] && [ -f "$(b_file "${D[1]}")" ] || die "volume files not on their AZ's node"
  for ((i = 1; i <= n; i++)); do R[i]=$(create_pair "${P[i]}" "${D[i]}" "r$i"); done
  for ((i = 1; i <= n; i++)); do wait_pair_active "${R[i]}" 60; done
  for ((k = 1; k <= n / 2; k++)); do
    GIDS[k]=$(create_group "g$([ "$k" = 1 ] || echo "$k")" "${R[2 * k - 1]}" "${R[2 * k]}")
  done
  for k in "${!GIDS[@]}"; do
    group_action "${GIDS[k]}" os-sync-replication-consistency-group
    expect_status 200 "first sync of group $k"
  done
  for k in "${!GIDS[@]}"; do wait_group a "${GIDS[k]}" replication_status active 60 || die "group $k not active"; done
  for k in "${!GIDS[@]}"; do
    group_action "${GIDS[k]}" os-stop-replication-consistency-group
    expect_status 200 "pause of group $k"
    wait_group a "${GIDS[k]}" replication_status active-stopped 10 || die "group $k not paused"
  done
  P1=${P[1]} P2=${P[2]} D1=${D[1]} D2=${D[2]} PU1=${PU[1]} PU2=${PU[2]} R1=${R[1]} R2=${R[2]}
  GID=${GIDS[1]}
}
region_sum() { head -c "$((MIB << 20))" "$1" | sha256sum | cut -d' ' -f1; }

# --- a two-disk group under load (t_multisite_link, t_netns_cluster) --------
# These use the test's PU1 PU2 (production URIs), D1 D2 (DR volumes on node
# b, az2), R1 R2 (pairs), GID (their group), RUNID and REGION; faulted asks
# node ${QUERY_NODE:-a}.
# load RUNID: seqwriter on both production disks in the background (WP)
load() {
  rm -f "$TMP/stop" "$TMP/prog"
  "$SW" -q -R "$1" -r "$REGION" -s "$TMP/stop" -t 60 -p "$TMP/prog" -P 1 "$PU1" "$PU2" \
    >"$TMP/sw.out" 2>"$TMP/sw.err" &
  WP=$!
  for _ in $(seq 1 100); do [ -s "$TMP/prog" ] && [ "$(cat "$TMP/prog")" -gt 200 ] 2>/dev/null && break; sleep 0.05; done
}
unload() { # prints the count of acknowledged writes; fails on a writer error
  touch "$TMP/stop"
  local rc=0
  wait "$WP" || rc=$?
  [ "$rc" = 0 ] || fail "$1: writer failed (a DR fault must not fail client writes): $(cat "$TMP/sw.err")"
  F=$(cat "$TMP/sw.out")
  [[ "$F" =~ ^[0-9]+$ ]] || F=0
}
# frozen_check TAG: the DR files (copied while B cannot write them) hold one
# prefix of the writer's sequence; production holds all F writes.
frozen_check() {
  local tag=$1 i s
  for i in 1 2; do
    local d=D$i
    cp --sparse=always "$(b_file "${!d}")" "$TMP/dr$i.img"
    s="$TMP/dr$i.sock"
    rm -f "$s"
    qemu-nbd -r -t -f raw -k "$s" "$TMP/dr$i.img" >/dev/null 2>&1 &
    QPIDS+=($!)
  done
  for _ in $(seq 1 100); do [ -S "$TMP/dr1.sock" ] && [ -S "$TMP/dr2.sock" ] && break; sleep 0.05; done
  local u1="nbd+unix:///?socket=$TMP/dr1.sock" u2="nbd+unix:///?socket=$TMP/dr2.sock"
  "$SC" -q -t -R "$RUNID" -r "$REGION" -b "$F" "$u1" "$u2" >"$TMP/sc.out" 2>"$TMP/sc.err" ||
    fail "$tag: the DR disks are not one instant: $(cat "$TMP/sc.err") (acknowledged $F)"
  FROZEN=$("$SC" -m -R "$RUNID" -r "$REGION" "$u1" "$u2" 2>/dev/null || echo 0)
  [ "${FROZEN:-0}" -lt "$F" ] || fail "$tag: DR holds all $F writes: nothing was frozen"
  "$SC" -q -R "$RUNID" -r "$REGION" -a "$F" -b "$F" "$PU1" "$PU2" >/dev/null 2>"$TMP/sc.err" ||
    fail "$tag: production lost acknowledged writes: $(cat "$TMP/sc.err")"
  for q in "${QPIDS[@]}"; do kill "$q" 2>/dev/null || true; wait "$q" 2>/dev/null || true; done
  QPIDS=()
  rm -f "$TMP/dr1.img" "$TMP/dr2.img"
  log "$tag: DR frozen at seq $FROZEN of $F acknowledged"
}
# faulted TAG: both pairs stopped, one at least with fault_level 5, the
# others frozen with the group (active-stopped) or faulted too
faulted() {
  local tag=$1 r st n5=0
  for r in "$R1" "$R2"; do
    on "${QUERY_NODE:-a}" GET "$PAIRS/$r"
    st="$(jget .replication.replication_status)/$(jget .replication.fault_level)"
    case "$st" in
    inactive/5) n5=$((n5 + 1)) ;;
    active-stopped/0) ;;
    *) fail "$tag: pair $r is $st, want inactive/5 or active-stopped/0" ;;
    esac
  done
  [ "$n5" -ge 1 ] || fail "$tag: no pair reports fault_level 5"
  on "${QUERY_NODE:-a}" GET "$RCGS/$GID"
  expect_eq "$(jget "$G.fault_level")" 5 "$tag: group fault_level"
}

