#!/usr/bin/env python3
"""wanreport.py: the WAN-mode summary of scripts/bench.sh (--wan, --huge) from its results.tsv.

  wanreport.py results.tsv [--kbit N] [--workers N] [--users N] [--messages N] [--huge N]

Phases are "CASE-TOOL.R" (case wan50, huge50 ...; tool imapfleet or mbsync; R the repetition).
For each case: every pair's wall and CPU (run r of imapfleet against run r of mbsync, run back to
back), the medians, and the ratios imapfleet/mbsync of the medians and of each pair.
"""
import argparse
import csv
import re
import statistics

TARGET_WALL = {0: 0.65, 50: 0.35, 100: 0.30}
TARGET_HUGE = 0.25


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--kbit", type=int, default=0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--huge", type=int, default=0)
    o = ap.parse_args()
    cases = {}
    for r in csv.DictReader(open(o.results), delimiter="\t"):
        m = re.match(r"^(wan|huge)(\d+)-(imapfleet|mbsync)\.(\d+)$", r["phase"])
        if not m:
            continue
        key = (m.group(1), int(m.group(2)))
        run = cases.setdefault(key, {}).setdefault(m.group(3), {})
        run[int(m.group(4))] = (float(r["wall_s"]), float(r["user_s"]) + float(r["sys_s"]), r["rc"])
    print("WAN mode: both Dovecots behind scripts/bench/delayproxy (%s), %d accounts in parallel for "
          "both tools" % ("%d kbit/s per connection" % o.kbit if o.kbit else "no bandwidth limit", o.workers))
    print("  wan<RTT>: %d accounts x %d messages (15 folders)%s" % (
        o.users, o.messages, "; huge<RTT>: one account of %d messages in INBOX" % o.huge if o.huge else ""))
    print()
    print("%-9s %-22s %-22s %-18s %-18s %s" % ("case", "mbsync wall s", "imapfleet wall s", "wall ratio",
                                             "CPU ratio", "target"))
    for (kind, rtt) in sorted(cases, key=lambda k: (k[0] != "wan", k[1])):
        c = cases[(kind, rtt)]
        i, mb = c.get("imapfleet", {}), c.get("mbsync", {})
        iw = [i[k][0] for k in sorted(i)]
        mw = [mb[k][0] for k in sorted(mb)]
        ic = [i[k][1] for k in sorted(i)]
        mc = [mb[k][1] for k in sorted(mb)]
        pairs = [(i[k][0] / mb[k][0], i[k][1] / mb[k][1]) for k in sorted(i) if k in mb and mb[k][0] and mb[k][1]]
        bad = [k for k in sorted(i) if i[k][2] != "0"] + [k for k in sorted(mb) if mb[k][2] != "0"]
        target = TARGET_HUGE if kind == "huge" else TARGET_WALL.get(rtt)
        med = lambda v: statistics.median(v) if v else float("nan")  # noqa: E731
        wr = med(iw) / med(mw) if mw else float("nan")
        cr = med(ic) / med(mc) if mc else float("nan")
        print("%-9s %-22s %-22s %-18s %-18s %s%s" % (
            "%s%d" % (kind, rtt),
            "%.1f (%s)" % (med(mw), " ".join("%.1f" % x for x in mw)) if mw else "-",
            "%.1f (%s)" % (med(iw), " ".join("%.1f" % x for x in iw)),
            "%.2f (%s)" % (wr, " ".join("%.2f" % p[0] for p in pairs)) if pairs else "-",
            "%.2f (%s)" % (cr, " ".join("%.2f" % p[1] for p in pairs)) if pairs else "-",
            "<= %.2f" % target if target else "",
            "  (a run exited non-zero: see its log)" if bad else ""))
    print()
    print("wall/CPU = medians over the repetitions (each value in brackets); ratios are imapfleet/mbsync of the "
          "medians, then of each back-to-back pair; CPU = user+sys of the client processes")


if __name__ == "__main__":
    main()
