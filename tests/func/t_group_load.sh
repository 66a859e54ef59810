#!/usr/bin/env bash
# shellcheck disable=SC2119
# Load on the group action endpoint: 32 concurrent curl clients issue pause,
# sync and get on the same two groups for EVSREP_LOAD_SECONDS (default 30)
# while seqwriter keeps writing to one group's production disks. No 5xx, no
# dropped connection; every pause/sync is exactly 200 with an empty body (the
# groups stay `available`, where the table allows both); the writer never
# sees a failed write; afterwards each group is in a state the table allows
# and a pause + sync brings every DR disk to byte equality.
. "$(dirname "$0")/lib.sh"
SW=$TOOLS/seqwriter
SC=$TOOLS/seqcheck
if [ ! -x "$SW" ] || [ ! -x "$SC" ]; then die "seqwriter/seqcheck not built in $TOOLS"; fi
SECS=${EVSREP_LOAD_SECONDS:-30}
CLIENTS=${EVSREP_LOAD_CLIENTS:-32}
PAUSE=os-stop-replication-consistency-group
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group

start_daemon

declare -a P D R PU DU
for i in 1 2 3 4; do
  P[i]=$(create_volume az1 1 "lp$i")
  D[i]=$(create_volume az2 1 "ld$i")
  PU[i]=$(nbd_uri az1 "${P[i]}")
  DU[i]=$(nbd_uri az2 "${D[i]}")
  R[i]=$(create_pair "${P[i]}" "${D[i]}" "lpair$i")
done
for i in 1 2 3 4; do wait_pair_active "${R[i]}"; done
G1=$(create_group load1 "${R[1]}" "${R[2]}")
G2=$(create_group load2 "${R[3]}" "${R[4]}")
for g in "$G1" "$G2"; do
  group_action "$g" "$SYNC"
  expect_status 200 "initial sync"
  wait_through "$RCGS/$g" "$G.replication_status" active copying 120
done

# client N: loop until the deadline; one line per request: "op group code".
client() {
  local n=$1 end=$2 op gid code path data
  local out="$TMP/client.$n" body="$TMP/client.$n.body"
  : >"$out"
  RANDOM=$((n * 7919))
  while [ "$(date +%s)" -lt "$end" ]; do
    if [ $((RANDOM % 2)) = 0 ]; then gid=$G1; else gid=$G2; fi
    case $((RANDOM % 3)) in
      0) op="pause"; data="{\"$PAUSE\": null}" ;;
      1) op="sync"; data="{\"$SYNC\": null}" ;;
      2) op="get"; data="" ;;
    esac
    if [ "$op" = get ]; then
      path="$URL/v2/$PROJECT/$RCGS/$gid"
      code=$(curl -s -m 30 -o "$body" -w '%{http_code}' -H "X-Auth-Token: $TOKEN" "$path") || code=000
    else
      path="$URL/v2/$PROJECT/$RCGS/$gid/action"
      code=$(curl -s -m 30 -o "$body" -w '%{http_code}' -X POST -H "X-Auth-Token: $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "$data" "$path") || code=000
      [ "$code" != 200 ] || [ ! -s "$body" ] || code=200-with-body
    fi
    printf '%s %s %s\n' "$op" "$gid" "$code" >>"$out"
    if [ "$code" != 200 ]; then
      { printf '%s %s %s: ' "$op" "$gid" "$code"; head -c 300 "$body"; echo; } >>"$TMP/client.$n.errors"
    fi
    if [ "$op" = get ] && [ "$code" = 200 ]; then
      # Only statuses the table allows may be seen while a client polls.
      jq -r '.replication_consistency_group | "\(.status) \(.replication_status)"' "$body" >>"$TMP/client.$n.states" 2>/dev/null ||
        echo "unparsable" >>"$TMP/client.$n.states"
    fi
  done
}

