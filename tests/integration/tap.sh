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
# capture CMD...: runs CMD; its output (both streams) in $out, its exit status in $rc. The output is
# also appended to the file $all when that is set (for a later audit of every output).
capture() {
	out=$("$@" 2>&1)
	rc=$?
	if [ -n "${all:-}" ]; then printf '%s\n' "$out" >>"$all"; fi
}
# expect DESCRIPTION RC PATTERN...: one TAP point on the last capture: exit status RC and every
# (extended regex) PATTERN in the output; the mismatches and the output's tail otherwise.
expect() {
	_d=$1 _want=$2
	shift 2
	_bad=
	[ "$rc" = "$_want" ] || _bad="exit status $rc, wanted $_want"
	for _p in "$@"; do
		printf '%s\n' "$out" | grep -Eq -- "$_p" || _bad="${_bad:+$_bad; }no match for /$_p/"
	done
	if [ -z "$_bad" ]; then ok "$_d"; else
		not_ok "$_d"; diag "$_bad"; printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
	fi
}
# has DESCRIPTION TEXT [grep options] PATTERN: one TAP point, ok when a line of TEXT matches
# PATTERN (grep's basic regex unless -E is given); TEXT is shown otherwise.
has() {
	_d=$1 _t=$2
	shift 2
	if printf '%s\n' "$_t" | grep -q "$@"; then ok "$_d"; else
		not_ok "$_d"; printf '%s\n' "$_t" | head -n 20 | sed 's/^/# /'
	fi
}
# file_has DESCRIPTION FILE [grep options] PATTERN: one TAP point, ok when a line of FILE matches
# PATTERN; the last lines of FILE are shown otherwise.
file_has() {
	_d=$1 _f=$2
	shift 2
	if grep -q "$@" "$_f"; then ok "$_d"; else not_ok "$_d"; tail -n 12 "$_f" | sed 's/^/# /'; fi
}
# The lab's connection details, written by scripts/lab.sh up.
lab_require() {
	_labdir=${LAB_DIR:-${top_srcdir:-.}/.lab}
	[ -f "$_labdir/lab.env" ] || skip_all "the lab is not running (scripts/lab.sh up)"
	. "$_labdir/lab.env"
}
IMAPFLEET=${top_builddir:-.}/imapfleet

# ---- polling the state --------------------------------------------------------------------------
# sql_open URL: one psql session kept open on URL for the polls of a test that waits for a row before
# it kills a run (a new psql logs in each time: up to a second on a loaded machine, while a run
# copies dozens of messages). It ends with the script, when its input closes; sql_open again
# replaces it, and a session lost (PostgreSQL restarted) is opened again. sql_num SQL: a number from
# that session; 0 when the query fails (the schema is not there yet); sql_get SQL: the query's last
# line of output, empty when it fails.
sql_open() {
	local d
	# (the exec lines go through eval: a shell without named descriptors, such as dash, still
	# parses this file)
	if [ -n "${SQL_IN:-}" ]; then eval 'exec {SQL_IN}>&- {SQL_OUT}<&-'; SQL_IN=""; fi
	d=$(mktemp -d "${TMPDIR:-/tmp}/sqlpoll.XXXXXX") || return 1
	mkfifo "$d/in" "$d/out" || { rm -rf "$d"; return 1; }
	psql "$1" -qAtX <"$d/in" >"$d/out" 2>/dev/null &
	SQL_PID=$! SQL_URL=$1
	eval 'exec {SQL_IN}>"$d/in" {SQL_OUT}<"$d/out"'
	rm -rf "$d"
}
sql_get() {
	local line out=""
	[ -n "${SQL_IN:-}" ] || return 1
	kill -0 "$SQL_PID" 2>/dev/null || sql_open "$SQL_URL" || return 1
	# (a subshell that ignores SIGPIPE: psql may have gone since)
	(trap '' PIPE; printf '%s;\nselect %s;\n' "$1" "'-end-'" >&"$SQL_IN") 2>/dev/null || return 1
	while IFS= read -r -t 60 line <&"$SQL_OUT"; do
		[ "$line" = -end- ] && break
		out=$line
	done
	printf '%s\n' "$out"
}
sql_num() {
	local n
	n=$(sql_get "$1")
	case $n in '' | *[!0-9]*) echo 0 ;; *) echo "$n" ;; esac
}

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

# dst_delete_first USER N: deletes the first N messages of USER's INBOX on the lab's dst behind
# imapfleet's back (UID EXPUNGE of exactly those: a copied message may carry \Deleted itself);
# prints their UIDs, space-separated.
dst_delete_first() {
	python3 - "$LAB_DST_IMAPS" "$1" "$LAB_SECRETS/dst/$1" "$LAB_CA" "$2" <<'PY'
import imaplib, ssl, sys
port, user, pwfile, ca, n = sys.argv[1:6]
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwfile).read().strip())
m.select("INBOX")
uids = m.uid("SEARCH", None, "ALL")[1][0].split()[:int(n)]
assert len(uids) == int(n), "INBOX of %s has fewer than %s messages" % (user, n)
m.uid("STORE", b",".join(uids), "+FLAGS.SILENT", "(\\Deleted)")
m.uid("EXPUNGE", b",".join(uids))
print(" ".join(u.decode() for u in uids))
m.logout()
PY
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

# The header line of an accounts CSV.
CSV_HEADER="host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"

