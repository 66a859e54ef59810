#!/usr/bin/env bash
# The API reply cache (docs/design/control-plane.md "Reply cache"): a GET of
# a pair, a group or a list is served from the cache only while nothing it
# shows has changed. Every check first makes sure the "before" reply is in
# the cache (the next GET is a hit: evsrep_api_cache_hits_total grows), then
# changes the state through one path and GETs at once:
#   API writes (group update, sync, pause, throttle, pair create, delete),
#   engine changes with no store write (dirty bytes after client writes to
#   a paused pair, a DR file moved away under the daemon, progress of a
#   resync), an injected I/O fault (EVSREP_FAULT).
# Isolation: another project's token never gets project A's cached reply;
# a bad or missing token is still 401 on a cached path. And the idempotent
# pause (answered on the pool thread) keeps answering 200, also while a
# write of another group waits on an executor.
. "$(dirname "$0")/lib.sh"
require_fault_injection

TOKEN_B=bbbb$RANDOM$RANDOM PROJ_B=projectb$RANDOM
mkdir -p "$DATA"
(umask 077 && printf '# tokens\ntenantatoken%s projecta%s\n%s %s\n' \
  "$RANDOM" "$RANDOM" "$TOKEN_B" "$PROJ_B" >"$DATA/tokens")
start_daemon
G=.replication_consistency_group
M=$((1024 * 1024))

metric() { # metric NAME: its value (the first sample), 0 when absent
  curl -s -H "X-Auth-Token: $TOKEN" -o "$TMP/m" "$URL/metrics" || true
  awk -v n="$1" '$1==n {v=$2; f=1} END {print f ? v : 0}' "$TMP/m"
}
metric_pair() { # metric_pair NAME PAIR_ID
  curl -s -H "X-Auth-Token: $TOKEN" -o "$TMP/m" "$URL/metrics" || true
  awk -v n="$1" -v id="$2" 'index($1, n "{") == 1 && index($1, "pair=\"" id "\"") {print $2}' "$TMP/m"
}
# cached PATH: GET it twice; the second must come from the cache (else the
# check that follows would not test the cache at all). BODY: that reply.
cached() {
  api GET "$1"
  expect_status 200 "GET $1" || return 1 || true
  local first=$BODY h0 h1
  h0=$(metric evsrep_api_cache_hits_total)
  api GET "$1"
  h1=$(metric evsrep_api_cache_hits_total)
  [ "$h1" -gt "$h0" ] || fail "GET $1 was not served from the cache (hits $h0 -> $h1)"
  [ "$BODY" = "$first" ] || fail "GET $1: the cached reply differs from the one it was built from"
}

P=$(create_volume az1 1 p)
D=$(create_volume az2 1 d)
P2=$(create_volume az1 1 p2)
D2=$(create_volume az2 1 d2)
URI_P=$(nbd_uri az1 "$P")
URI_P2=$(nbd_uri az1 "$P2")
R=$(create_pair "$P" "$D" r1)
wait_pair_active "$R"
GID=$(create_group g1 "$R")

# --- API writes: each seen by the very next GET
cached "$RCGS/$GID"
expect_eq "$(jget "$G.name")" g1 "group name before the update" || true
api PUT "$RCGS/$GID" '{"replication_consistency_group":{"name":"g2"}}'
expect_status 202 "group update" || true
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.name")" g2 "group name on the GET right after the update" || true

cached "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "a new group is paused" || true
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync" || true
api GET "$RCGS/$GID"
[ "$(jget "$G.replication_status")" != active-stopped ] ||
  fail "the GET right after the sync still says active-stopped"
wait_field "$RCGS/$GID" "$G.replication_status" active 60
cached "$RCGS/$GID"
inl=$(metric evsrep_api_inline_answers_total)
group_action "$GID" os-stop-replication-consistency-group
expect_status 200 "pause" || true
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "the GET right after the pause" || true
expect_eq "$(metric evsrep_api_inline_answers_total)" "$inl" "a pause that pauses is not answered inline" || true

cached "$RCGS/$GID"
group_action "$GID" os-set-resync-throttle '{"max_mib_per_sec": 7}'
expect_status 200 "throttle" || true
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.resync_throttle.max_mib_per_sec")" 7 "throttle on the GET right after setting it" || true

