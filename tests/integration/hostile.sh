#!/bin/sh
# Hostile and broken servers (issue 13), scripted by tests/tools/hostileimap.py: whatever a server
# sends, the run ends, only the account or folder concerned fails, every text is stored and shown
# as valid UTF-8 without control characters, and a refused login is tried once, not every lease
# period forever.
# Accounts: lab user34 (src read, dst wiped first); the other sources are hostile fake servers.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 26
fresh_db hostile
work=$(mktemp -d)
pids=""
cleanup() { [ -n "$pids" ] && kill $pids 2>/dev/null; [ -n "$KEEP" ] || { drop_db; rm -rf "$work"; }; }
trap cleanup EXIT
printf 'fake-src-pw\n' >"$work/pw"
chmod 600 "$work/pw"
wipe_dst user34

start_hostile() { # SCENARIO NAME [args]: sets $port
	_scn=$1 _name=$2; shift 2
	python3 "${top_srcdir:-.}/tests/tools/hostileimap.py" --scenario "$_scn" --cert "$LAB_DIR/tls/server.pem" \
		--key "$LAB_DIR/tls/server.key" --implicit-tls --user src --password fake-src-pw \
		--log "$work/$_name.log" "$@" >"$work/$_name.port" 2>"$work/$_name.err" &
	pids="$pids $!"
	for _i in $(seq 1 100); do [ -s "$work/$_name.port" ] && break; sleep 0.2; done
	port=$(head -n 1 "$work/$_name.port")
}
# run_from PORT NAME [run options]: imapfleet run of one row from the fake into lab dst user34,
# bounded by a timeout (a hang is a failure, not a stuck test).
run_from() {
	_p=$1 _name=$2; shift 2
	{
		echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
		echo "localhost,$_p,src,$work/pw,ssl,localhost,$LAB_DST_IMAPS,user34,$LAB_SECRETS/dst/user34,ssl"
	} >"$work/$_name.csv"
	timeout 120 "$IMAPFLEET" run "$work/$_name.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
		--no-progress "$@" >"$work/$_name.out" 2>&1
}
sql() { psql "$STATE_URL" -Atc "$1" 2>&1; }
no_control_bytes() { # FILE: no ESC, no bare CR, valid UTF-8
	python3 - "$1" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
b.decode("utf-8")
assert b"\x1b" not in b and b"\r" not in b, "control bytes in output"
PY
}

# ---- 2a: a login refusal in Latin-1 is recorded; the job fails once and the run ends ------------
start_hostile login-latin1 l1
run_from "$port" l1
rc=$?
[ $rc -eq 1 ] && ok "a Latin-1 login refusal ends the run with exit 1 (account failed)" ||
	{ not_ok "a Latin-1 login refusal ends the run with exit 1 (got $rc)"; tail -n 15 "$work/l1.out" | sed 's/^/# /'; }
st=$(sql "select state || ' ' || last_error_class from job")
[ "$st" = "failed auth" ] && ok "the job is recorded as failed (auth), not left running" || not_ok "job recorded failed auth (got '$st')"
txt=$(sql "select last_error_text from job")
case "$txt" in
*'ung\xFCltig f\xFCr'*) ok "the refusal text is stored with the Latin-1 bytes in hex" ;;
*) not_ok "the refusal text is stored with the Latin-1 bytes in hex (got '$txt')" ;;
esac
nlogin=$(grep -c " C: [^ ]* \(LOGIN\|AUTHENTICATE\)" "$work/l1.log")
[ "$nlogin" -eq 1 ] && ok "exactly one login was attempted (no lockout loop)" || not_ok "exactly one login attempted (got $nlogin)"

