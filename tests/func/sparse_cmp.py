#!/usr/bin/env python3
"""sparse_cmp.py A B: compare two (sparse) files byte for byte, reading only
the union of their data extents (SEEK_DATA/SEEK_HOLE): outside it both read
as zeroes. Exit 0 when equal; 1 with the first differing offset; 2 on a
usage or I/O error. Fast for large disks with little data."""
import os
import sys


def extents(fd, size):
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h))
        off = h
    return out


def union(a, b):
    ivs = sorted(a + b)
    out = []
    for s, e in ivs:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def main():
    if len(sys.argv) != 3:
        print("usage: sparse_cmp.py A B", file=sys.stderr)
        return 2
    fa, fb = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
    sa, sb = os.fstat(fa).st_size, os.fstat(fb).st_size
    if sa != sb:
        print(f"sizes differ: {sa} != {sb}")
        return 1
    step = 1 << 20
    for s, e in union(extents(fa, sa), extents(fb, sb)):
        off = s
        while off < e:
            n = min(step, e - off)
            x, y = os.pread(fa, n, off), os.pread(fb, n, off)
            if x != y:
                i = next(k for k in range(len(x)) if x[k] != y[k])
                print(f"differ at byte {off + i}: {x[i]:#04x} != {y[i]:#04x}")
                return 1
            off += n
    return 0


if __name__ == "__main__":
    sys.exit(main())
