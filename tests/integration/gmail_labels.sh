#!/bin/sh
# Gmail mode against a Gmail-like server: hoodiecrow-imap (npm) with its X-GM-EXT-1 plugin, started
# here with labelled, multi-labelled, unlabelled, starred and important messages in [Gmail]/All Mail.
# imapfleet reads All Mail once per label entry and puts every message where --gmail-labels says
# (folders, primary, keywords) on the lab's Dovecot; unlabelled mail goes to the archive folder;
# \Starred and \Important become flags. mailcmp --src-gmail-labels checks every message, flag and
# date. A delta pass carries a new label and a new message, and a second one copies nothing.
# Gmail to Gmail (a second hoodiecrow): All Mail copied once, every label set with STORE
# +X-GM-LABELS; every message compared with its flags, date and labels; label changes on the
# source (added, removed) are carried by the next pass.
# Accounts: gmf, gmp, gmk on dst (added here). Needs node and npm (hoodiecrow is installed into
# $LAB_DIR/hoodiecrow by this test).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || skip_all "node and npm are needed for hoodiecrow-imap"
plan 23
fresh_db gmail
work=$(mktemp -d "${TMPDIR:-/tmp}/gmail-labels.XXXXXX")
hc_pid=
hc2_pid=
cleanup() { [ -n "$hc_pid" ] && kill "$hc_pid" 2>/dev/null; [ -n "$hc2_pid" ] && kill "$hc2_pid" 2>/dev/null; drop_db; rm -rf "$work"; }
trap cleanup EXIT

# hoodiecrow-imap, once per lab, from the npm registry.
hc_dir="$_labdir/hoodiecrow"
hc_bin="$hc_dir/node_modules/hoodiecrow-imap/bin/hoodiecrow"
if [ ! -f "$hc_bin" ]; then
	mkdir -p "$hc_dir" && npm install --silent --no-audit --no-fund --prefix "$hc_dir" hoodiecrow-imap@2.1.0 \
		>"$work/npm.log" 2>&1 || { echo "Bail out! npm install hoodiecrow-imap failed: $(tail -n 3 "$work/npm.log")"; exit 1; }
fi
ok "hoodiecrow-imap is installed"

for a in gmf gmp gmk; do
	LAB_DIR=$_labdir "${top_srcdir:-.}/scripts/lab.sh" add-account $a >/dev/null 2>&1 || diag "could not add account $a"
done
wipe_dst gmf gmp gmk || diag "could not wipe"

