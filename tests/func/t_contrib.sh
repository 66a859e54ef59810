#!/usr/bin/env bash
# contrib/ monitoring files against the real daemon:
# - contrib/prometheus/evsrep-alerts.yml: `promtool check rules`, and
#   `promtool test rules` (each alert fires on its series, quiet on healthy
#   ones);
# - contrib/grafana/evsrep-dashboard.json: a well-formed dashboard (unique
#   panel ids, a grid position and a query for every panel, the datasource
#   variable);
# - every metric name the rules and the dashboard query is one evsrepd
#   exports: scraped from a daemon with a pair and a paused group, with an
#   operator token sent the way Prometheus sends it (Authorization: Bearer);
# - the exposition passes `promtool check metrics`.
. "$(dirname "$0")/lib.sh"
SRC=${EVSREP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
RULES=$SRC/contrib/prometheus/evsrep-alerts.yml
RTEST=$SRC/contrib/prometheus/evsrep-alerts.test.yml
DASH=$SRC/contrib/grafana/evsrep-dashboard.json
command -v promtool >/dev/null || die "promtool not found (Debian: prometheus; scripts/deps.sh installs it)"

# --- rules
promtool check rules "$RULES" >"$TMP/promtool.log" 2>&1 || fail "promtool check rules: $(cat "$TMP/promtool.log")"
(cd "$(dirname "$RTEST")" && promtool test rules "$(basename "$RTEST")") >"$TMP/promtool.log" 2>&1 ||
  fail "promtool test rules: $(cat "$TMP/promtool.log")"

# --- dashboard structure
python3 - "$DASH" >"$TMP/dash.log" 2>&1 <<'EOF' || fail "dashboard: $(cat "$TMP/dash.log")"
import json, sys
d = json.load(open(sys.argv[1]))
errs = []
for k in ("title", "uid", "panels", "schemaVersion", "templating"):
    if k not in d:
        errs.append("no %s" % k)
if not any(v.get("name") == "datasource" and v.get("type") == "datasource"
           for v in d.get("templating", {}).get("list", [])):
    errs.append("no datasource variable")
ids = [p.get("id") for p in d.get("panels", [])]
if len(ids) != len(set(ids)) or None in ids:
    errs.append("panel ids not unique: %s" % ids)
for p in d.get("panels", []):
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g.get("x", 0) + g.get("w", 0) > 24:
        errs.append("panel %s: bad gridPos %s" % (p.get("title"), g))
    if p.get("type") == "row":
        continue
    ts = p.get("targets", [])
    if not ts or not all(t.get("expr") for t in ts):
        errs.append("panel %s: no query" % p.get("title"))
    if p.get("datasource", {}).get("uid") != "${datasource}":
        errs.append("panel %s: datasource is not the variable" % p.get("title"))
if errs:
    print("; ".join(errs))
    sys.exit(1)
EOF

# --- metric names used vs exported
names_used() { # the evsrep_* names in the rules and the dashboard, base names
  { grep -o 'evsrep_[a-z_]*' "$RULES"; python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["panels"]:
    for t in p.get("targets", []):
        print(t["expr"])' "$DASH" | grep -o 'evsrep_[a-z_]*'; } |
    sed -E 's/_(bucket|count|sum)$//' | sort -u
}
OP_TOKEN=op$RANDOM$RANDOM$RANDOM OP_PROJECT=operators$RANDOM
mkdir -p "$DATA"
(umask 077 && printf '# tokens\ntenant%s%s project%s\n%s %s operator\n' "$RANDOM" "$RANDOM" "$RANDOM" \
  "$OP_TOKEN" "$OP_PROJECT" >"$DATA/tokens")
start_daemon
P=$(create_volume az1 1 p)
D=$(create_volume az2 1 d)
PAIR=$(create_pair "$P" "$D" pair)
wait_pair_active "$PAIR" || fail "pair never active"
GID=$(create_group grp "$PAIR")
group_action "$GID" os-stop-replication-consistency-group
expect_status 200 "pause the group"
code=$(curl -s -o "$TMP/m" -w '%{http_code}' -H "Authorization: Bearer $OP_TOKEN" "$URL/metrics")
expect_eq "$code" 200 "metrics with Authorization: Bearer (operator token)"
grep -q "evsrep_group_seconds_since_freeze{group=\"$GID\"}" "$TMP/m" ||
  fail "operator scrape (Bearer) shows no series of group $GID"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer nope" "$URL/metrics")
expect_eq "$code" 401 "metrics with a bad Bearer token"
exported=$(grep -E '^# TYPE evsrep_' "$TMP/m" | awk '{print $3}' | sort -u)
missing=$(comm -23 <(names_used) <(printf '%s\n' "$exported"))
n=$(names_used | wc -l)
[ "$n" -ge 10 ] || fail "only $n metric names found in the rules and the dashboard (the extraction is broken?)"
if [ -n "$missing" ]; then
  fail "queried by contrib/ but not exported by evsrepd: $(echo $missing)"
else
  log "contrib/ queries $n metric names; all exported"
fi
promtool check metrics <"$TMP/m" >"$TMP/lint.log" 2>&1 || fail "promtool check metrics: $(cat "$TMP/lint.log")"
finish
