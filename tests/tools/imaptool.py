#!/usr/bin/env python3
"""imaptool: small IMAP helpers for integration tests (stdlib only, TLS verified).

  imaptool.py caps  --host H --port P --user U --passfile F [--starttls] [--authuser A]
                    [--cafile CA]
        log in and print the capabilities, the namespace and the folders
  imaptool.py copy  --src-... --dst-... [--cafile CA] [--folder NAME]...
        a naive reference copy: every folder and message, with flags and INTERNALDATE, one
        APPEND at a time (no de-duplication: running it twice copies everything twice).
        Useful to pre-populate a destination ("an earlier imapsync run").

The account options are those of mailcmp.py (--src-host, --src-port, --src-user,
--src-passfile, --src-ssl|--src-starttls|--src-plain, --src-authuser, same for --dst-).
"""

import argparse
import imaplib
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lab"))
import mailcmp  # noqa: E402
from labutil import mutf7_encode  # noqa: E402


def wire_name(acct, canonical):
    """Canonical "/"-separated name -> the account's wire name (prefix, separator, mUTF-7)."""
    if canonical == "INBOX":
        return "INBOX"
    return acct.prefix + acct.sep.join(mutf7_encode(c) for c in canonical.split("/"))


def cmd_caps(opts):
    acct = mailcmp.Account("server", opts.host, opts.port or (143 if opts.starttls else 993),
                           opts.user, opts.passfile, "starttls" if opts.starttls else "ssl",
                           opts.authuser, opts.cafile, 30)
    print("capabilities:", acct.ok(acct.conn.capability(), "CAPABILITY")[0].decode())
    print("namespace: prefix %r separator %r" % (acct.prefix, acct.sep))
    for name, f in sorted(acct.folders(True).items()):
        print("folder: %-30s wire %-30s %s" % (name, f.wire, " ".join(f.attrs)))
    acct.logout()
    return 0


def cmd_copy(opts):
    src, dst = mailcmp.account(opts, "src"), mailcmp.account(opts, "dst")
    dst_names = dst.folders(True)
    subscribed = mailcmp.subscriptions(src, True)
    copied = nbytes = 0
    started = time.monotonic()
    for name, folder in sorted(src.folders(True).items()):
        if opts.folder and name not in opts.folder:
            continue
        target = dst_names[name].wire if name in dst_names else wire_name(dst, name)
        if name not in dst_names:
            dst.ok(dst.conn.create(mailcmp.quote(target)), "CREATE %s" % target)
        if name in subscribed:
            dst.conn.subscribe(mailcmp.quote(target))
        exists = int(src.ok(src.conn.select(mailcmp.quote(folder.wire), readonly=True),
                            "EXAMINE")[0] or 0)
        if exists == 0:
            continue
        for item in src.ok(src.conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE)"), "FETCH"):
            if not isinstance(item, bytes):
                continue
            uid = mailcmp.FETCH_META_RE["uid"].search(item)
            flags = mailcmp.FETCH_META_RE["flags"].search(item)
            date = mailcmp.FETCH_META_RE["date"].search(item)
            if not (uid and flags and date):
                continue
            data = src.ok(src.conn.uid("FETCH", uid.group(1).decode(), "(BODY.PEEK[])"), "FETCH")
            raw = next(x[1] for x in data if isinstance(x, tuple))
            keep = [f for f in flags.group(1).decode().split() if f.lower() != "\\recent"]
            dst.ok(dst.conn.append(mailcmp.quote(target), "(%s)" % " ".join(keep),
                                   '"%s"' % date.group(1).decode(), raw), "APPEND %s" % target)
            copied += 1
            nbytes += len(raw)
        src.conn.close()
    src.logout()
    dst.logout()
    print("imaptool: copied %d messages, %d bytes in %.1f s" % (copied, nbytes,
                                                               time.monotonic() - started))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("caps", "copy"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "caps":
            ap = argparse.ArgumentParser(prog="imaptool.py caps")
            ap.add_argument("--host", required=True)
            ap.add_argument("--port", type=int)
            ap.add_argument("--user", required=True)
            ap.add_argument("--passfile", required=True)
            ap.add_argument("--authuser")
            ap.add_argument("--starttls", action="store_true")
            ap.add_argument("--cafile")
            return cmd_caps(ap.parse_args(argv[1:]))
        return cmd_copy(mailcmp.parse_args(argv[1:]))
    except (mailcmp.Failure, OSError, imaplib.IMAP4.error) as e:
        print("imaptool: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
