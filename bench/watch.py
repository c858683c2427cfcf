#!/usr/bin/env python3
"""Waits for smtp-sink to count TARGET messages; used by bench/compare.sh.

    watch.py SINK_OUT TARGET STALL_SECS SOURCE_PID

Polls the last `mesg=N` counter `smtp-sink -c` wrote to SINK_OUT (one process for the
whole run: the shell loop it replaces forked `tail` and `sleep` twenty times a second,
about 6 % of the two vCPUs, and saw the end only to within 50 ms). The pause between
polls follows the time the run still needs at the rate seen so far: an eighth of it,
between 2 ms and 20 ms, so the end is seen within 2 ms while the watcher itself costs
little during the run (polling every 2 ms throughout took about 6 % of one vCPU, shared
with the systems being measured). Also notes when SOURCE_PID (smtp-source) exits. Prints `T_DONE_US T_SRC_US COUNT STALLED` (wall
clock in microseconds, like bash's EPOCHREALTIME; T_SRC_US is 0 if smtp-source still
runs; STALLED is 1 when no message arrived for STALL_SECS).
"""
import os
import sys
import time


def count(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            tail = f.read()
    except OSError:
        return 0
    at = tail.rfind(b"mesg=")
    if at < 0:
        return 0
    digits = tail[at + 5:]
    n = 0
    for b in digits:
        if 48 <= b <= 57:
            n = n * 10 + b - 48
        else:
            break
    return n


def exited(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def now_us():
    return time.time_ns() // 1000


MIN_PAUSE, MAX_PAUSE = 0.002, 0.020


def pause(start, now, first, got, target):
    """An eighth of the time left at the rate since the first count, within the bounds."""
    done = got - first
    if done <= 0 or now <= start:
        return MIN_PAUSE * 5
    left_s = (target - got) * (now - start) / done / 1e6
    return min(MAX_PAUSE, max(MIN_PAUSE, left_s / 8))


def main():
    path, target, stall, pid = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    last, last_change, t_src = -1, now_us(), 0
    start, first = last_change, count(path)
    while True:
        got = count(path)
        now = now_us()
        if not t_src and exited(pid):
            t_src = now
        if got >= target:
            print(now, t_src, got, 0)
            return
        if got != last:
            last, last_change = got, now
        elif now - last_change > stall * 1e6:
            print(last_change, t_src, got, 1)
            return
        time.sleep(pause(start, now, first, got, target))


main()
