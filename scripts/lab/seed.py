#!/usr/bin/env python3
"""Fill the lab's source accounts with a deterministic, realistic corpus over IMAP.

Run through "scripts/lab.sh seed [--users N] [--messages M] [--big]", which exports the
lab variables (LAB_HOST, LAB_CA, LAB_SRC_IMAPS, LAB_LEGACY_IMAPS, LAB_SECRETS, LAB_DIR).

What it does, per account (src user01..N, legacy user01..N, src quotauser):
  1. empties the account: deletes every folder but INBOX, expunges INBOX, unsubscribes;
  2. creates the folder tree, subscribes most folders;
  3. APPENDs the corpus with flags and INTERNALDATE.
So seeding twice gives the same content (same bytes, flags, dates; new UIDs).

The corpus of userNN depends only on (--seed, user name, --messages, --big); legacy userNN
gets exactly the corpus of src userNN, with folder names mapped to its namespace
("Archive/2019" -> "INBOX.Archive.2019"). src quotauser gets ~5 MB, more than its 2 MB
quota on dst. A summary goes to $LAB_DIR/seed.json.

"seed.py --wipe SIDE [USER...]" only empties accounts (all accounts of SIDE by default).
"""

import argparse
import base64
import datetime
import email.utils
import imaplib
import json
import multiprocessing
import os
import quopri
import random
import re
import ssl
import sys
import time

from labutil import mutf7_encode, quote

CRLF = b"\r\n"

# (folder, share of the messages in %, subscribed). Names use "/" as separator.
FOLDERS = [
    ("INBOX", 34, True),
    ("Sent", 12, True),
    ("Drafts", 3, True),
    ("Trash", 5, True),
    ("Junk", 4, True),
    ("Archive", 6, True),
    ("Archive/2019", 6, False),
    ("Archive/2020", 6, True),
    ("Archive/Empty", 0, True),
    ("Projects", 2, True),
    ("Projects/Alpha", 3, True),
    ("Projects/Alpha/Reports", 5, True),
    ("Entwürfe", 3, True),
    ("Café Ω", 5, True),
    ("Old Mail", 6, False),
]

