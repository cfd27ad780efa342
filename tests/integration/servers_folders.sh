#!/bin/sh
# Folder mapping against real servers (issue 18, items 2 and 3):
# - a \Sent SPECIAL-USE folder named Gesendet (or Versendet: the other LIST order) beside a
#   plain Sent, on Cyrus: the two never end in one destination folder, on the first pass or on
#   later ones (when the destination's Sent exists and Dovecot lists it \Sent);
# - a folder Inbox below INBOX (INBOX.Inbox on Courier, INBOX.inbox on Cyrus) is never merged
#   into INBOX on a destination without the INBOX. prefix: it gets a name of its own, preflight
#   says so; on Cyrus it stays INBOX.Inbox;
# - --dry on a first migration (item 4), to Courier and to Dovecot: no folder fails because it does
#   not exist yet, every folder and message is counted ("would be created", "would be copied"),
#   exit 0, and nothing changes on the destination; on a later pass it reads the existing folders
#   (EXAMINE) and would copy only what is new.
# Accounts: cyrus user25 user26 user27 user28; courier user25 user26; dst xfolders1..xfolders5
# (added here, used by no other test).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 25
servers_begin srvfolders
add_accounts xfolders1 xfolders2 xfolders3 xfolders4 xfolders5
wipe_dst xfolders1 xfolders2 xfolders3 xfolders4 xfolders5 || diag "could not wipe the dst accounts"
seed_wipe cyrus user25 user26 user27 user28
seed_wipe courier user25 user26

# put SIDE USER FOLDER SUBJECT...: one message per subject into FOLDER
put() {
	_s=$1 _u=$2 _f=$3; shift 3
	SUBJECTS="$*" FOLDER=$_f imap "$_s" "$_u" '
import os
for s in os.environ["SUBJECTS"].split():
    m.append(os.environ["FOLDER"], None, None,
             ("From: a@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n" % (s, s, s)).encode())'
}
lines() { tr '\n' ' ' | sed 's/ $//'; }

# ---- 2. Gesendet (\Sent) and Sent --------------------------------------------------------------
# user25: the \Sent folder sorts before Sent; user26: after it.
n=0
for case in "user25 Gesendet xfolders1" "user26 Versendet xfolders2"; do
	set -- $case
	u=$1 special=$2 d=$3
	n=$((n + 1))
	imap cyrus "$u" 'print(m._simple_command("CREATE", "INBOX.'"$special"'", "(USE (\\Sent))"))' >/dev/null
	imap cyrus "$u" 'm.create("INBOX.Sent")'
	put cyrus "$u" "INBOX.$special" "s$n-role-1" "s$n-role-2" "s$n-role-3"
	put cyrus "$u" INBOX.Sent "s$n-plain-1" "s$n-plain-2"
	put cyrus "$u" INBOX "s$n-inbox"
	role=$(imap cyrus "$u" 'print(m.list()[1])')
	case $role in *'\\Sent) "." INBOX.'"$special"*) ;; *) diag "Cyrus did not keep \\Sent on INBOX.$special: $role" ;; esac
	placed=""
	for pass in 1 2 3; do
		xsync cyrus "$u" dst "$d" >"$out" 2>&1 || { diag "pass $pass failed"; sed 's/^/# /' "$out"; }
		[ $pass = 2 ] && second=$(cat "$out")
		got="$(subjects dst "$d" Sent | lines) / $(subjects dst "$d" "$special" | lines) / $(folders dst "$d" | lines)"
		[ -n "$placed" ] && [ "$got" != "$placed" ] && placed="changed on pass $pass: $got" && break
		placed=$got
	done
	want="s$n-plain-1 s$n-plain-2 / s$n-role-1 s$n-role-2 s$n-role-3 / $(printf '%s\n' "$special" INBOX Sent | LC_ALL=C sort | lines)"
	[ "$placed" = "$want" ] &&
		ok "Cyrus $special (\\Sent) and Sent: each its own destination folder, the same on 3 passes" ||
		not_ok "Cyrus $special (\\Sent) and Sent: each its own destination folder, the same on 3 passes (got: $placed; want: $want)"
	case $second in *"messages: 6 on source, 0 copied"*) ok "... and a second pass copies nothing" ;;
	*) not_ok "... and a second pass copies nothing"; printf '%s\n' "$second" | sed 's/^/# /' ;; esac
	check "... every message, flag, date and subscription equal" xcmp cyrus "$u" dst "$d"
done

