#!/usr/bin/env bash
# Cost of the copy-on-write sidecars of remote pairs (docs/design/
# replication.md, sidecars, "Remote links"): two evsrepd nodes on loopback
# (node a: az1 production, node b: az2 DR, one PostgreSQL), a group of 2
# pairs holding MIB MiB each; three rounds of pause, MIB MiB rewritten on
# each production disk, unthrottled sync: seconds from the sync to `active`.
# Run it twice, with and without EVSREP_SIDECAR_OFF=1 (fault-injection build:
# no sidecar is opened, the baseline):
#
#   EVSREPD=build/evsrepd EVSREP_SRC=$PWD EVSREP_BUILD=build \
#   EVSREP_TOOLS=build/tests EVSREP_TEST_PG_URL_FILE=<pg_cluster.sh state>/url \
#   [EVSREP_SIDECAR_OFF=1] [MIB=128] bench/remote_sidecar.sh
#
# (tests/tools/pg_cluster.sh start DIR makes the PostgreSQL cluster.)
. "$EVSREP_SRC/tests/func/lib.sh"
. "$EVSREP_SRC/tests/func/lib_nodes.sh"
nodes_db_create m_rc
nodes_tokens
nodes_two_sites 3000
MIB=${MIB:-128}
G=.replication_consistency_group
URL=$URL_a
nodes_group_volumes
PU1=$(attach a "$P1"); PU2=$(attach a "$P2")
for u in "$PU1" "$PU2"; do qemu-io -f raw -c "write -P 0x11 0 ${MIB}M" -c flush "$u" >/dev/null; done
R1=$(create_pair "$P1" "$D1" r1); R2=$(create_pair "$P2" "$D2" r2)
for r in "$R1" "$R2"; do wait_pair_active "$r" 120; done
GID=$(create_group g "$R1" "$R2")
group_action "$GID" os-sync-replication-consistency-group
wait_group a "$GID" replication_status active 120
for round in 1 2 3; do
  group_action "$GID" os-stop-replication-consistency-group
  wait_group a "$GID" replication_status active-stopped 10
  for u in "$PU1" "$PU2"; do qemu-io -f raw -c "write -P $((round+0x20)) 0 ${MIB}M" -c flush "$u" >/dev/null; done
  t0=$(date +%s.%N)
  group_action "$GID" os-sync-replication-consistency-group
  wait_group a "$GID" replication_status active 300
  t1=$(date +%s.%N)
  echo "round $round: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s for 2 x $MIB MiB; drcow files: $(ls "$TMP"/nb/az2/*.drcow 2>/dev/null | wc -l); opened: $(grep -c 'sidecar opened on the DR node' "$TMP/b.log")" >&2
done
finish
