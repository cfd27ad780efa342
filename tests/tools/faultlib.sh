# tests/tools/faultlib.sh: shared helpers of the fault and crash tests (sourced by bash, after
# tests/integration/tap.sh). See docs/testing.md.
#
#   fl_init NAME USER...   lab, private database, work directory, accounts; skips when the lab or
#                          an account is missing. Sets FL_WORK, FL_DB, FL_STATE (URL), FL_USERS.
#   fl_csv FILE SRCPORT DSTPORT   the accounts CSV of FL_USERS (passfiles, implicit TLS, localhost)
#   fl_wipe_dst            empties FL_USERS on the destination (only those)
#   fl_run ARGS...         imapfleet run in FL_WORK (output appended to FL_WORK/run.out), returns
#                          its exit status; fl_run_bg starts it in the background (pid in FL_PID)
#   fl_mailcmp_all         one TAP point per account: mailcmp source vs destination, exact
#   fl_db_checks           TAP points on the ledger: copied rows = source messages, no duplicate
#                          destination UID, no window left open, every job done
#   fl_faultproxy VAR ARGS...   starts a faultproxy, its port in VAR (stopped at exit)
#   fl_far_source RTT      a delay proxy of RTT ms in front of the source; accounts.csv through it
#                          (its port in FL_FAR_PORT, for fl_prepare)
#   fl_prepare SRCPORT     accounts file (sources read at SRCPORT), destination emptied, the
#                          source's message count in $total (bails when there is none)
#   fl_wait_end PID LIMIT DESC [SINCE WHAT]   one TAP point: the background run ends on its own
#                          within LIMIT seconds with exit 0
#   fl_no_account_failed   one TAP point: run.out reports no failed account
#   fl_run_ok DESC ARGS... one TAP point: fl_run ARGS ends with exit 0 (how long it took)
#   fl_plan N              the TAP plan, then the random seed of the run (FL_SEED repeats it)
#   fl_kill_mid_run PID K [NOTE]   SIGKILL to a run still going, counted in $kills and
#                          $windows_open; 1 when it had finished already
# Every process a helper starts is stopped at exit by its pid; the database is dropped; the work
# directory is removed when every test point passed (kept, and named, otherwise).

FL_PIDS=""
FL_WORK=""
FL_DB=""
FL_T0=$(date +%s)

fl_now() { date +%s.%N | cut -c1-14; }

fl_cleanup() {
	local p
	for p in $FL_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	for p in $FL_PIDS; do
		wait "$p" 2>/dev/null
	done
	if [ -n "$FL_DB" ] && [ -n "${FL_KEEP:-}" ]; then
		echo "# database kept (FL_KEEP): $FL_STATE" | sed 's|//[^@]*@|//...@|'
	elif [ -n "$FL_DB" ]; then
		psql "$LAB_PG_SUPER_URL" -qAtc "select pg_terminate_backend(pid) from pg_stat_activity where datname = '$FL_DB'" >/dev/null 2>&1
		psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $FL_DB" >/dev/null 2>&1
	fi
	if [ -n "$FL_WORK" ] && [ -d "$FL_WORK" ]; then
		if [ "${_tap_failed:-0}" -eq 0 ] && [ -z "${FL_KEEP:-}" ]; then
			rm -rf "$FL_WORK"
		else
			echo "# work directory kept: $FL_WORK (logs in .imapfleet/logs, run.out)"
		fi
	fi
	echo "# $(basename "$0"): $(( $(date +%s) - FL_T0 )) s"
}

fl_init() {
	local name=$1 u
	shift
	lab_require
	FL_USERS="$*"
	for u in $FL_USERS; do
		[ -r "$LAB_SECRETS/src/$u" ] && [ -r "$LAB_SECRETS/dst/$u" ] ||
			skip_all "lab account $u is missing (start the lab with LAB_USERS=24 or more, then seed)"
	done
	[ -x "$IMAPFLEET" ] || skip_all "no imapfleet binary at $IMAPFLEET"
	command -v psql >/dev/null || skip_all "psql is not installed"
	FL_WORK=$(mktemp -d "${TMPDIR:-/tmp}/imapfleet-$name.XXXXXX")
	chmod 700 "$FL_WORK"
	FL_DB="fleet_${name}_$$"
	trap fl_cleanup EXIT
	trap 'exit 130' INT TERM
	psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $FL_DB" >/dev/null 2>&1
	psql "$LAB_PG_SUPER_URL" -qc "create database $FL_DB owner imapfleet" >/dev/null ||
		bail "cannot create database $FL_DB"
	FL_STATE="${LAB_PG_URL%/imapfleet}/$FL_DB"
	sql_open "$FL_STATE" || bail "cannot start psql"
	FL_PY=${PYTHON:-python3}
	export FL_TOOLS="${top_srcdir:-.}/tests/tools"
}