cached "$PAIRS?limit=1000"
expect_eq "$(jget '.replications | length')" 1 "pairs before the create" || true
api POST "$PAIRS" "{\"replication\":{\"name\":\"r2\",\"volume_ids\":[\"$P2\",\"$D2\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
expect_status 202 "create pair r2" || true
R2=$(jget .replication.id)
api GET "$PAIRS?limit=1000"
expect_eq "$(jget "[.replications[].id] | index(\"$R2\") != null")" true "the new pair in the list right after its create" || true
wait_through "$PAIRS/$R2" .replication.status available creating 60

# --- the idempotent pause: already paused, answered 200, nothing changes
cached "$RCGS/$GID"
before=$BODY
inl=$(metric evsrep_api_inline_answers_total)
for _ in 1 2 3; do
  group_action "$GID" os-stop-replication-consistency-group
  expect_status 200 "pause of a paused group" || true
done
expect_eq "$(metric evsrep_api_inline_answers_total)" "$((inl + 3))" "pauses of a paused group answered inline" || true
api GET "$RCGS/$GID"
expect_eq "$BODY" "$before" "the group after pauses of a paused group" || true

# --- engine changes, no store write: client writes to a paused pair
cached "$PAIRS/$R"
d0=$(jget .replication.dirty_bytes)
qemu-io -f raw -c "write -P 0x5a 0 $((4 * M))" "$URI_P" >/dev/null || fail "qemu-io write to P"
api GET "$PAIRS/$R"
d1=$(jget .replication.dirty_bytes)
[ "$d1" -gt "$d0" ] || fail "dirty_bytes on the GET right after 4 MiB of writes: $d0 -> $d1"

# --- a DR file moved away under the daemon (the live probe), and back
cached "$PAIRS/$R"
expect_eq "$(jget .replication.fault_level)" 0 "fault level before" || true
cached "$RCGS/$GID"
mv "$DATA/az2/$D" "$TMP/d.moved"
api GET "$PAIRS/$R"
expect_eq "$(jget .replication.fault_level)" 5 "pair fault level right after its DR file went" || true
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.fault_level")" 5 "group fault level right after a member's DR file went" || true
mv "$TMP/d.moved" "$DATA/az2/$D"
api GET "$PAIRS/$R"
expect_eq "$(jget .replication.fault_level)" 0 "pair fault level right after the file is back" || true

# --- the live epoch (control-plane.md "The live epoch"): a hit on the list
# skips its pairs' notes while nothing live moved; a change made through
# the engine alone (new dirty chunks of a paused pair: no store write) is
# on the very next GET of the list all the same
wait_field "$PAIRS/$R2" .replication.replication_status active 60
cached "$PAIRS?limit=1000"
s0=$(metric evsrep_api_cache_live_skips_total)
api GET "$PAIRS?limit=1000"
s1=$(metric evsrep_api_cache_live_skips_total)
[ "$s1" -gt "$s0" ] || fail "a GET of the list with nothing changed re-read its pairs (live skips $s0 -> $s1)"
dirty_in_list() { jget "[.replications[] | select(.id == \"$R\") | .dirty_bytes][0]"; }
d0=$(dirty_in_list)
qemu-io -f raw -c "write -P 0x5c $((8 * M)) $M" "$URI_P" >/dev/null || fail "qemu-io write to P"
api GET "$PAIRS?limit=1000"
d1=$(dirty_in_list)
[ "$d1" -gt "$d0" ] || fail "dirty_bytes in the list right after 1 MiB of new writes: $d0 -> $d1"
# and the group's reply (the pair's note inside it), after more new chunks
cached "$RCGS/$GID"
api GET "$PAIRS/$R"
d0=$(jget .replication.dirty_bytes)
cached "$PAIRS/$R"
qemu-io -f raw -c "write -P 0x5d $((10 * M)) $M" "$URI_P" >/dev/null || fail "qemu-io write to P"
api GET "$PAIRS/$R"
d1=$(jget .replication.dirty_bytes)
[ "$d1" -gt "$d0" ] || fail "dirty_bytes of the pair right after 1 MiB of new writes: $d0 -> $d1"
# the file watch is there while the cache is (checked without it at the end)
ls -l "/proc/$DAEMON_PID/fd" 2>/dev/null | grep -q 'anon_inode:inotify' ||
  fail "no inotify descriptor in the daemon with the reply cache on"

