#!/usr/bin/env bash
# One command for a newcomer: install what is missing, build, and start
# evsrepd in the foreground with its embedded defaults (SQLite, az1 and az2
# on local disk under ./.data). Every argument goes to evsrepd, e.g.
#   ./scripts/run.sh --listen 127.0.0.1:8786 --log-level debug
# Environment: EVSREP_DATA_DIR (default ./.data), EVSREP_BUILD_DIR (default
# ./build; a directory configured before keeps its own settings).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${EVSREP_BUILD_DIR:-build}
say() { printf 'run.sh: %s\n' "$*" >&2; }

say "checking the packages evsrep needs (scripts/deps.sh; installs what is missing)"
./scripts/deps.sh
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring $build/ (cmake)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
say "building evsrepd and the evsrep CLI in $build/ (a first build takes a minute or two; progress below)"
cmake --build "$build" -j"$(nproc)" --target evsrepd evsrep
say "starting $build/evsrepd --data-dir ${EVSREP_DATA_DIR:-$PWD/.data} $* (Ctrl-C stops it)"
exec "$build/evsrepd" --data-dir "${EVSREP_DATA_DIR:-$PWD/.data}" "$@"