# The Gmail account: every message once in All Mail, with its labels; label folders as Gmail lists
# them (empty here: hoodiecrow keeps labels as data only, which is why All Mail must be read).
cat >"$work/hc.json" <<'JSON'
{
 "INBOX": {},
 "": {"separator": "/", "folders": {
  "[Gmail]": {"flags": ["\\Noselect"], "folders": {
   "All Mail": {"special-use": "\\All", "messages": [
    {"raw": "From: ann@example.org\r\nTo: me@example.org\r\nSubject: inbox only\r\nMessage-ID: <1@gm>\r\n\r\nfirst\r\n",
     "flags": ["\\Seen"], "internaldate": "14-Sep-2025 21:22:28 -0300", "X-GM-LABELS": ["\\Inbox"]},
    {"raw": "From: bob@example.org\r\nTo: me@example.org\r\nSubject: inbox and work\r\n\r\nsecond, no Message-ID\r\n",
     "flags": [], "internaldate": "15-Sep-2025 08:00:00 +0000", "X-GM-LABELS": ["\\Inbox", "Work"]},
    {"raw": "From: cy@example.org\r\nTo: me@example.org\r\nSubject: two labels, important\r\n\r\nthird\r\n",
     "flags": ["\\Seen", "\\Answered"], "internaldate": "16-Sep-2025 09:00:00 +0200", "X-GM-LABELS": ["Work", "Work/Projects", "\\Important"]},
    {"raw": "From: dee@example.org\r\nTo: me@example.org\r\nSubject: archived, starred\r\n\r\nfourth\r\n",
     "flags": ["\\Seen"], "internaldate": "17-Sep-2025 10:00:00 +0000", "X-GM-LABELS": ["\\Starred"]},
    {"raw": "From: eve@example.org\r\nTo: me@example.org\r\nSubject: archived\r\n\r\nfifth\r\n",
     "flags": ["\\Seen"], "internaldate": "18-Sep-2025 11:00:00 +0000", "X-GM-LABELS": []},
    {"raw": "From: me@example.org\r\nTo: fay@example.org\r\nSubject: sent, labelled\r\n\r\nsixth\r\n",
     "flags": ["\\Seen"], "internaldate": "19-Sep-2025 12:00:00 +0000", "X-GM-LABELS": ["\\Sent", "Priv&AOk-"]},
    {"raw": "From: gus@example.org\r\nTo: me@example.org\r\nSubject: personal\r\n\r\nseventh\r\n",
     "flags": [], "internaldate": "20-Sep-2025 13:00:00 +0000", "X-GM-LABELS": ["Priv&AOk-", "Work", "\\Inbox"]}
   ]},
   "Sent Mail": {"special-use": "\\Sent"},
   "Starred": {"special-use": "\\Flagged"},
   "Important": {"special-use": "\\Important"},
   "Trash": {"special-use": "\\Trash", "messages": [
    {"raw": "From: hal@example.org\r\nTo: me@example.org\r\nSubject: deleted\r\n\r\neighth\r\n",
     "flags": ["\\Seen"], "internaldate": "21-Sep-2025 14:00:00 +0000"}
   ]}
  }},
  "Work": {"folders": {"Projects": {}}},
  "Priv&AOk-": {}
 }}
}
JSON
start_hoodiecrow() { # NAME: hoodiecrow with $work/NAME.json; sets hc_port and hc_started (its pid)
	hc_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	node "$hc_bin" -p "$hc_port" --storage="$work/$1.json" \
		--plugin=ID,ENABLE,CONDSTORE,NAMESPACE,SPECIAL-USE,UNSELECT,LITERALPLUS,UIDPLUS,X-GM-EXT-1 >"$work/$1.log" 2>&1 &
	hc_started=$!
	for _i in $(seq 1 50); do grep -q "listening on port" "$work/$1.log" && return 0; sleep 0.2; done
	sed 's/^/# /' "$work/$1.log"
	return 1
}
up=
start_hoodiecrow hc && up=1
hc_pid=$hc_started port=$hc_port
[ -n "$up" ] && ok "hoodiecrow listens on port $port" || { not_ok "hoodiecrow listens"; exit 1; }
printf testpass >"$work/hc.pass"
chmod 600 "$work/hc.pass"

gmail_pair() { # dst account, options
	_d=$1; shift
	"$IMAPFLEET" sync --host1 127.0.0.1 --port1 "$port" --plain1 --user1 testuser --passfile1 "$work/hc.pass" \
		--host2 localhost --port2 "$LAB_DST_IMAPS" --user2 "$_d" --passfile2 "$LAB_SECRETS/dst/$_d" \
		--cafile2 "$LAB_CA" --gmail1 --state "$STATE_URL" "$@"
}
gmail_cmp() { # dst account, policy, extra mailcmp options
	_d=$1 _p=$2; shift 2
	$MAILCMP --cafile "$LAB_CA" --src-host 127.0.0.1 --src-port "$port" --src-plain --src-user testuser \
		--src-passfile "$work/hc.pass" --dst-host localhost --dst-port "$LAB_DST_IMAPS" --dst-user "$_d" \
		--dst-passfile "$LAB_SECRETS/dst/$_d" --src-gmail-labels "$_p" "$@"
}
# gmail_change <<PY: runs the Python on stdin with m, an imaplib client logged in to the first
# hoodiecrow as testuser with "[Gmail]/All Mail" selected.
gmail_change() {
	python3 -c 'import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("testuser", open(sys.argv[2]).read())
m.select("\"[Gmail]/All Mail\"")
exec(sys.stdin.read())
m.logout()' "$port" "$work/hc.pass" || diag "could not change the Gmail side"
}

# folders: 7 messages in All Mail make 12 copies: INBOX 3, Work 3, Work/Projects 1, Privé 2,
# Sent 1, Archive 2 (one starred); plus the one in Trash.
gmail_pair gmf >"$work/f.out" 2>&1 && ok "sync --gmail-labels folders (the default) exits 0" ||
	{ not_ok "sync --gmail-labels folders exits 0"; tail -n 20 "$work/f.out" | sed 's/^/# /'; }
