#!/usr/bin/env bash
# shellcheck disable=SC2119
# The consistency checker run (issue 4, "the test that matters most"):
# seqwriter writes sequence-numbered 4 KiB blocks round-robin across the 4
# production disks of a 4-pair group, one dependent write at a time; the test
# pauses the group at a seeded random moment; seqcheck then reads the 4 DR
# disks and the sequence numbers there must form a prefix (never N+1 without
# N), containing every write acknowledged before the pause was sent and none
# acknowledged after it returned. Repeated EVSREP_CONSISTENCY_RUNS times
# (default 20) from seed EVSREP_CONSISTENCY_SEED (default 1).
# Then: after a pause production writes do not reach DR (checksums), a sync
# brings DR back to byte equality, and an incremental sync copies only the
# dirty chunks (bytes-copied counter == chunks written x 64 KiB).
. "$(dirname "$0")/lib.sh"
SW=$TOOLS/seqwriter
SC=$TOOLS/seqcheck
if [ ! -x "$SW" ] || [ ! -x "$SC" ]; then die "seqwriter/seqcheck not built in $TOOLS"; fi
RUNS=${EVSREP_CONSISTENCY_RUNS:-20}
SEED=${EVSREP_CONSISTENCY_SEED:-1}
CHUNK=$((64 * 1024))
REGION=8M # per disk: 2048 slots, the writer wraps; seqcheck is exact with wrap
PAUSE=os-stop-replication-consistency-group
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group
ms_sleep() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
repl() { api GET "$RCGS/$1"; jget "$G.replication_status"; }

start_daemon

declare -a P D R PU DU
for i in 1 2 3 4; do
  P[i]=$(create_volume az1 1 "cp$i")
  D[i]=$(create_volume az2 1 "cd$i")
  PU[i]=$(nbd_uri az1 "${P[i]}")
  DU[i]=$(nbd_uri az2 "${D[i]}")
  R[i]=$(create_pair "${P[i]}" "${D[i]}" "cpair$i")
done
for i in 1 2 3 4; do wait_pair_active "${R[i]}"; done
GID=$(create_group consistency "${R[1]}" "${R[2]}" "${R[3]}" "${R[4]}")

sync_active() { # sync_active WHAT
  group_action "$GID" "$SYNC"
  expect_status 200 "$1: sync" || return 1
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120
}
compare_all() { # compare_all WHAT
  local i
  for i in 1 2 3 4; do nbd_cmp "${PU[i]}" "${DU[i]}" "$1: P$i vs D$i"; done
}
sync_active "initial"
compare_all "after the first group sync"

