#!/bin/sh
# A refused login is not tried again by later passes until the credential changes: user47's
# destination passfile holds a wrong password. The first pass fails it (auth) and records a keyed
# hash of the refused credential (32 bytes, not the password); the next pass does not log in with
# it again (the destination Dovecot's own log counts the refused logins for user47), names it as
# left out, and status says why; user48 in the same file makes its delta pass meanwhile. `retry
# --account` names it: the next pass tries once more (refused again, one more refusal in the log).
# Once the passfile holds the right password the next pass logs in and copies user47 exactly
# (message by message), and user48 was never copied twice.
# Accounts: lab src/dst user47 and user48 (only this test uses them).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test auth_hold 48
dstlog="${LAB_LOGS:-$LAB_DIR/run/log}/dst.log"
[ -r "$dstlog" ] || skip_all "the lab's dst log is not readable ($dstlog)"
plan 18
wipe_dst user47 user48 || diag "could not wipe the destination accounts"
printf 'not-the-password-47\n' >"$work/pass47"
chmod 600 "$work/pass47"
csv="$work/accounts.csv"
lab_csv "user47:user47:$work/pass47" user48 >"$csv"
runit() { lab_run "$1" --key-file "$work/key" --max-attempts 3 --retry-base 100 --retry-cap 200; }
# Refused logins of user47 in the destination server's own log.
refusals() { grep -c 'auth failed.*user=<user47>' "$dstlog"; }
settle() { sleep 1; } # Dovecot writes the login process's line when the connection closes
# runpass NAME: one pass; its exit code in $rc, the server's log settled.
runpass() { runit "$1"; rc=$?; settle; }
state47() { q "select state || ' ' || coalesce(last_error_class, '-') from job where user1 = 'user47'"; }

r0=$(refusals)
runpass run1
r1=$(refusals)
[ $rc -eq 1 ] && [ "$(state47)" = "failed auth" ] && ok "the first pass fails user47 on its refused login (exit 1)" ||
	{ not_ok "the first pass fails user47 on auth (exit $rc, $(state47))"; tail -n 15 "$work/run1.err" | sed 's/^/# /'; }
[ $((r1 - r0)) -eq 1 ] && ok "the server saw exactly one refused login for user47" ||
	not_ok "the server saw exactly one refused login for user47 (saw $((r1 - r0)))"
[ "$(q "select auth_block_side || ' ' || length(auth_block_hmac) || ' ' || position(convert_to('not-the-password-47', 'UTF8') in auth_block_hmac) from job where user1 = 'user47'")" = "2 32 0" ] &&
	ok "a 32-byte keyed hash of the refused destination credential is recorded, not the password" ||
	not_ok "the refused credential's hash is recorded ($(q "select auth_block_side, length(auth_block_hmac) from job where user1 = 'user47'"))"
copied48=$(q "select msgs_copied from job where user1 = 'user48'")

# The next pass with the same wrong password: user47 is left out, the server sees no new login.
runpass run2
r2=$(refusals)
[ $((r2 - r1)) -eq 0 ] && ok "the next pass did not try the refused credential again (server log: no new refusal)" ||
	not_ok "the next pass did not try the refused credential again ($((r2 - r1)) new refusals)"
[ $rc -eq 1 ] && [ "$(state47)" = "failed auth" ] && ok "user47 stays failed, the pass exits 1" ||
	not_ok "user47 stays failed, the pass exits 1 (exit $rc, $(state47))"
grep -q "left out of this pass: account [0-9]* user47@localhost -> user47@localhost: its login was refused" "$work/run2.err" &&
	grep -q "^left out of this pass: 1 whose login was refused" "$work/run2.out" &&
	ok "the pass names user47 as left out and why" ||
	{ not_ok "the pass names user47 as left out and why"; cat "$work/run2.out" "$work/run2.err" | tail -n 10 | sed 's/^/# /'; }
[ "$(q "select state || ' ' || attempts from job where user1 = 'user48'")" = "done 1" ] &&
	[ "$(sed -n 's/.*this host copied \([0-9]*\) messages.*/\1/p' "$work/run2.out")" = 0 ] &&
	ok "user48 made its delta pass meanwhile (done, nothing copied)" ||
	not_ok "user48 made its delta pass ($(q "select state, attempts from job where user1 = 'user48'"))"
