#!/usr/bin/env bash
# Multi-site steps 3 and 4 (docs/design/multi-site.md "Remote DR links",
# "Link faults"): two nodes sharing one PostgreSQL store, node A serving az1
# on 127.0.0.21 and node B az2 on 127.0.0.22; pairs whose DR volume is on B
# are mirrored by A over an NBD link (TLS-PSK, cluster key).
#  1. two pairs across the nodes (created through B, carried out by A) and a
#     group of both: active; each DR file on B equals its production on A
#  2. qemu-io writes on A's production export; after a flush the DR file on
#     B equals production (cmp of the files)
#  3. access: a client attachment of the DR volume is read-only; the link
#     export is refused without TLS, with a client attachment's PSK, and
#     with the link PSK of a node that does not serve production; granted
#     (and writable) with node A's link PSK derived from the cluster key
#  4. pause freezes DR (more writes on production, DR unchanged); sync
#     catches up (DR == production); extend (B grows the DR volume first,
#     over the internal channel), a write past the old size reaches B
#     (reverse and failover across nodes: t_multisite_failover.sh)
#  5. B stalled (kill -STOP) mid-load: the writer's writes keep being
#     acknowledged, the pairs drop to TRACK with fault_level 5 / frozen with
#     the group, both DR disks hold ONE instant (seqcheck on copies of B's
#     files), production holds every acknowledged write; B continued: auto
#     resync, the group active again, DR == production
#  6. B killed (kill -9) mid-load and restarted (another NBD port): the same
#     recovery by itself
#  7. delete of a cross-node pair: gone on A, and B gives the DR volume
#     back to clients (a new attachment is writable)
# Needs PostgreSQL (EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE, the
# pg_cluster ctest fixture) and the seqwriter/seqcheck tools.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nodes.sh"
require_fault_injection

nodes_db_create t_link # EVSREP_TEST_PG_URL_FILE: the pg_cluster fixture
nodes_tokens
REGION=8M
RUN_SECS=${EVSREP_LINK_RUN_SECS:-1.5} # load after the fault (smaller under ASan is fine)
nodes_two_sites 6000
T0=$SECONDS

# --- 1. pairs and a group across the nodes ---------------------------------------
URL=$URL_a
nodes_group_volumes
PU1=$(attach a "$P1")
PU2=$(attach a "$P2")
qemu-io -f raw -c 'write -P 0x11 1M 2M' "$PU1" >"$TMP/qio" 2>&1 || fail "qemu-io before the pair: $(cat "$TMP/qio")"
URL=$URL_b # created through B, carried out by A (the production AZ's node)
R1=$(create_pair "$P1" "$D1" r1)
R2=$(create_pair "$P2" "$D2" r2)
URL=$URL_a
wait_pair_active "$R1" 60
wait_pair_active "$R2" 60
grep -q "link export for pair $R1 (DR volume $D1) opened by node node-a" "$TMP/b.log" ||
  fail "B's log does not show node-a's link for $R1"
same_files "initial copy r1" "$P1" "$D1"
same_files "initial copy r2" "$P2" "$D2"
GID=$(create_group g "$R1" "$R2")
group_action "$GID" os-sync-replication-consistency-group # a new group starts paused
expect_status 200 "first sync of the group"
wait_group a "$GID" replication_status active 30

# --- 2. writes on production reach B's DR file ------------------------------------
qemu-io -f raw -c 'write -P 0x22 0 1M' -c 'write -P 0x23 100M 64k' -c 'flush' "$PU1" >"$TMP/qio" 2>&1 ||
  fail "qemu-io write on A: $(cat "$TMP/qio")"
qemu-io -f raw -c 'write -z 1M 512k' -c 'flush' "$PU1" >"$TMP/qio" 2>&1 || fail "qemu-io write zeroes: $(cat "$TMP/qio")"
same_files "after qemu-io writes and a flush" "$P1" "$D1"
cmp -n 128M "$(a_file "$P1")" "$(b_file "$D1")" >"$TMP/cmp.out" 2>&1 || fail "cmp P1 D1: $(cat "$TMP/cmp.out")"

