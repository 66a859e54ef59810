#!/usr/bin/env bash
# The resync throttle and the dry-run estimate of a group (evsrep extensions,
# docs/api.md §4.7 and §4.8, docs/operations.md "Resync throttle" and
# "Dry-run estimate"), through curl and the evsrep CLI:
#   - estimate: 400 for a missing or unknown action or query parameter, 404
#     for an unknown group; nothing to copy while active; after a pause with
#     known writes, exactly the written chunks (bytes, chunks, per pair), and
#     the sync then copies exactly that (the members' bytes_copied delta);
#     reverse copies nothing and is refused while paused (with the 409
#     sentence); reprotect after a failover with writes on the new
#     production: the estimate equals what the reprotect copies;
#   - CLI: sync above --confirm-above refuses without --yes when stdin is
#     not a terminal (nothing done), takes "n" on a terminal as no, goes
#     ahead with --yes;
#   - throttle: 400s for bad settings, 404 for an unknown group; a setting
#     is shown in GET group and /metrics, applied to a resync that is already
#     running (its limit is reported while it copies; lifting it lets the
#     same resync finish, not a restarted one), and kept across a restart.
# No timing thresholds: rates are measured in bench/throttle.sh.
. "$(dirname "$0")/lib.sh"
G=.replication_consistency_group
E=.estimate
T=.replication_consistency_group.resync_throttle
SYNC=os-sync-replication-consistency-group
PAUSE=os-stop-replication-consistency-group
THR=os-set-resync-throttle
CLI=$EVSREP_BUILD/evsrep
[ -x "$CLI" ] || die "no CLI at $CLI"
M=$((1024 * 1024))
NOSUCH=6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10

