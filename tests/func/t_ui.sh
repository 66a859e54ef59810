#!/usr/bin/env bash
# The status page (GET /ui/, docs/operations.md "The status page"): served
# without a token with its security headers; only the embedded files, never
# anything else (unknown names and path traversal, encoded or not, are 404);
# then a real browser (Debian's chromium, headless, driven by puppeteer-core
# from tests/ui) logs in, syncs a paused group from the page, watches its
# pair go copying -> active, pauses it (new frozen_at) and syncs it again
# (tests/ui/ui_test.js lists its checks). The token must never reach the
# access log. Screenshots: $TMP/ui-artefacts, copied to
# $EVSREP_BUILD/ui-artefacts after every run.
. "$(dirname "$0")/lib.sh"

SRC=${EVSREP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${EVSREP_BUILD:-$SRC/build}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ART="$TMP/ui-artefacts"
G=.replication_consistency_group

command -v node >/dev/null || die "node is missing (scripts/deps.sh installs nodejs)"
command -v npm >/dev/null || die "npm is missing (scripts/deps.sh installs npm)"
[ -x "$CHROMIUM" ] || die "$CHROMIUM is missing (scripts/deps.sh installs chromium)"

# puppeteer-core, installed from tests/ui/package-lock.json into the build
# tree, again only when the lock file changed. It never downloads a browser:
# it drives Debian's chromium.
NODE_DIR="$BUILD/ui-node"
if ! cmp -s "$SRC/tests/ui/package-lock.json" "$NODE_DIR/package-lock.json" ||
  [ ! -d "$NODE_DIR/node_modules/puppeteer-core" ]; then
  log "installing puppeteer-core into $NODE_DIR (npm ci)"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$SRC/tests/ui/package.json" "$SRC/tests/ui/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 timeout 300 npm ci --no-audit --no-fund --ignore-scripts) >&2 ||
    die "npm ci of tests/ui failed"
fi

start_daemon
grep -q "^  page:     http://127.0.0.1:${URL##*:}/ui/ " "$TMP/daemon.log" ||
  fail "the banner does not show the status page URL: $(grep -a "page:" "$TMP/daemon.log")"

# --- the page's own routes, with curl
hdr() { grep -i "^$1:" "$TMP/h" | head -n 1 | cut -d: -f2- | sed 's/^ *//; s/\r$//'; }
get() { # get PATH [curl args]: sets STATUS; body in $TMP/b, headers in $TMP/h
  local p=$1
  shift
  STATUS=$(curl -s --path-as-is -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' "$@" "$URL$p") || STATUS=000
}
declare -A CTYPE=([/ui/]="text/html; charset=utf-8" [/ui/index.html]="text/html; charset=utf-8"
  [/ui/app.js]="text/javascript; charset=utf-8" [/ui/style.css]="text/css; charset=utf-8")
CSP="default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
for p in /ui/ /ui/index.html /ui/app.js /ui/style.css; do
  get "$p"
  expect_eq "$STATUS" 200 "GET $p without a token"
  expect_eq "$(hdr Content-Type)" "${CTYPE[$p]}" "Content-Type of $p"
  expect_eq "$(hdr Cache-Control)" no-store "Cache-Control of $p"
  expect_eq "$(hdr X-Content-Type-Options)" nosniff "X-Content-Type-Options of $p"
  expect_eq "$(hdr Referrer-Policy)" no-referrer "Referrer-Policy of $p"
  case "$(hdr Content-Security-Policy)" in
  "$CSP"*) ;;
  *) fail "Content-Security-Policy of $p: $(hdr Content-Security-Policy)" ;;
  esac
done
# The embedded files are the repository's, byte for byte.
for f in index.html app.js style.css; do
  get "/ui/$f"
  cmp -s "$TMP/b" "$SRC/src/daemon/ui/$f" || fail "/ui/$f differs from src/daemon/ui/$f"
done
get /ui/
cmp -s "$TMP/b" "$SRC/src/daemon/ui/index.html" || fail "/ui/ is not index.html"
# No inline script or style: the CSP would block it.
grep -qiE '<script>|<script [^>]*>[^<]|<style|style=|on(click|load|submit)=' "$SRC/src/daemon/ui/index.html" &&
  fail "index.html has inline script, style or event handlers (the CSP blocks them)"
grep -q 'localStorage.setItem\|console.log' "$SRC/src/daemon/ui/app.js" &&
  fail "app.js writes localStorage or logs to the console"
for p in / /ui; do
  get "$p"
  expect_eq "$STATUS" 302 "GET $p"
  expect_eq "$(hdr Location)" /ui/ "Location of GET $p"
done
get /ui/ -I
expect_eq "$STATUS" 200 "HEAD /ui/"
get /ui/ -X POST -H 'Content-Type: application/json' --data-binary '{}'
expect_eq "$STATUS" 405 "POST /ui/"
expect_eq "$(hdr Allow)" "GET, HEAD" "Allow of POST /ui/"
get /ui/ -X DELETE
expect_eq "$STATUS" 405 "DELETE /ui/"

