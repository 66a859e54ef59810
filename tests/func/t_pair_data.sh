#!/usr/bin/env bash
# shellcheck disable=SC2119
# The data plane of a replication pair, through real NBD clients (qemu-io,
# nbdcopy) and checksums: initial sync copies production (and zeroes what DR
# held), every write acknowledged on production is already on DR, DR refuses
# writes (EPERM), a clean restart keeps the pair active and the data equal,
# deleting the pair keeps both disks' data.
. "$(dirname "$0")/lib.sh"
start_daemon

P=$(create_volume az1 1 prod)
D=$(create_volume az2 1 dr)
PU=$(nbd_uri az1 "$P")
DU=$(nbd_uri az2 "$D")

# --- production holds data before pairing: random extents at the start,
# the middle, unaligned, and the very end of the disk.
truncate -s 1G "$TMP/img"
head -c $((4 * 1024 * 1024)) /dev/urandom | dd of="$TMP/img" bs=1M seek=0 conv=notrunc status=none
head -c $((3 * 1024 * 1024 + 777)) /dev/urandom | dd of="$TMP/img" bs=1 seek=$((300 * 1024 * 1024 + 4097)) conv=notrunc status=none
head -c $((1024 * 1024)) /dev/urandom | dd of="$TMP/img" bs=1M seek=1023 conv=notrunc status=none
nbdcopy "$TMP/img" "$PU" || fail "nbdcopy into production"
sum_img=$(sha256sum <"$TMP/img" | cut -d' ' -f1)
expect_eq "$(nbd_sha256 "$PU")" "$sum_img" "production before pairing"
# DR holds garbage where production is a hole: the initial sync must zero it.
qemu-io -f raw -c 'write -P 0xee 600M 2M' -c 'write -P 0xdd 0 64k' -c flush "$DU" >/dev/null || fail "garbage into DR"

# --- pair, wait active, DR == production == image
R=$(create_pair "$P" "$D" data)
wait_through "$PAIRS/$R" .replication.replication_status active 'copying' 120
expect_eq "$(jget .replication.progress)" 100 "progress when active"
expect_eq "$(nbd_sha256 "$DU")" "$sum_img" "DR after initial sync (whole disk)"
expect_eq "$(nbd_sha256 "$PU")" "$sum_img" "production after initial sync"
qemu-io -f raw -r -c 'read -P 0 600M 2M' "$DU" >"$TMP/qio" 2>&1 || fail "read DR hole"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "DR garbage not zeroed by the initial sync"

# --- synchronous mirroring: each acknowledged write is on DR right away.
# (qemu-io returns only after the server acknowledged the write.)
RANDOM=4242
for i in $(seq 1 25); do
  pat=$(printf '0x%02x' $((RANDOM % 254 + 1)))
  off=$(((RANDOM * 32768 + RANDOM) % (1024 * 1024 * 1024 - 1024 * 1024)))
  case $((i % 3)) in
    0) len=4k; off=$((off / 4096 * 4096)) ;;
    1) len=64k; off=$((off / 65536 * 65536)) ;;
    2) len=1536; off=$((off / 512 * 512 + 512)) ;; # unaligned, may straddle chunks
  esac
  qemu-io -f raw -c "write -P $pat $off $len" "$PU" >/dev/null || { fail "write $i to production"; continue; }
  qemu-io -f raw -r -c "read -P $pat $off $len" "$DU" >"$TMP/qio" 2>&1 || fail "read $i from DR"
  grep -q 'Pattern verification failed' "$TMP/qio" && fail "write $i ($len at $off, $pat) acknowledged but not on DR"