# ev ARGS...: run the CLI (stdin from /dev/null); sets RC, OUT, ERR.
ev() {
  RC=0
  "$CLI" "$@" </dev/null >"$TMP/out" 2>"$TMP/err" || RC=$?
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
ok() {
  local what=$1
  shift
  ev "$@"
  [ "$RC" = 0 ] || fail "$what: exit $RC: $ERR"
}
# group_bytes_copied: the sum of the members' bytes_copied.
group_bytes_copied() {
  api GET "$RCGS/$GID"
  jget "$G.bytes_copied"
}
estimate() { api GET "$RCGS/$GID/estimate?action=$1"; }
# write_at URI PATTERN OFFSET LEN
write_at() { qemu-io -f raw -c "write -P $2 $3 $4" -c flush "$1" >/dev/null || fail "write $3+$4 to $1"; }

start_daemon
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT
P1=$(create_volume az1 1 tp1)
D1=$(create_volume az2 1 td1)
P2=$(create_volume az1 1 tp2)
D2=$(create_volume az2 1 td2)
R1=$(create_pair "$P1" "$D1" tr1)
R2=$(create_pair "$P2" "$D2" tr2)
wait_pair_active "$R1"
wait_pair_active "$R2"
GID=$(create_group te "$R1" "$R2")
group_action "$GID" "$SYNC"
expect_status 200 "first sync" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120 || true

# ---- estimate: errors --------------------------------------------------------
api GET "$RCGS/$GID/estimate"
expect_status 400 "estimate without action" || true
estimate failover
expect_status 400 "estimate of failover" || true
api GET "$RCGS/$GID/estimate?action=sync&x=1"
expect_status 400 "estimate with an unknown parameter" || true
api GET "$RCGS/$NOSUCH/estimate?action=sync"
expect_status 404 "estimate of an unknown group" || true
api POST "$RCGS/$GID/estimate?action=sync" '{}'
[ "$STATUS" = 405 ] || [ "$STATUS" = 404 ] || fail "POST estimate: want 405/404, got $STATUS"

# ---- estimate: active, nothing to copy -----------------------------------------
estimate sync
expect_status 200 "estimate sync (active)" || true
expect_eq "$(jget "$E.bytes")/$(jget "$E.chunks")/$(jget "$E.allowed")" 0/0/true "estimate sync while active" || true
estimate reverse
expect_eq "$(jget "$E.bytes")/$(jget "$E.allowed")/$(jget "$E.refusal")" 0/true/null "estimate reverse while active" || true

# ---- sync after a pause with known writes --------------------------------------
group_action "$GID" "$PAUSE"
expect_status 200 "pause" || true
# 64 KiB chunks: 3 MiB at 0 = 48 chunks on P1; 1 MiB at 100 MiB = 16 on P2.
write_at "$(nbd_uri az1 "$P1")" 0x11 0 3M
write_at "$(nbd_uri az1 "$P2")" 0x22 100M 1M
estimate sync
expect_eq "$(jget "$E.bytes")/$(jget "$E.chunks")/$(jget "$E.allowed")" $((4 * M))/64/true "estimate sync after the pause" || true
expect_eq "$(jget "$E.replications | map(select(.id == \"$R1\")) | .[0].bytes")" $((3 * M)) "estimate of pair 1" || true
expect_eq "$(jget "$E.replications | map(select(.id == \"$R2\")) | .[0].chunks")" 16 "estimate of pair 2" || true
want=$(jget "$E.bytes")
estimate reverse
expect_eq "$(jget "$E.allowed")" false "estimate reverse while paused: not allowed" || true
[[ "$(jget "$E.refusal")" == *sync* ]] || fail "estimate reverse while paused: the refusal must say what to do: $BODY"

ok "CLI group estimate" group estimate "$GID" sync
grep -qE '^bytes +4194304$' <<<"$OUT" || fail "CLI estimate: no bytes line: $OUT"
grep -q "$R1" <<<"$OUT" || fail "CLI estimate: no per-pair row: $OUT"

# Above the threshold, stdin not a terminal: refused, nothing done.
ev group sync "$GID" --confirm-above 1M
expect_eq "$RC" 1 "sync above --confirm-above without --yes: exit code" || true
grep -q -- '--yes' <<<"$ERR" || fail "refusal must name --yes: $ERR"
grep -q 'estimate: group sync copies 4.0 MiB (64 chunks)' <<<"$ERR" || fail "CLI does not show the estimate: $ERR"
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "group after the refused sync" || true
# On a terminal, "n" is a no.
if command -v script >/dev/null; then
  rc=0
  printf 'n\n' | script -qec "'$CLI' group sync '$GID' --confirm-above 1M" "$TMP/tty.out" >/dev/null 2>&1 || rc=$?
  [ "$rc" != 0 ] || fail "sync answered n on a terminal: exit 0"
  grep -q 'not confirmed' "$TMP/tty.out" || fail "answer n: $(cat -v "$TMP/tty.out")"
  api GET "$RCGS/$GID"
  expect_eq "$(jget "$G.replication_status")" active-stopped "group after answering n" || true
else
  fail "script(1) missing (bsdutils): the terminal prompt cannot be checked"
fi
# Below the threshold (default 10G): no question.
b0=$(group_bytes_copied)
ok "sync with --yes" group sync "$GID" --confirm-above 1M --yes --wait
b1=$(group_bytes_copied)
expect_eq "$((b1 - b0))" "$want" "bytes the sync copied vs its estimate" || true

# ---- throttle: errors ----------------------------------------------------------
api GET "$RCGS/$GID"
expect_eq "$(jget "$T | [.max_mib_per_sec, .min_mib_per_sec, .adaptive, .limit_bytes_per_sec] | map(tostring) | join(\",\")")" \
  "0,0,false,0" "throttle before any setting" || true
for body in '{"max_mib_per_sec": 5, "min_mib_per_sec": 10, "adaptive": true}' '{"max_mib_per_sec": -1}' \
  '{"max_mib_per_sec": 5, "speed": 1}' '[]' '{"adaptive": "yes"}' '{"min_mib_per_sec": 5}'; do
  group_action "$GID" "$THR" "$body"
  expect_status 400 "throttle $body" || true
done
api POST "$RCGS/$NOSUCH/action" "{\"$THR\": {\"max_mib_per_sec\": 5}}"
expect_status 404 "throttle of an unknown group" || true

# ---- throttle: a running resync picks up the setting ---------------------------
ok "CLI throttle 1 MiB/s" -o json group throttle "$GID" --max-mib 1
expect_eq "$(printf '%s' "$OUT" | jq -r .resync_throttle.max_mib_per_sec)" 1 "CLI throttle output" || true
ok "pause" group pause "$GID"
write_at "$(nbd_uri az1 "$P1")" 0x33 0 64M
write_at "$(nbd_uri az1 "$P2")" 0x44 0 64M
estimate sync
want=$(jget "$E.bytes")
expect_eq "$want" $((128 * M)) "estimate before the throttled sync" || true
starts0=$(grep -c 'resync started' "$TMP/daemon.log" || true)
b0=$(group_bytes_copied)
ok "throttled sync" group sync "$GID" --yes
# 128 MiB at 1 MiB/s: the workers copy one 16 MiB batch each, then wait
# 16 s or more, and the whole copy would take two minutes. Unthrottled it
# takes well under a second: the pause below tells the two apart (it can
# only make a broken throttle pass on a very slow machine, never fail a
# working one).
sleep 2
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" copying "group while the throttle holds the resync" || true
expect_eq "$(jget "$T.limit_bytes_per_sec")" "$M" "limit in force while copying" || true
api GET /metrics
grep -qE "^evsrep_group_resync_limit_bytes_per_second\{group=\"$GID\"\} $M\$" <<<"$BODY" ||
  fail "metrics: no limit series for the group: $(grep resync_ <<<"$BODY")"
grep -qE "^evsrep_group_resync_rate_bytes_per_second\{group=\"$GID\"\} [0-9]+\$" <<<"$BODY" ||
  fail "metrics: no rate series for the group"
# Lift it: the same resync goes on at once (held, it would need two
# minutes: longer than the wait below).
ok "CLI throttle off" group throttle "$GID"
api GET "$RCGS/$GID"
expect_eq "$(jget "$T.max_mib_per_sec")/$(jget "$T.limit_bytes_per_sec")" 0/0 "throttle lifted" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying' 60 || true
b1=$(group_bytes_copied)
expect_eq "$((b1 - b0))" "$want" "bytes the throttled sync copied vs its estimate" || true
starts1=$(grep -c 'resync started' "$TMP/daemon.log" || true)
expect_eq "$((starts1 - starts0))" 2 "resyncs started (one per member, none restarted)" || true

# ---- throttle: adaptive, kept across a restart ---------------------------------
ok "CLI throttle adaptive" group throttle "$GID" --max-mib 50 --min-mib 5 --adaptive
grep -qE '^adaptive +true$' <<<"$OUT" || fail "CLI throttle: $OUT"
stop_daemon
start_daemon
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT
api GET "$RCGS/$GID"
expect_eq "$(jget "$T | [.max_mib_per_sec, .min_mib_per_sec, .adaptive, .limit_bytes_per_sec] | map(tostring) | join(\",\")")" \
  "50,5,true,$((50 * M))" "throttle after a restart" || true

# ---- reprotect after a failover ------------------------------------------------
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying' 120 || true
group_action "$GID" os-failover-replication-consistency-group
expect_status 200 "failover" || true
# New production: the az2 disks. 2 MiB at 10 MiB on D1 = 32 chunks.
write_at "$(nbd_uri az2 "$D1")" 0x55 10M 2M
estimate reprotect
expect_eq "$(jget "$E.allowed")" true "estimate reprotect after failover: allowed" || true
want=$(jget "$E.bytes")
[ "$want" -ge $((2 * M)) ] || fail "estimate reprotect: $want bytes, want at least the 2 MiB written"
b0=$(group_bytes_copied)
ok "reprotect" group reprotect "$GID" --yes --wait
b1=$(group_bytes_copied)
expect_eq "$((b1 - b0))" "$want" "bytes the reprotect copied vs its estimate" || true
nbd_cmp "$(nbd_uri az2 "$D1")" "$(nbd_uri az1 "$P1")" "pair 1 after the reprotect" || true
finish
