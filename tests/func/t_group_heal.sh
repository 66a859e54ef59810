#!/usr/bin/env bash
# A group sync heals a member whose mirror is not running
# (docs/semantics.md "Group actions", sync; docs/design/faults.md "Members
# without a running mirror"):
#   - a DR disk missing at start-up leaves its pair in error (mirror not
#     started) and the group's replication in error;
#   - a sync then refuses with 409 naming the pair, the missing volume and
#     what to do, and changes nothing;
#   - production stays writable meanwhile: those writes are not tracked;
#   - once the file is back (restart), a sync restarts that member's mirror
#     with a full copy and resyncs it with the others: the pair is available
#     again, the group active, and DR equals production byte for byte,
#     including the writes made while the mirror was down.
. "$(dirname "$0")/lib.sh"
# Each check goes on after a failure (|| true under errexit), so one run
# shows every broken behaviour, not only the first.
G=.replication_consistency_group
SYNC=os-sync-replication-consistency-group

start_daemon
P1=$(create_volume az1 1 hp1)
D1=$(create_volume az2 1 hd1)
P2=$(create_volume az1 1 hp2)
D2=$(create_volume az2 1 hd2)
qemu-io -f raw -c 'write -P 0x21 0 1M' -c flush "$(nbd_uri az1 "$P2")" >/dev/null || die "seed P2"
R1=$(create_pair "$P1" "$D1" hr1)
R2=$(create_pair "$P2" "$D2" hr2)
wait_pair_active "$R1"
wait_pair_active "$R2"
GID=$(create_group heal "$R1" "$R2")
group_action "$GID" "$SYNC"
expect_status 200 "first sync" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|active-stopped|inactive' 120 || true

# D2's file disappears while the daemon is down.
stop_daemon
[ -e "$DATA/az2/$D2" ] || die "DR volume file $DATA/az2/$D2 not found (layout changed?)"
mv "$DATA/az2/$D2" "$TMP/d2.saved"
start_daemon
api GET "$PAIRS/$R2"
expect_eq "$(jget .replication.status)" error "pair with a missing DR disk" || true
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" error "group with a member in error" || true

# Sync cannot restart it: 409, saying which volume and what to do.
group_action "$GID" "$SYNC"
expect_status 409 "sync with a member's DR disk missing" || true
[[ "$BODY" == *"$R2"* && "$BODY" == *"$D2"* && "$BODY" =~ restore ]] ||
  fail "409 must name pair $R2, volume $D2 and what to do: $BODY"

# Production keeps taking writes; no mirror tracks them.
qemu-io -f raw -c 'write -P 0x43 512M 1M' -c flush "$(nbd_uri az1 "$P2")" >/dev/null ||
  fail "a write to production P2 while its mirror is down"

# The file comes back: the pair stays in error until a sync restarts it.
stop_daemon
mv "$TMP/d2.saved" "$DATA/az2/$D2"
start_daemon
api GET "$PAIRS/$R2"
expect_eq "$(jget .replication.status)" error "pair after its DR disk is back (before a sync)" || true
group_action "$GID" "$SYNC"
expect_status 200 "sync restarts the member's mirror" || true
wait_through "$RCGS/$GID" "$G.replication_status" active 'copying|error|inactive' 120 || true
api GET "$PAIRS/$R2"
expect_eq "$(jget .replication.status)" available "pair after the healing sync" || true
expect_eq "$(jget .replication.fault_level)" 0 "fault level after the healing sync" || true
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.status")" available "group after the healing sync" || true
# qemu-img compare skips what both sides report as holes (fast on 1 GiB).
qemu-img compare -q -f raw -F raw "$(nbd_uri az1 "$P1")" "$(nbd_uri az2 "$D1")" ||
  fail "DR $D1 differs from production after the healing sync"
qemu-img compare -q -f raw -F raw "$(nbd_uri az1 "$P2")" "$(nbd_uri az2 "$D2")" ||
  fail "DR $D2 differs from production after the healing sync"
qemu-io -f raw -r -c 'read -P 0x43 512M 1M' "$(nbd_uri az2 "$D2")" >/dev/null ||
  fail "the write made while the mirror was down is not on DR"
# The DR side is read-only again (its mirror runs).
if qemu-io -f raw -c 'write -P 0x55 0 4k' "$(nbd_uri az2 "$D2")" >/dev/null 2>&1; then
  fail "DR disk $D2 accepted a client write after the healing sync"
fi
finish
