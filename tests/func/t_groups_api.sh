#!/usr/bin/env bash
# shellcheck disable=SC2119
# Replication consistency groups API (api.md groups section, semantics.md
# group actions table) against the real daemon: create/list/get/update/delete
# with their exact statuses, filters, changes-since, the action endpoint
# (exactly 200 and an empty body; 400 for bad bodies; every 409 of the table
# with a message naming the state), idempotent pause and sync, empty groups,
# and the three Terraform flows.
. "$(dirname "$0")/lib.sh"
start_daemon

NOSUCH=6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}$'
PAUSE=os-stop-replication-consistency-group
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group

expect_error_body() {
  jq -e '.error.code and (.error.message | type == "string" and length > 0)' <<<"$BODY" >/dev/null ||
    fail "$1: no {error:{code,message}} body: $BODY"
}
# expect_409 WHAT ERE: 409 whose error message names the state (ERE, case-insensitive).
expect_409() {
  expect_status 409 "$1" || return 0
  expect_error_body "$1"
  grep -qiE "$2" <<<"$(jget .error.message)" || fail "$1: 409 message does not name the state ($2): $(jget .error.message)"
}
# expect_action_ok WHAT: exactly 200 and an empty body.
expect_action_ok() {
  expect_status 200 "$1" || return 0
  [ -z "$BODY" ] || fail "$1: 200 with a non-empty body: $BODY"
}
repl() { api GET "$RCGS/$1"; jget "$G.replication_status"; }
pair_field() { api GET "$PAIRS/$1"; jget ".replication.$2"; }
ids_sorted() { printf '%s\n' "$@" | sort | paste -sd,; }
group_body() { # group_body NAME AZ MODEL PAIR...
  local name=$1 az=$2 model=$3 ids
  shift 3
  ids=$(printf '"%s",' "$@")
  [ $# -gt 0 ] || ids=","
  printf '{"replication_consistency_group":{"name":"%s","replication_ids":[%s],"priority_station":"%s","replication_model":"%s"}}' \
    "$name" "${ids%,}" "$az" "$model"
}

# --- auth and routing on the groups path
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' "$URL/v2/$PROJECT/$RCGS")
expect_eq "$STATUS" 401 "groups without token"
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary "{\"$PAUSE\": null}" "$URL/v2/$PROJECT/$RCGS/$NOSUCH/action")
expect_eq "$STATUS" 401 "action without token"
api GET "/v2/0123456789abcdef0123456789abcdef/$RCGS"
expect_status 403 "groups of another project"
api GET "$RCGS"
expect_status 200 "empty group list"
expect_eq "$(jget '.replication_consistency_groups | length')" 0 "empty group list length"
api PUT "$RCGS" '{}'
expect_status 405 "PUT on the group collection"
api GET "$RCGS/$NOSUCH"
expect_status 404 "unknown group"
group_action "$NOSUCH" "$PAUSE"
expect_status 404 "pause of an unknown group"

# --- four pairs, all active
declare -a P D R
for i in 1 2 3 4; do
  P[i]=$(create_volume az1 1 "gp$i")
  D[i]=$(create_volume az2 1 "gd$i")
  R[i]=$(create_pair "${P[i]}" "${D[i]}" "gpair$i")
done
for i in 1 2 3 4; do wait_pair_active "${R[i]}"; done

# --- create constraints
bad=(
  'not json'
  '{"replication_consistency_group": 1}'
  '{"group": {}}'
  "$(group_body g az1 hypermetro)"
  "{\"replication_consistency_group\":{\"name\":\"g\",\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication_consistency_group\":{\"name\":\"g\",\"replication_ids\":\"${R[1]}\",\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication_consistency_group\":{\"name\":\"g\",\"replication_ids\":[\"${R[1]}\"],\"replication_model\":\"hypermetro\"}}"
  "$(group_body g az2 hypermetro "${R[1]}")"
  "$(group_body g az9 hypermetro "${R[1]}")"
  "$(group_body g az1 async "${R[1]}")"
  "$(group_body "$(head -c 256 /dev/zero | tr '\0' g)" az1 hypermetro "${R[1]}")"
)
for b in "${bad[@]}"; do
  api POST "$RCGS" "$b"
  expect_status 400 "create group with $b" || true
  expect_error_body "400 for $b"
