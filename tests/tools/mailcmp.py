#!/usr/bin/env python3
"""mailcmp: check that a destination IMAP account holds exactly the mail of a source account.

Both accounts are read over TLS (implicit or STARTTLS, certificates verified). Every
selectable folder is listed on both sides and names are compared after translating the
personal-namespace prefix and hierarchy separator ("INBOX.Archive.2019" with "." equals
"Archive/2019" with "/"; INBOX is INBOX everywhere; modified UTF-7 is decoded).

Within each folder, messages are compared as multisets keyed by the SHA-256 of their full
RFC822 bytes (every body is fetched, nothing is trusted to counts or headers). For each
matched message the FLAGS (\\Recent ignored) and the INTERNALDATE (as an instant, since
servers may report another time zone) are compared too.

Where a destination server rewrites what it stores, the expectation can be the source's bytes
rewritten the same way: --eol-as-stored (Courier: line ends), --dst-munge8bit (Cyrus: 8-bit
header bytes as 'X'); the destination's bytes are never rewritten by the latter.

The accounts are equal when no message is missing, none is extra or duplicated, flags and
dates agree, every source folder exists on the destination, and the destination has no
extra non-empty folder (unless --allow-extra-folders).

Exit status: 0 equal, 1 different, 2 could not compare (connection, login, usage).

Example:
  mailcmp.py --src-host localhost --src-port 993 --src-user u1 --src-passfile pw1 \\
             --dst-host localhost --dst-port 994 --dst-user u1 --dst-passfile pw2 \\
             --cafile ca.pem
"""

import argparse
import base64
import collections
import datetime
import email.header
import hashlib
import imaplib
import json
import re
import signal
import ssl
import sys

