#!/bin/sh
# Daily budgets and the providers' "used up for today" and throttling answers, with scripted fake
# servers (tests/tools/fakeimap.py) as sources and the lab's Dovecot as the destination. A day is
# shortened to 3 s (IMAPFLEET_TEST_DAY_SECONDS, tests only):
#   bud1: --daily-download1 400 over 12 messages of ~100 bytes: copies a budget's worth, is parked
#         until its day is over (status and reports show it with its resume time and an ETA over
#         days), resumes by itself, again, until done;
#   bud2: Gmail's "[OVERQUOTA] Account exceeded command or bandwidth limits" mid-copy: parked for a
#         day, resumes, done;
#   bud3: Office 365's "BAD User is authenticated but not connected." twice: parked as throttled
#         (not counted as attempts), then done.
# The run is stopped while bud1 is parked; a `worker` (another host) resumes it later. Every
# destination is compared with its source message by message.
# Accounts: bud1, bud2, bud3 on dst (added here).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 17
fresh_db budget
work=$(mktemp -d "${TMPDIR:-/tmp}/run-budget.XXXXXX")
pids=""
cleanup() { [ -n "$pids" ] && kill $pids 2>/dev/null; drop_db; rm -rf "$work"; }
trap cleanup EXIT
for a in bud1 bud2 bud3; do
	LAB_DIR=$_labdir "${top_srcdir:-.}/scripts/lab.sh" add-account $a >/dev/null 2>&1 || diag "could not add account $a"
done
wipe_dst bud1 bud2 bud3 || diag "could not wipe"
printf 'fake-secret-pw\n' >"$work/fakepw"
chmod 600 "$work/fakepw"
export IMAPFLEET_TEST_DAY_SECONDS=3

start_fake() { # SCENARIO NAME [args]: sets port_NAME
	fake_imap "$@" --user fake --password fake-secret-pw
}
job() { # DSTUSER COLUMNS
	psql "$STATE_URL" -Atc "select $2 from job where user2 = '$1'"
}
fake_same() { # PORT DSTUSER
	$MAILCMP --cafile "$LAB_CA" --src-host localhost --src-port "$1" --src-user fake --src-passfile "$work/fakepw" \
		--dst-host localhost --dst-port "$LAB_DST_IMAPS" --dst-user "$2" --dst-passfile "$LAB_SECRETS/dst/$2"
}

start_fake normal b1 --seed 12
start_fake bandwidth b2 --seed 8 --over-after 300 --over-for 2
start_fake throttle b3 --seed 5 --throttle-on select --throttle-count 2 \
	--throttle-text "BAD User is authenticated but not connected."
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2,options"
	echo "localhost,$port_b1,fake,$work/fakepw,ssl,localhost,$LAB_DST_IMAPS,bud1,$LAB_SECRETS/dst/bud1,ssl,--daily-download1 400"
	echo "localhost,$port_b2,fake,$work/fakepw,ssl,localhost,$LAB_DST_IMAPS,bud2,$LAB_SECRETS/dst/bud2,ssl,"
	echo "localhost,$port_b3,fake,$work/fakepw,ssl,localhost,$LAB_DST_IMAPS,bud3,$LAB_SECRETS/dst/bud3,ssl,"
} >"$work/a.csv"
cd "$work" || exit 1
common="--state $STATE_URL --no-progress --cafile1 $LAB_CA --cafile2 $LAB_CA --retry-base 300 --retry-cap 1000"

# shellcheck disable=SC2086
"$IMAPFLEET" run "$work/a.csv" $common --workers 3 >"$work/r.out" 2>"$work/r.err" &
pr=$!
pids="$pids $pr"
seen=
for i in $(seq 1 100); do
	"$IMAPFLEET" status --state "$STATE_URL" >"$work/st.txt" 2>&1
	grep "bud1" "$work/st.txt" | grep -q "parked (daily) until .* UTC, ETA " && { seen=1; break; }
	sleep 0.1
done
[ -n "$seen" ] && grep -q "^  parked:   [1-9][0-9]* of the queued accounts, the last resuming .* UTC; ETA of the parked .* UTC" "$work/st.txt" &&
	ok "status shows the account over its budget as parked, with its resume time and an ETA, and the run's parked count" ||
	{ not_ok "status shows bud1 parked with a resume time and an ETA"; sed 's/^/# /' "$work/st.txt"; }
"$IMAPFLEET" status --state "$STATE_URL" --json >"$work/st.json" 2>&1
check "status --json: parked.until and an ETA a day or more later (the 800 bytes left need two more 400-byte days); the run counts it" \
	python3 - "$work/st.json" <<'PY'
