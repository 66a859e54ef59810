#!/usr/bin/env bash
# What a newcomer sees (issue 15), black box against the real daemon:
#  1. usage errors come first and short, with a did-you-mean (plural,
#     edit distance, verb before noun); `evsrep help [NOUN [VERB]]` works;
#  2. the banner's shell lines (first start and later starts) are enough for
#     curl ($TOKEN, $PROJECT) and for the CLI (EVS_URL, EVS_TOKEN, EVS_PROJECT);
#  3. hints: a 401 says where tokens live, a refused connection asks whether
#     evsrepd runs, an NBD port as --url says it is not HTTP, a taken port
#     (HTTP and NBD) says another evsrepd probably runs and how to choose ports;
#  4. --check-config prints every key, availability_zones and log_level too;
#  5. pair create --wait shows the initial copy's progress, and no progress
#     line claims 100% before the end state;
#  6. volume connect prints one aligned listing;
#  7. after a failover, reverse and sync both point to reprotect (exit 3),
#     and reverse never says "sync".
. "$(dirname "$0")/lib.sh"

: "${EVSREP_BUILD:?EVSREP_BUILD must point at the build directory}"
CLI=$EVSREP_BUILD/evsrep
[ -x "$CLI" ] || die "no CLI at $CLI"
M=$((1024 * 1024))

