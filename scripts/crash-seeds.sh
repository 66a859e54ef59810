#!/usr/bin/env bash
# Crash seeds at scale (not part of CI; CI runs a few seeds of each test).
# Runs the kill -9 crash scenarios for N seeds each and prints how many
# seeds lost an acknowledged write and how many left DR silently different
# from production:
#   t_pair_crash   writes (FUA, active pair), initial sync, sync + writer
#   t_group_crash  group pause with dirty chunks, resync after a pause
# Usage: scripts/crash-seeds.sh [N (default 1000)] [BUILD_DIR (default build)]
# CRASH_TESTS="t_group_crash" runs only some of the tests.
# Seeds run in batches of 25 so one failing seed does not hide the others;
# every failing batch keeps its log under $OUT (printed at the end).
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
BUILD=${2:-build}
BATCH=25
OUT=$(mktemp -d /tmp/evsrep-crash-seeds.XXXXXX)
[ -x "$BUILD/evsrepd" ] || { echo "build first: cmake -S . -B $BUILD && cmake --build $BUILD" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
export EVSREPD=$BUILD/evsrepd EVSREP_SRC=$PWD EVSREP_BUILD=$BUILD EVSREP_TOOLS=$BUILD/tests

declare -A seeds lost diverged other
TESTS=${CRASH_TESTS:-t_pair_crash t_group_crash}
for t in $TESTS; do
  seeds[$t]=0 lost[$t]=0 diverged[$t]=0 other[$t]=0
  for ((base = 1; base <= N; base += BATCH)); do
    n=$((N - base + 1 < BATCH ? N - base + 1 : BATCH))
    log="$OUT/$t.$base.log"
    EVSREP_CRASH_SEED_BASE=$base EVSREP_CRASH_SEEDS=$n bash "tests/func/$t.sh" >"$log" 2>&1
    rc=$?
    seeds[$t]=$((seeds[$t] + n))
    # Each FAIL line names what failed; classify it. Only the lines logged
    # as they happen ("[test] FAIL: ..."), not the summary that repeats them.
    l=$(grep -c '^\[[a-z_]*\] FAIL:.*\(acknowledged\|lost\|production disks\|prefill\)' "$log")
    d=$(grep -c '^\[[a-z_]*\] FAIL:.*\(differ\|vs D\|nbd_cmp\|not one instant\|DR disks\)' "$log")
    o=$(grep -c '^\[[a-z_]*\] \(FAIL\|FATAL\):' "$log")
    [ "$rc" -ne 0 ] && [ "$o" -eq 0 ] && o=1 # died without saying why: count it
    lost[$t]=$((lost[$t] + l))
    diverged[$t]=$((diverged[$t] + d))
    other[$t]=$((other[$t] + o - l - d))
    [ "$rc" -eq 0 ] && rm -f "$log"
    printf '%s: seeds %d-%d: exit %d (lost %d, diverged %d, other %d)\n' "$t" "$base" \
      $((base + n - 1)) "$rc" "$l" "$d" $((o - l - d))
  done
done
echo
printf '%-15s %8s %14s %18s %8s\n' test seeds lost-acked-writes silent-divergence other
for t in $TESTS; do
  printf '%-15s %8d %14d %18d %8d\n' "$t" "${seeds[$t]}" "${lost[$t]}" "${diverged[$t]}" "${other[$t]}"
done
echo "logs of failing batches: $OUT"
