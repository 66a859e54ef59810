#!/usr/bin/env bash
# Multi-site step 5 (docs/design/multi-site.md "Failover from the survivor",
# "The old node's return", "Moving a mirror between nodes"): node A serves
# az1 on 127.0.0.21, node B az2 on 127.0.0.22, one PostgreSQL store,
# lease_ms 3000. Two groups across the nodes:
#   G1 (r1, r2): replicating (SYNC) while seqwriter writes on A's production
#   G2 (r3):     paused, with a write on A's production that only A's bitmap
#                knows (A's divergence, for the reprotect's union)
#  1. kill -9 A mid-load; failover of G1 sent to B: 409 with Retry-After
#     while A's lease is valid, naming node-a; once it lapsed: 200, G1
#     failovered with production in az2, A's old volumes fenced in the store
#  2. B's new production disks (read over NBD attachments on B) hold one
#     prefix of the writer's sequence with every acknowledged write (seqcheck)
#     and are writable for clients; a write there (tracked by B)
#  3. G2 fails over too (no lease wait now)
#  4. A restarts: its old production disks are read-only for clients; it
#     opened no mirror for the moved pairs and kept their meta files
#     the internal divergence and takeover routes answer clients 404
#  5. reprotect of both groups through A (carried out by B): A's
#     divergence unioned (B's log), resync, every old production file on A
#     equals its new production on B (qemu-img compare), groups active
#  6. reverse of G1 back home (B hands the mirrors to A in SYNC): A's disks
#     writable and hold every acknowledged write, B's old attachment refuses
#     writes, a write on A reaches B
#  7. failover of G2 with B alive (B hands the mirror to A in TRACK), a write
#     on A, reprotect (through B, carried out by A): equal again
#  8. A restarted without r3's meta file (a takeover that never ran): r3 in
#     error, a group sync restarts it with a full copy, equal again
# Needs PostgreSQL (EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE, the
# pg_cluster ctest fixture) and the seqwriter/seqcheck tools.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection

nodes_db_create t_fo # EVSREP_TEST_PG_URL_FILE: the pg_cluster fixture
nodes_tokens
REGION=8M
nodes_two_sites 3000
T0=$SECONDS

# --- setup: G1 replicating, G2 paused with a write only A knows -------------------
URL=$URL_a
P1=$(create_volume az1 1 p1)
P2=$(create_volume az1 1 p2)
P3=$(create_volume az1 1 p3)
D1=$(create_volume az2 1 d1)
D2=$(create_volume az2 1 d2)
D3=$(create_volume az2 1 d3)
PU1=$(attach a "$P1")
PU2=$(attach a "$P2")
PU3=$(attach a "$P3")
R1=$(create_pair "$P1" "$D1" r1)
R2=$(create_pair "$P2" "$D2" r2)
R3=$(create_pair "$P3" "$D3" r3)
for r in "$R1" "$R2" "$R3"; do wait_pair_active "$r" 60; done
G1=$(create_group g1 "$R1" "$R2")
G2=$(create_group g2 "$R3")
group_action "$G1" os-sync-replication-consistency-group # a new group starts paused
expect_status 200 "first sync of g1"
wait_group a "$G1" replication_status active 30
wait_group a "$G2" replication_status active-stopped 10
qemu-io -f raw -c 'write -P 0x5a 300M 1M' -c flush "$PU3" >"$TMP/qio" 2>&1 ||
  fail "write on p3 while g2 is paused: $(cat "$TMP/qio")"
qemu-img compare -q -f raw -F raw "$(a_file "$P3")" "$(b_file "$D3")" && fail "p3 equals d3 after a paused write"

