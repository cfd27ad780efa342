#!/bin/sh
# Folder rules against the lab's Dovecot, the same in preflight, run and sync: a Courier-style
# source ('.' and INBOX.) renamed by --f1f2 and --regextrans2 with parents created; the whole tree
# under one folder (--subfolder2); folders that differ only in case never merged on a destination
# that ignores case (--casefold2); every message compared with mailcmp; a second pass copies
# nothing; a bad rule is a usage error naming it.
# Accounts: legacy user26 and user27 (read only); frsrc on src, fr1..fr3 on dst (added here).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 15
fresh_db frules
work=$(mktemp -d "${TMPDIR:-/tmp}/folder-rules.XXXXXX")
trap 'drop_db; rm -rf "$work"' EXIT

for a in frsrc fr1 fr2 fr3; do
	LAB_DIR=$_labdir "${top_srcdir:-.}/scripts/lab.sh" add-account $a >/dev/null 2>&1 ||
		diag "could not add account $a"
done
wipe_dst fr1 fr2 fr3 || diag "could not wipe"

# frsrc: "Reports", "REPORTS" and "reports/2019" (only case tells them apart), and a Sent folder.
python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/frsrc" "$LAB_CA" <<'PY' || diag "could not seed frsrc"
import imaplib, ssl, sys, time
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[3]))
m.login("frsrc", open(sys.argv[2]).read().strip())
typ, data = m.list('""', '*')
for line in sorted((l for l in data if l), key=len, reverse=True):
    name = line.decode().rsplit(' "/" ', 1)[-1]
    if name.strip('"').upper() != "INBOX":
        m.delete(name)
if int(m.select("INBOX")[1][0]):
    m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
    m.expunge()
for i, folder in enumerate(["INBOX", "Reports", "REPORTS", "reports/2019", "Sent"]):
    if folder != "INBOX":
        m.create('"%s"' % folder)
        m.subscribe('"%s"' % folder)
    for k in range(3):
        body = ("From: case@example.org\r\nTo: frsrc@example.org\r\nSubject: %s %d\r\n"
                "Date: Tue, 01 Dec 2026 10:0%d:00 +0000\r\n\r\nfolder %s message %d\r\n"
                % (folder, k, k, folder, k)).encode()
        m.append('"%s"' % folder, "(\\Seen)" if k else "(\\Flagged $Case)",
                 imaplib.Time2Internaldate(1764000000 + 3600 * i + k), body)
m.logout()
PY

legacy_pair() { # legacy user -> dst account, extra options
	_u=$1 _d=$2; shift 2
	"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_LEGACY_IMAPS" --user1 "$_u" \
		--passfile1 "$LAB_SECRETS/legacy/$_u" --cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" \
		--user2 "$_d" --passfile2 "$LAB_SECRETS/dst/$_d" --cafile2 "$LAB_CA" "$@"
}
dst_folders() { # dst account: its folder names, one a line
	python3 - "$LAB_DST_IMAPS" "$1" "$LAB_SECRETS/dst/$1" "$LAB_CA" <<'PY'
import imaplib, re, ssl, sys
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[4]))
m.login(sys.argv[2], open(sys.argv[3]).read().strip())
for l in m.list('""', '*')[1]:
    print(re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', l).group(1).decode().strip('"'))
PY
}

# 1. run: Courier-style legacy user26 -> fr1 with --f1f2 and two --regextrans2 rules in order
rules="--f1f2 INBOX.Projects=Work --regextrans2 's,^Archive/(.*)\$,Old/\\1,' --regextrans2 's/ü/ue/g'"
printf 'host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2,options\n' >"$work/a.csv"
printf 'localhost,%s,user26,%s,ssl,localhost,%s,fr1,%s,ssl,"%s"\n' "$LAB_LEGACY_IMAPS" "$LAB_SECRETS/legacy/user26" \
	"$LAB_DST_IMAPS" "$LAB_SECRETS/dst/fr1" "$rules" >>"$work/a.csv"
"$IMAPFLEET" run "$work/a.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	>"$work/run.out" 2>&1 && ok "run with --f1f2 and --regextrans2 rules exits 0" ||
	{ not_ok "run with --f1f2 and --regextrans2 rules exits 0"; tail -n 20 "$work/run.out" | sed 's/^/# /'; }
check "legacy user26 equals fr1 message by message under the renamed names" \
	same_mail "$LAB_LEGACY_IMAPS" user26 fr1 --map Projects=Work --map Archive/2019=Old/2019 \
	--map Archive/2020=Old/2020 --map Archive/Empty=Old/Empty --map "$(printf 'Entw\303\274rfe=Entwuerfe')" \
	--check-subscriptions
dst_folders fr1 >"$work/fr1.folders"
grep -qx "Old" "$work/fr1.folders" && ok "the parent level 'Old' that the rules need was created" ||
	{ not_ok "the parent level 'Old' was created"; sed 's/^/# /' "$work/fr1.folders"; }
