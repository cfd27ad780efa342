#!/bin/sh
# report while a run goes on: a run made in the database (nothing copies, so every number is known
# in advance): two accounts done and verified (PASS 100/100, FAIL 50/48), one failed (auth), one
# running with 60 of its 100 messages still to copy (40 copied in the last minute, 100 KB each), one
# queued never started, one parked for its daily budget, one removed from the accounts file.
# `report --watch 2` rewrites the files while the run goes on: report.html reloads itself, shows the
# whole run's bytes left (the live display's computation: 60 messages at the account's mean size,
# the queued one at the mean of those seen), a rate from the last minutes and an ETA, the parked
# account apart; the accounts table has the verify verdict, source and destination counts and last
# synced as columns and opens with the failed account; the accounts left out of later passes have
# their panel. All of it checked in headless Chromium. Once the accounts are marked finished, the
# watch writes a last report that no longer reloads nor shows what is left, and exits 0.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
command -v psql >/dev/null 2>&1 || skip_all "psql not installed"
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
	skip_all "chromium not installed"
plan 16
fresh_db report_live
work=$(mktemp -d)
wpid=""
cleanup() { [ -n "$wpid" ] && kill "$wpid" 2>/dev/null; drop_db; [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
q() { psql "$STATE_URL" -Atc "$1"; }
shot=${top_srcdir:-.}/tests/tools/screenshot.sh

# An empty store first gets its schema from a command that opens it.
"$IMAPFLEET" status --state "$STATE_URL" >/dev/null 2>&1
cat >"$work/run.sql" <<'SQL'
INSERT INTO run (name) VALUES ('run:live.csv');
INSERT INTO job (run_id, host1, port1, user1, host2, port2, user2, state, msgs_copied, bytes_copied,
                 started_at, finished_at, last_synced_at, verify_verdict, verified_at, verify_on_source,
                 verify_on_destination, last_error_class, last_error_code, last_error_text, parked_until,
                 park_reason, eta_at)
SELECT (SELECT max(id) FROM run), 'src.example', 993, u, 'dst.example', 993, u, st, m, m * 102400,
       CASE WHEN s THEN now() - interval '1 hour' END, CASE WHEN st IN ('done') THEN now() - interval '30 minutes' END,
       CASE WHEN st = 'done' THEN now() - interval '30 minutes' END, v, CASE WHEN v IS NOT NULL THEN now() - interval '20 minutes' END,
       os, od, ec, ecode, et, pu, pr, eta
FROM (VALUES
  (1, 'live01', 'done',      100, true,  'PASS', 100, 100, NULL, NULL, NULL, NULL::timestamptz, NULL, NULL::timestamptz),
  (2, 'live02', 'failed',      0, false, NULL,  NULL, NULL, 'auth', 'AUTHENTICATIONFAILED', 'login refused', NULL, NULL, NULL),
  (3, 'live03', 'running',    40, true,  NULL,  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'live04', 'queued',      0, false, NULL,  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, 'live05', 'queued',      0, false, NULL,  NULL, NULL, 'throttled', 'DAILY_BUDGET', 'daily budget reached',
      now() + interval '1 hour', 'daily', now() + interval '2 days'),
  (6, 'live06', 'cancelled',   0, false, NULL,  NULL, NULL, 'permanent', 'REMOVED', 'not in the accounts file any more', NULL, NULL, NULL),
  (7, 'live07', 'done',       48, true,  'FAIL', 50,  48, NULL, NULL, NULL, NULL, NULL, NULL)
) AS t(k, u, st, m, s, v, os, od, ec, ecode, et, pu, pr, eta)
ORDER BY k;
-- live03: one folder, 100 messages on the source, 40 in the ledger, copied a minute ago.
INSERT INTO folder (job_id, src_name, dst_name, state, src_uidvalidity, src_messages, msgs_copied, bytes_copied)
  SELECT id, 'INBOX', 'INBOX', 'copying', 1, 100, 40, 40 * 102400 FROM job WHERE user1 = 'live03';
INSERT INTO message (folder_id, src_uidvalidity, src_uid, size, state, updated_at)
  SELECT f.id, 1, g, 102400, 'copied', now() - interval '1 minute'
  FROM folder f JOIN job j ON j.id = f.job_id, generate_series(1, 40) g WHERE j.user1 = 'live03';
-- live01: its 100 messages two hours ago (outside the rate's window).
INSERT INTO folder (job_id, src_name, dst_name, state, src_uidvalidity, src_messages, msgs_copied, bytes_copied)
  SELECT id, 'INBOX', 'INBOX', 'done', 1, 100, 100, 100 * 102400 FROM job WHERE user1 = 'live01';
INSERT INTO message (folder_id, src_uidvalidity, src_uid, size, state, updated_at)
  SELECT f.id, 1, g, 102400, 'copied', now() - interval '2 hours'
  FROM folder f JOIN job j ON j.id = f.job_id, generate_series(1, 100) g WHERE j.user1 = 'live01';
SQL
psql "$STATE_URL" -q -v ON_ERROR_STOP=1 -f "$work/run.sql" >"$work/sql.out" 2>&1 || sed 's/^/# /' "$work/sql.out"
run=$(q "select max(id) from run")
ids=$(q "select string_agg(user1 || '=' || id, ' ' order by id) from job")
diag "run $run: $ids"

# Usage: --watch takes seconds.
"$IMAPFLEET" report --state "$STATE_URL" --watch 0 >"$work/u.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--watch takes seconds" "$work/u.out" && ok "report --watch 0 is a usage error (exit 2)" ||
	{ not_ok "report --watch 0 is a usage error (rc $rc)"; sed 's/^/# /' "$work/u.out"; }

out="$work/rep"
"$IMAPFLEET" report --state "$STATE_URL" --run "$run" --out "$out" --watch 2 >"$work/watch.out" 2>&1 &
wpid=$!
for i in $(seq 1 50); do [ -s "$out/report.html" ] && [ -s "$out/accounts.json" ] && break; sleep 0.2; done
sleep 0.5
cp "$out/report.html" "$work/live.html"
cp "$out/accounts.json" "$work/live.json"
g1=$(grep -o 'report generated [0-9: -]* UTC' "$work/live.html")
kill -0 "$wpid" 2>/dev/null && ok "report --watch keeps going while the run goes on" ||
	{ not_ok "report --watch keeps going while the run goes on"; sed 's/^/# /' "$work/watch.out"; }
grep -q '<meta http-equiv="refresh" content="2">' "$work/live.html" && grep -q 'id="live-note"' "$work/live.html" &&
	ok "while the run goes on report.html reloads itself every 2 s and says so" ||
	not_ok "while the run goes on report.html reloads itself every 2 s and says so"

"$shot" "$work/live.html" "$work/live.png" "$work/live.dom" >"$work/shot.err" 2>&1 || sed 's/^/# /' "$work/shot.err"
# The numbers the page must show, from what was put in the database:
#   copied 148 messages of 100 KB (live01 100, live03 40, live07 48; the parked live05 none);
#   left: live03's 60 at its mean (100 KB); seen: live01, live03, live07; live04 unseen (1) at the
#   mean of the three seen; the rate: 40 x 100 KB in the window of the last minutes.
cat >"$work/dom.py" <<'PY'
import html.parser, json, re, sys
class Dom(html.parser.HTMLParser):
    def __init__(self, path):
        super().__init__()
        self.v, self.text, self.rows, self.row, self.cell, self.meta = {}, [], [], None, None, []
        self.sections = []
        self.feed(open(path, encoding="utf-8").read())
    def handle_starttag(self, tag, a):
        a = dict(a)
        if "id" in a and "data-v" in a:
            self.v[a["id"]] = a["data-v"]
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        if tag == "meta" and a.get("http-equiv") == "refresh":
            self.meta.append(a.get("content"))
        if tag == "tr" and "data-job" in a:
            self.row = {"job": int(a["data-job"]), "state": a["data-state"]}
            self.rows.append(self.row)
        if self.row is not None and tag == "td":
            cls = a.get("class") or ""
            self.cell = next((c for c in ("c-complete", "c-verify", "c-synced") if c in cls), None)
            if self.cell:
                self.row[self.cell] = ""
    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
    def handle_data(self, d):
        self.text.append(d)
        if self.row is not None and self.cell:
            self.row[self.cell] += d
n = 0
def check(cond, desc, detail=""):
    print(("ok" if cond else "not ok") + " - " + desc)
    if not cond:
        print("# " + str(detail)[:1500].replace("\n", "\n# "))
PY
PYTHONPATH="$work" python3 - "$work/live.dom" "$work/live.json" "$ids" >"$work/live.tap" 2>&1 <<'PY'
import json, sys, time
from dom import Dom, check
d = Dom(sys.argv[1])
js = json.load(open(sys.argv[2]))
ids = dict(x.split("=") for x in sys.argv[3].split())
K = 102400
copied = (100 + 40 + 48) * K
left_here = 60 * K
total = copied + left_here
total += int(total / 3 * 1)
text = " ".join(d.text)
check("remaining" in d.sections and d.sections.index("remaining") < d.sections.index("failures"),
      "the page shows what is left, near its top", d.sections)
check(d.v.get("bytes-left") == str(total - copied),
      "bytes left: the whole run's, as the live display computes it (%d)" % (total - copied), d.v)
rate = float(d.v.get("rate", "0"))
check(40 * K / 361 <= rate <= 40 * K / 299, "the rate is the ledger's bytes over the last minutes (%.0f B/s)" % rate, d.v)
eta = int(d.v.get("eta", "-1"))
want = time.time() * 1000 + (total - copied) / rate * 1000 if rate else -1
check(eta > 0 and abs(eta - want) < 120000, "the ETA is what is left at that rate (%d, about %d)" % (eta, want), d.v)
check(d.v.get("n-parked") == "1" and "the last resumes" in text and "apart from the ETA" in text,
      "the parked account is counted apart, with when it resumes", d.v)
rem = js["run"]["remaining"]
check(rem and rem["bytes_total"] == total and rem["bytes_copied"] == copied and rem["estimated"] and rem["parked"] == 1
      and rem["eta"], "accounts.json has the same remaining bytes, ETA and parked count", rem)
rows = {r["job"]: r for r in d.rows}
r1, r7, r4 = rows[int(ids["live01"])], rows[int(ids["live07"])], rows[int(ids["live04"])]
check(r1.get("c-verify") == "PASS" and r1.get("c-complete") == "100 / 100" and r7.get("c-verify") == "FAIL"
      and r7.get("c-complete") == "50 / 48" and r4.get("c-verify") == "not verified" and r4.get("c-complete") == "\u2013",
      "the accounts table has the verify verdict and the source / destination counts as columns", (r1, r7, r4))
check(r1.get("c-synced", "").strip() not in ("", "never") and r4.get("c-synced") == "never",
      "the accounts table says when each account was last synced (never for the one not started)", (r1, r4))
check(d.rows[0]["job"] == int(ids["live02"]) and d.rows[0]["state"] == "failed" and d.rows[-1]["state"] == "done",
      "the accounts table opens with the failed account, the done ones last", [(r["job"], r["state"]) for r in d.rows])
check("left-out" in d.sections and d.v.get("n-left-out") == "1" and "removed from the accounts file" in text
      and "live06@src.example" in text, "the account removed from the accounts file is listed as left out", d.v)
PY
tap_py() {
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		*) echo "# $line" ;;
		esac
	done <"$1"
}
tap_py "$work/live.tap"

# The run ends: the watch writes a last report and stops.
q "update job set state = 'done', finished_at = now(), parked_until = null where state in ('queued', 'running')" >/dev/null
for i in $(seq 1 40); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.25; done
if kill -0 "$wpid" 2>/dev/null; then
	not_ok "report --watch stops once the run has ended"
	kill "$wpid"
else
	wait "$wpid"
	rc=$?
	[ $rc -eq 0 ] && ok "report --watch stops once the run has ended (exit 0)" || not_ok "report --watch stops once the run has ended (exit $rc)"
fi
wpid=""
[ "$(grep -c '^wrote ' "$work/watch.out")" = 5 ] && [ "$(grep -c '^run [0-9]*: 7 accounts' "$work/watch.out")" -ge 2 ] &&
	ok "the watch names the files once and prints a summary per rewrite" ||
	{ not_ok "the watch names the files once and prints a summary per rewrite"; sed 's/^/# /' "$work/watch.out"; }
"$shot" "$out/report.html" "$work/end.png" "$work/end.dom" >"$work/shot2.err" 2>&1 || sed 's/^/# /' "$work/shot2.err"
g2=$(grep -o 'report generated [0-9: -]* UTC' "$out/report.html")
PYTHONPATH="$work" python3 - "$work/end.dom" "$out/accounts.json" "$g1" "$g2" >"$work/end.tap" 2>&1 <<'PY'
import json, sys
from dom import Dom, check
d = Dom(sys.argv[1])
js = json.load(open(sys.argv[2]))
check(not d.meta and "remaining" not in d.sections and js["run"]["remaining"] is None and sys.argv[3] != sys.argv[4],
      "the last report, of the run that has ended, neither reloads nor shows what is left", (d.meta, d.sections, sys.argv[3:]))
PY
tap_py "$work/end.tap"