# --- 1. A killed mid-load; failover via B: 409 while A's lease is valid -----------------
RUNID=$((RANDOM + 1000))
rm -f "$TMP/prog"
"$SW" -q -R "$RUNID" -r "$REGION" -t 60 -p "$TMP/prog" -P 1 "$PU1" "$PU2" >"$TMP/sw.out" 2>"$TMP/sw.err" &
WP=$!
for _ in $(seq 1 200); do [ -s "$TMP/prog" ] && [ "$(cat "$TMP/prog")" -gt 300 ] 2>/dev/null && break; sleep 0.05; done
nodes_kill a
on b POST "$RCGS/$G1/action" '{"os-failover-replication-consistency-group": null}'
expect_status 409 "failover while A's lease is valid"
RETRY=$(printf '%s' "$HDRS" | tr -d '\r' | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
[[ "$RETRY" =~ ^[1-9][0-9]*$ ]] && [ "$RETRY" -le 3 ] || fail "the 409 has no Retry-After of 1..3 s: '$RETRY' ($HDRS)"
case "$BODY" in *"node node-a (az1) holds its lease for"*"stop node node-a"*) ;;
*) fail "the 409 does not name the node and its lease: $BODY" ;; esac
F=0
wait "$WP" || true
F=$(cat "$TMP/sw.out")
[[ "$F" =~ ^[0-9]+$ ]] && [ "$F" -gt 300 ] || fail "writer acknowledged too little before the kill: '$F' ($(cat "$TMP/sw.err"))"
for _ in $(seq 1 40); do
  on b POST "$RCGS/$G1/action" '{"os-failover-replication-consistency-group": null}'
  [ "$STATUS" = 409 ] || break
  sleep "${RETRY:-1}"
done
expect_status 200 "failover after A's lease lapsed"
on b GET "$RCGS/$G1"
expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")" failovered/az2 "g1 after the failover"
for r in "$R1" "$R2"; do
  on b GET "$PAIRS/$r"
  expect_eq "$(jget .replication.priority_station)/$(jget .replication.replication_status)" az2/active-stopped "pair $r after the failover"
done
FENCED=$(psql -qtA "$DBURL" -c "SELECT count(*) FROM volumes WHERE id IN ('$P1','$P2') AND fenced = 1" 2>/dev/null || echo "?")
expect_eq "$FENCED" 2 "A's old production volumes fenced in the store"
grep -q "roles of node node-a taken over; production now in az2" "$TMP/b.log" || fail "B's log does not show the takeover"

# --- 2. B's new production: every acknowledged write, writable ----------------------------
NU1=$(attach b "$D1")
NU2=$(attach b "$D2")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$D1")" false "new production attachment read_only"
"$SC" -q -t -R "$RUNID" -r "$REGION" -a "$F" -b "$((F + 1))" "$NU1" "$NU2" >"$TMP/sc.out" 2>"$TMP/sc.err" ||
  fail "B's disks do not hold one prefix with every acknowledged write: $(cat "$TMP/sc.err") (acknowledged $F)"
log "failover: B holds seq $("$SC" -m -R "$RUNID" -r "$REGION" "$NU1" "$NU2" 2>/dev/null) of $F acknowledged"
qemu-io -f raw -c 'write -P 0x6b 200M 1M' -c flush "$NU1" >"$TMP/qio" 2>&1 ||
  fail "write on B's new production: $(cat "$TMP/qio")"

# --- 3. G2 fails over too ------------------------------------------------------------------
on b POST "$RCGS/$G2/action" '{"os-failover-replication-consistency-group": null}'
expect_status 200 "failover of g2"
NU3=$(attach b "$D3")

# --- 4. A's return ------------------------------------------------------------------------
nodes_start a
OU1=$(attach a "$P1")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$P1")" true "A's old production attachment read_only"
if qemu-io -f raw -c 'write -P 0x66 0 4k' "$OU1" >"$TMP/qio" 2>&1; then
  fail "a client wrote A's old production disk after A came back"
fi
grep -q "pair $R1: resumed" <(sed -n '/evsrepd.*start/,$p' "$TMP/a.log" | tail -n +1) && fail "A opened a mirror for r1 after its production moved"
for r in "$R1" "$R2" "$R3"; do
  [ -e "$TMP/na/az1/pair-$r.meta" ] || fail "A did not keep the meta file of $r"
done
# The divergence route is internal: a client (even with a valid token) and
# an unsigned /internal/ request both get 404.
on a GET "os-evsrep-divergence/$R3"
expect_status 404 "client GET of the internal divergence route"
on a GET "/internal/v2/$PROJECT/os-evsrep-divergence/$R3"
expect_status 404 "unsigned GET of /internal/.../os-evsrep-divergence"
on a POST "os-evsrep-takeover/$G1" '{"mode":"sync"}'
expect_status 404 "client POST of the internal takeover route"