# ---- 2b: one APPEND refused in Latin-1 fails that message only ---------------------------------------
start_hostile append-latin1 a1 --seed 5 --reject-append 2
"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user34 --passfile1 "$LAB_SECRETS/src/user34" \
	--cafile1 "$LAB_CA" --host2 localhost --port2 "$port" --user2 src --passfile2 "$work/pw" --cafile2 "$LAB_CA" \
	--state "$STATE_URL" --folder INBOX >"$work/a1.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "a Latin-1 APPEND refusal makes sync exit 1 (finished with failures), not a failed account" ||
	{ not_ok "a Latin-1 APPEND refusal: exit 1 (got $rc)"; tail -n 15 "$work/a1.out" | sed 's/^/# /'; }
nf=$(sql "select count(*) from message where state = 'failed' and strpos(error, 'gro\xDF \x1B[2J') > 0")
nc=$(sql "select count(*) from message where state = 'copied'")
[ "$nf" = 1 ] && [ "$nc" -ge 1 ] && ok "the refused message is recorded failed with its text in hex; the others are copied" ||
	not_ok "one failed message with its text, others copied (failed '$nf', copied '$nc')"
check "sync output holds no control bytes and is valid UTF-8" no_control_bytes "$work/a1.out"
check "run output holds no control bytes and is valid UTF-8" no_control_bytes "$work/l1.out"

# ---- 1: an endless LIST and an endless metadata FETCH fail their accounts only; memory stays bounded ----
start_hostile endless-list el
pel=$port
start_hostile endless-fetch ef
pef=$port
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	echo "localhost,$pel,src,$work/pw,ssl,localhost,$LAB_DST_IMAPS,user34,$LAB_SECRETS/dst/user34,ssl"
	echo "localhost,$pef,src,$work/pw,ssl,localhost,$LAB_DST_IMAPS,user34,$LAB_SECRETS/dst/user34,ssl"
	echo "localhost,$LAB_SRC_IMAPS,user34,$LAB_SECRETS/src/user34,ssl,localhost,$LAB_DST_IMAPS,user34,$LAB_SECRETS/dst/user34,ssl"
} >"$work/caps.csv"
# Under an address-space limit (not with sanitizers, whose shadow memory needs more): before the caps,
# the endless LIST grew until the whole process aborted; the peak RSS is checked either way.
aslimit=3072
ldd "$IMAPFLEET" 2>/dev/null | grep -q 'libasan\|libtsan' && aslimit=0
python3 - "$aslimit" "$work/caps.rss" timeout 180 "$IMAPFLEET" run "$work/caps.csv" --state "$STATE_URL" \
	--cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress --workers 3 >"$work/caps.out" 2>&1 <<'PY'
import resource, subprocess, sys
limit, out, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def lim():
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit << 20, limit << 20))
rc = subprocess.call(cmd, preexec_fn=lim)
open(out, "w").write("%d\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))
sys.exit(rc)
PY
rc=$?
[ $rc -eq 1 ] && ok "a run with an endless LIST and an endless FETCH ends, exit 1 (two accounts failed)" ||
	{ not_ok "endless LIST/FETCH: run ends with exit 1 (got $rc)"; tail -n 20 "$work/caps.out" | sed 's/^/# /'; }
st=$(sql "select string_agg(port1 || ' ' || state || ' ' || coalesce(last_error_code, '-'), ', ' order by id) from job where run_id = (select max(id) from run)")
[ "$st" = "$pel failed RESPONSE_LIMIT, $pef failed RESPONSE_LIMIT, $LAB_SRC_IMAPS done -" ] &&
	ok "each hostile account failed with RESPONSE_LIMIT; the good account is done" || not_ok "per-account outcome (got '$st')"
grep -q "IMAP_LIST_MAX_ENTRIES" "$work/caps.out" && grep -q "IMAP_FETCH_MAX_PER_EXISTS" "$work/caps.out" &&
	ok "the errors name the cap that was reached" || { not_ok "the errors name the cap"; grep -i "limit\|exceeds" "$work/caps.out" | head -n 5 | sed 's/^/# /'; }
rss=$(cat "$work/caps.rss" 2>/dev/null || echo 99999)
[ "$rss" -lt 400 ] && ok "peak RSS stays bounded ($rss MB < 400 MB)" || not_ok "peak RSS stays bounded (got $rss MB)"
check "the good account of that run is exact" same_mail "$LAB_SRC_IMAPS" user34 user34

# ---- 3: a first SIGTERM stops the run within seconds while a LIST is being drip-fed ---------------
start_hostile drip-list dl --drip-ms 1000
"$IMAPFLEET" run "$(
	f="$work/dl.csv"
	{
		echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
		echo "localhost,$port,src,$work/pw,ssl,localhost,$LAB_DST_IMAPS,user34,$LAB_SECRETS/dst/user34,ssl"
	} >"$f"
	echo "$f"
)" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress >"$work/dl.out" 2>&1 &
rp=$!
for i in $(seq 1 150); do grep -q " C: [^ ]* LIST" "$work/dl.log" 2>/dev/null && break; sleep 0.2; done
sleep 1
t0=$(date +%s)
kill -TERM $rp
for i in $(seq 1 100); do kill -0 $rp 2>/dev/null || break; sleep 0.2; done
if kill -0 $rp 2>/dev/null; then
	not_ok "one SIGTERM stops a run whose LIST is drip-fed within 10 s"
	kill -9 $rp 2>/dev/null
	wait $rp 2>/dev/null
	rc=137