# --- isolation: project B never gets A's replies; auth runs on every GET
cached "$PAIRS?limit=1000"
code=$(curl -s -o "$TMP/bb" -w '%{http_code}' -H "X-Auth-Token: $TOKEN_B" "$URL/v2/$PROJ_B/$PAIRS?limit=1000")
expect_eq "$code" 200 "project B's own list" || true
expect_eq "$(jq '.replications | length' "$TMP/bb")" 0 "project B's list (A's is cached)" || true
code=$(curl -s -o "$TMP/bb" -w '%{http_code}' -H "X-Auth-Token: $TOKEN_B" "$URL/v2/$PROJECT/$PAIRS?limit=1000")
expect_eq "$code" 403 "project B on A's cached path" || true
! grep -q "$R" "$TMP/bb" || fail "project B's 403 holds A's pair id"
code=$(curl -s -o "$TMP/bb" -w '%{http_code}' -H "X-Auth-Token: $TOKEN_B" "$URL/v2/$PROJ_B/$RCGS/$GID")
expect_eq "$code" 404 "A's group under project B's path" || true
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: nosuch$RANDOM" "$URL/v2/$PROJECT/$PAIRS?limit=1000")
expect_eq "$code" 401 "a bad token on a cached path" || true
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/$PROJECT/$PAIRS?limit=1000")
expect_eq "$code" 401 "no token on a cached path" || true

# --- an injected I/O fault (production writes of P2 fail) and resync
# progress (DR writes of D slowed), after a restart with the fault rules
# (and a hold on P's growth, for the section after)
stop_daemon
EVSREP_FAULT="vol_write@${P2}=1+;vol_write@${D}~40000;vol_grow@${P}^$TMP/hold_grow" start_daemon
URI_P=$(nbd_uri az1 "$P") # the new daemon's NBD port
URI_P2=$(nbd_uri az1 "$P2")
wait_field "$PAIRS/$R2" .replication.replication_status active 60
cached "$PAIRS/$R2"
expect_eq "$(jget .replication.fault_level)" 0 "P2's fault level before the failed write" || true
! qemu-io -f raw -c "write -P 0x11 0 64k" "$URI_P2" >/dev/null 2>&1 || fail "the write to P2 should fail (fault rule)"
api GET "$PAIRS/$R2"
expect_eq "$(jget .replication.fault_level)" 2 "P2's fault level right after the failed write" || true

# R: dirty while paused (4 MiB above, 16 more now), then a slow resync. Each
# GET must show at least the bytes the engine had copied before it was sent
# (the metrics read just before), and at most what it copied by the next
# read: a cached copy of an older reply would fall behind.
qemu-io -f raw -c "write -P 0x6b $((4 * M)) $((16 * M))" "$URI_P" >/dev/null || fail "qemu-io write to P"
group_action "$GID" os-sync-replication-consistency-group
expect_status 200 "sync with a slow DR" || true
end=$((SECONDS + 60)) samples=0 st=""
while [ $SECONDS -lt $end ]; do
  m0=$(metric_pair evsrep_pair_resync_bytes_total "$R")
  api GET "$PAIRS/$R"
  b=$(jget .replication.bytes_copied)
  st=$(jget .replication.replication_status)
  m1=$(metric_pair evsrep_pair_resync_bytes_total "$R")
  # a read that met the pair's lock busy shows no figure: not a sample
  if [[ "$b" =~ ^[0-9]+$ && "$m0" =~ ^[0-9]+$ && "$m1" =~ ^[0-9]+$ ]]; then
    samples=$((samples + 1))
    [ "$b" -ge "$m0" ] && [ "$b" -le "$m1" ] ||
      fail "bytes_copied $b on a GET between engine reads $m0 and $m1 (status $st)"
  fi
  [ "$st" = active ] && break
done
log "$samples progress samples during the resync"
expect_eq "$st" active "the slow resync ended" || true
api GET "$PAIRS/$R"
expect_eq "$(jget .replication.bytes_copied)" "$(metric_pair evsrep_pair_resync_bytes_total "$R")" "bytes_copied once active" || true

