#!/bin/sh
# imapfleet report: after a run of three accounts (user31 exact, user32 with --maxsize so that some
# messages are skipped, user33 with a wrong destination password), accounts.csv and accounts.json
# agree with the database and with a message-by-message look at the lab mailboxes; the failed
# account carries its auth reason; every skipped message is listed with its folder and UID;
# report.html is one self-contained page that headless Chromium renders (a screenshot is kept under
# the build directory), whose DOM shows the database's numbers and whose script sorts the table;
# hostile user names and error texts come out escaped in HTML, JSON and CSV.
# Accounts: user31..user33 (the lock below keeps status_retry.sh, which shares them, out).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
command -v psql >/dev/null 2>&1 || skip_all "psql not installed"
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
	skip_all "chromium not installed"
exec 9>"$LAB_DIR/user31-34.lock"
flock -w 900 9 || skip_all "accounts user31..34 stayed busy (lock $LAB_DIR/user31-34.lock)"
plan 27
# tap_py FILE: re-emits a python check list ("ok - ..." lines) as this script's assertions.
tap_py() {
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		"1.."*) : ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done <"$1"
}
fresh_db report
work=$(mktemp -d)
art="${top_builddir:-.}/test-artifacts"
mkdir -p "$art"
art=$(cd "$art" && pwd)
cleanup() { drop_db; rm -rf "$work"; }
trap cleanup EXIT
wipe_dst user31 user32 user33 || diag "could not wipe the destination accounts"

printf 'Lp-not-the-password' >"$work/bad33"
chmod 600 "$work/bad33"
csv="$work/accounts.csv"
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2,options"
	echo "localhost,$LAB_SRC_IMAPS,user31,$LAB_SECRETS/src/user31,ssl,localhost,$LAB_DST_IMAPS,user31,$LAB_SECRETS/dst/user31,ssl,"
	echo "localhost,$LAB_SRC_IMAPS,user32,$LAB_SECRETS/src/user32,ssl,localhost,$LAB_DST_IMAPS,user32,$LAB_SECRETS/dst/user32,ssl,--maxsize 100K"
	echo "localhost,$LAB_SRC_IMAPS,user33,$LAB_SECRETS/src/user33,ssl,localhost,$LAB_DST_IMAPS,user33,$work/bad33,ssl,"
} >"$csv"
# Generous retries: other tests may restart the lab's servers meanwhile.
"$IMAPFLEET" run "$csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--max-attempts 10 --retry-base 200 --retry-cap 2000 >"$work/run.out" 2>"$work/run.err"
rc=$?
[ $rc -eq 1 ] && ok "the run ends with one failed account (exit 1)" ||
	{ not_ok "the run ends with one failed account (exit 1, got $rc)"; tail -n 20 "$work/run.err" | sed 's/^/# /'; }

out="$art/report"
rm -rf "$out"
"$IMAPFLEET" report --state "$STATE_URL" --out "$out" >"$work/report.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "report exits 0" || { not_ok "report exits 0 (got $rc)"; sed 's/^/# /' "$work/report.out"; }
missing=""
for f in accounts.csv failures.csv accounts.json report.html; do [ -s "$out/$f" ] || missing="$missing $f"; done
[ -z "$missing" ] && ok "report writes accounts.csv, failures.csv, accounts.json and report.html" ||
	not_ok "report files missing:$missing"

# The database's own numbers, to compare everything with.
q() { psql "$STATE_URL" -Atc "$1"; }
for u in user31 user32 user33; do
	eval "db_$u=\$(q \"select state || ' ' || msgs_copied || ' ' || msgs_skipped || ' ' || coalesce(last_error_class, '-') from job where user1 = '$u'\")"
done
diag "database: user31 $db_user31; user32 $db_user32; user33 $db_user33"

# mailcmp's counts: what the destination really holds, and what the source holds.
for u in user31 user32; do
	same_mail "$LAB_SRC_IMAPS" $u $u --json >"$work/cmp.$u.json" 2>"$work/cmp.$u.err"
	echo $? >"$work/cmp.$u.rc"
done
python3 - "$out" "$work" >"$work/files.tap" 2>&1 <<'PY'
import csv, json, sys
out, work = sys.argv[1:3]
n = 0
def check(cond, desc, detail=""):
    global n
    n += 1
    print(("ok" if cond else "not ok") + " - " + desc)
    if not cond and detail:
        print("# " + str(detail).replace("\n", "\n# "))