else
	wait $rp
	rc=$?
	ok "one SIGTERM stops a run whose LIST is drip-fed within 10 s ($(($(date +%s) - t0)) s)"
fi
[ $rc -eq 4 ] && ok "the run exits with the interrupted code 4" || { not_ok "interrupted exit code 4 (got $rc)"; tail -n 10 "$work/dl.out" | sed 's/^/# /'; }
st=$(sql "select state || ' ' || attempts from job where port1 = $port")
[ "$st" = "queued 0" ] && ok "the account is back in the queue, the attempt not counted" || not_ok "account queued again (got '$st')"

# ---- 18.8: an [ALERT] that the server repeats on every SELECT is shown once ------------------------
start_hostile alert-repeat ar --seed 0
"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user34 --passfile1 "$LAB_SECRETS/src/user34" \
	--cafile1 "$LAB_CA" --host2 localhost --port2 "$port" --user2 src --passfile2 "$work/pw" --cafile2 "$LAB_CA" \
	--no-state >"$work/ar.out" 2>&1
nsel=$(grep -c " C: [^ ]* \(SELECT\|EXAMINE\) " "$work/ar.log")
nalert=$(grep -c "server alert: Filesystem notification" "$work/ar.out")
[ "$nsel" -gt 3 ] && ok "the destination was selected $nsel times, each answer with the same ALERT" ||
	not_ok "the destination was selected more than 3 times (got $nsel)"
[ "$nalert" = 1 ] && ok "... and the alert is shown once, not $nsel times" ||
	{ not_ok "the alert is shown once (got $nalert)"; grep "alert" "$work/ar.out" | head -n 5 | sed 's/^/# /'; }

# sync_from PORT NAME [options]: imapfleet sync from a hostile fake into lab dst user34
sync_from() {
	_p=$1 _name=$2; shift 2
	timeout 120 "$IMAPFLEET" sync --host1 localhost --port1 "$_p" --user1 src --passfile1 "$work/pw" \
		--cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" --user2 user34 \
		--passfile2 "$LAB_SECRETS/dst/user34" --cafile2 "$LAB_CA" --no-state "$@" >"$work/$_name.out" 2>&1
}
# hostile_sync SCENARIO NAME [server args]: the hostile server, then a sync from it (output in
# $work/NAME.out); its exit status in $rc.
hostile_sync() { start_hostile "$@"; sync_from "$port" "$2"; rc=$?; }

