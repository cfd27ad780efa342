#!/bin/sh
# Each pass is a recorded row, in one vocabulary everywhere: the first pass of user12 -> user43
# copies every message (the run line, status --json and the reports say "copied" for this pass);
# verify's verdict then shows in status and the reports; three messages deleted on the destination
# make the next pass a delta pass that copies exactly those three, and the pass history (first,
# delta; started, ended; counts) is in status, accounts.json, passes.csv and report.html, with each
# account's last-synced time. The pass tables are added to a state that predates them (migration on
# an existing state): the next pass is recorded as a delta pass. Every pass ends with the
# destination compared to the source message by message.
# Source: lab src user12 (read only); destination: lab dst user43 (only this test writes it).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test passes 43
plan 13
wipe_dst user43 || diag "could not wipe the destination account"
csv="$work/accounts.csv"
lab_csv user12:user43 >"$csv"
runit() { lab_run "$1" --key-file "$work/key"; }
status_json() { "$IMAPFLEET" status --state "$STATE_URL" --json >"$work/$1.json" 2>&1; }

runit run1
rc=$?
total=$(q "select count(*) from message where state = 'copied'")
[ $rc -eq 0 ] && grep -q "^pass 1 (first, ended): $total copied, 0 already there, 0 skipped, 0 failed" "$work/run1.out" &&
	ok "the first pass: the run line says pass 1 (first) copied all $total messages" ||
	{ not_ok "the first pass's run line (exit $rc)"; cat "$work/run1.out" | sed 's/^/# /'; }
check "after the first pass the destination equals the source" same_mail "$LAB_SRC_IMAPS" user12 user43
status_json s1
python3 - "$work/s1.json" "$total" <<'PY' && ok "status --json: the account's pass 1 copied $total, the run's pass 1 is first and ended" ||
import json, sys
d = json.load(open(sys.argv[1])); total = int(sys.argv[2])
a = d["accounts"][0]
assert a["pass"] == {"number": 1, "copied": total, "already_there": 0, "skipped": 0, "failed": 0}, a["pass"]
assert a["last_synced_at"] and a["verify"] is None, a
p = d["runs"][0]["passes"]
assert len(p) == 1 and p[0]["kind"] == "first" and p[0]["ended_at"] and p[0]["copied"] == total and p[0]["done"] == 1, p
PY
	{ not_ok "status --json shows the first pass"; head -c 800 "$work/s1.json" | sed 's/^/# /'; }

"$IMAPFLEET" verify "$csv" --state "$STATE_URL" --key-file "$work/key" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	>"$work/verify.out" 2>&1
"$IMAPFLEET" status --state "$STATE_URL" >"$work/s2.txt" 2>&1
line=$(grep 'user12@localhost -> user43@localhost' "$work/s2.txt")
case $line in
*" done "*" 1 "*" $total "*" 0 "*" 0 "*" 0 "*PASS*) ok "status shows the pass, its counts and verify's PASS in the account's line" ;;
*) not_ok "status shows the pass and PASS: '$line'"; sed 's/^/# /' "$work/s2.txt" ;;
esac
grep -q "^  pass 1 of 1 (first), started .* UTC, ended .* UTC: $total copied, 0 already there, 0 skipped, 0 failed" "$work/s2.txt" &&
	ok "status shows the run's pass" || { not_ok "status shows the run's pass"; sed 's/^/# /' "$work/s2.txt"; }

# Three messages deleted on the destination: the delta pass copies exactly those.
dst_delete_first user43 3 >"$work/deleted"
runit run2
rc=$?
[ $rc -eq 0 ] && grep -q "^pass 2 (delta, ended): 3 copied, [0-9]* already there, 0 skipped, 0 failed" "$work/run2.out" &&
	ok "the next pass is pass 2 (delta) and copied exactly 3" || { not_ok "pass 2 (delta) copied 3 (exit $rc)"; sed 's/^/# /' "$work/run2.out"; }
check "after the delta pass the destination equals the source, nothing twice" same_mail "$LAB_SRC_IMAPS" user12 user43

