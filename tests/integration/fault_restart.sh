#!/bin/sh
# fault_restart: the lab's servers restart under a running migration of 3 accounts: PostgreSQL at
# ~5 % of the messages, the destination Dovecot at ~10 %, the source Dovecot at ~15 % (each
# restart returns once the server answers). The run must still be going at the third restart
# however slow the machine is: one worker, and the source is reached through a faultproxy that
# pauses 15 ms before each of the server's chunks, so that copying cannot outrun the restarts. The run should ride through all three
# (connections fail, accounts are retried with backoff, the state connection is re-established);
# if it does not, the same command is run again. Either way it must end exact.
# NOTE: this restarts the SHARED lab servers: other tests running at the same moment see their
# connections cut. `make check` runs tests one after another; do not run this one by hand while
# someone else uses the same lab.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init fault_restart user17 user19 user24
LAB=${top_srcdir:-.}/scripts/lab.sh
plan 11

fl_faultproxy SRCPROXY --target "127.0.0.1:$LAB_SRC_IMAPS" --seed 7 --stall-ms 40 --stall-prob 1
fl_prepare "$SRCPROXY"

ARGS="--workers 1 --lease 5000 --retry-base 200 --retry-cap 2000 --max-attempts 30"
# shellcheck disable=SC2086
fl_run_bg $ARGS
pid=$FL_PID
restarted=""
for step in "pg 5" "dst 10" "src 15"; do
	set -- $step
	target=$(( total * $2 / 100 ))
	t0=$SECONDS
	while fl_alive "$pid" && [ "$(fl_appended)" -lt "$target" ] && [ $((SECONDS - t0)) -lt 60 ]; do sleep 0.1; done
	if ! fl_alive "$pid"; then
		diag "the run ended before the $1 restart"
		break
	fi
	at=$(fl_copied)
	if [ "$1" = pg ]; then "$LAB" restart-pg >/dev/null 2>&1; else "$LAB" restart-dovecot "$1" >/dev/null 2>&1; fi
	r=$?
	diag "restarted $1 at $at/$total copied rows (exit $r)"
	restarted="$restarted $1"
done
fl_wait_ready || bail "the lab did not come back after the restarts"
if [ "$restarted" = " pg dst src" ]; then ok "PostgreSQL, dst Dovecot and src Dovecot restarted mid-run"
else not_ok "PostgreSQL, dst Dovecot and src Dovecot restarted mid-run (only:$restarted)"; fi

fl_wait_end "$pid" 120 "the run rode through the restarts and finished" || sleep 6 # its leases
retries=$(grep -c 'attempt [0-9]* failed' "$FL_WORK/run.out")
diag "$retries attempts failed and were retried; attempts per account: $(fl_sql "select string_agg(user1 || '=' || attempts, ' ') from job")"

# The same command again: the delta pass (or the rest of the run when it stopped).
# shellcheck disable=SC2086
fl_run_ok "the same command again ends with exit 0" $ARGS

fl_db_checks "$total"
fl_mailcmp_all
