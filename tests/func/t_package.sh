#!/usr/bin/env bash
# The Debian package, as an operator installs it on a clean Debian 12:
#  1. `cpack -G DEB` in the build directory makes evsrep_<version>_<arch>.deb
#     with the binaries, man pages, unit and config template, and a Depends
#     line that names the shared libraries evsrepd needs;
#  2. `dpkg -i` installs it: dependencies satisfied, the evsrep system user,
#     /var/lib/evsrep owned by it, /etc/evsrep/evsrep.conf that passes
#     --check-config;
#  3. the installed evsrepd, started as the evsrep user directly (systemd
#     does not run here), serves the walkthrough driven by the installed
#     evsrep CLI: two volumes, a pair, a group, pause (frozen_at set), sync;
#  4. `dpkg --purge` removes the files and the config, and keeps the data.
# It installs a package system-wide, so it needs root (CI runs as root); a
# leftover evsrep package from an earlier run is purged first.
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
[ "$(id -u)" -eq 0 ] || die "t_package installs a .deb with dpkg: run it as root (CI does)"
for t in cpack dpkg dpkg-deb setpriv; do command -v "$t" >/dev/null || die "$t not found"; done

purge_pkg() {
  if dpkg-query -W -f='${Status}' evsrep 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg --purge evsrep >>"$TMP/dpkg.log" 2>&1 || log "dpkg --purge evsrep failed: $(tail -n 5 "$TMP/dpkg.log")"
  fi
}
trap 'rc=$?; purge_pkg; (exit $rc); cleanup' EXIT
purge_pkg

# --- 1. the package ----------------------------------------------------------------
(cd "$EVSREP_BUILD" && cpack -G DEB -B "$TMP/pkg") >"$TMP/cpack.log" 2>&1 ||
  die "cpack -G DEB failed: $(tail -n 20 "$TMP/cpack.log")"
DEB=$(ls "$TMP"/pkg/evsrep_*.deb 2>/dev/null | head -n 1)
[ -s "$DEB" ] || die "cpack made no evsrep_*.deb: $(ls "$TMP/pkg")"
expect_eq "$(dpkg-deb -f "$DEB" Package)" evsrep "package name"
depends=$(dpkg-deb -f "$DEB" Depends)
for lib in adduser libmicrohttpd12 libjansson4 libsqlite3-0 libgnutls30 libpq5; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
dpkg-deb -c "$DEB" | awk '{print $6}' >"$TMP/contents"
for f in ./usr/sbin/evsrepd ./usr/bin/evsrep ./usr/lib/systemd/system/evsrepd.service \
  ./usr/share/evsrep/evsrep.conf ./usr/share/man/man8/evsrepd.8 ./usr/share/man/man1/evsrep.1 \
  ./usr/share/man/man5/evsrep.conf.5; do
  grep -qx "$f" "$TMP/contents" || fail "the package lacks $f"
done
dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/lib/systemd/system/evsrepd.service >"$TMP/unit"
grep -qx 'ExecStart=/usr/sbin/evsrepd --config /etc/evsrep/evsrep.conf' "$TMP/unit" ||
  fail "packaged unit: ExecStart is $(grep ExecStart "$TMP/unit")"

# --- 2. install ----------------------------------------------------------------------
dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || die "dpkg -i failed: $(tail -n 20 "$TMP/dpkg.log")"
dpkg-query -W -f='${Status}' evsrep | grep -q 'install ok installed' || fail "dpkg: evsrep not installed"
getent passwd evsrep >/dev/null || fail "no evsrep user after install"
[ "$(stat -c '%U %a' /var/lib/evsrep 2>/dev/null)" = "evsrep 750" ] ||
  fail "/var/lib/evsrep: $(stat -c '%U %a' /var/lib/evsrep 2>&1), want 'evsrep 750'"
[ -s /etc/evsrep/evsrep.conf ] || fail "no /etc/evsrep/evsrep.conf after install"
/usr/sbin/evsrepd --config /etc/evsrep/evsrep.conf --check-config >"$TMP/check.out" 2>&1 ||
  fail "installed config fails --check-config: $(cat "$TMP/check.out")"
grep -q 'systemd is not running' "$TMP/dpkg.log" || [ -d /run/systemd/system ] ||
  fail "postinst did not say how to start evsrepd without systemd: $(cat "$TMP/dpkg.log")"

# --- 3. the installed daemon as the evsrep user, driven by the installed CLI ----------
# The installed config with this test's directories; start_daemon adds free
# ports (--listen/--nbd-listen) and the data dir.
chmod 0755 "$TMP"
sed -e "s#/var/lib/evsrep#$DATA#g" /etc/evsrep/evsrep.conf >"$TMP/pkg.conf"
mkdir -p "$DATA/az1" "$DATA/az2"
chown -R evsrep:evsrep "$DATA"
cat >"$TMP/evsrepd-as-evsrep" <<EOF
#!/bin/sh
exec setpriv --reuid=evsrep --regid=evsrep --clear-groups /usr/sbin/evsrepd --config $TMP/pkg.conf "\$@"
EOF
chmod 0755 "$TMP/evsrepd-as-evsrep"
EVSREPD=$TMP/evsrepd-as-evsrep start_daemon
[ "$(stat -c %U "$DATA/tokens")" = evsrep ] || fail "tokens file not made by the evsrep user"
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT
CLI=/usr/bin/evsrep
P=$($CLI -o json volume create --size 1 --az az1 --name pkg-prod --wait | jq -r .volume.id) || fail "volume create (az1)"
D=$($CLI -o json volume create --size 1 --az az2 --name pkg-dr --wait | jq -r .volume.id) || fail "volume create (az2)"
R=$($CLI -o json pair create --production "$P" --dr "$D" --wait | jq -r .replication.id) || fail "pair create"
G=$($CLI -o json group create --pair "$R" --name pkg --wait | jq -r .replication_consistency_group.id) ||
  fail "group create"
$CLI group sync "$G" --wait >"$TMP/sync.out" 2>&1 || fail "group sync: $(cat "$TMP/sync.out")"
$CLI group pause "$G" >"$TMP/pause.out" 2>&1 || fail "group pause: $(cat "$TMP/pause.out")"
frozen=$($CLI -o json group show "$G" | jq -r .replication_consistency_group.frozen_at) || fail "group show"
[[ "$frozen" =~ ^20[0-9]{2}- ]] || fail "frozen_at after the pause: '$frozen'"
$CLI group sync "$G" --wait >"$TMP/sync.out" 2>&1 || fail "group sync after the pause: $(cat "$TMP/sync.out")"
rs=$($CLI -o json group show "$G" | jq -r .replication_consistency_group.replication_status)
expect_eq "$rs" active "group replication status after the sync"
stop_daemon

# --- 4. purge ---------------------------------------------------------------------------
dpkg --purge evsrep >"$TMP/dpkg.log" 2>&1 || fail "dpkg --purge: $(tail -n 20 "$TMP/dpkg.log")"
for f in /usr/sbin/evsrepd /usr/bin/evsrep /etc/evsrep/evsrep.conf; do
  [ ! -e "$f" ] || fail "$f still there after purge"
done
[ -d /var/lib/evsrep ] || fail "purge removed /var/lib/evsrep (data must be kept)"
[ -s "$DATA/evsrep.db" ] || fail "purge touched the data dir"
finish
