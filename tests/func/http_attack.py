#!/usr/bin/env python3
"""A misbehaving HTTP client for tests/func/t_http_limits.sh (raw sockets).

Usage: http_attack.py MODE PORT N SRC DIR

  MODE headers    N connections that send half a request head and stop
       slowloris  N connections that send a request head one byte at a time,
                  a byte per connection every 0.2 s, never finishing it
       bodies     N unauthenticated POSTs announcing a 1 MiB body: the head,
                  then (after looking for an early answer) 900 KiB of it
  SRC  source address, or BASE/K to spread the connections over K
       addresses BASE, BASE+1, ... (e.g. 127.0.0.10/25)
  DIR  writes DIR/ready (a JSON summary) once every connection is set up,
       then holds them until DIR/stop exists (at most 120 s), closes, exits 0.

Only loopback addresses (127.0.0.0/8) are accepted.
"""
import ipaddress
import json
import os
import resource
import select
import socket
import sys
import time

HOLD_MAX_SEC = 120
ANSWER_WAIT_SEC = 30  # bodies: how long to look for early answers (a bound, not a check)
BODY_SENT = 900 * 1024


def sources(spec):
    base, _, k = spec.partition('/')
    first = ipaddress.ip_address(base)
    addrs = [str(first + i) for i in range(int(k or 1))]
    for a in addrs:
        if not ipaddress.ip_address(a) in ipaddress.ip_network('127.0.0.0/8'):
            sys.exit('http_attack.py: %s is not a loopback address' % a)
    return addrs


def connect(src, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(('127.0.0.1', port))
    return s


def send_quietly(s, data):
    try:
        s.sendall(data)
        return True
    except OSError:  # the server refused or closed the connection: that is fine
        return False


def main():
    mode, port, n, spec, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    addrs = sources(spec)
    socks, failed = [], 0
    head = ('POST /v2/x/volumes HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n').encode()
    for i in range(n):
        try:
            s = connect(addrs[i % len(addrs)], port)
        except OSError:
            failed += 1
            continue
        if mode == 'headers':
            send_quietly(s, b'GET /v2/x/volumes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ')
        elif mode == 'bodies':
            send_quietly(s, head)
        socks.append(s)
    summary = {'mode': mode, 'opened': len(socks), 'connect_failed': failed}
    if mode == 'bodies':
        # An early answer (401 before any body byte) is in the receive
        # buffer by now on a fixed server; give a slow one a generous bound.
        answered, pending, deadline = 0, list(socks), time.monotonic() + ANSWER_WAIT_SEC
        while pending and time.monotonic() < deadline:
            r, _, _ = select.select(pending, [], [], 0.5)
            for s in r:
                pending.remove(s)
                try:
                    if s.recv(64).startswith(b'HTTP/1.1 401'):
                        answered += 1
                except OSError:
                    pass
        summary['answered_401_before_body'] = answered
        sent = 0
        for s in socks:
            sent += send_quietly(s, b'x' * BODY_SENT)
        summary['bodies_sent'] = sent
    with open(os.path.join(d, 'ready.tmp'), 'w') as f:
        json.dump(summary, f)
    os.rename(os.path.join(d, 'ready.tmp'), os.path.join(d, 'ready'))
    line = b'GET /v2/x/volumes HTTP/1.1\r\nHost: 127.0.0.1\r\n' + b'X-Slow: ' + b'a' * 4096
    pos, end = 0, time.monotonic() + HOLD_MAX_SEC
    while not os.path.exists(os.path.join(d, 'stop')) and time.monotonic() < end:
        if mode == 'slowloris':
            for s in socks:
                send_quietly(s, line[pos % len(line):pos % len(line) + 1])
            pos += 1
        time.sleep(0.2)
    for s in socks:
        s.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
