#!/usr/bin/env bash
# The NBD data path with real clients from Debian: qemu-io, qemu-img, nbdcopy
# and nbdinfo write and read volumes; checksums compare data; data survives a
# clean restart and a kill -9 (for flushed writes).
. "$(dirname "$0")/lib.sh"
start_daemon

V=$(create_volume az1 1 nbdvol)
U=$(nbd_uri az1 "$V")

# nbdinfo sees the export and its size.
size=$(nbdinfo --size "$U")
expect_eq "$size" $((1024 * 1024 * 1024)) "nbdinfo size"
# Export names are secrets: NBD_OPT_LIST shows nothing (t_nbd_access has more).
if nbdinfo --list "nbd://$NBD_AZ1" 2>/dev/null | grep -q "${U##*/}"; then fail "export listed by NBD_OPT_LIST"; fi

# qemu-io patterned writes, read back with pattern verification.
qemu-io -f raw -c 'write -P 0xa5 0 1M' -c 'write -P 0x5a 100M 64k' -c 'flush' "$U" >/dev/null ||
  fail "qemu-io write"
qemu-io -f raw -c 'read -P 0xa5 0 1M' -c 'read -P 0x5a 100M 64k' -c 'read -P 0 2M 1M' "$U" \
  >"$TMP/qio" 2>&1 || fail "qemu-io read"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "qemu-io pattern mismatch"

# nbdcopy a random 64 MiB image in and out, compare checksums.
head -c $((64 * 1024 * 1024)) /dev/urandom >"$TMP/img"
truncate -s 1G "$TMP/img"
nbdcopy "$TMP/img" "$U" || fail "nbdcopy in"
nbdcopy "$U" "$TMP/back" || fail "nbdcopy out"
expect_eq "$(sha256sum <"$TMP/back" | cut -d' ' -f1)" "$(sha256sum <"$TMP/img" | cut -d' ' -f1)" "checksum after nbdcopy"

# qemu-img compare through the NBD export.
qemu-img compare -f raw -F raw "$TMP/img" "$U" >/dev/null || fail "qemu-img compare"

# Unknown export is refused.
if nbdinfo "nbd://$NBD_AZ1/6a1a7d05-41a5-4c4e-9b39-9c6c6e2a8f10" >/dev/null 2>&1; then
  fail "unknown export accepted"
fi
# The volume id opens nothing; an attachment of an az1 volume is not served by
# az2's endpoint.
if nbdinfo "nbd://$NBD_AZ1/$V" >/dev/null 2>&1; then fail "volume id accepted as an export name"; fi
if nbdinfo "nbd://$NBD_AZ2/${U##*/}" >/dev/null 2>&1; then fail "az1 volume served on az2"; fi

# Trim and zero read back as zeroes.
qemu-io -f raw -c 'discard 0 1M' -c 'write -z 4M 1M' "$U" >/dev/null || fail "discard/zero"
qemu-io -f raw -c 'read -P 0 0 1M' -c 'read -P 0 4M 1M' "$U" >"$TMP/qio" 2>&1 || fail "read zeroes"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "trimmed range not zero"
nbdcopy "$U" "$TMP/ref" || fail "nbdcopy ref"
sum_ref=$(sha256sum <"$TMP/ref" | cut -d' ' -f1)

# Garbage on the NBD port closes that connection only; the daemon lives on.
head -c 4096 /dev/urandom >/dev/tcp/127.0.0.1/"${NBD_AZ1#*:}" 2>/dev/null || true
printf 'NBDMAGIC' >/dev/tcp/127.0.0.1/"${NBD_AZ1#*:}" 2>/dev/null || true
nbdinfo --size "$U" >/dev/null || fail "server dead after garbage"

# Clean restart: data survives.
stop_daemon
start_daemon
U=$(nbd_uri az1 "$V") # ports are new after every start
nbdcopy "$U" "$TMP/after" || fail "nbdcopy after restart"
expect_eq "$(sha256sum <"$TMP/after" | cut -d' ' -f1)" "$sum_ref" "checksum after restart"

# kill -9 after a flushed write: the write survives.
qemu-io -f raw -c 'write -P 0x77 8M 1M' -c 'flush' "$U" >/dev/null || fail "write before crash"
crash_daemon
start_daemon
U=$(nbd_uri az1 "$V")
qemu-io -f raw -c 'read -P 0x77 8M 1M' "$U" >"$TMP/qio" 2>&1 || fail "read after crash"
grep -q 'Pattern verification failed' "$TMP/qio" && fail "flushed write lost by kill -9"

# A deleted volume is no longer exported.
api DELETE "volumes/$V"
expect_status 202 "delete"
wait_gone "volumes/$V"
if nbdinfo "$U" >/dev/null 2>&1; then fail "deleted volume still exported"; fi

finish
