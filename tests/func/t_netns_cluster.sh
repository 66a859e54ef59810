#!/usr/bin/env bash
# The namespace scenarios (issue 12 step 6; docs/design/multi-site.md
# "Testing"): a network namespace of the test's own (evsrep-<pid>, deleted at
# exit) with PostgreSQL and three nodes on loopback addresses, partitions made
# with nftables rules inside it.
#
#   127.0.0.2  PostgreSQL (a throwaway cluster, tests/tools/pg_cluster.sh)
#   127.0.0.3  node a: az1 (production)       runs with group id 10003
#   127.0.0.4  node b: az2 (DR)               runs with group id 10004
#   127.0.0.5  node c: availability_zones = none (API-only): every request
#              below goes to it and is forwarded
#
# On loopback a connection's source address is 127.0.0.1 whatever its
# destination, so the rules tell the nodes apart by the group id their
# process runs as (nft `meta skgid`, output hook), and the destination
# address and port. A group of two pairs (az1 -> az2) replicates while
# seqwriter writes on both production disks:
#  a. the link cut mid-load (a -> b's NBD port dropped both ways): writes go
#     on, the group freezes as one (both DR disks hold one prefix of the
#     writer's sequence: seqcheck on copies), production holds every
#     acknowledged write; healed: auto-resync, DR == production (qemu-img
#     compare)
#  b. node b killed (-9) under load and restarted: writes go on, the pairs
#     drop to TRACK (fault 5), DR frozen as one; b back: the group active by
#     itself, DR == production
#  c. node a cut from PostgreSQL (a's packets to 127.0.0.2:pgport dropped):
#     a self-fences and the writer's acknowledged count stands still from
#     then on; a failover sent to c is refused 409 with Retry-After while a's
#     lease is valid and succeeds after it lapses; b's new production disks
#     hold every acknowledged write (0 lost); healed, a finds its roles taken
#     (the waiting write fails), restarted it exports the old production
#     read-only; a reprotect through c makes a's disks equal to b's again
# Each scenario logs how many acknowledged writes it checked.
# Needs root (ip netns, nft), nftables, iproute2, PostgreSQL's server
# binaries, qemu-img and the seqwriter/seqcheck tools. ctest registers it
# with the pg_cluster fixture (EVSREP_TEST_PG_URL_FILE) like the other
# PostgreSQL tests, but the fixture's server is outside the namespace: the
# test runs its own. Under ASan: EVSREP_NETNS_RUN_SECS (load after a fault,
# default 1.5) and EVSREP_NETNS_LEASE_MS (default 4000: the failover must
# reach node a between its self-fence and its lease's lapse).

# --- outside: make the namespace, run this script inside it ------------------
if [ -z "${EVSREP_NETNS:-}" ]; then
  set -u
  [ "$(id -u)" = 0 ] || { echo "t_netns_cluster: FATAL: needs root (ip netns, nft)" >&2; exit 1; }
  command -v nft >/dev/null || { echo "t_netns_cluster: FATAL: nft not found (apt-get install nftables)" >&2; exit 1; }
  NS="evsrep-$$"
  ip netns add "$NS" || { echo "t_netns_cluster: FATAL: ip netns add $NS failed" >&2; exit 1; }
  # The inner script stops what it started; whatever is left (it was
  # killed) is ours: every process in our namespace.
  trap 'for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; ip netns del "$NS"' EXIT
  ip -n "$NS" link set lo up
  for a in 2 3 4 5; do ip -n "$NS" addr add "127.0.0.$a/32" dev lo; done
  EVSREP_NETNS=$NS ip netns exec "$NS" bash "$0" "$@" &
  CHILD=$!
  # Stopped (ctest's timeout): the inner script cleans up, then the trap.
  trap 'kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD"; exit 143' TERM INT
  wait "$CHILD"
  exit $?
fi

