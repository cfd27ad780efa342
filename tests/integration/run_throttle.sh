#!/bin/sh
# Errors drive the retry policy by class, with a scripted server (tests/tools/fakeimap.py) as the
# source: [THROTTLED] parks the account (not counted as an attempt), lowers that server's
# concurrency, and the account resumes by itself and succeeds;
# [AUTHENTICATIONFAILED] fails the account after exactly one attempt, with the reason;
# [UNAVAILABLE] is retried until the attempts run out.
# Accounts: dst user25..user27.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test throttle
plan 11
wipe_dst user25 user26 user27
printf 'fake-secret-pw\n' >"$work/fakepw"
chmod 600 "$work/fakepw"

start_fake() { # SCENARIO NAME [args]: sets port_NAME
	fake_imap "$@" --user fake --password fake-secret-pw --seed 4
}
row() { # SRCPORT DSTUSER
	echo "localhost,$1,fake,$work/fakepw,ssl,localhost,$LAB_DST_IMAPS,$2,$LAB_SECRETS/dst/$2,ssl"
}
job() { # DSTUSER COLUMNS
	psql "$STATE_URL" -Atc "select $2 from job where user2 = '$1'"
}
run() { # CSV OUT
	"$IMAPFLEET" run "$1" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
		--workers 3 --retry-base 200 --retry-cap 800 --max-attempts 4 >"$2.out" 2>"$2.err"
}

start_fake throttle th --throttle-count 2 --throttle-on login
start_fake authfail af
start_fake unavailable un
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	row "$port_th" user25
	row "$port_af" user26
	row "$port_un" user27
} >"$work/a.csv"
run "$work/a.csv" "$work/r"
rc=$?
[ $rc -eq 1 ] && ok "the run ends with exit 1 (some accounts failed)" || { not_ok "exit 1 (got $rc)"; tail -n 20 "$work/r.err" | sed 's/^/# /'; }

[ "$(job user25 state)" = done ] && ok "the throttled account is done in the end" || not_ok "the throttled account is done (state $(job user25 state))"
a=$(job user25 attempts)
p=$(psql "$STATE_URL" -Atc "select count(*) filter (where outcome = 'parked') || '/' || count(*) from job_attempt a join job j on j.id = a.job_id where j.user2 = 'user25'")
[ "${a:-0}" = 1 ] && [ "$p" = 2/3 ] && ok "the throttled account was parked twice, then done; the parks are not counted (attempts $a)" ||
	not_ok "throttled account: 2 of 3 attempts parked, attempts counted 1 (got parked/all $p, attempts $a)"
grep -q "throttles: its connection limit here is now" "$work/r.err" && ok "throttling lowers that server's connection limit" ||
	{ not_ok "throttling lowers that server's connection limit"; grep -i thrott "$work/r.err" | head -5 | sed 's/^/# /'; }
n=$(psql "$STATE_URL" -Atc "select count(*) from message m join folder f on f.id = m.folder_id join job j on j.id = f.job_id where j.user2 = 'user25' and m.state = 'copied'")
[ "$n" = 4 ] && ok "the throttled account's 4 messages are copied once" || not_ok "the throttled account's 4 messages are copied once (ledger: $n)"

[ "$(job user26 state)" = failed ] && ok "the account whose login is refused is failed" || not_ok "auth account failed (state $(job user26 state))"
[ "$(job user26 attempts)" = 1 ] && ok "an authentication failure is not retried (1 attempt)" || not_ok "auth failure attempts = 1 (got $(job user26 attempts))"
[ "$(job user26 last_error_class)" = auth ] && ok "its reason is recorded with class auth" || not_ok "class auth (got $(job user26 last_error_class))"
grep -q "AUTHENTICATIONFAILED" "$work/r.err" && ok "the log names AUTHENTICATIONFAILED" || not_ok "the log names AUTHENTICATIONFAILED"

[ "$(job user27 attempts)" = 4 ] && ok "[UNAVAILABLE] is retried until the attempts run out (4)" || not_ok "UNAVAILABLE attempts = 4 (got $(job user27 attempts))"
[ "$(job user27 state)" = failed ] && [ "$(job user27 last_error_class)" = transient ] &&
	ok "then the account fails with class transient" || not_ok "UNAVAILABLE ends failed/transient (got $(job user27 state)/$(job user27 last_error_class))"