# --- a write waiting on an executor does not keep the pause of another,
# paused group off the pool thread (control-plane.md "The idempotent pause
# on the pool thread"): GID's extend is held in the growth of P (vol_grow@P
# waits while $TMP/hold_grow exists) while G3, new and so paused, is paused.
# G3 must not share GID's group stripe (service_group_stripe: FNV-1a of the
# id, 64 stripes): its pause would rightly wait behind the held extend.
stripe() {
  python3 -c 'import sys
h = 2166136261
for c in sys.argv[1].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print(h % 64)' "$1"
}
P3=$(create_volume az1 1 p3)
D3=$(create_volume az2 1 d3)
R3=$(create_pair "$P3" "$D3" r3)
wait_pair_active "$R3"
G3=$(create_group g3 "$R3")
for try in 1 2 3 4 5 6; do
  [ "$(stripe "$G3")" != "$(stripe "$GID")" ] && break
  [ "$try" -lt 6 ] || die "six groups in a row on GID's stripe"
  api PUT "$RCGS/$G3" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"$R3\"]}}"
  wait_field "$RCGS/$G3" "$G.status" available 30
  api DELETE "$RCGS/$G3"
  wait_gone "$RCGS/$G3" 30
  G3=$(create_group g3 "$R3")
done
mark=$(wc -l <"$TMP/daemon.log")
touch "$TMP/hold_grow"
curl -s -o "$TMP/extend.body" -w '%{http_code}' --max-time 120 -X POST -H "X-Auth-Token: $TOKEN" \
  -H 'Content-Type: application/json' \
  --data-binary "{\"os-extend-replication-volumes\": {\"replications\": [{\"id\": \"$R\", \"new_size\": 2}]}}" \
  "$URL/v2/$PROJECT/$RCGS/$GID/action" >"$TMP/extend.status" &
EXT=$!
wait_log "$mark" "fault hold: vol_grow of $P .* waits" ||
  fail "the extend of GID never reached the held growth of P"
inl=$(metric evsrep_api_inline_answers_total)
group_action "$G3" os-stop-replication-consistency-group
expect_status 200 "the pause of paused G3 while GID's extend is held" || true
expect_eq "$(metric evsrep_api_inline_answers_total)" "$((inl + 1))" \
  "the pause of paused G3 answered inline while GID's extend waits on an executor" || true
[ ! -s "$TMP/extend.status" ] || fail "the extend answered with its growth held: $(cat "$TMP/extend.status")"
rm -f "$TMP/hold_grow"
wait "$EXT" || true
expect_eq "$(cat "$TMP/extend.status")" 200 "the extend once let go ($(cat "$TMP/extend.body"))" || true
api GET "volumes/$P"
expect_eq "$(jget .volume.size)" 2 "P's size after the extend" || true

# --- the pool thread's memo of a paused group's rows (pause_memo.h): warm
# after an inline pause, it must not outlive a change of those rows. The
# group is emptied and deleted: the next pause is 404, not an inline 200
# from the memo (its member is still paused, so only the rows tell).
group_action "$GID" os-stop-replication-consistency-group
expect_status 200 "pause after the resync" || true
inl=$(metric evsrep_api_inline_answers_total)
group_action "$GID" os-stop-replication-consistency-group
expect_eq "$(metric evsrep_api_inline_answers_total)" "$((inl + 1))" "the pause of the paused group inline" || true
api PUT "$RCGS/$GID" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"$R\"]}}"
expect_status 202 "the group emptied" || true
wait_field "$RCGS/$GID" "$G.status" available 30
api DELETE "$RCGS/$GID"
expect_status 202 "the empty group deleted" || true
wait_gone "$RCGS/$GID" 30
group_action "$GID" os-stop-replication-consistency-group
expect_status 404 "a pause of the deleted group (memo of its rows)" || true

# --- no cache, no file watch: the volume files' directories are watched
# only for the reply cache (api_cache_entries = 0 turns both off)
stop_daemon
printf '[DEFAULT]\napi_cache_entries = 0\n' >"$TMP/nocache.conf"
start_daemon --config "$TMP/nocache.conf"
api GET "$PAIRS/$R"
expect_status 200 "GET of a pair with the cache off" || true
! ls -l "/proc/$DAEMON_PID/fd" 2>/dev/null | grep -q 'anon_inode:inotify' ||
  fail "an inotify descriptor in the daemon with the reply cache off"
expect_eq "$(metric evsrep_api_cache_entries)" 0 "entries with the cache off" || true

finish
