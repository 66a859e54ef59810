#!/usr/bin/env bash
# The tokens file and the start banner: the token is printed only by the
# start that created the file (stdout ends up in the journal); later starts
# say where the tokens are. A tokens file that group or others may read or
# write stops the start with a message that says `chmod 600 <path>`.
. "$(dirname "$0")/lib.sh"

# --- first start creates the file (0600) and shows the token once
start_daemon
grep -q "token:    $TOKEN " "$TMP/daemon.log" || fail "first start: the banner does not show the new token"
expect_eq "$(stat -c %a "$DATA/tokens")" 600 "mode of the created tokens file"
stop_daemon

# --- later starts: no token anywhere in the output, the path instead
before=$(wc -l <"$TMP/daemon.log")
start_daemon
tail -n +"$((before + 1))" "$TMP/daemon.log" >"$TMP/second.log"
! grep -q "$TOKEN" "$TMP/second.log" || fail "second start printed the token: $(grep -m1 "$TOKEN" "$TMP/second.log")"
grep -q "tokens:   $DATA/tokens" "$TMP/second.log" || fail "second start does not say where the tokens are"
api GET volumes
expect_status 200 "the token read from the file works"
stop_daemon

# --- a tokens file open to group or others: refused, with the fix in the message
for mode in 640 620 604 602 644; do
  chmod "$mode" "$DATA/tokens"
  rc=0
  # 30 s only bounds a broken daemon that would start and keep running
  timeout 30 "$EVSREPD" "${STORE_ARGS[@]}" --data-dir "$DATA" --listen 127.0.0.1:0 --nbd-listen az1=127.0.0.1:0 \
    --nbd-listen az2=127.0.0.1:0 >"$TMP/refused.log" 2>&1 || rc=$?
  if [ "$rc" != 1 ]; then # one broken mode is enough to say (each costs the 30 s bound)
    fail "start with a mode $mode tokens file: want exit 1, got $rc: $(tail -n 3 "$TMP/refused.log")"
    break
  fi
  grep -q "chmod 600 $DATA/tokens" "$TMP/refused.log" ||
    fail "mode $mode: the message does not say how to fix it: $(cat "$TMP/refused.log")"
  ! grep -q "$TOKEN" "$TMP/refused.log" || fail "mode $mode: the refusal printed the token"
done
chmod 600 "$DATA/tokens"
start_daemon
api GET volumes
expect_status 200 "after chmod 600"
finish
