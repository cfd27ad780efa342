#!/bin/sh
# Truthful outcomes: a folder the destination refuses to CREATE makes the account end "partial"
# (never "done"): `run` exits 1 and says so, status shows the account partial with the folder and
# the server's reason, the state records the folder as failed, every other folder is copied exactly
# (message by message); the next pass tries that folder again and keeps the account partial.
# Source: lab src user12 (read only); destination: the scripted fake server (tests/tools/fakeimap.py).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test outcomes
plan 10
printf 'fake-dst-pw\n' >"$work/pw"
chmod 600 "$work/pw"

fake_imap normal fake --user dest --password fake-dst-pw --seed 0 --refuse-create Junk

csv="$work/accounts.csv"
{ echo "$CSV_HEADER"; echo "localhost,$LAB_SRC_IMAPS,user12,$LAB_SECRETS/src/user12,ssl,localhost,$port,dest,$work/pw,ssl"; } >"$csv"
runit() { lab_run "$1" --max-attempts 2 --retry-base 100 --retry-cap 200; }
cmp_fake() {
	$MAILCMP --cafile "$LAB_CA" --src-host localhost --src-port "$LAB_SRC_IMAPS" --src-user user12 \
		--src-passfile "$LAB_SECRETS/src/user12" --dst-host localhost --dst-port "$port" --dst-user dest \
		--dst-passfile "$work/pw" --no-flags "$@"
}

runit run1
check_rc 1 $? "a refused CREATE makes run exit 1" "$work/run1.err"
grep -q "1 partial, 0 failed" "$work/run1.out" && ok "the run line counts the account as partial" ||
	{ not_ok "the run line counts the account as partial"; sed 's/^/# /' "$work/run1.out"; }
[ "$(q "select state from job")" = partial ] && ok "the account is recorded partial, not done" ||
	not_ok "the account is recorded partial (got '$(q "select state from job")')"
[ "$(q "select state || ':' || (last_error like '%CANNOT%') from folder where src_name = 'Junk'")" = "failed:true" ] &&
	ok "the folder is recorded failed with the server's reason" ||
	not_ok "the folder is recorded failed with the server's reason ($(q "select state, last_error from folder where src_name = 'Junk'"))"
line=$(status_line 'user12@localhost -> dest@localhost')
case $line in
*partial*Junk*CANNOT*) ok "status shows the account partial with the folder and the reason" ;;
*) not_ok "status shows the account partial with the folder and the reason: '$line'" ;;
esac
fleet_report
python3 - "$work/rep" <<'PY' && ok "the report lists the account as partial with the folder's reason (CSV, JSON, HTML)" ||
import csv, json, os, sys
d = sys.argv[1]
acct = [a for a in json.load(open(os.path.join(d, "accounts.json")))["accounts"] if a["source"]["user"] == "user12"][0]
assert acct["state"] == "partial" and "Junk" in acct["error"]["text"] and "CANNOT" in acct["error"]["text"], acct
rows = list(csv.DictReader(open(os.path.join(d, "accounts.csv"))))
assert rows[0]["state"] == "partial", rows[0]
html = open(os.path.join(d, "report.html")).read()
assert "partial" in html and "Junk" in html
PY
	{ not_ok "the report lists the account as partial with the folder's reason"; sed 's/^/# /' "$work/report.out"; }
junk=$(python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/user12" "$LAB_CA" <<'PY'
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "tools"))
import mailcmp
a = mailcmp.Account("src", "localhost", int(sys.argv[1]), "user12", sys.argv[2], "ssl", None, sys.argv[3], 60)
print(int(a.ok(a.conn.select("Junk", readonly=True), "EXAMINE")[0] or 0))
PY
)
missing=$(cmp_fake 2>&1 | sed -n 's/^mailcmp: FAIL \([0-9]*\) missing, 0 extra.*/\1/p')
[ -n "$junk" ] && [ "$junk" -gt 0 ] && [ "$missing" = "$junk" ] &&
	ok "only the $junk messages of the refused folder are missing; the rest is exact" ||
	not_ok "only the refused folder's messages are missing (Junk holds '${junk}', missing '${missing}')"

# The next pass tries the folder again (still refused): partial again, nothing copied twice.
runit run2
rc=$?
[ $rc -eq 1 ] && [ "$(q "select state from job")" = partial ] && ok "the next pass ends partial again (exit 1)" ||
	{ not_ok "the next pass ends partial again (exit $rc, state $(q "select state from job"))"; tail -n 20 "$work/run2.err" | sed 's/^/# /'; }
[ "$(grep -Ec 'CREATE "?Junk' "$work/fake.log")" = 2 ] && ok "the second pass asked to create the folder again" ||
	not_ok "the second pass asked to create the folder again ($(grep -c 'CREATE' "$work/fake.log") CREATEs)"
missing=$(cmp_fake 2>&1 | sed -n 's/^mailcmp: FAIL \([0-9]*\) missing, 0 extra.*/\1/p')
[ "$missing" = "$junk" ] && ok "after the second pass still only that folder is missing, nothing twice" ||
	not_ok "after the second pass only that folder is missing (missing '${missing}')"
