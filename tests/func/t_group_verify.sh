#!/usr/bin/env bash
# Online verify of a group (os-evsrep-verify, evsrep extension; docs/api.md
# §4.6, docs/design/replication.md "Online verify"):
#  1. on a healthy active group the CLI's `group verify --wait` shows
#     progress, reaches 100% and reports 0 mismatches; GET and /metrics agree;
#  2. a second verify while one runs is 409; a reverse cancels the running
#     verify, which reports `cancelled` naming the action;
#  3. under heavy client writes (fio over NBD on both production disks) a
#     verify reports 0 mismatches: the range locks leave no false positives;
#  4. bytes flipped in the DR files behind the daemon's back are found:
#     exactly those chunks, with their offsets; replication stays active;
#  5. repair on the active group: exactly those chunks are copied (bytes
#     resynced grow by 3 chunks), the pairs come back to active, DR ==
#     production;
#  6. on a paused group verify compares only clean chunks (a chunk written
#     since the pause is skipped as dirty, not reported), repair leaves the
#     group paused with the bits set, and the next sync heals the DR disk.
. "$(dirname "$0")/lib.sh"
: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
CLI=$EVSREP_BUILD/evsrep
[ -x "$CLI" ] || die "no CLI at $CLI"
G=.replication_consistency_group
V="$G.verify"
SYNC=os-sync-replication-consistency-group
PAUSE=os-stop-replication-consistency-group
REVERSE=os-reverse-replication-consistency-group
VERIFY=os-evsrep-verify
CHUNK=65536
LOAD_SECS=${EVSREP_VERIFY_LOAD_SECONDS:-90} # an upper bound: the writers are stopped when the verify is done

# verify_done GID: wait until the group's verify is no longer running.
verify_done() {
  wait_through "$RCGS/$1" "$V.status" "${2:-done}" running "${3:-120}" || true
}
# flip FILE OFFSET: write one 0xde byte at OFFSET of FILE (not through the daemon).
flip() {
  printf '\xde' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none || die "cannot write $1"
}

start_daemon
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT
P1=$(create_volume az1 1 vp1)
D1=$(create_volume az2 1 vd1)
P2=$(create_volume az1 1 vp2)
D2=$(create_volume az2 1 vd2)
PU1=$(nbd_uri az1 "$P1")
PU2=$(nbd_uri az1 "$P2")
DU1=$(nbd_uri az2 "$D1")
DU2=$(nbd_uri az2 "$D2")
qemu-io -f raw -c 'write -P 0x21 0 8M' -c 'write -P 0x22 100M 4M' -c flush "$PU1" >/dev/null ||
  die "seed P1"
qemu-io -f raw -c 'write -P 0x31 0 4M' -c flush "$PU2" >/dev/null || die "seed P2"
R1=$(create_pair "$P1" "$D1" vr1)
R2=$(create_pair "$P2" "$D2" vr2)
wait_pair_active "$R1"
wait_pair_active "$R2"
GID=$(create_group verify "$R1" "$R2")
group_action "$GID" "$SYNC"
expect_status 200 "sync" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120 || true
TOTAL=$((2 * 1024 * 1024 * 1024 / CHUNK))

log "1. verify of a healthy group with the CLI (--wait)"
api GET "$RCGS/$GID"
expect_eq "$(jget "$V")" null "verify before any verify" || true
RC=0
"$CLI" group verify "$GID" --wait --interval 0.1 >"$TMP/cli.out" 2>"$TMP/cli.err" || RC=$?
expect_eq "$RC" 0 "evsrep group verify --wait exit status ($(cat "$TMP/cli.err"))" || true
grep -q 'verifying' "$TMP/cli.out" || grep -q '100' "$TMP/cli.out" ||
  fail "CLI --wait showed no progress: $(cat "$TMP/cli.out")"
