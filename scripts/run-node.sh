#!/usr/bin/env bash
# One node of a multi-site cluster in one command (docs/operations.md "Two
# sites with PostgreSQL"): writes the node's config and starts evsrepd with
# it in the foreground, building it first as run.sh does.
#
#   scripts/run-node.sh NODE AZ HOST [API_PORT [NBD_PORT]]
#
# NODE: the node's name (node-a); AZ: the zone it serves (az1); HOST: the
# address the other nodes and the clients reach it at (API on HOST:API_PORT,
# default 8776; NBD for the zone on HOST:NBD_PORT, default 10809; 0 = any
# free port, see DATA_DIR/evsrepd.ports). Environment:
#   EVSREP_DB           postgresql://... the shared store (required)
#   EVSREP_CLUSTER_DIR  the cluster key and the tokens file every node shares
#                       (default ./.cluster; the first node started creates
#                       them: copy the directory to the other hosts)
#   EVSREP_DATA_DIR     this node's data (default ./.data-NODE)
#   EVSREP_LEASE_MS     the node's lease (default 12000)
#   EVSREPD             an evsrepd to run instead of building one
# Further arguments after NBD_PORT go to evsrepd.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'run-node.sh: %s\n' "$*" >&2; }
usage() { say "usage: scripts/run-node.sh NODE AZ HOST [API_PORT [NBD_PORT]] (EVSREP_DB=postgresql://... required)"; exit 2; }
[ $# -ge 3 ] || usage
node=$1 az=$2 host=$3 api_port=${4:-8776} nbd_port=${5:-10809}
shift $(($# < 5 ? $# : 5))
[ -n "${EVSREP_DB:-}" ] || { say "EVSREP_DB is not set: the nodes share a PostgreSQL store (postgresql://user@host:port/db)"; usage; }
case $EVSREP_DB in postgresql://* | postgres://*) ;; *) say "EVSREP_DB must be a postgresql:// URI"; exit 2 ;; esac
cdir=${EVSREP_CLUSTER_DIR:-$PWD/.cluster}
data=${EVSREP_DATA_DIR:-$PWD/.data-$node}
mkdir -p "$cdir" "$data"
chmod 700 "$cdir"
conf=$data/evsrep.conf
cat >"$conf" <<CONF
# written by scripts/run-node.sh $node $az $host $api_port $nbd_port
[DEFAULT]
data_dir = $data
db = $EVSREP_DB
node_name = $node
availability_zones = $az
cluster_key_file = $cdir/cluster.key
tokens = $cdir/tokens
listen = $host:$api_port
lease_ms = ${EVSREP_LEASE_MS:-12000}

[az:$az]
nbd_listen = $host:$nbd_port
CONF
evsrepd=${EVSREPD:-}
if [ -z "$evsrepd" ]; then
  build=${EVSREP_BUILD_DIR:-build}
  say "checking the packages evsrep needs (scripts/deps.sh; installs what is missing)"
  ./scripts/deps.sh
  if [ ! -f "$build/CMakeCache.txt" ]; then
    say "configuring $build/ (cmake)"
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  say "building evsrepd and the evsrep CLI in $build/"
  cmake --build "$build" -j"$(nproc)" --target evsrepd evsrep
  evsrepd=$build/evsrepd
fi
say "node $node serves $az: API http://$host:$api_port, NBD $host:$nbd_port, config $conf (Ctrl-C stops it)"
exec "$evsrepd" --config "$conf" "$@"
