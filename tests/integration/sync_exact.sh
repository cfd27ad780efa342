#!/bin/sh
# imapfleet sync copies one account exactly (every message, byte for byte, with flags, INTERNALDATE
# and subscriptions), a second sync copies nothing, a delta copies exactly what changed, --dry
# changes nothing, a Courier-style source ('.' separator, INBOX. prefix) maps onto a '/' server,
# and a message of several MB passes with memory far below its size times the pipeline depth.
# --newest-first copies INBOX, then Sent, first, and each folder's newest messages (highest UIDs)
# first, exactly as well, with each window's FETCH sent before the previous window's APPEND answer,
# and each folder's first FETCH before the previous folder's last APPEND answer; a folder empty on
# the source is settled from STATUS, without EXAMINE or SELECT; on a first pass the first folder's
# EXAMINE goes out with the STATUS commands.
# Accounts: user01 (holds the big message), user02 (its source is changed by this test), user04,
# legacy user03, user05.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 24
fresh_db sync
trap drop_db EXIT
out=$(mktemp)

wipe_dst user01 user02 user03 user04 user05 || { diag "could not wipe"; }

# 1. full copy, measured memory
if /usr/bin/time -f '%M' -o "$out.rss" "$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user01 \
	--passfile1 "$LAB_SECRETS/src/user01" --cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" \
	--user2 user01 --passfile2 "$LAB_SECRETS/dst/user01" --cafile2 "$LAB_CA" --state "$STATE_URL" >"$out" 2>&1; then
	ok "sync user01 exits 0"
else
	not_ok "sync user01 exits 0"; sed 's/^/# /' "$out"
fi
grep -q "result:   complete" "$out" && ok "sync reports the account complete" || not_ok "sync reports the account complete"
check "user01: destination equals source message by message, subscriptions too" \
	same_mail "$LAB_SRC_IMAPS" user01 user01 --check-subscriptions
big=$(python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/user01" "$LAB_CA" <<'PY'
import imaplib, ssl, sys, re
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[3]))
m.login("user01", open(sys.argv[2]).read().strip())
best = 0
typ, data = m.list('""', '*')
for line in data:
    name = re.match(rb'\(.*?\) (?:NIL|"[^"]*") (.*)$', line).group(1).decode()
    if "Noselect" in line.decode():
        continue
    typ, d = m.select(name, readonly=True)
    if int(d[0]) == 0:
        continue
    typ, d = m.fetch("1:*", "(RFC822.SIZE)")
    for x in d:
        best = max(best, int(re.search(rb"RFC822.SIZE (\d+)", x).group(1)))
print(best)
PY
)
rss=$(cat "$out.rss" 2>/dev/null || echo 0)
diag "largest message $big bytes, peak RSS ${rss} KB"
if [ "${big:-0}" -ge 4000000 ] && [ "$rss" -gt 0 ] && [ "$rss" -lt 60000 ]; then
	ok "a ${big}-byte message is copied with peak RSS ${rss} KB (< 60 MB, far below size x pipeline depth 64)"
else
	not_ok "a multi-MB message is copied with bounded memory (largest $big bytes, RSS $rss KB)"
fi

# 2. a second sync copies nothing
sync_pair user01 --state "$STATE_URL" >"$out" 2>&1
grep -q "messages: [0-9]* on source, 0 copied" "$out" && ok "a second sync copies nothing" ||
	{ not_ok "a second sync copies nothing"; sed 's/^/# /' "$out"; }
check "user01: still equal after the second sync (nothing twice)" same_mail "$LAB_SRC_IMAPS" user01 user01