import json, sys, datetime
d = json.load(open(sys.argv[1]))
a = [x for x in d["accounts"] if x["destination"]["user"] == "bud1"][0]
p = a["parked"]
assert p and p["reason"] == "daily", p
t = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
assert t(p["eta"]) >= t(p["until"]) + datetime.timedelta(seconds=3), p
r = d["runs"][0]
assert r["accounts"]["parked"] >= 1 and r["parked_until"] and t(r["eta"]) >= t(p["eta"]), r
PY
# Stop this host while bud1 waits for its next day.
kill -INT $pr
wait $pr
# (its 3-second day may be over by now: what matters is that it waits in the queue, parked)
pu=$(job bud1 "state || ' ' || park_reason || ' ' || (parked_until is not null) || ' ' || msgs_copied")
case "$pu" in
"queued daily true "[1-9]*) ok "stopped while parked: bud1 stays queued and parked, some messages copied ($pu)" ;;
*) not_ok "bud1 queued, parked for its day, some messages copied (got '$pu')"; tail -n 5 "$work/r.err" | sed 's/^/# /' ;;
esac

# Another host resumes it, by itself, once its day is over.
"$IMAPFLEET" worker --state "$STATE_URL" --no-progress --workers 3 >"$work/w.out" 2>"$work/w.err"
rc=$?
[ $rc -eq 0 ] && ok "a worker on another host finishes the run (exit 0)" || { not_ok "the worker finishes the run (exit $rc)"; tail -n 20 "$work/w.err" | sed 's/^/# /'; }
[ "$(psql "$STATE_URL" -Atc "select string_agg(state, ',' order by user2) from job")" = "done,done,done" ] &&
	ok "all three accounts are done" || not_ok "all three done (got $(psql "$STATE_URL" -Atc "select string_agg(user2 || '=' || state, ',') from job"))"

parks() { # DSTUSER: parked attempts
	psql "$STATE_URL" -Atc "select count(*) from job_attempt a join job j on j.id = a.job_id where j.user2 = '$1' and a.outcome = 'parked'"
}
n=$(parks bud1)
[ "${n:-0}" -ge 2 ] && ok "bud1 was parked $n times for its daily budget (1200 bytes at 400 a day)" || not_ok "bud1 parked >= 2 times (got $n)"
[ "$(job bud1 attempts)" = 1 ] && ok "parks are not counted as attempts (bud1: 1)" || not_ok "bud1 attempts 1 (got $(job bud1 attempts))"
grep -h "parked until .* when its day is over" "$work/r.err" "$work/w.err" | grep -q "daily budget reached" &&
	ok "the log says the account is parked until its day is over, and why" || not_ok "the log says why bud1 is parked"
check "bud1: the destination equals the source, every message" fake_same "$port_b1" bud1

n=$(parks bud2)
c=$(job bud2 "(select string_agg(distinct error_code, ',') from job_attempt where job_id = job.id and outcome = 'parked')")
[ "${n:-0}" -ge 1 ] && [ "$c" = DAILY_LIMIT ] && ok "bud2: Gmail's bandwidth answer parks the account for a day (DAILY_LIMIT, $n)" ||
	not_ok "bud2 parked with DAILY_LIMIT (parks $n, codes $c)"
grep -q "Account exceeded command or bandwidth limits" "$work/r.err" "$work/w.err" &&
	ok "the provider's answer is in the log" || not_ok "the provider's answer is in the log"
check "bud2: the destination equals the source, every message (nothing twice after the cut)" fake_same "$port_b2" bud2

n=$(parks bud3)
c=$(job bud3 "(select string_agg(distinct error_class, ',') from job_attempt where job_id = job.id and outcome = 'parked')")
# The fake answers the first two sessions' SELECT with the throttle text. Each such session ends
# parked, unless the run was stopped (SIGINT above) while it was in that session (then that attempt
# ends interrupted, or the stop came before its SELECT). So: one or two parks, all as throttled,
# and (the next check) none of them counted as an attempt.
i=$(job bud3 "(select count(*) from job_attempt where job_id = job.id and outcome = 'interrupted')")
[ "${n:-0}" -ge 1 ] && [ "$n" -le 2 ] && [ "$c" = throttled ] &&
	ok "bud3: Office 365's 'User is authenticated but not connected' parks it as throttled ($n parked, $i interrupted by the stop)" ||
	{ not_ok "bud3 parked as throttled for each of the 2 throttled sessions (parks $n, interrupted $i, classes $c)"
		diag "bud3 attempts: $(job bud3 "(select string_agg(coalesce(outcome, '-') || '/' || coalesce(error_class, '-'), ' ' order by id) from job_attempt where job_id = job.id)")"; }
[ "$(job bud3 attempts)" = 1 ] && ok "throttle parks are not counted as attempts (bud3: 1)" || not_ok "bud3 attempts 1 (got $(job bud3 attempts))"
check "bud3: the destination equals the source, every message" fake_same "$port_b3" bud3

"$IMAPFLEET" report --state "$STATE_URL" --format csv --out "$work/rep" >/dev/null 2>&1
head -n 1 "$work/rep/accounts.csv" | grep -q "parked_until,park_reason,eta" &&
	ok "report's accounts.csv has parked_until, park_reason and eta" || { not_ok "accounts.csv has the park columns"; head -n 1 "$work/rep/accounts.csv" | sed 's/^/# /'; }
"$IMAPFLEET" status --state "$STATE_URL" --json >"$work/st2.json" 2>&1
check "status --json: no account is shown parked once all are done" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert all(a["parked"] is None for a in d["accounts"]), d["accounts"]' "$work/st2.json"
