#!/usr/bin/env python3
"""Do GETs answer while a slow action holds its request? (t_group_dr)

Usage: http_slow_action.py PORT TOKEN ACTION_PATH ACTION_BODY GET_PATH N

Opens the action's connection and sends its head only, so that the server
has accepted it and waits for the body; then opens N more connections (some
land on the same server thread as the action); then sends the action's body
(the action starts and runs for seconds); then sends one GET on each of the
N connections. Prints one JSON line: the order in which the answers came.
A server that runs the action on the thread that accepted its connection
keeps that thread's other connections waiting until the action ends: their
GETs are answered after the action. Exits 0 whatever the order (the caller
checks it); 2 on a protocol error. Everything is bounded: 60 s in all.
"""
import json
import select
import socket
import sys
import time

DEADLINE_SEC = 60


def read_answer(buf):
    """Returns (status, rest) once a whole answer is in buf, else None."""
    head, sep, rest = buf.partition(b'\r\n\r\n')
    if not sep:
        return None
    lines = head.split(b'\r\n')
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b':')
        if k.strip().lower() == b'content-length':
            length = int(v.strip())
    if len(rest) < length:
        return None
    return status


def main():
    port, token, apath, abody, gpath, n = sys.argv[1:7]
    n = int(n)
    end = time.monotonic() + DEADLINE_SEC
    body = abody.encode()
    act = socket.create_connection(('127.0.0.1', int(port)), timeout=10)
    act.sendall(('POST %s HTTP/1.1\r\nHost: t\r\nX-Auth-Token: %s\r\n'
                 'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n'
                 % (apath, token, len(body))).encode())
    time.sleep(0.3)
    gets = [socket.create_connection(('127.0.0.1', int(port)), timeout=10) for _ in range(n)]
    time.sleep(0.3)
    act.sendall(body)
    time.sleep(0.3)
    for g in gets:
        g.sendall(('GET %s HTTP/1.1\r\nHost: t\r\nX-Auth-Token: %s\r\n\r\n'
                   % (gpath, token)).encode())
    socks = {act: 'action'}
    for i, g in enumerate(gets):
        socks[g] = 'get%d' % i
    bufs = {s: b'' for s in socks}
    order, statuses = [], {}
    while socks and time.monotonic() < end:
        ready, _, _ = select.select(list(socks), [], [], 1.0)
        for s in ready:
            data = s.recv(65536)
            if not data:
                print(json.dumps({'error': '%s: closed before an answer' % socks[s]}))
                return 2
            bufs[s] += data
            st = read_answer(bufs[s])
            if st is not None:
                order.append(socks[s])
                statuses[socks[s]] = st
                s.close()
                del socks[s]
    if socks:
        print(json.dumps({'error': 'no answer within %d s from %s'
                          % (DEADLINE_SEC, sorted(socks.values()))}))
        return 2
    pos = order.index('action')
    print(json.dumps({'action_status': statuses['action'],
                      'gets_before_action': pos,
                      'gets_after_action': len(order) - pos - 1,
                      'get_statuses': sorted(set(v for k, v in statuses.items() if k != 'action'))}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
