#!/usr/bin/env bash
# Installing and starting, as a newcomer or a packager does it:
#  1. `cmake --install BUILD --prefix DIR` puts evsrepd in sbin, evsrep in
#     bin, the three man pages in share/man, the systemd unit (ExecStart on
#     the installed evsrepd; systemd-analyze verify when it is there) and the
#     example config (which passes --check-config);
#  2. the installed evsrepd starts, and the installed evsrep drives it;
#  3. scripts/run.sh says what it does before it builds, and passes its
#     arguments to evsrepd.
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
: "${EVSREP_SRC:?EVSREP_SRC must point at the source tree}"
INST=$TMP/inst

# --- 1. the files ----------------------------------------------------------------
cmake --install "$EVSREP_BUILD" --prefix "$INST" >"$TMP/install.log" 2>&1 ||
  die "cmake --install failed: $(cat "$TMP/install.log")"
for f in sbin/evsrepd bin/evsrep; do
  [ -x "$INST/$f" ] || fail "not installed (or not executable): $f"
done
for f in share/man/man1/evsrep.1 share/man/man5/evsrep.conf.5 share/man/man8/evsrepd.8 \
  share/doc/evsrep/evsrep.conf.example lib/systemd/system/evsrepd.service; do
  [ -s "$INST/$f" ] || fail "not installed: $f"
done
if command -v man >/dev/null; then
  for p in evsrepd evsrep evsrep.conf; do
    MANPATH=$INST/share/man man -w "$p" >/dev/null 2>&1 || fail "man -w $p: not found under $INST/share/man"
  done
fi
UNIT=$INST/lib/systemd/system/evsrepd.service
grep -qx "ExecStart=$INST/sbin/evsrepd --config /etc/evsrep/evsrep.conf" "$UNIT" ||
  fail "unit: ExecStart does not name the installed evsrepd: $(grep ExecStart "$UNIT")"
grep -qx 'Type=simple' "$UNIT" || fail "unit: Type is not simple (evsrepd has no sd_notify)"
if grep -rq 'sd_notify' "$EVSREP_SRC/src"; then fail "evsrepd speaks sd_notify now: the unit may use Type=notify"; fi
if command -v systemd-analyze >/dev/null; then
  MANPATH=$INST/share/man timeout 60 systemd-analyze verify "$UNIT" >"$TMP/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
fi
"$INST/sbin/evsrepd" --config "$INST/share/doc/evsrep/evsrep.conf.example" --check-config \
  >"$TMP/conf.out" 2>&1 || fail "the example config fails --check-config: $(cat "$TMP/conf.out")"

# --- 2. the installed binaries work together -----------------------------------
EVSREPD=$INST/sbin/evsrepd start_daemon
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT
"$INST/bin/evsrep" --version | grep -q '^evsrep ' || fail "installed evsrep --version"
id=$("$INST/bin/evsrep" -o json volume create --size 1 --az az1 --name inst --wait | jq -r .volume.id) ||
  fail "installed evsrep: volume create"
"$INST/bin/evsrep" volume list >"$TMP/list.out" 2>&1 || fail "installed evsrep: volume list: $(cat "$TMP/list.out")"
grep -q "^$id  inst " "$TMP/list.out" || fail "installed evsrep: volume list lacks the volume: $(cat "$TMP/list.out")"
"$INST/bin/evsrep" volume delete "$id" --wait >/dev/null || fail "installed evsrep: volume delete"
stop_daemon

# --- 3. scripts/run.sh ------------------------------------------------------------
# The test's own (up to date) build directory: run.sh only checks it.
rc=0
(cd "$EVSREP_SRC" && EVSREP_BUILD_DIR=$EVSREP_BUILD EVSREP_DATA_DIR=$TMP/run \
  timeout 300 ./scripts/run.sh --version) >"$TMP/run.out" 2>&1 || rc=$?
expect_eq "$rc" 0 "run.sh --version: exit code" || true
first=$(head -n 1 "$TMP/run.out")
[[ "$first" =~ ^run.sh:\ checking ]] || fail "run.sh: first line is '$first', want what it is doing"
b=$(grep -n '^run.sh: building' "$TMP/run.out" | head -n 1 | cut -d: -f1)
v=$(grep -n '^evsrepd [0-9]' "$TMP/run.out" | head -n 1 | cut -d: -f1)
[ -n "$b" ] || fail "run.sh does not say it is building: $(cat "$TMP/run.out")"
[ -n "$v" ] || fail "run.sh did not pass --version to evsrepd: $(cat "$TMP/run.out")"
[ -z "$b" ] || [ -z "$v" ] || [ "$b" -lt "$v" ] || fail "run.sh: the building line comes after the daemon"
finish
