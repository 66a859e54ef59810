#!/usr/bin/env python3
"""Misbehaving NBD clients for t_nbd_limits.sh, on raw sockets.

Every mode is bounded in time (it gives up and exits 1 after --within
seconds) and prints one result line on stdout. Modes:

  flood EXPORT N LEN   handshake, send N READs of LEN bytes, never read a
                       reply; print "flooding" once reply bytes arrive, then
                       "dropped" when the server closes the connection.
  hold N               open N connections; print "accepted A refused R"
                       (refused = closed before the greeting), then keep the
                       accepted ones open until killed (SIGTERM).
  slowloris            read the greeting, then send a valid handshake one
                       byte per second; print "dropped" when the server
                       closes the connection.
  idle EXPORT          finish the handshake (NBD_OPT_GO), send nothing;
                       print "dropped" when the server closes the connection.
"""
import argparse
import socket
import struct
import sys
import time

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
OPT_GO = 7
REP_ACK = 1
REQ_MAGIC = 0x25609513
CMD_READ = 0
TCP_ESTABLISHED = 1


def connect(args, rcvbuf=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((args.source, 0))
    s.connect((args.host, args.port))
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("server closed")
        buf += chunk
    return buf


def go_option(export):
    name = export.encode()
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    return struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data


def handshake(s, export):
    hello = recv_exact(s, 18)
    if hello[:8] != NBDMAGIC:
        raise RuntimeError("bad greeting")
    s.sendall(struct.pack(">I", 1 | 2))  # FIXED_NEWSTYLE | NO_ZEROES
    s.sendall(go_option(export))
    while True:
        magic, _opt, rtype, rlen = struct.unpack(">QIII", recv_exact(s, 20))
        if magic != OPT_REPLY_MAGIC:
            raise RuntimeError("bad option reply")
        recv_exact(s, rlen)
        if rtype == REP_ACK:
            return
        if rtype & 0x80000000:
            raise RuntimeError("export refused: reply type %#x" % rtype)


def closed_by_peer(s):
    """True once the server has closed (FIN or RST), without reading the
    replies queued on our side."""
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0] != TCP_ESTABLISHED


def wait_closed(s, deadline):
    while time.monotonic() < deadline:
        if closed_by_peer(s):
            print("dropped", flush=True)
            return 0
        time.sleep(0.2)
    print("still connected", flush=True)
    return 1


def pending_bytes(s):
    import fcntl
    import termios

    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def mode_flood(args, deadline):
    # A small receive window: the server's replies back up at once.
    s = connect(args, rcvbuf=4096)
    handshake(s, args.export)
    for i in range(args.n):
        s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, i + 1, 0, args.len))
    while pending_bytes(s) == 0:
        if time.monotonic() > deadline:
            print("no reply bytes", flush=True)
            return 1
        time.sleep(0.1)
    print("flooding", flush=True)
    return wait_closed(s, deadline)


def mode_hold(args, deadline):
    socks = [connect(args) for _ in range(args.n)]
    accepted, refused = [], 0
    for s in socks:
        s.settimeout(max(1.0, deadline - time.monotonic()))
        try:
            hello = recv_exact(s, 8)
        except (EOFError, ConnectionResetError):
            refused += 1
            s.close()
            continue
        if hello != NBDMAGIC:
            print("bad greeting", flush=True)
            return 1
        accepted.append(s)
    print("accepted %d refused %d" % (len(accepted), refused), flush=True)
    # Hold them until the test kills us (or the bound passes).
    time.sleep(max(0.0, deadline - time.monotonic()))
    for s in accepted:
        s.close()
    return 0


def mode_slowloris(args, deadline):
    s = connect(args)
    recv_exact(s, 18)
    payload = struct.pack(">I", 3) + go_option("x" * 4000)
    s.setblocking(False)
    for b in payload:
        if time.monotonic() > deadline:
            break
        try:
            s.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            print("dropped", flush=True)
            return 0
        time.sleep(1)
        if closed_by_peer(s):
            print("dropped", flush=True)
            return 0
    print("still connected", flush=True)
    return 1


def mode_idle(args, deadline):
    s = connect(args)
    handshake(s, args.export)
    return wait_closed(s, deadline)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.1", help="local address to bind")
    p.add_argument("--within", type=float, default=60, help="give up after this many seconds")
    sub = p.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("flood")
    f.add_argument("export")
    f.add_argument("n", type=int)
    f.add_argument("len", type=int)
    h = sub.add_parser("hold")
    h.add_argument("n", type=int)
    sub.add_parser("slowloris")
    i = sub.add_parser("idle")
    i.add_argument("export")
    args = p.parse_args()
    deadline = time.monotonic() + args.within
    return {"flood": mode_flood, "hold": mode_hold, "slowloris": mode_slowloris,
            "idle": mode_idle}[args.mode](args, deadline)


if __name__ == "__main__":
    sys.exit(main())