ev() {
  RC=0
  "$CLI" "$@" >"$TMP/out" 2>"$TMP/err" || RC=$?
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
ok() {
  local what=$1
  shift
  ev "$@"
  [ "$RC" = 0 ] || fail "$what: exit $RC: $ERR"
}
rc_is() {
  local want=$1 what=$2
  shift 2
  ev "$@"
  [ "$RC" = "$want" ] || fail "$what: want exit $want, got $RC: $OUT $ERR"
}
# first_err_is WHAT ERE: the first line of stderr matches ERE.
first_err_is() {
  local first
  first=$(head -n 1 <<<"$ERR")
  [[ "$first" =~ $2 ]] || fail "$1: first line of stderr is '$first', want /$2/"
}
oj() { printf '%s' "$OUT" | jq -r "$1"; }

# --- 1. usage errors and help (no daemon needed) --------------------------------
rc_is 1 "plural noun" volumes list
first_err_is "plural noun" "^evsrep: unknown noun 'volumes'; did you mean 'volume'\?$"
[ "$(wc -l <"$TMP/err")" -le 3 ] || fail "unknown noun: $(wc -l <"$TMP/err") lines on stderr, want a short error"
[ -z "$OUT" ] || fail "unknown noun: output on stdout: $OUT"
rc_is 1 "plural pairs" pairs list
first_err_is "plural pairs" "did you mean 'pair'\?$"
rc_is 1 "typo in a noun" gruop list
first_err_is "typo in a noun" "unknown noun 'gruop'; did you mean 'group'\?$"
rc_is 1 "verb before noun" list volumes
first_err_is "verb before noun" "did you mean 'evsrep volume list'\?"
rc_is 1 "typo in a verb" group lsit
first_err_is "typo in a verb" "^evsrep: unknown verb 'group lsit'; did you mean 'group list'\?$"
[ "$(wc -l <"$TMP/err")" -le 3 ] || fail "unknown verb: long stderr: $ERR"
rc_is 1 "nothing close" frobnicate list
first_err_is "nothing close" "^evsrep: unknown noun 'frobnicate'$"
grep -q "evsrep help" <<<"$ERR" || fail "unknown noun: does not say where help is: $ERR"
rc_is 1 "noun without verb" group
first_err_is "noun without verb" "^evsrep: 'group' needs a verb: create, list, "
ok "evsrep help" help
grep -q '^Usage: evsrep' <<<"$OUT" || fail "evsrep help: no usage: $OUT"
grep -q '^Exit codes' <<<"$OUT" || fail "evsrep help: no exit codes"
grep -q '3  conflict' <<<"$OUT" || fail "evsrep help: exit code 3 not documented"
ok "evsrep help group" help group
grep -qE '^  reprotect ' <<<"$OUT" || fail "evsrep help group: no verb list: $OUT"
ok "evsrep help group sync" help group sync
grep -q '^Usage: evsrep group sync' <<<"$OUT" || fail "evsrep help group sync: $OUT"
ok "evsrep group help" group help
grep -qE '^  sync ' <<<"$OUT" || fail "evsrep group help: $OUT"
rc_is 1 "evsrep help with a typo" help volumes
first_err_is "evsrep help volumes" "did you mean 'volume'\?$"
rc_is 1 "no token" --url http://127.0.0.1:1 --project p volume list
grep -q 'tokens' <<<"$ERR" || fail "no token: does not say where tokens live: $ERR"

# --- 2. the banner's shell lines ----------------------------------------------------
start_daemon
# banner_env LOG: run `evsrep volume list` and a curl with only what the
# banner's shell lines set (no inherited EVS_* or TOKEN).
banner_env() {
  local lines
  lines=$(grep -E '^(export |read TOKEN PROJECT)' "$1") || true
  [ -n "$lines" ] || { fail "$2: the banner has no shell lines: $(cat "$1")"; return 0; }
  env -u EVS_URL -u EVS_TOKEN -u EVS_PROJECT -u TOKEN -u PROJECT PATH="$EVSREP_BUILD:$PATH" \
    bash -c "set -e; $lines
      evsrep volume list >/dev/null
      test \"\$(curl -s -o /dev/null -w '%{http_code}' -H \"X-Auth-Token: \$TOKEN\" \"\$EVS_URL/v2/\$PROJECT/volumes\")\" = 200" \
    >"$TMP/banner.out" 2>&1 || fail "$2: the banner's shell lines do not set up curl and evsrep: $(cat "$TMP/banner.out"); lines: $lines"
}
banner_env "$TMP/daemon.log" "first start"
grep -q '^export EVS_URL=' "$TMP/daemon.log" || fail "banner: no export EVS_URL line"
stop_daemon
before=$(wc -l <"$TMP/daemon.log")
start_daemon
tail -n +"$((before + 1))" "$TMP/daemon.log" >"$TMP/second.log"
banner_env "$TMP/second.log" "later start"
export EVS_URL=$URL EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT

# --- 3. hints -------------------------------------------------------------------------
rc_is 4 "401" --token not-a-token volume list
grep -q 'HTTP 401' <<<"$ERR" || fail "401: $ERR"
grep -q 'tokens' <<<"$ERR" || fail "401: does not say where tokens live: $ERR"
grep -q 'EVS_TOKEN' <<<"$ERR" || fail "401: does not say how to set the token: $ERR"
rc_is 5 "connection refused" --url http://127.0.0.1:1 volume list
grep -q 'is evsrepd running' <<<"$ERR" || fail "refused: no hint to check evsrepd: $ERR"
rc_is 5 "--url at the NBD port" --url "http://$NBD_AZ1" volume list
grep -q 'NBD port' <<<"$ERR" || fail "NBD port as --url: no hint: $ERR"
grep -q 'does not answer HTTP' <<<"$ERR" || fail "NBD port as --url: $ERR"
# A second daemon (its own data directory) on the first one's ports.
mkdir -p "$TMP/data2"
http_port=${URL##*:}
rc=0
timeout 30 "$EVSREPD" --data-dir "$TMP/data2" --listen "127.0.0.1:$http_port" \
  --nbd-listen az1=127.0.0.1:0 --nbd-listen az2=127.0.0.1:0 >"$TMP/taken.log" 2>&1 || rc=$?
expect_eq "$rc" 1 "HTTP port taken: exit code" || true
grep -q 'another evsrepd probably runs' "$TMP/taken.log" || fail "HTTP port taken: no hint: $(cat "$TMP/taken.log")"
grep -q -- '--listen HOST:PORT' "$TMP/taken.log" || fail "HTTP port taken: does not say how to choose ports"
grep -q 'scripts/run.sh --data-dir' "$TMP/taken.log" || fail "HTTP port taken: no run.sh example"
rc=0
timeout 30 "$EVSREPD" --data-dir "$TMP/data2" --listen 127.0.0.1:0 \
  --nbd-listen "az1=$NBD_AZ1" --nbd-listen az2=127.0.0.1:0 >"$TMP/taken.log" 2>&1 || rc=$?
expect_eq "$rc" 1 "NBD port taken: exit code" || true
grep -q 'another evsrepd probably runs' "$TMP/taken.log" || fail "NBD port taken: no hint: $(cat "$TMP/taken.log")"
grep -q -- '--nbd-listen AZ=HOST:PORT' "$TMP/taken.log" || fail "NBD port taken: does not say how to choose ports"

# --- 4. --check-config prints every key ---------------------------------------------
"$EVSREPD" --data-dir "$TMP/data3" --check-config >"$TMP/check.out" 2>&1 || fail "--check-config: $(cat "$TMP/check.out")"
for key in availability_zones log_level data_dir db tokens listen chunk_size http_threads nbd_threads \
  metrics_public quota_volumes quota_gigabytes capacity_overcommit http_max_connections \
  http_max_connections_per_ip http_connection_timeout nbd_tls nbd_connection_budget nbd_total_budget \
  nbd_handshake_timeout nbd_idle_timeout nbd_send_timeout nbd_max_connections \
  nbd_max_connections_per_address nbd_listen dir; do
  grep -q "^$key = " "$TMP/check.out" || fail "--check-config does not print $key"
done
grep -qx 'availability_zones = az1, az2' "$TMP/check.out" || fail "--check-config: availability_zones: $(grep availability "$TMP/check.out")"
"$EVSREPD" --data-dir "$TMP/data3" --log-level warn --availability-zones a,b,c --check-config >"$TMP/check.out" 2>&1 ||
  fail "--check-config with flags: $(cat "$TMP/check.out")"
grep -qx 'log_level = warn' "$TMP/check.out" || fail "--check-config: log_level not shown as set"
grep -qx 'availability_zones = a, b, c' "$TMP/check.out" || fail "--check-config: availability_zones not shown as set"

# --- 5./6. pair create --wait progress, volume connect ---------------------------
ok "volume create" -o json volume create --size 1 --az az1 --name p --wait
P=$(oj .volume.id)
ok "volume create" -o json volume create --size 1 --az az2 --name d --wait
D=$(oj .volume.id)
ok "volume connect" volume connect "$P"
# key, two or more spaces, value: the values all start in one column.
cols=$(awk '{ match($0, /^[a-z_]+ +/); print RLENGTH }' <<<"$OUT" | sort -u)
[ "$(wc -l <<<"$cols")" = 1 ] || fail "volume connect: values in several columns ($(echo $cols)): $OUT"
grep -qE '^driver_volume_type +nbd$' <<<"$OUT" || fail "volume connect: driver_volume_type: $OUT"
# Data to copy, so the initial copy takes a few polls.
head -c $((96 * M)) /dev/urandom >"$TMP/rand"
nbdcopy -- "$TMP/rand" "$(nbd_uri az1 "$P")" || fail "nbdcopy to the production volume"
rm -f "$TMP/rand"
"$CLI" pair create --production "$P" --dr "$D" --wait --interval 0.05 >"$TMP/pc.out" 2>"$TMP/pc.err" ||
  fail "pair create --wait: exit $?: $(cat "$TMP/pc.err")"
PLINE='^(copying|active) [0-9]+% [0-9]+ bytes (- B/s|[0-9.]+ (B|KiB|MiB|GiB|TiB)/s) eta ([0-9hms]+|-)$'
grep -E '^(copying|active) [0-9]' "$TMP/pc.out" >"$TMP/plines" || true
grep -q '^copying ' "$TMP/plines" || fail "pair create --wait: no progress while copying: $(cat "$TMP/pc.out")"
if grep -qvE "$PLINE" "$TMP/plines"; then fail "pair create --wait: malformed progress: $(grep -vE "$PLINE" "$TMP/plines")"; fi
tail -n 1 "$TMP/plines" | grep -qE '^active 100% ' || fail "pair create --wait: last progress line: $(tail -n 1 "$TMP/plines")"
if grep -qE '^copying 100% ' "$TMP/plines"; then fail "pair create --wait: 100% shown before the copy was done"; fi
grep -qE '^replication_status +active$' "$TMP/pc.out" || fail "pair create --wait: final listing: $(cat "$TMP/pc.out")"
log "  pair create progress: $(tr '\n' '|' <"$TMP/plines")"
R=$(awk '$1 == "id" {print $2}' "$TMP/pc.out")

# --- 7. after a failover: reverse and sync point to reprotect ------------------------
ok "group create" -o json group create --pair "$R" --name g --wait
G=$(oj .replication_consistency_group.id)
ok "group sync" group sync "$G" --wait
ok "failover" group failover "$G"
rc_is 3 "reverse after failover" group reverse "$G"
grep -q 'reprotect' <<<"$ERR" || fail "reverse after failover: does not say reprotect: $ERR"
if grep -qi 'sync' <<<"$ERR"; then fail "reverse after failover mentions sync: $ERR"; fi
rc_is 3 "sync after failover" group sync "$G"
grep -q 'reprotect the group first' <<<"$ERR" || fail "sync after failover: $ERR"
ok "reprotect" group reprotect "$G" --wait
ok "reverse after reprotect" group reverse "$G"

finish