BODY_BATCH_BYTES = 16 * 1024 * 1024   # at most this much message data per FETCH
BODY_BATCH_COUNT = 500
MONTHS = {m: i + 1 for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
SYSTEM_FLAGS = {f.lower(): f for f in
                ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")}
SPECIAL_USE = {"\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged"}


class Failure(Exception):
    """A problem that stops the comparison (exit status 2)."""


# --- names ---------------------------------------------------------------------------

def mutf7_decode(name):
    """Modified UTF-7 (RFC 3501 5.1.3) to str; returns the name unchanged if malformed."""
    out, i = [], 0
    try:
        while i < len(name):
            if name[i] != "&":
                out.append(name[i])
                i += 1
                continue
            end = name.index("-", i)
            if end == i + 1:
                out.append("&")
            else:
                b64 = name[i + 1:end].replace(",", "/")
                out.append(base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be"))
            i = end + 1
    except (ValueError, UnicodeDecodeError):
        return name
    return "".join(out)


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Folder:
    def __init__(self, wire, canonical, attrs):
        self.wire = wire              # the name as the server sends it (mUTF-7)
        self.canonical = canonical    # prefix-less, "/"-separated, decoded
        self.attrs = attrs            # lower-case LIST attributes
        self.role = next((a for a in attrs if a in SPECIAL_USE), None)


# --- one IMAP account ----------------------------------------------------------------

LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<sep>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$', re.S)
FETCH_META_RE = {
    "uid": re.compile(rb"\bUID (\d+)"),
    "flags": re.compile(rb"\bFLAGS \(([^)]*)\)"),
    "date": re.compile(rb'\bINTERNALDATE "([^"]+)"'),
    "size": re.compile(rb"\bRFC822\.SIZE (\d+)"),
}


def unquote(raw):
    raw = raw.decode("utf-8", "replace")
    if raw.startswith('"') and raw.endswith('"'):
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def parse_internaldate(text):
    """'17-Jul-1996 02:44:25 -0700' -> seconds since the epoch."""
    m = re.match(r"\s*(\d+)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$", text)
    if not m:
        raise Failure("bad INTERNALDATE %r" % text)
    d, mon, y, hh, mm, ss, sign, zh, zm = m.groups()
    offset = datetime.timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == "+" else -1)
    when = datetime.datetime(int(y), MONTHS[mon.capitalize()], int(d), int(hh), int(mm), int(ss),
                             tzinfo=datetime.timezone(offset))
    return int(when.timestamp())


def subject_of(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    m = re.search(rb"^Subject:(.*(?:\r?\n[ \t].*)*)", head, re.M | re.I)
    if not m:
        return ""
    text = re.sub(rb"\r?\n[ \t]", b" ", m.group(1)).strip().decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:  # noqa: BLE001 - a broken encoded-word is shown as is
        return text


def munge8bit(raw):
    """The bytes Cyrus IMAP (default munge8bit: yes) stores for an appended message, as measured
    on Cyrus 3.6 with raw APPENDs: in the header block (up to and including the first empty
    line, CRLF CRLF) every byte 0x80-0xFF replaced by one 'X', field names and folded lines
    included; everything else byte for byte (a bare CR stays, no final CRLF is added; Cyrus
    refuses a message with a bare LF)."""
    end = raw.find(b"\r\n\r\n")
    end = len(raw) if end < 0 else end + 4
    return re.sub(rb"[\x80-\xff]", b"X", raw[:end]) + raw[end:]


class Message:
    __slots__ = ("uid", "flags", "date", "size", "sha", "subject", "labels")

    def __init__(self, uid, flags, date, size):
        self.uid, self.flags, self.date, self.size = uid, flags, date, size
        self.sha = self.subject = None
        self.labels = []


class Account:
    def __init__(self, label, host, port, user, passfile, mode, authuser, cafile, timeout):
        self.label = label
        self.desc = "%s@%s:%s" % (user, host, port)
        ctx = ssl.create_default_context(cafile=cafile)
        try:
            if mode == "ssl":
                self.conn = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=timeout)
            else:
                self.conn = imaplib.IMAP4(host, port, timeout=timeout)
                if mode == "starttls":
                    self.conn.starttls(ssl_context=ctx)
            with open(passfile, encoding="utf-8") as f:
                password = f.read().rstrip("\r\n")
            if authuser:
                blob = ("%s\0%s\0%s" % (user, authuser, password)).encode()
                self.conn.authenticate("PLAIN", lambda _: blob)
            else:
                self.conn.login(user, password)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as e:
            raise Failure("%s %s: %s" % (label, self.desc, e)) from None
        self.prefix, self.sep = self.personal_namespace()
        self.want_labels = False
        self.munge8bit = False        # hash what Cyrus would store of this account's messages

    def ok(self, res, what):
        typ, data = res
        if typ != "OK":
            raise Failure("%s: %s failed: %s" % (self.label, what, data))
        return data

    def personal_namespace(self):
        """(prefix, separator) of the first personal namespace, or ("", LIST's separator)."""
        if "NAMESPACE" in self.conn.capabilities or self.has_cap("NAMESPACE"):
            data = self.ok(self.conn.namespace(), "NAMESPACE")[0]
            m = re.match(rb'\(\("((?:[^"\\]|\\.)*)" (?:"((?:[^"\\]|\\.)*)"|NIL)', data or b"")
            if m:
                return unquote(b'"' + m.group(1) + b'"'), unquote(b'"' + (m.group(2) or b"") + b'"')
        data = self.ok(self.conn.list('""', '""'), "LIST")[0]
        m = LIST_RE.match(data or b"")
        return "", unquote(m.group("sep")) if m and m.group("sep") != b"NIL" else ""

    def has_cap(self, cap):
        data = self.ok(self.conn.capability(), "CAPABILITY")[0]
        return cap.encode() in data.upper().split()

    def canonical(self, wire, map_sep):
        if wire.upper() == "INBOX":
            return "INBOX"
        name = wire
        if map_sep:
            if self.prefix and name.upper().startswith(self.prefix.upper()):
                name = name[len(self.prefix):]
            if self.sep and self.sep != "/":
                name = "/".join(name.split(self.sep))
        return mutf7_decode(name)

    def folders(self, map_sep):
        """Selectable folders of the personal namespace, by canonical name."""
        out = {}
        data = self.ok(self.conn.list('""', '"*"'), "LIST")
        items = iter(data)
        for item in items:
            if item is None:
                continue
            if isinstance(item, tuple):            # name sent as a literal
                head, wire = item[0], item[1].decode("utf-8", "replace")
                m = LIST_RE.match(head.rsplit(b" {", 1)[0] + b" x")
            else:
                m = LIST_RE.match(item)
                wire = unquote(m.group("name")) if m else None
            if not m:
                continue
            attrs = [a.lower() for a in m.group("attrs").decode().split()]
            if "\\noselect" in attrs or "\\nonexistent" in attrs:
                continue
            if (self.prefix and wire.upper() != "INBOX"
                    and not wire.upper().startswith(self.prefix.upper())):
                continue                           # another namespace (shared, other users)
            folder = Folder(wire, self.canonical(wire, map_sep), attrs)
            out[folder.canonical] = folder
        return out

    def messages(self, folder, normalize_eol):
        """All messages of a folder, with SHA-256 of their bytes."""
        if getattr(folder, "msgs", None) is not None:
            return folder.msgs                     # a Gmail label's messages, read from All Mail
        data = self.ok(self.conn.select(quote(folder.wire), readonly=True),
                       "EXAMINE %s" % folder.wire)
        if int(data[0] or 0) == 0:
            return []
        msgs = {}
        items = "(UID FLAGS INTERNALDATE RFC822.SIZE X-GM-LABELS)" if self.want_labels else \
            "(UID FLAGS INTERNALDATE RFC822.SIZE)"
        for item in self.ok(self.conn.uid("FETCH", "1:*", items), "UID FETCH"):
            if not isinstance(item, bytes):
                continue
            found = {k: r.search(item) for k, r in FETCH_META_RE.items()}
            if not all(found.values()):
                continue                           # an unsolicited FLAGS update
            uid = int(found["uid"].group(1))
            msgs[uid] = Message(uid, found["flags"].group(1).decode().split(),
                                parse_internaldate(found["date"].group(1).decode()),
                                int(found["size"].group(1)))
            if self.want_labels:
                m = re.search(rb"X-GM-LABELS \(([^)]*)\)", item)
                msgs[uid].labels = [mutf7_decode(unquote(x)) for x in
                                    re.findall(rb'"(?:[^"\\]|\\.)*"|[^ ]+', m.group(1))] if m else []
        for batch in batches(sorted(msgs.values(), key=lambda m: m.uid)):
            uidset = ",".join(str(m.uid) for m in batch)
            data = self.ok(self.conn.uid("FETCH", uidset, "(UID BODY.PEEK[])"), "UID FETCH BODY")
            for i, item in enumerate(data):
                if not isinstance(item, tuple):
                    continue
                head = item[0] + (data[i + 1] if i + 1 < len(data) and
                                  isinstance(data[i + 1], bytes) else b"")
                m = FETCH_META_RE["uid"].search(head)
                if not m or int(m.group(1)) not in msgs:
                    continue
                raw = item[1]
                if self.munge8bit:
                    raw = munge8bit(raw)
                if normalize_eol == "stored":
                    # as Courier stores a message (raw APPENDs to Courier IMAP 5.0): every line
                    # end (CRLF, LF) CRLF, a bare CR dropped, a final CRLF added when there is none
                    raw = re.sub(rb"\r?\n", b"\r\n", re.sub(rb"\r(?!\n)", b"", raw))
                    if not raw.endswith(b"\r\n"):
                        raw += b"\r\n"
                elif normalize_eol:
                    raw = re.sub(rb"\r?\n", b"\r\n", raw)
                msg = msgs[int(m.group(1))]
                msg.sha = hashlib.sha256(raw).hexdigest()
                msg.subject = subject_of(raw)
        lost = [m.uid for m in msgs.values() if m.sha is None]
        if lost:
            raise Failure("%s: no body for UIDs %s in %s" % (self.label, lost[:10], folder.wire))
        self.conn.close()
        return list(msgs.values())

    def logout(self):
        try:
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def batches(msgs):
    batch, size = [], 0
    for m in msgs:
        if batch and (size + m.size > BODY_BATCH_BYTES or len(batch) >= BODY_BATCH_COUNT):
            yield batch
            batch, size = [], 0
        batch.append(m)
        size += m.size
    if batch:
        yield batch


# --- comparison ----------------------------------------------------------------------

class FolderResult:
    def __init__(self, name, src, dst):
        self.name = name
        self.src_name = src.wire if src else None
        self.dst_name = dst.wire if dst else None
        self.src_count = self.dst_count = 0
        self.missing, self.extra, self.flags, self.dates = [], [], [], []
        self.problem = None           # "missing folder", "extra folder"

    def ok(self):
        return not (self.missing or self.extra or self.flags or self.dates or self.problem)

    def to_json(self):
        return {k: getattr(self, k) for k in ("name", "src_name", "dst_name", "src_count",
                                              "dst_count", "problem", "missing", "extra",
                                              "flags", "dates")}


def flag_set(flags, ignored):
    """Flags as a comparable set: system flags case-insensitive, keywords as they are."""
    return {SYSTEM_FLAGS.get(f.lower(), f) for f in flags if f.lower() not in ignored}


def show_flags(flags):
    return "(" + " ".join(sorted(flags)) + ")"


def show_date(ts):
    when = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return when.strftime("%d-%b-%Y %H:%M:%S +0000")


def compare_folder(res, src_msgs, dst_msgs, opts):
    res.src_count, res.dst_count = len(src_msgs), len(dst_msgs)
    by_sha = collections.defaultdict(lambda: ([], []))
    for m in src_msgs:
        by_sha[m.sha][0].append(m)
    for m in dst_msgs:
        by_sha[m.sha][1].append(m)
    for sha, (s, d) in by_sha.items():
        key = lambda m: (sorted(flag_set(m.flags, opts.ignored)), m.date, m.uid)  # noqa: E731
        s.sort(key=key)
        d.sort(key=key)
        for a, b in zip(s, d):
            fa, fb = flag_set(a.flags, opts.ignored), flag_set(b.flags, opts.ignored)
            if not opts.no_flags and fa != fb:
                res.flags.append({"src_uid": a.uid, "dst_uid": b.uid, "subject": a.subject,
                                  "src_flags": sorted(fa), "dst_flags": sorted(fb)})
            if not opts.no_dates and a.date != b.date:
                res.dates.append({"src_uid": a.uid, "dst_uid": b.uid, "subject": a.subject,
                                  "src_date": show_date(a.date), "dst_date": show_date(b.date)})
        for a in s[len(d):]:
            res.missing.append({"src_uid": a.uid, "subject": a.subject, "size": a.size,
                                "sha256": sha})
        for b in d[len(s):]:
            res.extra.append({"dst_uid": b.uid, "subject": b.subject, "size": b.size,
                              "sha256": sha, "duplicate": bool(s)})
    for lst, k in ((res.missing, "src_uid"), (res.extra, "dst_uid"), (res.flags, "src_uid"),
                   (res.dates, "src_uid")):
        lst.sort(key=lambda x: x[k])


def expected_dst_name(name, opts):
    """Where a source folder (canonical name) is expected on the destination: --map first,
    then --dst-subfolder (INBOX becomes the subfolder itself), else the same name."""
    for m in opts.map or []:
        src, dst = m.split("=", 1)
        if src == name:
            return dst
    if opts.dst_subfolder:
        return opts.dst_subfolder if name == "INBOX" else opts.dst_subfolder + "/" + name
    return name


def pair_folders(src_folders, dst_folders, opts=None):
    """[(canonical name, src Folder or None, dst Folder or None)]: by name, then by role."""
    pairs, unmatched_dst = [], dict(dst_folders)
    renamed = bool(opts and (opts.map or opts.dst_subfolder))
    for name, sf in src_folders.items():
        if renamed:
            want = expected_dst_name(name, opts)
            pairs.append([name if want == name else "%s -> %s" % (name, want), sf,
                          unmatched_dst.pop(want, None)])
            continue
        pairs.append([name, sf, unmatched_dst.pop(name, None)])
    for p in pairs:   # "Sent" on one side may be "Sent Items" on the other: same role
        if p[2] is None and p[1].role and not renamed:
            same = [n for n, f in unmatched_dst.items() if f.role == p[1].role]
            if len(same) == 1:
                p[2] = unmatched_dst.pop(same[0])
    pairs += [[name, None, df] for name, df in unmatched_dst.items()]
    order = lambda p: (p[0] != "INBOX", p[0])  # noqa: E731
    return sorted(pairs, key=order)


GMAIL_NOT_FOLDERS = {"\\starred", "\\important", "\\all", "\\muted", "\\chats"}


def gmail_folders(src, opts):
    """What a Gmail source should look like elsewhere (--src-gmail-labels POLICY): All Mail read
    once, each message put where the policy says (folders: every label's folder; primary and
    keywords: one folder, \\Inbox, \\Sent, \\Draft, then user labels in byte order; no label at
    all: the archive folder), \\Starred as \\Flagged, \\Important as $Important, and with
    keywords every user label as a keyword. Trash and Spam are compared as folders."""
    real = src.folders(opts.map_sep)
    allmail = next((f for f in real.values() if f.role == "\\all"), None)
    if allmail is None:
        raise Failure("src: --src-gmail-labels, but no \\All folder")
    src.want_labels = True
    msgs = src.messages(allmail, opts.normalize_eol)
    src.want_labels = False
    by_label = {"\\inbox": "INBOX"}
    for f in real.values():
        if f.role == "\\sent":
            by_label["\\sent"] = f.canonical
        elif f.role == "\\drafts":
            by_label["\\draft"] = f.canonical
    out = {}

    def target(name, role=None):
        if name not in out:
            folder = Folder(name, name, [role] if role else [])
            folder.msgs = []
            out[name] = folder
        return out[name]

    for f in real.values():
        if f.role in ("\\trash", "\\junk"):
            out[f.canonical] = f
    for m in msgs:
        labels = [l for l in m.labels if l.lower() not in GMAIL_NOT_FOLDERS]
        names = [by_label.get(l.lower(), l) if l.startswith("\\") else l for l in labels]
        if not names:
            places = [opts.archive_folder]
        elif opts.src_gmail_labels == "folders":
            places = names
        else:
            system = [by_label[l] for l in ("\\inbox", "\\sent", "\\draft")
                      if l in by_label and l in [x.lower() for x in labels]]
            places = system[:1] or [min(l for l in labels if not l.startswith("\\"))]
        flags = list(m.flags)
        lower = [l.lower() for l in m.labels]
        if "\\starred" in lower and "\\flagged" not in [f.lower() for f in flags]:
            flags.append("\\Flagged")
        if "\\important" in lower and "$Important" not in flags:
            flags.append("$Important")
        if opts.src_gmail_labels == "keywords":
            for l in m.labels:
                if not l.startswith("\\"):
                    kw = "".join("_" if (ord(c) <= 0x20 or ord(c) >= 0x7f or c in '(){%*"\\]') else c
                                 for c in l.encode().decode("latin-1"))
                    if kw not in flags:
                        flags.append(kw)
        for place in places:
            role = next((r for r, n in (("\\sent", by_label.get("\\sent")),
                                        ("\\drafts", by_label.get("\\draft"))) if n == place), None)
            copy = Message(m.uid, flags, m.date, m.size)
            copy.sha, copy.subject = m.sha, m.subject
            target(place, role).msgs.append(copy)
    return out


def compare(src, dst, opts):
    results = []
    if opts.src_gmail_labels:
        src_folders, dst_folders = gmail_folders(src, opts), dst.folders(opts.map_sep)
    else:
        src_folders, dst_folders = src.folders(opts.map_sep), dst.folders(opts.map_sep)
    for name, sf, df in pair_folders(src_folders, dst_folders, opts):
        if opts.folder and name.split(" -> ")[0] not in opts.folder:
            continue
        res = FolderResult(name, sf, df)
        if sf and df:
            compare_folder(res, src.messages(sf, opts.normalize_eol),
                           dst.messages(df, opts.normalize_eol), opts)
        elif sf:
            res.problem = "missing folder"
            msgs = src.messages(sf, opts.normalize_eol)
            res.src_count = len(msgs)
            res.missing = [{"src_uid": m.uid, "subject": m.subject, "size": m.size,
                            "sha256": m.sha} for m in msgs]
        else:
            msgs = dst.messages(df, opts.normalize_eol)
            res.dst_count = len(msgs)
            if msgs and not opts.allow_extra_folders:
                res.problem = "extra folder"
                res.extra = [{"dst_uid": m.uid, "subject": m.subject, "size": m.size,
                              "sha256": m.sha, "duplicate": False} for m in msgs]
            else:
                res.problem = None
        results.append(res)
    return results


def subscriptions(acct, map_sep):
    """The subscribed folders. With LIST-EXTENDED, LIST (SUBSCRIBED) entries marked
    \\Subscribed; else LSUB without its \\Noselect entries, which a server lists only because
    a child is subscribed (RFC 3501 6.3.9: Courier does)."""
    if "LIST-EXTENDED" in acct.conn.capabilities:
        typ, data = acct.conn._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')
        data = acct.ok((typ, acct.conn._untagged_response(typ, data, "LIST")[1]),
                       "LIST (SUBSCRIBED)")
        need = "\\subscribed"
    else:
        data = acct.ok(acct.conn.lsub('""', '"*"'), "LSUB")
        need = None
    names = set()
    for item in data:
        if isinstance(item, tuple):
            head, name = item[0], item[1].decode("utf-8", "replace")
        elif item:
            m = LIST_RE.match(item)
            if not m:
                continue
            head, name = item, unquote(m.group("name"))
        else:
            continue
        attrs = head.decode("utf-8", "replace").split(")")[0].lower()
        if need and need not in attrs:
            continue
        if not need and "\\noselect" in attrs:
            continue
        names.add(acct.canonical(name, map_sep))
    return names


# --- output --------------------------------------------------------------------------

def report_text(src, dst, results, subs_diff, max_details):
    out = sys.stdout
    print("mailcmp: src %s (prefix %r, separator %r) vs dst %s (prefix %r, separator %r)" % (
        src.desc, src.prefix, src.sep, dst.desc, dst.prefix, dst.sep), file=out)
    width = max([len(r.name) for r in results] + [10])
    for r in results:
        tags = []
        if r.problem:
            tags.append(r.problem.upper())
        for what, lst in (("missing", r.missing), ("extra", r.extra),
                          ("flag mismatches", r.flags), ("date mismatches", r.dates)):
            if lst and not (what == "missing" and r.problem == "missing folder") and \
                    not (what == "extra" and r.problem == "extra folder"):
                tags.append("%d %s" % (len(lst), what))
        print("  %-*s  src %5s  dst %5s  %s" % (
            width, r.name, r.src_count if r.src_name else "-",
            r.dst_count if r.dst_name else "-", ", ".join(tags) or "ok"), file=out)
        lines = []
        for m in r.missing:
            lines.append("missing    src UID %d, %d bytes: %s" % (
                m["src_uid"], m["size"], m["subject"]))
        for m in r.extra:
            kind = "duplicate " if m["duplicate"] else "extra     "
            lines.append("%s dst UID %d, %d bytes: %s" % (
                kind, m["dst_uid"], m["size"], m["subject"]))
        for m in r.flags:
            lines.append("flags      src UID %d %s != dst UID %d %s" % (
                m["src_uid"], show_flags(m["src_flags"]), m["dst_uid"], show_flags(m["dst_flags"])))
        for m in r.dates:
            lines.append("date       src UID %d %s != dst UID %d %s" % (
                m["src_uid"], m["src_date"], m["dst_uid"], m["dst_date"]))
        for line in lines[:max_details]:
            print("      " + line, file=out)
        if len(lines) > max_details:
            print("      ... and %d more" % (len(lines) - max_details), file=out)
    for side, names in subs_diff:
        print("  subscriptions only on %s: %s" % (side, ", ".join(sorted(names))), file=out)


def summary(results, subs_diff):
    total = sum(r.src_count for r in results if r.src_name)
    folders = sum(1 for r in results if r.src_name)
    bad = [r for r in results if not r.ok()]
    if not bad and not subs_diff:
        return True, "mailcmp: OK %d messages in %d folders" % (total, folders)
    count = lambda attr: sum(len(getattr(r, attr)) for r in results)  # noqa: E731
    parts = ["%d missing" % count("missing"), "%d extra" % count("extra"),
             "%d flag mismatches" % count("flags"), "%d date mismatches" % count("dates")]
    for problem in ("missing folder", "extra folder"):
        n = sum(1 for r in results if r.problem == problem)
        if n:
            parts.append("%d %ss" % (n, problem))
    if subs_diff:
        parts.append("subscriptions differ")
    return False, "mailcmp: FAIL %s (%d source messages in %d folders)" % (
        ", ".join(parts), total, folders)


# --- command line --------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 equal, 1 different, 2 could not compare.")
    for side in ("src", "dst"):
        g = ap.add_argument_group("%s account" % side)
        g.add_argument("--%s-host" % side, required=True)
        g.add_argument("--%s-port" % side, type=int)
        g.add_argument("--%s-user" % side, required=True)
        g.add_argument("--%s-passfile" % side, required=True, help="file holding the password")
        g.add_argument("--%s-authuser" % side,
                       help="log in as this admin/master user (AUTHENTICATE PLAIN with authzid)")
        mode = g.add_mutually_exclusive_group()
        mode.add_argument("--%s-ssl" % side, dest="%s_mode" % side, action="store_const",
                          const="ssl", help="implicit TLS (the default, port 993)")
        mode.add_argument("--%s-starttls" % side, dest="%s_mode" % side, action="store_const",
                          const="starttls", help="STARTTLS (port 143)")
        mode.add_argument("--%s-plain" % side, dest="%s_mode" % side, action="store_const",
                          const="plain", help="no TLS at all")
    ap.add_argument("--cafile", help="CA certificates to verify servers with (default: system)")
    ap.add_argument("--map-sep", dest="map_sep", action="store_true", default=True,
                    help="translate namespace prefix and separator (the default)")
    ap.add_argument("--no-map-sep", dest="map_sep", action="store_false",
                    help="compare folder names exactly as the servers send them")
    ap.add_argument("--ignore-flags", action="append", default=[], metavar="FLAGS",
                    help="flags to ignore, space separated, repeatable (\\Recent always is)")
    ap.add_argument("--no-flags", action="store_true", help="do not compare flags")
    ap.add_argument("--no-dates", action="store_true", help="do not compare INTERNALDATE")
    ap.add_argument("--allow-extra-folders", action="store_true",
                    help="destination folders absent from the source are fine")
    ap.add_argument("--check-subscriptions", action="store_true",
                    help="also require the same subscribed folders")
    ap.add_argument("--folder", action="append", metavar="NAME",
                    help="compare only this folder (canonical name, e.g. Archive/2019); repeatable")
    ap.add_argument("--normalize-eol", action="store_const", const=True, default=False,
                    help="hash messages with line ends normalized to CRLF")
    ap.add_argument("--eol-as-stored", dest="normalize_eol", action="store_const", const="stored",
                    help="hash messages with every line end (CRLF, LF) as CRLF, bare CRs dropped and a "
                         "final CRLF added when missing (what Courier stores)")
    ap.add_argument("--dst-munge8bit", action="store_true",
                    help="the destination is Cyrus with its default munge8bit: each source message "
                         "is expected with every 8-bit byte of its header block replaced by 'X' "
                         "(the destination's bytes are taken as they are)")
    ap.add_argument("--max-details", type=int, default=20, metavar="N",
                    help="detail lines per folder (default 20)")
    ap.add_argument("--timeout", type=float, default=60, help="socket timeout in seconds")
    ap.add_argument("--map", action="append", metavar="SRC=DST",
                    help="the source folder SRC (canonical: no prefix, '/'-separated) is expected "
                         "as DST on the destination (repeatable; for rename rules)")
    ap.add_argument("--dst-subfolder", metavar="NAME",
                    help="every source folder X is expected as NAME/X, INBOX as NAME "
                         "(imapfleet --subfolder2); --map entries come first")
    ap.add_argument("--src-gmail-labels", choices=("folders", "primary", "keywords"),
                    help="the source is Gmail: compare what imapfleet's Gmail mode should have made "
                         "of its All Mail under this policy")
    ap.add_argument("--archive-folder", default="Archive",
                    help="with --src-gmail-labels: where mail without a label belongs")
    ap.add_argument("--json", action="store_true", help="print a JSON report instead")
    opts = ap.parse_args(argv)
    opts.ignored = {"\\recent"} | {f.lower() for arg in opts.ignore_flags for f in arg.split()}
    for side in ("src", "dst"):
        mode = getattr(opts, "%s_mode" % side) or "ssl"
        setattr(opts, "%s_mode" % side, mode)
        if getattr(opts, "%s_port" % side) is None:
            setattr(opts, "%s_port" % side, 993 if mode == "ssl" else 143)
    return opts


def account(opts, side):
    g = lambda k: getattr(opts, "%s_%s" % (side, k))  # noqa: E731
    return Account(side, g("host"), g("port"), g("user"), g("passfile"), g("mode"),
                   g("authuser"), opts.cafile, opts.timeout)


def main(argv=None):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # "mailcmp.py ... | head" ends quietly
    opts = parse_args(argv)
    src = dst = None
    try:
        src, dst = account(opts, "src"), account(opts, "dst")
        src.munge8bit = opts.dst_munge8bit
        results = compare(src, dst, opts)
        subs_diff = []
        if opts.check_subscriptions:
            s, d = subscriptions(src, opts.map_sep), subscriptions(dst, opts.map_sep)
            s = {expected_dst_name(n, opts) for n in s}
            subs_diff = [(side, names) for side, names in (("src", s - d), ("dst", d - s)) if names]
    except Failure as e:
        print("mailcmp: error: %s" % e, file=sys.stderr)
        return 2
    except (OSError, imaplib.IMAP4.error) as e:
        print("mailcmp: error: %s" % e, file=sys.stderr)
        return 2
    finally:
        for acct in (src, dst):
            if acct:
                acct.logout()
    equal, line = summary(results, subs_diff)
    if opts.json:
        json.dump({"equal": equal, "summary": line, "src": src.desc, "dst": dst.desc,
                   "folders": [r.to_json() for r in results],
                   "subscriptions": {side: sorted(n) for side, n in subs_diff}},
                  sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        report_text(src, dst, results, subs_diff, opts.max_details)
        print(line)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
