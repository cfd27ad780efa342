#!/bin/sh
# Two processes share one state database: `run` imports and works, `worker` joins; kill -9 the
# first one mid-run: the worker takes its accounts back after the lease expires and finishes the
# run; every destination equals its source message by message.
# Accounts: user28, user29, user30, user39, user40.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test workers
plan 6
pa="" pb=""
cleanup() { kill -9 $pa $pb 2>/dev/null; lab_db_cleanup; }
users="user28 user29 user30 user39 user40"
wipe_dst $users
# shellcheck disable=SC2086
lab_csv $users >"$work/accounts.csv"
cd "$work" || exit 1
sql_open "$STATE_URL"
common="--state $STATE_URL --no-progress --lease 3000 --cafile1 $LAB_CA --cafile2 $LAB_CA"
# --batch 1: one message per window, so that accounts take long enough to be caught mid-copy.
# shellcheck disable=SC2086
"$IMAPFLEET" run "$work/accounts.csv" $common --workers 2 --batch 1 >"$work/a.out" 2>"$work/a.err" &
pa=$!
for i in $(seq 1 100); do # the worker joins the run once it is in the database
	[ "$(psql "$STATE_URL" -Atc "select count(*) from job" 2>/dev/null)" = 5 ] && break
	sleep 0.05
done
# shellcheck disable=SC2086
"$IMAPFLEET" worker --state "$STATE_URL" --no-progress --lease 3000 --workers 1 >"$work/b.out" 2>"$work/b.err" &
pb=$!
# Kill the run process the moment it holds an account with some messages copied (polled through one
# open session: a poll costs milliseconds, not a login).
held=0
for i in $(seq 1 400); do
	held=$(sql_num "select count(*) from job j join engine e on e.id = j.lease_owner
		where j.state = 'running' and e.pid = $pa and j.msgs_copied > 0")
	[ "${held:-0}" -ge 1 ] && break
	kill -0 $pa 2>/dev/null || break
	sleep 0.05
done
kill -9 $pa
diag "killed the run process while it held $held accounts"
[ "${held:-0}" -ge 1 ] && ok "the first process held accounts when it was killed" || not_ok "the first process held accounts when it was killed ($held)"
wait $pb
rc=$?
[ $rc -eq 0 ] && ok "the worker finishes the run (exit 0)" || { not_ok "the worker finishes the run (exit $rc)"; tail -n 20 "$work/b.err" | sed 's/^/# /'; }
n=$(psql "$STATE_URL" -Atc "select count(*) from job where state = 'done'")
[ "$n" = 5 ] && ok "all 5 accounts are done" || not_ok "all 5 accounts are done ($n)"
r=$(psql "$STATE_URL" -Atc "select count(*) from job_attempt where outcome = 'lease_expired'")
[ "${r:-0}" -ge 1 ] && ok "the killed process's accounts were taken back after their lease expired ($r)" ||
	not_ok "accounts taken back after lease expiry (lease_expired attempts: $r)"
bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp" | sed 's/^/# /'; }; done
[ $bad -eq 0 ] && ok "every destination equals its source: nothing missing, nothing twice" || not_ok "$bad accounts differ"
dups=$(psql "$STATE_URL" -Atc "select count(*) from (select folder_id, src_uidvalidity, src_uid from message group by 1, 2, 3 having count(*) > 1) d")
[ "$dups" = 0 ] && ok "no ledger row is duplicated" || not_ok "no ledger row is duplicated ($dups)"
