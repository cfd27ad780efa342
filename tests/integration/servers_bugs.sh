#!/bin/sh
# What real Cyrus and Courier servers showed (issue 18), each against the real server:
# - Courier's LSUB lists the unsubscribed parents of a subscription with \Noselect: they are not
#   subscribed, neither read from a Courier source nor on a Courier destination;
# - Courier sends no [UIDNEXT] on SELECT: a delta pass still skips its unchanged folders (STATUS);
# - sync exits 5 (as probe does) when certificate verification fails;
# - STARTTLS (--tls) against an implicit-TLS port fails at once with a hint, not after 120 s;
# - a full Cyrus destination ("NO Over quota", no [OVERQUOTA] code) ends the account at once with
#   one account-level line that says by how much it is short, after what fits was copied; so does a
#   full Courier ("NO [ALERT] You exceeded your mail quota.", no code), its ALERT and the untagged
#   NO it sends after each refused APPEND shown once;
# - after a kill -9, the next run says that it waits for the dead run's lease, and for how long.
# Accounts: courier user23 user24 user32 (2 MB maildir quota while the test runs), cyrus user23 user24
# quotauser (2 MB quota); src quotauser (read).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 22
servers_begin srvbugs
trap 'drop_db; rm -f "$out" "$out".* "$(courier_maildir user32)/maildirsize"' EXIT

# subscribed SIDE USER: the subscribed names, one per line, sorted (LSUB \Noselect left out)
subscribed() {
	imap "$1" "$2" '
import re
names = []
for l in m.lsub("\"\"", "*")[1]:
    if l and b"\\Noselect" not in l:
        names.append(re.match(rb"\(.*?\) (?:NIL|\"[^\"]*\") \"?(.*?)\"?$", l).group(1).decode())
print("\n".join(sorted(names)))'
}
# subscribed_are DESCRIPTION SIDE USER WANT: one TAP point, ok when the subscribed names of USER
# on SIDE, each followed by a space, are WANT.
subscribed_are() {
	_got=$(subscribed "$2" "$3" | tr '\n' ' ')
	if [ "$_got" = "$4" ]; then ok "$1"; else not_ok "$1 (got: $_got)"; fi
}

seed_wipe courier user23 user24
seed_wipe cyrus user23 user24

# A Courier source where only children are subscribed: Real (a folder with mail) and Lone (no
# folder at all) are not.
imap courier user23 '
for f in ("INBOX.Real", "INBOX.Real.Sub", "INBOX.Lone.Child", "INBOX.Plain"):
    m.create(f)
for f in ("INBOX.Real.Sub", "INBOX.Lone.Child", "INBOX.Plain"):
    m.subscribe(f)
m.append("INBOX.Real", None, None, b"From: a@example.org\r\nSubject: real\r\n\r\nbody\r\n")
m.append("INBOX.Plain", None, None, b"From: a@example.org\r\nSubject: plain\r\n\r\nbody\r\n")'
lsub=$(imap courier user23 'print(m.lsub("\"\"", "*")[1])')
case $lsub in *'\\Noselect'*INBOX.Real\"*) ;; *) diag "Courier LSUB no longer flags unsubscribed parents: $lsub" ;; esac

# 1. Courier -> Cyrus: only what is subscribed on Courier is subscribed on Cyrus.
xsync courier user23 cyrus user23 >"$out" 2>&1 || { diag "sync courier user23 -> cyrus user23 failed"; sed 's/^/# /' "$out"; }
subscribed_are "Courier -> Cyrus: the parents Courier's LSUB flags \\Noselect are not subscribed on Cyrus" \
	cyrus user23 "INBOX.Lone.Child INBOX.Plain INBOX.Real.Sub "
check "Courier -> Cyrus: every message and subscription equal" xcmp courier user23 cyrus user23

# 2. A second pass over the unchanged Courier source skips every folder by STATUS, although
#    Courier sends no [UIDNEXT] on SELECT.
xsync courier user23 cyrus user23 >"$out" 2>&1
n=$(sed -n 's/^  folders: *\([0-9]*\) .*/\1/p' "$out")
# (INBOX.Lone exists only as the parent of Lone.Child: nothing to skip there.)
if grep -q "folders: *$n (0 created, $((n - 1)) unchanged" "$out" && [ "${n:-0}" -gt 1 ]; then
	ok "Courier source: a second pass finds all $((n - 1)) real folders unchanged by STATUS (no [UIDNEXT] on SELECT)"
else
	not_ok "Courier source: a second pass finds every folder unchanged by STATUS"; sed 's/^/# /' "$out"
