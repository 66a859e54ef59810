#!/usr/bin/env bash
# The documentation's examples run as written (issue 15):
#  1. the EXAMPLE(S) sections of the man pages, extracted from the roff
#     source: evsrep.conf(5)'s config passes --check-config and starts a
#     daemon; evsrepd(8)'s command lines run (daemons started, checked,
#     stopped); evsrep(1)'s script runs against a daemon from start to end;
#  2. the README's walkthrough ("Replication in ... requests") runs and
#     shows its status codes and a frozen_at;
#  3. every relative link of README.md and docs/ and every docs/ path a man
#     page names lead to a file of the repository, and no documentation
#     points to a host other than the examples' own.
# Paths are rewritten to the test's temporary directory (/var/lib/evsrep,
# /srv/evs, /etc/evsrep/evsrep.conf, /tmp/evs, .data/tokens) and the API URL
# to the test daemon's; nothing else is changed.
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
: "${EVSREP_SRC:?EVSREP_SRC must point at the source tree}"
MAN=$EVSREP_SRC/man
export PATH="$EVSREP_BUILD:$(dirname "$EVSREPD"):$PATH"

# man_examples PAGE: the no-fill blocks of its EXAMPLE(S) section, unescaped.
man_examples() {
  awk '/^\.SH /{ex = ($0 ~ /^\.SH "?EXAMPLES?"?$/)} ex && /^\.nf/{nf = 1; next} ex && /^\.fi/{nf = 0; next} ex && nf' "$1" |
    sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\e/\\/g'
}

# --- 1a. evsrep.conf(5): its config ------------------------------------------------
man_examples "$MAN/evsrep.conf.5" | sed -e "s|/var/lib/evsrep|$TMP/conf/data|g" -e "s|/srv/evs|$TMP/conf/srv|g" \
  -e 's|0\.0\.0\.0:[0-9]*|127.0.0.1:0|g' >"$TMP/evsrep.conf"
grep -q '^\[DEFAULT\]' "$TMP/evsrep.conf" || fail "evsrep.conf(5): no example config extracted"
"$EVSREPD" --config "$TMP/evsrep.conf" --check-config >"$TMP/c.out" 2>&1 ||
  fail "evsrep.conf(5) example: --check-config: $(cat "$TMP/c.out")"

# The bounds the pages give for --chunk-size are the daemon's.
for page in evsrepd.8 evsrep.conf.5; do
  max=$(tr '\n' ' ' <"$MAN/$page" | grep -oE '4096 (to|and)( \.[A-Z]+)? [0-9]+' | head -n 1 | awk '{print $NF}')
  [ -n "$max" ] || { fail "$page: no chunk size range found"; continue; }
  "$EVSREPD" --data-dir "$TMP/cs" --chunk-size "$max" --check-config >/dev/null 2>&1 ||
    fail "$page: chunk size up to $max, but evsrepd refuses $max"
  if "$EVSREPD" --data-dir "$TMP/cs" --chunk-size $((max * 2)) --check-config >/dev/null 2>&1; then
    fail "$page: chunk size up to $max, but evsrepd takes $((max * 2))"
  fi
done

# --- 1b. evsrepd(8): every command line ----------------------------------------------
man_examples "$MAN/evsrepd.8" | sed -e "s|/tmp/evs|$TMP/evs|g" -e "s|/etc/evsrep/evsrep.conf|$TMP/evsrep.conf|g" \
  >"$TMP/evsrepd.examples"
[ "$(grep -c '^evsrepd ' "$TMP/evsrepd.examples")" -ge 2 ] || fail "evsrepd(8): examples not extracted"
bg=""
stop_bg() {
  [ -n "$bg" ] || return 0
  kill -TERM "$bg"
  local rc=0
  wait "$bg" || rc=$?
  [ "$rc" = 0 ] || fail "evsrepd(8) example daemon: exit $rc after SIGTERM: $(tail -n 5 "$TMP/bg.log")"
  bg=""
}
while IFS= read -r line; do
  [ -n "$line" ] || continue
  case "$line" in
  evsrepd*--check-config*)
    bash -c "$line" >"$TMP/l.out" 2>&1 || fail "evsrepd(8) example '$line': $(cat "$TMP/l.out")" ;;
  evsrepd*)
    stop_bg
    find "$TMP" -name evsrepd.ports -delete
    bash -c "exec $line" >"$TMP/bg.log" 2>&1 &
    bg=$!
    for _ in $(seq 1 200); do
      [ -n "$(find "$TMP" -name evsrepd.ports)" ] && break
      kill -0 "$bg" 2>/dev/null || break
      sleep 0.05
    done
    [ -n "$(find "$TMP" -name evsrepd.ports)" ] || fail "evsrepd(8) example '$line' did not start: $(tail -n 5 "$TMP/bg.log")" ;;
  *)
    bash -c "$line" >"$TMP/l.out" 2>&1 || fail "evsrepd(8) example '$line': $(cat "$TMP/l.out")" ;;
  esac