bail() { echo "Bail out! $*"; exit 1; }

# fl_prepare SRCPORT: FL_WORK/accounts.csv of FL_USERS with the sources read at SRCPORT (the lab's
# src, or a proxy in front of it), the destination accounts emptied, and the number of source
# messages in $total; bails when the source cannot be counted or is empty.
fl_prepare() {
	fl_csv "$FL_WORK/accounts.csv" "$1" "$LAB_DST_IMAPS"
	fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
	total=$(fl_src_total) || bail "cannot count the source messages"
	[ "$total" -gt 0 ] || bail "the source accounts are empty (scripts/lab.sh seed)"
	diag "$total source messages in $FL_USERS"
}

# fl_wait_end PID LIMIT DESC [SINCE WHAT]: waits up to LIMIT seconds for the background run PID to
# end on its own; one TAP point DESC, ok when it ended with exit 0 (its ok line says how long after
# WHAT, at $SECONDS = SINCE, when given), not ok with the run's last errors otherwise. A run still
# alive after LIMIT is killed, and the function returns 1.
fl_wait_end() {
	local pid=$1 limit=$2 desc=$3 since=${4:-} what=${5:-} t0=$SECONDS rc
	while fl_alive "$pid" && [ $((SECONDS - t0)) -lt "$limit" ]; do sleep 0.2; done
	if fl_alive "$pid"; then
		not_ok "$desc (still running after $limit s)"
		kill -9 "$pid"
		wait "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid"
	rc=$?
	if [ $rc -ne 0 ]; then
		not_ok "$desc (exit $rc)"
		grep -E 'ERROR|WARN' "$FL_WORK/run.out" | tail -n 15 | sed 's/^/# /'
	elif [ -n "$since" ]; then ok "$desc (exit 0, $((SECONDS - since)) s after $what)"
	else ok "$desc (exit 0)"; fi
	return 0
}

# fl_run_ok DESC ARGS...: fl_run ARGS in the foreground; one TAP point DESC, ok with the time it
# took when it exits 0, not ok with the exit code and run.out's last lines otherwise.
fl_run_ok() {
	local desc=$1 t0=$SECONDS rc
	shift
	fl_run "$@"
	rc=$?
	if [ $rc -eq 0 ]; then ok "$desc (exit 0, $((SECONDS - t0)) s)"
	else not_ok "$desc (exit $rc)"; tail -n 20 "$FL_WORK/run.out" | sed 's/^/# /'; fi
}

# fl_plan N: the TAP plan; the run's random choices follow FL_SEED (RANDOM), given to repeat a
# run, else made from the pid and the time, and said as a diagnostic.
fl_plan() {
	FL_SEED=${FL_SEED:-$(( $$ ^ $(date +%s) ))}
	RANDOM=$FL_SEED
	plan "$1"
	diag "seed $FL_SEED (FL_SEED=$FL_SEED to repeat the kill points)"
}

# The append windows open: the folder rows' and the connection pairs' of a split folder
# (folder_window, migration 13).
FL_OPEN_WINDOWS="select (select count(*) from folder where window_dst_uidnext is not null)
	+ (select count(*) from folder_window)"

# fl_kill_mid_run PID K [NOTE]: kill number K: SIGKILL to the run PID when it still goes, counted in
# $kills and the append windows it left open in $windows_open (a diagnostic says where it stood,
# then NOTE). Returns 1, with its exit code said, when the run had already finished.
fl_kill_mid_run() {
	local pid=$1 k=$2 note=${3:-} open
	if ! fl_alive "$pid"; then
		wait "$pid"
		diag "kill $k: the run had already finished (exit $?)"
		return 1
	fi
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	kills=$((kills + 1))
	open=$(fl_num "$FL_OPEN_WINDOWS")
	windows_open=$((windows_open + open))
	diag "kill $k: at $(fl_copied)/$total copied rows, $open append windows open$note"
}