rows = {r["user1"]: r for r in csv.DictReader(open(out + "/accounts.csv", newline="", encoding="utf-8"))}
js = json.load(open(out + "/accounts.json", encoding="utf-8"))
accts = {a["source"]["user"]: a for a in js["accounts"]}
cmp = {u: json.load(open("%s/cmp.%s.json" % (work, u))) for u in ("user31", "user32")}
rc = {u: int(open("%s/cmp.%s.rc" % (work, u)).read()) for u in ("user31", "user32")}
dst = {u: sum(f["dst_count"] or 0 for f in cmp[u]["folders"]) for u in cmp}
src = {u: sum(f["src_count"] or 0 for f in cmp[u]["folders"] if f["src_name"]) for u in cmp}

check(sorted(rows) == ["user31", "user32", "user33"] and sorted(accts) == sorted(rows),
      "accounts.csv and accounts.json hold the three accounts", (sorted(rows), sorted(accts)))
check(rc["user31"] == 0 and int(rows["user31"]["msgs_copied"]) == dst["user31"] == accts["user31"]["msgs_copied"],
      "user31: mailcmp finds the accounts equal and msgs_copied (csv, json) = the destination's %d messages" % dst["user31"],
      (rc["user31"], rows["user31"]["msgs_copied"], accts["user31"]["msgs_copied"], cmp["user31"]["summary"]))
check(int(rows["user32"]["msgs_copied"]) == dst["user32"] == accts["user32"]["msgs_copied"],
      "user32: msgs_copied (csv, json) = the %d messages the destination holds" % dst["user32"],
      (rows["user32"]["msgs_copied"], accts["user32"]["msgs_copied"], dst["user32"]))
skipped = int(rows["user32"]["msgs_skipped"])
check(skipped > 0 and skipped == src["user32"] - dst["user32"] == accts["user32"]["msgs_skipped"],
      "user32: msgs_skipped = source minus destination (%d)" % (src["user32"] - dst["user32"]),
      (skipped, src["user32"], dst["user32"]))
fl = [m for g in accts["user32"]["failures"] for m in g["messages"]]
check(len(fl) == skipped and all(m["folder"] and m["uid"] > 0 and m["size"] > 102400 for m in fl)
      and all(g["state"] == "skipped" and "maxsize" in g["reason"] for g in accts["user32"]["failures"]),
      "user32: every skipped message is listed with its folder, UID and size, grouped by reason",
      json.dumps(accts["user32"]["failures"])[:800])
check(int(rows["user32"]["bytes_skipped"]) == sum(m["size"] for m in fl) and "maxsize" in rows["user32"]["failure_reasons"],
      "user32: bytes_skipped and failure_reasons in accounts.csv match the list", rows["user32"]["failure_reasons"])
fcsv = [r for r in csv.DictReader(open(out + "/failures.csv", newline="", encoding="utf-8"))]
check(sorted((r["folder"], int(r["uid"])) for r in fcsv if r["user1"] == "user32" and r["scope"] == "message")
      == sorted((m["folder"], m["uid"]) for m in fl),
      "failures.csv lists the same skipped messages (folder, UID)")
u33 = rows["user33"]
check(u33["state"] == "failed" and u33["error_class"] == "auth" and u33["msgs_copied"] == "0"
      and accts["user33"]["error"]["class"] == "auth" and accts["user33"]["state"] == "failed",
      "user33: failed with class auth in csv and json", (u33["state"], u33["error_class"], u33["error_text"]))
causes = [c for c in js["failure_causes"] if c["scope"] == "account" and c["class"] == "auth"]
check(len(causes) == 1 and causes[0]["account_ids"] == [accts["user33"]["id"]] and any(
      r["scope"] == "account" and r["error_class"] == "auth" and r["user1"] == "user33" for r in fcsv),
      "the auth failure is grouped as a cause naming user33 (json) and listed in failures.csv", js["failure_causes"])
run = js["run"]
check(run["accounts"] == {"total": 3, "queued": 0, "running": 0, "done": 2, "failed": 1, "cancelled": 0, "partial": 0}
      and run["msgs_copied"] == sum(a["msgs_copied"] for a in js["accounts"]) == dst["user31"] + dst["user32"]
      and run["msgs_skipped"] == skipped and sum(t["msgs"] for t in js["throughput"]) == run["msgs_copied"],
      "the run summary adds up: accounts by state, messages copied, skipped, throughput", json.dumps(run))
PY
tap_py "$work/files.tap"
for s in $(cat "$LAB_SECRETS"/src/user3[123] "$LAB_SECRETS"/dst/user3[123]); do
	if grep -rqF -- "$s" "$out"; then not_ok "no lab password appears in any report file"; s=found; break; fi
done
[ "$s" != found ] && ok "no lab password appears in any report file"