"$IMAPFLEET" report --state "$STATE_URL" --out "$work/rep" >"$work/report.out" 2>&1
python3 - "$work/rep" "$total" <<'PY' >"$work/rep.check" 2>&1 && ok "accounts.json: pass history first/delta, the account's pass 2 (3 copied), last synced, verify PASS" ||
import json, os, sys
d = json.load(open(os.path.join(sys.argv[1], "accounts.json"))); total = int(sys.argv[2])
p = d["passes"]
assert [x["kind"] for x in p] == ["first", "delta"] and [x["number"] for x in p] == [1, 2], p
assert p[0]["copied"] == total and p[1]["copied"] == 3 and all(x["ended_at"] for x in p), p
a = d["accounts"][0]
assert a["pass"]["number"] == 2 and a["pass"]["copied"] == 3 and a["last_synced_at"], a
assert a["verify"]["verdict"] == "PASS" and a["verify"]["on_source"] == total and a["verify"]["verified_at"], a["verify"]
PY
	{ not_ok "accounts.json has the pass history"; sed 's/^/# /' "$work/rep.check"; }
python3 - "$work/rep" "$total" <<'PY' >"$work/rep2.check" 2>&1 && ok "accounts.csv and passes.csv use the same words and numbers" ||
import csv, os, sys
d = sys.argv[1]; total = sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(d, "accounts.csv"))))
r = rows[0]
assert (r["pass"], r["copied"], r["skipped"], r["failed"], r["verdict"], r["on_source"]) == ("2", "3", "0", "0", "PASS", total), r
assert r["last_synced_at"] and r["verified_at"], r
ps = list(csv.DictReader(open(os.path.join(d, "passes.csv"))))
assert [(x["pass"], x["kind"], x["copied"]) for x in ps] == [("1", "first", total), ("2", "delta", "3")], ps
assert all(x["started_at"] and x["ended_at"] for x in ps), ps
PY
	{ not_ok "accounts.csv and passes.csv"; sed 's/^/# /' "$work/rep2.check"; }
grep -q 'id="passes"><h2>Passes <span class="muted">2 passes; last synced .* UTC; verify: 1 PASS, 0 FAIL' "$work/rep/report.html" &&
	[ "$(grep -c '<tr><td class="num">[12]</td><td>\(first\|delta\)</td>' "$work/rep/report.html")" = 2 ] &&
	ok "report.html shows the pass history and the verdicts" || not_ok "report.html shows the pass history"

# A state from before passes were recorded: the tables go, the migration puts them back.
v=$(q "select version from schema_version where description like 'passes,%'")
psql "$STATE_URL" -q -c "drop table pass_account; drop table pass; alter table job drop column pass_id, drop column last_synced_at; delete from schema_version where version >= ${v:-0}" >/dev/null 2>&1
[ -z "$(q "select to_regclass('pass')")" ] || diag "could not take the state back before the pass tables"
runit run3
rc=$?
[ $rc -eq 0 ] && [ -n "$(q "select to_regclass('pass')")" ] && [ "$(q "select count(*) from schema_version where version = ${v:-0}")" = 1 ] &&
	grep -q "^pass 1 (delta, ended): 0 copied" "$work/run3.out" &&
	ok "on a state without pass tables the migration adds them; the next pass is a delta pass with nothing to copy" ||
	{ not_ok "migration on an existing state (exit $rc)"; cat "$work/run3.out" "$work/run3.err" | tail -n 6 | sed 's/^/# /'; }
check "the destination still equals the source" same_mail "$LAB_SRC_IMAPS" user12 user43
status_json s3
python3 - "$work/s3.json" <<'PY' && ok "status --json after the migration: one delta pass recorded, the account synced" ||
import json, sys
d = json.load(open(sys.argv[1]))
p = d["runs"][0]["passes"]
assert len(p) == 1 and p[0]["kind"] == "delta" and p[0]["accounts"] == 1, p
assert d["accounts"][0]["last_synced_at"] and d["accounts"][0]["pass"]["number"] == 1, d["accounts"][0]
PY
	{ not_ok "status --json after the migration"; head -c 800 "$work/s3.json" | sed 's/^/# /'; }
