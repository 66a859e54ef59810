#!/usr/bin/env bash
# The DR link over NBD vs the local link (issue 12): the mirror's write path
# driven in-process, DR leg through link_local vs link_nbd to nbdkit's file
# plugin on loopback. 4 KiB random writes at QD16 and 1 MiB sequential at
# QD1; prints the ratio nbd/local (target >= 0.8).
#
#   bench/link_nbd.sh            # RUNTIME=3 ROUNDS=2
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${EVSREP_BUILD:-$SRC/build}
command -v nbdkit >/dev/null || { echo "bench: nbdkit is missing" >&2; exit 1; }
[ -x "$BUILD/bench/bench_link_nbd" ] || cmake --build "$BUILD" -j1 --target bench_link_nbd >/dev/null
exec "$BUILD/bench/bench_link_nbd" "${RUNTIME:-3}" "${ROUNDS:-2}" "${BENCH_DIR:-/var/tmp}"
