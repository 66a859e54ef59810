#!/usr/bin/env bash
# shellcheck disable=SC2119
# GET /metrics: authentication (401 without a token unless metrics_public),
# the Prometheus text format (checked by a small parser: names, labels,
# TYPE before samples, histogram buckets cumulative with +Inf == count), and
# values that move as a group is paused, written and synced.
. "$(dirname "$0")/lib.sh"
start_daemon

metrics() { curl -s -H "X-Auth-Token: $TOKEN" -D "$TMP/mh" -o "$TMP/m" -w '%{http_code}' "$URL/metrics"; }
check_format() { # check_format WHAT
  python3 - "$TMP/m" <<'PY' || fail "$1: not valid Prometheus text format"
import re, sys
typed, hist = {}, {}
name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
sample = re.compile(r'^(' + name_re + r')(\{(' + name_re + r'="(?:[^"\\\n]|\\.)*"(?:,' + name_re + r'="(?:[^"\\\n]|\\.)*")*)?\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip('\n')
    if line.startswith('# TYPE '):
        _, _, name, kind = line.split(' ', 3)
        assert kind in ('counter', 'gauge', 'histogram', 'summary', 'untyped'), line
        assert name not in typed, 'TYPE twice: ' + name
        typed[name] = kind
        continue
    if line.startswith('#') or not line:
        continue
    m = sample.match(line)
    assert m, 'line %d: %r' % (n, line)
    name = m.group(1)
    base = re.sub(r'_(bucket|sum|count)$', '', name)
    assert name in typed or base in typed, 'sample before its TYPE: ' + name
    if name.endswith('_bucket'):
        le = re.search(r'le="([^"]+)"', line).group(1)
        key = re.sub(r',?le="[^"]+"', '', m.group(3) or '')
        hist.setdefault((base, key), []).append((le, float(m.group(4))))
    if name.endswith('_count') and typed.get(base) == 'histogram':
        key = m.group(3) or ''
        b = hist[(base, key)]
        assert b[-1][0] == '+Inf' and b[-1][1] == float(m.group(4)), 'count != +Inf bucket: ' + base
        assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), 'buckets not cumulative: ' + base
PY
}
val() { # val REGEX: the value of the first sample line matching REGEX (0 if none)
  grep -E "$1" "$TMP/m" | head -n1 | awk '{print $NF}' | grep . || echo 0
}

# --- auth
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")
expect_eq "$code" 401 "metrics without a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Auth-Token: nope' "$URL/metrics")
expect_eq "$code" 401 "metrics with a bad token"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Auth-Token: $TOKEN" "$URL/metrics")
expect_eq "$code" 405 "POST /metrics"
expect_eq "$(metrics)" 200 "metrics with a token"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$TMP/mh" || fail "metrics content type: $(grep -i content-type "$TMP/mh")"
check_format "empty daemon"

# --- a group of two pairs
P1=$(create_volume az1 1 mp1); D1=$(create_volume az2 1 md1)
P2=$(create_volume az1 1 mp2); D2=$(create_volume az2 1 md2)
R1=$(create_pair "$P1" "$D1" m1); R2=$(create_pair "$P2" "$D2" m2)
wait_pair_active "$R1"; wait_pair_active "$R2"
G=$(create_group mg "$R1" "$R2")
group_action "$G" os-sync-replication-consistency-group
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active
qemu-io -f raw -c 'write -P 0x11 0 1M' "$(nbd_uri az1 "$P1")" >/dev/null || fail "mirrored write"
metrics >/dev/null
check_format "active group"
expect_eq "$(val "^evsrep_group_replication_status\{group=\"$G\".*status=\"active\"\}")" 1 "group active in metrics"
expect_eq "$(val "^evsrep_group_pairs\{group=\"$G\"\}")" 2 "group pairs"
expect_eq "$(val "^evsrep_pair_progress_percent\{pair=\"$R1\"\}")" 100 "pair progress"
[ "$(val '^evsrep_mirrored_write_seconds_count')" -ge 1 ] || fail "mirrored writes not counted"
[ "$(val '^evsrep_nbd_requests_total\{az="az1",type="write"\}')" -ge 1 ] || fail "NBD writes not counted"
[ "$(val '^evsrep_nbd_bytes_total\{az="az1",dir="written"\}')" -ge 1048576 ] || fail "NBD bytes not counted"
grep -q '^evsrep_http_requests_total{route="/v2/{project}/os-vendor-replication-consistency-groups/{id}",method="GET",code="200"}' "$TMP/m" ||
  fail "API requests not counted by route"
fences0=$(val '^evsrep_fence_seconds_count')
copied0=$(val "^evsrep_pair_resync_bytes_total\{pair=\"$R1\"\}")

# --- pause, write, sync: the values move
group_action "$G" os-stop-replication-consistency-group
expect_status 200 pause
qemu-io -f raw -c 'write -P 0x22 8M 256k' "$(nbd_uri az1 "$P1")" >/dev/null || fail "write while paused"
metrics >/dev/null
check_format "paused group"
expect_eq "$(val "^evsrep_group_replication_status\{group=\"$G\".*status=\"active-stopped\"\}")" 1 "paused in metrics"
expect_eq "$(val "^evsrep_group_replication_status\{group=\"$G\".*status=\"active\"\}")" 0 "not active in metrics"
[ "$(val '^evsrep_fence_seconds_count')" -gt "$fences0" ] || fail "fence histogram did not count the pause"
expect_eq "$(val "^evsrep_pair_dirty_bytes\{pair=\"$R1\"\}")" $((4 * 65536)) "dirty bytes after a 256 KiB write"
grep -qE "^evsrep_group_seconds_since_freeze\{group=\"$G\"\} [0-9.]+$" "$TMP/m" || fail "no seconds since freeze"
group_action "$G" os-sync-replication-consistency-group
wait_field "$RCGS/$G" .replication_consistency_group.replication_status active
metrics >/dev/null
expect_eq "$(val "^evsrep_pair_dirty_bytes\{pair=\"$R1\"\}")" 0 "dirty bytes after sync"
expect_eq "$(($(val "^evsrep_pair_resync_bytes_total\{pair=\"$R1\"\}") - copied0))" $((4 * 65536)) "resync bytes counted"

# --- metrics_public: no token needed
stop_daemon
printf "[DEFAULT]\nmetrics_public = true\n" >"$TMP/pub.conf"
if start_daemon --config "$TMP/pub.conf" 2>/dev/null; then
  code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")
  expect_eq "$code" 200 "public metrics without a token"
fi
finish
