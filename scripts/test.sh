#!/usr/bin/env bash
# One command for the whole suite: install what is missing, then
#   1. a warning-free (-Werror) build and every test (unit + functional),
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. every libFuzzer target for a short bounded time from its seed corpus.
# Environment: EVSREP_FUZZ_SECONDS (default 20), EVSREP_SKIP_ASAN=1,
# EVSREP_SKIP_FUZZ=1, EVSREP_CRASH_SEEDS (crash-test seeds, default 10),
# EVSREP_FAULT_SWEEP=full (every fault point at every call count; CI stops
# each point at a bounded count), EVSREP_FREEZE_RUNS, EVSREP_POWERCUT_RUNS,
# EVSREP_RESYNC_FAILOVER_RUNS.
# The long sweeps: scripts/crash-seeds.sh N.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
jobs=$(nproc)

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "== clang-format (every tracked .c and .h file)"
  git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
fi

echo "== build (-Werror) and test"
cmake -S . -B build-ci -DEVSREP_WERROR=ON -DEVSREP_FAULT_INJECTION=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-ci -j"$jobs"
(cd build-ci && ctest --output-on-failure -j"$jobs" --timeout 900)

if [ "${EVSREP_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build and test under ASan + UBSan"
  cmake -S . -B build-asan -DEVSREP_WERROR=ON -DEVSREP_FAULT_INJECTION=ON -DEVSREP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$jobs"
  # LeakSanitizer is on by default; the test tools opt out in their own code.
  # The long randomized runs (consistency checker, crash seeds, load) get
  # their full counts in the first build; under the sanitizers fewer rounds
  # keep CI short while every code path still runs. The PostgreSQL
  # all-in-one runs (funcpg/) and the two-node t_group_dr repeat code paths
  # that func/, func2/ and the store suites already run under the
  # sanitizers; they run in the first build only (CI's 45-minute budget).
  (cd build-asan && ASAN_OPTIONS=abort_on_error=1 \
     EVSREP_CONSISTENCY_RUNS=${EVSREP_CONSISTENCY_RUNS:-6} EVSREP_CRASH_SEEDS=${EVSREP_CRASH_SEEDS:-4} \
     EVSREP_LOAD_SECONDS=${EVSREP_LOAD_SECONDS:-15} \
     EVSREP_FREEZE_RUNS=${EVSREP_FREEZE_RUNS:-6} EVSREP_POWERCUT_RUNS=${EVSREP_POWERCUT_RUNS:-3} \
     EVSREP_RESYNC_FAILOVER_RUNS=${EVSREP_RESYNC_FAILOVER_RUNS:-3} \
     EVSREP_FAULT_MAXN=${EVSREP_FAULT_MAXN:-1} \
     EVSREP_SWAP_WRITE_MIB=${EVSREP_SWAP_WRITE_MIB:-64} \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" --timeout 900 -E '^(funcpg/|func2/t_group_dr$)')
fi

if [ "${EVSREP_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz targets (${EVSREP_FUZZ_SECONDS:-20} s each)"
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DEVSREP_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j"$jobs"
  for f in build-fuzz/tests/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus_src="tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus_src" ] && cp -r "$corpus_src"/. "$work"/
    echo "-- $name"
    "$f" -max_total_time="${EVSREP_FUZZ_SECONDS:-20}" -timeout=10 -print_final_stats=1 "$work" 2>&1 | tail -n 3
    rm -rf "$work"
  done
fi
echo "== all tests passed"
