# Shared helpers for black-box tests: start the real evsrepd on free ports in a
# temporary data directory, talk to it with curl and real NBD clients, and
# always stop it. Source this file; every test runs in its own process.
set -euo pipefail

: "${EVSREPD:?EVSREPD must point at the evsrepd binary}"
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/evsrep-${TEST_NAME}.XXXXXX")
DATA="$TMP/data"
DAEMON_PID=""
FAILS=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
# Every failure is also appended to $TMP/failures, and finish() counts that
# file: a `fail` (or a `die`) inside a command substitution `$(...)`, a
# pipeline or a background job runs in a subshell, where FAILS += 1 is lost.
# FAILS stays the main shell's own count (for "did this seed fail" checks).
FAILURES="$TMP/failures"
: >"$FAILURES"
fail() { log "FAIL: $*"; FAILS=$((FAILS + 1)); printf 'FAIL: %s\n' "$*" >>"$FAILURES"; }
die() {
  log "FATAL: $*"
  printf 'FATAL: %s\n' "$*" >>"$FAILURES"
  [ -f "$TMP/daemon.log" ] && tail -n 40 "$TMP/daemon.log" >&2
  exit 1
}
# failures: the number of failures recorded so far, subshells included.
failures() { wc -l <"$FAILURES"; }

# PostgreSQL databases of the test's own (lib_pg.sh), dropped at exit.
. "$(dirname "${BASH_SOURCE[0]}")/lib_pg.sh"

# EVSREP_TEST_STORE=postgresql: the all-in-one daemon on PostgreSQL instead of
# SQLite (ctest's funcpg/<name>, tests/CMakeLists.txt): start_daemon gives it
# `db =` a database of the test's own in the pg_cluster fixture's cluster
# (EVSREP_TEST_PG_URL_FILE), created at the first start, kept across
# restarts, dropped at exit. Everything else (ports, data directory, tokens,
# volume files) stays as with SQLite. Two-node mode (EVSREP_TEST_NODES=2,
# below) is always on PostgreSQL.
TEST_STORE=${EVSREP_TEST_STORE:-sqlite}
case "$TEST_STORE" in
sqlite | postgresql) ;;
*) die "EVSREP_TEST_STORE='$TEST_STORE': want sqlite or postgresql" ;;
esac
TEST_DB_URL=""
# store_args: STORE_ARGS, the evsrepd arguments of the test's store: none on
# SQLite; on PostgreSQL --config of a file naming the test's database (made
# at the first call; start_daemon calls it). A test that runs "$EVSREPD"
# itself on $DATA (a start that must be refused, say) passes them too.
STORE_ARGS=()
store_args() {
  [ "$TEST_STORE" = postgresql ] || return 0
  if [ -z "$TEST_DB_URL" ]; then
    pg_test_db_create "evsrep_pg_$(printf '%s' "${TEST_NAME#t_}" | tr -c 'a-z0-9_' '_' | cut -c1-40)_$$"
    TEST_DB_URL=$PG_TEST_DB_URL
    printf '[DEFAULT]\ndb = %s\n' "$TEST_DB_URL" >"$TMP/store-pg.conf"
  fi
  # First on the command line, so that a config of the test's own adds to it.
  STORE_ARGS=(--config "$TMP/store-pg.conf")
}

cleanup() {
  local rc=$?
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  pg_test_db_drop_all
  if [ $rc -eq 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$TMP"; else log "kept $TMP"; fi
}
trap cleanup EXIT

# start_daemon [extra evsrepd args...]: listens on ephemeral ports; sets URL
# (https:// when the daemon serves TLS), NBD_AZ1, NBD_AZ2, TOKEN, PROJECT
# (TOKEN and PROJECT: the first line of the tokens file; the daemon prints
# the token only on the start that creates the file).
# With EVSREP_FAULT set (in the environment, or as `EVSREP_FAULT=... start_daemon`)
# the daemon must have the fault layer (-DEVSREP_FAULT_INJECTION=ON):
# without it the rules would be ignored silently and the test's forced
# precondition would not hold.
start_daemon() {
  if [ -n "${EVSREP_FAULT:-}" ] && ! grep -qa 'fault injection armed' "$EVSREPD"; then
    die "EVSREP_FAULT='$EVSREP_FAULT' needs an evsrepd built with -DEVSREP_FAULT_INJECTION=ON ($EVSREPD is not)"
  fi
  mkdir -p "$DATA"
  rm -f "$DATA/evsrepd.ports"
  store_args
  "$EVSREPD" "${STORE_ARGS[@]}" --data-dir "$DATA" --listen 127.0.0.1:0 \
    --nbd-listen az1=127.0.0.1:0 --nbd-listen az2=127.0.0.1:0 "$@" \
    >>"$TMP/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$DATA/evsrepd.ports" ] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || die "evsrepd exited during start"
    sleep 0.05
  done
  [ -s "$DATA/evsrepd.ports" ] || die "evsrepd did not write its ports file"
  local http az1 az2 scheme=http
  http=$(awk -F= '$1=="http"{print $2}' "$DATA/evsrepd.ports")
  if [ -z "$http" ]; then # tls_cert set: the ports file says https=PORT
    http=$(awk -F= '$1=="https"{print $2}' "$DATA/evsrepd.ports")
    scheme=https
  fi
  az1=$(awk -F= '$1=="nbd.az1"{print $2}' "$DATA/evsrepd.ports")
  az2=$(awk -F= '$1=="nbd.az2"{print $2}' "$DATA/evsrepd.ports")
  URL="$scheme://127.0.0.1:$http"
  NBD_AZ1="127.0.0.1:$az1"
  NBD_AZ2="127.0.0.1:$az2"
  read -r TOKEN PROJECT < <(grep -v '^#' "$DATA/tokens" | head -n 1)
  export URL NBD_AZ1 NBD_AZ2 TOKEN PROJECT
  if [ "$TEST_STORE" = postgresql ]; then
    # The daemon really is on PostgreSQL: no SQLite file, and its node row
    # (registered before the ports file is written) is in the database.
    [ ! -e "$DATA/evsrep.db" ] || die "EVSREP_TEST_STORE=postgresql, yet the daemon made $DATA/evsrep.db"
    [ "$(psql -qtA "$TEST_DB_URL" -c 'SELECT count(*) FROM nodes' 2>&1)" -ge 1 ] 2>/dev/null ||
      die "EVSREP_TEST_STORE=postgresql: no node registered in $TEST_DB_URL"
  fi
}

# stop_daemon: SIGTERM, expect a clean exit 0.
stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID"
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  [ $rc -eq 0 ] || fail "evsrepd exited with $rc after SIGTERM"
}