# --- inside the namespace -------------------------------------------------------
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection
trap 'exit 143' TERM # run the EXIT trap (nodes, PostgreSQL) when stopped
SRC=${EVSREP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
RUN_SECS=${EVSREP_NETNS_RUN_SECS:-1.5}
REGION=8M

nft add table inet evsrep_t && nft add chain inet evsrep_t out '{ type filter hook output priority 0; policy accept; }' ||
  die "nft does not work in namespace $EVSREP_NETNS"
# drop RULE...: drop what matches (output hook); heal: drop nothing
drop() { nft add rule inet evsrep_t out "$@" drop || die "nft add rule $*"; }
heal() { nft flush chain inet evsrep_t out || die "nft flush"; }

PGSTATE="$TMP/pg"
EVSREP_PG_HOST=127.0.0.2 bash "$SRC/tests/tools/pg_cluster.sh" start "$PGSTATE" >"$TMP/pg.log" 2>&1 ||
  die "cannot start PostgreSQL in the namespace: $(cat "$TMP/pg.log")"
nodes_teardown_extra() {
  nft delete table inet evsrep_t 2>/dev/null
  [ -z "${WPID:-}" ] || kill "$WPID" 2>/dev/null
  [ -z "${WP:-}" ] || kill "$WP" 2>/dev/null
}
nodes_teardown_last() { bash "$SRC/tests/tools/pg_cluster.sh" stop "$PGSTATE" >/dev/null 2>&1; }
PGPORT=$(sed -E 's|.*:([0-9]+)/.*|\1|' "$PGSTATE/url")
nodes_db_create t_netns "$(cat "$PGSTATE/url")"
nodes_tokens

IP=([a]=127.0.0.3 [b]=127.0.0.4 [c]=127.0.0.5)
for n in a b c; do NODE_EXEC[$n]="setpriv --regid 1000${IP[$n]##*.} --clear-groups"; done
LEASE_MS=${EVSREP_NETNS_LEASE_MS:-4000}
LINK_TIMEOUT=1 # lease_ms > 2 x link_timeout (multi-site.md "Constraint on timers")
nodes_write_conf a az1
nodes_write_conf b az2
nodes_write_conf c none
nodes_start a
nodes_start b
nodes_start c
T0=$SECONDS
[ -z "$(awk -F= '$1 ~ /^nbd\./' "$TMP/nc/evsrepd.ports")" ] || fail "the API-only node listens for NBD"
URL=$URL_c

# --- the group, set up through c ---------------------------------------------------
nodes_group_volumes
grep -q "forwarded to node node-a" "$TMP/c.log" || fail "c's log does not show a forward to node-a"
PU1=$(attach c "$P1")
PU2=$(attach c "$P2")
case "$PU1" in *"${NBD_a}"*) ;; *) fail "production attachment is not on node a's NBD listener $NBD_a: $PU1" ;; esac
R1=$(create_pair "$P1" "$D1" r1)
R2=$(create_pair "$P2" "$D2" r2)
wait_pair_active "$R1" 60
wait_pair_active "$R2" 60
GID=$(create_group g "$R1" "$R2")
group_action "$GID" os-sync-replication-consistency-group # a new group starts paused
expect_status 200 "first sync of the group (through c)"
wait_group c "$GID" replication_status active 30
QUERY_NODE=c