# lab_row SRCUSER [DSTUSER [DSTPASSFILE]]: one accounts-CSV row, the lab's src SRCUSER -> the lab's
# dst DSTUSER (default SRCUSER) over implicit TLS; DSTPASSFILE defaults to the lab's password file.
lab_row() {
	_du=${2:-$1}
	echo "localhost,$LAB_SRC_IMAPS,$1,$LAB_SECRETS/src/$1,ssl,localhost,$LAB_DST_IMAPS,$_du,${3:-$LAB_SECRETS/dst/$_du},ssl"
}

# lab_csv ACCOUNT...: an accounts CSV (on stdout) of lab accounts, src -> dst over implicit TLS.
# ACCOUNT is USER (the same user on both sides) or SRCUSER:DSTUSER[:DSTPASSFILE] (see lab_row).
lab_csv() {
	echo "$CSV_HEADER"
	for _a in "$@"; do
		# shellcheck disable=SC2046
		lab_row $(printf '%s' "$_a" | tr ':' ' ')
	done
}

# lab_db_test NAME [USERS]: the start of a test that needs the lab and a private state database.
# Skips without the lab or psql (or when the lab cannot have user01..USERS); makes the database
# (STATE_URL, see fresh_db) and a work folder ($work), both removed on exit along with the
# processes in $pids (cleanup; KEEP_WORK=1 keeps the folder). A test that must clean up more
# defines its own cleanup() calling lab_db_cleanup. Call plan after it.
lab_db_test() {
	lab_require
	if [ -n "${2:-}" ]; then lab_users "$2" || skip_all "could not add lab accounts up to user$2"; fi
	command -v psql >/dev/null 2>&1 || skip_all "psql not installed"
	fresh_db "$1"
	lab_work
}

# lab_embedded_test: the start of a test of the embedded state (no --state: imapfleet starts its own
# PostgreSQL cluster, as an unprivileged user). Skips without the lab; makes the work folder ($work)
# as lab_db_test does, readable by that user. Call plan after it.
lab_embedded_test() {
	lab_require
	lab_work
	chmod 755 "$work"
}

# lab_work: the work folder ($work), removed on exit along with the processes in $pids and the
# database of fresh_db, if any (cleanup).
lab_work() {
	work=$(mktemp -d)
	pids=""
	trap cleanup EXIT
}
lab_db_cleanup() {
	[ -n "${pids:-}" ] && kill $pids 2>/dev/null
	[ -n "${_db:-}" ] && drop_db
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
cleanup() { lab_db_cleanup; }

# q SQL: one query against the test's state database, unaligned, tuples only.
q() { psql "$STATE_URL" -Atc "$1"; }

# lab_run NAME [run options]: `imapfleet run` of the accounts file $csv with the test's state and the
# lab's CA, without the progress display; output in $work/NAME.out and $work/NAME.err.
lab_run() {
	_name=$1; shift
	"$IMAPFLEET" run "$csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress "$@" \
		>"$work/$_name.out" 2>"$work/$_name.err"
}

# check_rc WANT GOT DESCRIPTION [LOG]: ok when the exit code GOT is WANT; otherwise not ok with the
# code and the last lines of LOG as diagnostics.
check_rc() {
	if [ "$2" -eq "$1" ]; then ok "$3"; else
		not_ok "$3 (got exit $2)"
		[ -n "${4:-}" ] && tail -n 20 "$4" | sed 's/^/# /'
	fi
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
	for _i in $(seq 1 100); do [ -s "$work/$_name.port" ] && break; sleep 0.2; done
	port=$(head -n 1 "$work/$_name.port")
	eval "port_$_name=\$port"
}

# delay_proxy DIR RTT: the benchmark's delay proxy (scripts/bench/delayproxy.c, built into DIR at
# first use) of RTT ms in front of the lab's source: a far server, through which a copy lasts seconds
# however fast the engine and the machine are (a window costs a round trip). Sets DELAY_PORT and
# DELAY_PID (the caller stops it); bails when it cannot start.
delay_proxy() {
	_pf="$1/delayproxy-$2.port"
	[ -x "$1/delayproxy" ] || cc -O2 -pthread -o "$1/delayproxy" "${top_srcdir:-.}/scripts/bench/delayproxy.c" ||
		{ echo "Bail out! cannot build scripts/bench/delayproxy.c"; exit 1; }
	"$1/delayproxy" --listen 127.0.0.1:0 --target "127.0.0.1:$LAB_SRC_IMAPS" --rtt-ms "$2" \
		--port-file "$_pf" >/dev/null 2>>"$1/delayproxy.err" &
	DELAY_PID=$!
	for _ in $(seq 50); do [ -s "$_pf" ] && break; sleep 0.1; done
	DELAY_PORT=$(head -n 1 "$_pf")
	[ -n "$DELAY_PORT" ] || { echo "Bail out! the delay proxy did not start"; exit 1; }
}

# status_line PATTERN: runs `imapfleet status` on the test's state (output in $work/status.out) and
# prints its lines that match PATTERN.
status_line() {
	"$IMAPFLEET" status --state "$STATE_URL" >"$work/status.out" 2>&1
	grep "$1" "$work/status.out"
}

# fleet_report: `imapfleet report` of the test's state into $work/rep (output in $work/report.out).
fleet_report() { "$IMAPFLEET" report --state "$STATE_URL" --out "$work/rep" >"$work/report.out" 2>&1; }