grep -Eq '^status +done' "$TMP/cli.out" || fail "CLI report has no 'status done': $(cat "$TMP/cli.out")"
api GET "$RCGS/$GID"
expect_eq "$(jget "$V.status")" done "verify status" || true
expect_eq "$(jget "$V.progress")" 100 "verify progress" || true
expect_eq "$(jget "$V.chunks_total")" "$TOTAL" "chunks_total (two 1 GiB disks)" || true
expect_eq "$(jget "$V.chunks_done")" "$TOTAL" "chunks_done" || true
expect_eq "$(jget "$V.mismatched_chunks")" 0 "mismatches on a healthy group" || true
expect_eq "$(jget "$V.skipped_dirty_chunks")" 0 "dirty chunks on an active group" || true
expect_eq "$(jget "[$V.pairs[].compared_chunks] | add")" "$TOTAL" "chunks compared" || true
[ "$(jget "$V.rate_bytes_per_sec")" -gt 0 ] || fail "verify rate is 0: $BODY"
M=$(curl -s -H "X-Auth-Token: $TOKEN" "$URL/metrics")
grep -q "^evsrep_group_verify_progress_percent{group=\"$GID\"} 100$" <<<"$M" ||
  fail "metrics: no verify progress 100 for $GID"
grep -q "^evsrep_group_verify_mismatched_chunks{group=\"$GID\"} 0$" <<<"$M" ||
  fail "metrics: no verify mismatches 0 for $GID"

log "2. one verify at a time; a reverse cancels it"
group_action "$GID" "$VERIFY" '{"max_rate_mib_per_sec": 1}'
expect_status 202 "throttled verify" || true
expect_eq "$(jget .verify.status)" running "202 body" || true
expect_eq "$(jget .verify.max_rate_mib_per_sec)" 1 "throttle in the 202 body" || true
group_action "$GID" "$VERIFY"
expect_status 409 "a second verify while one runs" || true
[[ "$BODY" == *running* ]] || fail "409 must say a verify is running: $BODY"
"$CLI" group verify "$GID" >/dev/null 2>&1 && fail "CLI: a second verify must fail"
group_action "$GID" "$VERIFY" '{"repair": "yes"}'
expect_status 400 "repair must be a boolean" || true
group_action "$GID" "$VERIFY" '{"max_rate_mib_per_sec": -1}'
expect_status 400 "negative throttle" || true
group_action "$GID" "$VERIFY" '{"bogus": 1}'
expect_status 400 "unknown member" || true
group_action "$GID" "$REVERSE"
expect_status 200 "reverse during a verify" || true
api GET "$RCGS/$GID"
verify_done "$GID" cancelled 30 # a cancel is seen within one throttle slice
expect_eq "$(jget "$V.message")" "cancelled by reverse" "cancel message" || true
[ "$(jget "$V.chunks_done")" -lt "$TOTAL" ] || fail "a cancelled verify went to the end"
group_action "$GID" "$REVERSE"
expect_status 200 "reverse back" || true
wait_field "$RCGS/$GID" "$G.priority_station" az1 30 || true

log "3. verify under heavy client writes: no false positives"
for u in "$PU1" "$PU2"; do
  fio --name=load --ioengine=nbd --uri="$u" --rw=randwrite --bs=64k --iodepth=16 \
    --size=1G --time_based --runtime="$LOAD_SECS" --randrepeat=0 --output="$TMP/fio.$RANDOM" &
  echo $! >>"$TMP/fio.pids"
done
sleep 1
group_action "$GID" "$VERIFY"
expect_status 202 "verify under load" || true
verify_done "$GID"
fio_running=0
for pid in $(cat "$TMP/fio.pids"); do kill -0 "$pid" 2>/dev/null && fio_running=$((fio_running + 1)); done
[ "$fio_running" = 2 ] || fail "the writers stopped before the verify was done (raise EVSREP_VERIFY_LOAD_SECONDS)"
for pid in $(cat "$TMP/fio.pids"); do
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
api GET "$RCGS/$GID"
expect_eq "$(jget "$V.status")" done "verify under load" || true
expect_eq "$(jget "$V.mismatched_chunks")" 0 "mismatches under load" || true
expect_eq "$(jget "$V.chunks_done")" "$TOTAL" "chunks_done under load" || true
expect_eq "$(jget "$G.replication_status")" active "replication after the verify under load" || true