# ---- report.html ------------------------------------------------------------------------------
html="$out/report.html"
if grep -Eiq '(src|href|action)=["'\'']?(https?:|//)|@import|url\(|<link|<iframe' "$html"; then
	not_ok "report.html references nothing outside itself"; grep -Eio '.{30}(https?:|@import|url\(|<link).{30}' "$html" | head -5 | sed 's/^/# /'
else
	ok "report.html references nothing outside itself (no URL, link, import)"
fi
grep -q "Content-Security-Policy\" content=\"default-src 'none'" "$html" &&
	ok "report.html forbids network fetches with a Content-Security-Policy" || not_ok "report.html has a CSP"

shot="$art/report.png"
"${top_srcdir:-.}/tests/tools/screenshot.sh" "$html" "$shot" "$work/dom.html" >"$work/shot.err" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(stat -c %s "$shot")" -gt 20000 ] && [ "$(head -c 4 "$shot" | od -An -c | tr -d ' ')" = "211PNG" ]; then
	ok "headless Chromium renders report.html (screenshot $shot)"
else
	not_ok "headless Chromium renders report.html (rc $rc)"; sed 's/^/# /' "$work/shot.err"
fi
"${top_srcdir:-.}/tests/tools/screenshot.sh" --fragment sort=-copied "$html" "$work/sorted.png" "$work/sorted.html" \
	>>"$work/shot.err" 2>&1
cat >"$work/domlib.py" <<'PY'
import html.parser, subprocess
class Dom(html.parser.HTMLParser):
    """Element counts, id'd numbers (data-v), account rows and the page's text."""
    def __init__(self, path):
        super().__init__()
        self.ids, self.rows, self.tags, self.row, self.text = {}, [], {}, None, []
        self.feed(open(path, encoding="utf-8").read())
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a and "data-v" in a:
            self.ids[a["id"]] = a["data-v"]
        if tag == "tr" and "data-job" in a:
            self.row = {"job": int(a["data-job"]), "state": a.get("data-state")}
            self.rows.append(self.row)
        if self.row is not None and tag == "td" and "c-copied" in (a.get("class") or ""):
            self.row["copied"] = int(a["data-v"])
    def handle_data(self, data):
        self.text.append(data)
n = 0
def check(cond, desc, detail=""):
    global n
    n += 1
    print(("ok" if cond else "not ok") + " - " + desc)
    if not cond:
        print("# " + str(detail)[:1500].replace("\n", "\n# "))
def q(url, sql):
    return subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, check=True).stdout.split("\n")[:-1]
PY
PYTHONPATH="$work" python3 - "$work/dom.html" "$work/sorted.html" "$STATE_URL" >"$work/dom.tap" 2>&1 <<'PY'
import sys
from domlib import Dom, check, q
dom, sorted_dom, url = sys.argv[1:4]
d, s = Dom(dom), Dom(sorted_dom)
done, failed, total, copied = q(url, "select count(*) filter (where state = 'done') || ' ' || count(*) filter (where state = 'failed')"
                                " || ' ' || count(*) || ' ' || sum(msgs_copied) from job")[0].split()
check((d.ids.get("n-done"), d.ids.get("n-failed"), d.ids.get("n-total"), d.ids.get("msgs-copied")) == (done, failed, total, copied),
      "the rendered page shows the database's counts (done %s, failed %s, total %s, copied %s)" % (done, failed, total, copied), d.ids)
dbrows = {int(i): (st, int(c)) for i, st, c in (l.split("|") for l in q(url, "select id, state, msgs_copied from job order by id"))}
check({r["job"]: (r["state"], r["copied"]) for r in d.rows} == dbrows,
      "every account row of the rendered page has the database's state and messages copied", (d.rows, dbrows))
order = [r["copied"] for r in s.rows]
check(len(order) == 3 and order == sorted(order, reverse=True) and order[0] > order[-1],
      "the page's script sorts the accounts table (#sort=-copied puts the most copied first)", order)
check(d.tags.get("script", 0) == 1 and d.tags.get("img", 0) == 0 and d.tags.get("svg", 0) >= 2,
      "the rendered page has one inline script, no image, inline SVG charts", d.tags)
page = open(dom, encoding="utf-8").read()
text = " ".join(d.text)
check(0 <= page.find('id="failures"') < page.find("Throughput") and "Next step:" in text and "check each account's password or token" in text
      and "retry --account ID" in text and "@media print" in page,
      "failures come first, each account-level cause with its next step; the page has a print stylesheet",
      (page.find('id="failures"'), page.find("Throughput"), "@media print" in page))
PY
tap_py "$work/dom.tap"
diag "screenshot: $shot"

