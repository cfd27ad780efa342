#!/bin/sh
# claim_takeover: a claim is not a lease on a connection slot. `run` with 4 workers and one
# connection per server copies one account and holds the others' claims while they wait for a
# slot; kill -9 it. A `worker` started then takes the waiting accounts over within seconds (their
# short lease: at the kill none of them holds more than 4 s), long before the 20 s lease of the
# account that was copying expires (the worker has a thread for each, so that taking them over does
# not wait for a copy to end), counts no
# second attempt for them (no lease_expired attempt either), takes the copying one over when its
# lease expires (that one counts), and finishes the run: every destination equals its source.
# Accounts: user28, user29, user30, user39, user40 (as run_workers.sh).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test takeover
plan 9
pa="" pb="" DELAY_PID=""
cleanup() { kill -9 $pa $pb 2>/dev/null; [ -z "$DELAY_PID" ] || kill "$DELAY_PID" 2>/dev/null; lab_db_cleanup; }
q() { psql "$STATE_URL" -Atc "$1" 2>/dev/null; }
users="user28 user29 user30 user39 user40"
wipe_dst $users
# The source sits behind the benchmark's delay proxy (30 ms round trip): with --batch 1 an account
# then takes seconds to copy however fast the machine, so the one seen copying below is still
# copying when the kill lands.
delay_proxy "$work" 30
# shellcheck disable=SC2086
LAB_SRC_IMAPS=$DELAY_PORT lab_csv $users >"$work/accounts.csv"
cd "$work" || exit 1
sql_open "$STATE_URL"
"$IMAPFLEET" run "$work/accounts.csv" --state "$STATE_URL" --no-progress --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	--workers 4 --max-conns-per-host 1 --batch 1 >"$work/a.out" 2>&1 &
pa=$!
# Wait until it copies one account and three more wait for a slot under its claims, both seen in
# one snapshot of the state (one open session: a poll costs milliseconds), and kill it then.
copying="" waiting=""
for i in $(seq 1 600); do
	snap=$(sql_get "select coalesce((select string_agg(j.id::text, ' ') from job j join engine e on e.id = j.lease_owner
		where e.pid = $pa and j.state = 'running' and not j.lease_waiting and j.msgs_copied > 0), '') || ':' || coalesce((select string_agg(j.id::text, ' ' order by j.id)
		from job j join engine e on e.id = j.lease_owner where e.pid = $pa and j.state = 'running' and j.lease_waiting), '')")
	copying=${snap%%:*} waiting=${snap#*:}
	[ -n "$copying" ] && [ "$(echo $waiting | wc -w)" -ge 3 ] && break
	kill -0 $pa 2>/dev/null || break
	sleep 0.05
done
kill -9 $pa
t0=$(date +%s.%N)
[ -n "$copying" ] && [ "$(echo $waiting | wc -w)" -ge 3 ] &&
	ok "killed the run while it copied account $copying and held accounts $waiting waiting for a slot" ||
	not_ok "the run copied one account and held three waiting (copying '$copying', waiting '$waiting')"
long=$(sql_get "select coalesce(string_agg(id || ':' || round(extract(epoch from lease_expires - now()))::text, ' '), '')
	from job where id in ($(echo ${waiting:-0} | tr ' ' ',')) and lease_expires > now() + interval '5 seconds'")
[ -n "$waiting" ] && [ -z "$long" ] && ok "the waiting accounts' claims held short leases (at most 5 s left at the kill)" ||
	not_ok "the waiting accounts' claims held short leases (seconds left, account:s: '$long')"
"$IMAPFLEET" worker --state "$STATE_URL" --no-progress --workers 4 >"$work/b.out" 2>&1 &
pb=$!
# How long until every waiting account is the worker's (or done), and was the copying one still
# the dead run's then (its 20 s lease not yet expired)? Both from one snapshot, through the open
# session (a psql login per poll took a second under load, and the answer came that much late).
took="" still=""
for i in $(seq 1 1200); do
	snap=$(sql_get "select (select count(*) from job j left join engine e on e.id = j.lease_owner
		where j.id in ($(echo ${waiting:-0} | tr ' ' ',')) and j.state = 'running' and (e.pid is null or e.pid <> $pb))
		|| ':' || (select count(*) from job j join engine e on e.id = j.lease_owner where j.id = ${copying:-0}
		and e.pid = $pa and j.state = 'running')")
	if [ "${snap%%:*}" = 0 ]; then
		still=${snap#*:}
		took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		break
	fi
	sleep 0.05
done
diag "the waiting accounts were the worker's ${took:-never} s after the kill"
[ -n "$took" ] && [ "$still" = 1 ] &&
	ok "the worker took the waiting accounts over while the copying one still had its lease (${took} s)" ||
	not_ok "the waiting accounts taken over before the copying account's lease expired (took '${took}', still '$still')"
wait $pb
rc=$?
[ $rc -eq 0 ] && ok "the worker finishes the run (exit 0)" || { not_ok "the worker finishes the run (exit $rc)"; tail -n 20 "$work/b.out" | sed 's/^/# /'; }
[ "$(q "select count(*) from job where state = 'done'")" = 5 ] && ok "all 5 accounts are done" ||
	not_ok "all 5 accounts are done: $(q "select string_agg(user1 || '=' || state, ' ') from job")"
att=$(q "select string_agg(attempts::text, ' ' order by id) from job where id in ($(echo $waiting | tr ' ' ','))")
[ "$att" = "$(echo $waiting | sed 's/[0-9][0-9]*/1/g')" ] &&
	ok "the accounts that only waited count one attempt each ($att)" ||
	not_ok "the accounts that only waited count one attempt each (attempts: $att)"
r=$(q "select string_agg(distinct job_id::text, ' ') from job_attempt where outcome = 'lease_expired'")
[ "$r" = "$copying" ] && [ "$(q "select attempts from job where id = $copying")" = 2 ] &&
	ok "only the copying account was taken back as lease_expired, its attempt counted (2 attempts)" ||
	not_ok "lease_expired attempts: '$r' (copying: $copying, its attempts $(q "select attempts from job where id = $copying"))"
bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp" | sed 's/^/# /'; }; done
[ $bad -eq 0 ] && ok "every destination equals its source: nothing missing, nothing twice" || not_ok "$bad accounts differ"
dups=$(q "select count(*) from (select folder_id, src_uidvalidity, src_uid from message group by 1, 2, 3 having count(*) > 1) d")
[ "$dups" = 0 ] && ok "no ledger row is duplicated" || not_ok "no ledger row is duplicated ($dups)"
