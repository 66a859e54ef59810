#!/usr/bin/env bash
# shellcheck disable=SC2119
# GET /metrics: authentication (401 without a token unless metrics_public),
# who sees which project's series (operator token: all; tenant token: its
# own project's; no token: none, no ids at all), the Prometheus text format
# (tests/func/metrics_check.py: a strict line check and the
# prometheus_client parser), route labels from a fixed set (unmatched paths
# and unknown methods are "other"), and values that move as a group is
# paused, written and synced.
. "$(dirname "$0")/lib.sh"
# Three tokens before the first start: tenant A (the first line: lib.sh's
# TOKEN/PROJECT), tenant B, and an operator (its own project O).
TOKEN_B=bbbb$RANDOM$RANDOM PROJ_B=projectb$RANDOM
TOKEN_OP=oooo$RANDOM$RANDOM PROJ_OP=projectop$RANDOM
mkdir -p "$DATA"
(umask 077 && printf '# tokens\ntenantatoken%s projecta%s\n%s %s\n%s %s operator\n' \
  "$RANDOM" "$RANDOM" "$TOKEN_B" "$PROJ_B" "$TOKEN_OP" "$PROJ_OP" >"$DATA/tokens")
start_daemon

metrics() { curl -s -H "X-Auth-Token: ${1:-$TOKEN}" -D "$TMP/mh" -o "$TMP/m" -w '%{http_code}' "$URL/metrics"; }
check_format() { # check_format WHAT
  /usr/bin/python3 "$(dirname "$0")/metrics_check.py" "$TMP/m" || fail "$1: not valid Prometheus text format"
}
val() { # val REGEX: the value of the first sample line matching REGEX (0 if none)
  grep -E "$1" "$TMP/m" | head -n1 | awk '{print $NF}' | grep . || echo 0
}

# --- auth
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")
expect_eq "$code" 401 "metrics without a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Auth-Token: nope' "$URL/metrics")
expect_eq "$code" 401 "metrics with a bad token"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Auth-Token: $TOKEN" "$URL/metrics")
expect_eq "$code" 405 "POST /metrics"
expect_eq "$(metrics)" 200 "metrics with a token"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$TMP/mh" || fail "metrics content type: $(grep -i content-type "$TMP/mh")"
check_format "empty daemon"
grep -q '^evsrep_dr_write_errors_total [0-9]' "$TMP/m" || fail "label-less counter not rendered as 'name value'"
grep -q '^evsrep_fence_seconds_count [0-9]' "$TMP/m" || fail "label-less histogram count not rendered as 'name_count value'"

# --- route and method labels come from a fixed set: unmatched paths (with or
# without a token) and unknown methods cannot add series
junk() { # junk TAG: 3 x 15 requests that match no route or use a made-up method
  for i in $(seq 1 15); do
    curl -s -o /dev/null "$URL/nope-$1-$RANDOM-$i"
    curl -s -o /dev/null -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/zz$1$RANDOM/$i"
    curl -s -o /dev/null -X "M$1$i" -H "X-Auth-Token: $TOKEN" "$URL/v2/$PROJECT/volumes"
  done
}
series() { grep -c '^evsrep_http_requests_total{' "$TMP/m"; }
junk a
metrics >/dev/null
check_format "after junk requests"
bad=$(grep -o 'route="[^"]*"' "$TMP/m" | sort -u | grep -Ev '^route="(other|/metrics|/v2/\{project\}/[a-z/{}-]+)"$|zz' || true)
[ -z "$bad" ] || fail "route labels outside the fixed set: $bad"
grep -q 'route="other"' "$TMP/m" || fail "unmatched paths are not counted as route=\"other\""
bad=$(grep -o 'method="[^"]*"' "$TMP/m" | sort -u | grep -Ev '^method="(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS|other)"$' || true)
[ -z "$bad" ] || fail "method labels outside the fixed set: $bad"
n1=$(series)
junk b
metrics >/dev/null
expect_eq "$(series)" "$n1" "HTTP series after 45 more unmatched requests"

# --- a group of two pairs
P1=$(create_volume az1 1 mp1); D1=$(create_volume az2 1 md1)
P2=$(create_volume az1 1 mp2); D2=$(create_volume az2 1 md2)
R1=$(create_pair "$P1" "$D1" m1); R2=$(create_pair "$P2" "$D2" m2)
wait_pair_active "$R1"; wait_pair_active "$R2"
G=$(create_group mg "$R1" "$R2")
group_action "$G" os-sync-replication-consistency-group
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active
qemu-io -f raw -c 'write -P 0x11 0 1M' "$(nbd_uri az1 "$P1")" >/dev/null || fail "mirrored write"
metrics >/dev/null
check_format "active group"
expect_eq "$(val "^evsrep_group_replication_status\{group=\"$G\".*status=\"active\"\}")" 1 "group active in metrics"
expect_eq "$(val "^evsrep_group_pairs\{group=\"$G\"\}")" 2 "group pairs"
expect_eq "$(val "^evsrep_pair_progress_percent\{pair=\"$R1\"\}")" 100 "pair progress"
[ "$(val '^evsrep_mirrored_write_seconds_count')" -ge 1 ] || fail "mirrored writes not counted"
[ "$(val '^evsrep_nbd_requests_total\{az="az1",type="write"\}')" -ge 1 ] || fail "NBD writes not counted"
[ "$(val '^evsrep_nbd_bytes_total\{az="az1",dir="written"\}')" -ge 1048576 ] || fail "NBD bytes not counted"
grep -q '^evsrep_http_requests_total{route="/v2/{project}/os-vendor-replication-consistency-groups/{id}",method="GET",code="200"}' "$TMP/m" ||
  fail "API requests not counted by route"