# --- 3. access to the DR volume and to the link export ----------------------------
DU1=$(attach b "$D1")
expect_eq "$(jq -r .connection_info.data.read_only "$TMP/att.$D1")" true "DR attachment read_only"
if qemu-io -f raw -c 'write -P 0x66 0 4k' "$DU1" >"$TMP/qio" 2>&1; then
  fail "a client wrote the DR volume through its attachment"
fi
BNBD=${NBD_b}
LINKURI="nbd://$BNBD/link/$R1"
nbdinfo "$LINKURI" >"$TMP/ni" 2>&1 && fail "link export opened without TLS: $(cat "$TMP/ni")"
# A client attachment's PSK (TLS on, the attachment's own identity).
ATT_ID=$(jq -r .connection_info.data.tls_psk_identity "$TMP/att.$D1" 2>/dev/null)
ATT_KEY=$(jq -r .connection_info.data.tls_psk_key "$TMP/att.$D1" 2>/dev/null)
if [ -n "$ATT_ID" ] && [ "$ATT_ID" != null ]; then
  printf '%s:%s\n' "$ATT_ID" "$ATT_KEY" >"$TMP/att.psk"
  nbdinfo "nbds://$ATT_ID@$BNBD/link/$R1?tls-psk-file=$TMP/att.psk" >"$TMP/ni" 2>&1 &&
    fail "link export opened with a client attachment's PSK: $(cat "$TMP/ni")"
else
  fail "the DR attachment has no TLS PSK (connection_info: $(cat "$TMP/att.$D1"))"
