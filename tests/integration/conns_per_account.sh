#!/bin/sh
# conns_per_account: run --conns-per-account N copies one account over several connection pairs
# when the servers are far (not on loopback), each folder by exactly one of them, within the
# per-server limits, exactly; killed with SIGKILL
# mid-account while several pairs copy, the same command finishes it: nothing missing, nothing
# twice (mailcmp, and the ledger: one copied row per source message, no destination UID twice, no
# append window left open).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init conns_per_account user30 user37
fl_plan 22

MORE_DBS=""
more_cleanup() {
	for d in $MORE_DBS; do
		psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $d with (force)" >/dev/null 2>&1
	done
	fl_cleanup
}
trap more_cleanup EXIT
# new_state NAME: a fresh database for the next phase (FL_STATE points to it), and an empty log.
new_state() {
	local db="${FL_DB}_$1"
	psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $db" -c "create database $db owner imapfleet" >/dev/null 2>&1 ||
		bail "cannot create database $db"
	MORE_DBS="$MORE_DBS $db"
	FL_STATE="${LAB_PG_URL%/imapfleet}/$db"
	sql_open "$FL_STATE" || bail "cannot start psql"
	rm -rf "$FL_WORK/.imapfleet/logs"
	: >"$FL_WORK/run.out"
}
# pairs_started: "N" from the account logs' "N more connection pair(s)" lines, summed.
pairs_started() {
	cat "$FL_WORK"/.imapfleet/logs/*.log 2>/dev/null | sed -n 's/.* \([0-9]*\) more connection pairs\{0,1\} for this account.*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }'
}

# pairs_run NAME WANT CONNS WHAT: a fresh state and an emptied destination, one run with one account at a
# time, --conns-per-account 4 and --max-conns-per-host CONNS; ok when it exits 0 having started
# WANT more pairs in all.
pairs_run() {
	local name=$1 want=$2 conns=$3 what=$4 rc n
	fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
	new_state "$name"
	fl_run --workers 1 --max-conns-per-host "$conns" --conns-per-account 4
	rc=$?
	n=$(pairs_started)
	if [ $rc -eq 0 ] && [ "$n" = "$want" ]; then ok "$what (exit 0, $n more pairs in all)"
	else not_ok "$what (exit $rc, $n more pairs in all, $want expected)"; tail -n 20 "$FL_WORK/run.out" | sed 's/^/# /'; fi
}

total=$(fl_src_total) || bail "cannot count the source messages"
[ "$total" -gt 0 ] || bail "the source accounts are empty (scripts/lab.sh seed)"
diag "$total source messages in $FL_USERS"

# 0. Near the servers (loopback: round trips well under ENGINE_LANES_MIN_RTT_MS, 10 ms) more pairs
#    would only add logins: none is started.
fl_csv "$FL_WORK/accounts.csv" "$LAB_SRC_IMAPS" "$LAB_DST_IMAPS"
pairs_run near 0 8 "servers on loopback: no more connection pairs"

# From here on the source is a far server: behind the benchmark's delay proxy.
fl_far_source 30

# 1. One account at a time, free slots: three more pairs each (4 in all), every copy exact.
pairs_run fresh 6 8 "a far source, free slots: each account gets 3 more connection pairs"
fl_db_checks "$total"
fl_mailcmp_all

# 2. The per-server limit comes first: 2 slots per server and one account at a time leave one
#    more pair.
pairs_run limit2 2 2 "--max-conns-per-host 2, one account at a time: 1 more pair per account"
fl_mailcmp_all

# 3. Killed mid-account while several pairs copy; --batch 1 makes one window per message and the
#    source is 150 ms away, so that the copy lasts several seconds and the kills land mid-window.
fl_far_source 150
fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
new_state crash
ARGS="--lease 3000 --workers 1 --max-conns-per-host 64 --conns-per-account 4 --retry-base 200 --retry-cap 1000 --batch 1"
kills=0 windows_open=0 mid_lanes=0
for k in 1 2 3; do
	before=$(fl_appended)
	# shellcheck disable=SC2086
	fl_run_bg $ARGS
	pid=$FL_PID
	left=$(( total - before ))
	target=$(( before + left / (5 - k) + $(fl_rand 0 $(( left / 10 + 1 ))) ))
	[ "$before" -lt "$target" ] || target=$(( before + 1 ))
	t0=$SECONDS lanes=0
	# (the pairs are counted from the logs only until the first one: a poll must cost milliseconds)
	while fl_alive "$pid" && [ $((SECONDS - t0)) -lt 60 ]; do
		[ "$lanes" -gt 0 ] || lanes=$(pairs_started)
		[ "$lanes" -gt 0 ] && [ "$(fl_appended)" -ge "$target" ] && break
		sleep 0.05
	done
	fl_msleep "$(fl_rand 0 100)"
	if fl_alive "$pid" && [ "$(pairs_started)" -gt 0 ]; then mid_lanes=$((mid_lanes + 1)); fi
	fl_kill_mid_run "$pid" "$k" ", $(pairs_started) more pairs started so far" || break
done
if [ $kills -eq 3 ]; then ok "killed with SIGKILL 3 times mid-run"; else not_ok "killed with SIGKILL 3 times mid-run (only $kills)"; fi
if [ $mid_lanes -ge 1 ]; then ok "at least one kill came while more pairs were copying ($mid_lanes)"
else not_ok "no kill came while more pairs were copying"; fi
diag "$windows_open append windows open at the kills"
# shellcheck disable=SC2086
fl_run_ok "the same command finishes the run" $ARGS
fl_db_checks "$total"
fl_mailcmp_all