# ---- hostile strings: a run whose names and errors try to break out of HTML, JSON, CSV, terminal ----
cat >"$work/hostile.sql" <<'SQL'
INSERT INTO run (name) VALUES (E'run:/tmp/<b>evil</b>"&\'.csv');
INSERT INTO job (run_id, host1, port1, user1, host2, port2, user2, state, attempts, last_error_class,
                 last_error_code, last_error_text)
  SELECT max(id), 'evil.example', 993, E'<img src=x onerror=alert(1)>"\'&amp;', 'dst.example', 993,
         '=HYPERLINK("http://x")', 'failed', 1, 'permanent', '</script>',
         E'</script><script>alert(1)</script>\u2028 "q" \\ \x1b[31mred\x07' FROM run;
INSERT INTO folder (job_id, src_name, dst_name)
  SELECT max(id), E'INBOX/<script>x</script>"\'', 'x' FROM job;
INSERT INTO message (folder_id, src_uidvalidity, src_uid, size, state, error)
  SELECT max(id), 1, 7, 10, 'failed', E'bad "message" <b>\n</b>,;' FROM folder;
SQL
psql "$STATE_URL" -q -v ON_ERROR_STOP=1 -f "$work/hostile.sql" >"$work/hostile.out" 2>&1 || sed 's/^/# /' "$work/hostile.out"
run2=$(q "select max(id) from run")
"$IMAPFLEET" report --state "$STATE_URL" --run "$run2" --out "$work/hostile" >"$work/hostile.rep" 2>&1 ||
	sed 's/^/# /' "$work/hostile.rep"
"${top_srcdir:-.}/tests/tools/screenshot.sh" "$work/hostile/report.html" "$art/report-hostile.png" "$work/hostile.dom" \
	>"$work/hostile.shot" 2>&1 || sed 's/^/# /' "$work/hostile.shot"
"$IMAPFLEET" status --state "$STATE_URL" --run "$run2" >"$work/hostile.status" 2>&1
PYTHONPATH="$work" python3 - "$work" >"$work/hostile.tap" 2>&1 <<'PY'
import csv, json, sys
from domlib import Dom, check
w = sys.argv[1]
user = "<img src=x onerror=alert(1)>\"'&amp;"
text = "</script><script>alert(1)</script>\u2028 \"q\" \\ \x1b[31mred\x07"
folder = "INBOX/<script>x</script>\"'"
raw = open(w + "/hostile/accounts.json", encoding="utf-8").read()
try:
    a = json.loads(raw)["accounts"][0]
    good = (a["source"]["user"] == user and a["error"]["text"] == text and a["failures"][0]["messages"][0]["folder"] == folder
            and a["failures"][0]["messages"][0]["error"] == 'bad "message" <b>\n</b>,;' and "<" not in raw)
except Exception as e:  # noqa: BLE001
    good, a = False, e
check(good, "accounts.json keeps hostile strings exactly, escaped (no raw '<', valid JSON)", a)
r = list(csv.DictReader(open(w + "/hostile/accounts.csv", newline="", encoding="utf-8")))
check(len(r) == 1 and r[0]["user1"] == user and r[0]["user2"] == "'" + '=HYPERLINK("http://x")' and r[0]["error_text"] == text.replace("\x1b", "\ufffd").replace("\x07", "\ufffd"),
      "accounts.csv quotes hostile strings, defuses a spreadsheet formula and drops control characters", r)
h = open(w + "/hostile/report.html", encoding="utf-8").read()
d = Dom(w + "/hostile.dom")
check(h.count("<script") == 1 and "<img" not in h and "<b>evil" not in h and d.tags.get("script") == 1 and not d.tags.get("img")
      and user in "".join(d.text) and folder in "".join(d.text),
      "report.html shows hostile strings as text: no injected element, the rendered text is the original", d.tags)
st = open(w + "/hostile.status", encoding="utf-8", errors="replace").read()
check("\x1b" not in st and "\x07" not in st and "evil.example" in st,
      "status prints hostile strings without terminal control characters", repr(st[-400:]))
PY
tap_py "$work/hostile.tap"

# ---- a title of the operator's choosing, shown as text ----
"$IMAPFLEET" report --state "$STATE_URL" --run "$run2" --format html --title 'Cutover <ACME> & "batch 7"' \
	--out "$work/titled" >"$work/titled.rep" 2>&1 || sed 's/^/# /' "$work/titled.rep"
if grep -q "<title>Cutover &lt;ACME&gt; &amp; &quot;batch 7&quot; (run $run2)</title>" "$work/titled/report.html" &&
	grep -q "<h1 id=\"title\">Cutover &lt;ACME&gt; &amp; &quot;batch 7&quot; <span class=\"muted\">run $run2</span>" \
		"$work/titled/report.html"; then
	ok "report --title puts the operator's title on the page and the tab, escaped"
else
	not_ok "report --title puts the operator's title on the page and the tab, escaped"
	grep -o "<title>.*</title>\|<h1.*</h1>" "$work/titled/report.html" | sed 's/^/# /'
fi
