#!/usr/bin/env python3
"""cpustat.py: CPU seconds used so far, for the benchmark's "who used the CPU" columns.

  cpustat.py tree PID...   CPU (user+sys) of the process trees rooted at PID: each live
                           process's own time plus what it has reaped (cutime/cstime), so the
                           short-lived imap processes of a Dovecot master, or PostgreSQL
                           backends, are counted once they exit. Missing PIDs count 0.
  cpustat.py machine       busy CPU seconds of the whole machine (/proc/stat, all but idle
                           and iowait).

Take one reading before and one after; the difference is what was used in between.
"""
import os
import sys

HZ = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()   # fields from 3 (state) on
    return rest


def children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(stat_fields(int(d))[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_cpu(roots):
    kids = children()
    total, seen, todo = 0, set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            f = stat_fields(pid)
        except OSError:
            continue
        # utime stime cutime cstime are fields 14-17 (1-based), rest[] starts at field 3
        total += sum(int(x) for x in f[11:15])
        todo.extend(kids.get(pid, []))
    return total / HZ


def machine():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / HZ


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "tree":
        print("%.2f" % tree_cpu([int(p) for p in sys.argv[2:] if p.isdigit()]))
    elif len(sys.argv) == 2 and sys.argv[1] == "machine":
        print("%.2f" % machine())
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