fi
# ... and after a new message only that folder is examined again.
imap courier user23 'm.append("INBOX.Plain", None, None, b"From: b@example.org\r\nSubject: new\r\n\r\nnew\r\n")'
xsync courier user23 cyrus user23 >"$out" 2>&1
if grep -q "unchanged" "$out" && grep -q ", 1 copied" "$out" && grep -q "folders: *$n (0 created, $((n - 2)) unchanged" "$out"; then
	ok "Courier source: after one new message one folder is examined and 1 message copied"
else
	not_ok "Courier source: after one new message one folder is examined and 1 message copied"; sed 's/^/# /' "$out"
fi

# 3. Courier as the destination: Real.Sub is subscribed there, so LSUB flags INBOX.Real \Noselect;
#    when the source subscribes Real too, imapfleet must still send SUBSCRIBE for it.
xsync cyrus user23 courier user24 >"$out" 2>&1 || { diag "sync cyrus user23 -> courier user24 failed"; sed 's/^/# /' "$out"; }
imap cyrus user23 'm.subscribe("INBOX.Real")'
xsync cyrus user23 courier user24 >"$out" 2>&1 || { diag "second sync cyrus -> courier failed"; sed 's/^/# /' "$out"; }
subscribed_are "Cyrus -> Courier: a folder Courier lists \\Noselect in LSUB still gets its subscription" \
	courier user24 "INBOX.Lone.Child INBOX.Plain INBOX.Real INBOX.Real.Sub "
check "Cyrus -> Courier: every message and subscription equal" xcmp cyrus user23 courier user24

# 4. Certificate verification fails: exit 5, like probe.
xsync cyrus user23 cyrus user24 --cafile2 "$LAB_DIR/tls/selfsigned.pem" >"$out" 2>&1 </dev/null
rc=$?
[ "$rc" = 5 ] && ok "sync exits 5 when the destination's certificate does not verify" ||
	{ not_ok "sync exits 5 when the destination's certificate does not verify (exit $rc)"; sed 's/^/# /' "$out"; }
grep -qi "certificate\|verif" "$out" && ok "... and says it is the certificate" ||
	{ not_ok "... and says it is the certificate"; sed 's/^/# /' "$out"; }

# 5. STARTTLS against Cyrus's implicit-TLS port: a fast failure with the hint, exit 5.
t0=$(date +%s)
"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_CYRUS_IMAPS" --user1 user23 --tls1 \
	--passfile1 "$LAB_SECRETS/cyrus/user23" --cafile1 "$LAB_CA" --host2 localhost \
	--port2 "$LAB_CYRUS_IMAPS" --user2 user24 --passfile2 "$LAB_SECRETS/cyrus/user24" \
	--cafile2 "$LAB_CA" --state "$STATE_URL" >"$out" 2>&1 </dev/null
rc=$?
secs=$(($(date +%s) - t0))
[ "$rc" = 5 ] && ok "--tls against an implicit-TLS port exits 5" ||
	{ not_ok "--tls against an implicit-TLS port exits 5 (exit $rc)"; sed 's/^/# /' "$out"; }
grep -q "implicit-TLS" "$out" && grep -q -- "--ssl" "$out" && ok "... saying it is an implicit-TLS port and to use --ssl" ||
	{ not_ok "... saying it is an implicit-TLS port and to use --ssl"; sed 's/^/# /' "$out"; }
# The probe starts after 3 s of silence; the I/O timeout it replaces is 120 s.
[ "$secs" -lt 60 ] && ok "... within $secs s, not after the 120 s I/O timeout" ||
	not_ok "... within 60 s, not after the 120 s I/O timeout (took $secs s)"
# The same port with --ssl works, and STARTTLS on the cleartext port still works.
"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_CYRUS_IMAP" --user1 user23 --tls1 \
	--passfile1 "$LAB_SECRETS/cyrus/user23" --cafile1 "$LAB_CA" --host2 localhost \
	--port2 "$LAB_CYRUS_IMAPS" --user2 user24 --passfile2 "$LAB_SECRETS/cyrus/user24" \
	--cafile2 "$LAB_CA" --justlogin >"$out" 2>&1 </dev/null &&
	ok "STARTTLS on Cyrus's cleartext port still logs in" ||
	{ not_ok "STARTTLS on Cyrus's cleartext port still logs in"; sed 's/^/# /' "$out"; }

