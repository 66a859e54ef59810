#!/usr/bin/env bash
# Volumes API (Cinder v2 subset) against the real daemon: every status code of
# api.md's common rules and volume section, each error case, and restart.
. "$(dirname "$0")/lib.sh"
start_daemon

# --- auth: 401 before anything else, 403 for another project, request id
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' "$URL/v2/$PROJECT/volumes")
[ "$STATUS" = 401 ] || fail "no token: want 401, got $STATUS"
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' -H 'X-Auth-Token: nope' "$URL/v2/$PROJECT/volumes")
[ "$STATUS" = 401 ] || fail "bad token: want 401, got $STATUS"
jq -e '.error.code and .error.message' "$TMP/b" >/dev/null || fail "401 body is not an error object"
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' -H 'X-Auth-Token: nope' "$URL/v2/$PROJECT/nowhere")
[ "$STATUS" = 401 ] || fail "bad token on unknown path: want 401, got $STATUS"
api GET /v2/0123456789abcdef0123456789abcdef/volumes
expect_status 403 "other project in path"
api GET volumes
expect_status 200 "empty list"
expect_eq "$(jget '.volumes | length')" 0 "empty list length"
grep -qi '^X-Openstack-Request-Id: req-[0-9a-f-]\{36\}' <<<"$HDRS" || fail "missing X-Openstack-Request-Id"
grep -qi '^Content-Type: application/json' <<<"$HDRS" || fail "list without JSON content type"

# --- router: unknown path 404, wrong method 405 + Allow, Accept 406
api GET nowhere
expect_status 404 "unknown path"
api PUT volumes '{}'
expect_status 405 "PUT on collection"
grep -qi '^Allow:.*GET' <<<"$HDRS" || fail "405 without Allow header"
api GET volumes "" -H 'Accept: text/html'
expect_status 406 "Accept text/html"
api GET volumes "" -H 'Accept: application/json; charset=utf-8'
expect_status 200 "Accept json with charset"

# --- create: validation errors are 400 with a clear message
bad_bodies=(
  'not json'
  '{"volume": 1}'
  '{"vol": {"size": 1, "availability_zone": "az1"}}'
  '{"volume": {"availability_zone": "az1"}}'
  '{"volume": {"size": "1", "availability_zone": "az1"}}'
  '{"volume": {"size": 0, "availability_zone": "az1"}}'
  '{"volume": {"size": 32769, "availability_zone": "az1"}}'
  '{"volume": {"size": 1.5, "availability_zone": "az1"}}'
  '{"volume": {"size": 1}}'
  '{"volume": {"size": 1, "availability_zone": "az9"}}'
  '{"volume": {"size": 1, "availability_zone": 7}}'
  '{"volume": {"size": 1, "availability_zone": "az1", "name": 5}}'
  '[1,2]'
)
for b in "${bad_bodies[@]}"; do
  api POST volumes "$b"
  expect_status 400 "create with body $b" || true
  jq -e '.error.code and (.error.message | length > 0)' <<<"$BODY" >/dev/null ||
    fail "400 for $b has no error body"