# fl_no_account_failed: one TAP point, ok when run.out reports no failed account.
fl_no_account_failed() {
	if grep -q "account failed" "$FL_WORK/run.out"; then
		not_ok "no account is reported failed"
		grep "account failed" "$FL_WORK/run.out" | head -n 5 | sed 's/^/# /'
	else ok "no account is reported failed"; fi
}

fl_csv() {
	local file=$1 sport=$2 dport=$3 u
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2" >"$file"
	for u in $FL_USERS; do
		echo "localhost,$sport,$u,$LAB_SECRETS/src/$u,ssl,localhost,$dport,$u,$LAB_SECRETS/dst/$u,ssl" >>"$file"
	done
}

fl_wipe_dst() {
	# shellcheck disable=SC2086
	"$FL_PY" "$FL_TOOLS/wipe_account.py" --host localhost --port "$LAB_DST_IMAPS" \
		--passfile-dir "$LAB_SECRETS/dst" --cafile "$LAB_CA" $FL_USERS
}

# fl_fresh_start: the next run starts from nothing: destination accounts emptied, a new state
# database, no account logs.
fl_fresh_start() {
	fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
	psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $FL_DB with (force)" \
		-c "create database $FL_DB owner imapfleet" >/dev/null 2>&1 || bail "cannot create database $FL_DB"
	rm -rf "$FL_WORK/.imapfleet/logs"
}

# fl_count src|dst: the number of messages in FL_USERS on that side (STATUS MESSAGES per folder).
fl_count() {
	local side=$1 port
	if [ "$side" = src ]; then port=$LAB_SRC_IMAPS; else port=$LAB_DST_IMAPS; fi
	# shellcheck disable=SC2086
	"$FL_PY" - "$port" "$LAB_SECRETS/$side" "$LAB_CA" $FL_USERS <<'EOF'
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["FL_TOOLS"])
import mailcmp
port, secrets, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
total = 0
for user in sys.argv[4:]:
    a = mailcmp.Account("acct", "localhost", port, user, os.path.join(secrets, user), "ssl", None, ca, 60)
    for name, f in a.folders(True).items():
        data = a.ok(a.conn.status(mailcmp.quote(f.wire), "(MESSAGES)"), "STATUS")[0]
        total += int(data.rsplit(b"MESSAGES ", 1)[1].split(b")")[0])
    a.logout()
print(total)
EOF
}
fl_src_total() { fl_count src; }

# fl_big_msgs USER MINSIZE: "wirefolder<TAB>uid<TAB>size" of the source messages of at least MINSIZE bytes.
fl_big_msgs() {
	"$FL_PY" - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/$1" "$LAB_CA" "$1" "$2" <<'EOF'
import os, re, sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["FL_TOOLS"])
import mailcmp
port, pw, ca, user, minsize = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
a = mailcmp.Account("src", "localhost", port, user, pw, "ssl", None, ca, 60)
for name, f in a.folders(True).items():
    if int(a.ok(a.conn.select(mailcmp.quote(f.wire), readonly=True), "EXAMINE")[0] or 0) == 0:
        continue
    for item in a.ok(a.conn.uid("FETCH", "1:*", "(UID RFC822.SIZE)"), "FETCH"):
        if not isinstance(item, bytes):
            continue
        u, s = re.search(rb"UID (\d+)", item), re.search(rb"RFC822.SIZE (\d+)", item)
        if u and s and int(s.group(1)) >= minsize:
            print("%s\t%s\t%s" % (mailcmp.mutf7_decode(f.wire), u.group(1).decode(), s.group(1).decode()))
    a.conn.close()
a.logout()
EOF
}

fl_run() {
	(cd "$FL_WORK" && timeout -k 5 "${FL_TIMEOUT:-150}" "$IMAPFLEET" run "$FL_WORK/accounts.csv" --state "$FL_STATE" --cafile1 "$LAB_CA" \
		--cafile2 "$LAB_CA" --no-progress "$@" >>"$FL_WORK/run.out" 2>&1)
}

