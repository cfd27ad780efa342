#!/bin/sh
# Identity matching never guesses (issue 18): against the real Courier, which adds a final CRLF
# to a message without one. (1) A message over the 16 KB identity prefix without a final CRLF is
# found again by a pass without state (the 2 bytes Courier added are checked at the message's
# end), not copied on every pass. (2) A message without a Message-ID and longer than the prefix
# (weak evidence) that has exactly one copy is matched, not copied on every pass. (3) When the
# destination holds more look-alikes of a message than the source, the message is copied and
# counted ("identity not certain"), never silently taken as there.
# Accounts: src xambig (added here); courier user30.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 6
servers_begin srvambig
add_accounts xambig
seed_wipe src xambig
seed_wipe courier user30

# INBOX: a small message with a Message-ID, and a 24 KB one without a final CRLF. Weak: a 20 KB
# message without a Message-ID (ending in CRLF, so Courier stores it unchanged).
imap src xambig '
import time
d = imaplib.Time2Internaldate(time.mktime((2021, 3, 4, 5, 6, 7, 0, 0, 0)))
line = b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n"
m.append("INBOX", None, d, b"From: a@example.org\r\nSubject: dup\r\nMessage-ID: <dup@example.org>\r\n\r\ndup\r\n")
m.append("INBOX", None, d, b"From: a@example.org\r\nSubject: long\r\nMessage-ID: <long@example.org>\r\n\r\n" + line * 300 + b"the end, no CRLF")
m.create("Weak")
m.append("Weak", None, d, b"From: a@example.org\r\nSubject: weak\r\nDate: Thu, 04 Mar 2021 05:06:07 +0000\r\n\r\n" + line * 250)'

count() { # SIDE USER FOLDER: messages in FOLDER
	FOLDER=$3 imap "$1" "$2" 'import os; print(m.select(os.environ["FOLDER"], readonly=True)[1][0].decode())'
}

xsync src xambig courier user30 --no-state >"$out" 2>&1 || { diag "first pass failed"; sed 's/^/# /' "$out"; }
xsync src xambig courier user30 --no-state >"$out" 2>&1
n=$(count courier user30 INBOX)
[ "$n" = 2 ] && ok "a 24 KB message without a final CRLF, padded by Courier, is found by a pass without state (INBOX holds 2)" ||
	{ not_ok "the padded 24 KB message is found again, not copied on every pass (INBOX holds $n, want 2)"; sed 's/^/# /' "$out"; }
grep -q "messages: 3 on source, 0 copied" "$out" && ok "... the second pass copies nothing" ||
	{ not_ok "... the second pass copies nothing"; sed 's/^/# /' "$out"; }
n=$(count courier user30 INBOX.Weak)
[ "$n" = 1 ] && ok "a 20 KB message without a Message-ID and its one copy are matched, not copied again (Weak holds 1)" ||
	not_ok "a 20 KB message without a Message-ID is copied again on a stateless pass (Weak holds $n, want 1)"
grep -q "identity not certain" "$out" && not_ok "... and nothing is reported as uncertain" || ok "... and nothing is reported as uncertain"

# Two look-alikes of "dup" on the destination for one on the source: which one is the copy would
# be a guess, so it is copied again and reported; the long message is still found (padding).
imap courier user30 '
import time
d = imaplib.Time2Internaldate(time.mktime((2021, 3, 4, 5, 6, 7, 0, 0, 0)))
m.append("INBOX", None, d, b"From: a@example.org\r\nSubject: dup\r\nMessage-ID: <dup@example.org>\r\n\r\ndup\r\n")'
xsync src xambig courier user30 --dedupe-existing --folder INBOX >"$out" 2>&1
grep -q "messages: 2 on source, 1 copied" "$out" && grep -q "identity not certain: 1 copied" "$out" &&
	ok "two look-alikes on the destination for one source message: copied and reported, not matched to either" ||
	{ not_ok "two look-alikes on the destination: copied and reported"; sed 's/^/# /' "$out"; }
ndup=$(imap courier user30 'm.select("INBOX", readonly=True); print(len(m.search(None, "SUBJECT", "dup")[1][0].split()))')
nlong=$(imap courier user30 'm.select("INBOX", readonly=True); print(len(m.search(None, "SUBJECT", "long")[1][0].split()))')
[ "$ndup" = 3 ] && [ "$nlong" = 1 ] && ok "... the destination holds dup 3 times and the long message once" ||
	not_ok "... the destination holds dup 3 times and the long message once (dup $ndup, long $nlong)"
exit 0
