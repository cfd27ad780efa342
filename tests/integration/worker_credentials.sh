#!/bin/sh
# worker_credentials: a worker host that joins while `run` is still storing the rows' credentials
# does not fail those accounts for want of them (issue 19). `run` commits the rows, starts its own
# workers, then stores the credentials for worker hosts; a `worker` that claimed a job in between
# failed it NO_CREDENTIALS (permanent). IMAPFLEET_FAILPOINT=credentials-pending kills the run right
# after its import, so the window stays open as long as the test wants: a `worker` started then
# must wait (it claims none of the run's jobs, says why once) instead of failing the accounts; the
# same `run` again stores the credentials, and the two finish the run: every account done, no
# attempt failed for credentials, every destination equal to its source.
# Accounts: user28, user29, user30, user39 (as run_workers.sh).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test workercreds
plan 8
pb=""
cleanup() { kill -9 $pb 2>/dev/null; lab_db_cleanup; }
q() { psql "$STATE_URL" -Atc "$1" 2>/dev/null; }
users="user28 user29 user30 user39"
wipe_dst $users
# shellcheck disable=SC2086
lab_csv $users >"$work/accounts.csv"
cd "$work" || exit 1
common="--state $STATE_URL --no-progress --cafile1 $LAB_CA --cafile2 $LAB_CA"
# shellcheck disable=SC2086
IMAPFLEET_FAILPOINT=credentials-pending "$IMAPFLEET" run "$work/accounts.csv" $common >"$work/a.out" 2>&1
rc=$?
[ $rc -eq 137 ] && [ "$(q "select count(*) from job")" = 4 ] && [ "$(q "select count(*) from credential")" = 0 ] &&
	ok "the run was killed after importing its 4 rows, before storing their credentials" ||
	not_ok "the run killed after its import (exit $rc, jobs $(q "select count(*) from job"), credentials $(q "select count(*) from credential"))"
"$IMAPFLEET" worker --state "$STATE_URL" --no-progress --workers 2 >"$work/b.out" 2>&1 &
pb=$!
wpid=$pb
# The worker says it waits, or (before the fix) claims the jobs and fails them, then exits.
said=0
for i in $(seq 1 600); do
	grep -q "storing its accounts' credentials" "$work/b.out" && { said=1; break; }
	kill -0 $pb 2>/dev/null || break
	sleep 0.1
done
[ $said = 1 ] && ok "the worker says it waits for the run to store the credentials" ||
	{ not_ok "the worker says it waits for the run to store the credentials"; tail -n 10 "$work/b.out" | sed 's/^/# /'; }
sleep 1 # a few more of its polls: still nothing claimed
n=$(q "select count(*) from job_attempt")
[ "$n" = 0 ] && kill -0 $pb 2>/dev/null && ok "the worker claims none of the run's accounts while their credentials are pending" ||
	not_ok "the worker claims none of the run's accounts while their credentials are pending ($n attempts)"
# The same command again: it imports (nothing new), stores the credentials, and both finish the run.
# shellcheck disable=SC2086
"$IMAPFLEET" run "$work/accounts.csv" $common --workers 1 >"$work/c.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "the run started again finishes (exit 0)" || { not_ok "the run started again finishes (exit $rc)"; tail -n 20 "$work/c.out" | sed 's/^/# /'; }
wait $pb
rc=$?
pb=""
[ $rc -eq 0 ] && ok "the worker finishes (exit 0)" || { not_ok "the worker finishes (exit $rc)"; tail -n 20 "$work/b.out" | sed 's/^/# /'; }
[ "$(q "select count(*) from job where state = 'done'")" = 4 ] && ok "all 4 accounts are done" ||
	not_ok "all 4 accounts are done: $(q "select string_agg(user1 || '=' || state, ' ') from job")"
bad=$(q "select count(*) from job_attempt where error_code = 'NO_CREDENTIALS' or outcome = 'failed'")
grep -q "account failed" "$work/b.out" "$work/c.out" && bad="$bad+log"
[ "$bad" = 0 ] && ok "no attempt failed for credentials, no account reported failed" ||
	not_ok "no attempt failed for credentials, no account reported failed ($bad)"
diag "accounts the worker host ran: $(q "select count(distinct a.job_id) from job_attempt a join engine e on e.id = a.engine_id where e.pid = $wpid")"
bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp" | sed 's/^/# /'; }; done
[ $bad -eq 0 ] && ok "every destination equals its source: nothing missing, nothing twice" || not_ok "$bad accounts differ"
