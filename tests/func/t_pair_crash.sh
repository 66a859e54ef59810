#!/usr/bin/env bash
# shellcheck disable=SC2119
# kill -9 the daemon at seeded random points, restart, and prove nothing was
# lost or silently diverged (semantics.md "crash rule"):
#   mode 0: during dependent FUA writes to an active pair;
#   mode 1: during the initial sync of a new pair;
#   mode 2: during the initial sync while a writer keeps writing.
# After restart the pair must come back to `active` (never `active` with a DR
# that differs), production and DR are compared byte for byte, and every write
# acknowledged (FUA) before the kill is on production (seqcheck -a).
# Modes 1 and 2 must really kill during the initial sync, which unthrottled
# takes a few ms: the daemon that is killed runs with every read of the
# production volume slowed down (EVSREP_FAULT vol_read@P~THROTTLE_US; the
# sync reads 1 MiB pieces and has >= 6 MiB to copy, so it lasts seconds), the
# pair's replication_status is read right before each kill, and a kill meant
# for the initial sync that finds the pair already `active` is a failure.
# The daemon started after the kill has no fault rule.
# EVSREP_CRASH_SEEDS (default 10) seeds starting at EVSREP_CRASH_SEED_BASE
# (default 1); every seed is printed, rerun one with
#   EVSREP_CRASH_SEED_BASE=<seed> EVSREP_CRASH_SEEDS=1.
. "$(dirname "$0")/lib.sh"
SW=$TOOLS/seqwriter
SC=$TOOLS/seqcheck
if [ ! -x "$SW" ] || [ ! -x "$SC" ]; then die "seqwriter/seqcheck not built in $TOOLS"; fi
NSEEDS=${EVSREP_CRASH_SEEDS:-10}
BASE=${EVSREP_CRASH_SEED_BASE:-1}
WREGION=4M # writer region at the start of the disk; pre-pairing data lives above 64M
# Per 1 MiB read of production by the initial sync. The prefill alone is 6
# reads in 3 batches (bits cleared at batch ends ~0.5, 1.0, 1.5 s), the
# writer's data (mode 2) 4 more in the first batch: a kill 20..720 ms after
# the create lands in the first or the third batch, never after the sync.
THROTTLE_US=250000

start_daemon

# prefill URI: patterned extents away from the writer region, flushed.
prefill() {
  qemu-io -f raw -c 'write -P 0xa1 100M 2M' -c 'write -P 0xa2 517M 1536k' -c 'write -P 0xa3 1022M 2M' \
    -c flush "$1" >/dev/null || fail "prefill $1"
}
check_prefill() {
  qemu-io -f raw -r -c 'read -P 0xa1 100M 2M' -c 'read -P 0xa2 517M 1536k' -c 'read -P 0xa3 1022M 2M' \
    "$1" >"$TMP/qio" 2>&1 || fail "$2: read prefill"
  if grep -q 'Pattern verification failed' "$TMP/qio"; then fail "$2: data written and flushed before the crash is lost"; fi
}

ms_sleep() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }

WP=""
start_writer() { # start_writer SEED URI
  "$SW" -q --fua -R "$1" -r "$WREGION" -t 60 -p "$TMP/prog" "$2" >"$TMP/sw.out" 2>"$TMP/sw.err" &
  WP=$!
}
# reap_writer WHAT: the daemon is dead; the writer fails (exit 2) and
# prints its last acknowledged seq. Sets LAST.
reap_writer() {
  local rc=0
  wait "$WP" || rc=$?
  WP=""
  LAST=$(cat "$TMP/sw.out")
  [[ "$LAST" =~ ^[0-9]+$ ]] || { fail "$1: writer printed no last seq: $(cat "$TMP/sw.err")"; LAST=0; }
  [[ $rc =~ ^(0|2)$ ]] || fail "$1: writer exit $rc: $(cat "$TMP/sw.err")"
}
# wait_first_ack WHAT: the writer writes 0 to its progress file before its
# first write; wait for the first acknowledged write (seq >= 1).
wait_first_ack() {
  local v=""
  for _ in $(seq 1 400); do
    v=$(cat "$TMP/prog" 2>/dev/null || true)
    [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] && return 0
    kill -0 "$WP" 2>/dev/null || break
    sleep 0.05
  done
  die "$1: the writer acknowledged no write (progress '$v'): $(cat "$TMP/sw.err")"
}
# kill_pair WHAT ALLOWED_ERE: read the pair's status right before kill -9;
# its replication_status must match ^(ALLOWED_ERE)$. Sets BEFORE_KILL.
kill_pair() {
  api GET "$PAIRS/$R"
  BEFORE_KILL="$(jget .replication.status)/$(jget .replication.replication_status) progress $(jget .replication.progress)"
  local rs
  rs=$(jget .replication.replication_status)
  crash_daemon
  log "$1: pair right before the kill -9: $BEFORE_KILL (HTTP $STATUS)"
  [ "$STATUS" = 200 ] && [[ "$rs" =~ ^($2)$ ]] ||
    fail "$1: right before the kill -9 the pair was $BEFORE_KILL (HTTP $STATUS), want replication_status $2"
}

