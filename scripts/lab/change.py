#!/usr/bin/env python3
"""Change the lab's source accounts between two passes, as users would (stdlib only).

Run with the lab variables exported (". .lab/lab.env"):

  change.py append USER FOLDER N      APPEND N new messages to FOLDER ("/"-separated name)
  change.py flag USER FOLDER FLAG     set FLAG (e.g. \\Flagged) on the oldest message of FOLDER
                                      that does not have it yet

Each prints one line saying what it did. Used by scripts/demo.sh before its delta pass.
"""

import email.utils
import imaplib
import os
import ssl
import sys
import time


def login(user):
    ctx = ssl.create_default_context(cafile=os.environ["LAB_CA"])
    m = imaplib.IMAP4_SSL(os.environ.get("LAB_HOST", "localhost"), int(os.environ["LAB_SRC_IMAPS"]),
                          ssl_context=ctx)
    with open(os.path.join(os.environ["LAB_SECRETS"], "src", user), encoding="utf-8") as f:
        m.login(user, f.read().strip())
    return m


def mailbox(name):
    # The lab's source uses "/" as separator without prefix; mUTF-7 is not needed for the ASCII
    # names the demo uses.
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def append(user, folder, n):
    m = login(user)
    for i in range(n):
        now = time.time()
        msg = ("From: Delta Demo <delta@example.org>\r\n"
               "To: %s@example.org\r\n"
               "Subject: arrived after the pre-stage pass (%d of %d)\r\n"
               "Date: %s\r\n"
               "Message-ID: <delta-%s-%d-%d@example.org>\r\n"
               "\r\n"
               "New mail that only the delta pass can copy.\r\n"
               % (user, i + 1, n, email.utils.formatdate(now), user, int(now * 1000), i)).encode()
        typ, data = m.append(mailbox(folder), None, imaplib.Time2Internaldate(now), msg)
        if typ != "OK":
            sys.exit("change: APPEND to %s of %s refused: %r" % (folder, user, data))
    m.logout()
    print("  %s: %d new message%s in %s" % (user, n, "" if n == 1 else "s", folder))


def flag(user, folder, flagname):
    m = login(user)
    typ, _ = m.select(mailbox(folder))
    if typ != "OK":
        sys.exit("change: cannot select %s of %s" % (folder, user))
    typ, data = m.uid("SEARCH", None, "UN" + flagname.lstrip("\\").upper()
                      if flagname.lstrip("\\").lower() in ("flagged", "seen", "answered", "deleted",
                                                           "draft")
                      else "UNKEYWORD " + flagname)
    uids = data[0].split() if typ == "OK" and data and data[0] else []
    if not uids:
        sys.exit("change: every message of %s in %s has %s already" % (user, folder, flagname))
    typ, data = m.uid("STORE", uids[0], "+FLAGS.SILENT", "(%s)" % flagname)
    if typ != "OK":
        sys.exit("change: STORE refused: %r" % data)
    m.logout()
    print("  %s: %s set on message UID %s in %s" % (user, flagname, uids[0].decode(), folder))


def main(argv):
    if len(argv) != 5 or argv[1] not in ("append", "flag"):
        sys.exit(__doc__)
    if argv[1] == "append":
        append(argv[2], argv[3], int(argv[4]))
    else:
        flag(argv[2], argv[3], argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
