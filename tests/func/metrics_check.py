#!/usr/bin/python3
"""Validate a Prometheus text exposition (version 0.0.4) file, twice over.

1. A strict line check of our own: every line is a HELP, a TYPE or a
   sample `name value` / `name{l="v",...} value`, one space before the
   value, no empty braces `{}` and no trailing comma (the parser below
   accepts both), each metric typed once and before its samples,
   histogram buckets cumulative with +Inf == _count.
2. The reference parser, prometheus_client.parser (Debian package
   python3-prometheus-client, installed by scripts/deps.sh).

Usage: metrics_check.py FILE. Exit 0 when valid, else 1 with the reason.
"""
import re
import sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r'^(' + NAME + r')(?:\{(' + LABEL + r'(?:,' + LABEL + r')*)\})? '
                    r'(-?[0-9][0-9.eE+-]*|NaN|\+Inf|-Inf)$')
HELP = re.compile(r'^# HELP (' + NAME + r') .*$')
TYPE = re.compile(r'^# TYPE (' + NAME + r') (counter|gauge|histogram|summary|untyped)$')


def strict(text):
    typed, hist = {}, {}
    if text and not text.endswith('\n'):
        return 'the last line has no newline'
    for n, line in enumerate(text.split('\n')[:-1], 1):
        if HELP.match(line):
            continue
        m = TYPE.match(line)
        if m:
            if m.group(1) in typed:
                return 'line %d: TYPE twice for %s' % (n, m.group(1))
            typed[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        if not m:
            return 'line %d: not a HELP, TYPE or sample line: %r' % (n, line)
        name, labels, value = m.group(1), m.group(2) or '', m.group(3)
        base = re.sub(r'_(bucket|sum|count)$', '', name)
        if name not in typed and base not in typed:
            return 'line %d: sample before its TYPE: %s' % (n, name)
        if name.endswith('_bucket') and typed.get(base) == 'histogram':
            le = re.search(r'le="([^"]+)"', labels).group(1)
            key = re.sub(r',?le="[^"]+"', '', labels)
            hist.setdefault((base, key), []).append((le, float(value)))
        if name.endswith('_count') and typed.get(base) == 'histogram':
            b = hist.get((base, labels))
            if not b or b[-1][0] != '+Inf' or b[-1][1] != float(value):
                return 'line %d: %s _count is not its +Inf bucket' % (n, base)
            if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                return 'line %d: %s buckets are not cumulative' % (n, base)
    return None


def reference(text):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return 'prometheus_client is missing: install python3-prometheus-client (scripts/deps.sh)'
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and friends
        return 'prometheus_client.parser rejects it: %s' % e
    if text.strip() and not families:
        return 'prometheus_client.parser found no metric family'
    return None


def main():
    text = open(sys.argv[1]).read()
    for check in (strict, reference):
        err = check(text)
        if err:
            print('%s: %s' % (sys.argv[1], err), file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
