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
. "${top_srcdir:-.}/tests/integration/servers_lib.sh"
servers_require
plan 20
servers_begin servers
add_accounts xservers xservers2

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
seed_wipe cyrus user21 user22
seed_wipe courier user21 user22
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