# ---- 3. Inbox below INBOX ----------------------------------------------------------------------
n=0
for case in "courier user25 INBOX.Inbox xfolders3" "cyrus user27 INBOX.inbox xfolders4"; do
	set -- $case
	s=$1 u=$2 inner=$3 d=$4 base=${3#INBOX.}
	n=$((n + 1))
	imap "$s" "$u" 'm.create("'"$inner"'"); m.subscribe("'"$inner"'")'
	put "$s" "$u" "$inner" "i$n-inner-1" "i$n-inner-2"
	put "$s" "$u" INBOX "i$n-real"
	printf 'host1,port1,user1,passfile1,cafile1,host2,port2,user2,passfile2,cafile2\nlocalhost,%s,%s,%s,%s,localhost,%s,%s,%s,%s\n' \
		"$(port_of "$s")" "$u" "$LAB_SECRETS/$s/$u" "$LAB_CA" "$LAB_DST_IMAPS" "$d" "$LAB_SECRETS/dst/$d" "$LAB_CA" >"$out.csv"
	"$IMAPFLEET" preflight "$out.csv" --out "$out.pf.csv" >"$out" 2>&1
	grep -q "warning: folder '$inner' -> '$base (2)': .*INBOX" "$out" &&
		ok "$s $inner: preflight warns that it would be INBOX and names the folder it goes to" ||
		{ not_ok "$s $inner: preflight warns that it would be INBOX and names the folder it goes to"; sed 's/^/# /' "$out"; }
	xsync "$s" "$u" dst "$d" >"$out" 2>&1 || { diag "sync failed"; sed 's/^/# /' "$out"; }
	got="$(subjects dst "$d" INBOX | lines) / $(subjects dst "$d" "$base (2)" | lines)"
	[ "$got" = "i$n-real / i$n-inner-1 i$n-inner-2" ] &&
		ok "$s $inner -> Dovecot: INBOX holds only INBOX's mail, '$base (2)' the other" ||
		{ not_ok "$s $inner -> Dovecot: INBOX holds only INBOX's mail, '$base (2)' the other (got: $got)"; sed 's/^/# /' "$out"; }
	grep -q "$inner -> $base (2) (.*INBOX" "$out" && ok "... and the sync log says why it was renamed" ||
		{ not_ok "... and the sync log says why it was renamed"; sed 's/^/# /' "$out"; }
	xsync "$s" "$u" dst "$d" >"$out" 2>&1
	grep -q "messages: 3 on source, 0 copied" "$out" && ok "... a second pass copies nothing" ||
		{ not_ok "... a second pass copies nothing"; sed 's/^/# /' "$out"; }
	check "... every message, flag, date and subscription equal ($base as '$base (2)')" \
		xcmp "$s" "$u" dst "$d" --map "$base=$base (2)"
done
# Between Courier and Cyrus INBOX.Inbox is a folder of its own: kept as it is.
xsync courier user25 cyrus user28 >"$out" 2>&1 || { diag "sync courier -> cyrus failed"; sed 's/^/# /' "$out"; }
got="$(subjects cyrus user28 INBOX | lines) / $(subjects cyrus user28 INBOX.Inbox | lines)"
[ "$got" = "i1-real / i1-inner-1 i1-inner-2" ] &&
	ok "Courier INBOX.Inbox -> Cyrus: kept as INBOX.Inbox, INBOX apart" ||
	{ not_ok "Courier INBOX.Inbox -> Cyrus: kept as INBOX.Inbox, INBOX apart (got: $got)"; sed 's/^/# /' "$out"; }
check "... every message, flag, date and subscription equal" xcmp courier user25 cyrus user28

# ---- 4. --dry on a first migration -------------------------------------------------------------
# snapshot SIDE USER: every folder with MESSAGES UIDNEXT UIDVALIDITY (and HIGHESTMODSEQ where
# offered), and the subscriptions: anything written changes it.
snapshot() {
	imap "$1" "$2" '
import re
for l in sorted(x for x in m.list()[1] if x):
    n = re.match(rb"\((.*?)\) (?:NIL|\"[^\"]*\") (.*)$", l).group(2).decode()
    if b"\\Noselect" in l:
        print(n, "noselect"); continue
    st = m.status(n, "(MESSAGES UIDNEXT UIDVALIDITY)")[1][0].decode()
    print(st, m.status(n, "(HIGHESTMODSEQ)")[1][0].decode() if "CONDSTORE" in m.capabilities else "")
print(sorted(x for x in m.lsub()[1] if x))'
}
imap cyrus user26 'm.create("INBOX.Projects"); m.create("INBOX.Projects.Alpha")'
put cyrus user26 INBOX.Projects.Alpha "d-alpha-1"
nsrc=7 # user26: INBOX 1, Sent 2, Versendet 3, Projects.Alpha 1
for d in "courier user26" "dst xfolders5"; do
	set -- $d
	before=$(snapshot "$1" "$2")
	xsync cyrus user26 "$1" "$2" --dry >"$out" 2>&1
	rc=$?
	[ "$rc" = 0 ] && grep -q "folders: *5 (4 would be created, 0 unchanged, 0 left out, 0 failed)" "$out" &&
		grep -q "messages: $nsrc on source, $nsrc would be copied" "$out" && ! grep -q "failed:" "$out" &&
		ok "Cyrus -> $1: --dry on a first migration exits 0, every folder would be created and all $nsrc messages would be copied" ||
		{ not_ok "Cyrus -> $1: --dry on a first migration exits 0, every folder would be created and all $nsrc messages would be copied (exit $rc)"; sed 's/^/# /' "$out"; }
	after=$(snapshot "$1" "$2")
	[ "$before" = "$after" ] && ok "... and changes nothing on the destination" ||
		{ not_ok "... and changes nothing on the destination"; diag "before: $before"; diag "after: $after"; }
done
# After a real pass and one new message, --dry EXAMINEs the folders and would copy that one only.
xsync cyrus user26 courier user26 >"$out" 2>&1 || { diag "sync cyrus -> courier failed"; sed 's/^/# /' "$out"; }
check "Cyrus -> Courier after --dry: a real pass makes every message, flag, date and subscription equal" \
	xcmp cyrus user26 courier user26
put cyrus user26 INBOX.Sent "d-new"
before=$(snapshot courier user26)
xsync cyrus user26 courier user26 --dry >"$out" 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q "folders: *5 (0 would be created" "$out" && grep -q ", 1 would be copied" "$out" &&
	ok "Cyrus -> Courier: --dry after a pass would copy only the new message (exit 0)" ||
	{ not_ok "Cyrus -> Courier: --dry after a pass would copy only the new message (exit $rc)"; sed 's/^/# /' "$out"; }
[ "$before" = "$(snapshot courier user26)" ] && ok "... and changes nothing on the destination" ||
	not_ok "... and changes nothing on the destination"
exit 0