done
long=$(head -c 256 /dev/zero | tr '\0' 'x')
api POST volumes "{\"volume\": {\"size\": 1, \"availability_zone\": \"az1\", \"name\": \"$long\"}}"
expect_status 400 "name of 256 bytes"
api POST volumes "$(printf '{"volume": {"size": 1, "availability_zone": "az1", "name": "\xff\xfe"}}')"
expect_status 400 "name with bad UTF-8"
head -c $((1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$TMP/big"
STATUS=$(curl -s -o "$TMP/b" -w '%{http_code}' -X POST -H "X-Auth-Token: $TOKEN" \
  -H 'Content-Type: application/json' --data-binary @"$TMP/big" "$URL/v2/$PROJECT/volumes")
[ "$STATUS" = 413 ] || fail "body over 1 MiB: want 413, got $STATUS"

# --- create, get, list, detail
api POST volumes '{"volume": {"size": 1, "availability_zone": "az1", "name": "data", "description": "d", "metadata": {"k": "v"}}}'
expect_status 202 "create"
expect_eq "$(jget .volume.status)" creating "status in the 202"
V1=$(jget .volume.id)
[[ "$V1" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] || fail "id $V1 is not a UUIDv4"
wait_field "volumes/$V1" .volume.status available
expect_eq "$(jget .volume.size)" 1 "size"
expect_eq "$(jget .volume.availability_zone)" az1 "az"
expect_eq "$(jget .volume.volume_type)" SSD "default volume_type"
expect_eq "$(jget .volume.bootable)" false "bootable"
expect_eq "$(jget .volume.replication_status)" disabled "replication_status"
expect_eq "$(jget .volume.metadata.k)" v "metadata"
expect_eq "$(jget .volume.updated_at)" null "updated_at before any request changed it"
[[ "$(jget .volume.created_at)" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}$ ]] ||
  fail "created_at format: $(jget .volume.created_at)"
[ -f "$DATA/az1/$V1" ] || fail "volume file missing in az1 dir"
alloc=$(du -k "$DATA/az1/$V1" | cut -f1)
[ "$alloc" -lt 1024 ] || fail "volume file is not sparse ($alloc KiB allocated)"
V2=$(create_volume az2 2 second)
[ -f "$DATA/az2/$V2" ] || fail "volume file missing in az2 dir"

api GET volumes
expect_eq "$(jget '.volumes | length')" 2 "list length"
expect_eq "$(jget '.volumes[0] | keys | sort | join(",")')" "id,links,name" "summary list fields"
api GET volumes/detail
expect_eq "$(jget '.volumes[0].id')" "$V2" "default sort created_at desc"
api GET "volumes/detail?sort_dir=asc"
expect_eq "$(jget '.volumes[0].id')" "$V1" "sort asc"
api GET "volumes/detail?availability_zone=az2"
expect_eq "$(jget '.volumes | length')" 1 "filter by az"
api GET "volumes/detail?name=data&status=available"
expect_eq "$(jget '.volumes[0].id')" "$V1" "filter by name and status"
api GET "volumes/detail?limit=1"
expect_eq "$(jget '.volumes | length')" 1 "limit"
api GET "volumes/detail?limit=1&marker=$V2"
expect_eq "$(jget '.volumes[0].id')" "$V1" "marker paging"
for q in limit=0 limit=1001 limit=x offset=-1 sort_key=size sort_dir=up \
  marker=6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10 changes-since=yesterday; do
  api GET "volumes/detail?$q"
  expect_status 400 "list with $q" || true
done
api GET "volumes/detail?changes-since=2000-01-01T00:00:00"
expect_eq "$(jget '.volumes | length')" 2 "changes-since in the past"
api GET "volumes/detail?changes-since=2999-01-01T00:00:00Z"
expect_eq "$(jget '.volumes | length')" 0 "changes-since in the future"

# --- ids: malformed 404, unknown 404
api GET volumes/not-a-uuid
expect_status 404 "malformed id"
api GET volumes/6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10
expect_status 404 "unknown id"

# --- actions
api POST "volumes/$V1/action" '{"os-initialize_connection": {"connector": {}}}'
expect_status 200 "initialize_connection"
expect_eq "$(jget .connection_info.driver_volume_type)" nbd "driver type"
EXP1=$(jget .connection_info.data.export_name)
[[ "$EXP1" =~ ^[0-9a-f]{40}$ ]] || fail "export_name '$EXP1' is not 160 random bits in hex"
expect_eq "$(jget .connection_info.data.uri)" "nbd://$NBD_AZ1/$EXP1" "nbd uri"
expect_eq "$(jget .connection_info.data.read_only)" false "read_only"
api POST "volumes/$V1/action" '{"os-extend": {"new_size": 1}}'
expect_status 400 "extend not larger"
api POST "volumes/$V1/action" '{"os-extend": {"new_size": "3"}}'
expect_status 400 "extend with a string"
api POST "volumes/$V1/action" '{"os-bogus": null}'
expect_status 400 "unknown action"
api POST "volumes/$V1/action" '{"os-extend": {"new_size": 3}}'
expect_status 202 "extend"
wait_field "volumes/$V1" .volume.size 3
wait_field "volumes/$V1" .volume.status available
[ "$(stat -c %s "$DATA/az1/$V1")" = $((3 * 1024 * 1024 * 1024)) ] || fail "file not grown"
[ "$(jget .volume.updated_at)" != null ] || fail "updated_at still null after extend"

# --- restart: metadata survives
stop_daemon
start_daemon
api GET "volumes/$V1"
expect_status 200 "volume after restart"
expect_eq "$(jget .volume.size)" 3 "size after restart"
expect_eq "$(jget .volume.name)" data "name after restart"

# --- delete
api DELETE "volumes/$V2"
expect_status 202 "delete"
wait_gone "volumes/$V2"
[ ! -e "$DATA/az2/$V2" ] || fail "deleted volume file still there"

finish
