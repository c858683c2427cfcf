#!/usr/bin/env python3
"""How many synchronous writes a second this machine's disk takes, and how long each takes,
with one or more threads: the ceiling under the spool's group commit.

    python3 bench/syncs.py [--threads N] [--seconds S] [--size BYTES] [--direct] [--files]
                           [--dir DIR]

Each thread overwrites BYTES at a time in a zero-filled, synced file (as the journal
overwrites a spare segment) and makes it durable before the next write: `pwrite` +
`fdatasync` by default, one `pwrite` on a descriptor opened `O_DIRECT | O_DSYNC` with
--direct. Threads share one file unless --files gives each its own. DIR (default /var/tmp)
must be on the disk under test, not tmpfs. Prints syncs/s and the mean time per sync.
"""

import argparse
import mmap
import os
import tempfile
import threading
import time

FILE_BYTES = 64 << 20


def zero_file(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    chunk = b"\0" * (1 << 20)
    for _ in range(FILE_BYTES // len(chunk)):
        os.write(fd, chunk)
    os.fsync(fd)
    os.close(fd)


def worker(path, args, start, counts, spent, i):
    flags = os.O_RDWR | (os.O_DIRECT | os.O_DSYNC if args.direct else 0)
    fd = os.open(path, flags)
    buf = mmap.mmap(-1, args.size)  # page-aligned, as O_DIRECT asks
    buf.write(b"x" * args.size)
    # Threads sharing a file write disjoint regions of it.
    region = FILE_BYTES if args.files else FILE_BYTES // args.threads
    base = 0 if args.files else i * region
    off, end = 0, start + args.seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        os.pwrite(fd, buf, base + off)
        if not args.direct:
            os.fdatasync(fd)
        spent[i] += time.perf_counter() - t
        counts[i] += 1
        off = (off + args.size) % (region - args.size)
    os.close(fd)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--size", type=int, default=16384)
    p.add_argument("--direct", action="store_true")
    p.add_argument("--files", action="store_true")
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        paths = [os.path.join(d, "f%d" % i) for i in range(args.threads if args.files else 1)]
        for path in paths:
            zero_file(path)
        counts, spent = [0] * args.threads, [0.0] * args.threads
        start = time.monotonic()
        threads = [
            threading.Thread(target=worker, args=(paths[i % len(paths)], args, start, counts, spent, i))
            for i in range(args.threads)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    total = sum(counts)
    print("%d thread(s), %s, %s, %d bytes: %d syncs/s, %.3f ms each" % (
        args.threads, "O_DIRECT|O_DSYNC" if args.direct else "pwrite+fdatasync",
        "a file each" if args.files else "one file", args.size,
        total / args.seconds, 1000 * sum(spent) / max(total, 1)))


if __name__ == "__main__":
    main()
