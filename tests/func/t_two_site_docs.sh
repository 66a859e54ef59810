#!/usr/bin/env bash
# The two-site cluster of docs/operations.md ("Two sites with PostgreSQL")
# starts from the docs with one command per node, and the README
# walkthrough ("Replication in ... requests") works against it (issue 12,
# "done when"):
#  1. the operations.md block with the scripts/run-node.sh lines is
#     extracted and run as written, but with the test's database for
#     EVSREP_DB, ports 0 (any free one) and the test's directories
#     (EVSREP_CLUSTER_DIR, EVSREP_DATA_DIR; EVSREPD: the built daemon)
#  2. both nodes register (lease valid); the README walkthrough runs with
#     EVS_URL = node b (az2): the az1 volume, the pair and the group go to
#     node a over the internal channel; it shows its two status codes and a
#     frozen_at
# Needs PostgreSQL: EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE (the ctest
# pg_cluster fixture); the test makes a database of its own.
. "$(dirname "$0")/lib.sh"

: "${EVSREP_SRC:?EVSREP_SRC must point at the source tree}"
if [ -z "${EVSREP_TEST_PG_URL:-}" ] && [ -n "${EVSREP_TEST_PG_URL_FILE:-}" ]; then
  EVSREP_TEST_PG_URL=$(cat "$EVSREP_TEST_PG_URL_FILE")
fi
[ -n "${EVSREP_TEST_PG_URL:-}" ] || die "needs PostgreSQL: EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE"
DB="evsrep_docs2_$$"
DB_URL="${EVSREP_TEST_PG_URL%/*}/$DB"
psql -q "$EVSREP_TEST_PG_URL" -c "CREATE DATABASE $DB" >/dev/null || die "cannot create database $DB"
PIDS=()
teardown() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql -q "$EVSREP_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'rc=$?; teardown; (exit $rc); cleanup' EXIT

# --- 1. the nodes, one command each ------------------------------------------
awk '/^### Two sites with PostgreSQL/{w = 1} w && /^```sh/{c = 1; next} w && c && /^```/{exit} w && c' \
  "$EVSREP_SRC/docs/operations.md" | grep 'run-node.sh' >"$TMP/nodes.sh" || true
[ "$(wc -l <"$TMP/nodes.sh")" = 2 ] || die "operations.md: two run-node.sh lines expected, got: $(cat "$TMP/nodes.sh")"
i=0
while IFS= read -r line; do
  node=$(sed -E 's/.*run-node\.sh ([^ ]+) .*/\1/' <<<"$line")
  cmd=$(sed -E -e "s|EVSREP_DB=[^ ]+|EVSREP_DB=$DB_URL|" -e "s|\./scripts/run-node\.sh|$EVSREP_SRC/scripts/run-node.sh|" <<<"$line")
  log "node $node: $cmd 0 0"
  EVSREPD=$EVSREPD EVSREP_CLUSTER_DIR=$TMP/cluster EVSREP_DATA_DIR=$TMP/data-$node EVSREP_LEASE_MS=6000 \
    bash -c "$cmd 0 0" >>"$TMP/node-$node.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    [ -s "$TMP/data-$node/evsrepd.ports" ] && break
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "node $node exited: $(tail -n 5 "$TMP/node-$node.log")"
    sleep 0.05
  done
  [ -s "$TMP/data-$node/evsrepd.ports" ] || die "node $node wrote no ports file"
  i=$((i + 1))
done <"$TMP/nodes.sh"
NODE_B=$(sed -n 2p "$TMP/nodes.sh" | sed -E 's/.*run-node\.sh ([^ ]+) .*/\1/')
HOST_B=$(sed -n 2p "$TMP/nodes.sh" | sed -E 's/.*run-node\.sh [^ ]+ [^ ]+ ([^ ]+).*/\1/')
EVS_URL="http://$HOST_B:$(awk -F= '$1=="http"{print $2}' "$TMP/data-$NODE_B/evsrepd.ports")"
read -r TOKEN PROJECT < <(grep -v '^#' "$TMP/cluster/tokens" | head -n 1)
[ "$(psql -At "$DB_URL" -c 'SELECT count(*) FROM nodes WHERE lease_until > 0')" = 2 ] ||
  fail "two nodes with a lease expected in the store"

# --- 2. the README walkthrough against node b -------------------------------
awk '/^## Replication in /{w = 1} w && /^```sh/{c = 1; next} w && c && /^```/{exit} w && c' "$EVSREP_SRC/README.md" >"$TMP/walk.sh"
grep -q 'EVS_URL' "$TMP/walk.sh" || fail "README walkthrough does not use EVS_URL"
log "walkthrough against $NODE_B at $EVS_URL"
EVS_URL=$EVS_URL TOKEN=$TOKEN PROJECT=$PROJECT timeout 300 bash -euo pipefail "$TMP/walk.sh" >"$TMP/walk.out" 2>&1 ||
  fail "README walkthrough: exit $?: $(tail -n 10 "$TMP/walk.out")"
expect_eq "$(grep -cx 200 "$TMP/walk.out")" 2 "README walkthrough: status codes of sync and pause" || true
frozen=$(sed -n '/^{/,$p' "$TMP/walk.out" |
  jq -r 'select(.replication_status == "active-stopped") | .frozen_at | strings' 2>/dev/null || true)
[[ "$frozen" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || fail "README walkthrough: the final GET shows no frozen_at: $(cat "$TMP/walk.out")"
grep -q "forwarded to node" "$TMP/node-$NODE_B.log" || fail "node $NODE_B forwarded nothing: the walkthrough did not cross the nodes"

for p in "${PIDS[@]}"; do
  kill -TERM "$p"
  rc=0
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || fail "a node exited with $rc after SIGTERM"
done
PIDS=()
finish
