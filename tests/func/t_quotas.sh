#!/usr/bin/env bash
# Quotas (os-quota-sets) and site capacity against the real daemon: limits
# per project with two projects and an operator, 403 for tenants, 413 over a
# limit with nothing created, usage going down after a delete, concurrent
# creates racing for the last slot, both sides of a pair counting in a group
# extend, and sizes a site cannot hold refused at request time.
. "$(dirname "$0")/lib.sh"

CONF="$TMP/evsrep.conf"
printf '[DEFAULT]\nquota_volumes = 4\nquota_gigabytes = 100\n' >"$CONF"
start_daemon -c "$CONF"
# A second tenant project and an operator; the tokens file is read at start.
T2=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
OT=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
P2=project-two
OP=operators
printf '%s %s\n%s %s operator\n' "$T2" "$P2" "$OT" "$OP" >>"$DATA/tokens"
stop_daemon
start_daemon -c "$CONF"

as2() { TOKEN=$T2 PROJECT=$P2 api "$@"; }
asop() { TOKEN=$OT PROJECT=$OP api "$@"; }
Q=.quota_set
# expect_quota LIMIT_VOLS LIMIT_GIB WHAT: BODY is a plain quota set.
expect_quota() {
  expect_eq "$(jget "$Q.volumes")/$(jget "$Q.gigabytes")" "$1/$2" "$3"
}
# usage_of TOKEN PROJECT: "volumes_in_use/gigabytes_in_use".
usage_of() {
  TOKEN=$1 PROJECT=$2 api GET "os-quota-sets/$2?usage=true"
  expect_status 200 "usage of $2" >&2 || true
  printf '%s/%s\n' "$(jget "$Q.volumes.in_use")" "$(jget "$Q.gigabytes.in_use")"
}
vol_body() { printf '{"volume": {"size": %s, "availability_zone": "%s", "name": "%s"}}' "$1" "${2:-az1}" "${3:-q}"; }

# --- reading: own set, usage form, defaults; tenants cannot read another's
api GET "os-quota-sets/$PROJECT"
expect_status 200 "own quota set"
expect_eq "$(jget "$Q.id")" "$PROJECT" "quota_set.id"
expect_quota 4 100 "own set = config defaults"
api GET "os-quota-sets/$PROJECT?usage=true"
expect_status 200 "own set with usage"
expect_eq "$(jget "[$Q.volumes.limit, $Q.volumes.in_use, $Q.volumes.reserved] | join(\",\")")" 4,0,0 "volumes usage form"
expect_eq "$(jget "[$Q.gigabytes.limit, $Q.gigabytes.in_use, $Q.gigabytes.reserved] | join(\",\")")" 100,0,0 "gigabytes usage form"
api GET "os-quota-sets/$PROJECT?usage=maybe"
expect_status 400 "usage=maybe"
api GET "os-quota-sets/$PROJECT/defaults"
expect_status 200 "defaults"
expect_quota 4 100 "defaults"
api GET "os-quota-sets/$P2"
expect_status 403 "tenant reads another project's set"
grep -q "own project" <<<"$BODY" || fail "403 for another project's set does not say why: $BODY"
api GET "/v2/$P2/os-quota-sets/$P2"
expect_status 403 "tenant token on another project's path"
asop GET "os-quota-sets/bad%21id"
expect_status 404 "project id that is not one"
api GET "os-quota-sets/$PROJECT/nothing"
expect_status 404 "unknown quota sub-resource"