# fl_run_to_failpoint NAME ARGS...: fl_run with IMAPFLEET_FAILPOINT=NAME (the process kills itself
# there); then, once Dovecot has finished what it received: FL_RC (the exit code, 137 when the
# failpoint was hit), FL_DST (messages on the destination) and FL_REC (messages the ledger records).
fl_run_to_failpoint() {
	local point=$1
	shift
	(export IMAPFLEET_FAILPOINT=$point; fl_run "$@")
	FL_RC=$?
	sleep 1
	FL_DST=$(fl_count dst)
	FL_REC=$(fl_copied)
}

fl_run_bg() {
	(cd "$FL_WORK" && exec "$IMAPFLEET" run "$FL_WORK/accounts.csv" --state "$FL_STATE" --cafile1 "$LAB_CA" \
		--cafile2 "$LAB_CA" --no-progress "$@" >>"$FL_WORK/run.out" 2>&1) &
	FL_PID=$!
	FL_PIDS="$FL_PIDS $FL_PID"
}

fl_mailcmp_all() {
	local u out rc
	for u in $FL_USERS; do
		out=$("$FL_PY" "$FL_TOOLS/mailcmp.py" --cafile "$LAB_CA" \
			--src-host localhost --src-port "$LAB_SRC_IMAPS" --src-user "$u" --src-passfile "$LAB_SECRETS/src/$u" \
			--dst-host localhost --dst-port "$LAB_DST_IMAPS" --dst-user "$u" --dst-passfile "$LAB_SECRETS/dst/$u" 2>&1)
		rc=$?
		if [ $rc -eq 0 ]; then
			ok "$u: destination equals source message by message ($(printf '%s\n' "$out" | tail -n 1 | sed 's/^mailcmp: //'))"
		else
			not_ok "$u: destination equals source message by message (mailcmp exit $rc)"
			printf '%s\n' "$out" | grep -v ' ok$' | tail -n 40 | sed 's/^/# /'
		fi
	done
}

fl_sql() { psql "$FL_STATE" -qAtX -c "$1" 2>&1; }
# fl_num SQL: a number from the state database (the session fl_init opened, so that a poll costs
# milliseconds, not a login); 0 when the query fails (schema not there yet).
fl_num() { sql_num "$1"; }
fl_copied() { fl_num "select count(*) from message where state = 'copied'"; }
# fl_appended: the messages on the destination of FL_USERS, by their Maildir files (cur and new):
# progress as it happens, where the ledger's rows of several small folders commit together.
fl_appended() {
	local u n=0
	for u in $FL_USERS; do
		n=$((n + $(find "$LAB_DIR/run/mail/dst/$u" -type f \( -path '*/cur/*' -o -path '*/new/*' \) 2>/dev/null | wc -l)))
	done
	echo "$n"
}
# fl_rand LO HI: a random integer in [LO, HI] (seeded by FL_SEED, printed by the tests).
fl_rand() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
fl_msleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
# fl_alive PID: the process runs (and is not a zombie). Read from /proc, without a fork: it is
# polled while a run copies.
fl_alive() {
	local st=""
	kill -0 "$1" 2>/dev/null || return 1
	read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null || st=Z
	[ "$st" != Z ] && [ "$st" != X ]
}

fl_db_checks() {
	local src_total=$1 n
	n=$(fl_sql "select count(*) from message where state = 'copied'")
	if [ "$n" = "$src_total" ]; then ok "ledger: $n copied rows = $src_total source messages"
	else not_ok "ledger: $n copied rows, source has $src_total messages"; fi
	n=$(fl_sql "select count(*) from (select folder_id, dst_uidvalidity, dst_uid from message
		where dst_uid is not null and dst_uid > 0 group by 1, 2, 3 having count(*) > 1) d")
	if [ "$n" = 0 ]; then ok "ledger: no destination message recorded for two source messages"
	else not_ok "ledger: $n destination UIDs recorded for more than one source message"; fi
	n=$(fl_sql "select count(*) from message where state <> 'copied'")
	if [ "$n" = 0 ]; then ok "ledger: no failed or skipped message"
	else not_ok "ledger: $n failed or skipped messages"; fl_sql "select state, error from message where state <> 'copied' limit 5" | sed 's/^/# /'; fi
	n=$(fl_sql "$FL_OPEN_WINDOWS")
	if [ "$n" = 0 ]; then ok "state: no append window left open"
	else not_ok "state: $n append windows left open"; fi
	n=$(fl_sql "select string_agg(user1 || ':' || state, ' ') from job where state <> 'done'")
	if [ -z "$n" ]; then ok "state: every job is done"
	else not_ok "state: jobs not done: $n"; fi
}