# Unknown names and traversal: 404, or (where the decoded path is the name of
# an embedded file, e.g. %61pp.js or a NUL after it) that file exactly;
# never the tokens file, the database or anything else.
served_is_embedded() {
  local f
  for f in index.html app.js style.css; do cmp -s "$TMP/b" "$SRC/src/daemon/ui/$f" && return 0; done
  return 1
}
for p in /ui/nope /ui/app.jsx /ui/app.js/ /ui//app.js /ui/./app.js /ui/ui/app.js /ui/.. /ui/../ \
  /ui/../tokens /ui/../../tokens /ui/../data/tokens /ui/%2e%2e/tokens /ui/%2E%2E/tokens \
  /ui/..%2ftokens /ui/..%2Ftokens /ui/%2e%2e%2ftokens /ui/..%5ctokens '/ui/..\tokens' \
  /ui/%252e%252e/tokens /ui/....//tokens /ui/%c0%ae%c0%ae/tokens /ui/evsrep.db /ui/../evsrep.db \
  /ui/index.html%00.png /ui/%2e /ui/%61pp.js "/ui/../v2/$PROJECT/volumes" /ui/../metrics \
  /ui/tokens /ui/.data/tokens /ui/app.js%00 /ui/%0aforged-line; do
  get "$p"
  if [ "$STATUS" = 200 ]; then
    served_is_embedded || fail "GET $p served something that is not an embedded file"
  else
    expect_eq "$STATUS" 404 "GET $p"
  fi
  ! grep -q "$TOKEN" "$TMP/b" "$TMP/h" || fail "GET $p: the token is in the reply"
done
# The API itself still wants a token; /ui/ gives none of its data away.
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/$PROJECT/$RCGS")
expect_eq "$STATUS" 401 "the API without a token"

# --- a paused group whose pair has 64 MiB to copy to a slow DR disk
P=$(create_volume az1 1 ui-prod)
D=$(create_volume az2 1 ui-dr)
R=$(create_pair "$P" "$D" ui-pair)
wait_pair_active "$R"
GID=$(create_group ui-group "$R")
head -c $((64 * 1024 * 1024)) /dev/urandom >"$TMP/dirty"
nbdcopy "$TMP/dirty" "$(nbd_uri az1 "$P")" || fail "write 64 MiB to the paused production disk"
rm -f "$TMP/dirty"
# Every write to the DR disk sleeps 150 ms (the resync writes 1 MiB pieces):
# the 64 MiB take ~10 s, long enough for the page to show copying. The rule
# needs the volume id at daemon start: a clean restart.
stop_daemon
EVSREP_FAULT="vol_write@${D}~150000" start_daemon
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active-stopped "the group before the browser test"

# --- the browser
mkdir -p "$ART"
LOG_FROM=$(($(wc -l <"$TMP/daemon.log") + 1)) # the first start's banner shows the token, on purpose
rc=0
UI_URL=$URL GROUP_ID=$GID PAIR_ID=$R ART_DIR=$ART CHROMIUM=$CHROMIUM UI_DEADLINE_SEC=120 \
  NODE_PATH="$NODE_DIR/node_modules" timeout 150 node "$SRC/tests/ui/ui_test.js" || rc=$?
[ "$rc" -eq 0 ] || fail "the browser test failed (exit $rc; screenshots in $BUILD/ui-artefacts)"
rm -rf "$BUILD/ui-artefacts"
cp -r "$ART" "$BUILD/ui-artefacts" || fail "cannot copy the screenshots to $BUILD/ui-artefacts"
ls "$ART"/*.png >/dev/null 2>&1 || fail "no screenshots in $ART"

# What the page did, seen from the API: paused after the pause, active now.
api GET "$RCGS/$GID"
expect_eq "$(jget "$G.replication_status")" active "the group after the browser's last sync"
[ "$(jget "$G.frozen_at")" != null ] || fail "frozen_at after the browser's pause"
grep -aq "POST /v2/$PROJECT/$RCGS/$GID/action 200" "$TMP/daemon.log" ||
  fail "no group action from the page in the access log"

# The token never reaches the log (the page sends it in a header only):
# neither an access-log line nor anything logged while the browser ran.
grep -aE ' req-[0-9a-f-]+ [A-Z]+ /' "$TMP/daemon.log" >"$TMP/access.log" || true
[ "$(grep -c ' /ui/' "$TMP/access.log")" -gt 0 ] || fail "no /ui/ line in the access log"
! grep -qaF "$TOKEN" "$TMP/access.log" || fail "the token is in an access-log line"
# Paths are logged with control and non-ASCII bytes escaped: one request, one line.
grep -aq ' /ui/%0Aforged-line 404 ' "$TMP/access.log" || fail "the path with a newline is not logged escaped"
! grep -aq '^forged-line' "$TMP/daemon.log" || fail "a decoded %0a in a path forged a log line"
! LC_ALL=C grep -aq '[^[:print:][:space:]]' "$TMP/access.log" || fail "raw non-printable bytes in the access log"
! tail -n +"$LOG_FROM" "$TMP/daemon.log" | grep -qaF "$TOKEN" || fail "the token is in the daemon's log"
finish