# over_quota SIDE USER WHAT: src quotauser synced into a full SIDE USER (2 MB) without state; three
# TAP points: exit 1 with one account-level line that says by how much it is short, no message
# refused one by one after it, what fits copied. The output stays in $out.
over_quota() {
	"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 quotauser \
		--passfile1 "$LAB_SECRETS/src/quotauser" --cafile1 "$LAB_CA" --host2 localhost \
		--port2 "$(port_of "$1")" --user2 "$2" --passfile2 "$LAB_SECRETS/$1/$2" \
		--cafile2 "$LAB_CA" --no-state >"$out" 2>&1 </dev/null
	rc=$?
	[ "$rc" = 1 ] && grep -q "destination over quota: [0-9.]* [KM]B of 2.0 MB used, [0-9.]* [KM]B still to copy: short by [0-9.]* [KM]B" "$out" &&
		ok "$3 ends the account with exit 1, saying by how much it is short" ||
		{ not_ok "$3 ends the account with exit 1, saying by how much it is short (exit $rc)"; sed 's/^/# /' "$out"; }
	n=$(grep -ci "over quota" "$out")
	[ "$n" -le 2 ] && ! grep -q "not copied" "$out" &&
		ok "... in one account-level line (and its server text), no message refused one by one after it" ||
		{ not_ok "... in one account-level line, no message refused one by one after it ($n lines)"; sed 's/^/# /' "$out" | head -n 20; }
	used=$(imap "$1" "$2" 'print(m.getquotaroot("INBOX")[1][1][0].decode())')
	case $used in *"STORAGE 1"[0-9][0-9][0-9]" 2048"* | *"STORAGE 20"[0-9][0-9]" 2048"*) ok "... after copying what fits ($used)" ;;
	*) not_ok "... after copying what fits (quota: $used)" ;; esac
}

# 6. Cyrus over quota: "NO Over quota" without the code is recognised; one account-level line.
seed_wipe cyrus quotauser
over_quota cyrus quotauser "a full Cyrus destination (NO Over quota, no code)"

# 6b. Courier over quota: a maildir quota of 2 MB (maildirmake -q writes the same maildirsize); Courier
#     answers "NO [ALERT] You exceeded your mail quota." without [OVERQUOTA]: the same one line,
#     with the figure (Courier has QUOTA), and its ALERT once, not once per refused APPEND.
seed_wipe courier user32
md=$(courier_maildir user32)
if [ -d "$md" ]; then
	printf '2097152S\n' >"$md/maildirsize" && chown --reference="$md" "$md/maildirsize" || diag "could not set Courier's quota"
else
	diag "no Maildir for courier user32 at $md"
fi
over_quota courier user32 "a full Courier destination (NO [ALERT] You exceeded your mail quota, no code)"
n=$(grep -c "You exceeded your mail quota" "$out")
[ "$n" = 1 ] && ok "... Courier's ALERT shown once" ||
	{ not_ok "... Courier's ALERT shown once (shown $n times)"; sed 's/^/# /' "$out" | head -n 20; }
# Courier follows each refused APPEND with "* NO Error in IMAP command received by server.": once.
n=$(grep -c "server says NO Error in IMAP command" "$out")
[ "$n" -le 1 ] && ok "... and its untagged NO after each refused APPEND at most once ($n)" ||
	{ not_ok "... and its untagged NO after each refused APPEND at most once (shown $n times)"; sed 's/^/# /' "$out" | head -n 20; }
rm -f "$md/maildirsize"

# 7. kill -9 mid-run (the after-append failpoint kills the process like kill -9), then run again:
#    the second run says that it waits for the dead run's lease, and how long, not silently.
seed_wipe cyrus user24
printf 'host1,port1,user1,passfile1,host2,port2,user2,passfile2\nlocalhost,%s,user23,%s,localhost,%s,user24,%s\n' \
	"$LAB_COURIER_IMAPS" "$LAB_SECRETS/courier/user23" "$LAB_CYRUS_IMAPS" "$LAB_SECRETS/cyrus/user24" >"$out.csv"
IMAPFLEET_FAILPOINT=after-append "$IMAPFLEET" run "$out.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" \
	--cafile2 "$LAB_CA" --no-progress >"$out" 2>&1 </dev/null
[ $? = 137 ] || { diag "the failpoint did not kill the first run"; sed 's/^/# /' "$out"; }
timeout 120 "$IMAPFLEET" run "$out.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	--no-progress >"$out" 2>&1 </dev/null
rc=$?
# the line, before the account is taken over
first=$(sed -n '/attempt 2 of /q; /1 account is still leased by an imapfleet that stopped without releasing it (pid [0-9]*.*, killed?): waiting [0-9]* s for the lease to expire/p' "$out")
[ -n "$first" ] && ok "after kill -9 the next run says it waits for the dead run's lease and how long, before taking it over" ||
	{ not_ok "after kill -9 the next run says it waits for the dead run's lease and how long, before taking it over"; sed 's/^/# /' "$out" | head -n 5; }
[ "$rc" = 0 ] && check "... then takes the account over and ends it exact" xcmp courier user23 cyrus user24 ||
	{ not_ok "... then takes the account over and ends it exact (exit $rc)"; tail -n 5 "$out" | sed 's/^/# /'; }
exit 0