grep -q "messages: [0-9]* on source, 13 copied" "$work/f.out" && ok "folders: a copy per label, 12 from All Mail and 1 from Trash" ||
	{ not_ok "folders: 13 copies"; grep "messages:" "$work/f.out" | sed 's/^/# /'; }
check "folders: every label's folder holds exactly its messages, unlabelled in Archive, flags and dates" \
	gmail_cmp gmf folders

# primary: one copy each (Inbox first, then Sent, then user labels in byte order)
gmail_pair gmp --gmail-labels primary --archive-folder "Gmail Archive" >"$work/p.out" 2>&1 &&
	ok "sync --gmail-labels primary exits 0" || { not_ok "sync --gmail-labels primary exits 0"; tail -n 20 "$work/p.out" | sed 's/^/# /'; }
grep -q "messages: [0-9]* on source, 8 copied" "$work/p.out" && ok "primary: one copy per message (7 + 1 in Trash)" ||
	{ not_ok "primary: 8 copies"; grep "messages:" "$work/p.out" | sed 's/^/# /'; }
check "primary: each message in its one folder, unlabelled in --archive-folder" \
	gmail_cmp gmp primary --archive-folder "Gmail Archive"

# keywords: one copy each, user labels as keywords
gmail_pair gmk --gmail-labels keywords >"$work/k.out" 2>&1 && ok "sync --gmail-labels keywords exits 0" ||
	{ not_ok "sync --gmail-labels keywords exits 0"; tail -n 20 "$work/k.out" | sed 's/^/# /'; }
check "keywords: one copy each with its labels as keywords" gmail_cmp gmk keywords

# delta: a label added to an old message, a new unlabelled message
gmail_change <<'PY'
typ, d = m.uid("STORE", "1", "+X-GM-LABELS", "(Work/Projects)")
assert typ == "OK", d
typ, d = m.append('"[Gmail]/All Mail"', "(\\Seen)", '"22-Sep-2025 15:00:00 +0000"',
                  b"From: ivy@example.org\r\nTo: me@example.org\r\nSubject: new, archived\r\n\r\nninth\r\n")
assert typ == "OK", d
PY
gmail_pair gmf >"$work/f2.out" 2>&1
file_has "delta: the new label and the new message are 2 copies" "$work/f2.out" "messages: [0-9]* on source, 2 copied"
check "delta: the destination follows the changed labels" gmail_cmp gmf folders
gmail_pair gmf >"$work/f3.out" 2>&1
file_has "a second delta copies nothing" "$work/f3.out" "messages: [0-9]* on source, 0 copied"
# a label removed: with --delete2 the copy leaves that folder
gmail_change <<'PY'
typ, d = m.uid("STORE", "2", "-X-GM-LABELS", "(Work)")
assert typ == "OK", d
PY
gmail_pair gmf --delete2 >"$work/f4.out" 2>&1
file_has "delta --delete2: the copy of a removed label is expunged" "$work/f4.out" "deleted on destination: 1,"
check "after the label was removed: the destination equals the labels again" gmail_cmp gmf folders
gmail_pair gmf --gmail-labels nonsense >"$work/bad.out" 2>&1
[ $? -eq 2 ] && grep -q "folders, primary or keywords" "$work/bad.out" && ok "an unknown --gmail-labels policy is a usage error" ||
	{ not_ok "an unknown --gmail-labels policy is a usage error"; sed 's/^/# /' "$work/bad.out"; }