# 3. delta: add messages and change flags on the source of user02, sync again
sync_pair user02 --state "$STATE_URL" >"$out" 2>&1 || { diag "first sync of user02 failed"; sed 's/^/# /' "$out"; }
python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/user02" "$LAB_CA" "Run$$" <<'PY'
import imaplib, ssl, sys, time
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[3]))
m.login("user02", open(sys.argv[2]).read().strip())
for i in range(3):
    body = ("From: delta@example.org\r\nTo: user02@example.org\r\nSubject: delta %d\r\n"
            "Date: Mon, 23 Nov 2026 10:00:0%d +0000\r\n\r\nnew message %d\r\n" % (i, i, i)).encode()
    m.append("INBOX", "(\\Seen $Delta)", imaplib.Time2Internaldate(time.time() - 3600 * i), body)
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Flagged Project-Y %s)" % sys.argv[4])  # a keyword new on every run
m.store("2", "-FLAGS", "(\\Seen)")
m.logout()
PY
sync_pair user02 --state "$STATE_URL" >"$out" 2>&1
grep -q ", 3 copied" "$out" && ok "the delta pass copies exactly the 3 new messages" ||
	{ not_ok "the delta pass copies exactly the 3 new messages"; sed 's/^/# /' "$out"; }
grep -q "flags updated: [1-9]" "$out" && ok "the delta pass brings flag changes over" ||
	{ not_ok "the delta pass brings flag changes over"; sed 's/^/# /' "$out"; }
check "user02: destination equals the changed source (flags included)" same_mail "$LAB_SRC_IMAPS" user02 user02

# 4. --dry changes nothing
sync_pair user04 --dry >"$out" 2>&1
grep -q "would be copied" "$out" && ok "--dry reports what would be copied" || { not_ok "--dry reports what would be copied"; sed 's/^/# /' "$out"; }
n=$(python3 - "$LAB_DST_IMAPS" "$LAB_SECRETS/dst/user04" "$LAB_CA" <<'PY'
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[3]))
m.login("user04", open(sys.argv[2]).read().strip())
typ, data = m.list('""', '*')
typ, d = m.select("INBOX", readonly=True)
print(len(data), int(d[0]))
PY
)
[ "$n" = "1 0" ] && ok "--dry created no folder and copied no message" || not_ok "--dry created no folder and copied no message (folders, inbox: $n)"

# 5. --no-state: nothing remembered, what is there is found by identity: no duplicates
sync_pair user04 --no-state >"$out" 2>&1 && ok "sync --no-state exits 0" || { not_ok "sync --no-state exits 0"; sed 's/^/# /' "$out"; }
sync_pair user04 --no-state >"$out" 2>&1
grep -q ", 0 copied" "$out" && ok "a second sync --no-state copies nothing (matched by identity)" ||
	{ not_ok "a second sync --no-state copies nothing"; sed 's/^/# /' "$out"; }
check "user04: equal after two stateless syncs (twins and messages without Message-ID included)" \
	same_mail "$LAB_SRC_IMAPS" user04 user04

# 6. Courier-style source: '.' separator and INBOX. prefix onto a '/' server
"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_LEGACY_IMAPS" --user1 user03 --passfile1 "$LAB_SECRETS/legacy/user03" \
	--cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" --user2 user03 \
	--passfile2 "$LAB_SECRETS/dst/user03" --cafile2 "$LAB_CA" --state "$STATE_URL" >"$out" 2>&1 &&
	ok "sync from the Courier-style source exits 0" || { not_ok "sync from the Courier-style source exits 0"; sed 's/^/# /' "$out"; }
check "legacy user03 ('.' + INBOX. prefix) equals dst user03 ('/') folder by folder" \
	same_mail "$LAB_LEGACY_IMAPS" user03 user03
# 7. --newest-first: INBOX, then Sent, then the rest; in a folder the highest UIDs first
sync_pair user05 --state "$STATE_URL" --newest-first --batch 4 --log-level trace >"$out" 2>&1 &&
	ok "sync --newest-first exits 0" || { not_ok "sync --newest-first exits 0"; tail -n 20 "$out" | sed 's/^/# /'; }
check "user05: destination equals source after --newest-first" same_mail "$LAB_SRC_IMAPS" user05 user05
order=$(python3 - "$out" <<'PY'
import re, sys
folders, inbox = [], []
for ln in open(sys.argv[1], errors="replace"):
    m = re.search(r"folder=([^\]]*)\] src C: \S+ UID FETCH (\d+)\S* \(UID BODY\.PEEK\[\]\)", ln)
    if not m:
        continue
    if not folders or folders[-1] != m.group(1):
        folders.append(m.group(1))
    if m.group(1) == "INBOX":
        inbox.append(int(m.group(2)))
ok = folders[:2] == ["INBOX", "Sent"] and len(inbox) > 1 and inbox == sorted(inbox, reverse=True)
print("ok" if ok else "folders %s, INBOX windows from %s" % (folders[:3], inbox))
PY
)
[ "$order" = ok ] && ok "--newest-first: INBOX then Sent first, INBOX windows from the highest UID down" ||
	not_ok "--newest-first order ($order)"