done
api POST "$RCGS" "$(group_body g az1 hypermetro "$NOSUCH")"
expect_status 404 "create group with an unknown pair"
api POST "$RCGS" "$(group_body g az1 hypermetro "${R[1]}" "$NOSUCH")"
expect_status 404 "create group with a known and an unknown pair"
api GET "$RCGS"
expect_eq "$(jget '.replication_consistency_groups | length')" 0 "rejected creates left no group"
expect_eq "$(pair_field "${R[1]}" replication_consistency_group_id)" null "rejected creates left R1 free"

# --- create G1 = {R1, R2}: exactly 202, creating -> available, active-stopped
api POST "$RCGS" '{"replication_consistency_group":{"name":"g1","description":"first group","replication_ids":["'"${R[1]}"'","'"${R[2]}"'"],"priority_station":"az1","replication_model":"hypermetro"}}'
expect_status 202 "create group" || die "group create failed"
G1=$(jget "$G.id")
for f in id name description status priority_station created_at updated_at; do
  jq -e --arg f "$f" ".replication_consistency_group | has(\$f)" <<<"$BODY" >/dev/null || fail "create response: field $f missing"
done
expect_eq "$(jget "$G.status")" creating "status in the 202"
expect_eq "$(jget "$G.name")" g1 "name in the 202"
expect_eq "$(jget "$G.priority_station")" az1 "priority_station in the 202"
wait_through "$RCGS/$G1" "$G.status" available creating 120
for f in id name description status priority_station replication_model replication_status replication_ids \
  failure_detail fault_level created_at updated_at; do
  jq -e --arg f "$f" ".replication_consistency_group | has(\$f)" <<<"$BODY" >/dev/null || fail "GET group: field $f missing"