# ---- 13.5: names that are not modified UTF-7 are used as listed; a NUL fails that folder alone ----
wipe_dst user34
hostile_sync evil-names en --seed 1
grep -q ' C: [^ ]* EXAMINE "Bad&Jjg"' "$work/en.log" && grep -q ' C: [^ ]* UID FETCH 1 (UID BODY.PEEK\[\])' "$work/en.log" &&
	grep -c ' C: [^ ]* EXAMINE {5 bytes}' "$work/en.log" | grep -q '^1$' &&
	ok "names that are not modified UTF-7 (Bad&Jjg, raw UTF-8 Caf\\xc3\\xa9) are sent back exactly as listed" ||
	{ not_ok "names that are not modified UTF-7 are sent back exactly as listed"; grep " C: " "$work/en.log" | sed 's/^/# /' | head -n 30; }
got=$(python3 - "$LAB_DST_IMAPS" "$LAB_SECRETS/dst/user34" "$LAB_CA" <<'PY'
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[3]))
m.login("user34", open(sys.argv[2]).read().strip())
out = []
for wire in (b'"Bad&-Jjg"', b'"Caf&AOk-"'):
    typ, d = m.select(wire.decode(), readonly=True)
    out.append("%s:%s" % (wire.decode(), d[0].decode() if typ == "OK" else "missing"))
print(" ".join(out))
PY
)
[ "$got" = '"Bad&-Jjg":1 "Caf&AOk-":1' ] && ok "... and their mail arrives under the same names on the destination" ||
	not_ok "... and their mail arrives under the same names on the destination (got: $got)"
[ "$rc" = 1 ] && grep -qF "failed:   folder 'Nul\\x00Name': the source lists" "$work/en.out" && grep -q "NUL byte" "$work/en.out" &&
	grep -q "messages: 3 on source, 3 copied" "$work/en.out" &&
	ok "a NUL in one LIST name fails that folder alone, named (escaped); the account's other mail is copied (exit 1)" ||
	{ not_ok "a NUL in one LIST name fails that folder alone, named (exit $rc)"; sed 's/^/# /' "$work/en.out" | head -n 20; }
check "... and the output, with an ESC in a folder name, holds no control bytes" no_control_bytes "$work/en.out"

# ---- 13.6: server texts with ESC sequences and CR/LF are escaped on the terminal and in logs ------
start_hostile evil-greeting eg
sync_from "$port" eg
check "a greeting with ESC sequences and CR/LF: the output holds no control bytes" no_control_bytes "$work/eg.out"
grep -q 'forged line\\x0d\\x0a' "$work/eg.out" && ! grep -q '^2026-01-01T00:00:00.000Z INFO forged line' "$work/eg.out" &&
	ok "... and the CR/LF shows as \\x0d\\x0a, never as a forged log line of its own" ||
	{ not_ok "... and the CR/LF shows escaped, never as a forged log line"; sed 's/^/# /' "$work/eg.out" | head -n 10; }

# ---- 13.12: STATUS values above 2^32 and UIDVALIDITY 0 are rejected, that folder only --------------
hostile_sync status-huge sh --seed 2
[ "$rc" = 1 ] && grep -q "failed:   folder 'INBOX': .*MESSAGES 5000000000, above the 32-bit limit" "$work/sh.out" &&
	ok "STATUS MESSAGES 5000000000 (above 2^32): the folder fails, saying what the server sent (exit 1)" ||
	{ not_ok "STATUS above 2^32: the folder fails clearly (exit $rc)"; sed 's/^/# /' "$work/sh.out" | head -n 10; }
hostile_sync uidvalidity-zero uz --seed 2
[ "$rc" = 1 ] && grep -q "failed:   folder 'INBOX': .*UIDVALIDITY 0, which IMAP forbids" "$work/uz.out" &&
	! grep -q "copied (0.0 MB), [1-9]" "$work/uz.out" &&
	ok "UIDVALIDITY 0: the folder fails, saying why, nothing taken as already copied (exit 1)" ||
	{ not_ok "UIDVALIDITY 0: the folder fails clearly (exit $rc)"; sed 's/^/# /' "$work/uz.out" | head -n 10; }
