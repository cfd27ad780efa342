# tests/integration/servers_lib.sh: helpers for the tests that run across the lab's servers
# (Dovecot src and dst, Cyrus, Courier); sourced after tap.sh and lab_require. Needs STATE_URL
# for xsync (fresh_db).

# servers_require: skip the whole test when Cyrus and Courier are not in the lab.
servers_require() {
	[ -n "${LAB_CYRUS_IMAPS:-}" ] && [ -n "${LAB_COURIER_IMAPS:-}" ] ||
		skip_all "Cyrus and Courier are not in the lab: ${LAB_SERVERS_WHY:-scripts/lab/servers.sh install, then scripts/lab.sh up}"
}

SEED="python3 ${top_srcdir:-.}/scripts/lab/seed.py"

# servers_begin NAME: a fresh database for the test (fresh_db NAME) and a temporary file in $out;
# at exit the database is dropped and $out removed with the files named after it ("$out.csv" ...).
servers_begin() {
	fresh_db "$1"
	out=$(mktemp)
	trap 'drop_db; rm -f "$out" "$out".*' EXIT
}

# add_accounts USER...: lab accounts created for this test (a diagnostic for each that fails).
add_accounts() {
	for _a in "$@"; do
		"${top_srcdir:-.}/scripts/lab.sh" add-account "$_a" >/dev/null 2>&1 || diag "add-account $_a failed"
	done
}

# seed_wipe SIDE USER...: those accounts of a lab server emptied (a diagnostic when that fails).
seed_wipe() {
	$SEED --wipe "$@" >/dev/null 2>&1 || diag "could not wipe $*"
}

# port_of SIDE: the implicit-TLS port of a lab server
port_of() {
	case $1 in
	src) echo "$LAB_SRC_IMAPS" ;; dst) echo "$LAB_DST_IMAPS" ;;
	cyrus) echo "$LAB_CYRUS_IMAPS" ;; courier) echo "$LAB_COURIER_IMAPS" ;;
	esac
}

# xsync SIDE1 USER1 SIDE2 USER2 [options]: imapfleet sync between two lab servers
xsync() {
	_s1=$1 _u1=$2 _s2=$3 _u2=$4; shift 4
	"$IMAPFLEET" sync --host1 localhost --port1 "$(port_of "$_s1")" --user1 "$_u1" \
		--passfile1 "$LAB_SECRETS/$_s1/$_u1" --cafile1 "$LAB_CA" --host2 localhost \
		--port2 "$(port_of "$_s2")" --user2 "$_u2" --passfile2 "$LAB_SECRETS/$_s2/$_u2" \
		--cafile2 "$LAB_CA" --state "$STATE_URL" "$@"
}

# xcmp SIDE1 USER1 SIDE2 USER2 [mailcmp options]: every message, flag, date and subscription equal
xcmp() {
	_s1=$1 _u1=$2 _s2=$3 _u2=$4; shift 4
	$MAILCMP --cafile "$LAB_CA" --check-subscriptions \
		--src-host localhost --src-port "$(port_of "$_s1")" --src-user "$_u1" --src-passfile "$LAB_SECRETS/$_s1/$_u1" \
		--dst-host localhost --dst-port "$(port_of "$_s2")" --dst-user "$_u2" --dst-passfile "$LAB_SECRETS/$_s2/$_u2" "$@"
}

# courier_maildir USER: the Maildir of USER on the lab's Courier (scripts/lab/servers.sh)
courier_maildir() { echo "$LAB_DIR/run/mail/courier/$1/Maildir"; }

# imap SIDE USER PYTHON: run PYTHON with m, a logged-in imaplib connection
imap() {
	python3 - "$(port_of "$1")" "$LAB_SECRETS/$1/$2" "$2" "$3" "$LAB_CA" <<'PY'
import imaplib, ssl, sys
port, pwfile, user, code, ca = sys.argv[1:6]
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwfile).read().strip())
exec(code)
m.logout()
PY
}

# subjects SIDE USER FOLDER: the Subject of every message in FOLDER, sorted, one a line
# ("NONE" when the folder does not exist)
subjects() {
	FOLDER=$3 imap "$1" "$2" '
import email, os
typ, d = m.select(chr(34) + os.environ["FOLDER"] + chr(34), readonly=True)
if typ != "OK":
    print("NONE")
else:
    typ, d = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])") if int(d[0]) else ("OK", [])
    print("\n".join(sorted(email.message_from_bytes(x[1])["Subject"] for x in d if isinstance(x, tuple))))'
}

# folders SIDE USER: the selectable folder names, sorted, one a line
folders() {
	imap "$1" "$2" '
import re
for n in sorted(re.match(rb"\((.*?)\) (?:NIL|\"[^\"]*\") \"?(.*?)\"?$", l).group(2).decode()
                for l in m.list()[1] if l and b"\\Noselect" not in l):
    print(n)'
}
