#!/bin/sh
# Message identity that survives what real servers rewrite (issue 18, item 5): Courier adds a final
# CRLF to a message without one, Cyrus (munge8bit) replaces 8-bit bytes in header fields. Identity
# matching (--no-state passes, --dedupe-existing) must still find every message already there and
# copy nothing again; and two messages without a Message-ID that differ only in their bodies (same
# Date, From, Subject, size and INTERNALDATE) are never taken for one another.
# Accounts: src xident (added here); courier user29; cyrus user29.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 10
servers_begin srvident
add_accounts xident
seed_wipe src xident

# Five messages, one INTERNALDATE: no final CRLF; 8-bit From and Subject in UTF-8 and in Latin-1;
# two without a Message-ID that differ only in the body.
imap src xident '
import time
d = imaplib.Time2Internaldate(time.mktime((2020, 1, 2, 3, 4, 5, 0, 0, 0)))
m.append("INBOX", None, d, b"From: a@example.org\r\nSubject: no final crlf\r\nMessage-ID: <nocrlf@example.org>\r\n\r\nthe last line has no CRLF")
m.append("INBOX", None, d, "From: J\xc3\xb6rg <j@example.org>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\nMessage-ID: <eight@example.org>\r\n\r\nbody\r\n".encode("latin1"))
m.append("INBOX", None, d, "From: J\xf6rg <j@example.org>\r\nSubject: Gr\xfc\xdfe latin1\r\nMessage-ID: <latin1@example.org>\r\n\r\nbody\r\n".encode("latin1"))
for b in (b"AAAA", b"BBBB"):
    m.append("INBOX", None, d, b"From: a@example.org\r\nSubject: twin\r\nDate: Thu, 02 Jan 2020 03:04:05 +0000\r\n\r\nbody " + b + b"\r\n")'

for side in courier cyrus; do
	seed_wipe "$side" user29
	xsync src xident "$side" user29 --no-state >"$out" 2>&1 || { diag "first pass to $side failed"; sed 's/^/# /' "$out"; }
	xsync src xident "$side" user29 --no-state >"$out" 2>&1
	grep -q "messages: 5 on source, 0 copied" "$out" && ok "$side: a second pass without state finds all 5 messages by identity, copies none" ||
		{ not_ok "$side: a second pass without state finds all 5 messages by identity, copies none"; sed 's/^/# /' "$out"; }
	xsync src xident "$side" user29 --dedupe-existing >"$out" 2>&1
	grep -q "messages: 5 on source, 0 copied" "$out" && ok "$side: --dedupe-existing copies none of them again" ||
		{ not_ok "$side: --dedupe-existing copies none of them again"; sed 's/^/# /' "$out"; }
	# Each compared with the bytes as that server stores them: Courier writes line ends as CRLF
	# and pads the final one; Cyrus (munge8bit) replaces each 8-bit header byte by 'X'.
	case $side in
	courier) check "courier: every message (bytes with line ends as Courier stores them, flags, INTERNALDATE) and subscription equal" \
		xcmp src xident courier user29 --eol-as-stored ;;
	cyrus) check "cyrus: every message (bytes with 8-bit header bytes as Cyrus stores them, flags, INTERNALDATE) and subscription equal" \
		xcmp src xident cyrus user29 --dst-munge8bit ;;
	esac
	n=$(imap "$side" user29 'print(m.select("INBOX", readonly=True)[1][0].decode())')
	[ "$n" = 5 ] && ok "$side: the destination holds the 5 messages once each" ||
		not_ok "$side: the destination holds the 5 messages once each (it holds $n)"
done

# The twins: the destination holds only "BBBB" (flagged); --dedupe-existing must copy "AAAA" and
# leave "BBBB" alone, not the other way round.
$SEED --wipe cyrus user29 >/dev/null 2>&1
imap cyrus user29 '
import time
d = imaplib.Time2Internaldate(time.mktime((2020, 1, 2, 3, 4, 5, 0, 0, 0)))
m.append("INBOX", "(\\Flagged)", d, b"From: a@example.org\r\nSubject: twin\r\nDate: Thu, 02 Jan 2020 03:04:05 +0000\r\n\r\nbody BBBB\r\n")'
imap src xident 'm.select("INBOX"); m.store("1:*", "+FLAGS", "(\\Seen)")'
xsync src xident cyrus user29 --dedupe-existing --folder INBOX >"$out" 2>&1
bodies=$(imap cyrus user29 '
m.select("INBOX", readonly=True)
typ, d = m.fetch("1:*", "(FLAGS BODY.PEEK[TEXT])")
print(" ".join(sorted(x[1].decode().strip() for x in d if isinstance(x, tuple))))')
[ "$bodies" = "body body body AAAA body BBBB the last line has no CRLF" ] && grep -q "messages: 5 on source, 4 copied" "$out" &&
	ok "twins without a Message-ID: the missing one is copied, the one there is not copied again" ||
	{ not_ok "twins without a Message-ID: the missing one is copied, the one there is not copied again (got: $bodies)"; sed 's/^/# /' "$out"; }
n=$(imap cyrus user29 'm.select("INBOX", readonly=True); print(m.search(None, "BODY", "BBBB")[1][0].decode())' | wc -w)
[ "$n" = 1 ] && ok "... and BBBB is there once" || not_ok "... and BBBB is there once (found $n)"
exit 0
