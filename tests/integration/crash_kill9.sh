#!/bin/sh
# crash_kill9: one bulk run of 4 accounts, killed with SIGKILL five times at random points and
# started again with the same command each time; the last start finishes it. Every account must
# then be exact (mailcmp: nothing missing, nothing twice), and the ledger must agree: one copied
# row per source message, no destination message claimed twice, no append window left open.
# The first kill comes 0-500 ms after the first claim (logins, folder creation, first window); the
# others when the destination holds about k/6 of the messages, plus 0-100 ms (mid-window). The
# destination's message files are counted, not the ledger's rows: the ledger writes the rows of
# several small folders in one commit (their windows begun together), so its count moves in steps
# that could carry a kill past the end of the run.
# --lease 3000: the restarted process (a new engine) takes the dead one's accounts back 3 s later.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init crash_kill9 user13 user14 user15 user16
fl_plan 12

# The source sits behind the benchmark's delay proxy (60 ms round trip, no fault injected): the
# copy then lasts seconds however fast the engine and the machine are (a window costs a round
# trip), so every kill below lands mid-run, before the run could end on its own.
fl_far_source 60
fl_prepare "$FL_FAR_PORT"

# Enough slots that dead engines' connection slots (kept until their registration expires) never
# block the restarted process: that is crash_points.sh's subject, not this test's.
# --batch 1: one message per window, so that progress is gradual and five kills land mid-run even
# on the small CI corpus.
ARGS="--lease 3000 --workers 2 --max-conns-per-host 64 --retry-base 200 --retry-cap 1000 --batch 1"
kills=0 windows_open=0
for k in 1 2 3 4 5; do
	before=$(fl_appended)
	# shellcheck disable=SC2086
	fl_run_bg $ARGS
	pid=$FL_PID
	if [ $k -eq 1 ]; then
		# 0-500 ms after the first claim: logins, LIST, folder creation, the first window.
		t0=$SECONDS
		while fl_alive "$pid" && [ "$(fl_num "select count(*) from job_attempt")" -eq 0 ] && [ $((SECONDS - t0)) -lt 30 ]; do
			sleep 0.02
		done
		fl_msleep "$(fl_rand 0 500)"
	else
		# A share of what is left (a seventh, a sixth, a fifth, a quarter), so that every kill lands
		# before the end however fast the copy goes.
		left=$(( total - before ))
		target=$(( before + left / (9 - k) + $(fl_rand 0 $(( left / 16 + 1 ))) ))
		[ "$before" -lt "$target" ] || target=$(( before + 1 ))
		t0=$SECONDS
		while fl_alive "$pid" && [ "$(fl_appended)" -lt "$target" ] && [ $((SECONDS - t0)) -lt 60 ]; do
			sleep 0.02
		done
		fl_msleep "$(fl_rand 0 100)"
	fi
	fl_kill_mid_run "$pid" "$k" || break
done
if [ $kills -eq 5 ]; then ok "killed with SIGKILL 5 times mid-run"; else not_ok "killed with SIGKILL 5 times mid-run (only $kills)"; fi
if [ $windows_open -gt 0 ]; then ok "the kills left append windows open ($windows_open in all) to recover"
else not_ok "no kill left an append window open (nothing to recover: kill points too coarse)"; fi

# shellcheck disable=SC2086
fl_run_ok "the same command finishes the run" $ARGS
matched=$(cat "$FL_WORK"/.imapfleet/logs/*.log 2>/dev/null | grep -c 'matched by identity')
diag "$matched folder windows recovered by identity matching (job logs)"

fl_db_checks "$total"
diag "job attempts: $(fl_sql "select string_agg(coalesce(outcome, 'open') || '=' || n, ' ') from (select outcome, count(*) n from job_attempt group by 1) a")"
fl_mailcmp_all
