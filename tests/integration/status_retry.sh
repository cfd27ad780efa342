#!/bin/sh
# imapfleet status and retry: after a run where user33's destination password is wrong, status
# shows the run and the failed account with its auth reason (text and JSON) and exits 3 when the
# state store is unreachable; retry --failed requeues it (queued, attempts 0) and says so; retry
# --account user31 requeues a done account keeping its progress; a name that matches nothing exits
# 1; after the passfile is fixed a second run makes user33 done, exact message by message, and
# copies nothing twice for user31.
# Accounts: user31 and user33 (the lock below keeps report.sh, which shares them, out).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
exec 9>"$LAB_DIR/user31-34.lock"
flock -w 900 9 || skip_all "accounts user31..34 stayed busy (lock $LAB_DIR/user31-34.lock)"
lab_db_test status_retry
plan 16
wipe_dst user31 user33 || diag "could not wipe the destination accounts"

printf 'Lp-not-the-password' >"$work/pass33"
chmod 600 "$work/pass33"
csv="$work/accounts.csv"
lab_csv user31 "user33:user33:$work/pass33" >"$csv"
runit() { lab_run "$1" --max-attempts 10 --retry-base 200 --retry-cap 2000; }
runit run1
check_rc 1 $? "the first run ends with user33 failed (exit 1)" "$work/run1.err"

# ---- status ---------------------------------------------------------------------------------
"$IMAPFLEET" status --state "$STATE_URL" >"$work/status.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "status exits 0" || not_ok "status exits 0 (got $rc)"
sed 's/^/# /' "$work/status.out" | cut -c1-160
grep -Eq '^run [0-9]+ .*accounts\.csv' "$work/status.out" &&
	grep -q 'accounts: 2 total, 1 done, 1 failed' "$work/status.out" &&
	ok "status shows the run with its accounts by state" || not_ok "status shows the run with its accounts by state"
line33=$(grep 'user33@localhost -> user33@localhost' "$work/status.out")
case $line33 in
*failed*auth*AUTHENTICATIONFAILED*) ok "status shows user33 failed with its reason (auth AUTHENTICATIONFAILED)" ;;
*) not_ok "status shows user33 failed with its reason: '$line33'" ;;
esac
"$IMAPFLEET" status --state "$STATE_URL" --json >"$work/status.json" 2>"$work/status.jerr"
python3 - "$work/status.json" <<'PY' && ok "status --json: valid JSON with the run and user33's error class" ||
import json, sys
d = json.load(open(sys.argv[1]))
a = {x["source"]["user"]: x for x in d["accounts"]}
assert len(d["runs"]) == 1 and d["runs"][0]["accounts"]["failed"] == 1 and d["run_id"] == d["runs"][0]["id"], d["runs"]
assert a["user33"]["state"] == "failed" and a["user33"]["error"]["class"] == "auth", a["user33"]
assert a["user31"]["state"] == "done" and a["user31"]["error"] is None and a["user31"]["msgs_copied"] > 0, a["user31"]
PY
	not_ok "status --json: valid JSON with the run and user33's error class"
"$IMAPFLEET" status --state "postgresql://nobody:x@127.0.0.1:1/none?connect_timeout=3" >"$work/down.out" 2>&1
rc=$?
[ $rc -eq 3 ] && ok "status exits 3 when the state store is unreachable" ||
	{ not_ok "status exits 3 when the state store is unreachable (got $rc)"; sed 's/^/# /' "$work/down.out"; }

# ---- retry ----------------------------------------------------------------------------------
copied31=$(q "select msgs_copied from job where user1 = 'user31'")
"$IMAPFLEET" retry --state "$STATE_URL" --failed >"$work/retry1.out" 2>&1
rc=$?
sed 's/^/# /' "$work/retry1.out" | cut -c1-160
[ $rc -eq 0 ] && grep -q "requeued account .*user33@localhost -> user33@localhost (was failed: auth" "$work/retry1.out" &&
	ok "retry --failed exits 0 and names the account it requeued, with its old reason" ||
	not_ok "retry --failed exits 0 and names the account it requeued (got $rc)"
[ "$(q "select state || ' ' || attempts || ' ' || coalesce(last_error_class, '-') from job where user1 = 'user33'")" = "queued 0 -" ] &&
	ok "user33 is queued again with attempts 0 and no error" ||
	not_ok "user33 is queued again with attempts 0: $(q "select state, attempts from job where user1 = 'user33'")"
"$IMAPFLEET" retry --state "$STATE_URL" --failed >"$work/retry2.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "retry --failed with no failed account exits 1" || not_ok "retry --failed with nothing to do exits 1 (got $rc)"
"$IMAPFLEET" retry --state "$STATE_URL" --account user31 >"$work/retry3.out" 2>&1
rc=$?
sed 's/^/# /' "$work/retry3.out" | cut -c1-160
[ $rc -eq 0 ] && grep -q "user31@localhost -> user31@localhost (was done)" "$work/retry3.out" &&
	[ "$(q "select state || ' ' || attempts || ' ' || msgs_copied from job where user1 = 'user31'")" = "queued 0 $copied31" ] &&
	ok "retry --account user31 requeues a done account (queued, attempts 0, its $copied31 messages still counted)" ||
	not_ok "retry --account user31 requeues a done account (rc $rc): $(q "select state, attempts, msgs_copied from job where user1 = 'user31'")"
"$IMAPFLEET" retry --state "$STATE_URL" --account nosuchuser >"$work/retry4.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "retry --account with a name that matches nothing exits 1" || not_ok "retry --account nosuchuser exits 1 (got $rc)"
"$IMAPFLEET" retry --state "$STATE_URL" >"$work/retry5.out" 2>&1
rc=$?
[ $rc -eq 2 ] && ok "retry without --failed or --account is a usage error (exit 2)" || not_ok "retry without a choice exits 2 (got $rc)"

# ---- the second run, after the fix ------------------------------------------------------------
cp "$LAB_SECRETS/dst/user33" "$work/pass33"
runit run2
rc=$?
[ $rc -eq 0 ] && ok "the second run after fixing the passfile exits 0" ||
	{ not_ok "the second run after fixing the passfile exits 0 (got $rc)"; tail -n 20 "$work/run2.err" | sed 's/^/# /'; }
[ "$(q "select string_agg(user1 || '=' || state, ' ' order by user1) from job")" = "user31=done user33=done" ] &&
	ok "both accounts are done" || not_ok "both accounts are done: $(q "select user1, state from job")"
same_mail "$LAB_SRC_IMAPS" user33 user33 >"$work/cmp33" 2>&1 && ok "user33 equals its source message by message" ||
	{ not_ok "user33 equals its source message by message"; tail -n 15 "$work/cmp33" | sed 's/^/# /'; }
same_mail "$LAB_SRC_IMAPS" user31 user31 >"$work/cmp31" 2>&1 &&
	[ "$(q "select msgs_copied from job where user1 = 'user31'")" = "$copied31" ] &&
	ok "user31 was copied nothing twice (still equal to its source, still $copied31 messages)" ||
	{ not_ok "user31 was copied nothing twice"; tail -n 15 "$work/cmp31" | sed 's/^/# /'; }