# Window N+1's body FETCH goes out while window N's APPEND is still unanswered (one round trip less
# per window); the copy above is exact all the same.
early=$(awk '/dst C: a[0-9]+ APPEND/ { p = 1 } /dst S: a[0-9]+ OK \[APPENDUID/ { p = 0 }
	/src C: a[0-9]+ UID FETCH [0-9:,]+ \(UID BODY\.PEEK\[\]\)/ { if (p) n++ } END { print n + 0 }' "$out")
[ "$early" -ge 1 ] && ok "the next window's FETCH was sent before the APPEND answer ($early times)" ||
	not_ok "no window's FETCH was sent before the previous APPEND answer"
# The same across folders: the next folder's first body FETCH goes out while the previous folder's
# last APPEND is still unanswered (its trace line carries its own folder).
early=$(python3 - "$out" <<'PY'
import re, sys
pending, n = None, 0
for ln in open(sys.argv[1], errors="replace"):
    m = re.search(r"folder=([^\]]*)\] (src|dst) ([CS]): (.*)", ln)
    if not m:
        continue
    folder, side, d, rest = m.groups()
    if side == "dst" and d == "C" and re.match(r"a[0-9]+ APPEND ", rest):
        pending = folder
    elif side == "dst" and d == "S" and re.match(r"a[0-9]+ OK \[APPENDUID", rest):
        pending = None
    elif side == "src" and d == "C" and pending and folder != pending and re.search(r"UID FETCH \S+ \(UID BODY\.PEEK\[\]\)", rest):
        n += 1
print(n)
PY
)
[ "$early" -ge 1 ] && ok "the next folder's first FETCH was sent before the previous folder's APPEND answer ($early times)" ||
	not_ok "no folder's first FETCH was sent before the previous folder's APPEND answer"
# On a first pass the first folder's EXAMINE goes out with the STATUS commands, before their answers
# (one round trip less); a later pass, where the destination has every folder, waits for STATUS.
early_examine() {
	awk '/src C: a[0-9]+ EXAMINE "?INBOX"?$/ { if (!st) e = 1 } /src S: a[0-9]+ OK .*Status completed/ { st = 1 }
		END { print e + 0 }' "$1"
}
[ "$(early_examine "$out")" = 1 ] && ok "first pass: INBOX's EXAMINE was sent before the STATUS answers" ||
	not_ok "first pass: INBOX's EXAMINE was not sent before the STATUS answers"
sync_pair user05 --state "$STATE_URL" --newest-first --batch 4 --log-level trace >"$out.2" 2>&1 &&
	[ "$(early_examine "$out.2")" = 0 ] && grep -q ", 0 copied" "$out.2" &&
	ok "second pass: nothing copied, and no EXAMINE before the STATUS answers" ||
	{ not_ok "second pass: nothing copied, and no EXAMINE before the STATUS answers"; tail -n 5 "$out.2" | sed 's/^/# /'; }
rm -f "$out.2"
# A folder the source's STATUS says is empty is settled from STATUS: neither EXAMINEd nor SELECTed,
# so it does not stop the folders after it from being asked about ahead.
n=$(grep -c 'C: a[0-9]* \(EXAMINE\|SELECT\) "\?Archive/Empty' "$out")
grep -q 'folder=Archive/Empty\].*empty on the source (STATUS): nothing to copy' "$out" && [ "$n" = 0 ] &&
	ok "the empty folder Archive/Empty was settled without EXAMINE or SELECT" ||
	not_ok "the empty folder Archive/Empty was settled without EXAMINE or SELECT ($n EXAMINE/SELECT)"
rm -f "$out" "$out.rss"
