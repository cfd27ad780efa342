#!/bin/sh
# Identity matching never guesses (issue 18): against the real Courier, which adds a final CRLF
# to a message without one. (1) A message over the 16 KB identity prefix without a final CRLF is
# found again by a pass without state (the 2 bytes Courier added are checked at the message's
# end), not copied on every pass. (2) A message without a Message-ID and longer than the prefix
# (weak evidence) that has exactly one copy is matched, not copied on every pass. (3) When the
# destination holds more look-alikes of a message than the source, the message is copied and
# counted ("identity not certain"), never silently taken as there. (4) That count is kept in the
# state: `sync` with state adds it to the account, `run` prints it for its pass, and status (text and
# --json) and report (accounts.csv, passes.csv, accounts.json, report.html: the account and the
# run's totals) show it.
# Accounts: src xambig (added here); courier user30.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 11
servers_begin srvambig
work=$(mktemp -d)
trap 'drop_db; rm -f "$out" "$out".*; rm -rf "$work"' EXIT
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
n=$(psql "$STATE_URL" -Atc "SELECT string_agg(msgs_uncertain::text, ',') FROM job")
[ "$n" = 1 ] && ok "... sync with state keeps the count on its account (msgs_uncertain 1)" ||
	not_ok "... sync with state keeps the count on its account (msgs_uncertain '$n', want 1)"

# (4) A run: the destination now holds dup three times for the source's one, so the run copies it
# again (a fourth) and counts it; run, status and report show the 1.
printf 'host1,port1,user1,passfile1,host2,port2,user2,passfile2\n' >"$work/accounts.csv"
printf 'localhost,%s,xambig,%s,localhost,%s,user30,%s\n' "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/xambig" \
	"$LAB_COURIER_IMAPS" "$LAB_SECRETS/courier/user30" >>"$work/accounts.csv"
"$IMAPFLEET" run "$work/accounts.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--dedupe-existing --folder INBOX >"$work/run.out" 2>"$work/run.err"
rc=$?
[ $rc -eq 0 ] && grep -q "^identity not certain: 1 of the copied messages" "$work/run.out" &&
	grep -q "^pass 1 (first, ended): 1 copied, 1 already there" "$work/run.out" &&
	ok "run: the look-alike is copied (1 copied, 1 already there) and its output says 'identity not certain: 1'" ||
	{ not_ok "run: the look-alike is copied and its output says 'identity not certain: 1' (exit $rc)"
	  sed 's/^/# /' "$work/run.out"; tail -n 15 "$work/run.err" | sed 's/^/# /'; }
"$IMAPFLEET" status --state "$STATE_URL" >"$work/status.out" 2>&1
"$IMAPFLEET" status --state "$STATE_URL" --json >"$work/status.json" 2>"$work/status.err"
grep -q "^  identity not certain: 1 of the copied messages" "$work/status.out" &&
	grep -q "xambig.*  identity not certain: 1$" "$work/status.out" &&
	ok "status: the run's line and the account's say 'identity not certain: 1'" ||
	{ not_ok "status: the run's line and the account's say 'identity not certain: 1'"; sed 's/^/# /' "$work/status.out"; }
"$IMAPFLEET" report --state "$STATE_URL" --out "$work/rep" >"$work/report.out" 2>&1 || diag "report failed"
python3 - "$work" >"$work/check.out" 2>&1 <<'PY'
import csv, json, re, sys
w = sys.argv[1]
bad = []
st = json.load(open(w + "/status.json"))
run = [r for r in st["runs"] if r["id"] == st["run_id"]][0]
if run["msgs_uncertain"] != 1 or run["passes"][-1]["uncertain"] != 1:
    bad.append("status --json run: %s, pass %s" % (run["msgs_uncertain"], run["passes"][-1]))
if [a["msgs_uncertain"] for a in st["accounts"]] != [1]:
    bad.append("status --json accounts: %s" % [a["msgs_uncertain"] for a in st["accounts"]])
rows = list(csv.DictReader(open(w + "/rep/accounts.csv", newline="")))
if [r["msgs_uncertain"] for r in rows] != ["1"]:
    bad.append("accounts.csv: %s" % [r["msgs_uncertain"] for r in rows])
ps = list(csv.DictReader(open(w + "/rep/passes.csv", newline="")))
if [p["uncertain"] for p in ps] != ["1"]:
    bad.append("passes.csv: %s" % [p["uncertain"] for p in ps])
js = json.load(open(w + "/rep/accounts.json"))
if js["run"]["msgs_uncertain"] != 1 or [a["msgs_uncertain"] for a in js["accounts"]] != [1]:
    bad.append("accounts.json: run %s, accounts %s" % (js["run"]["msgs_uncertain"], [a["msgs_uncertain"] for a in js["accounts"]]))
html = open(w + "/rep/report.html").read()
cells = re.findall(r'<td class="num c-uncertain">(\d+)</td>', html)
total = re.findall(r'<span id="msgs-uncertain" data-v="(\d+)"', html)
if cells != ["1"] or total != ["1"]:
    bad.append("report.html: account cells %s, total %s" % (cells, total))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] && ok "status --json (run, pass, account) and report (accounts.csv, passes.csv, accounts.json, report.html account and total) say 1" ||
	{ not_ok "status --json and report say 1 everywhere"; sed 's/^/# /' "$work/check.out"; }
ndup=$(imap courier user30 'm.select("INBOX", readonly=True); print(len(m.search(None, "SUBJECT", "dup")[1][0].split()))')
[ "$ndup" = 4 ] && ok "... the destination holds dup 4 times (the run copied it once)" ||
	not_ok "... the destination holds dup 4 times (the run copied it once; holds $ndup)"
exit 0