done
expect_eq "$(jget "$G.replication_status")" active-stopped "replication_status of a new group of active pairs"
expect_eq "$(jget "$G.replication_ids | type")" array "replication_ids is a JSON list"
expect_eq "$(jget "$G.replication_ids | sort | join(\",\")")" "$(ids_sorted "${R[1]}" "${R[2]}")" "replication_ids"
expect_eq "$(jget "$G.fault_level | type")" string "fault_level type"
expect_eq "$(jget "$G.fault_level")" 0 "fault_level"
expect_eq "$(jget "$G.replication_model")" hypermetro "replication_model"
expect_eq "$(jget "$G.description")" "first group" "description"
expect_eq "$(jget "$G.updated_at")" null "updated_at after the service's own creating->available"
[[ "$(jget "$G.created_at")" =~ $TIME_RE ]] || fail "created_at format: $(jget "$G.created_at")"
[ -z "$(jget "$G.failure_detail // \"\"")" ] || fail "failure_detail of a healthy group: $(jget "$G.failure_detail")"
for i in 1 2; do
  expect_eq "$(pair_field "${R[i]}" replication_consistency_group_id)" "$G1" "R$i joined G1"
  expect_eq "$(pair_field "${R[i]}" replication_status)" active-stopped "R$i paused by the group create"
done
expect_eq "$(pair_field "${R[3]}" replication_status)" active "R3 outside the group still active"

api POST "$RCGS" "$(group_body dup az1 hypermetro "${R[1]}")"
expect_status 409 "create group with a pair already in a group"
api POST "$RCGS" "$(group_body dup az1 hypermetro "${R[3]}" "${R[2]}")"
expect_status 409 "create group with one pair already in a group"
expect_eq "$(pair_field "${R[3]}" replication_consistency_group_id)" null "refused create left R3 free"

G2=$(create_group g2 "${R[3]}")
api GET "$RCGS/$G2"
G2_CREATED=$(jget "$G.created_at")

# --- list, detail, filters, changes-since, paging, sort
api GET "$RCGS"
expect_status 200 "group list"
expect_eq "$(jget '[.replication_consistency_groups[].id] | sort | join(",")')" "$(ids_sorted "$G1" "$G2")" "group list ids"
grep -qi '^Content-Type: application/json' <<<"$HDRS" || fail "group list without JSON content type"
gfilter() { # gfilter QUERY WANT_IDS
  api GET "$RCGS/detail?$1"
  expect_status 200 "group filter $1" || return 0
  expect_eq "$(jget '[.replication_consistency_groups[].id] | sort | join(",")')" "$2" "group filter $1"
}
both=$(ids_sorted "$G1" "$G2")
gfilter "" "$both"
gfilter "name=g1" "$G1"
gfilter "name=nope" ""
gfilter "status=available" "$both"
gfilter "status=error" ""
gfilter "priority_station=az1" "$both"
gfilter "priority_station=az2" ""
gfilter "volume_id=${P[1]}" "$G1"
gfilter "volume_id=${D[2]}" "$G1"
gfilter "volume_id=${D[3]}" "$G2"
gfilter "volume_id=${P[4]}" ""
gfilter "name=g2&volume_id=${P[1]}" ""
gfilter "changes-since=2000-01-01T00:00:00" "$both"
gfilter "changes-since=2999-01-01T00:00:00Z" ""
gfilter "changes-since=$G2_CREATED" "$G2"
api GET "$RCGS/detail"
expect_eq "$(jget '.replication_consistency_groups[0].id')" "$G2" "default sort created_at desc"
expect_eq "$(jget '[.replication_consistency_groups[].replication_ids | type] | unique | join(",")')" array "replication_ids type in detail list"
api GET "$RCGS/detail?sort_key=name&sort_dir=asc"
expect_eq "$(jget '[.replication_consistency_groups[].name] | join(",")')" "g1,g2" "sort name asc"
api GET "$RCGS/detail?limit=1"
expect_eq "$(jget '[.replication_consistency_groups[].id] | join(",")')" "$G2" "limit=1"
api GET "$RCGS/detail?limit=1&marker=$G2"
expect_eq "$(jget '[.replication_consistency_groups[].id] | join(",")')" "$G1" "marker paging"
for q in limit=0 limit=1001 offset=-1 sort_key=size sort_dir=sideways "marker=$NOSUCH" changes-since=soon; do
  api GET "$RCGS/detail?$q"
  expect_status 400 "group list with $q" || true
done

# --- action endpoint: bad bodies are 400, state unchanged
bad_actions=(
  'not json'
  '{}'
  '[]'
  'null'
  "{\"$PAUSE\": null, \"$SYNC\": null}"
  '{"os-bogus-action": null}'
  "{\"$PAUSE\": {}}"
  "{\"$PAUSE\": 1}"
  "{\"$PAUSE\": \"now\"}"
  "{\"$PAUSE\": false}"
  "{\"$SYNC\": {\"force\": true}}"
)
for b in "${bad_actions[@]}"; do
  api POST "$RCGS/$G1/action" "$b"
  expect_status 400 "action body $b" || true
  expect_error_body "action body $b"
done
api GET "$RCGS/$G1/action"
expect_status 405 "GET on the action endpoint"
expect_eq "$(repl "$G1")" active-stopped "bad action bodies changed nothing"

# --- idempotent pause (already paused): 200, empty body, state unchanged
group_action "$G1" "$PAUSE"
expect_action_ok "pause of a paused group"
expect_eq "$(repl "$G1")" active-stopped "paused group after a second pause"
group_action "$G1" "$PAUSE"
expect_action_ok "third pause"

# --- update while paused: 202, updating -> available
api PUT "$RCGS/$G1" '{"replication_consistency_group":{"name":"g1-renamed","description":"renamed"}}'
expect_status 202 "rename a paused group"
for f in id name description status priority_station created_at updated_at; do
  jq -e --arg f "$f" ".replication_consistency_group | has(\$f)" <<<"$BODY" >/dev/null || fail "update response: field $f missing"
done
wait_through "$RCGS/$G1" "$G.status" available updating 60
expect_eq "$(jget "$G.name")" g1-renamed "name after update"
expect_eq "$(jget "$G.description")" renamed "description after update"
[ "$(jget "$G.updated_at")" != null ] || fail "updated_at still null after PUT"
gfilter "changes-since=$G2_CREATED" "$both"
bad_updates=(
  'not json'
  '{"group": {}}'
  '{"replication_consistency_group": {"replication_model": "async"}}'
  '{"replication_consistency_group": {"name": 7}}'
  "{\"replication_consistency_group\": {\"name\": \"$(head -c 256 /dev/zero | tr '\0' n)\"}}"
  "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"${R[4]}\"]}}"
  "{\"replication_consistency_group\": {\"add_replication_ids\": \"${R[4]}\"}}"
)
for b in "${bad_updates[@]}"; do
  api PUT "$RCGS/$G1" "$b"
  expect_status 400 "update with $b" || true
done
api PUT "$RCGS/$G1" "{\"replication_consistency_group\": {\"add_replication_ids\": [\"$NOSUCH\"]}}"
expect_status 404 "add an unknown pair"
api PUT "$RCGS/$G1" "{\"replication_consistency_group\": {\"add_replication_ids\": [\"${R[3]}\"]}}"
expect_status 409 "add a pair that is in another group"
api PUT "$RCGS/$NOSUCH" '{"replication_consistency_group": {"name": "x"}}'
expect_status 404 "update an unknown group"
api GET "$RCGS/$G1"
expect_eq "$(jget "$G.replication_ids | sort | join(\",\")")" "$(ids_sorted "${R[1]}" "${R[2]}")" "refused updates changed no membership"

# --- delete refusals: a group with pairs; a pair in a group
api DELETE "$RCGS/$G1"
expect_409 "delete a group with member pairs" 'pair|replication|member'
api DELETE "$PAIRS/${R[1]}"
expect_409 "delete a pair that is in a group" 'group'
api GET "$PAIRS/${R[1]}"
expect_status 200 "pair still there after refused delete"

# --- sync: 200, immediately copying or active; then active; idempotent
group_action "$G1" "$SYNC"
expect_action_ok "sync of a paused group"
r=$(repl "$G1")
[[ "$r" =~ ^(copying|active)$ ]] || fail "right after sync returned 200: replication_status '$r'"
wait_through "$RCGS/$G1" "$G.replication_status" active copying 120
for i in 1 2; do expect_eq "$(pair_field "${R[i]}" replication_status)" active "R$i active after group sync"; done
group_action "$G1" "$SYNC"
expect_action_ok "sync of an active group (no-op)"
expect_eq "$(repl "$G1")" active "active group after a second sync"

# --- the 409s of an active group, each naming the state
api PUT "$RCGS/$G1" '{"replication_consistency_group":{"name":"nope"}}'
expect_409 "update an active group" 'active'
api PUT "$RCGS/$G1" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"${R[2]}\"]}}"
expect_409 "remove a pair from an active group" 'active'
api DELETE "$RCGS/$G1"
expect_status 409 "delete an active group with pairs"
group_action "$G1" os-reprotect-replication-consistency-group
expect_409 "reprotect of a group that is not failovered" 'available|failover'
api GET "$RCGS/$G1"
expect_eq "$(jget "$G.name")" g1-renamed "refused update changed the name"
expect_eq "$(jget "$G.status")" available "status after the refused requests"

# --- pause of an active group: 200 and ALREADY paused (no polling)
group_action "$G1" "$PAUSE"
expect_action_ok "pause of an active group"
expect_eq "$(repl "$G1")" active-stopped "replication_status right after pause returned"
for i in 1 2; do expect_eq "$(pair_field "${R[i]}" replication_status)" active-stopped "R$i after group pause"; done
group_action "$G1" os-reverse-replication-consistency-group
expect_409 "reverse of a paused group" 'active-stopped|paus|stopped'
api GET "$RCGS/$G1"
expect_eq "$(jget "$G.priority_station")" az1 "refused reverse kept priority_station"

# --- copying: dirty data, sync, and the requests racing it
# A slow DR makes the copy last: every write to D1 and D2 sleeps 50 ms (the
# resync writes 1 MiB pieces: 48 MiB take ~2.4 s), so the requests below land
# while copying. Across two nodes (EVSREP_TEST_NODES=2) the resync copies
# 4 MiB as 16 pieces in flight at once, so the DR sleeps overlap: 400 ms
# each keeps the copy ~5 s long. The fault rules need the volume ids at
# daemon start: a clean restart (the restart further down drops them again).
SLOW_US=50000
[ "${EVSREP_TEST_NODES:-1}" = 2 ] && SLOW_US=400000
stop_daemon
EVSREP_FAULT="vol_write@${D[1]}~$SLOW_US;vol_write@${D[2]}~$SLOW_US" start_daemon
expect_eq "$(repl "$G1")" active-stopped "paused group after the restart with a slow DR"
head -c $((48 * 1024 * 1024)) /dev/urandom >"$TMP/dirty"
nbdcopy "$TMP/dirty" "$(nbd_uri az1 "${P[1]}")" || fail "dirty P1"
nbdcopy "$TMP/dirty" "$(nbd_uri az1 "${P[2]}")" || fail "dirty P2"
group_action "$G1" "$SYNC"
expect_action_ok "sync with dirty data"
r=$(repl "$G1")
expect_eq "$r" copying "right after sync with dirty data (slow DR: the copy is still running)"
group_action "$G1" "$SYNC"
expect_action_ok "sync while copying (no-op)"
api PUT "$RCGS/$G1" '{"replication_consistency_group":{"name":"nope"}}'
expect_409 "update while copying" 'copying|active'
r=$(repl "$G1")
group_action "$G1" "$PAUSE"
expect_action_ok "pause while copying"
expect_eq "$r" copying "replication_status right before the pause (precondition: copying)"
# A pause that interrupts the copy leaves DR not consistent: inactive, never
# active-stopped (which would claim a consistent frozen image).
expect_eq "$(repl "$G1")" inactive "right after pause of a copying group"
dsum=0
for i in 1 2; do
  d=$(pair_field "${R[i]}" dirty_bytes)
  [[ "$d" =~ ^[0-9]+$ ]] || fail "R$i dirty_bytes '$d' after the pause"
  dsum=$((dsum + ${d:-0}))
done
[ "$dsum" -gt 0 ] || fail "no dirty bytes left after the pause of a copying group (the copy was not interrupted)"
group_action "$G1" "$SYNC"
expect_action_ok "sync after pause during copy"
wait_through "$RCGS/$G1" "$G.replication_status" active 'copying|inactive' 120
nbd_cmp "$(nbd_uri az1 "${P[1]}")" "$(nbd_uri az2 "${D[1]}")" "P1/D1 after interrupted and resumed sync"
nbd_cmp "$(nbd_uri az1 "${P[2]}")" "$(nbd_uri az2 "${D[2]}")" "P2/D2 after interrupted and resumed sync"

# --- a group whose pairs were all removed: available + active-stopped,
# pause 200, sync/reverse/failover/reprotect/extend 409 "no pairs"
group_action "$G2" "$PAUSE"
expect_action_ok "pause G2"
api PUT "$RCGS/$G2" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"${R[3]}\"]}}"
expect_status 202 "remove the only pair of G2"
wait_through "$RCGS/$G2" "$G.status" available updating 60
expect_eq "$(jget "$G.replication_status")" active-stopped "empty group replication_status"
expect_eq "$(jget "$G.replication_ids | length")" 0 "empty group replication_ids"
expect_eq "$(pair_field "${R[3]}" replication_consistency_group_id)" null "removed pair left the group"
expect_eq "$(pair_field "${R[3]}" replication_status)" active-stopped "removed pair stays paused"
group_action "$G2" "$PAUSE"
expect_action_ok "pause of an empty group"
group_action "$G2" "$SYNC"
expect_409 "sync of an empty group" 'no pair|pairs'
for a in os-reverse-replication-consistency-group os-failover-replication-consistency-group \
  os-reprotect-replication-consistency-group; do
  group_action "$G2" "$a"
  expect_409 "$a of an empty group" 'no pair|pairs'
done
group_action "$G2" os-extend-replication-volumes "{\"replications\": [{\"id\": \"${R[3]}\", \"new_size\": 2}]}"
[[ "$STATUS" =~ ^(409|400)$ ]] || fail "extend on an empty group: want 409 (no pairs) or 400 (not a member), got $STATUS"
api GET "$RCGS/$G2"
expect_eq "$(jget "$G.status")" available "empty group status after refused actions"
expect_eq "$(jget "$G.priority_station")" az1 "empty group priority_station after refused failover"
api DELETE "$RCGS/$G2"
expect_status 202 "delete an empty group"
wait_gone_through "$RCGS/$G2" "$G.status" 'available|deleting' 60
api DELETE "$RCGS/$G2"
expect_status 404 "delete a deleted group"

# --- clean restart keeps groups and their state
stop_daemon
start_daemon
api GET "$RCGS/$G1"
expect_status 200 "group after restart"
expect_eq "$(jget "$G.name")" g1-renamed "group name after restart"
expect_eq "$(jget "$G.replication_status")" active "group replication_status after restart"
expect_eq "$(jget "$G.replication_ids | sort | join(\",\")")" "$(ids_sorted "${R[1]}" "${R[2]}")" "members after restart"

# --- Terraform flow 1: create -> wait available -> sync -> wait active
# (R3 was paused earlier, R4 active: the create pauses R4 now, at another
# instant than R3 was frozen, so the two DR disks are not one image: the
# group honestly reports inactive until a sync, never active-stopped.)
api POST "$RCGS" "$(group_body tf az1 hypermetro "${R[3]}" "${R[4]}")"
expect_status 202 "terraform create"
G3=$(jget "$G.id")
wait_through "$RCGS/$G3" "$G.status" available creating 120
expect_eq "$(jget "$G.replication_status")" inactive "new group of a pair paused earlier + an active pair (two instants)"
group_action "$G3" "$SYNC"
expect_action_ok "terraform sync"
wait_through "$RCGS/$G3" "$G.replication_status" active copying 120

# --- Terraform flow 2: pause -> PUT remove a pair IMMEDIATELY -> wait available -> sync
group_action "$G1" "$PAUSE"
expect_action_ok "terraform pause"
api PUT "$RCGS/$G1" "{\"replication_consistency_group\": {\"remove_replication_ids\": [\"${R[2]}\"]}}"
expect_status 202 "terraform update right after pause (no polling)"
wait_through "$RCGS/$G1" "$G.status" available updating 60
expect_eq "$(jget "$G.replication_ids | join(\",\")")" "${R[1]}" "members after removal"
expect_eq "$(pair_field "${R[2]}" replication_consistency_group_id)" null "removed R2 left G1"
expect_eq "$(pair_field "${R[2]}" replication_status)" active-stopped "removed R2 stays paused"
group_action "$G1" "$SYNC"
expect_action_ok "terraform sync after update"
wait_through "$RCGS/$G1" "$G.replication_status" active copying 120
expect_eq "$(pair_field "${R[2]}" replication_status)" active-stopped "R2 outside the group not synced by it"
# Add it back while paused: joins paused.
group_action "$G1" "$PAUSE"
expect_action_ok "pause before add"
api PUT "$RCGS/$G1" "{\"replication_consistency_group\": {\"add_replication_ids\": [\"${R[2]}\"]}}"
expect_status 202 "add a pair while paused"
wait_through "$RCGS/$G1" "$G.status" available updating 60
expect_eq "$(jget "$G.replication_ids | sort | join(\",\")")" "$(ids_sorted "${R[1]}" "${R[2]}")" "members after add"
expect_eq "$(jget "$G.replication_status")" inactive "group after adding a pair paused at another instant (two instants: not one DR image)"
expect_eq "$(pair_field "${R[2]}" replication_consistency_group_id)" "$G1" "added R2 joined G1"

# --- Terraform flow 3: pause -> remove all pairs -> delete -> 404
for g in "$G1" "$G3"; do
  group_action "$g" "$PAUSE"
  expect_action_ok "terraform delete flow: pause"
  api GET "$RCGS/$g"
  members=$(jget "$G.replication_ids | tojson")
  api PUT "$RCGS/$g" "{\"replication_consistency_group\": {\"remove_replication_ids\": $members}}"
  expect_status 202 "terraform delete flow: remove all pairs"
  wait_through "$RCGS/$g" "$G.status" available updating 60
  expect_eq "$(jget "$G.replication_ids | length")" 0 "no members left"
  api DELETE "$RCGS/$g"
  expect_status 202 "terraform delete flow: delete"
  wait_gone_through "$RCGS/$g" "$G.status" 'available|deleting' 60
done
api GET "$RCGS"
expect_eq "$(jget '.replication_consistency_groups | length')" 0 "all groups deleted"
for i in 1 2 3 4; do
  expect_eq "$(pair_field "${R[i]}" replication_consistency_group_id)" null "R$i free after group deletes"
done
# Free pairs can be deleted again.
api DELETE "$PAIRS/${R[4]}"
expect_status 202 "delete a pair after its group is gone"
wait_gone "$PAIRS/${R[4]}"

finish