fi
HEX=$(tr -d '\n' <"$KEY")
link_psk() { printf 'nbd-link:%s' "$1" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HEX" | awk '{print $NF}'; }
printf 'evsrep-link:node-b:%s\n' "$(link_psk node-b)" >"$TMP/b.psk"
nbdinfo "nbds://evsrep-link%3Anode-b@$BNBD/link/$R1?tls-psk-file=$TMP/b.psk" >"$TMP/ni" 2>&1 &&
  fail "link export opened by a node that does not serve production: $(cat "$TMP/ni")"
grep -q "refused to node node-b: node node-b does not serve the pair's production zone az1" "$TMP/b.log" ||
  fail "B's log does not say why node-b's link was refused"
printf 'evsrep-link:node-a:%s\n' "$(link_psk node-a)" >"$TMP/a.psk"
nbdinfo --json "nbds://evsrep-link%3Anode-a@$BNBD/link/$R1?tls-psk-file=$TMP/a.psk" >"$TMP/ni" 2>&1 ||
  fail "node-a's link PSK (HMAC of the cluster key) refused: $(cat "$TMP/ni")"
expect_eq "$(jq -r '.exports[0]."is_read_only"' "$TMP/ni" 2>/dev/null)" false "the link export is writable"
printf 'evsrep-link:node-a:%s\n' "$(openssl rand -hex 32)" >"$TMP/x.psk"
nbdinfo "nbds://evsrep-link%3Anode-a@$BNBD/link/$R1?tls-psk-file=$TMP/x.psk" >"$TMP/ni" 2>&1 &&
  fail "link export opened with a wrong key"

# --- 4. pause freezes DR, sync catches up -----------------------------------------
group_action "$GID" os-stop-replication-consistency-group
expect_status 200 "pause"
wait_group a "$GID" replication_status active-stopped 30
cp --sparse=always "$(b_file "$D1")" "$TMP/d1.before"
qemu-io -f raw -c 'write -P 0x44 4M 1M' -c 'flush' "$PU1" >"$TMP/qio" 2>&1 || fail "write while paused: $(cat "$TMP/qio")"
qemu-img compare -q -f raw -F raw "$TMP/d1.before" "$(b_file "$D1")" || fail "DR file changed while the group was paused"
qemu-img compare -q -f raw -F raw "$(a_file "$P1")" "$(b_file "$D1")" && fail "production equals DR after a paused write"
rm -f "$TMP/d1.before"
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync"
wait_group a "$GID" replication_status active 30
same_files "after pause + sync" "$P1" "$D1"

# --- 4b. extend across nodes: B grows the DR volume first; reverse: 409 -------------
on b POST "$RCGS/$GID/action" "{\"os-extend-replication-volumes\": {\"replications\": [{\"id\": \"$R1\", \"new_size\": 2}]}}"
[ "$STATUS" = 200 ] || [ "$STATUS" = 202 ] || fail "extend across nodes: HTTP $STATUS $BODY"
wait_group a "$GID" replication_status active 30
expect_eq "$(stat -c %s "$(a_file "$P1")")/$(stat -c %s "$(b_file "$D1")")" "$((2 << 30))/$((2 << 30))" "file sizes after the extend"
grep -q "pair $R1: DR volume $D1 grown to $((2 << 30)) bytes" "$TMP/b.log" || fail "B's log does not show the DR grow"
qemu-io -f raw -c "write -P 0x55 $(((3 << 30) / 2)) 1M" -c flush "$PU1" >"$TMP/qio" 2>&1 ||
  fail "write past the old size: $(cat "$TMP/qio")"
same_files "after the extend" "$P1" "$D1"
cmp -n 1M -i $(((3 << 30) / 2)) "$(a_file "$P1")" "$(b_file "$D1")" >/dev/null || fail "new space differs"
on a GET "$PAIRS/$R1"
expect_eq "$(jget .replication.replication_status)/$(jget .replication.fault_level)" active/0 "r1 after the extend"

# --- 5. B stalled mid-load ---------------------------------------------------------
RUNID=$((RANDOM + 1000))
load "$RUNID"
kill -STOP "${NPID[b]}"
wait_group a "$GID" replication_status error 20
sleep "$RUN_SECS" # production keeps acknowledging writes with B stalled
unload "stall"
faulted "stall"
frozen_check "stall"
# The monitor's first retry is 2 s after the fault: wait for it (B still
# stalled) rather than racing it.
for _ in $(seq 1 150); do grep -q "DR link down" "$TMP/a.log" && break; sleep 0.1; done
grep -q "DR link down" "$TMP/a.log" || fail "A's log does not say the link is down"
kill -CONT "${NPID[b]}"
wait_group a "$GID" replication_status active 60
same_files "stall healed: r1" "$P1" "$D1"
same_files "stall healed: r2" "$P2" "$D2"
grep -q "DR link back: group synced (auto_resync)" "$TMP/a.log" || fail "A's log does not show the automatic group sync"

# --- 6. B killed mid-load and restarted ---------------------------------------------
RUNID=$((RUNID + 1))
load "$RUNID"
nodes_kill b
wait_group a "$GID" replication_status error 20
sleep "$RUN_SECS"
unload "kill"
faulted "kill"
frozen_check "kill"
OLDNBD=$NBD_b
nodes_start b
[ "$NBD_b" != "$OLDNBD" ] || log "B came back on the same NBD port"
wait_group a "$GID" replication_status active 60
same_files "kill healed: r1" "$P1" "$D1"
same_files "kill healed: r2" "$P2" "$D2"

# --- 7. delete a cross-node pair ---------------------------------------------------------
group_action "$GID" os-stop-replication-consistency-group
expect_status 200 "pause before the update"
api PUT "$RCGS/$GID" "{\"replication_consistency_group\":{\"remove_replication_ids\":[\"$R2\"]}}"
expect_status 202 "remove r2 from the group"
wait_through "$RCGS/$GID" "$G.status" available 'updating|available' 30
api DELETE "$PAIRS/$R2"
expect_status 202 "delete r2"
wait_gone "$PAIRS/$R2" 30
[ ! -e "$TMP/na/az1/pair-$R2.meta" ] || fail "r2's meta file is still on A"
for _ in $(seq 1 50); do grep -q "pair $R2: gone; DR volume $D2 is a plain volume again" "$TMP/b.log" && break; sleep 0.1; done
grep -q "pair $R2: gone; DR volume $D2 is a plain volume again" "$TMP/b.log" || fail "B did not give $D2 back"
DU2=$(attach b "$D2")
qemu-io -f raw -c 'write -P 0x77 0 4k' "$DU2" >"$TMP/qio" 2>&1 || fail "D2 not writable after its pair was deleted: $(cat "$TMP/qio")"

log "sections took $((SECONDS - T0)) s"
nodes_stop b
nodes_stop a
finish
