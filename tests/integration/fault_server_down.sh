#!/bin/sh
# fault_server_down: the destination Dovecot is stopped for 60 s in the middle of a run of 4
# accounts, then started again. The scheduler must mark the server down once, spend no account's
# attempts on it meanwhile (--max-attempts 2 would fail every account that tried twice), probe it,
# and resume by itself when it answers: the run ends with exit 0, every account done and exact,
# none reported failed, without being run again.
# NOTE: this stops a SHARED lab server: other tests running at the same moment see their
# connections refused. `make check` runs tests one after another.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init fault_server_down user28 user29 user39 user40
LAB=${top_srcdir:-.}/scripts/lab.sh
OUTAGE=${FL_OUTAGE:-60}
plan 17

fl_prepare "$LAB_SRC_IMAPS"
# Whatever happens, the destination is started again for the tests after this one.
trap 'fl_cleanup; "$LAB" start-dovecot dst >/dev/null 2>&1' EXIT

ARGS="--workers 1 --max-attempts 2 --retry-base 200 --retry-cap 1000 --server-down-limit 600"
# shellcheck disable=SC2086
fl_run_bg $ARGS
pid=$FL_PID
target=$((total / 5))
t0=$SECONDS
while fl_alive "$pid" && [ "$(fl_appended)" -lt "$target" ] && [ $((SECONDS - t0)) -lt 90 ]; do sleep 0.1; done
fl_alive "$pid" || bail "the run ended before the outage ($(fl_copied)/$total copied)"
"$LAB" stop-dovecot dst >/dev/null 2>&1 || bail "cannot stop the destination Dovecot"
diag "destination stopped at $(fl_copied)/$total copied rows"
dstkey="localhost:$LAB_DST_IMAPS"
t0=$SECONDS
while fl_alive "$pid" && ! grep -q "server $dstkey is down" "$FL_WORK/run.out" && [ $((SECONDS - t0)) -lt 30 ]; do
	sleep 0.2
done
if grep -q "server $dstkey is down" "$FL_WORK/run.out"; then ok "the run marks the destination down ($((SECONDS - t0)) s after it stopped)"
else not_ok "the run marks the destination down"; fi
sleep "$OUTAGE"
if fl_alive "$pid"; then ok "the run waits through a ${OUTAGE}-second outage"
else not_ok "the run waits through a ${OUTAGE}-second outage (it ended)"; fi
n=$(fl_num "select count(*) from job where state = 'failed'")
if [ "$n" = 0 ]; then ok "no account failed during the outage"
else not_ok "no account failed during the outage ($n failed)"; fi
n=$(fl_num "select max(attempts) from job")
if [ "$n" -le 1 ]; then ok "the outage is not counted against any account (attempts at most 1, found $n)"
else not_ok "the outage is not counted against any account (an account has $n attempts)"; fi
"$LAB" start-dovecot dst >/dev/null 2>&1 || bail "cannot start the destination Dovecot again"
back=$SECONDS

fl_wait_end "$pid" 150 "the run finishes on its own after the outage" "$back" "the server returned"
n=$(grep -c "server $dstkey is down" "$FL_WORK/run.out")
if [ "$n" = 1 ]; then ok "the outage is reported once"
else not_ok "the outage is reported once (found $n lines)"; fi
if grep -q "server $dstkey answers again" "$FL_WORK/run.out"; then ok "the return of the server is reported"
else not_ok "the return of the server is reported"; fi
fl_no_account_failed

fl_db_checks "$total"
fl_mailcmp_all