done <"$TMP/evsrepd.examples"
stop_bg

# --- 1c. evsrep(1): the whole script against a daemon ------------------------------
start_daemon
man_examples "$MAN/evsrep.1" | sed -e "s|\.data/tokens|$DATA/tokens|g" -e "s|/var/lib/evsrep/tokens|$DATA/tokens|g" \
  -e "s|http://127.0.0.1:8776|$URL|g" >"$TMP/evsrep.examples"
grep -q 'evsrep group sync' "$TMP/evsrep.examples" || fail "evsrep(1): examples not extracted"
env -u EVS_URL -u EVS_TOKEN -u EVS_PROJECT timeout 600 bash -euo pipefail "$TMP/evsrep.examples" >"$TMP/e.out" 2>&1 ||
  fail "evsrep(1) examples: exit $?: $(tail -n 15 "$TMP/e.out")"
tail -n 1 "$TMP/e.out" | grep -qx gone || fail "evsrep(1) examples: the last example prints '$(tail -n 1 "$TMP/e.out")', not gone"
api GET volumes
expect_eq "$(jget '.volumes | length')" 0 "evsrep(1) examples leave no volume" || true

# --- 2. the README walkthrough ---------------------------------------------------------
awk '/^## Replication in /{w = 1} w && /^```sh/{c = 1; next} w && c && /^```/{exit} w && c' "$EVSREP_SRC/README.md" |
  sed -e "s|http://127.0.0.1:8776|$URL|g" >"$TMP/walk.sh"
grep -q 'os-stop-replication-consistency-group' "$TMP/walk.sh" || fail "README walkthrough not extracted"
n=$(grep -cE '^ *(P=|D=|R=|G=)?\$?\(?curl ' "$TMP/walk.sh" || true)
title=$(grep -oE '^## Replication in [a-z]+ requests' "$EVSREP_SRC/README.md" | awk '{print $4}')
words=(zero one two three four five six seven eight nine ten)
expect_eq "${words[$n]:-$n}" "$title" "README walkthrough: requests counted in its title (curl lines, polls aside)" || true
TOKEN=$TOKEN PROJECT=$PROJECT timeout 300 bash -euo pipefail "$TMP/walk.sh" >"$TMP/walk.out" 2>&1 ||
  fail "README walkthrough: exit $?: $(tail -n 10 "$TMP/walk.out")"
expect_eq "$(grep -cx 200 "$TMP/walk.out")" 2 "README walkthrough: status codes of sync and pause" || true
frozen=$(sed -n '/^{/,$p' "$TMP/walk.out" |
  jq -r 'select(.replication_status == "active-stopped") | .frozen_at | strings' 2>/dev/null || true)
[[ "$frozen" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || fail "README walkthrough: the final GET shows no frozen_at: $(cat "$TMP/walk.out")"

# --- 3. links stay inside the repository ---------------------------------------------
cd "$EVSREP_SRC"
for md in README.md docs/*.md docs/design/*.md; do
  dir=$(dirname "$md")
  { grep -oE '\]\([^)]+\)' "$md" || true; } | sed -e 's/^](//' -e 's/)$//' | while IFS= read -r target; do
    case "$target" in
    http://* | https://* | mailto:*) fail "$md links outside the repository: $target" ;;
    \#*) ;;
    *) [ -e "$dir/${target%%#*}" ] || fail "$md: broken link $target" ;;
    esac
  done
done
for page in man/*.[158]; do
  { grep -oE 'docs/[A-Za-z0-9_./-]*[A-Za-z0-9_/]' "$page" || true; } | sort -u | while IFS= read -r path; do
    [ -e "$path" ] || fail "$page names $path, which is not in the repository"
  done
  { grep -oE 'contrib/[A-Za-z0-9_./-]*[A-Za-z0-9_]' "$page" || true; } | sort -u | while IFS= read -r path; do
    [ -e "$path" ] || fail "$page names $path, which is not in the repository"
  done
done
# URLs in prose: only the examples' own hosts.
if grep -rnoE 'https?://[A-Za-z0-9.-]+' README.md docs man | grep -vE '://(127\.0\.0\.[0-9]+|localhost|evs\.example|host|\[::1\])$' >"$TMP/urls"; then
  fail "documentation names hosts outside the repository: $(cat "$TMP/urls")"
fi
finish