log "4. bytes flipped in the DR files are found, with their offsets"
[ -f "$DATA/az2/$D1" ] && [ -f "$DATA/az2/$D2" ] || die "DR files not in $DATA/az2 (layout changed?)"
# Production and DR equal first (the load wrote through the mirror).
qemu-img compare -q -f raw -F raw "$PU1" "$DU1" || fail "DR 1 differs before the flips"
qemu-img compare -q -f raw -F raw "$PU2" "$DU2" || fail "DR 2 differs before the flips"
# Each flipped byte gets a value production does not have there.
flip_diff() { # FILE PROD_URI OFFSET
  local b
  b=$(qemu-io -f raw -r -c "read -v $3 1" "$2" | awk 'NR==1{print $2}')
  if [ "$b" = de ]; then printf '\xad' | dd of="$1" bs=1 seek="$3" conv=notrunc status=none
  else flip "$1" "$3"; fi
}
OFF_A=$((3 * CHUNK + 5))
OFF_B=$((1600 * CHUNK + 77))
OFF_C=$((11200 * CHUNK + 1))
flip_diff "$DATA/az2/$D1" "$PU1" "$OFF_A"
flip_diff "$DATA/az2/$D1" "$PU1" "$OFF_B"
flip_diff "$DATA/az2/$D2" "$PU2" "$OFF_C"
group_action "$GID" "$VERIFY"
expect_status 202 "verify after the flips" || true
verify_done "$GID"
api GET "$RCGS/$GID"
expect_eq "$(jget "$V.mismatched_chunks")" 3 "mismatched chunks" || true
expect_eq "$(jget "$V.repaired_chunks")" 0 "repaired without repair" || true
expect_eq "$(jget "$V.pairs[] | select(.replication_id == \"$R1\") | .mismatch_offsets | join(\",\")")" \
  "$((3 * CHUNK)),$((1600 * CHUNK))" "offsets on pair 1" || true
expect_eq "$(jget "$V.pairs[] | select(.replication_id == \"$R2\") | .mismatch_offsets | join(\",\")")" \
  "$((11200 * CHUNK))" "offsets on pair 2" || true
expect_eq "$(jget "$G.replication_status")" active "replication after a verify without repair" || true
RC=0
"$CLI" group verify "$GID" --wait >"$TMP/cli2.out" 2>"$TMP/cli2.err" || RC=$?
expect_eq "$RC" 8 "CLI exit status when chunks differ" || true
grep -q "3 chunk(s)" "$TMP/cli2.err" || fail "CLI must say how many chunks differ: $(cat "$TMP/cli2.err")"

log "5. repair on the active group copies exactly those chunks"
api GET "$RCGS/$GID"
B0=$(jget "$G.bytes_copied")
group_action "$GID" "$VERIFY" '{"repair": true}'
expect_status 202 "verify with repair" || true
verify_done "$GID"
api GET "$RCGS/$GID"
expect_eq "$(jget "$V.mismatched_chunks")" 3 "mismatched chunks (repair)" || true
expect_eq "$(jget "$V.repaired_chunks")" 3 "repaired chunks" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active' 60 || true
api GET "$RCGS/$GID"
expect_eq "$(($(jget "$G.bytes_copied") - B0))" $((3 * CHUNK)) "bytes resynced by the repair" || true
qemu-img compare -q -f raw -F raw "$PU1" "$DU1" || fail "DR 1 differs after repair"
qemu-img compare -q -f raw -F raw "$PU2" "$DU2" || fail "DR 2 differs after repair"
group_action "$GID" "$VERIFY"
verify_done "$GID"
api GET "$RCGS/$GID"
expect_eq "$(jget "$V.mismatched_chunks")" 0 "mismatches after repair" || true

log "6. paused group: clean chunks only; repair + sync heals"
group_action "$GID" "$PAUSE"
expect_status 200 "pause" || true
qemu-io -f raw -c "write -P 0x77 $((5000 * CHUNK)) 64k" -c flush "$PU1" >/dev/null ||
  fail "write to production while paused"
flip_diff "$DATA/az2/$D1" "$PU1" $((7000 * CHUNK + 9))
group_action "$GID" "$VERIFY" '{"repair": true}'
expect_status 202 "verify of a paused group" || true
verify_done "$GID"
api GET "$RCGS/$GID"
expect_eq "$(jget "$V.mismatched_chunks")" 1 "mismatches on the paused group" || true
expect_eq "$(jget "$V.skipped_dirty_chunks")" 1 "dirty chunks skipped" || true
expect_eq "$(jget "$V.pairs[] | select(.replication_id == \"$R1\") | .mismatch_offsets | join(\",\")")" \
  "$((7000 * CHUNK))" "offset on the paused pair" || true
expect_eq "$(jget "$G.replication_status")" active-stopped "a repair leaves a paused group paused" || true
group_action "$GID" "$SYNC"
expect_status 200 "sync after repair" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped' 60 || true
qemu-img compare -q -f raw -F raw "$PU1" "$DU1" || fail "DR 1 differs after repair + sync"
finish
