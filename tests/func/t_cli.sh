#!/usr/bin/env bash
# The evsrep CLI against the real daemon, black box (docs/cli.md):
#  1. --help on every level, usage errors (exit 1), settings from env and flags;
#  2. every verb of volume, pair and group, with -o json parsed by jq;
#  3. the exit code of every error class: 400 -> 1, 404 -> 2, 409 -> 3,
#     401/403 -> 4, unreachable -> 5, --timeout -> 6, SIGINT -> 7;
#  4. --wait reaching the target state of every asynchronous verb;
#  5. progress of group sync and reprotect on real dirty data (64 MiB written
#     with nbdcopy to each paused production volume): plain lines when stdout
#     is not a terminal, one updating line on a terminal (script(1));
#  6. SIGINT while waiting: exit 7, and the sync still completes.
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
CLI=$EVSREP_BUILD/evsrep
[ -x "$CLI" ] || die "no CLI at $CLI"
M=$((1024 * 1024))
NOSUCH=6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10
T0=$SECONDS
step() { log "=== $* (t=$((SECONDS - T0))s)"; }

# ev ARGS...: run the CLI; sets RC, OUT (stdout), ERR (stderr).
ev() {
  RC=0
  "$CLI" "$@" >"$TMP/out" 2>"$TMP/err" || RC=$?
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
# ok WHAT ARGS...: the CLI must exit 0.
ok() {
  local what=$1
  shift
  ev "$@"
  [ "$RC" = 0 ] || fail "$what: exit $RC: $ERR"
}
# rc_is WANT WHAT ARGS...: the CLI must exit WANT and say why on stderr.
rc_is() {
  local want=$1 what=$2
  shift 2
  ev "$@"
  [ "$RC" = "$want" ] || fail "$what: want exit $want, got $RC: $OUT $ERR"
  [ "$want" = 0 ] || [ -n "$ERR" ] || fail "$what: exit $RC without a message on stderr"
}
# oj FILTER: jq -r on OUT (which must be JSON).
oj() { printf '%s' "$OUT" | jq -r "$1"; }
# ojson WHAT: OUT must parse as one JSON value.
ojson() { printf '%s' "$OUT" | jq -e . >/dev/null 2>&1 || fail "$1: -o json output is not JSON: $OUT"; }
chk() { expect_eq "$@" || true; }

# write_prod MIB: MIB of random data at offset 0 of every production volume.
write_prod() {
  local v
  head -c $(($1 * M)) /dev/urandom >"$TMP/rand"
  for v in "${PRODS[@]}"; do
    nbdcopy -- "$TMP/rand" "$(nbd_uri "$PROD_AZ" "$v")" || fail "nbdcopy to $v failed"
  done
  rm -f "$TMP/rand"
}

# progress_lines FILE WHAT: every progress line of a non-TTY --wait is plain
# ("copying 42% 123 bytes 50.1 MiB/s eta 12s"), at least one shows copying,
# the last one shows active 100%; sets PBYTES to the bytes of the last line
# (0 when there is none). Called in the test's own shell, never inside $(...):
# its checks must count.
PLINE='^(copying|active) [0-9]+% [0-9]+ bytes (- B/s|[0-9.]+ (B|KiB|MiB|GiB|TiB)/s) eta ([0-9hms]+|-)$'
progress_lines() {
  local f=$1 what=$2 last
  PBYTES=0
  grep -E '^(copying|active) ' "$f" >"$TMP/plines" || true
  if ! grep -q '^copying ' "$TMP/plines"; then fail "$what: no copying progress line: $(cat "$f")"; fi
  if grep -qvE "$PLINE" "$TMP/plines"; then fail "$what: malformed progress line: $(grep -vE "$PLINE" "$TMP/plines")"; fi
  if grep -q $'\r' "$f"; then fail "$what: carriage return in non-TTY output"; fi
  last=$(tail -n 1 "$TMP/plines")
  [[ "$last" =~ ^active\ 100%\ ([0-9]+)\ bytes ]] || { fail "$what: last progress line is '$last'"; return 0; }
  PBYTES=${BASH_REMATCH[1]}
}

start_daemon
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT

# --- 1. help, usage, settings -------------------------------------------------
step "help and usage"
ok "--help" --help
grep -q 'Exit codes' <<<"$OUT" || fail "--help does not document exit codes"
grep -q 'EVS_TOKEN' <<<"$OUT" || fail "--help does not mention EVS_TOKEN"
declare -A VERBS=(
  [volume]="create list show delete extend connect"
  [pair]="create list show delete"
  [group]="create list show update delete pause sync reverse failover reprotect extend"
)
for noun in volume pair group; do
  ok "$noun --help" "$noun" --help
  nhelp=$OUT
  for verb in ${VERBS[$noun]}; do
    grep -qE "^  $verb " <<<"$nhelp" || fail "$noun --help does not list $verb"
    ok "$noun $verb --help" "$noun" "$verb" --help
    grep -q "^Usage: evsrep $noun $verb" <<<"$OUT" || fail "$noun $verb --help: no usage line"
    grep -q '7  interrupted' <<<"$OUT" || fail "$noun $verb --help: no exit codes"
  done
done
rc_is 1 "no arguments"
rc_is 1 "unknown noun" frobnicate list
rc_is 1 "noun without verb" group
rc_is 1 "unknown verb" group explode
rc_is 1 "option the verb does not take" volume list --size 3
rc_is 1 "--wait on a list" pair list --wait
rc_is 1 "unknown option" volume list --bogus
rc_is 1 "bad -o" -o yaml volume list
rc_is 1 "missing ID" volume show
rc_is 1 "bad --size" volume create --size x --az az1
rc_is 1 "missing --az" volume create --size 1
rc_is 1 "no URL" --url "" volume list
EVS_URL="" rc_is 1 "no URL in env" volume list
EVS_TOKEN="" rc_is 1 "no token" volume list
EVS_PROJECT="" rc_is 1 "no project with a base URL" volume list
# The URL may carry /v2/{project}; flags win over the environment.
EVS_PROJECT="" ok "URL with /v2/project" -o json volume list --url "$URL/v2/$PROJECT"
ojson "URL with /v2/project"
EVS_TOKEN=wrong ok "--token over EVS_TOKEN" volume list --token "$TOKEN"
env -u EVS_URL -u EVS_TOKEN -u EVS_PROJECT "$CLI" --url "$URL" --token "$TOKEN" --project "$PROJECT" \
  volume list >/dev/null || fail "flags only (no environment) failed"

# --- 3. error classes -----------------------------------------------------------
step "exit codes of each error class"
rc_is 1 "400 (unknown AZ)" volume create --size 1 --az nosuch-az
grep -q 'HTTP 400' <<<"$ERR" || fail "400: stderr does not show the API error: $ERR"
rc_is 2 "404 volume" volume show $NOSUCH
rc_is 2 "404 pair" pair show $NOSUCH
rc_is 2 "404 group" group pause $NOSUCH
rc_is 4 "401" --token not-a-token volume list
grep -q 'HTTP 401' <<<"$ERR" || fail "401: stderr: $ERR"
rc_is 4 "403 (other project)" --project 00000000000000000000000000000000 volume list
rc_is 5 "unreachable" --url http://127.0.0.1:1 volume list

# --- 2./4. volumes -------------------------------------------------------------
step "volumes"
PROD_AZ=az1
declare -a PRODS DRS PIDS
for i in 1 2; do
  ok "volume create p$i" volume create --size 1 --az az1 --name "p$i" --wait -o json
  ojson "volume create"
  chk "$(oj .volume.status)" available "volume create --wait status"
  PRODS[i]=$(oj .volume.id)
  ok "volume create d$i" volume create --size 1 --az az2 --name "d$i" --wait -o json
  DRS[i]=$(oj .volume.id)
done
ok "volume create (no wait)" -o json volume create --size 1 --az az1 --name scratch --description s \
  --type SSD
chk "$(oj .volume.name)" scratch "volume create name"
[[ "$(oj .volume.status)" =~ ^(creating|available)$ ]] || fail "volume create status $(oj .volume.status)"
S=$(oj .volume.id)
wait_field "volumes/$S" .volume.status available 30
ok "volume list" volume list
grep -q "^ID .*NAME .*SIZE_GIB" <<<"$OUT" || fail "volume list: no table header: $OUT"
chk "$(grep -c -- '-.*-.*-.*-' <<<"$OUT")" 5 "volume list rows"
ok "volume list json" -o json volume list --name scratch
chk "$(oj '.volumes | length')" 1 "volume list --name"
chk "$(oj '.volumes[0].id')" "$S" "volume list --name id"
ok "volume list --az" -o json volume list --az az2 --status available
chk "$(oj '.volumes | length')" 2 "volume list --az az2"
ok "volume show" volume show "$S"
grep -qE '^availability_zone +az1$' <<<"$OUT" || fail "volume show table: $OUT"
ok "volume show json" -o json volume show "$S"
chk "$(oj .volume.id)" "$S" "volume show json"
ok "volume extend" -o json volume extend "$S" --size 2 --wait
chk "$(oj .volume.size)/$(oj .volume.status)" 2/available "volume extend --wait"
rc_is 1 "volume extend not larger" volume extend "$S" --size 1
ok "volume connect" volume connect "$S"
grep -qE "^uri +nbd://" <<<"$OUT" || fail "volume connect table: $OUT"
ok "volume connect json" -o json volume connect "$S"
# Each connect is a new attachment with its own export name.
chk "$(oj .connection_info.data.uri)" "nbd://$NBD_AZ1/$(oj .connection_info.data.export_name)" "volume connect uri"
[[ "$(oj .connection_info.data.export_name)" =~ ^[0-9a-f]{40}$ ]] || fail "volume connect export name"
CONNECT_URI=$(oj .connection_info.data.uri)
qemu-io -f raw -c 'read 0 4k' "$CONNECT_URI" >/dev/null || fail "the URI of volume connect opens the volume"
chk "$(oj .connection_info.data.read_only)" false "volume connect read_only"
ok "volume disconnect" volume disconnect "$S"
grep -q "every attachment revoked" <<<"$OUT" || fail "volume disconnect output: $OUT"
if qemu-io -f raw -c 'read 0 4k' "$CONNECT_URI" >/dev/null 2>&1; then fail "URI still opens after volume disconnect"; fi
rm -f "$TMP/attach.$S" # lib.sh's cached attachment was revoked too
ok "volume delete --wait" volume delete "$S" --wait
grep -q deleted <<<"$OUT" || fail "volume delete output: $OUT"
rc_is 2 "deleted volume is gone" volume show "$S"
ok "volume delete (no wait)" volume create --size 1 --az az2 --name s2 --wait -o json
S=$(oj .volume.id)
ok "volume delete" -o json volume delete "$S"
wait_gone "volumes/$S" 30

# --- pairs ----------------------------------------------------------------------
step "pairs"
for i in 1 2; do
  ok "pair create $i" -o json pair create --production "${PRODS[i]}" --dr "${DRS[i]}" --name "pr$i" --wait
  ojson "pair create"
  chk "$(oj .replication.status)/$(oj .replication.replication_status)" available/active \
    "pair create --wait"
  chk "$(oj .replication.priority_station)" az1 "pair create default --az"
  PIDS[i]=$(oj .replication.id)
done
rc_is 3 "409 volume in a pair" volume delete "${PRODS[1]}"
grep -q 'HTTP 409' <<<"$ERR" || fail "409: stderr: $ERR"
rc_is 3 "409 already paired" pair create --production "${PRODS[1]}" --dr "${DRS[2]}"
rc_is 1 "400 pair in one AZ" pair create --production "${PRODS[1]}" --dr "${PRODS[2]}" --az az1
rc_is 2 "404 pair create, volume missing" pair create --production $NOSUCH --dr "${DRS[1]}" --az az1
ok "pair list" pair list
chk "$(grep -c ' pr[12] ' <<<"$OUT")" 2 "pair list rows"
ok "pair list json" -o json pair list --volume "${DRS[2]}"
chk "$(oj '[.replications[].id] | join(",")')" "${PIDS[2]}" "pair list --volume"
ok "pair show" pair show "${PIDS[1]}"
grep -qE "^volume_ids +${PRODS[1]},${DRS[1]}$" <<<"$OUT" || fail "pair show table: $OUT"
ok "pair show json" -o json pair show "${PIDS[1]}"
chk "$(oj .replication.progress)" 100 "pair show progress"
# A throwaway pair for delete (with and without --wait).
ok "scratch volumes" -o json volume create --size 1 --az az1 --wait
SA=$(oj .volume.id)
ok "scratch volumes" -o json volume create --size 1 --az az2 --wait
SB=$(oj .volume.id)
ok "pair create (no wait)" -o json pair create --production "$SA" --dr "$SB" --az az1
SP=$(oj .replication.id)
[[ "$(oj .replication.status)" =~ ^(creating|available)$ ]] || fail "pair create status $(oj .replication.status)"
wait_through "$PAIRS/$SP" .replication.status available creating 60
ok "pair delete --wait" pair delete "$SP" --wait
rc_is 2 "deleted pair is gone" pair show "$SP"
ok "volumes stay" volume delete "$SA" --wait
ok "volumes stay" volume delete "$SB" --wait

# --- groups ---------------------------------------------------------------------
step "groups"
ok "group create" -o json group create --pair "${PIDS[1]}" --pair "${PIDS[2]}" --name g1 --wait
ojson "group create"
chk "$(oj .replication_consistency_group.status)" available "group create --wait"
chk "$(oj '.replication_consistency_group.replication_ids | length')" 2 "group create pairs"
G=$(oj .replication_consistency_group.id)
ok "group list" group list
grep -qE "^$G +g1 +available" <<<"$OUT" || fail "group list table: $OUT"
ok "group list json" -o json group list --volume "${PRODS[2]}"
chk "$(oj '[.replication_consistency_groups[].id] | join(",")')" "$G" "group list --volume"
ok "group show" group show "$G"
grep -q "${PIDS[2]}  pr2" <<<"$OUT" || fail "group show: member pairs missing: $OUT"
ok "group show json" -o json group show "$G"
chk "$(oj .replication_consistency_group.name)" g1 "group show json"
ok "group update remove" -o json group update "$G" --name g2 --remove "${PIDS[2]}" --wait
chk "$(oj .replication_consistency_group.name)/$(oj .replication_consistency_group.status)" \
  g2/available "group update --wait"
chk "$(oj '.replication_consistency_group.replication_ids | length')" 1 "group update --remove"
ok "group update add" -o json group update "$G" --add "${PIDS[2]}" --description back --wait
chk "$(oj '.replication_consistency_group.replication_ids | length')" 2 "group update --add"
rc_is 1 "group update without changes" group update "$G"
rc_is 3 "409 reverse while paused" group reverse "$G"
rc_is 3 "409 delete with pairs" group delete "$G"
rc_is 3 "409 pair delete in a group" pair delete "${PIDS[1]}"

# --- 5. sync progress on real dirty data ---------------------------------------
step "group sync --wait with 64 MiB dirty per pair (non-TTY progress)"
ok "pause" -o json group pause "$G" --wait
chk "$(oj .replication_consistency_group.replication_status)" active-stopped "pause"
write_prod 64
ok "pair dirty" -o json pair show "${PIDS[1]}"
[ "$(oj .replication.dirty_bytes)" -ge $((64 * M)) ] || fail "pair not dirty after writes: $OUT"
ts=$SECONDS
"$CLI" group sync "$G" --wait >"$TMP/sync.out" 2>"$TMP/sync.err" || fail "group sync --wait: exit $?: $(cat "$TMP/sync.err")"
progress_lines "$TMP/sync.out" "group sync"
bytes=$PBYTES
[ "$bytes" -ge $((128 * M)) ] || fail "group sync: progress shows $bytes bytes copied, want >= 128 MiB"
n=$(grep -c '^copying ' "$TMP/sync.out" || true)
[ "$n" -le $((SECONDS - ts + 2)) ] || fail "group sync: $n progress lines in $((SECONDS - ts)) s (want one a second)"
grep -qE '^replication_status +active$' "$TMP/sync.out" || fail "group sync: final table: $(cat "$TMP/sync.out")"
log "  progress: $(tr '\n' '|' <"$TMP/plines")"
ok "sync no-op" -o json group sync "$G" --wait
chk "$(oj .replication_consistency_group.replication_status)" active "sync when active"

step "TTY progress (script)"
ok "pause" group pause "$G"
write_prod 64
# script(1) (bsdutils, installed by scripts/deps.sh) is a precondition, not optional.
command -v script >/dev/null || die "script(1) missing (Debian package bsdutils): TTY mode cannot be checked"
script -qec "'$CLI' group sync '$G' --wait" "$TMP/tty.out" >/dev/null 2>&1 || fail "sync under script failed"
grep -q $'\r\033\\[K' "$TMP/tty.out" || fail "TTY progress: no in-place line update: $(cat -v "$TMP/tty.out" | head -5)"
grep -qE 'active +\[#+\] +100%' "$TMP/tty.out" || fail "TTY progress: no final 100% bar: $(cat -v "$TMP/tty.out" | head -5)"
if grep -qE '^copying [0-9]+% ' "$TMP/tty.out"; then fail "TTY progress: plain lines on a terminal"; fi

step "-o json group sync --wait: JSON on stdout, progress on stderr"
ok "pause" group pause "$G"
write_prod 64
"$CLI" -o json group sync "$G" --wait >"$TMP/js.out" 2>"$TMP/js.err" || fail "-o json sync --wait: exit $?"
chk "$(jq -r .replication_consistency_group.replication_status <"$TMP/js.out" 2>&1)" active "-o json sync --wait stdout"
progress_lines "$TMP/js.err" "-o json sync progress on stderr"
bytes=$PBYTES
[ "$bytes" -ge $((128 * M)) ] || fail "-o json sync: progress shows $bytes bytes"

step "--timeout (exit 6) and SIGINT (exit 7) while waiting"
ok "pause" group pause "$G"
write_prod 64
rc_is 6 "--timeout 0" group sync "$G" --wait --timeout 0
grep -q 'timed out' <<<"$ERR" || fail "timeout message: $ERR"
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active 60
ok "pause" group pause "$G"
write_prod 128
# The first poll sees copying, then the CLI sleeps (--interval 30): SIGINT
# lands while it waits, wherever the copy is by then.
"$CLI" group sync "$G" --wait --interval 30 >"$TMP/int.out" 2>"$TMP/int.err" &
cpid=$!
for _ in $(seq 1 100); do
  [ -s "$TMP/int.out" ] && break
  kill -0 $cpid 2>/dev/null || break
  sleep 0.02
done
kill -INT $cpid 2>/dev/null || true
rc=0
wait $cpid || rc=$?
chk "$rc" 7 "SIGINT during --wait: exit code"
grep -q 'interrupted' "$TMP/int.err" || fail "SIGINT: no message: $(cat "$TMP/int.err")"
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active 60
ok "sync completed after SIGINT" -o json pair show "${PIDS[1]}"
chk "$(oj .replication.dirty_bytes)" 0 "dirty bytes after the interrupted wait"

# --- DR verbs -------------------------------------------------------------------
step "reverse, failover, reprotect --wait (progress), extend"
ok "reverse" -o json group reverse "$G" --wait
chk "$(oj .replication_consistency_group.priority_station)/$(oj .replication_consistency_group.status)" \
  az2/available "reverse"
ok "reverse back" -o json group reverse "$G"
chk "$(oj .replication_consistency_group.priority_station)" az1 "reverse back"
ok "failover" -o json group failover "$G" --wait
chk "$(oj .replication_consistency_group.status)/$(oj .replication_consistency_group.priority_station)" \
  failovered/az2 "failover"
# Write on the new production (the az2 disks) so reprotect has data to copy.
PROD_AZ=az2
AZ1_VOLS=("${PRODS[@]}")
PRODS=("${DRS[@]}")
write_prod 64
"$CLI" group reprotect "$G" --wait >"$TMP/rep.out" 2>"$TMP/rep.err" || fail "group reprotect --wait: exit $?: $(cat "$TMP/rep.err")"
progress_lines "$TMP/rep.out" "group reprotect"
bytes=$PBYTES
[ "$bytes" -ge $((128 * M)) ] || fail "reprotect: progress shows $bytes bytes, want >= 128 MiB"
grep -qE '^status +available$' "$TMP/rep.out" || fail "reprotect: final status: $(cat "$TMP/rep.out")"
ok "extend" -o json group extend "$G" --size 2 --wait
ojson "group extend"
ok "extended" -o json volume show "${DRS[1]}"
chk "$(oj .volume.size)" 2 "group extend: volume size"
ok "extend one pair" group extend "$G" --size 3 --pair "${PIDS[2]}"
ok "extended" -o json volume show "${DRS[2]}"
chk "$(oj .volume.size)" 3 "group extend --pair: volume size"
rc_is 1 "extend not larger" group extend "$G" --size 3 --pair "${PIDS[2]}"

# --- teardown through the CLI ----------------------------------------------------
step "delete everything with --wait"
ok "pause" group pause "$G"
ok "remove pairs" group update "$G" --remove "${PIDS[1]}" --remove "${PIDS[2]}" --wait
ok "group delete" group delete "$G" --wait
rc_is 2 "deleted group is gone" group show "$G"
for i in 1 2; do
  ok "pair delete" -o json pair delete "${PIDS[i]}" --wait
  ok "volume delete" volume delete "${AZ1_VOLS[i-1]}" --wait
  ok "volume delete" volume delete "${DRS[i]}" --wait
done
ok "empty" -o json volume list
chk "$(oj '.volumes | length')" 0 "volumes left"

log "done in $((SECONDS - T0)) s"
finish
