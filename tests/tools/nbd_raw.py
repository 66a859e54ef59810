#!/usr/bin/env python3
"""A minimal NBD client for tests that need what polite clients never do:
write to an export flagged read-only, keep a connection open across an
event, list exports. Fixed newstyle handshake, NBD_OPT_GO, simple replies.

  nbd_raw.py HOST:PORT list               -> "names: a b" or "refused: <reply type>"
  nbd_raw.py HOST:PORT EXPORT info        -> "size: N ro: 0|1" or "refused: ..."
  nbd_raw.py HOST:PORT EXPORT write OFF LEN BYTE
        -> sends WRITE whatever the flags say: "write: ok" or "write: errno N"
  nbd_raw.py HOST:PORT EXPORT hold FILE [SECS]
        -> reads once ("read-before: ok"), waits until FILE exists (at most
           SECS, default 30), reads again: "read-after: ok" or "read-after: closed"
  nbd_raw.py HOST:PORT EXPORT hammer SECS OFF BYTE [STOPFILE]
        -> for SECS seconds (or until STOPFILE exists), connect and WRITE
           4 KiB of BYTE at OFF as fast as it can (through restarts of the
           server): "hammer: ok N
           refused N eperm N down N" (ok = writes the server acknowledged)
  nbd_raw.py HOST:PORT EXPORT sha256 OFF LEN [OFF LEN...]
        -> "sha256: <hex>" of the bytes of the ranges, concatenated (cheap
           byte checks of the regions a test wrote on a large sparse disk)
Exit status 0 whenever it could print one of these lines, 2 otherwise.
"""
import os
import socket
import struct
import sys
import time

INIT = 0x4E42444D41474943  # "NBDMAGIC"
OPTS = 0x49484156454F5054  # "IHAVEOPT"
REPLY_MAGIC = 0x3E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698
OPT_LIST, OPT_GO = 3, 7
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
CMD_READ, CMD_WRITE = 0, 1
FLAG_READ_ONLY = 1 << 1


def recv_full(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def connect(hostport):
    host, port = hostport.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    magic, opts, _flags = struct.unpack(">QQH", recv_full(s, 18))
    if magic != INIT or opts != OPTS:
        raise RuntimeError("not a newstyle NBD server")
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    return s


def send_opt(s, opt, data=b""):
    s.sendall(struct.pack(">QII", OPTS, opt, len(data)) + data)


def read_opt_reply(s):
    magic, _opt, rtype, length = struct.unpack(">QIII", recv_full(s, 20))
    if magic != REPLY_MAGIC:
        raise RuntimeError("bad option reply magic")
    return rtype, recv_full(s, length)


def opt_list(s):
    send_opt(s, OPT_LIST)
    names = []
    while True:
        rtype, data = read_opt_reply(s)
        if rtype == REP_SERVER:
            (n,) = struct.unpack(">I", data[:4])
            names.append(data[4 : 4 + n].decode())
        elif rtype == REP_ACK:
            return "names: " + " ".join(names)
        else:
            return "refused: 0x%x" % rtype


def opt_go(s, name):
    """Returns (size, tflags), or raises with the server's refusal."""
    nb = name.encode()
    send_opt(s, OPT_GO, struct.pack(">I", len(nb)) + nb + struct.pack(">H", 0))
    size = flags = None
    while True:
        rtype, data = read_opt_reply(s)
        if rtype == REP_INFO and struct.unpack(">H", data[:2])[0] == 0:
            size, flags = struct.unpack(">QH", data[2:12])
        elif rtype == REP_ACK:
            return size, flags
        elif rtype != REP_INFO:
            raise PermissionError("refused: 0x%x %s" % (rtype, data.decode(errors="replace")))


def request(s, cmd, handle, off, length, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, cmd, handle, off, length) + payload)
    magic, err, h = struct.unpack(">IIQ", recv_full(s, 16))
    if magic != SIMPLE_REPLY or h != handle:
        raise RuntimeError("bad reply")
    if cmd == CMD_READ and err == 0:
        recv_full(s, length)
    return err


def read_range(s, off, length):
    """READ [off, off+length) in 1 MiB requests; raises on an error reply."""
    out = bytearray()
    while length > 0:
        n = min(length, 1 << 20)
        s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, 7, off, n))
        magic, err, h = struct.unpack(">IIQ", recv_full(s, 16))
        if magic != SIMPLE_REPLY or h != 7 or err != 0:
            raise RuntimeError("read at %d: errno %d" % (off, err))
        out += recv_full(s, n)
        off, length = off + n, length - n
    return bytes(out)


def hammer(hostport, export, secs, off, byte, stopfile=None):
    counts = {"ok": 0, "refused": 0, "eperm": 0, "down": 0}
    end = time.monotonic() + secs
    while time.monotonic() < end and not (stopfile and os.path.exists(stopfile)):
        try:
            s = connect(hostport)
        except (OSError, EOFError, RuntimeError):
            counts["down"] += 1
            time.sleep(0.002)
            continue
        try:
            opt_go(s, export)
            err = request(s, CMD_WRITE, 1, off, 4096, bytes([byte]) * 4096)
            counts["ok" if err == 0 else "eperm"] += 1
        except PermissionError:
            counts["refused"] += 1
        except (OSError, EOFError, RuntimeError):
            counts["down"] += 1
        finally:
            s.close()
    return "hammer: ok %(ok)d refused %(refused)d eperm %(eperm)d down %(down)d" % counts


def main(argv):
    if len(argv) in (7, 8) and argv[3] == "hammer":
        stop = argv[7] if len(argv) == 8 else None
        print(hammer(argv[1], argv[2], float(argv[4]), int(argv[5]), int(argv[6], 0), stop))
        return 0
    if len(argv) == 3 and argv[2] == "list":
        print(opt_list(connect(argv[1])))
        return 0
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    hostport, export, what = argv[1], argv[2], argv[3]
    s = connect(hostport)
    try:
        size, flags = opt_go(s, export)
    except PermissionError as e:
        print(e)
        return 0
    if what == "info":
        print("size: %d ro: %d" % (size, 1 if flags & FLAG_READ_ONLY else 0))
    elif what == "write":
        off, length, byte = int(argv[4]), int(argv[5]), int(argv[6], 0)
        err = request(s, CMD_WRITE, 1, off, length, bytes([byte]) * length)
        print("write: ok" if err == 0 else "write: errno %d" % err)
    elif what == "sha256":
        import hashlib
        h = hashlib.sha256()
        nums = [int(x, 0) for x in argv[4:]]
        for i in range(0, len(nums) - 1, 2):
            h.update(read_range(s, nums[i], nums[i + 1]))
        print("sha256: " + h.hexdigest())
    elif what == "hold":
        trigger, secs = argv[4], float(argv[5]) if len(argv) > 5 else 30.0
        print("read-before: %s" % ("ok" if request(s, CMD_READ, 1, 0, 4096) == 0 else "error"))
        sys.stdout.flush()
        end = time.monotonic() + secs
        while not os.path.exists(trigger) and time.monotonic() < end:
            time.sleep(0.05)
        try:
            err = request(s, CMD_READ, 2, 0, 4096)
            print("read-after: %s" % ("ok" if err == 0 else "errno %d" % err))
        except (EOFError, OSError):
            print("read-after: closed")
    else:
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, EOFError, RuntimeError) as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(2)