# crash_daemon: kill -9.
crash_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -KILL "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
}

# stop_az AZ / crash_az AZ: SIGTERM / kill -9 the process serving AZ. The
# all-in-one daemon serves every AZ: the same as stop_daemon / crash_daemon.
# In two-node mode only that AZ's node (lib_cluster.sh), and the next
# start_daemon starts only the nodes that are down. With EVSREP_FAULT_AZ=AZ
# next to EVSREP_FAULT, a start gives the fault rules to the process
# serving AZ only (all-in-one: the daemon).
stop_az() { stop_daemon; }
crash_az() { crash_daemon; }

# api METHOD PATH [JSON] [extra curl args]: sets STATUS, BODY, HDRS.
# PATH is relative to /v2/$PROJECT unless it starts with '/'.
api() {
  local method=$1 path=$2 data=${3:-}
  shift 3 2>/dev/null || shift $#
  case "$path" in /*) ;; *) path="/v2/$PROJECT/$path" ;; esac
  local args=(-s -X "$method" -H "X-Auth-Token: $TOKEN" -D "$TMP/h" -o "$TMP/b" -w '%{http_code}')
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
  STATUS=$(curl "${args[@]}" "$@" "$URL$path") || STATUS=000
  BODY=$(cat "$TMP/b")
  HDRS=$(cat "$TMP/h")
}

expect_status() {
  local want=$1 what=$2
  if [ "$STATUS" != "$want" ]; then fail "$what: want HTTP $want, got $STATUS: $BODY"; return 1; fi
}

# jget FILTER: run jq on BODY.
jget() { printf '%s' "$BODY" | jq -r "$1"; }

expect_eq() {
  local got=$1 want=$2 what=$3
  [ "$got" = "$want" ] || { fail "$what: want '$want', got '$got'"; return 1; }
}

# wait_field PATH JQ WANT [seconds]: poll GET PATH until jq result == WANT.
wait_field() {
  local path=$1 filter=$2 want=$3 secs=${4:-60} got=""
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    api GET "$path"
    got=$(jget "$filter" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  fail "timeout waiting for $path $filter == $want (last: $got, HTTP $STATUS)"
  return 1
}

# wait_log MARK REGEX [seconds]: true once a line of the daemon's log from
# line MARK on matches REGEX (grep -E), polled every 0.1 s for [seconds] (60).
wait_log() {
  local mark=$1 re=$2 i
  for ((i = 0; i < ${3:-60} * 10; i++)); do
    tail -n +"$mark" "$TMP/daemon.log" | grep -qE "$re" && return 0
    sleep 0.1
  done
  return 1
}

# wait_gone PATH [seconds]: poll GET PATH until it answers 404.
wait_gone() {
  local path=$1 secs=${2:-60}
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    api GET "$path"
    [ "$STATUS" = 404 ] && return 0
    sleep 0.1
  done
  fail "timeout waiting for $path to be gone (last HTTP $STATUS)"
  return 1
}

# create_volume AZ GIB [name]: prints the id once it is available.
create_volume() {
  local az=$1 gib=$2 name=${3:-vol}
  api POST volumes "{\"volume\":{\"size\":$gib,\"availability_zone\":\"$az\",\"name\":\"$name\"}}"
  expect_status 202 "create volume" || die "cannot create a volume"
  local id
  id=$(jget .volume.id)
  wait_field "volumes/$id" .volume.status available 60 >&2 || die "volume $id never available"
  printf '%s\n' "$id"
}

# nbd_uri AZ ID: the volume's NBD URI. The volume id opens nothing: the
# export name comes from an attachment (os-initialize_connection), made once
# per volume and test (attachments survive restarts; the port is the current
# daemon's, so call it again after a restart). Own files: the caller's
# BODY/STATUS are untouched.
nbd_uri() {
  local hp exp f="$TMP/attach.$2" code
  if [ "$1" = az1 ]; then hp=$NBD_AZ1; else hp=$NBD_AZ2; fi
  if [ -s "$f" ]; then
    exp=$(cat "$f")
  else
    code=$(curl -s -X POST -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
      --data-binary '{"os-initialize_connection": {"connector": {"host": "evsrep-tests"}}}' \
      -o "$TMP/attach.body" -w '%{http_code}' "$URL/v2/$PROJECT/volumes/$2/action") || code=000
    exp=$(jq -r '.connection_info.data.export_name // empty' "$TMP/attach.body" 2>/dev/null || true)
    if [ "$code" != 200 ] || [ -z "$exp" ]; then
      fail "os-initialize_connection of volume $2: HTTP $code: $(cat "$TMP/attach.body" 2>/dev/null)"
      exp="no-attachment"
    else
      printf '%s' "$exp" >"$f"
    fi
  fi
  printf 'nbd://%s/%s' "$hp" "$exp"
}

finish() {
  stop_daemon
  local n
  n=$(failures)
  if [ "$n" -ne 0 ] || [ "$FAILS" -ne 0 ]; then
    log "$n check(s) failed (subshells included):"
    sed 's/^/  /' "$FAILURES" >&2
    exit 1
  fi
  log "ok"
}

# ---------------------------------------------------------------------------
# Helpers for the replication tests (pairs, groups, consistency checker).

# NBD client tools built from tests/tools/*.c (seqwriter, seqcheck).
TOOLS=${EVSREP_TOOLS:-$(dirname "$EVSREPD")/tests}
export TOOLS
PAIRS=os-vendor-replications
RCGS=os-vendor-replication-consistency-groups

# wait_through PATH JQ WANT ALLOWED_ERE [seconds]: poll GET PATH until the jq
# result == WANT; fail at once on any value outside ^(ALLOWED_ERE)$ (as
# Terraform does while it waits through creating/updating/deleting).
wait_through() {
  local path=$1 filter=$2 want=$3 allowed=$4 secs=${5:-60} got=""
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    api GET "$path"
    got=$(jget "$filter" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    if [ "$STATUS" != 200 ] || ! [[ "$got" =~ ^($allowed)$ ]]; then
      fail "waiting for $path $filter == $want: saw '$got' (HTTP $STATUS), allowed only $allowed"
      return 1
    fi
    sleep 0.1
  done
  fail "timeout waiting for $path $filter == $want (last: $got)"
  return 1
}

# create_pair PROD_ID DR_ID [name] [priority_station]: prints the pair id once
# its status is available (replication may still be copying).
create_pair() {
  local p=$1 d=$2 name=${3:-pair} az=${4:-az1}
  api POST "$PAIRS" "{\"replication\":{\"name\":\"$name\",\"volume_ids\":[\"$p\",\"$d\"],\"priority_station\":\"$az\",\"replication_model\":\"hypermetro\"}}"
  expect_status 202 "create pair $name" || die "cannot create pair $name"
  local id
  id=$(jget .replication.id)
  wait_through "$PAIRS/$id" .replication.status available creating 120 >&2 || die "pair $id never available"
  printf '%s\n' "$id"
}

# wait_pair_active ID [seconds]
wait_pair_active() {
  wait_field "$PAIRS/$1" .replication.replication_status active "${2:-120}"
}

# make_active_pairs N TAG: N pairs of 1 GiB volumes (production in az1, DR
# in az2, named TAG-p<i>, TAG-d<i>, TAG-r<i>), each active; sets the arrays
# P, D (volume ids) and R (pair ids), indexed 1..N.
make_active_pairs() {
  local n=$1 tag=$2 i
  P=() D=() R=()
  for i in $(seq 1 "$n"); do
    P[i]=$(create_volume az1 1 "$tag-p$i")
    D[i]=$(create_volume az2 1 "$tag-d$i")
    R[i]=$(create_pair "${P[i]}" "${D[i]}" "$tag-r$i")
  done
  for i in $(seq 1 "$n"); do wait_pair_active "${R[i]}"; done
}

# create_group NAME PAIR_ID... : prints the group id once available.
create_group() {
  local name=$1 ids
  shift
  ids=$(printf '"%s",' "$@")
  api POST "$RCGS" "{\"replication_consistency_group\":{\"name\":\"$name\",\"replication_ids\":[${ids%,}],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}"
  expect_status 202 "create group $name" || die "cannot create group $name"
  local id
  id=$(jget .replication_consistency_group.id)
  wait_through "$RCGS/$id" .replication_consistency_group.status available creating 120 >&2 ||
    die "group $id never available"
  printf '%s\n' "$id"
}

# require_fault_injection: the test arms faults (EVSREP_FAULT/EVSREP_POWERCUT)
# and needs the seqwriter/seqcheck tools; both missing is a failure, not a skip.
require_fault_injection() {
  "$EVSREPD" --version | grep -q fault-injection ||
    die "evsrepd was built without fault injection (cmake -DEVSREP_FAULT_INJECTION=ON; scripts/test.sh does)"
  SW=$TOOLS/seqwriter
  SC=$TOOLS/seqcheck
  if [ ! -x "$SW" ] || [ ! -x "$SC" ]; then die "seqwriter/seqcheck not built in $TOOLS"; fi
}

# wait_settled [seconds]: wait until no pair is still flushing after a pause
# (the pause answers before its flushes; until they are done a kill -9 leaves
# the activity log's extents dirty too: docs/semantics.md, crash rule).
wait_settled() {
  local end=$((SECONDS + ${1:-120})) n=""
  while [ $SECONDS -lt $end ]; do
    n=$(curl -s -H "X-Auth-Token: $TOKEN" "$URL/metrics" | awk '$1=="evsrep_settles_running" {print $2}')
    [ "$n" = 0 ] && return 0
    sleep 0.05
  done
  fail "pairs still settling after a pause (evsrep_settles_running=$n)"
  return 1
}

# group_action GROUP_ID KEY [JSON_VALUE]: POST the action (value null by default).
# A reverse or failover answers once the swap is under way (the group shows
# reversing / failovering while the flushes and the role switch run): after
# its 200 this waits until the group has left that status (wait_swap), and
# keeps the action's STATUS and BODY. SWAP_NOWAIT=1: return at the answer.
group_action() {
  api POST "$RCGS/$1/action" "{\"$2\": ${3:-null}}"
  case "$2" in os-reverse-replication-consistency-group | os-failover-replication-consistency-group) ;;
  *) return 0 ;;
  esac
  [ "$STATUS" = 200 ] && [ -z "${SWAP_NOWAIT:-}" ] || return 0
  wait_swap "$1" || true # a timeout is a failure of the test already
}

# wait_swap GROUP_ID [seconds]: poll GET until the group's status is neither
# reversing nor failovering; STATUS and BODY are those from before the call.
wait_swap() {
  local s=$STATUS b=$BODY end=$((SECONDS + ${2:-120})) st="" ok=""
  while [ $SECONDS -lt $end ]; do
    api GET "$RCGS/$1"
    st=$(jget .replication_consistency_group.status 2>/dev/null || true)
    if [ "$STATUS" = 200 ] && ! [[ "$st" =~ ^(reversing|failovering)$ ]]; then ok=1; break; fi
    sleep 0.05
  done
  [ -n "$ok" ] || fail "group $1 still '$st' (HTTP $STATUS) after ${2:-120} s: the swap never ended"
  STATUS=$s
  BODY=$b
  [ -n "$ok" ]
}

# nbd_sha256 URI: checksum of the whole export, read by nbdcopy. Usually
# called as $(nbd_sha256 URI): a failed read fails the test (through
# $FAILURES) and prints a token that equals no other result, so two failed
# reads never compare equal.
nbd_sha256() {
  local out
  if ! out=$(set -o pipefail; nbdcopy -- "$1" - | sha256sum) || ! [[ "$out" =~ ^[0-9a-f]{64}\  ]]; then
    fail "nbd_sha256 $1: nbdcopy failed"
    printf 'nbdcopy-failed-%s-%s\n' "$BASHPID" "$RANDOM"
    return 1
  fi
  printf '%s\n' "${out%% *}"
}

# nbd_cmp URI_A URI_B WHAT: byte-for-byte compare of two exports (fails the
# test naming the first differing byte).
nbd_cmp() {
  local a=$1 b=$2 what=$3
  if ! nbdcopy -- "$a" "$TMP/cmp.a" || ! nbdcopy -- "$b" "$TMP/cmp.b"; then
    fail "$what: nbdcopy failed"
    return 1
  fi
  local out
  if ! out=$(cmp "$TMP/cmp.a" "$TMP/cmp.b" 2>&1); then
    fail "$what: exports differ: $out"
    rm -f "$TMP/cmp.a" "$TMP/cmp.b"
    return 1
  fi
  rm -f "$TMP/cmp.a" "$TMP/cmp.b"
}

# wait_gone_through PATH JQ ALLOWED_ERE [seconds]: poll GET PATH until 404;
# while it still answers 200, the jq result must match ^(ALLOWED_ERE)$.
wait_gone_through() {
  local path=$1 filter=$2 allowed=$3 secs=${4:-60} got=""
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    api GET "$path"
    [ "$STATUS" = 404 ] && return 0
    got=$(jget "$filter" 2>/dev/null || true)
    if [ "$STATUS" != 200 ] || ! [[ "$got" =~ ^($allowed)$ ]]; then
      fail "waiting for $path to be gone: saw '$got' (HTTP $STATUS), allowed only $allowed"
      return 1
    fi
    sleep 0.1
  done
  fail "timeout waiting for $path to be gone (last: $got)"
  return 1
}

# EVSREP_TEST_NODES=2: the same test against a two-node cluster (node a: az1,
# node b: az2, PostgreSQL); lib_cluster.sh replaces start/stop/crash_daemon.
if [ "${EVSREP_TEST_NODES:-1}" = 2 ]; then
  . "$(dirname "${BASH_SOURCE[0]}")/lib_cluster.sh"
fi