# --- 5. reprotect through A (carried out by B): the union, resync ---------------------------
for g in "$G1" "$G2"; do
  on a POST "$RCGS/$g/action" '{"os-reprotect-replication-consistency-group": null}'
  expect_status 200 "reprotect of $g"
done
wait_group b "$G1" replication_status active 60
wait_group b "$G2" replication_status active 60
grep -q "pair $R3: divergence of node node-a unioned" "$TMP/b.log" || fail "B's log does not show A's divergence of r3 unioned"
same_files "r1 after the reprotect" "$P1" "$D1"
same_files "r2 after the reprotect" "$P2" "$D2"
same_files "r3 after the reprotect (A's paused write undone)" "$P3" "$D3"
"$SC" -q -t -R "$RUNID" -r "$REGION" -a "$F" "$NU1" "$NU2" >/dev/null 2>"$TMP/sc.err" ||
  fail "B's production lost acknowledged writes: $(cat "$TMP/sc.err")"

# --- 6. reverse back home (B hands the mirrors to A, SYNC) -----------------------------------
on a POST "$RCGS/$G1/action" '{"os-reverse-replication-consistency-group": null}'
expect_status 200 "reverse of g1 back to az1"
on a GET "$RCGS/$G1"
expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")/$(jget "$G.replication_status")" available/az1/active "g1 after the reverse"
grep -q "group $G1: reverse across nodes done; node node-a took over" "$TMP/b.log" || fail "B's log does not show the handoff to A"
HU1=$(attach a "$P1")
HU2=$(attach a "$P2")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$P1")" false "A's production attachment after the reverse"
if qemu-io -f raw -c 'write -P 0x67 0 4k' "$NU1" >"$TMP/qio" 2>&1; then
  fail "a client wrote B's disk through its old attachment after the reverse"
fi
"$SC" -q -t -R "$RUNID" -r "$REGION" -a "$F" "$HU1" "$HU2" >/dev/null 2>"$TMP/sc.err" ||
  fail "A's production lost acknowledged writes after the reverse: $(cat "$TMP/sc.err")"
qemu-io -f raw -c 'write -P 0x78 400M 1M' -c flush "$HU1" >"$TMP/qio" 2>&1 || fail "write on A after the reverse: $(cat "$TMP/qio")"
same_files "r1 after the reverse and a write (SYNC over the link)" "$P1" "$D1"
same_files "r2 after the reverse" "$P2" "$D2"

# --- 7. failover with the owner alive (B hands g2's mirror to A, TRACK) ---------------------
on a POST "$RCGS/$G2/action" '{"os-failover-replication-consistency-group": null}'
expect_status 200 "failover of g2 with B alive"
on a GET "$RCGS/$G2"
expect_eq "$(jget "$G.status")/$(jget "$G.priority_station")" failovered/az1 "g2 after the failover"
HU3=$(attach a "$P3")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$P3")" false "A's production attachment of p3 after the failover"
qemu-io -f raw -c 'write -P 0x79 500M 1M' -c flush "$HU3" >"$TMP/qio" 2>&1 || fail "write on A after the failover: $(cat "$TMP/qio")"
qemu-img compare -q -f raw -F raw "$(a_file "$P3")" "$(b_file "$D3")" && fail "p3 equals d3 after a write on A while failovered"
on b POST "$RCGS/$G2/action" '{"os-reprotect-replication-consistency-group": null}'
expect_status 200 "reprotect of g2"
wait_group a "$G2" replication_status active 60
same_files "r3 after failover, write, reprotect" "$P3" "$D3"

# --- 8. a production node without the moved mirror's meta file (what a takeover
# that never ran leaves): after a restart the pair is in error, a group sync
# restarts it with a full copy -------------------------------------------------------------
nodes_stop a
rm -f "$TMP/na/az1/pair-$R3.meta"
nodes_start a
on a GET "$PAIRS/$R3"
expect_eq "$(jget .replication.status)" error "r3 without its meta file after A's restart"
on a POST "$RCGS/$G2/action" '{"os-sync-replication-consistency-group": null}'
expect_status 200 "sync of g2 restarts r3"
wait_group a "$G2" replication_status active 60
same_files "r3 after the full copy" "$P3" "$D3"
log "0 of $F acknowledged writes lost; sections took $((SECONDS - T0)) s"
nodes_stop b
nodes_stop a
finish
