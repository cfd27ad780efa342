#!/bin/sh
# fault_pg_restart: PostgreSQL (the state store) is restarted twice in the middle of a run of 6
# accounts (one worker, so that the run lasts long enough): stopped, left down 6 s (longer than a heartbeat, so that the pause is certain), started. The workers must pause while it is away and resume on their own within seconds of
# its return: the run ends with exit 0, every account done and exact, none reported failed, and
# no attempt counted for it (--max-attempts 1: an account charged for the restart would fail),
# without being run again.
# NOTE: this restarts the SHARED lab PostgreSQL: other tests running at the same moment see their
# connections cut. `make check` runs tests one after another.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init fault_pg_restart user08 user09 user10 user16 user20 user22
LAB=${top_srcdir:-.}/scripts/lab.sh
# Whatever happens, PostgreSQL runs again for the tests after this one (and for the cleanup).
trap '"$LAB" start-pg >/dev/null 2>&1; fl_cleanup' EXIT
plan 17

fl_prepare "$LAB_SRC_IMAPS"

ARGS="--workers 1 --max-attempts 1"
# shellcheck disable=SC2086
fl_run_bg $ARGS
pid=$FL_PID
restarts=0
for pct in 15 50; do
	target=$((total * pct / 100))
	t0=$SECONDS
	while fl_alive "$pid" && [ "$(fl_appended)" -lt "$target" ] && [ $((SECONDS - t0)) -lt 90 ]; do sleep 0.1; done
	fl_alive "$pid" || break
	at=$(fl_copied)
	"$LAB" stop-pg >/dev/null 2>&1 || bail "cannot stop PostgreSQL"
	sleep 6
	"$LAB" start-pg >/dev/null 2>&1 || bail "cannot start PostgreSQL again"
	restarts=$((restarts + 1))
	diag "PostgreSQL restarted at $at/$total copied rows"
done
if [ "$restarts" = 2 ]; then ok "PostgreSQL restarted twice mid-run"
else not_ok "PostgreSQL restarted twice mid-run (only $restarts times: the run ended first)"; fi
back=$SECONDS

fl_wait_end "$pid" 150 "the run finishes on its own" "$back" "the last restart"
fl_no_account_failed
n=$(grep -c "the state database does not answer" "$FL_WORK/run.out")
m=$(grep -c "the state database answers again" "$FL_WORK/run.out")
if [ "$n" -ge 1 ] && [ "$n" = "$m" ]; then ok "each pause is reported once with its end ($n pauses)"
else not_ok "each pause is reported once with its end ($n pauses, $m ends)"; grep "state database" "$FL_WORK/run.out" | sed 's/^/# /'; fi
n=$(fl_num "select count(*) from job where attempts > 1")
if [ "$n" = 0 ]; then ok "no attempt was counted for the restarts"
else not_ok "no attempt was counted for the restarts ($n accounts have more than one)"; fi
n=$(fl_num "select count(*) from job_attempt where outcome = 'lease_expired'")
if [ "$n" = 0 ]; then ok "no lease of the run was taken over"
else not_ok "no lease of the run was taken over ($n were)"; fi

fl_db_checks "$total"
fl_mailcmp_all