# --- visibility: tenant B owns one pair; A sees only A's, B only B's, the
# operator both
A_TOKEN=$TOKEN A_PROJECT=$PROJECT
TOKEN=$TOKEN_B PROJECT=$PROJ_B
PB=$(create_volume az1 1 mpb); DB=$(create_volume az2 1 mdb)
RB=$(create_pair "$PB" "$DB" mb)
TOKEN=$A_TOKEN PROJECT=$A_PROJECT
projects() { grep -o 'project="[^"]*"' "$TMP/m" | sort -u | tr '\n' ' '; }
metrics "$TOKEN" >/dev/null
check_format "tenant A"
grep -q "pair=\"$R1\"" "$TMP/m" || fail "tenant A does not see its own pair"
grep -q "group=\"$G\"" "$TMP/m" || fail "tenant A does not see its own group"
! grep -q -e "$RB" -e "$PROJ_B" "$TMP/m" || fail "tenant A sees tenant B's pair or project id"
expect_eq "$(projects)" "project=\"$PROJECT\" " "project labels tenant A sees"
metrics "$TOKEN_B" >/dev/null
check_format "tenant B"
grep -q "pair=\"$RB\"" "$TMP/m" || fail "tenant B does not see its own pair"
! grep -q -e "$R1" -e "$R2" -e "$G" -e "$PROJECT" "$TMP/m" || fail "tenant B sees tenant A's ids"
expect_eq "$(projects)" "project=\"$PROJ_B\" " "project labels tenant B sees"
metrics "$TOKEN_OP" >/dev/null
check_format "operator"
grep -q "pair=\"$RB\"" "$TMP/m" && grep -q "pair=\"$R1\"" "$TMP/m" && grep -q "group=\"$G\"" "$TMP/m" ||
  fail "the operator token does not see every project's series"
expect_eq "$(projects)" "$(printf 'project="%s"\nproject="%s"\n' "$PROJECT" "$PROJ_B" | sort | tr '\n' ' ')" "project labels the operator sees"
metrics >/dev/null
fences0=$(val '^evsrep_fence_seconds_count')
copied0=$(val "^evsrep_pair_resync_bytes_total\{pair=\"$R1\"\}")

# --- pause, write, sync: the values move
group_action "$G" os-stop-replication-consistency-group
expect_status 200 pause
qemu-io -f raw -c 'write -P 0x22 8M 256k' "$(nbd_uri az1 "$P1")" >/dev/null || fail "write while paused"
metrics >/dev/null
check_format "paused group"
expect_eq "$(val "^evsrep_group_replication_status\{group=\"$G\".*status=\"active-stopped\"\}")" 1 "paused in metrics"
expect_eq "$(val "^evsrep_group_replication_status\{group=\"$G\".*status=\"active\"\}")" 0 "not active in metrics"
[ "$(val '^evsrep_fence_seconds_count')" -gt "$fences0" ] || fail "fence histogram did not count the pause"
expect_eq "$(val "^evsrep_pair_dirty_bytes\{pair=\"$R1\"\}")" $((4 * 65536)) "dirty bytes after a 256 KiB write"
grep -qE "^evsrep_group_seconds_since_freeze\{group=\"$G\"\} [0-9.]+$" "$TMP/m" || fail "no seconds since freeze"
group_action "$G" os-sync-replication-consistency-group
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active
metrics >/dev/null
expect_eq "$(val "^evsrep_pair_dirty_bytes\{pair=\"$R1\"\}")" 0 "dirty bytes after sync"
expect_eq "$(($(val "^evsrep_pair_resync_bytes_total\{pair=\"$R1\"\}") - copied0))" $((4 * 65536)) "resync bytes counted"

# --- metrics_public: no token needed, and then no project's id is shown
stop_daemon
printf "[DEFAULT]\nmetrics_public = true\n" >"$TMP/pub.conf"
start_daemon --config "$TMP/pub.conf"
code=$(curl -s -o "$TMP/m" -w '%{http_code}' "$URL/metrics")
expect_eq "$code" 200 "public metrics without a token"
check_format "public metrics"
! grep -q -e "$R1" -e "$R2" -e "$G" -e "$RB" -e "$PROJECT" -e "$PROJ_B" -e 'project=' -e 'pair=' -e 'group=' "$TMP/m" ||
  fail "public metrics show project, pair or group ids: $(grep -m3 -e 'project=' -e 'pair=' -e 'group=' "$TMP/m")"
grep -q '^evsrep_nbd_requests_total{az="az1",type="write"}' "$TMP/m" || fail "public metrics lack the service-wide series"
# a valid token still gets its own view on a public endpoint
metrics "$TOKEN_B" >/dev/null
grep -q "pair=\"$RB\"" "$TMP/m" || fail "tenant B's token on public metrics does not see its pair"
# a bad token on a public endpoint is the public view, not more
code=$(curl -s -o "$TMP/m" -w '%{http_code}' -H 'X-Auth-Token: nope' "$URL/metrics")
expect_eq "$code" 200 "public metrics with a bad token"
! grep -q 'project=' "$TMP/m" || fail "a bad token on public metrics sees project ids"
finish
