#!/bin/sh
# Courier's line ends at the identity prefix's edge (issue 18): Courier IMAP 5.0 writes every line
# end as CRLF and adds a CRLF to a message that does not end in one, at any size. Measured here on
# the real server (messages appended straight to it), for messages of 16,376 to 16,392 bytes (the
# identity prefix is 16,384) ending in no line end, a bare LF, a bare CR and CRLF; then a second `sync --no-state` finds every one of
# them by identity and copies nothing (a 16,383-byte message stored as 16,385 bytes was copied again
# on every pass), --dedupe-existing likewise, and every message is compared (bytes with line ends
# as Courier stores them, flags, INTERNALDATE) with every subscription.
# Then bare CRs inside long messages (a Courier source serves a CR of its Maildir file as it is;
# Courier as a destination drops a bare CR, so the copy is shorter, or longer by more than its final
# line end): measured, then a second stateless pass and --dedupe-existing find them (the whole
# messages compared) and copy none again, and every message is compared.
# Accounts: src xpad (added here); courier user31; courier xpad and xpad2 (added here).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 12
servers_begin srvpad
add_accounts xpad xpad2
seed_wipe src xpad
seed_wipe courier user31

# 17 sizes x 4 endings = 68 messages, each with its own Message-ID and INTERNALDATE, every third one
# \Seen and every fifth $Label1.
GEN='
import time
ends = {"none": b"", "lf": b"\n", "cr": b"\r", "crlf": b"\r\n"}
def message(size, end, msgid=True):
    hdr = b"From: a@example.org\r\nSubject: edge %d %s\r\n" % (size, end.encode())
    if msgid:
        hdr += b"Message-ID: <edge-%d-%s@example.org>\r\n" % (size, end.encode())
    hdr += b"\r\n"
    tail = b"the end " + end.encode() + ends[end]
    n = size - len(hdr) - len(tail)
    body = (b"x" * 70 + b"\r\n") * (n // 72)
    body += b"y" * (n - len(body))
    msg = hdr + body + tail
    assert len(msg) == size
    return msg
k = 0
for size in range(16376, 16393):
    for end in ("none", "lf", "cr", "crlf"):
        k += 1
        d = imaplib.Time2Internaldate(time.mktime((2019, 5, 6, 7, 8, 9, 0, 0, 0)) + k * 3600)
        flags = " ".join(f for f, on in (("\\Seen", k % 3 == 0), ("$Label1", k % 5 == 0)) if on)
        m.append("INBOX", "(" + flags + ")" if flags else None, d, message(size, end))
'

# The rule, measured on Courier itself: the 68 appended straight to it, their sizes read back.
imap courier user31 "$GEN"'
import re
m.select("INBOX", readonly=True)
typ, d = m.fetch("1:*", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
growth = {}
for x in d:
    if not isinstance(x, tuple):
        continue
    size = int(re.search(rb"RFC822.SIZE (\d+)", x[0]).group(1))
    s = re.search(rb"edge (\d+) (\w+)", x[1])
    growth.setdefault(s.group(2).decode(), set()).add(size - int(s.group(1)))
print(" ".join("%s:%s" % (k, ",".join("%+d" % g for g in sorted(v))) for k, v in sorted(growth.items())))' >"$out.rule"
rule=$(cat "$out.rule")
diag "Courier's growth by ending, at 16,376 to 16,392 bytes: $rule"
[ "$rule" = "cr:+1 crlf:+0 lf:+1 none:+2" ] &&
	ok "Courier adds a CRLF to a message without a final line end and writes a final LF or CR as CRLF, at every size" ||
	not_ok "Courier's rule is +2 without a final line end, +1 for a final LF or CR, 0 for CRLF (got '$rule')"
seed_wipe courier user31

# The same 68 on the source (Dovecot writes a final bare LF or CR as CRLF itself, so those reach
# Courier ending in CRLF; the ones without a final line end are the ones Courier pads); and a
# subscribed folder "Edge" with the 16,383- and 16,384-byte ones without a Message-ID.
imap src xpad "$GEN"'
m.create("Edge")
m.subscribe("Edge")
for size in (16383, 16384):
    m.append("Edge", None, imaplib.Time2Internaldate(time.mktime((2018, 1, 1, 0, 0, 0, 0, 0, 0)) + size),
             message(size, "none", msgid=False))'

# found_again SIDE1 USER1 SIDE2 USER2 N INBOX WHAT: after a first pass without state, a second one
# finds all N by identity and copies none, reporting nothing as uncertain; --dedupe-existing copies
# none; the destination's INBOX holds INBOX messages; every message is compared (5 TAP points).
found_again() {
	xsync "$1" "$2" "$3" "$4" --no-state >"$out" 2>&1 || { diag "first pass failed"; sed 's/^/# /' "$out"; }
	xsync "$1" "$2" "$3" "$4" --no-state >"$out" 2>&1
	grep -q "messages: $5 on source, 0 copied" "$out" &&
		ok "$7a second pass without state finds all $5 by identity and copies none" ||
		{ not_ok "$7a second pass without state copies none of the $5"; sed 's/^/# /' "$out"; }
	grep -q "identity not certain" "$out" && not_ok "... and reports nothing as uncertain" ||
		ok "... and reports nothing as uncertain"
	xsync "$1" "$2" "$3" "$4" --dedupe-existing >"$out" 2>&1
	grep -q "messages: $5 on source, 0 copied" "$out" && ok "$7--dedupe-existing copies none of them again" ||
		{ not_ok "$7--dedupe-existing copies none of them again"; sed 's/^/# /' "$out"; }
	n=$(imap "$3" "$4" 'print(m.select("INBOX", readonly=True)[1][0].decode())')
	[ "$n" = "$6" ] && ok "$7the destination's INBOX holds the $6 once each" ||
		not_ok "$7the destination's INBOX holds $6 (holds $n)"
	xcmp "$1" "$2" "$3" "$4" --eol-as-stored >"$out" 2>&1 &&
		ok "$7every message (bytes with line ends as Courier stores them, flags, INTERNALDATE) and every subscription equal" ||
		{ not_ok "$7every message, flag, date and subscription equal"; sed 's/^/# /' "$out"; }
}
# 16,383 and 16,384 bytes included
found_again src xpad courier user31 70 68 ""

# Bare line ends inside long messages: four Maildir files written straight into Courier's xpad (its
# line ends LF, served as CRLF; a CR of the file served as it is): A 28 KB, CR LF (served CR CR LF)
# on every third line and no final line end; B 20 KB, 10 bare CRs all past the identity prefix and
# 5 CR CR LF, a final LF; C 24 KB without a Message-ID, a bare CR inside every eighth line (fewer
# than 64 in its first 16 KB: see docs/operations.md for more); D 30 KB, no CR (the control). The rule measured with raw APPENDs (imaplib's append rewrites every CR and LF
# as CRLF before it sends): Courier stores each as served with every bare CR dropped, every bare LF
# written CRLF and a CRLF added at the end when there is none.
seed_wipe courier xpad xpad2
python3 - "$(courier_maildir xpad)" <<'PY' || diag "could not write the Maildir files"
import os, sys
md = sys.argv[1]
own = os.stat(md)
def lines(n, every, mid=False):
    return b"".join(b"%-35d" % i + (b"\r" if mid and every and i % every == 0 else b"") + b"%-34d" % i +
                    (b"\r" if not mid and every and i % every == 0 else b"") + b"\n" for i in range(n))
msgs = [
    ("A", b"Message-ID: <bare-a@example.org>\n", lines(400, 3) + b"the end", "S"),
    ("B", b"Message-ID: <bare-b@example.org>\n", lines(280, 0) + b"x\ry\rz\r\n" * 5, "F"),
    ("C", b"", lines(340, 8, mid=True), ""),
    ("D", b"Message-ID: <bare-d@example.org>\n", lines(430, 0), "S"),
]
for k, (name, mid, body, flags) in enumerate(msgs):
    msg = b"From: a@example.org\nSubject: bare " + name.encode() + b"\n" + mid + b"\n" + body
    p = os.path.join(md, "cur", "17000000%02d.M%dP1.lab:2,%s" % (k, k, flags))
    with open(p, "wb") as f:
        f.write(msg)
    os.utime(p, (1500000000 + k * 86400, 1500000000 + k * 86400))
    os.chown(p, own.st_uid, own.st_gid)
PY
imap courier xpad '
import re
m.select("INBOX", readonly=True)
typ, d = m.fetch("1:*", "(BODY.PEEK[])")
served = sorted(x[1] for x in d if isinstance(x, tuple))
m.create("INBOX.Probe")
for b in served:
    m.literal = b
    m._simple_command("APPEND", "INBOX.Probe")
m.select("INBOX.Probe", readonly=True)
typ, d = m.fetch("1:*", "(BODY.PEEK[])")
stored = sorted(x[1] for x in d if isinstance(x, tuple))
out = []
for a, b in zip(served, stored):
    want = re.sub(rb"\r?\n", b"\r\n", re.sub(rb"\r(?!\n)", b"", a))
    want += b"" if want.endswith(b"\r\n") else b"\r\n"
    name = re.search(rb"Subject: bare (\w)", a).group(1).decode()
    out.append("%s:%d%+d:%s" % (name, len(a), len(b) - len(a), "ok" if b == want else "differs"))
m.close()
m.delete("INBOX.Probe")
print(" ".join(out))' >"$out.rule"
rule=$(cat "$out.rule")
diag "Courier's rewrite of long messages with bare CRs (name:size as served, growth as stored): $rule"
case $rule in
*differs* | "") not_ok "Courier stores each as served with bare CRs dropped, bare LFs as CRLF and a final CRLF added (got '$rule')" ;;
*) printf '%s\n' "$rule" | grep -q "A:[0-9]*-.*B:[0-9]*-.*C:[0-9]*-" &&
	ok "Courier stores each as served with bare CRs dropped, bare LFs as CRLF and a final CRLF added (A, B, C shorter)" ||
	not_ok "Courier stores A, B and C shorter than served (got '$rule')" ;;
esac
# the whole messages compared
found_again courier xpad courier xpad2 4 4 "bare CRs: "
exit 0