done
# FUA write, write-zeroes and trim are mirrored too.
qemu-io -f raw -c 'write -f -P 0x42 64M 128k' "$PU" >/dev/null || fail "FUA write"
qemu-io -f raw -r -c 'read -P 0x42 64M 128k' "$DU" >"$TMP/qio" 2>&1 || fail "read FUA write from DR"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "FUA write not on DR"
qemu-io -f raw -c 'write -z 0 64k' -c 'discard 1M 1M' "$PU" >/dev/null || fail "zero/trim production"
qemu-io -f raw -r -c 'read -P 0 0 64k' -c 'read -P 0 1M 1M' "$DU" >"$TMP/qio" 2>&1 || fail "read zeroed DR"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "write-zeroes/trim not mirrored"
# A bulk copy of 8 MiB random data, then whole-disk checksums.
head -c $((8 * 1024 * 1024)) /dev/urandom >"$TMP/chunk"
nbdcopy "$TMP/chunk" "$PU" || fail "nbdcopy 8M to production"
sum_p=$(nbd_sha256 "$PU")
expect_eq "$(nbd_sha256 "$DU")" "$sum_p" "DR == production while active"
# Two writers at once (qemu-io aio) are mirrored too.
qemu-io -f raw -c 'aio_write -P 0x71 200M 1M' -c 'aio_write -P 0x72 201M 1M' -c 'aio_write -P 0x73 202M 4k' \
  -c aio_flush "$PU" >/dev/null || fail "aio writes"
nbd_cmp "$PU" "$DU" "after concurrent writes"

# --- DR export refuses writes (EPERM), data unchanged.
sum_p=$(nbd_sha256 "$PU")
# Either the export is advertised read-only (qemu: "Permission denied" at
# open) or the write is refused by the server ("Operation not permitted").
qemu-io -f raw -c 'write -P 0x99 0 4k' "$DU" >"$TMP/qio" 2>&1 || true
grep -qE 'Operation not permitted|Permission denied|read-only' "$TMP/qio" ||
  fail "write to DR did not fail with EPERM: $(cat "$TMP/qio")"
if nbdcopy "$TMP/chunk" "$DU" 2>/dev/null; then fail "nbdcopy into DR export succeeded"; fi
expect_eq "$(nbd_sha256 "$DU")" "$sum_p" "DR unchanged after refused writes"

# --- clean restart: still active (no resync from scratch), data equal, still mirroring.
stop_daemon
start_daemon
PU=$(nbd_uri az1 "$P") # the daemon listens on new ephemeral ports
DU=$(nbd_uri az2 "$D")
api GET "$PAIRS/$R"
expect_eq "$(jget .replication.replication_status)" active "replication_status right after clean restart"
expect_eq "$(jget .replication.status)" available "status after restart"
expect_eq "$(nbd_sha256 "$DU")" "$sum_p" "DR after restart"
expect_eq "$(nbd_sha256 "$PU")" "$sum_p" "production after restart"
qemu-io -f raw -c 'write -P 0x6b 10M 64k' "$PU" >/dev/null || fail "write after restart"
qemu-io -f raw -r -c 'read -P 0x6b 10M 64k' "$DU" >"$TMP/qio" 2>&1 || fail "read after restart"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "mirroring stopped after restart"

# --- pair delete keeps both disks' data; DR becomes writable.
sum_p=$(nbd_sha256 "$PU")
api DELETE "$PAIRS/$R"
expect_status 202 "delete pair"
wait_gone "$PAIRS/$R"
expect_eq "$(nbd_sha256 "$PU")" "$sum_p" "production data after pair delete"
expect_eq "$(nbd_sha256 "$DU")" "$sum_p" "DR data after pair delete"
qemu-io -f raw -c 'write -P 0x11 0 4k' "$DU" >/dev/null || fail "former DR refuses writes after pair delete"
qemu-io -f raw -r -c 'read -P 0x11 0 4k' "$DU" >"$TMP/qio" 2>&1
grep -q 'Pattern verification failed' "$TMP/qio" && fail "write to former DR lost"
# Writes to production no longer reach it.
qemu-io -f raw -c 'write -P 0x22 0 4k' "$PU" >/dev/null || fail "write production after delete"
qemu-io -f raw -r -c 'read -P 0x11 0 4k' "$DU" >"$TMP/qio" 2>&1
grep -q 'Pattern verification failed' "$TMP/qio" && fail "unpaired production still mirrored to former DR"

finish
