#!/usr/bin/env bash
# Power loss, not only kill -9 (docs/design/faults.md "power-cut
# simulation"). kill -9 keeps the page cache, so it cannot show that FUA and
# flush are honoured. Here the daemon runs with EVSREP_POWERCUT=1: every
# volume and meta-file write that no fdatasync has covered yet is undone when
# the daemon gets SIGUSR2, as a power cut that lost every unsynced write
# would leave the disks. For each seed, seqwriter writes dependent FUA blocks
# round-robin across the production disks of an active 2-pair group, the
# power is cut at a seeded moment, and with the daemon down:
#   - every write acknowledged (FUA) is on the production files;
#   - every write acknowledged is on the DR files too (SYNC: a FUA write is
#     acknowledged only when durable on both legs), as one prefix;
# then after a restart the meta files open (bitmap + AL fold), the pairs
# resync what was hot, the group is active again and DR equals production.
# EVSREP_POWERCUT_RUNS (default 6) seeds from EVSREP_POWERCUT_SEED (1).
. "$(dirname "$0")/lib.sh"
require_fault_injection
command -v nbdkit >/dev/null || die "nbdkit is needed to read the files while the daemon is down"
RUNS=${EVSREP_POWERCUT_RUNS:-6}
SEED=${EVSREP_POWERCUT_SEED:-1}
REGION=4M
SYNC=os-sync-replication-consistency-group
G=.replication_consistency_group
export EVSREP_POWERCUT=1

start_daemon
declare -a P D R PU DU
make_active_pairs 2 pc
GID=$(create_group powercut "${R[1]}" "${R[2]}")
group_action "$GID" "$SYNC"
expect_status 200 "initial sync"
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120
file_of() { find "$DATA" -name "$1" -type f | head -n 1; }

# serve_files TAG FILE...: read-only NBD over unix sockets (daemon down);
# sets URIS.
NBDKIT_PIDS=()
serve_files() {
  local tag=$1 k=0 f
  shift
  URIS=()
  for f in "$@"; do
    k=$((k + 1))
    rm -f "$TMP/$tag$k.sock"
    nbdkit -r -f -U "$TMP/$tag$k.sock" file "$f" &
    NBDKIT_PIDS+=($!)
    URIS+=("nbd+unix:///?socket=$TMP/$tag$k.sock")
  done
  # Ready when a client gets through (the socket file exists from bind(),
  # a moment before listen(): a loaded machine once got ECONNREFUSED there).
  local u ok
  for u in "${URIS[@]}"; do
    ok=""
    for _ in $(seq 1 500); do
      nbdinfo --size "$u" >/dev/null 2>&1 && { ok=1; break; }
      sleep 0.02
    done
    [ -n "$ok" ] || die "nbdkit did not serve $u within 10 s"
  done
}
stop_files() {
  local p
  for p in "${NBDKIT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  NBDKIT_PIDS=()
}

RANDOM=$SEED
for run in $(seq 1 "$RUNS"); do
  delay_ms=$((RANDOM % 1200 + 150))
  runid=$((SEED * 100000 + run))
  tag="run $run/$RUNS (seed $SEED, cut after ${delay_ms} ms)"
  fails_before=$FAILS
  for i in 1 2; do PU[i]=$(nbd_uri az1 "${P[i]}"); DU[i]=$(nbd_uri az2 "${D[i]}"); done
  rm -f "$TMP/prog"
  "$SW" -q -F -R "$runid" -r "$REGION" -t 60 -p "$TMP/prog" -P 1 "${PU[1]}" "${PU[2]}" \
    >"$TMP/sw.out" 2>"$TMP/sw.err" &
  WP=$!
  for _ in $(seq 1 200); do
    [ -s "$TMP/prog" ] && [ "$(cat "$TMP/prog")" -gt 0 ] && break
    sleep 0.02
  done
  sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  kill -USR2 "$DAEMON_PID"
  rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  expect_eq "$rc" 137 "$tag: the daemon ends at the simulated power cut"
  wait "$WP" 2>/dev/null || true # its connection is gone: exit 2 is expected
  F=$(cat "$TMP/sw.out")
  [[ "$F" =~ ^[0-9]+$ ]] || F=0
  [ "$F" -gt 0 ] || fail "$tag: the writer made no progress before the cut"
  grep -q "power cut simulated" "$TMP/daemon.log" || fail "$tag: no power cut in the daemon log"

  # Daemon down: the files as the power cut left them.
  serve_files p "$(file_of "${P[1]}")" "$(file_of "${P[2]}")"
  "$SC" -q -R "$runid" -r "$REGION" -a "$F" "${URIS[@]}" 2>"$TMP/sc.err" ||
    fail "$tag: production lost a FUA-acknowledged write: $(cat "$TMP/sc.err") (acknowledged $F)"
  serve_files d "$(file_of "${D[1]}")" "$(file_of "${D[2]}")"
  "$SC" -q -R "$runid" -r "$REGION" -a "$F" "${URIS[@]}" 2>"$TMP/sc.err" ||
    fail "$tag: DR lost a FUA-acknowledged write or is not one prefix: $(cat "$TMP/sc.err") (acknowledged $F)"
  stop_files

  start_daemon
  api GET "$RCGS/$GID"
  expect_status 200 "$tag: group after the restart"
  wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|inactive' 120
  for i in 1 2; do
    PU[i]=$(nbd_uri az1 "${P[i]}")
    DU[i]=$(nbd_uri az2 "${D[i]}")
    nbd_cmp "${PU[i]}" "${DU[i]}" "$tag: P$i vs D$i after the restart"
  done
  log "$tag: $F FUA writes acknowledged before the cut, all durable"
  [ "$FAILS" -eq "$fails_before" ] || log "$tag FAILED"
done
finish