# --- changing: operator only
api PUT "os-quota-sets/$PROJECT" '{"quota_set": {"volumes": 1000}}'
expect_status 403 "tenant PUT of its own set"
grep -q "operator" <<<"$BODY" || fail "tenant PUT 403 does not name the operator role: $BODY"
as2 PUT "os-quota-sets/$P2" '{"quota_set": {"volumes": 1000}}'
expect_status 403 "second tenant PUT of its own set"
api DELETE "os-quota-sets/$PROJECT"
expect_status 403 "tenant DELETE of its own set"
asop PUT "os-quota-sets/$P2" '{"quota_set": {"volumes": 2, "gigabytes": 3}}'
expect_status 200 "operator PUT"
expect_quota 2 3 "PUT answer"
[ "$(jget "$Q | keys | join(\",\")")" = gigabytes,volumes ] || fail "PUT answer keys: $BODY"
asop GET "os-quota-sets/$P2"
expect_status 200 "operator reads another project's set"
expect_quota 2 3 "operator read after PUT"
as2 GET "os-quota-sets/$P2"
expect_status 200 "tenant reads its own changed set"
expect_quota 2 3 "tenant read after PUT"
api GET "os-quota-sets/$PROJECT"
expect_quota 4 100 "the other project keeps the defaults"

bad_bodies=(
  ''
  'not json'
  '{"quota_set": 5}'
  '{"quota_sets": {"volumes": 1}}'
  '{"quota_set": {}}'
  '{"quota_set": {"volumes": -2}}'
  '{"quota_set": {"gigabytes": -100}}'
  '{"quota_set": {"volumes": "5"}}'
  '{"quota_set": {"volumes": 1.5}}'
  '{"quota_set": {"volumes": true}}'
  '{"quota_set": {"volumes": null}}'
  '{"quota_set": {"gigabytes": 1099511627777}}'
  '{"quota_set": {"snapshots": 1}}'
  '{"quota_set": {"volumes": 1, "backups": 1}}'
)
for b in "${bad_bodies[@]}"; do
  asop PUT "os-quota-sets/$P2" "$b"
  expect_status 400 "PUT body '$b'" || true
  jq -e '.error.message | length > 0' <<<"$BODY" >/dev/null || fail "400 for '$b' has no message"
done
asop GET "os-quota-sets/$P2"
expect_quota 2 3 "set unchanged by refused PUTs"

# --- enforcement: volumes
as2 POST volumes "$(vol_body 1)"
expect_status 202 "P2 create 1/2"
V21=$(jget .volume.id)
as2 POST volumes "$(vol_body 1 az2)"
expect_status 202 "P2 create 2/2"
V22=$(jget .volume.id)
as2 POST volumes "$(vol_body 1)"
expect_status 413 "P2 create over the volumes quota"
grep -q 'volumes quota is 2' <<<"$BODY" && grep -q '2 are in use' <<<"$BODY" ||
  fail "413 does not name the quota, limit and usage: $BODY"
as2 GET volumes
expect_eq "$(jget '.volumes | length')" 2 "nothing created by the refused request"
expect_eq "$(usage_of "$T2" "$P2")" 2/2 "P2 usage"
# The other project is not limited by P2's set.
api POST volumes "$(vol_body 1)"
expect_status 202 "project 1 still creates"
V11=$(jget .volume.id)

# --- enforcement: gigabytes (create and os-extend)
asop PUT "os-quota-sets/$P2" '{"quota_set": {"volumes": 10}}'
expect_status 200 "raise volumes only"
expect_quota 10 3 "gigabytes kept by a PUT naming only volumes"
as2 POST volumes "$(vol_body 2)"
expect_status 413 "P2 create over the gigabytes quota"
grep -q 'gigabytes quota is 3 GiB' <<<"$BODY" && grep -q '2 GiB are in use' <<<"$BODY" &&
  grep -q 'requested 2 GiB' <<<"$BODY" || fail "gigabytes 413 lacks the numbers: $BODY"
TOKEN=$T2 PROJECT=$P2 wait_field "volumes/$V21" .volume.status available
as2 POST "volumes/$V21/action" '{"os-extend": {"new_size": 3}}'
expect_status 413 "os-extend over the gigabytes quota"
grep -q 'gigabytes quota' <<<"$BODY" || fail "extend 413 does not name the quota: $BODY"
as2 GET "volumes/$V21"
expect_eq "$(jget .volume.size)/$(jget .volume.status)" 1/available "refused extend changed nothing"
as2 POST "volumes/$V21/action" '{"os-extend": {"new_size": 2}}'
expect_status 202 "os-extend to the last GiB"
TOKEN=$T2 PROJECT=$P2 wait_field "volumes/$V21" .volume.status available
expect_eq "$(usage_of "$T2" "$P2")" 2/3 "P2 usage after extend"

# --- usage goes down after a delete
TOKEN=$T2 PROJECT=$P2 wait_field "volumes/$V22" .volume.status available
as2 DELETE "volumes/$V22"
expect_status 202 "P2 delete"
TOKEN=$T2 PROJECT=$P2 wait_gone "volumes/$V22" || true
expect_eq "$(usage_of "$T2" "$P2")" 1/2 "P2 usage after delete"
as2 POST volumes "$(vol_body 1)"
expect_status 202 "the freed GiB is usable again"
V23=$(jget .volume.id)

# --- concurrent creates racing for the last slot: exactly one wins
asop PUT "os-quota-sets/$P2" '{"quota_set": {"volumes": 3, "gigabytes": -1}}'
expect_status 200 "one slot left, gigabytes unlimited"
pids=()
for i in $(seq 1 8); do
  curl -s -o "$TMP/race$i.body" -w '%{http_code}' -X POST -H "X-Auth-Token: $T2" \
    -H 'Content-Type: application/json' --data-binary "$(vol_body 1 az1 "race$i")" \
    "$URL/v2/$P2/volumes" >"$TMP/race$i.code" &
  pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the daemon is a background job too
codes=$(for i in $(seq 1 8); do cat "$TMP/race$i.code"; echo; done | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
expect_eq "$codes" "202:1 413:7 " "8 concurrent creates for 1 slot"
as2 GET volumes
expect_eq "$(jget '.volumes | length')" 3 "P2 volumes after the race"

# --- reset to the defaults
asop DELETE "os-quota-sets/$P2"
expect_status 200 "operator DELETE"
asop GET "os-quota-sets/$P2"
expect_quota 4 100 "defaults again after DELETE"

# --- both sides of a pair count: a group extend adds its step twice
PV=$(create_volume az1 1 prod)
DV=$(create_volume az2 1 dr)
RP=$(create_pair "$PV" "$DV")
wait_pair_active "$RP"
GID=$(create_group qgroup "$RP")
u=$(usage_of "$TOKEN" "$PROJECT")
expect_eq "$u" 3/3 "project 1 usage with a pair (both volumes count)"
asop PUT "os-quota-sets/$PROJECT" '{"quota_set": {"gigabytes": 4}}'
expect_status 200 "one GiB of room for project 1"
group_action "$GID" os-extend-replication-volumes "{\"replications\": [{\"id\": \"$RP\", \"new_size\": 2}]}"
expect_status 413 "group extend needing 2 GiB (both sides) with 1 left"
grep -q 'requested 2 GiB' <<<"$BODY" || fail "group extend 413 does not count both sides: $BODY"
api GET "volumes/$PV"
expect_eq "$(jget .volume.size)/$(jget .volume.status)" 1/available "refused group extend changed nothing"
asop PUT "os-quota-sets/$PROJECT" '{"quota_set": {"gigabytes": 5}}'
group_action "$GID" os-extend-replication-volumes "{\"replications\": [{\"id\": \"$RP\", \"new_size\": 2}]}"
expect_status 200 "group extend with exactly 2 GiB of room"
expect_eq "$(usage_of "$TOKEN" "$PROJECT")" 3/5 "project 1 usage after the group extend"

# --- capacity: a size the file system cannot hold is refused at request time
asop PUT "os-quota-sets/$PROJECT" '{"quota_set": {"volumes": -1, "gigabytes": -1}}'
if truncate -s 32T "$DATA/az1/.probe" 2>/dev/null; then
  rm -f "$DATA/az1/.probe"
  log "the test file system holds 32 TiB sparse files: only the overcommit refusal is checked"
else
  api POST volumes "$(vol_body 32768)"
  expect_status 400 "32 TiB volume on $(stat -f -c %T "$DATA/az1")"
  grep -q 'file system' <<<"$BODY" || fail "32 TiB 400 does not name the file system: $BODY"
  api POST "volumes/$V11/action" '{"os-extend": {"new_size": 32768}}'
  expect_status 400 "extend to 32 TiB"
fi
api GET volumes
expect_eq "$(jget '.volumes | length')" 3 "nothing created by the capacity refusals"

# The free-space check: with a tiny overcommit ratio even 1 GiB is too much.
stop_daemon
printf '[DEFAULT]\ncapacity_overcommit = 0.000000001\n' >"$CONF"
start_daemon -c "$CONF"
api POST volumes "$(vol_body 1)"
expect_status 409 "create beyond free space x capacity_overcommit"
grep -q 'capacity_overcommit' <<<"$BODY" && grep -q 'GiB are provisioned' <<<"$BODY" ||
  fail "capacity 409 lacks the numbers: $BODY"
api GET volumes
expect_eq "$(jget '.volumes | length')" 3 "nothing created by the 409"
# The overrides survived the restart; the defaults are the new config's.
api GET "os-quota-sets/$PROJECT"
expect_quota -1 -1 "project 1 overrides after restart"
asop GET "os-quota-sets/$P2/defaults"
expect_quota 1000 102400 "defaults of the new config (the built-in ones)"

finish
