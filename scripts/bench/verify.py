#!/usr/bin/env python3
"""verify.py: check every account of a migration with mailcmp's comparison, tolerating X-TUID.

Runs tests/tools/mailcmp.py's own comparison (per folder, multisets of SHA-256 of the full
bytes, then FLAGS and INTERNALDATE) for every row of an imapfleet accounts.csv, several
accounts at once, and prints one summary for the whole set.

mbsync adds an "X-TUID: ..." header to every message it uploads, so plain mailcmp reports
each of them as missing (source) and extra (destination). Here a message's hash is taken
with an X-TUID header line removed, and such messages are counted as "altered (X-TUID header
added)"; everything else (missing, extra, flags, dates, folders) is exactly what mailcmp
reports. For a copy without X-TUID the result is mailcmp's, message for message.

  verify.py ACCOUNTS.csv --cafile CA [--jobs N] [--json OUT] [--label NAME]

Exit status: 0 equal (altered messages aside), 1 different, 2 could not compare.
"""

import argparse
import collections
import csv
import hashlib
import json
import multiprocessing
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "tools"))
import mailcmp  # noqa: E402

TUID_RE = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.I | re.M)
_tuid = [0]


class _HashShim:
    """Stands in for the hashlib module inside mailcmp: sha256() ignores an X-TUID header."""

    def sha256(self, raw=b""):
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            end = raw.find(b"\n\n")
        head = raw[:end + 2] if end >= 0 else raw
        if b"X-TUID" in head or b"x-tuid" in head.lower():
            new_head, n = TUID_RE.subn(b"", head, count=1)
            if n:
                _tuid[0] += 1
                raw = new_head + raw[len(head):]
        return hashlib.sha256(raw)

    def __getattr__(self, name):
        return getattr(hashlib, name)


mailcmp.hashlib = _HashShim()


def check_account(args):
    row, cafile = args
    _tuid[0] = 0
    argv = ["--cafile", cafile, "--timeout", "120"]
    for side, n in (("src", "1"), ("dst", "2")):
        tls = row["tls" + n]
        argv += ["--%s-host" % side, row["host" + n], "--%s-port" % side, row["port" + n],
                 "--%s-user" % side, row["user" + n], "--%s-passfile" % side, row["passfile" + n],
                 "--%s-%s" % (side, "ssl" if tls == "ssl" else "starttls" if tls == "starttls" else "plain")]
    opts = mailcmp.parse_args(argv)
    src = dst = None
    try:
        src, dst = mailcmp.account(opts, "src"), mailcmp.account(opts, "dst")
        results = mailcmp.compare(src, dst, opts)
    except Exception as e:  # noqa: BLE001 - reported, counted as "could not compare"
        return {"user": row["user1"], "error": str(e)}
    finally:
        for a in (src, dst):
            if a:
                a.logout()
    equal, line = mailcmp.summary(results, [])
    out = {"user": row["user1"], "equal": equal, "summary": line, "altered_tuid": _tuid[0],
           "messages": sum(r.src_count for r in results if r.src_name),
           "missing": sum(len(r.missing) for r in results),
           "extra": sum(len(r.extra) for r in results),
           "flags": sum(len(r.flags) for r in results),
           "dates": sum(len(r.dates) for r in results),
           "missing_folders": [r.name for r in results if r.problem == "missing folder"],
           "extra_folders": [r.name for r in results if r.problem == "extra folder"],
           "examples": []}
    # What kind of flag differences: which flags were lost or added (counted).
    lost, added = collections.Counter(), collections.Counter()
    for r in results:
        for f in r.flags:
            lost.update(set(f["src_flags"]) - set(f["dst_flags"]))
            added.update(set(f["dst_flags"]) - set(f["src_flags"]))
        for m in r.missing[:2]:
            out["examples"].append("missing %s src UID %d: %s" % (r.name, m["src_uid"], m["subject"]))
        for m in r.extra[:2]:
            out["examples"].append("extra %s dst UID %d: %s" % (r.name, m["dst_uid"], m["subject"]))
    out["flags_lost"], out["flags_added"] = dict(lost), dict(added)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("accounts")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--json", help="write the per-account results here")
    ap.add_argument("--label", default="copy")
    o = ap.parse_args()
    with open(o.accounts, newline="") as f:
        rows = list(csv.DictReader(f))
    with multiprocessing.Pool(o.jobs) as pool:
        res = pool.map(check_account, [(r, o.cafile) for r in rows], chunksize=1)
    if o.json:
        with open(o.json, "w") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)
    errors = [r for r in res if "error" in r]
    ok = [r for r in res if "error" not in r]
    tot = lambda k: sum(r[k] for r in ok)  # noqa: E731
    lost, added = collections.Counter(), collections.Counter()
    for r in ok:
        lost.update(r["flags_lost"])
        added.update(r["flags_added"])
    mf = sum(len(r["missing_folders"]) for r in ok)
    xf = sum(len(r["extra_folders"]) for r in ok)
    equal = not errors and all(r["equal"] for r in ok)
    print("verify %s: %d accounts, %d source messages: %d missing, %d extra, %d flag mismatches, "
          "%d date mismatches, %d missing folders, %d extra folders%s" % (
              o.label, len(rows), tot("messages"), tot("missing"), tot("extra"), tot("flags"),
              tot("dates"), mf, xf, ", %d accounts NOT compared" % len(errors) if errors else ""))
    if tot("altered_tuid"):
        print("verify %s: altered: %d messages (X-TUID header added)" % (o.label, tot("altered_tuid")))
    if lost or added:
        print("verify %s: flags lost on the destination: %s; flags added: %s" % (
            o.label, ", ".join("%s x%d" % kv for kv in sorted(lost.items())) or "none",
            ", ".join("%s x%d" % kv for kv in sorted(added.items())) or "none"))
    names = collections.Counter(n for r in ok for n in r["missing_folders"])
    if names:
        print("verify %s: folders not created: %s" % (
            o.label, ", ".join("%s (%d accounts)" % kv for kv in sorted(names.items()))))
    examples = [(r["user"], ex) for r in ok for ex in r["examples"][:1]]
    for user, ex in examples[:3]:
        print("verify %s:   e.g. %s %s" % (o.label, user, ex))
    for r in errors[:5]:
        print("verify %s: %s: could not compare: %s" % (o.label, r["user"], r["error"]))
    print("verify %s: %s" % (o.label, "OK (mailcmp equal%s)" % (
        ", apart from the X-TUID header" if tot("altered_tuid") else "") if equal else "DIFFERENT"))
    return 2 if errors else 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