for seed in $(seq "$BASE" $((BASE + NSEEDS - 1))); do
  RANDOM=$seed
  mode=$((seed % 3))
  delay_ms=$((RANDOM % 700 + 20))
  tag="seed $seed (mode $mode, kill after ${delay_ms} ms)"
  log "$tag"
  P=$(create_volume az1 1 "crash-p-$seed")
  D=$(create_volume az2 1 "crash-d-$seed")
  PU=$(nbd_uri az1 "$P")
  DU=$(nbd_uri az2 "$D")
  prefill "$PU"
  LAST=0
  fails_before=$FAILS

  case $mode in
    0)
      R=$(create_pair "$P" "$D" "crash-$seed")
      wait_pair_active "$R" || continue
      rm -f "$TMP/prog"
      start_writer "$seed" "$PU"
      # the delay counts from the first acknowledged write (slow starts
      # under the sanitizers must not turn into "no progress")
      wait_first_ack "$tag"
      ms_sleep "$delay_ms"
      kill_pair "$tag" active
      reap_writer "$tag"
      [ "$LAST" -gt 0 ] || fail "$tag: the writer made no progress before the kill"
      ;;
    1 | 2)
      # The daemon to be killed: a throttled initial sync (see the top).
      stop_daemon
      EVSREP_FAULT="vol_read@${P}~${THROTTLE_US}" start_daemon
      PU=$(nbd_uri az1 "$P")
      DU=$(nbd_uri az2 "$D")
      if [ $mode = 2 ]; then
        rm -f "$TMP/prog"
        start_writer "$seed" "$PU"
        wait_first_ack "$tag"
      fi
      api POST "$PAIRS" "{\"replication\":{\"name\":\"crash-$seed\",\"volume_ids\":[\"$P\",\"$D\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
      expect_status 202 "$tag: create pair" || continue
      R=$(jget .replication.id)
      ms_sleep "$delay_ms"
      # During the initial sync: copying, or still creating (replication_status
      # null) when the kill comes before the sync started; never active.
      kill_pair "$tag" 'copying|null'
      if [ $mode = 2 ]; then
        reap_writer "$tag"
        [ "$LAST" -gt 0 ] || fail "$tag: the writer made no progress before the kill"
      fi
      ;;
  esac

  start_daemon
  PU=$(nbd_uri az1 "$P") # new ephemeral ports after the restart
  DU=$(nbd_uri az2 "$D")
  api GET "$PAIRS/$R"
  expect_status 200 "$tag: pair acknowledged with 202 survives the crash" || continue
  wait_through "$PAIRS/$R" .replication.status available creating 120 || continue
  # After a crash the pair resyncs what may have been in flight; it must end
  # active. (An `inactive` pair would need a group sync: a failure here.)
  wait_through "$PAIRS/$R" .replication.replication_status active 'copying|inactive' 120 ||
    { fail "$tag: pair never came back to active"; continue; }
  expect_eq "$(jget .replication.progress)" 100 "$tag: progress when active"

  # Production keeps everything acknowledged: prefill and every FUA write.
  check_prefill "$PU" "$tag production"
  if [ "$mode" != 1 ]; then
    "$SC" -q -R "$seed" -r "$WREGION" -a "$LAST" -b $((LAST + 1)) "$PU" >/dev/null 2>"$TMP/sc.err" ||
      fail "$tag: production lost acknowledged writes (last acknowledged $LAST): $(cat "$TMP/sc.err")"
  fi
  # DR is byte-identical to production once active.
  nbd_cmp "$PU" "$DU" "$tag: production vs DR after restart"
  check_prefill "$DU" "$tag DR"
  # And mirroring works after the crash.
  qemu-io -f raw -c 'write -P 0x5c 40M 64k' "$PU" >/dev/null || fail "$tag: write after restart"
  qemu-io -f raw -r -c 'read -P 0x5c 40M 64k' "$DU" >"$TMP/qio" 2>&1 || fail "$tag: read DR after restart"
  if grep -q 'Pattern verification failed' "$TMP/qio"; then fail "$tag: not mirroring after restart"; fi

  if [ "$FAILS" -ne "$fails_before" ]; then
    log "$tag FAILED; reproduce with EVSREP_CRASH_SEED_BASE=$seed EVSREP_CRASH_SEEDS=1"
  fi
  # Clean up so the next seed starts small.
  api DELETE "$PAIRS/$R"
  expect_status 202 "$tag: delete pair" && wait_gone "$PAIRS/$R"
  for v in "$P" "$D"; do api DELETE "volumes/$v"; done
done

[ -z "$WP" ] || kill "$WP" 2>/dev/null || true
finish
