#!/bin/sh
# The accounts file is the truth for the run: a row removed from it is named and not run by the
# next pass (no attempt is made: the state's attempt history shows none), status says why;
# --keep-removed runs it anyway (the old behaviour); its row put back brings it back. `cancel
# --account` takes an account out of later passes until `retry --account` names it; `cancel --all`
# and `--failed` work on the run. Every pass ends with the destinations compared to the sources
# message by message.
# Accounts: lab src/dst user49 and user50 (only this test uses them).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test removed_cancel 50
plan 21
wipe_dst user49 user50 || diag "could not wipe the destination accounts"
csv="$work/accounts.csv"
write_csv() { lab_csv "$@" >"$csv"; }
runit() {
	_n=$1; shift
	lab_run "$_n" --key-file "$work/key" --max-attempts 3 --retry-base 100 --retry-cap 200 "$@"
}
tries() { q "select count(*) from job_attempt a join job j on j.id = a.job_id where j.user1 = '$1'"; }
st() { q "select state || ' ' || coalesce(last_error_code, '-') from job where user1 = '$1'"; }
both_exact() {
	same_mail "$LAB_SRC_IMAPS" user49 user49 >"$work/cmp49" 2>&1 && same_mail "$LAB_SRC_IMAPS" user50 user50 >"$work/cmp50" 2>&1
}

write_csv user49 user50
runit run1
rc=$?
[ $rc -eq 0 ] && [ "$(st user49)/$(st user50)" = "done -/done -" ] && ok "the first pass migrates both accounts (exit 0)" ||
	{ not_ok "the first pass migrates both accounts (exit $rc)"; tail -n 10 "$work/run1.err" | sed 's/^/# /'; }
check "both destinations equal their sources message by message" both_exact
copied50=$(q "select msgs_copied from job where user1 = 'user50'")

# user50's row removed: named, not run, recorded cancelled with the reason.
write_csv user49
t50=$(tries user50)
runit run2
rc=$?
[ "$(tries user50)" = "$t50" ] && ok "the pass without user50's row made no attempt for it" ||
	not_ok "the pass without user50's row made no attempt for it ($t50 -> $(tries user50))"
[ "$(st user50)" = "cancelled REMOVED" ] && [ "$(st user49)" = "done -" ] &&
	ok "user50 is recorded cancelled (removed from the file), user49 made its pass" ||
	not_ok "user50 cancelled REMOVED, user49 done ($(st user50) / $(st user49))"
grep -q "left out of this pass: account [0-9]* user50@localhost -> user50@localhost: not in the accounts file" "$work/run2.err" &&
	grep -q "^left out of this pass: 0 whose login was refused (credential unchanged), 1 no longer in the accounts file" "$work/run2.out" &&
	ok "the pass names user50 as no longer in the accounts file" ||
	{ not_ok "the pass names user50 as removed"; cat "$work/run2.out" "$work/run2.err" | tail -n 8 | sed 's/^/# /'; }
[ $rc -eq 0 ] && ok "a removed account does not make the pass fail (exit 0)" || not_ok "a removed account does not make the pass fail (exit $rc)"
"$IMAPFLEET" status --state "$STATE_URL" >"$work/status.out" 2>&1
case $(grep 'user50@localhost -> user50@localhost' "$work/status.out") in
*cancelled*REMOVED*"not in the accounts file"*"left out of later passes: removed from the accounts file"*)
	ok "status shows user50 cancelled, removed from the accounts file" ;;
*) not_ok "status shows user50 removed: '$(grep 'user50@localhost' "$work/status.out")'" ;;
esac

# --keep-removed: the old behaviour, the stored account runs.
runit run3 --keep-removed
[ "$(tries user50)" = $((t50 + 1)) ] && [ "$(st user50)" = "done -" ] &&
	ok "--keep-removed runs the removed account (one attempt, done)" ||
	not_ok "--keep-removed runs the removed account ($(tries user50) attempts, $(st user50))"
runit run4
[ "$(st user50)" = "cancelled REMOVED" ] && [ "$(tries user50)" = $((t50 + 1)) ] &&
	ok "without it the next pass leaves user50 out again" || not_ok "without it user50 is left out again ($(st user50))"

