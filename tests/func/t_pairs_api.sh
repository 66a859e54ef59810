#!/usr/bin/env bash
# shellcheck disable=SC2119
# Replication pairs API (api.md "EVS replication pairs") against the real
# daemon: create and its exact statuses, every create constraint, field TYPES
# as real clients decode them, list/detail filters, paging, sort, get, delete,
# and what a pair does to its volumes (replication_status, 409 on delete and
# extend, read-only DR connection).
. "$(dirname "$0")/lib.sh"
start_daemon

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}$'
NOSUCH=6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10

pair_body() { # pair_body PROD DR [az] [model] [name]
  printf '{"replication":{"name":"%s","volume_ids":["%s","%s"],"priority_station":"%s","replication_model":"%s"}}' \
    "${5:-p}" "$1" "$2" "${3:-az1}" "${4:-hypermetro}"
}
expect_error_body() {
  jq -e '.error.code and (.error.message | type == "string" and length > 0)' <<<"$BODY" >/dev/null ||
    fail "$1: no {error:{code,message}} body: $BODY"
}
# no_pair_for VOLUME WHAT: a rejected create left no pair behind.
no_pair_for() {
  api GET "$PAIRS/detail?volume_id=$1"
  expect_eq "$(jget '.replications | length')" 0 "$2: a rejected create left a pair"
}

# --- auth and routing on the pairs path
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' "$URL/v2/$PROJECT/$PAIRS")
expect_eq "$STATUS" 401 "pairs without token"
api GET "/v2/0123456789abcdef0123456789abcdef/$PAIRS"
expect_status 403 "pairs of another project"
api GET "$PAIRS"
expect_status 200 "empty pair list"
expect_eq "$(jget '.replications | length')" 0 "empty pair list length"
grep -qi '^Content-Type: application/json' <<<"$HDRS" || fail "pair list without JSON content type"
api PUT "$PAIRS" '{}'
expect_status 405 "PUT on the pair collection"
grep -qi '^Allow:' <<<"$HDRS" || fail "405 without Allow header"
api GET "$PAIRS/$NOSUCH"
expect_status 404 "unknown pair"
api GET "$PAIRS/not-a-uuid"
[[ "$STATUS" =~ ^(404|400)$ ]] || fail "malformed pair id: want 404/400, got $STATUS"

# --- volumes: P1/D1 (1 GiB) pair; P2/D2 second pair; extras for constraints
P1=$(create_volume az1 1 prod1)
D1=$(create_volume az2 1 dr1)
P2=$(create_volume az1 1 prod2)
D2=$(create_volume az2 1 dr2)
A1=$(create_volume az1 1 same-az)
BIG=$(create_volume az2 2 dr-big)
X1=$(create_volume az1 1 extra1)
X2=$(create_volume az2 1 extra2)

# Data written before pairing: checked on DR after the pair is deleted.
qemu-io -f raw -c 'write -P 0x3c 0 1M' -c flush "$(nbd_uri az1 "$P1")" >/dev/null || fail "qemu-io write P1"