# fl_fill_inbox N: N small messages in the INBOX of every account of FL_USERS on the source
# (scripts/bench/hugeseed.py empties the INBOX first; the same messages every time).
fl_fill_inbox() {
	local a
	for a in $FL_USERS; do
		python3 "${top_srcdir:-.}/scripts/bench/hugeseed.py" --port "$LAB_SRC_IMAPS" --user "$a" \
			--passfile "$LAB_SECRETS/src/$a" --cafile "$LAB_CA" --messages "$1" >/dev/null 2>&1 ||
			bail "cannot fill the INBOX of $a"
	done
}

# fl_far_source RTT: a delay proxy (scripts/bench/delayproxy.c, built into FL_WORK at first use) of
# RTT ms in front of the lab's source, stopped at exit; FL_WORK/accounts.csv then reads the sources
# through it (a far server: more connection pairs start only for those).
fl_far_source() {
	delay_proxy "$FL_WORK" "$1"
	FL_PIDS="$FL_PIDS $DELAY_PID"
	FL_FAR_PORT=$DELAY_PORT
	fl_csv "$FL_WORK/accounts.csv" "$FL_FAR_PORT" "$LAB_DST_IMAPS"
}

# fl_faultproxy VAR ARGS...: starts a faultproxy on 127.0.0.1:0; its port goes to VAR.
fl_faultproxy_bin() {
	local b=${top_builddir:-.}/tests/tools/faultproxy src=${top_srcdir:-.}
	if [ ! -x "$b" ]; then
		(cd "${top_builddir:-.}" && make tests/tools/faultproxy >/dev/null 2>&1)
	fi
	if [ ! -x "$b" ]; then
		# Not (yet) a check program of the build: compile it here, without sanitizers.
		b=$FL_WORK/faultproxy
		${CC:-cc} -O2 -D_GNU_SOURCE -I"$src" -I"${top_builddir:-.}" -o "$b" "$src/tests/tools/faultproxy.c" \
			"$src"/common/util.c "$src"/common/alloc.c "$src"/common/buf.c "$src"/common/err.c \
			"$src"/common/log.c -lpthread -lcrypto >"$FL_WORK/faultproxy-build.log" 2>&1 || return 1
	fi
	FL_FAULTPROXY=$b
}

fl_faultproxy() {
	local var=$1 port="" i f listen=${FL_LISTEN:-127.0.0.1:0}
	shift
	[ -n "${FL_FAULTPROXY:-}" ] || fl_faultproxy_bin || bail "cannot build faultproxy"
	f=$FL_WORK/proxy.$var
	"$FL_FAULTPROXY" --listen "$listen" "$@" >"$f.port" 2>"$f.err" &
	FL_PIDS="$FL_PIDS $!"
	eval "${var}_PID=$!"
	for i in $(seq 50); do
		if [ "${listen##*:}" = 0 ]; then
			port=$(head -n 1 "$f.port" 2>/dev/null)
		elif (exec 3<>"/dev/tcp/127.0.0.1/${listen##*:}") 2>/dev/null; then
			port=${listen##*:}
		fi
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || bail "faultproxy did not start: $(cat "$f.err")"
	eval "$var=$port"
}

# fl_stop PID: stops a process this test started, and waits for it.
fl_stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# fl_wait_ready: both Dovecots and PostgreSQL answer (after a restart).
fl_wait_ready() {
	local i
	for i in $(seq 60); do
		"${top_srcdir:-.}/scripts/lab.sh" status >/dev/null 2>&1 && return 0
		sleep 1
	done
	return 1
}