# --- the consistency runs
RANDOM=$SEED
log "consistency runs: $RUNS, seed $SEED (rerun with EVSREP_CONSISTENCY_SEED=$SEED)"
WP=""
for run in $(seq 1 "$RUNS"); do
  delay_ms=$((RANDOM % 1500 + 100))
  runid=$((SEED * 100000 + run))
  tag="run $run/$RUNS (seed $SEED, pause after ${delay_ms} ms, run id $runid)"
  fails_before=$FAILS
  rm -f "$TMP/stop" "$TMP/prog"
  "$SW" -q -R "$runid" -r "$REGION" -s "$TMP/stop" -t 120 -p "$TMP/prog" -P 1 \
    "${PU[1]}" "${PU[2]}" "${PU[3]}" "${PU[4]}" >"$TMP/sw.out" 2>"$TMP/sw.err" &
  WP=$!
  for _ in $(seq 1 100); do
    [ -s "$TMP/prog" ] && [ "$(cat "$TMP/prog")" -gt 0 ] && break
    sleep 0.05
  done
  ms_sleep "$delay_ms"
  A=$(cat "$TMP/prog") # every write <= A was acknowledged before the pause was sent
  group_action "$GID" "$PAUSE"
  expect_status 200 "$tag: pause"
  [ -z "$BODY" ] || fail "$tag: pause returned a body: $BODY"
  expect_eq "$(repl "$GID")" active-stopped "$tag: replication_status right after pause"
  sleep 0.05             # > the writer's progress interval
  B=$(cat "$TMP/prog")   # >= every write acknowledged before the pause returned
  sleep 0.2              # the writer keeps going on production (pause must not fail writes)
  touch "$TMP/stop"
  rc=0
  wait "$WP" || rc=$?
  WP=""
  F=$(cat "$TMP/sw.out")
  expect_eq "$rc" 0 "$tag: writer exit (client writes must not fail during a pause): $(cat "$TMP/sw.err")"
  [[ "$F" =~ ^[0-9]+$ ]] || F=0
  [ "$A" -gt 0 ] || fail "$tag: the writer made no progress before the pause"
  [ "$F" -gt "$B" ] || fail "$tag: no client write completed after the pause returned (writes stalled?)"

  # DR: a prefix, holding everything acknowledged before the pause, nothing after.
  if ! "$SC" -q -R "$runid" -r "$REGION" -a "$A" -b "$B" \
    "${DU[1]}" "${DU[2]}" "${DU[3]}" "${DU[4]}" >"$TMP/sc.out" 2>"$TMP/sc.err"; then
    fail "$tag: DR disks after pause: $(cat "$TMP/sc.err") (acknowledged before pause: $A, by its return: $B, final: $F)"
  fi
  # Production: complete, everything the writer was acknowledged.
  if ! "$SC" -q -R "$runid" -r "$REGION" -a "$F" -b "$F" \
    "${PU[1]}" "${PU[2]}" "${PU[3]}" "${PU[4]}" >/dev/null 2>"$TMP/sc.err"; then
    fail "$tag: production disks: $(cat "$TMP/sc.err")"
  fi
  log "$tag: DR frozen at seq $(cat "$TMP/sc.out" 2>/dev/null) (before pause $A, at return $B, final $F)"
  [ "$FAILS" -eq "$fails_before" ] || log "$tag FAILED"
  sync_active "$tag"
  if [ $((run % 10)) -eq 0 ]; then compare_all "$tag: after sync"; fi
done
compare_all "after all consistency runs"

# --- after a pause, production writes do not reach DR; a sync brings them
# frozen_at (operations.md: the instant of the pause fence, in the group
# detail) is set by the pause: a UTC time between the request and its reply
# (the daemon and this test share the clock; same format, so the order is
# the string order), newer than the previous pause's.
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}$'
api GET "$RCGS/$GID"
frozen_prev=$(jget "$G.frozen_at")
t_before=$(date -u +%Y-%m-%dT%H:%M:%S.%6N)
group_action "$GID" "$PAUSE"
expect_status 200 "pause for the frozen-DR check"
t_after=$(date -u +%Y-%m-%dT%H:%M:%S.%6N)
api GET "$RCGS/$GID"
frozen=$(jget "$G.frozen_at // \"missing\"")
if ! [[ "$frozen" =~ $TIME_RE ]]; then
  fail "frozen_at after a pause: want a time, got '$frozen': $BODY"
else
  [[ ! "$frozen" < "$t_before" && ! "$frozen" > "$t_after" ]] ||
    fail "frozen_at $frozen is not the instant of the pause (request sent $t_before, answered $t_after)"
  [ "$frozen_prev" = null ] || [[ "$frozen" > "$frozen_prev" ]] ||
    fail "frozen_at $frozen not newer than the previous pause's $frozen_prev"
fi
sum_d1=$(nbd_sha256 "${DU[1]}")
sum_d3=$(nbd_sha256 "${DU[3]}")
qemu-io -f raw -c 'write -P 0x77 300M 1M' -c 'write -P 0x78 1020M 64k' "${PU[1]}" >/dev/null || fail "write P1 while paused"
qemu-io -f raw -c 'write -z 0 8M' "${PU[3]}" >/dev/null || fail "zero P3 while paused"
expect_eq "$(nbd_sha256 "${DU[1]}")" "$sum_d1" "D1 unchanged by writes to P1 while paused"
expect_eq "$(nbd_sha256 "${DU[3]}")" "$sum_d3" "D3 unchanged by write-zeroes to P3 while paused"
[ "$(nbd_sha256 "${PU[1]}")" != "$sum_d1" ] || fail "P1 did not change (write lost?)"
sync_active "after writes while paused"
compare_all "after the sync of writes made while paused"