# --- create constraints (nothing is created on failure)
bad=(
  'not json'
  '{"replication": 1}'
  '{"replica": {}}'
  "{\"replication\":{\"volume_ids\":[\"$P1\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication\":{\"volume_ids\":[\"$P1\",\"$D1\",\"$X2\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication\":{\"volume_ids\":[],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication\":{\"volume_ids\":\"$P1,$D1\",\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication\":{\"volume_ids\":[\"$P1\",\"$P1\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "{\"replication\":{\"volume_ids\":[\"$P1\",\"$D1\"],\"replication_model\":\"hypermetro\"}}"
  "{\"replication\":{\"volume_ids\":[\"$P1\",\"$D1\"],\"priority_station\":\"az1\"}}"
  "$(pair_body "$P1" "$D1" az1 async)"
  "$(pair_body "$P1" "$D1" az1 HYPERMETRO)"
  "{\"replication\":{\"volume_ids\":[\"$P1\",\"$D1\"],\"priority_station\":\"az1\",\"replication_model\":7}}"
  "$(pair_body "$P1" "$A1")"
  "$(pair_body "$P1" "$D1" az2)"
  "$(pair_body "$P1" "$D1" az9)"
  "$(pair_body "$D1" "$P1" az1)"
  "$(pair_body "$P1" "$BIG")"
  "{\"replication\":{\"name\":5,\"volume_ids\":[\"$P1\",\"$D1\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  "$(pair_body "$P1" "$D1" az1 hypermetro "$(head -c 256 /dev/zero | tr '\0' n)")"
)
for b in "${bad[@]}"; do
  api POST "$PAIRS" "$b"
  expect_status 400 "create pair with $b" || true
  expect_error_body "400 for $b"
done
no_pair_for "$P1" "bad creates"
# Size mismatch carries the failure_detail number 37100041 somewhere in the error.
api POST "$PAIRS" "$(pair_body "$P1" "$BIG")"
expect_status 400 "size mismatch" || true
grep -q 37100041 <<<"$BODY" || fail "size-mismatch error does not mention failure_detail 37100041: $BODY"

# Type mismatch: a DR volume of another volume_type.
api POST volumes '{"volume":{"size":1,"availability_zone":"az2","name":"sas","volume_type":"SAS"}}'
expect_status 202 "create a volume of volume_type SAS (needed for the type-mismatch case)" || die "no SAS volume"
SAS=$(jget .volume.id)
wait_field "volumes/$SAS" .volume.status available || die "SAS volume never available"
expect_eq "$(jget .volume.volume_type)" SAS "volume_type of the SAS volume"
api POST "$PAIRS" "$(pair_body "$P1" "$SAS")"
expect_status 400 "volume_type mismatch" || true
expect_error_body "type mismatch"
grep -qi 'volume_type' <<<"$(jget .error.message)" || fail "type-mismatch error does not name volume_type: $BODY"
no_pair_for "$SAS" "type mismatch"

# Missing volumes: 404 (or 400) naming the missing side, no pair left behind.
api POST "$PAIRS" "$(pair_body "$NOSUCH" "$D1")"
[[ "$STATUS" =~ ^(404|400)$ ]] || fail "missing production volume: want 404/400, got $STATUS: $BODY"
expect_error_body "missing production volume"
api POST "$PAIRS" "$(pair_body "$P1" "$NOSUCH")"
[[ "$STATUS" =~ ^(404|400)$ ]] || fail "missing DR volume: want 404/400, got $STATUS: $BODY"
expect_error_body "missing DR volume"
api POST "$PAIRS" "$(pair_body "$P1" "not-a-volume-id")"
[[ "$STATUS" =~ ^(404|400)$ ]] || fail "malformed DR id: want 404/400, got $STATUS: $BODY"
no_pair_for "$P1" "missing volumes"

# Not available: a volume still being created. Forced, not left to a race:
# the daemon's one task thread creates volume files and pairs' meta files in
# order, so a pair create whose meta header writes are slowed down (fault
# rule meta_hdr~, 2 s a write, in a daemon restarted for this case) keeps the
# task thread busy, and a volume posted behind it stays `creating` while the
# test pairs it. The young volume is in the blocker's production zone (az1),
# so in two-node mode too it waits behind the same node's task thread.
B1=$(create_volume az1 1 blocker-p)
B2=$(create_volume az2 1 blocker-d)
stop_daemon
EVSREP_FAULT='meta_hdr~2000000' start_daemon
api POST "$PAIRS" "$(pair_body "$B1" "$B2" az1 hypermetro blocker)"
expect_status 202 "create the blocker pair" || die "cannot create the blocker pair"
BP=$(jget .replication.id)
api POST volumes '{"volume":{"size":1,"availability_zone":"az1","name":"young"}}'
expect_status 202 "create the young volume" || die "cannot create a volume"
YOUNG=$(jget .volume.id)
api GET "volumes/$YOUNG"
young_before=$(jget .volume.status)
api POST "$PAIRS" "$(pair_body "$YOUNG" "$X2")"
young_status=$STATUS young_body=$BODY
api GET "volumes/$YOUNG"
young_after=$(jget .volume.status)
# The precondition: the volume was `creating` before and after the request.
expect_eq "$young_before/$young_after" creating/creating "young volume status around the pair request (precondition)"
[[ "$young_status" =~ ^(400|409)$ ]] || fail "pair with a creating volume: want 400/409, got $young_status: $young_body"
BODY=$young_body
expect_error_body "pair with a creating volume"
grep -q creating <<<"$(jget .error.message)" || fail "pair with a creating volume: the error does not name its status: $young_body"
no_pair_for "$YOUNG" "pair with a creating volume"
wait_field "volumes/$YOUNG" .volume.status available
wait_through "$PAIRS/$BP" .replication.status available creating 60
api DELETE "$PAIRS/$BP"
expect_status 202 "delete the blocker pair"
wait_gone "$PAIRS/$BP"
for v in "$B1" "$B2"; do
  api DELETE "volumes/$v"
  expect_status 202 "delete blocker volume $v"
  wait_gone "volumes/$v"
done
stop_daemon
start_daemon # without the fault rule

# --- create P1/D1: exactly 202, creating -> available, copying -> active
api POST "$PAIRS" '{"replication":{"name":"p1","description":"first pair","volume_ids":["'"$P1"'","'"$D1"'"],"priority_station":"az1","replication_model":"hypermetro"}}'
expect_status 202 "create pair" || die "pair create failed"
R1=$(jget .replication.id)
[[ "$R1" =~ $UUID_RE ]] || fail "pair id $R1 is not a UUIDv4"
expect_eq "$(jget .replication.status)" creating "status in the 202"
grep -qi '^X-Openstack-Request-Id: req-' <<<"$HDRS" || fail "no request id on pair create"

# check_pair_fields WHAT: every field and its JSON type, as the Go SDK decodes them.
check_pair_fields() {
  local what=$1 f
  for f in id name description status replication_consistency_group_id volume_ids priority_station \
    replication_model replication_status progress failure_detail fault_level record_metadata \
    created_at updated_at; do
    jq -e --arg f "$f" '.replication | has($f)' <<<"$BODY" >/dev/null || fail "$what: field $f missing"
  done
  expect_eq "$(jget '.replication.volume_ids | type')" string "$what: volume_ids type"
  expect_eq "$(jget .replication.volume_ids)" "$P1,$D1" "$what: volume_ids (creation order)"
  expect_eq "$(jget '.replication.progress | type')" string "$what: progress type"
  [[ "$(jget .replication.progress)" =~ ^([0-9]|[1-9][0-9]|100)$ ]] || fail "$what: progress $(jget .replication.progress)"
  expect_eq "$(jget '.replication.fault_level | type')" string "$what: fault_level type"
  expect_eq "$(jget .replication.fault_level)" 0 "$what: fault_level"
  expect_eq "$(jget '.replication.record_metadata | type')" string "$what: record_metadata type"
  expect_eq "$(jget '.replication.record_metadata | fromjson | .volume_size')" 1 "$what: record_metadata.volume_size"
  expect_eq "$(jget '.replication.record_metadata | fromjson | .volume_type')" SSD "$what: record_metadata.volume_type"
  expect_eq "$(jget '.replication.record_metadata | fromjson | .multiattach')" false "$what: record_metadata.multiattach"
  [[ "$(jget '.replication.failure_detail // ""')" = "" ]] || fail "$what: failure_detail $(jget .replication.failure_detail)"
  [[ "$(jget '.replication.failure_detail | type')" =~ ^(string|null)$ ]] || fail "$what: failure_detail type"
  expect_eq "$(jget .replication.replication_consistency_group_id)" null "$what: group id"
  expect_eq "$(jget .replication.priority_station)" az1 "$what: priority_station"
  expect_eq "$(jget .replication.replication_model)" hypermetro "$what: model"
  expect_eq "$(jget .replication.name)" p1 "$what: name"
  expect_eq "$(jget .replication.description)" "first pair" "$what: description"
  [[ "$(jget .replication.created_at)" =~ $TIME_RE ]] || fail "$what: created_at $(jget .replication.created_at)"
}
check_pair_fields "create response"
wait_through "$PAIRS/$R1" .replication.status available creating 120
wait_through "$PAIRS/$R1" .replication.replication_status active 'copying|null|inactive' 120
check_pair_fields "GET pair"
expect_eq "$(jget .replication.progress)" 100 "progress when active"
expect_eq "$(jget .replication.updated_at)" null "updated_at after the service's own creating->available"
grep -qi '^Content-Type: application/json' <<<"$HDRS" || fail "pair GET without JSON content type"

# --- the volumes of the pair
for v in "$P1" "$D1"; do
  api GET "volumes/$v"
  expect_eq "$(jget .volume.replication_status)" enabled "replication_status of paired volume $v"
  api DELETE "volumes/$v"
  expect_status 409 "delete of paired volume $v"
  expect_error_body "delete paired volume"
  api POST "volumes/$v/action" '{"os-extend": {"new_size": 2}}'
  expect_status 409 "extend of paired volume $v"
  api GET "volumes/$v"
  expect_eq "$(jget .volume.status)" available "paired volume $v still available after refused delete/extend"
  expect_eq "$(jget .volume.size)" 1 "paired volume $v size unchanged"
done
api POST "volumes/$P1/action" '{"os-initialize_connection": {"connector": {}}}'
expect_status 200 "initialize_connection production"
expect_eq "$(jget .connection_info.data.read_only)" false "production read_only"
api POST "volumes/$D1/action" '{"os-initialize_connection": {"connector": {}}}'
expect_status 200 "initialize_connection DR"
expect_eq "$(jget .connection_info.data.read_only)" true "DR read_only"
expect_eq "$(jget .connection_info.data.uri)" "nbd://$NBD_AZ2/$(jget .connection_info.data.export_name)" "DR uri"

# --- already paired: 409 either side (37100053 / 37100054)
api POST "$PAIRS" "$(pair_body "$P1" "$X2")"
expect_status 409 "production already paired"
expect_error_body "production already paired"
api POST "$PAIRS" "$(pair_body "$X1" "$D1")"
expect_status 409 "DR already paired"
api POST "$PAIRS" "$(pair_body "$P1" "$D1")"
expect_status 409 "same pair twice"
no_pair_for "$X1" "already paired"
no_pair_for "$X2" "already paired"

# --- second pair, then lists
R2=$(create_pair "$P2" "$D2" p2)
wait_pair_active "$R2"

api GET "$PAIRS"
expect_status 200 "pair list"
expect_eq "$(jget '[.replications[].id] | sort | join(",")')" "$(printf '%s\n' "$R1" "$R2" | sort | paste -sd,)" "list ids"
api GET "$PAIRS/detail"
expect_status 200 "pair detail list"
expect_eq "$(jget '.replications | length')" 2 "detail length"
expect_eq "$(jget '.replications[0].id')" "$R2" "default sort created_at desc"
expect_eq "$(jget '[.replications[].volume_ids | type] | unique | join(",")')" string "volume_ids type in detail list"
expect_eq "$(jget '[.replications[].progress | type] | unique | join(",")')" string "progress type in detail list"
expect_eq "$(jget '[.replications[].record_metadata | type] | unique | join(",")')" string "record_metadata type in list"

# filter QUERY WANT_IDS_SORTED_COMMA
filter() {
  api GET "$PAIRS/detail?$1"
  expect_status 200 "filter $1" || return 0
  expect_eq "$(jget '[.replications[].id] | sort | join(",")')" "$2" "filter $1"
}
both=$(printf '%s\n' "$R1" "$R2" | sort | paste -sd,)
filter "name=p1" "$R1"
filter "name=p2" "$R2"
filter "name=nope" ""
filter "status=available" "$both"
filter "status=error" ""
filter "name=p1&status=available" "$R1"
filter "name=p1&status=error" ""
filter "volume_ids=$P1,$D1" "$R1"
filter "volume_ids=$D1,$P1" ""
filter "volume_id=$P2" "$R2"
filter "volume_id=$D1" "$R1"
filter "volume_id=$X1" ""
filter "priority_station=az1" "$both"
filter "priority_station=az2" ""
filter "replication_consistency_group_id=$NOSUCH" ""
filter "changes-since=2000-01-01T00:00:00" "$both"
filter "changes-since=2999-01-01T00:00:00.000000Z" ""

api GET "$PAIRS/detail?limit=1"
expect_eq "$(jget '.replications | length')" 1 "limit=1"
expect_eq "$(jget '.replications[0].id')" "$R2" "limit=1 first item"
api GET "$PAIRS/detail?limit=1&marker=$R2"
expect_eq "$(jget '[.replications[].id] | join(",")')" "$R1" "marker paging"
api GET "$PAIRS/detail?limit=1&marker=$R1"
expect_eq "$(jget '.replications | length')" 0 "marker at the end"
api GET "$PAIRS/detail?sort_key=name&sort_dir=asc"
expect_eq "$(jget '[.replications[].name] | join(",")')" "p1,p2" "sort name asc"
api GET "$PAIRS/detail?sort_key=name&sort_dir=desc"
expect_eq "$(jget '[.replications[].name] | join(",")')" "p2,p1" "sort name desc"
api GET "$PAIRS/detail?sort_dir=asc"
expect_eq "$(jget '.replications[0].id')" "$R1" "sort created_at asc"
api GET "$PAIRS/detail?offset=1&sort_dir=asc"
expect_eq "$(jget '[.replications[].id] | join(",")')" "$R2" "offset"
for q in limit=0 limit=1001 limit=x offset=-1 sort_key=size sort_dir=up "marker=$NOSUCH" changes-since=yesterday; do
  api GET "$PAIRS/detail?$q"
  expect_status 400 "pair list with $q" || true
done

# --- a mirrored write lands on DR (light check; t_pair_data does it in depth)
qemu-io -f raw -c 'write -P 0x5e 4M 64k' "$(nbd_uri az1 "$P1")" >/dev/null || fail "write to production"
qemu-io -f raw -r -c 'read -P 0x5e 4M 64k' "$(nbd_uri az2 "$D1")" >"$TMP/qio" 2>&1 || fail "read DR"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "mirrored write not on DR"

# --- restart: pairs survive with their fields
stop_daemon
start_daemon
api GET "$PAIRS/$R1"
expect_status 200 "pair after restart"
check_pair_fields "after restart"
expect_eq "$(jget .replication.replication_status)" active "replication_status after clean restart"

# --- delete: 202 then 404; both volumes stay with their data
sum_p=$(nbd_sha256 "$(nbd_uri az1 "$P1")")
api DELETE "$PAIRS/$R1"
expect_status 202 "delete pair"
wait_gone_through "$PAIRS/$R1" .replication.status 'available|deleting' 60
api DELETE "$PAIRS/$R1"
expect_status 404 "delete again"
for v in "$P1" "$D1"; do
  api GET "volumes/$v"
  expect_status 200 "volume $v after pair delete"
  expect_eq "$(jget .volume.status)" available "volume $v status after pair delete"
  expect_eq "$(jget .volume.replication_status)" disabled "volume $v replication_status after pair delete"
done
expect_eq "$(nbd_sha256 "$(nbd_uri az1 "$P1")")" "$sum_p" "production data after pair delete"
expect_eq "$(nbd_sha256 "$(nbd_uri az2 "$D1")")" "$sum_p" "DR data after pair delete"
qemu-io -f raw -r -c 'read -P 0x3c 0 1M' -c 'read -P 0x5e 4M 64k' "$(nbd_uri az2 "$D1")" >"$TMP/qio" 2>&1 || fail "read former DR"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "former DR lost data"
api POST "volumes/$D1/action" '{"os-initialize_connection": {"connector": {}}}'
expect_eq "$(jget .connection_info.data.read_only)" false "former DR read_only after pair delete"
qemu-io -f raw -c 'write -P 0x01 0 4k' "$(nbd_uri az2 "$D1")" >/dev/null || fail "former DR not writable"
filter "" "$R2"
# The volumes can pair again, and be deleted.
R3=$(create_pair "$P1" "$D1" again)
wait_pair_active "$R3"
api DELETE "$PAIRS/$R3"
expect_status 202 "delete re-pair"
wait_gone "$PAIRS/$R3"
api DELETE "volumes/$D1"
expect_status 202 "delete the former DR volume"
wait_gone "volumes/$D1"

finish