# ---- Gmail to Gmail: a second hoodiecrow, empty, as the destination ---------------------------------
cat >"$work/hc2.json" <<'JSON'
{
 "INBOX": {},
 "": {"separator": "/", "folders": {
  "[Gmail]": {"flags": ["\\Noselect"], "folders": {
   "All Mail": {"special-use": "\\All"},
   "Sent Mail": {"special-use": "\\Sent"},
   "Starred": {"special-use": "\\Flagged"},
   "Important": {"special-use": "\\Important"},
   "Trash": {"special-use": "\\Trash"}
  }}
 }}
}
JSON
up=
start_hoodiecrow hc2 && up=1
hc2_pid=$hc_started port2=$hc_port
[ -n "$up" ] && ok "a second hoodiecrow (the Gmail destination) listens on port $port2" || not_ok "the second hoodiecrow listens"
g2g() {
	"$IMAPFLEET" sync --host1 127.0.0.1 --port1 "$port" --plain1 --user1 testuser --passfile1 "$work/hc.pass" \
		--host2 127.0.0.1 --port2 "$port2" --plain2 --user2 testuser --passfile2 "$work/hc.pass" \
		--gmail1 --gmail2 --state "$STATE_URL" "$@"
}
# Both All Mails read whole: every message by its bytes, with flags, INTERNALDATE and labels. The
# emulator labels a message APPENDed into a \All folder "\All" (Gmail shows no such label): ignored.
cat >"$work/g2gcmp.py" <<'PY'
import collections, hashlib, imaplib, re, sys
def read(port, box):
    m = imaplib.IMAP4("127.0.0.1", int(port))
    m.login("testuser", open(sys.argv[3]).read())
    typ, _ = m.select('"%s"' % box, readonly=True)
    assert typ == "OK", box
    typ, d = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE X-GM-LABELS BODY.PEEK[])")
    out = collections.Counter()
    for item in d:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        flags = tuple(sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split() if f != "\\Recent"))
        date = re.search(r'INTERNALDATE "([^"]+)"', meta).group(1)
        lm = re.search(r"X-GM-LABELS \(([^)]*)\)", meta)
        labels = re.findall(r'"(?:[^"\\]|\\.)*"|[^ ]+', lm.group(1)) if lm else []
        labels = tuple(sorted(l.strip('"') for l in labels if l.strip('"').lower() != "\\all"))
        out[(hashlib.sha256(item[1]).hexdigest()[:16], flags, date, labels)] += 1
    m.logout()
    return out
for box in sys.argv[4:]:
    src, dst = read(sys.argv[1], box), read(sys.argv[2], box)
    if src != dst:
        for k in (src - dst):
            print("missing or different on the destination (%s): %s" % (box, k))
        for k in (dst - src):
            print("extra or different on the destination (%s): %s" % (box, k))
        sys.exit(1)
    print("%s: %d messages equal, with flags, dates and labels" % (box, sum(src.values())))
PY
g2g_same() { python3 "$work/g2gcmp.py" "$port" "$port2" "$work/hc.pass" "[Gmail]/All Mail" "[Gmail]/Trash"; }
g2g >"$work/g1.out" 2>&1 && grep -q "messages: 9 on source, 9 copied" "$work/g1.out" &&
	ok "Gmail to Gmail: each of the 8 All Mail messages copied once, and Trash's" ||
	{ not_ok "Gmail to Gmail: 9 messages copied once"; tail -n 15 "$work/g1.out" | sed 's/^/# /'; }
check "Gmail to Gmail: All Mail and Trash equal, every message with its flags, date and labels" g2g_same
# labels change on the source: one added, one removed
gmail_change <<'PY'
for uid, op, label in (("5", "+X-GM-LABELS", "(Later)"), ("7", "-X-GM-LABELS", "(Work)")):
    typ, d = m.uid("STORE", uid, op, label)
    assert typ == "OK", d
PY
g2g >"$work/g2.out" 2>&1 && grep -q "messages: 9 on source, 0 copied" "$work/g2.out" && grep -q "flags updated: 2" "$work/g2.out" &&
	ok "Gmail to Gmail delta: nothing copied again, the labels of the 2 changed messages set" ||
	{ not_ok "Gmail to Gmail delta: 0 copied, 2 label changes"; tail -n 15 "$work/g2.out" | sed 's/^/# /'; }
check "Gmail to Gmail delta: the destination has the changed labels (one added, one removed)" g2g_same
g2g >"$work/g3.out" 2>&1 && grep -q "messages: 9 on source, 0 copied" "$work/g3.out" && ! grep -q "flags updated" "$work/g3.out" &&
	ok "a second Gmail to Gmail delta changes nothing" || { not_ok "a second delta changes nothing"; tail -n 15 "$work/g3.out" | sed 's/^/# /'; }
grep -q "Gmail to Gmail: All Mail copied once" "$work/g1.out" && ok "the log says labels are set with X-GM-LABELS" ||
	{ not_ok "the log says Gmail to Gmail"; grep -i gmail "$work/g1.out" | head -5 | sed 's/^/# /'; }
