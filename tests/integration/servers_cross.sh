#!/bin/sh
# Real servers nobody on this team wrote: Cyrus IMAP 3.6 (INBOX. prefix, '.' separator,
# SPECIAL-USE, munge8bit) and Courier IMAP 5.0 (INBOX. prefix, '.', no SPECIAL-USE, no [UIDNEXT],
# \Noselect entries in LSUB), run by the lab beside its Dovecots (scripts/lab/servers.sh).
# imapfleet sync copies an account between every pair of them in both directions: every message's
# bytes, flags and INTERNALDATE and every subscription arrive (mailcmp), and a second pass copies
# nothing.
# Accounts: src user21 (only read); cyrus user21 user22; courier user21 user22; dst xservers
# and xservers2 (added here, used by no other test).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
[ -n "${LAB_CYRUS_IMAPS:-}" ] && [ -n "${LAB_COURIER_IMAPS:-}" ] ||
	skip_all "Cyrus and Courier are not in the lab: ${LAB_SERVERS_WHY:-scripts/lab/servers.sh install, then scripts/lab.sh up}"
plan 20
fresh_db servers
out=$(mktemp)
trap 'drop_db; rm -f "$out"' EXIT
SEED="python3 ${top_srcdir:-.}/scripts/lab/seed.py"
for _a in xservers xservers2; do
	"${top_srcdir:-.}/scripts/lab.sh" add-account $_a >/dev/null 2>&1 || diag "add-account $_a failed"
done

port_of() { # port_of SIDE: the implicit-TLS port of a lab server
	case $1 in
	src) echo "$LAB_SRC_IMAPS" ;; dst) echo "$LAB_DST_IMAPS" ;;
	cyrus) echo "$LAB_CYRUS_IMAPS" ;; courier) echo "$LAB_COURIER_IMAPS" ;;
	esac
}

# xsync SIDE1 USER1 SIDE2 USER2 [options]
xsync() {
	_s1=$1 _u1=$2 _s2=$3 _u2=$4; shift 4
	"$IMAPFLEET" sync --host1 localhost --port1 "$(port_of "$_s1")" --user1 "$_u1" \
		--passfile1 "$LAB_SECRETS/$_s1/$_u1" --cafile1 "$LAB_CA" --host2 localhost \
		--port2 "$(port_of "$_s2")" --user2 "$_u2" --passfile2 "$LAB_SECRETS/$_s2/$_u2" \
		--cafile2 "$LAB_CA" --state "$STATE_URL" "$@"
}

# xcmp SIDE1 USER1 SIDE2 USER2: every message, flag, date and subscription equal
xcmp() {
	$MAILCMP --cafile "$LAB_CA" --check-subscriptions \
		--src-host localhost --src-port "$(port_of "$1")" --src-user "$2" --src-passfile "$LAB_SECRETS/$1/$2" \
		--dst-host localhost --dst-port "$(port_of "$3")" --dst-user "$4" --dst-passfile "$LAB_SECRETS/$3/$4"
}

# pair SIDE1 USER1 SIDE2 USER2: a first pass, the comparison, a second pass that copies nothing.
pair() {
	_what="$1 $2 -> $3 $4"
	if xsync "$@" >"$out" 2>&1 && grep -q "result:   complete" "$out"; then
		ok "$_what: sync exits 0 and reports the account complete"
	else
		not_ok "$_what: sync exits 0 and reports the account complete"; sed 's/^/# /' "$out"
	fi
	check "$_what: every message (bytes, flags, INTERNALDATE) and subscription equal" xcmp "$@"
	xsync "$@" >"$out" 2>&1
	if grep -q "messages: [0-9]* on source, 0 copied" "$out"; then
		ok "$_what: a second pass copies nothing"
	else
		not_ok "$_what: a second pass copies nothing"; sed 's/^/# /' "$out"
	fi
}

# Empty the destinations first (a rerun starts from scratch).
$SEED --wipe cyrus user21 user22 >/dev/null 2>&1 || diag "could not wipe cyrus"
$SEED --wipe courier user21 user22 >/dev/null 2>&1 || diag "could not wipe courier"
wipe_dst xservers xservers2 || diag "could not wipe dst xservers"

# The layouts the lab promises.
layout() { # layout SIDE USER: capabilities and namespace as imaptool shows them
	python3 "${top_srcdir:-.}/tests/tools/imaptool.py" caps --cafile "$LAB_CA" --host localhost \
		--port "$(port_of "$1")" --user "$2" --passfile "$LAB_SECRETS/$1/$2" 2>&1 | grep -v '^folder:'
}
l=$(layout cyrus user21)
if printf '%s\n' "$l" | grep -q " SPECIAL-USE " && printf '%s\n' "$l" | grep -q "namespace: prefix 'INBOX.' separator '.'"; then
	ok "Cyrus: SPECIAL-USE, personal namespace INBOX. with '.'"
else
	not_ok "Cyrus: SPECIAL-USE, personal namespace INBOX. with '.'"; printf '%s\n' "$l" | sed 's/^/# /'
fi
l=$(layout courier user21)
if ! printf '%s\n' "$l" | grep -q "SPECIAL-USE" && printf '%s\n' "$l" | grep -q "namespace: prefix 'INBOX.' separator '.'"; then
	ok "Courier: no SPECIAL-USE, personal namespace INBOX. with '.'"
else
	not_ok "Courier: no SPECIAL-USE, personal namespace INBOX. with '.'"; printf '%s\n' "$l" | sed 's/^/# /'
fi

pair src user21 cyrus user21        # Dovecot -> Cyrus
pair cyrus user21 courier user21    # Cyrus -> Courier
pair courier user21 cyrus user22    # Courier -> Cyrus
pair courier user21 dst xservers    # Courier -> Dovecot
pair src user21 courier user22      # Dovecot -> Courier
pair cyrus user22 dst xservers2     # Cyrus -> Dovecot
exit 0