! grep -qx "Archive/2019" "$work/fr1.folders" && ! grep -qx "Archive/2020" "$work/fr1.folders" &&
	grep -qx "Work" "$work/fr1.folders" && grep -qx "Projects/Alpha" "$work/fr1.folders" &&
	ok "renamed folders exist only under their new names; --f1f2 leaves subfolders as they are" ||
	{ not_ok "renamed folders exist only under their new names"; sed 's/^/# /' "$work/fr1.folders"; }
"$IMAPFLEET" run "$work/a.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	>"$work/run2.out" 2>&1
grep -q "copied 0 messages" "$work/run2.out" && ok "a second run with the same rules copies nothing" ||
	{ not_ok "a second run with the same rules copies nothing"; tail -n 5 "$work/run2.out" | sed 's/^/# /'; }

# 2. sync: --subfolder2 puts the whole tree under one folder, INBOX included
legacy_pair user27 fr2 --subfolder2 Migrated --state "$STATE_URL" >"$work/sub.out" 2>&1 &&
	ok "sync --subfolder2 exits 0" || { not_ok "sync --subfolder2 exits 0"; tail -n 20 "$work/sub.out" | sed 's/^/# /'; }
check "legacy user27 equals fr2 under Migrated/ message by message" \
	same_mail "$LAB_LEGACY_IMAPS" user27 fr2 --dst-subfolder Migrated
n=$(python3 - "$LAB_DST_IMAPS" fr2 "$LAB_SECRETS/dst/fr2" "$LAB_CA" <<'PY'
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[4]))
m.login(sys.argv[2], open(sys.argv[3]).read().strip())
print(int(m.select("INBOX", readonly=True)[1][0]))
PY
)
[ "$n" = 0 ] && ok "fr2's own INBOX stays empty (the source INBOX went to Migrated)" || not_ok "fr2's INBOX holds $n messages"

# 3. case: a destination that ignores case never gets two source folders merged into one
src_pair() {
	_d=$1; shift
	"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 frsrc --passfile1 "$LAB_SECRETS/src/frsrc" \
		--cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" --user2 "$_d" \
		--passfile2 "$LAB_SECRETS/dst/$_d" --cafile2 "$LAB_CA" "$@"
}
printf 'host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2,options\n' >"$work/c.csv"
printf 'localhost,%s,frsrc,%s,ssl,localhost,%s,fr3,%s,ssl,--casefold2\n' "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/frsrc" \
	"$LAB_DST_IMAPS" "$LAB_SECRETS/dst/fr3" >>"$work/c.csv"
"$IMAPFLEET" preflight "$work/c.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" >"$work/pf.out" 2>&1
grep -q "Reports' -> 'Reports (2)'.*differs only in case" "$work/pf.out" &&
	ok "preflight shows the case collision and the name it gets" ||
	{ not_ok "preflight shows the case collision"; sed 's/^/# /' "$work/pf.out" | tail -n 20; }
src_pair fr3 --casefold2 --state "$STATE_URL" >"$work/case.out" 2>&1 && ok "sync --casefold2 exits 0" ||
	{ not_ok "sync --casefold2 exits 0"; tail -n 20 "$work/case.out" | sed 's/^/# /'; }
grep -q "Reports -> Reports (2) (.*differs only in case" "$work/case.out" && ok "sync warns about the renamed folder" ||
	{ not_ok "sync warns about the renamed folder"; sed 's/^/# /' "$work/case.out" | tail -n 20; }
check "frsrc equals fr3 message by message, 'Reports' as 'Reports (2)'" \
	same_mail "$LAB_SRC_IMAPS" frsrc fr3 --map "Reports=Reports (2)" --check-subscriptions
src_pair fr3 --casefold2 --state "$STATE_URL" >"$work/case2.out" 2>&1
grep -q "messages: [0-9]* on source, 0 copied" "$work/case2.out" && ok "a second sync --casefold2 copies nothing" ||
	{ not_ok "a second sync --casefold2 copies nothing"; sed 's/^/# /' "$work/case2.out" | tail -n 10; }

# 4. a bad rule is a usage error that names it, before anything is copied
src_pair fr3 --regextrans2 's/(x/y/' --state "$STATE_URL" >"$work/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "s/(x/y/" "$work/bad.out" && ok "sync with a bad --regextrans2 exits 2 naming the rule" ||
	{ not_ok "sync with a bad --regextrans2 exits 2 naming the rule (rc $rc)"; sed 's/^/# /' "$work/bad.out"; }
"$IMAPFLEET" run "$work/c.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--regextrans2 's/a/b/e' >"$work/bad2.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "code evaluation" "$work/bad2.out" && ok "run refuses the e flag (code evaluation) with exit 2" ||
	{ not_ok "run refuses the e flag with exit 2 (rc $rc)"; sed 's/^/# /' "$work/bad2.out"; }
