#!/usr/bin/env bash
# Self test of the consistency checker (seqwriter + seqcheck) WITHOUT evsrepd:
# against nbdkit memory disks, a clean run must pass and every kind of broken
# image must fail (a missing block, a slot holding an older seq, a torn block,
# disks in the wrong order, acknowledged writes missing), so a green
# t_group_consistency really means something.
. "$(dirname "$0")/lib.sh"
TOOLS=${EVSREP_TOOLS:-$(dirname "$EVSREPD")/tests}
SW=$TOOLS/seqwriter
SC=$TOOLS/seqcheck
if [ ! -x "$SW" ] || [ ! -x "$SC" ]; then die "seqwriter/seqcheck not built in $TOOLS"; fi
command -v nbdkit >/dev/null || die "nbdkit not installed"

NBDKIT_PIDS=()
stop_nbdkit() { local p; for p in "${NBDKIT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
on_exit() { local rc=$?; stop_nbdkit; (exit "$rc"); cleanup; }
trap on_exit EXIT
U=()
for i in 0 1 2 3; do
  nbdkit -f -U "$TMP/s$i.sock" memory 64M &
  NBDKIT_PIDS+=($!)
  U+=("nbd+unix:///?socket=$TMP/s$i.sock")
done
for i in 0 1 2 3; do
  for _ in $(seq 1 100); do [ -S "$TMP/s$i.sock" ] && break; sleep 0.05; done
done
zero_all() { local u; for u in "${U[@]}"; do qemu-io -f raw -c 'write -z 0 2M' "$u" >/dev/null; done; }
R=(-r 1M) # 256 slots per disk, 1024 in all: runs below wrap.

# expect_check WANT_RC WHAT [seqcheck args...]
expect_check() {
  local want=$1 what=$2 rc=0
  shift 2
  "$SC" -q "${R[@]}" "$@" >"$TMP/sc.out" 2>"$TMP/sc.err" || rc=$?
  [ "$rc" = "$want" ] || fail "$what: seqcheck rc $rc, want $want: $(cat "$TMP/sc.err")"
  [ "$want" != 1 ] || grep -q INCONSISTENT "$TMP/sc.err" || fail "$what: no INCONSISTENT message"
}

# 1. clean run with wrap: consistent, max = last acknowledged, -a/-b bounds.
last=$("$SW" -q -R 42 "${R[@]}" -n 3000 -p "$TMP/prog" "${U[@]}") || fail "seqwriter failed"
expect_eq "$last" 3000 "last acknowledged seq"
expect_eq "$(cat "$TMP/prog")" 3000 "progress file"
expect_check 0 "clean wrapped run" "${U[@]}"
expect_eq "$("$SC" -q "${R[@]}" -m "${U[@]}")" 3000 "--max"
expect_check 0 "expect-min met" -a 3000 -b 3000 "${U[@]}"
expect_check 1 "expect-min not met" -a 3001 "${U[@]}"
expect_check 1 "expect-max exceeded" -b 2999 "${U[@]}"

# 2. a zeroed block in the window: gap.
# seq 2524 -> i=2523, disk 3, slot (2523/4)%256 = 118.
qemu-io -f raw -c "write -z $((118 * 4096)) 4096" "${U[3]}" >/dev/null
expect_check 1 "zeroed block" "${U[@]}"
grep -q 'seq 2524' "$TMP/sc.err" || fail "gap not named as seq 2524: $(cat "$TMP/sc.err")"

# 3. a slot holding an older seq (disk 0 frozen at 2000, others at 2100).
zero_all
"$SW" -q -R 7 "${R[@]}" -n 2000 "${U[@]}" >/dev/null
nbdcopy "${U[0]}" "$TMP/d0.img"
"$SW" -q -R 7 "${R[@]}" -n 2100 "${U[@]}" >/dev/null
expect_check 0 "rewritten run" "${U[@]}"
nbdcopy "$TMP/d0.img" "${U[0]}"
expect_check 1 "older seq in a slot" "${U[@]}"

# 4. a torn block (payload changed, header intact).
"$SW" -q -R 7 "${R[@]}" -n 2100 "${U[@]}" >/dev/null
qemu-io -f raw -c "write -P 0x11 $((5 * 4096 + 2000)) 512" "${U[1]}" >/dev/null
expect_check 1 "torn block" "${U[@]}"

# 5. disks in the wrong order, wrong region: misplaced.
"$SW" -q -R 7 "${R[@]}" -n 2100 "${U[@]}" >/dev/null
expect_check 0 "repaired" "${U[@]}"
expect_check 1 "disks swapped" "${U[1]}" "${U[0]}" "${U[2]}" "${U[3]}"
expect_check 1 "wrong region" -r 2M "${U[@]}"

# 6. a prefix is consistent: no-wrap run stopped early; a prefix image
# produced by truncating the newest writes still passes.
zero_all
"$SW" -q -R 9 "${R[@]}" -n 777 "${U[@]}" >/dev/null
expect_check 0 "short run" -a 777 -b 777 "${U[@]}"
# A later run on top with another id: mixed runs need --run-id.
"$SW" -q -R 10 "${R[@]}" -n 5 "${U[@]}" >/dev/null
expect_check 2 "mixed runs without --run-id" "${U[@]}"
expect_check 0 "run 10 only" -R 10 -a 5 -b 5 "${U[@]}"
last=$("$SW" -q -W -R 11 "${R[@]}" -n 5000 "${U[@]}")
expect_eq "$last" 1024 "no-wrap stops when the region is full"

# 7. empty disks are trivially a prefix (max 0); writer refuses read-only.
zero_all
expect_check 0 "empty" -b 0 "${U[@]}"
nbdkit -f -r -U "$TMP/ro.sock" memory 8M &
NBDKIT_PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$TMP/ro.sock" ] && break; sleep 0.05; done
if "$SW" -q -n 1 "nbd+unix:///?socket=$TMP/ro.sock" >/dev/null 2>&1; then fail "seqwriter wrote to a read-only export"; fi
expect_check 0 "read-only export is readable" -r 4M "nbd+unix:///?socket=$TMP/ro.sock"

# 8. a write error (server gone) exits 2 and still prints the last seq.
rc=0
"$SW" -q "${R[@]}" -t 5 "${U[@]}" >"$TMP/sw.out" 2>/dev/null &
swp=$!
sleep 0.3
kill "${NBDKIT_PIDS[2]}"
wait "$swp" || rc=$?
expect_eq "$rc" 2 "seqwriter exit on write error"
[[ "$(cat "$TMP/sw.out")" =~ ^[0-9]+$ ]] || fail "no last seq printed after a write error"

finish