# The row put back: the account is queued and runs.
write_csv user49 user50
runit run5
rc=$?
[ $rc -eq 0 ] && [ "$(st user50)" = "done -" ] && grep -q "1 accounts removed from the accounts file earlier are back" "$work/run5.err" &&
	ok "its row put back, user50 is back and done (exit 0)" ||
	{ not_ok "its row put back, user50 is back and done (exit $rc, $(st user50))"; tail -n 8 "$work/run5.err" | sed 's/^/# /'; }
check "both destinations still equal their sources" both_exact
[ "$(q "select msgs_copied from job where user1 = 'user50'")" = "$copied50" ] && ok "user50: nothing copied twice" ||
	not_ok "user50: nothing copied twice ($(q "select msgs_copied from job where user1 = 'user50'") vs $copied50)"

# cancel --account, then retry --account undoes it.
"$IMAPFLEET" cancel --state "$STATE_URL" --account user49 >"$work/cancel1.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "^cancelled account [0-9]* of run [0-9]*: user49@localhost -> user49@localhost (was done)" "$work/cancel1.out" &&
	[ "$(st user49)" = "cancelled CANCELLED" ] && ok "cancel --account user49 cancels a done account (exit 0)" ||
	{ not_ok "cancel --account user49 (exit $rc, $(st user49))"; sed 's/^/# /' "$work/cancel1.out"; }
t49=$(tries user49)
runit run6
[ "$(tries user49)" = "$t49" ] && [ "$(st user49)" = "cancelled CANCELLED" ] && [ "$(st user50)" = "done -" ] &&
	ok "the next pass leaves the cancelled account out (no attempt) and runs the other" ||
	not_ok "the next pass leaves user49 out ($t49 -> $(tries user49), $(st user49), user50 $(st user50))"
"$IMAPFLEET" status --state "$STATE_URL" >"$work/status2.out" 2>&1
case $(grep 'user49@localhost -> user49@localhost' "$work/status2.out") in
*cancelled*"cancelled by imapfleet cancel"*) ok "status shows user49 cancelled by imapfleet cancel" ;;
*) not_ok "status shows user49 cancelled: '$(grep 'user49@localhost' "$work/status2.out")'" ;;
esac
"$IMAPFLEET" cancel --state "$STATE_URL" --account user49 >"$work/cancel2.out" 2>&1
[ $? -eq 1 ] && grep -q "is cancelled already" "$work/cancel2.out" && ok "cancelling it again exits 1 and says so" ||
	not_ok "cancelling it again exits 1 and says so"
"$IMAPFLEET" retry --state "$STATE_URL" --account user49 >"$work/retry.out" 2>&1
runit run7
rc=$?
[ $rc -eq 0 ] && [ "$(st user49)" = "done -" ] && [ "$(tries user49)" = $((t49 + 1)) ] &&
	ok "retry --account undoes the cancel: the next pass runs it (exit 0)" ||
	{ not_ok "retry --account undoes the cancel (exit $rc, $(st user49))"; sed 's/^/# /' "$work/retry.out"; }
check "after all passes both destinations equal their sources message by message" both_exact

# The run-wide forms.
"$IMAPFLEET" cancel --state "$STATE_URL" --failed >"$work/cancel3.out" 2>&1
[ $? -eq 1 ] && ok "cancel --failed with no failed account exits 1" || not_ok "cancel --failed with nothing to do exits 1"
"$IMAPFLEET" cancel --state "$STATE_URL" --all >"$work/cancel4.out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(q "select string_agg(state, ',' order by user1) from job")" = "cancelled,cancelled" ] &&
	grep -q "^cancelled 2 accounts" "$work/cancel4.out" && ok "cancel --all cancels every account of the run (exit 0)" ||
	{ not_ok "cancel --all cancels every account (exit $rc)"; sed 's/^/# /' "$work/cancel4.out"; }
"$IMAPFLEET" cancel --state "$STATE_URL" --all --failed >"$work/cancel5.out" 2>&1
[ $? -eq 2 ] && ok "cancel with two choices is a usage error (exit 2)" || not_ok "cancel with two choices exits 2"
