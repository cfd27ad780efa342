#!/bin/sh
# Courier's line ends at the identity prefix's edge (issue 18): Courier IMAP 5.0 writes every line
# end as CRLF and adds a CRLF to a message that does not end in one, at any size. Measured here on
# the real server (messages appended straight to it), for messages of 16,376 to 16,392 bytes (the
# identity prefix is 16,384) ending in no line end, a bare LF, a bare CR and CRLF; then a second `sync --no-state` finds every one of
# them by identity and copies nothing (a 16,383-byte message stored as 16,385 bytes was copied again
# on every pass), --dedupe-existing likewise, and every message is compared (bytes with line ends
# as Courier stores them, flags, INTERNALDATE) with every subscription.
# Accounts: src xpad (added here); courier user31.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 6
servers_begin srvpad
add_accounts xpad
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

xsync src xpad courier user31 --no-state >"$out" 2>&1 || { diag "first pass failed"; sed 's/^/# /' "$out"; }

xsync src xpad courier user31 --no-state >"$out" 2>&1
grep -q "messages: 70 on source, 0 copied" "$out" &&
	ok "a second pass without state finds all 70 by identity and copies none (16,383 and 16,384 bytes included)" ||
	{ not_ok "a second pass without state copies none of the 70"; sed 's/^/# /' "$out"; }
grep -q "identity not certain" "$out" && not_ok "... and reports nothing as uncertain" ||
	ok "... and reports nothing as uncertain"
xsync src xpad courier user31 --dedupe-existing >"$out" 2>&1
grep -q "messages: 70 on source, 0 copied" "$out" && ok "--dedupe-existing copies none of them again" ||
	{ not_ok "--dedupe-existing copies none of them again"; sed 's/^/# /' "$out"; }
n=$(imap courier user31 'print(m.select("INBOX", readonly=True)[1][0].decode())')
[ "$n" = 68 ] && ok "the destination's INBOX holds the 68 once each" || not_ok "the destination's INBOX holds 68 (holds $n)"
xcmp src xpad courier user31 --eol-as-stored >"$out" 2>&1 &&
	ok "every message (bytes with line ends as Courier stores them, flags, INTERNALDATE) and every subscription equal" ||
	{ not_ok "every message, flag, date and subscription equal"; sed 's/^/# /' "$out"; }
exit 0
