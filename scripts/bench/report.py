#!/usr/bin/env python3
"""report.py: the summary table of scripts/bench.sh from its results.tsv.

  report.py results.tsv --messages N --bytes B --users U --cores C [--imapfleet-default TEXT]

Phases with a ".R" suffix (--repeat) are folded into their median (by wall time).
"""
import argparse
import csv
import statistics

TARGETS = {"wall": 0.75, "cpu": 0.30, "delta": 0.50, "rss64_mb": 100}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--imapfleet-default", default="default")
    o = ap.parse_args()
    rows = list(csv.DictReader(open(o.results), delimiter="\t"))
    groups = {}
    for r in rows:
        base = r["phase"].split(".")[0]
        for k in ("wall_s", "user_s", "sys_s", "rss_kb", "src_cpu_s", "dst_cpu_s", "pg_cpu_s",
                  "machine_busy_s", "load1"):
            r[k] = float(r[k])
        r["cpu"] = r["user_s"] + r["sys_s"]
        groups.setdefault(base, []).append(r)
    med = {}
    for base, rs in groups.items():
        rs.sort(key=lambda r: r["wall_s"])
        m = dict(rs[(len(rs) - 1) // 2])
        m["n"] = len(rs)
        m["walls"] = [r["wall_s"] for r in rs]
        m["cpus"] = [r["cpu"] for r in rs]
        m["cpu"] = statistics.median(m["cpus"])
        med[base] = m

    mb = o.bytes / 1e6
    print("imapfleet vs mbsync: %d accounts, %d messages, %.0f MB (10^6 bytes), %d cores, "
          "TLS on both sides" % (o.users, o.messages, mb, o.cores))
    print("client CPU = user+sys of the client processes only; servers = Dovecot src+dst "
          "(and PostgreSQL, imapfleet's state); machine = all busy CPU of the host in that time")
    print()
    hdr = ("%-30s %7s %8s %6s %7s %8s %7s %7s %7s %7s %6s %6s" %
           ("run", "wall s", "client", "RSS MB", "msg/s", "MB/s", "src", "dst", "pg", "all", "mach.", "load"))
    print(hdr)
    print("%-30s %7s %8s %6s %7s %8s %7s %7s %7s %7s %6s %6s" %
          ("", "", "CPU s", "", "", "", "CPU s", "CPU s", "CPU s", "CPU s", "busy%", "before"))
    order = sorted(med, key=lambda b: (not b.startswith("imapfleet-full"), not b.startswith("imapfleet-delta"),
                                      not b.startswith("mbsync-full"), not b.startswith("mbsync-delta"),
                                      not b.startswith("imapfleet-w64"), b))
    for b in order:
        m = med[b]
        full = "delta" not in b
        wall = m["wall_s"]
        name = b + ("" if m["n"] == 1 else " (median of %d)" % m["n"])
        m["all"] = m["cpu"] + m["src_cpu_s"] + m["dst_cpu_s"] + (m["pg_cpu_s"] if m["tool"] == "imapfleet" else 0)
        print("%-30s %7.1f %8.2f %6.0f %7s %8s %7.1f %7.1f %7s %7.1f %5.0f%% %6.1f%s" % (
            name, wall, m["cpu"], m["rss_kb"] / 1024,
            "%.0f" % (o.messages / wall) if full else "-",
            "%.1f" % (mb / wall) if full else "-",
            m["src_cpu_s"], m["dst_cpu_s"],
            "%.1f" % m["pg_cpu_s"] if m["tool"] == "imapfleet" else "-", m["all"],
            100 * m["machine_busy_s"] / (wall * o.cores), m["load1"],
            "" if m["rc"] == "0" else "  exit %s" % m["rc"]))
        if m["n"] > 1:
            print("%-30s walls %s; client CPU %s" % ("", " ".join("%.1f" % x for x in m["walls"]),
                                                     " ".join("%.2f" % x for x in m["cpus"])))
    print()
    fi, fd, mf, md = (med.get(k) for k in ("imapfleet-full", "imapfleet-delta", "mbsync-full", "mbsync-delta"))
    print("imapfleet main run settings: %s" % o.imapfleet_default)
    if fi and mf:
        def line(what, a, b, target):
            r = a / b
            print("ratio imapfleet/mbsync %-16s %5.2f  (%.2f / %.2f; target <= %.2f: %s)" % (
                what, r, a, b, target, "met" if r <= target else "MISSED"))
        line("wall (full)", fi["wall_s"], mf["wall_s"], TARGETS["wall"])
        line("client CPU (full)", fi["cpu"], mf["cpu"], TARGETS["cpu"])
        if fd and md:
            line("wall (delta)", fd["wall_s"], md["wall_s"], TARGETS["delta"])
        print("ratio imapfleet/mbsync %-16s %5.2f  (%.1f / %.1f s: client + Dovecot src + dst (+ PostgreSQL); "
              "on a %d-core machine with nothing else running, the full copy cannot take less than "
              "%.1f s / %.1f s)" % ("all CPU (full)", fi["all"] / mf["all"], fi["all"], mf["all"], o.cores,
                                    fi["all"] / o.cores, mf["all"] / o.cores))
        print("client CPU per message: imapfleet %.0f us, mbsync %.0f us" % (
            1e6 * fi["cpu"] / o.messages, 1e6 * mf["cpu"] / o.messages))
    w64 = med.get("imapfleet-w64")
    if w64:
        r = w64["rss_kb"] / 1024
        print("imapfleet peak RSS at --workers 64 --max-conns-per-host 64: %.0f MB (target < %d MB: %s), "
              "wall %.1f s" % (r, TARGETS["rss64_mb"], "met" if r < TARGETS["rss64_mb"] else "MISSED",
                               w64["wall_s"]))
    sweep = sorted((b for b in med if b.startswith("sweep-") or b in ("imapfleet-full", "imapfleet-w64")),
                   key=lambda b: med[b]["wall_s"])
    if len(sweep) > 2 and any(b.startswith("sweep-") for b in sweep):
        print("settings by wall time: " + ", ".join("%s %.1f s" % (b, med[b]["wall_s"]) for b in sweep))


if __name__ == "__main__":
    main()