# --- incremental sync copies only dirty chunks
# bytes_copied GID: the bytes-copied counter, from the group detail, or the
# sum over the member pairs; the exact field name is the daemon's choice
# (any field whose name has "bytes" and "cop", e.g. bytes_copied,
# resync_bytes_copied, copied_bytes; nested objects are searched).
# shellcheck disable=SC2016 # a jq program, not shell
COUNTER_JQ='[paths(scalars) as $p | select(($p | map(tostring) | join(".")) | test("bytes.*cop|cop.*bytes"; "i")) | getpath($p) | tonumber? ] | first // empty'
bytes_copied() {
  local v total=0 found=0 i
  api GET "$RCGS/$GID"
  v=$(jq -r ".replication_consistency_group | $COUNTER_JQ" <<<"$BODY")
  if [ -n "$v" ]; then printf '%s\n' "${v%.*}"; return 0; fi
  for i in 1 2 3 4; do
    api GET "$PAIRS/${R[i]}"
    v=$(jq -r ".replication | $COUNTER_JQ" <<<"$BODY")
    if [ -n "$v" ]; then total=$((total + ${v%.*})); found=1; fi
  done
  [ $found = 1 ] && printf '%s\n' "$total"
  return 0
}
# Baseline: a sync with nothing dirty, so both cumulative and per-sync
# counters give the right difference below.
group_action "$GID" "$PAUSE"
expect_status 200 "pause (baseline)"
sync_active "baseline sync"
C0=$(bytes_copied)
if [ -z "$C0" ]; then
  fail "no bytes-copied counter in the group or pair detail (looked for a field named like bytes_copied)"
else
  group_action "$GID" "$PAUSE"
  expect_status 200 "pause (incremental)"
  # Dirty chunks: P1 10 x 4 KiB in 10 distinct chunks; P2 5 x 64 KiB aligned
  # chunks; P4 one 4 KiB write straddling two chunks; P3 nothing. Two writes
  # into one chunk count once.
  cmds=()
  for k in $(seq 0 9); do cmds+=(-c "write -P 0x3$((k % 10)) $((k * 1024 * 1024 + 8192)) 4k"); done
  cmds+=(-c "write -P 0x55 $((5 * 1024 * 1024 + 12288)) 4k") # same chunk as k=5 above
  qemu-io -f raw "${cmds[@]}" "${PU[1]}" >/dev/null || fail "dirty P1"
  cmds=()
  for k in $(seq 0 4); do cmds+=(-c "write -P 0x6$k $((200 * 1024 * 1024 + k * 3 * CHUNK)) 64k"); done
  qemu-io -f raw "${cmds[@]}" "${PU[2]}" >/dev/null || fail "dirty P2"
  qemu-io -f raw -c "write -P 0x44 $((7 * CHUNK - 2048)) 4k" "${PU[4]}" >/dev/null || fail "dirty P4"
  chunks=$((10 + 5 + 2))
  want=$((chunks * CHUNK))
  sync_active "incremental sync"
  C1=$(bytes_copied)
  delta=$((C1 - C0))
  log "incremental sync: counter $C0 -> $C1, copied $delta bytes for $chunks dirty chunks ($want bytes)"
  [ "$delta" -ge "$want" ] || fail "incremental sync copied $delta bytes, less than the $chunks dirty chunks ($want bytes)"
  [ "$delta" -le $((want * 3 / 2)) ] ||
    fail "incremental sync copied $delta bytes for $chunks dirty chunks ($want bytes): not incremental"
  compare_all "after the incremental sync"
fi

[ -z "$WP" ] || kill "$WP" 2>/dev/null || true
finish