rm -f "$TMP/stop"
"$SW" -q -R 77 -r 8M -s "$TMP/stop" -t $((SECS + 120)) "${PU[1]}" "${PU[2]}" >"$TMP/sw.out" 2>"$TMP/sw.err" &
WP=$!
end=$(($(date +%s) + SECS))
cpids=()
for n in $(seq 1 "$CLIENTS"); do
  client "$n" "$end" &
  cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || true; done
touch "$TMP/stop"
rc=0
wait "$WP" || rc=$?
F=$(cat "$TMP/sw.out")
expect_eq "$rc" 0 "writer exit under pause/sync load (client writes must never fail): $(cat "$TMP/sw.err")"

cat "$TMP"/client.*[0-9] >"$TMP/all" # client.N only, not .body/.errors/.states
total=$(wc -l <"$TMP/all")
log "$total requests from $CLIENTS clients in $SECS s; by op and code:"
awk '{print $1, $3}' "$TMP/all" | sort | uniq -c | while read -r line; do log "  $line"; done
[ "$total" -gt "$CLIENTS" ] || fail "only $total requests completed"
n5xx=$(awk '$3 ~ /^5/' "$TMP/all" | wc -l)
n000=$(awk '$3 == "000"' "$TMP/all" | wc -l)
nbad=$(awk '$3 != "200"' "$TMP/all" | wc -l)
[ "$n5xx" -eq 0 ] || fail "$n5xx responses were 5xx"
[ "$n000" -eq 0 ] || fail "$n000 requests got no response (connection refused/reset or 30 s timeout)"
if [ "$nbad" -ne 0 ]; then
  fail "$nbad requests were not exactly 200 (pause and sync of an available group are always allowed); first ones:"
  cat "$TMP"/client.*.errors 2>/dev/null | head -n 10 >&2
fi
# States seen by pollers: status always available; replication one of the table's.
bad_states=$(cat "$TMP"/client.*.states 2>/dev/null | sort | uniq -c |
  grep -vE ' available (active|active-stopped|copying|inactive)$' || true)
[ -z "$bad_states" ] || fail "states seen while polling that the table does not allow here: $bad_states"

# After the load: each group available, in an allowed replication state,
# membership intact.
for g in "$G1" "$G2"; do
  api GET "$RCGS/$g"
  expect_status 200 "group after load"
  expect_eq "$(jget "$G.status")" available "group status after load"
  [[ "$(jget "$G.replication_status")" =~ ^(active|active-stopped|copying|inactive)$ ]] ||
    fail "group replication_status after load: $(jget "$G.replication_status")"
  expect_eq "$(jget "$G.fault_level")" 0 "fault_level after load"
done
api GET "$RCGS/$G1"
expect_eq "$(jget "$G.replication_ids | sort | join(\",\")")" "$(printf '%s\n' "${R[1]}" "${R[2]}" | sort | paste -sd,)" "G1 members after load"
for i in 1 2 3 4; do
  api GET "$PAIRS/${R[i]}"
  expect_eq "$(jget .replication.status)" available "pair $i status after load"
done
# Production got every acknowledged write.
"$SC" -q -R 77 -r 8M -a "$F" -b "$F" "${PU[1]}" "${PU[2]}" >/dev/null 2>"$TMP/sc.err" ||
  fail "production after load: $(cat "$TMP/sc.err")"

# The pause right now lands in a paused state; a sync converges to equality.
for g in "$G1" "$G2"; do
  group_action "$g" "$PAUSE"
  expect_status 200 "pause after load"
  api GET "$RCGS/$g"
  [[ "$(jget "$G.replication_status")" =~ ^(active-stopped|inactive)$ ]] ||
    fail "right after pause: $(jget "$G.replication_status")"
  group_action "$g" "$SYNC"
  expect_status 200 "sync after load"
  wait_through "$RCGS/$g" "$G.replication_status" active 'copying|inactive' 120
done
for i in 1 2 3 4; do nbd_cmp "${PU[i]}" "${DU[i]}" "P$i vs D$i after load"; done

finish
