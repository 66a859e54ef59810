#!/usr/bin/env bash
# Reverse and failover fences (issue 13): a group of one pair of SIZES GiB
# volumes (1, 16, 64), WRITE_MIB (1024) of data written just before each
# swap (so the page cache holds what a new user leaves there: dirty data
# that a flush inside the fence would have to write), CYCLES (5) rounds of
#   write, reverse, write, failover, reprotect.
# Reported per size: the fence of the reverses and of the failovers (p50,
# p99, max, from the daemon's own "fence held" log lines), the flushes before
# the fence (the daemon's "phases" lines), the requests as the client waits
# for them (they answer once `reversing` / `failovering` is recorded; the
# flushes and the swap run behind that status), and the time until the group
# shows its final status (available / failovered; polled every 50 ms).
# Target: fence p99 < 20 ms at every size (the flushes run before the fence;
# only the role switch is inside it); request within 100 ms + the fence.
# Fewer samples than swaps, a failed fio or request, fail the run.
#
#   bench/swap.sh                       # SIZES="1 16 64" CYCLES=5 WRITE_MIB=1024
. "$(dirname "$0")/lib.sh"
SIZES=${SIZES:-1 16 64}
CYCLES=${CYCLES:-5}
WRITE_MIB=${WRITE_MIB:-1024}
RCGS=os-vendor-replication-consistency-groups
G=.replication_consistency_group

EV_LOG_LEVEL=info ev_start

pctl() { # pctl FILE
  python3 - "$1" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]).read().split())
if not v:
    print("n=0 (no samples)")
    sys.exit(0)
q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print("n=%d p50=%.0f p99=%.0f max=%.0f" % (len(v), q(0.5), q(0.99), v[-1]))
PY
}
# action GROUP KEY: POST the action, print the request time in us
action() {
  curl -sf -o /dev/null -w '%{time_total}\n' -X POST -H "X-Auth-Token: $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "{\"$2\": null}" "$URL/$RCGS/$1/action" |
    awk '{printf "%.0f\n", $1 * 1e6}'
}
# swap GROUP KEY FINAL K: POST the action (request time into $TMP/K.req), then
# wait for the group's status FINAL (time from the POST into $TMP/K.done).
swap() {
  local t0 t1
  t0=$(date +%s%N)
  action "$1" "$2" >>"$TMP/$4.req"
  wait_json "$RCGS/$1" "$G.status" "$3"
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000)) >>"$TMP/$4.done"
}
REV=os-reverse-replication-consistency-group
FO=os-failover-replication-consistency-group
# write_prod GROUP P D: WRITE_MIB of data onto the group's current production disk
write_prod() {
  local st v
  st=$(api GET "$RCGS/$1" | jq -r "$G.priority_station")
  if [ "$st" = az1 ]; then v=$2; else v=$3; fi
  fio --name=w --ioengine=nbd --uri="$(nbd_uri "$v")" --rw=write --bs=1M --iodepth=4 \
    --size="${WRITE_MIB}M" --randrepeat=0 >/dev/null 2>"$TMP/fio.err" ||
    { cat "$TMP/fio.err" >&2; exit 1; }
}

printf '%-5s %-9s %-34s %-34s %-34s %s\n' size swap "fence (us)" "flush before fence (us)" \
  "request (us)" "until final status (us)"
for gib in $SIZES; do
  p=$(volume az1 "$gib")
  d=$(volume az2 "$gib")
  r=$(pair "$p" "$d")
  wait_json "os-vendor-replications/$r" .replication.replication_status active
  g=$(api POST $RCGS "{\"replication_consistency_group\":{\"replication_ids\":[\"$r\"],\"priority_station\":\"az1\",\"replication_model\":\"hypermetro\"}}" | jq -r "$G.id")
  wait_json "$RCGS/$g" "$G.status" available
  api POST "$RCGS/$g/action" '{"os-sync-replication-consistency-group": null}' >/dev/null
  wait_json "$RCGS/$g" "$G.replication_status" active
  for f in rev.req fo.req rev.done fo.done; do : >"$TMP/$f"; done
  mark=$(wc -l <"$TMP/evsrepd.log")
  for _ in $(seq 1 "$CYCLES"); do
    write_prod "$g" "$p" "$d"
    swap "$g" "$REV" available rev
    wait_json "$RCGS/$g" "$G.replication_status" active
    write_prod "$g" "$p" "$d"
    swap "$g" "$FO" failovered fo
    api POST "$RCGS/$g/action" '{"os-reprotect-replication-consistency-group": null}' >/dev/null
    wait_json "$RCGS/$g" "$G.status" available
    wait_json "$RCGS/$g" "$G.replication_status" active
  done
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*group $g: reverse done; fence held \([0-9]*\) us.*/\1/p" >"$TMP/rev.fence"
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*group $g: failover done; fence held \([0-9]*\) us.*/\1/p" >"$TMP/fo.fence"
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*group $g: reverse phases: flush before the fence \([0-9]*\) us.*/\1/p" >"$TMP/rev.flush"
  tail -n +"$mark" "$TMP/evsrepd.log" | sed -n "s/.*group $g: failover phases: flush before the fence \([0-9]*\) us.*/\1/p" >"$TMP/fo.flush"
  for f in rev.fence fo.fence rev.flush fo.flush rev.req fo.req rev.done fo.done; do
    n=$(wc -l <"$TMP/$f")
    [ "$n" -eq "$CYCLES" ] || bench_fail "$gib GiB $f: $n samples for $CYCLES swaps"
  done
  for k in rev fo; do
    printf '%-5s %-9s %-34s %-34s %-34s %s\n' "${gib}G" "$([ $k = rev ] && echo reverse || echo failover)" \
      "$(pctl "$TMP/$k.fence")" "$(pctl "$TMP/$k.flush")" "$(pctl "$TMP/$k.req")" "$(pctl "$TMP/$k.done")"
  done
done
echo "(target: fence p99 < 20000 us at every size, independent of the size; request p99 < 100000 us + fence)"
