# tests/integration/tap.sh: tiny TAP helpers for shell integration tests (sourced).
# Each test script prints a plan, then one "ok"/"not ok" line per assertion.
_tap_n=0
_tap_failed=0
plan() { echo "1..$1"; }
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
diag() { echo "# $*" | sed '2,$s/^/# /'; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
# check DESCRIPTION COMMAND...: ok when the command exits 0; its output is shown as diagnostics otherwise.
check() {
	_desc=$1; shift
	if _out=$("$@" 2>&1); then ok "$_desc"; else not_ok "$_desc"; printf '%s\n' "$_out" | tail -n 30 | sed 's/^/# /'; fi
}
# The lab's connection details, written by scripts/lab.sh up.
lab_require() {
	_labdir=${LAB_DIR:-${top_srcdir:-.}/.lab}
	[ -f "$_labdir/lab.env" ] || skip_all "the lab is not running (scripts/lab.sh up)"
	. "$_labdir/lab.env"
}
IMAPFLEET=${top_builddir:-.}/imapfleet

# ---- lab helpers --------------------------------------------------------------------------------
MAILCMP="python3 ${top_srcdir:-.}/tests/tools/mailcmp.py"

# fresh_db NAME: a private database for one test; sets STATE_URL; dropped by drop_db.
fresh_db() {
	_db="t_$1_$$"
	psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $_db" -c "create database $_db owner imapfleet" >/dev/null 2>&1
	STATE_URL="${LAB_PG_URL%/imapfleet}/$_db"
}
drop_db() { psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $_db with (force)" >/dev/null 2>&1 || true; }

# wipe_dst USER...: empties destination accounts (every folder but INBOX deleted, INBOX expunged).
wipe_dst() {
	for _u in "$@"; do
		python3 - "$LAB_DST_IMAPS" "$_u" "$LAB_SECRETS/dst/$_u" "$LAB_CA" <<'PY' || return 1
import imaplib, ssl, sys, re
port, user, pwfile, ca = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)
m.login(user, open(pwfile).read().strip())
typ, data = m.list('""', '*')
names = []
for line in data or []:
    if not line:
        continue
    s = line.decode() if isinstance(line, bytes) else line[0].decode()
    mm = re.match(r'\((.*?)\) (NIL|"[^"]*") (.*)$', s)
    if mm:
        names.append(mm.group(3))
for n in sorted(names, key=len, reverse=True):
    if n.strip('"').upper() != "INBOX":
        m.unsubscribe(n)
        m.delete(n)
typ, d = m.select("INBOX")
if int(d[0]) > 0:
    m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
    m.expunge()
m.logout()
PY
	done
}

# same_mail SRCPORT SRCUSER DSTUSER [mailcmp options]: mailcmp against the lab's dst.
same_mail() {
	_sp=$1 _su=$2 _du=$3; shift 3
	_side=src
	[ "$_sp" = "${LAB_LEGACY_IMAPS:-x}" ] && _side=legacy
	$MAILCMP --cafile "$LAB_CA" --src-host localhost --src-port "$_sp" --src-user "$_su" \
		--src-passfile "$LAB_SECRETS/$_side/$_su" --dst-host localhost --dst-port "$LAB_DST_IMAPS" \
		--dst-user "$_du" --dst-passfile "$LAB_SECRETS/dst/$_du" "$@"
}

# sync_pair USER [options]: imapfleet sync from the lab's src to dst for USER.
sync_pair() {
	_u=$1; shift
	"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 "$_u" --passfile1 "$LAB_SECRETS/src/$_u" \
		--cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" --user2 "$_u" \
		--passfile2 "$LAB_SECRETS/dst/$_u" --cafile2 "$LAB_CA" "$@"
}

# lab_csv USER...: an accounts CSV (on stdout) of lab accounts, src -> dst over implicit TLS.
lab_csv() {
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	for _u in "$@"; do
		echo "localhost,$LAB_SRC_IMAPS,$_u,$LAB_SECRETS/src/$_u,ssl,localhost,$LAB_DST_IMAPS,$_u,$LAB_SECRETS/dst/$_u,ssl"
	done
}

# lab_users N: makes sure the lab has user01..userN (adds accounts to a running lab when it has
# fewer; tests beyond the 40 that scripts/test.sh starts with call this first).
lab_users() {
	[ "${LAB_USERS:-0}" -ge "$1" ] && return 0
	_from=$((${LAB_USERS:-0} + 1))
	LAB_USERS=$1 "${top_srcdir:-.}/scripts/lab.sh" up >/dev/null 2>&1 || return 1
	lab_require
	[ "${LAB_USERS:-0}" -ge "$1" ] || return 1
	# Accounts made just now are empty: give them the corpus the others have, so that a test's
	# mailbox comparison compares messages, not two empty mailboxes.
	# shellcheck disable=SC2046
	"${top_srcdir:-.}/scripts/lab.sh" seed $(seq -f 'user%02g' "$_from" "$1") >/dev/null 2>&1
}

# fake_imap SCENARIO NAME [fakeimap.py options]: starts the scripted fake server
# (tests/tools/fakeimap.py) over implicit TLS with the lab's certificate; its log, port and
# standard error go to $work/NAME.{log,port,err}, its pid is added to $pids; sets $port and
# port_NAME. Give the account with --user and --password.
fake_imap() {
	_scn=$1 _name=$2; shift 2
	python3 "${top_srcdir:-.}/tests/tools/fakeimap.py" --scenario "$_scn" --cert "$LAB_DIR/tls/server.pem" \
		--key "$LAB_DIR/tls/server.key" --implicit-tls --log "$work/$_name.log" "$@" \
		>"$work/$_name.port" 2>"$work/$_name.err" &
	pids="$pids $!"
	for _i in $(seq 1 25); do [ -s "$work/$_name.port" ] && break; sleep 0.2; done
	port=$(head -n 1 "$work/$_name.port")
	eval "port_$_name=\$port"
}
