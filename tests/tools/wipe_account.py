#!/usr/bin/env python3
"""wipe_account: empty ONE IMAP account (or a few named ones) for a test, and nothing else.

  wipe_account.py --host H --port P --passfile-dir DIR [--cafile CA] [--starttls] USER...

For each USER (the password is read from DIR/USER): every folder except INBOX is deleted
(deepest first), INBOX is emptied (STORE \\Deleted + EXPUNGE) and every subscription is
dropped. At least one user must be named: there is deliberately no "all accounts" mode, since
other tests use other accounts of the same lab at the same time.

Prints one line per account; exit status 0 when every account is empty afterwards, 1 otherwise,
2 on usage or connection errors.
"""

import argparse
import imaplib
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mailcmp  # noqa: E402


def wipe(acct):
    conn = acct.conn
    data = acct.ok(conn.lsub('""', '"*"'), "LSUB")
    for item in data:
        name = None
        if isinstance(item, tuple):
            name = item[1].decode("utf-8", "replace")
        elif item:
            m = mailcmp.LIST_RE.match(item)
            if m:
                name = mailcmp.unquote(m.group("name"))
        if name:
            conn.unsubscribe(mailcmp.quote(name))
    names = []
    for item in acct.ok(conn.list('""', '"*"'), "LIST"):
        if isinstance(item, tuple):
            names.append(item[1].decode("utf-8", "replace"))
        elif item:
            m = mailcmp.LIST_RE.match(item)
            if m:
                names.append(mailcmp.unquote(m.group("name")))
    for name in sorted((n for n in names if n.upper() != "INBOX"), key=len, reverse=True):
        acct.ok(conn.delete(mailcmp.quote(name)), "DELETE %s" % name)
    exists = int(acct.ok(conn.select("INBOX"), "SELECT INBOX")[0] or 0)
    if exists:
        acct.ok(conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        acct.ok(conn.expunge(), "EXPUNGE")
    conn.close()
    left = [n for n in acct.folders(True) if n != "INBOX"]
    count = int(acct.ok(conn.select("INBOX", readonly=True), "EXAMINE INBOX")[0] or 0)
    conn.close()
    return left, count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--passfile-dir", required=True, help="directory with one password file per user")
    ap.add_argument("--cafile")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("users", nargs="+", metavar="USER")
    opts = ap.parse_args(argv)
    rc = 0
    for user in opts.users:
        if not user or "/" in user or user.startswith("."):
            print("wipe_account: bad user name %r" % user, file=sys.stderr)
            return 2
        acct = None
        try:
            acct = mailcmp.Account("dst", opts.host, opts.port, user,
                                   os.path.join(opts.passfile_dir, user),
                                   "starttls" if opts.starttls else "ssl", None, opts.cafile, 60)
            left, count = wipe(acct)
        except (mailcmp.Failure, OSError, imaplib.IMAP4.error) as e:
            print("wipe_account: %s: %s" % (user, e), file=sys.stderr)
            return 2
        finally:
            if acct:
                acct.logout()
        if left or count:
            print("wipe_account: %s: NOT empty: %d folders left, %d messages in INBOX"
                  % (user, len(left), count))
            rc = 1
        else:
            print("wipe_account: %s: empty" % user)
    return rc


if __name__ == "__main__":
    sys.exit(main())