WORDS = (
    "the a of to and in is for on that with as this be by are from at or it an was we will "
    "report meeting budget project quarter review draft invoice schedule deadline customer "
    "server migration backup release update proposal contract team office travel agenda "
    "figures forecast summary attached please regards thanks question answer follow-up "
    "Bericht Sitzung Angebot Rechnung Termin Grüße Änderung Übersicht Straße für über "
    "café naïve résumé déjà señor año Ωmega Zürich København Łódź"
).split()
NAMES = [
    ("Alice Martin", "alice.martin@example.com"), ("Bob Schulz", "bob@example.net"),
    ("Jürgen Weiß", "juergen.weiss@example.de"), ("Chloé Dubois", "chloe@example.fr"),
    ("Dmitri Ivanov", "d.ivanov@example.org"), ("Eve Nakamura", "eve@example.jp"),
    ("IT Helpdesk", "helpdesk@example.org"), ("Newsletter", "news@lists.example.com"),
    ("Frank O'Neil", "frank.oneil@example.ie"), ("Grace Ho", "grace.ho@example.com.sg"),
]
ZONES = [0, 60, 120, -300, -480, 330, 540, -180, 600, 345]   # minutes east of UTC
DATE_LO = datetime.datetime(2012, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
DATE_HI = datetime.datetime(2026, 6, 30, tzinfo=datetime.timezone.utc).timestamp()
BIG_SIZE = 6 * 1024 * 1024
QUOTA_USER_BYTES = 5 * 1024 * 1024


# --- names ---------------------------------------------------------------------------

# Sides whose personal namespace is "INBOX." with "." as separator (the others: "" and "/").
INBOX_PREFIXED = ("legacy", "cyrus", "courier")
# Sides where folders get their SPECIAL-USE role at CREATE (RFC 6154 CREATE-SPECIAL-USE).
ROLES_AT_CREATE = {"cyrus": {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
                             "Junk": "\\Junk", "Archive": "\\Archive"}}
SIDES = ("src", "legacy", "cyrus", "courier")


def server_name(side, folder):
    """The wire name (mUTF-7, quoted) of a corpus folder on one side."""
    if side in INBOX_PREFIXED and folder != "INBOX":
        folder = "INBOX." + folder.replace("/", ".")
    return quote(mutf7_encode(folder))


# --- corpus --------------------------------------------------------------------------

def paragraph_pool():
    """A fixed pool of text paragraphs (CRLF, wrapped at 72) that bodies are cut from."""
    rng = random.Random("imapfleet-lab-text")
    pool = []
    for _ in range(400):
        words = [rng.choice(WORDS) for _ in range(rng.randint(30, 140))]
        words[0] = words[0].capitalize()
        lines, line = [], ""
        for w in words:
            if len(line) + len(w) + 1 > 72:
                lines.append(line)
                line = w
            else:
                line = (line + " " + w).strip()
        lines.append(line + ".")
        pool.append("\r\n".join(lines).encode("utf-8") + CRLF + CRLF)
    return pool


POOL = paragraph_pool()


def text_of_size(rng, size):
    parts, n = [], 0
    while n < size:
        p = rng.choice(POOL)
        parts.append(p)
        n += len(p)
    return b"".join(parts)


def encode_word(s):
    """RFC 2047 encoded-word for non-ASCII header text."""
    try:
        s.encode("ascii")
        return s
    except UnicodeEncodeError:
        return "=?UTF-8?B?" + base64.b64encode(s.encode("utf-8")).decode() + "?="


def address(pair):
    name, addr = pair
    if not name.isascii():
        name = encode_word(name)
    elif not name.replace(" ", "").isalnum():
        name = quote(name)
    return "%s <%s>" % (name, addr)


def pick_size(rng):
    r = rng.random()
    if r < 0.90:
        lo, hi = 2_000, 50_000
    elif r < 0.97:
        lo, hi = 50_000, 200_000
    else:
        lo, hi = 200_000, 1_000_000
    return int(lo * (hi / lo) ** rng.random())   # log-uniform


class Message:
    def __init__(self, folder, raw, flags, when):
        self.folder, self.raw, self.flags, self.when = folder, raw, flags, when


def build(rng, user, n, folder, size, *, msgid=True, shared_msgid=None, body8bit=False,
          long_header=False):
    """One RFC 5322 message of roughly `size` bytes."""
    ts = rng.uniform(DATE_LO, DATE_HI)
    tz = datetime.timezone(datetime.timedelta(minutes=rng.choice(ZONES)))
    when = datetime.datetime.fromtimestamp(ts, tz).replace(microsecond=0)
    sent = when - datetime.timedelta(seconds=rng.randint(1, 1800))
    me = ("User %s" % user, "%s@example.org" % user)
    other = rng.choice(NAMES)
    sender, rcpt = (me, other) if folder in ("Sent", "Drafts", "Entwürfe") else (other, me)
    subject = "%s %s %s #%d" % (rng.choice(["Re:", "Fwd:", "", "", "AW:"]),
                                rng.choice(WORDS).capitalize(), rng.choice(WORDS), n)
    if rng.random() < 0.15:
        subject += " – Grüße aus Köln"
    h = [
        "Return-Path: <%s>" % sender[1],
        "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n\tby mail.example.org"
        " with ESMTPS id %08X; %s" % (n % 7, n % 7, n % 250 + 1, rng.getrandbits(32),
                                      email.utils.format_datetime(when)),
        "From: %s" % address(sender),
        "To: %s" % address(rcpt),
    ]
    if rng.random() < 0.3:
        h.append("Cc: %s" % address(rng.choice(NAMES)))
    h.append("Subject: %s" % encode_word(subject.strip()))
    h.append("Date: %s" % email.utils.format_datetime(sent))
    if shared_msgid:
        h.append("Message-ID: %s" % shared_msgid)
    elif msgid:
        h.append("Message-ID: <%x.%d.%s@mail.example.org>" % (rng.getrandbits(48), n, user))
    if long_header:   # one logical header line of ~2 KB, folded
        refs = ["<ref%03d.%x@example.net>" % (i, rng.getrandbits(40)) for i in range(60)]
        h.append("References: " + "\r\n ".join(" ".join(refs[i:i + 3]) for i in range(0, 60, 3)))
    h.append("X-Mailer: imapfleet-lab seed")
    if body8bit:      # raw UTF-8 body, no MIME headers at all
        body = ("Grüße aus Köln, naïve café, Ωmega, Łódź, 東京.\r\n" * 40).encode()
        body += text_of_size(rng, max(0, size - len(body)))
        return Message(folder, "\r\n".join(h).encode("utf-8") + CRLF + CRLF + body, None, when)
    h.append("MIME-Version: 1.0")
    kind = rng.random()
    if size > 60_000 or kind < 0.25:
        # multipart/mixed: a short text and a base64 attachment filling the rest
        boundary = "=_lab_%x" % rng.getrandbits(64)
        text = text_of_size(rng, rng.randint(300, 3000))
        blob = rng.randbytes(max(100, (size - len(text)) * 3 // 4))
        b64 = base64.encodebytes(blob).replace(b"\n", CRLF)
        fname = rng.choice(["report.pdf", "scan 2019.pdf", "Übersicht.xlsx", "photo.jpg"])
        h.append('Content-Type: multipart/mixed; boundary="%s"' % boundary)
        body = b"".join([
            b"This is a multi-part message in MIME format.\r\n\r\n",
            b"--%s\r\n" % boundary.encode(),
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            text,
            b"--%s\r\n" % boundary.encode(),
            b'Content-Type: application/octet-stream; name="%s"\r\n' % encode_word(fname).encode(),
            b"Content-Transfer-Encoding: base64\r\n",
            b'Content-Disposition: attachment; filename="%s"\r\n\r\n' % encode_word(fname).encode(),
            b64,
            b"--%s--\r\n" % boundary.encode(),
        ])
    elif kind < 0.45:
        h.append("Content-Type: text/plain; charset=utf-8")
        h.append("Content-Transfer-Encoding: quoted-printable")
        body = quopri.encodestring(text_of_size(rng, size))
        body = body.replace(b"\r\n", b"\n").replace(b"\n", CRLF)
    else:
        h.append("Content-Type: text/plain; charset=utf-8")
        h.append("Content-Transfer-Encoding: 8bit")
        body = text_of_size(rng, size)
    return Message(folder, "\r\n".join(h).encode("utf-8") + CRLF + CRLF + body, None, when)


def flags_for(rng, folder):
    f = []
    if folder in ("Sent", "Archive", "Archive/2019", "Archive/2020", "Old Mail") \
            or rng.random() < 0.6:
        f.append("\\Seen")
    if folder in ("Drafts", "Entwürfe"):
        f = ["\\Draft"] + (["\\Seen"] if rng.random() < 0.5 else [])
    if rng.random() < 0.12:
        f.append("\\Answered")
    if rng.random() < 0.08:
        f.append("\\Flagged")
    if rng.random() < 0.06:
        f.append("$Forwarded")
    if rng.random() < 0.06:
        f.append("$Label1")
    if folder.startswith("Projects") and rng.random() < 0.5:
        f.append("Project-X")
    return f


def corpus(seed, user, messages, big):
    """The deterministic list of Messages for one account."""
    rng = random.Random("%s/%s/%d/%d" % (seed, user, messages, big))
    weighted = [(name, share) for name, share, _ in FOLDERS if share]
    total = sum(share for _, share in weighted)
    out = []
    for name, share in weighted:
        for _ in range(max(1, round(messages * share / total))):
            out.append(build(rng, user, len(out), name, pick_size(rng),
                             msgid=rng.random() >= 0.10))
    # The special cases, all in INBOX unless said otherwise.
    twin = build(rng, user, len(out), "INBOX", 4000)
    twin.flags = ["\\Seen"]
    out += [twin, Message("INBOX", twin.raw, ["\\Seen"], twin.when)]     # byte-identical pair
    shared = "<shared.%s@mail.example.org>" % user                       # one Message-ID, two mails
    out += [build(rng, user, len(out), "INBOX", 3000, shared_msgid=shared),
            build(rng, user, len(out) + 1, "INBOX", 5000, shared_msgid=shared)]
    out.append(build(rng, user, len(out), "INBOX", 6000, body8bit=True))  # 8-bit, no MIME
    out.append(build(rng, user, len(out), "INBOX", 3000, long_header=True))
    gone = build(rng, user, len(out), "INBOX", 2500)                      # \Deleted, not expunged
    gone.flags = ["\\Seen", "\\Deleted"]
    out.append(gone)
    if big:
        out.append(build(rng, user, len(out), "Archive", BIG_SIZE))
    for m in out:
        if m.flags is None:
            m.flags = flags_for(rng, m.folder)
    return out


def quota_corpus(seed, user):
    """~5 MB in INBOX, Sent and Archive: more than quotauser may store on dst."""
    rng = random.Random("%s/%s/quota" % (seed, user))
    out, n = [], 0
    while n < QUOTA_USER_BYTES:
        m = build(rng, user, len(out), rng.choice(["INBOX", "INBOX", "Sent", "Archive"]),
                  rng.randint(60_000, 160_000))
        m.flags = flags_for(rng, m.folder)
        out.append(m)
        n += len(m.raw)
    return out


# --- IMAP ----------------------------------------------------------------------------

def connect(side, user):
    env = os.environ
    ctx = ssl.create_default_context(cafile=env["LAB_CA"])
    conn = imaplib.IMAP4_SSL(env.get("LAB_HOST", "localhost"),
                             int(env["LAB_%s_IMAPS" % side.upper()]), ssl_context=ctx)
    with open(os.path.join(env["LAB_SECRETS"], side, user)) as f:
        conn.login(user, f.read().strip())
    return conn


def ok(res, what):
    typ, data = res
    if typ != "OK":
        raise RuntimeError("%s: %s %s" % (what, typ, data))
    return data


LIST_RE = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')


def list_names(conn, cmd="LIST"):
    names = []
    for item in ok(getattr(conn, cmd.lower())('""', '"*"'), cmd):
        if item is None:
            continue
        if isinstance(item, tuple):        # name sent as a literal
            names.append((item[0], item[1].decode()))
            continue
        m = LIST_RE.match(item)
        if m:
            name = m.group("name").decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            names.append((m.group("attrs"), name))
    return names


def wipe(conn):
    """Delete every folder but INBOX (deepest first), expunge INBOX, drop subscriptions."""
    for _, name in list_names(conn, "LSUB"):
        conn.unsubscribe(quote(name))
    # \Noselect parents (Courier) go away with their last child.
    names = [name for attrs, name in list_names(conn)
             if name.upper() != "INBOX" and b"\\Noselect" not in attrs]
    for name in sorted(names, key=len, reverse=True):
        if conn.delete(quote(name))[0] != "OK":
            # Courier refuses to delete its Trash folder: empty it instead.
            ok(conn.select(quote(name)), "SELECT %s (DELETE refused)" % name)
            typ, data = conn.search(None, "ALL")
            if data and data[0]:
                ok(conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
                ok(conn.expunge(), "EXPUNGE")
            conn.close()
    ok(conn.select("INBOX"), "SELECT INBOX")
    typ, data = conn.search(None, "ALL")
    if data and data[0]:
        ok(conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        ok(conn.expunge(), "EXPUNGE")
    conn.close()


def fill(conn, side, messages):
    kept = {n for _, n in list_names(conn)}      # what wipe could not delete (Courier's Trash)
    for name, _, subscribed in FOLDERS:
        role = ROLES_AT_CREATE.get(side, {}).get(name)
        if server_name(side, name).strip('"') in kept and name != "INBOX":
            pass
        elif role:
            ok(conn._simple_command("CREATE", server_name(side, name), "(USE (%s))" % role),
               "CREATE %s" % name)
        elif name != "INBOX":
            ok(conn.create(server_name(side, name)), "CREATE %s" % name)
        if subscribed:
            ok(conn.subscribe(server_name(side, name)), "SUBSCRIBE %s" % name)
    for m in messages:
        date = imaplib.Time2Internaldate(m.when)
        ok(conn.append(server_name(side, m.folder), "(%s)" % " ".join(m.flags), date, m.raw),
           "APPEND to %s" % m.folder)


def seed_account(job):
    """Worker: seed one user on its sides. Returns (user, sides, messages, bytes, folders)."""
    user, sides, seed, messages, big = job
    msgs = quota_corpus(seed, user) if user == "quotauser" else corpus(seed, user, messages, big)
    for side in sides:
        conn = connect(side, user)
        try:
            wipe(conn)
            fill(conn, side, msgs)
        finally:
            conn.logout()
    per_folder = {}
    for m in msgs:
        per_folder[m.folder] = per_folder.get(m.folder, 0) + 1
    return user, sides, len(msgs), sum(len(m.raw) for m in msgs), per_folder


def wipe_account(job):
    side, user = job
    conn = connect(side, user)
    try:
        wipe(conn)
    finally:
        conn.logout()
    return user


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=int(os.environ.get("LAB_USERS", 12)))
    ap.add_argument("--messages", type=int, default=60, help="messages per account (default 60)")
    ap.add_argument("--big", action="store_true", help="a ~6 MB message in every account, "
                    "not only in user01")
    ap.add_argument("--seed", default="imapfleet", help="corpus seed (default imapfleet)")
    ap.add_argument("--jobs", type=int, default=4, help="accounts seeded in parallel")
    ap.add_argument("--sides", default="src,legacy",
                    help="servers to fill: src, legacy, cyrus, courier (default src,legacy)")
    ap.add_argument("--wipe", metavar="SIDE", choices=["src", "dst"] + list(SIDES[1:]),
                    help="only empty the accounts of SIDE")
    ap.add_argument("accounts", nargs="*", help="the accounts to seed or wipe (default: "
                    "user01..N and quotauser; with --wipe all)")
    args = ap.parse_args()
    started = time.monotonic()

    if args.wipe:
        secrets = os.path.join(os.environ["LAB_SECRETS"], args.wipe)
        users = args.accounts or sorted(u for u in os.listdir(secrets) if u != "admin")
        with multiprocessing.Pool(args.jobs) as pool:
            done = pool.map(wipe_account, [(args.wipe, u) for u in users])
        print("seed: emptied %d accounts on %s in %.1f s" % (len(done), args.wipe,
                                                              time.monotonic() - started))
        return 0

    sides = tuple(s for s in SIDES if s in args.sides.split(","))
    unknown = set(args.sides.split(",")) - set(SIDES)
    if not sides or unknown:
        ap.error("--sides: name one or more of %s" % ", ".join(SIDES))
    if args.accounts:
        jobs = [(u, sides, args.seed, args.messages, args.big or u == "user01")
                for u in args.accounts if u != "quotauser"]
        if "quotauser" in args.accounts:
            jobs.insert(0, ("quotauser", sides, args.seed, 0, False))
    else:
        jobs = [("user%02d" % i, sides, args.seed, args.messages,
                 args.big or i == 1) for i in range(1, args.users + 1)]
        if "src" in sides:
            jobs.insert(0, ("quotauser", ("src",), args.seed, 0, False))   # a large job first
    summary, n_msgs, n_bytes, n_accounts = {}, 0, 0, 0
    with multiprocessing.Pool(args.jobs) as pool:
        for user, sides, count, size, per_folder in pool.imap_unordered(seed_account, jobs):
            for side in sides:
                summary["%s/%s" % (side, user)] = {"messages": count, "bytes": size,
                                                   "folders": per_folder}
                n_accounts += 1
                n_msgs += count
                n_bytes += size
    out = os.path.join(os.environ.get("LAB_DIR", "."), "seed.json")
    if args.accounts and os.path.exists(out):     # a partial seed keeps the others' summary
        with open(out) as f:
            summary = dict(json.load(f).get("accounts", {}), **summary)
    summary = dict(sorted(summary.items()))
    with open(out, "w") as f:
        json.dump({"seed": args.seed, "messages_per_account": args.messages,
                   "accounts": summary}, f, indent=1, ensure_ascii=False)
    secs = time.monotonic() - started
    print("seed: %d accounts, %d messages, %.1f MB in %.1f s (%.1f MB/s); summary in %s" % (
        n_accounts, n_msgs, n_bytes / 1e6, secs, n_bytes / 1e6 / secs, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
