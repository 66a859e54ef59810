#!/usr/bin/env bash
# One command for a newcomer: install what is missing, build, and start
# evsrepd in the foreground with its embedded defaults (SQLite, az1 and az2
# on local disk under ./.data). Extra arguments go to evsrepd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/evsrepd --data-dir "${EVSREP_DATA_DIR:-$PWD/.data}" "$@"