# --- a. the link cut mid-load and healed -----------------------------------------
NBDB_PORT=${NBD_b##*:}
RUNID=$((RANDOM + 1000))
load "$RUNID"
drop meta skgid 10003 ip daddr 127.0.0.4 tcp dport "$NBDB_PORT"
drop meta skgid 10004 ip saddr 127.0.0.4 tcp sport "$NBDB_PORT"
wait_group c "$GID" replication_status error 20
sleep "$RUN_SECS" # production keeps acknowledging with the link cut
unload "link cut"
faulted "link cut"
frozen_check "link cut"
heal
wait_group c "$GID" replication_status active 60
same_files "link healed: r1" "$P1" "$D1"
same_files "link healed: r2" "$P2" "$D2"
log "a. link cut: $F acknowledged writes checked on production, DR frozen at $FROZEN, DR == production after the heal"

# --- b. the DR node killed under load and restarted --------------------------------
RUNID=$((RUNID + 1))
load "$RUNID"
nodes_kill b
wait_group c "$GID" replication_status error 20
S0=$(cat "$TMP/prog")
sleep "$RUN_SECS"
[ "$(cat "$TMP/prog")" -gt "$S0" ] || fail "DR node dead: production acknowledged nothing in $RUN_SECS s"
unload "DR killed"
faulted "DR killed"
on c GET "$PAIRS/$R1"
frozen_check "DR killed"
nodes_start b
wait_group c "$GID" replication_status active 60
on c GET "$PAIRS/$R1"
expect_eq "$(jget .replication.replication_status)/$(jget .replication.fault_level)" active/0 "r1 after b's return"
same_files "DR back: r1" "$P1" "$D1"
same_files "DR back: r2" "$P2" "$D2"
log "b. DR killed: $F acknowledged writes checked on production, DR frozen at $FROZEN, DR == production after the restart"

# --- c. production cut from the store ------------------------------------------------
prog() { cat "$TMP/prog" 2>/dev/null || echo 0; }
RUNID=$((RUNID + 1))
rm -f "$TMP/prog"
"$SW" -q -R "$RUNID" -r "$REGION" -t 120 -p "$TMP/prog" -P 0 "$PU1" "$PU2" >"$TMP/sw.out" 2>"$TMP/sw.err" &
WPID=$!
for _ in $(seq 1 200); do [ "$(prog)" -gt 200 ] && break; sleep 0.05; done
[ "$(prog)" -gt 200 ] || die "the writer does not progress: $(cat "$TMP/sw.err")"
NF=$(grep -c 'self-fenced' "$TMP/a.log" || true)
drop meta skgid 10003 ip daddr 127.0.0.2 tcp dport "$PGPORT"
for _ in $(seq 1 200); do [ "$(grep -c 'self-fenced' "$TMP/a.log")" -gt "$NF" ] && break; sleep 0.05; done
[ "$(grep -c 'self-fenced' "$TMP/a.log")" -gt "$NF" ] || die "node a did not self-fence within 10 s of the cut"
on c POST "$RCGS/$GID/action" '{"os-failover-replication-consistency-group": null}' -m 30
expect_status 409 "failover through c while a's lease is valid"
sleep 0.3 # -P 0: the progress file follows every acknowledgement
S1=$(prog)
RETRY=$(printf '%s' "$HDRS" | tr -d '\r' | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
[[ "$RETRY" =~ ^[1-9][0-9]*$ ]] && [ "$RETRY" -le $(((LEASE_MS + 999) / 1000)) ] ||
  fail "the 409 has no Retry-After within the lease: '$RETRY' ($HDRS)"
case "$BODY" in *"node node-a (az1) holds its lease for"*) ;; *) fail "the 409 does not name node-a's lease: $BODY" ;; esac
for _ in $(seq 1 30); do
  on c POST "$RCGS/$GID/action" '{"os-failover-replication-consistency-group": null}' -m 30
  [ "$STATUS" = 409 ] || break
  sleep "${RETRY:-1}"
done
expect_status 200 "failover through c after a's lease lapsed"
S2=$(prog)
expect_eq "$S2" "$S1" "acknowledged writes from the self-fence to the failover"
kill -0 "$WPID" 2>/dev/null || fail "the writer stopped while a was fenced (its write must wait): $(cat "$TMP/sw.err")"
on c GET "$RCGS/$GID"
expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")" failovered/az2 "the group after the failover"
NU1=$(attach c "$D1")
NU2=$(attach c "$D2")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$D1")" false "new production attachment read_only"
"$SC" -q -R "$RUNID" -r "$REGION" -a "$S1" -b "$S1" "$NU1" "$NU2" >/dev/null 2>"$TMP/sc.err" ||
  fail "b's new production does not hold exactly the $S1 acknowledged writes: $(cat "$TMP/sc.err")"
heal
for _ in $(seq 1 200); do grep -q "took this node's roles" "$TMP/a.log" && break; sleep 0.1; done
grep -q "took this node's roles" "$TMP/a.log" || fail "healed, node a does not say its roles were taken"
rc=0
for _ in $(seq 1 100); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
wait "$WPID" || rc=$?
WPID=""
[ "$rc" -ne 0 ] || fail "the writer exited 0: its waiting write must have failed"
expect_eq "$(tail -n 1 "$TMP/sw.out")" "$S1" "acknowledged writes after node a learnt its roles were taken"
nodes_kill a
nodes_start a
OU1=$(attach c "$P1")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$P1")" true "old production attachment after a's return"
if qemu-io -f raw -c 'write -P 0x66 0 4k' "$OU1" >"$TMP/qio" 2>&1; then
  fail "a client wrote node a's old production disk after its return"
fi
qemu-io -f raw -c 'write -P 0x6b 200M 1M' -c flush "$NU1" >"$TMP/qio" 2>&1 || fail "write on b's new production: $(cat "$TMP/qio")"
on c POST "$RCGS/$GID/action" '{"os-reprotect-replication-consistency-group": null}'
expect_status 200 "reprotect through c"
wait_group c "$GID" replication_status active 60
same_files "after the reprotect: r1" "$P1" "$D1"
same_files "after the reprotect: r2" "$P2" "$D2"
log "c. store cut: $S1 acknowledged writes checked on the new production (0 lost), none acknowledged after the self-fence"

log "scenarios took $((SECONDS - T0)) s"
nodes_stop c
nodes_stop b
nodes_stop a
finish