line=$(status_line 'user47@localhost -> user47@localhost')
case $line in
*failed*auth*"left out of later passes"*credential*) ok "status shows user47 failed and left out of later passes" ;;
*) not_ok "status shows user47 left out: '$line'" ;;
esac
"$IMAPFLEET" status --state "$STATE_URL" --json >"$work/status.json" 2>&1
python3 - "$work/status.json" <<'PY' && ok "status --json says user47 is left out for its credential" ||
import json, sys
a = {x["source"]["user"]: x for x in json.load(open(sys.argv[1]))["accounts"]}
assert a["user47"]["left_out"] == "credential", a["user47"]
assert a["user48"]["left_out"] is None, a["user48"]
PY
	{ not_ok "status --json says user47 is left out for its credential"; head -c 600 "$work/status.json" | sed 's/^/# /'; }

fleet_report
python3 - "$work/rep" <<'PY' && ok "the report (CSV, JSON, HTML) says why user47 is left out" ||
import csv, json, os, sys
d = sys.argv[1]
a = {x["source"]["user"]: x for x in json.load(open(os.path.join(d, "accounts.json")))["accounts"]}
assert a["user47"]["left_out"] == "credential" and a["user48"]["left_out"] is None, a
rows = {r["user1"]: r for r in csv.DictReader(open(os.path.join(d, "accounts.csv")))}
assert rows["user47"]["left_out"] == "credential" and rows["user48"]["left_out"] == "", rows
assert "left out of later passes: credential refused" in open(os.path.join(d, "report.html")).read()
PY
	{ not_ok "the report says why user47 is left out"; sed 's/^/# /' "$work/report.out"; }

# `retry --account` names it: the next pass tries once (still refused) and holds it again.
"$IMAPFLEET" retry --state "$STATE_URL" --account user47 >"$work/retry.out" 2>&1
runpass run3
r3=$(refusals)
[ $((r3 - r2)) -eq 1 ] && [ "$(state47)" = "failed auth" ] &&
	ok "after retry --account the next pass tried once more (one new refusal in the server log)" ||
	not_ok "after retry --account the next pass tried once more ($((r3 - r2)) new refusals, $(state47))"
runpass run4
r4=$(refusals)
[ $((r4 - r3)) -eq 0 ] && ok "and the pass after that leaves it out again" ||
	not_ok "and the pass after that leaves it out again ($((r4 - r3)) new refusals)"

# The passfile now holds the right password: a changed credential is tried at once.
cp "$LAB_SECRETS/dst/user47" "$work/pass47"
runpass run5
r5=$(refusals)
[ $rc -eq 0 ] && [ "$(state47)" = "done -" ] && ok "after the passfile changed the next pass migrates user47 (exit 0)" ||
	{ not_ok "after the passfile changed the next pass migrates user47 (exit $rc, $(state47))"; tail -n 15 "$work/run5.err" | sed 's/^/# /'; }
[ $((r5 - r4)) -eq 0 ] && ok "no refused login on the way" || not_ok "no refused login on the way ($((r5 - r4)))"
grep -q "1 accounts whose login was refused have a new credential" "$work/run5.err" && ok "the pass says the new credential is tried" ||
	not_ok "the pass says the new credential is tried"
[ "$(q "select coalesce(auth_block_side::text, 'none') from job where user1 = 'user47'")" = none ] &&
	ok "the hold is gone" || not_ok "the hold is gone"
check "user47 equals its source message by message" same_mail "$LAB_SRC_IMAPS" user47 user47
same_mail "$LAB_SRC_IMAPS" user48 user48 >"$work/cmp48" 2>&1 &&
	[ "$(q "select msgs_copied from job where user1 = 'user48'")" = "$copied48" ] &&
	ok "user48 equals its source message by message, nothing copied twice" ||
	{ not_ok "user48 equals its source, nothing copied twice"; tail -n 10 "$work/cmp48" | sed 's/^/# /'; }
