#!/bin/sh
# imapfleet run: a bulk migration of 8 accounts ends exact, message by message; the servers never
# see more connections than --max-conns-per-host (counted by a proxy on the server side of
# imapfleet); every bad row of the accounts file gets one error naming its line and field while
# the good rows are migrated; a second run copies nothing; imapsync's file.txt works unchanged and
# a pair already migrated by another run is not copied twice.
# Accounts: user05..user12.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 15
fresh_db bulk
work=$(mktemp -d)
proxy="${top_builddir:-.}/tests/tools/faultproxy"
cleanup() { kill $p1 $p2 2>/dev/null; drop_db; rm -rf "$work"; }
trap cleanup EXIT
users="user05 user06 user07 user08 user09 user10 user11 user12"
wipe_dst $users

"$proxy" --listen 127.0.0.1:0 --target "127.0.0.1:$LAB_SRC_IMAPS" --count-file "$work/src.count" >"$work/p1.out" 2>&1 &
p1=$!
"$proxy" --listen 127.0.0.1:0 --target "127.0.0.1:$LAB_DST_IMAPS" --count-file "$work/dst.count" >"$work/p2.out" 2>&1 &
p2=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work/p1.out" ] && [ -s "$work/p2.out" ] && break; sleep 0.2; done
sport=$(head -n 1 "$work/p1.out")
dport=$(head -n 1 "$work/p2.out")

csv="$work/accounts.csv"
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	for u in $users; do
		echo "localhost,$sport,$u,$LAB_SECRETS/src/$u,ssl,localhost,$dport,$u,$LAB_SECRETS/dst/$u,ssl"
	done
} >"$csv.good"
{
	cat "$csv.good"
	echo "localhost,$sport,,$LAB_SECRETS/src/user05,ssl,localhost,$dport,x,$LAB_SECRETS/dst/user05,ssl"         # line 10: user1 missing
	echo "localhost,99999,user05,$LAB_SECRETS/src/user05,ssl,localhost,$dport,user05,$LAB_SECRETS/dst/user05,ssl" # line 11: bad port
	echo "localhost,$sport,user06,$LAB_SECRETS/src/user06,tlsv9,localhost,$dport,user09,$LAB_SECRETS/dst/user09,ssl" # line 12: tls
	echo "localhost,$sport,user07,$LAB_SECRETS/src/user07,ssl,localhost,$dport,user07,$LAB_SECRETS/dst/user07,ssl" # line 13: duplicate of line 4
} >"$csv"

"$IMAPFLEET" run "$csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--workers 8 --max-conns-per-host 3 >"$work/run.out" 2>"$work/run.err"
rc=$?
[ $rc -eq 1 ] && ok "a run with bad rows migrates the good ones and exits 1 (some rows not migrated)" ||
	{ not_ok "run exit code is 1 with bad rows (got $rc)"; tail -n 30 "$work/run.err" | sed 's/^/# /'; }
for spec in "10:user1" "11:port1" "12:tls1" "13:"; do
	line=${spec%%:*} field=${spec#*:}
	if grep -E "accounts.csv:$line:.*$field" "$work/run.err" >/dev/null; then
		ok "bad row on line $line is reported with its line number${field:+ and field $field}"
	else
		not_ok "bad row on line $line is reported with its line number${field:+ and field $field}"
		grep -i "accounts.csv" "$work/run.err" | sed 's/^/# /'
	fi
done
nerr=$(grep -c "accounts.csv:[0-9]*:" "$work/run.err")
[ "$nerr" -eq 4 ] && ok "exactly one error line per bad row" || not_ok "exactly one error line per bad row (got $nerr)"

bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp.$u" 2>&1 || { bad=$((bad + 1)); tail -n 15 "$work/cmp.$u" | sed 's/^/# /'; }; done
[ $bad -eq 0 ] && ok "all 8 accounts equal their source message by message" || not_ok "$bad of 8 accounts differ"

speak=$(sed -n 's/.*peak=\([0-9]*\).*/\1/p' "$work/src.count")
dpeak=$(sed -n 's/.*peak=\([0-9]*\).*/\1/p' "$work/dst.count")
diag "peak connections: source $speak, destination $dpeak (limit 3)"
[ -n "$speak" ] && [ "$speak" -le 3 ] && [ "$speak" -ge 1 ] && ok "the source server never saw more than 3 connections" ||
	not_ok "the source server never saw more than 3 connections (peak $speak)"
[ -n "$dpeak" ] && [ "$dpeak" -le 3 ] && [ "$dpeak" -ge 1 ] && ok "the destination server never saw more than 3 connections" ||
	not_ok "the destination server never saw more than 3 connections (peak $dpeak)"

# The operator fixes the file: the same run continues, nothing is copied again.
cp "$csv.good" "$csv"
"$IMAPFLEET" run "$csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress >"$work/run2.out" 2>"$work/run2.err"
rc=$?
[ $rc -eq 0 ] && ok "the corrected file runs clean (exit 0)" || { not_ok "the corrected file runs clean (got $rc)"; tail -n 20 "$work/run2.err" | sed 's/^/# /'; }
grep -q "copied 0 messages" "$work/run2.out" && ok "the second pass copies nothing" || { not_ok "the second pass copies nothing"; cat "$work/run2.out" | sed 's/^/# /'; }

# imapsync's file.txt, unchanged (passwords inline; port and TLS from its extra options).
ftxt="$work/file.txt"
{
	echo "# imapsync file.txt: host1;user1;password1;host2;user2;password2;extra"
	for u in user05 user06; do
		printf 'localhost;%s;%s;localhost;%s;%s;--port1 %s --port2 %s\r\n' "$u" "$(cat "$LAB_SECRETS/src/$u")" \
			"$u" "$(cat "$LAB_SECRETS/dst/$u")" "$LAB_SRC_IMAPS" "$LAB_DST_IMAPS"
	done
} >"$ftxt"
chmod 600 "$ftxt"
"$IMAPFLEET" run "$ftxt" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress >"$work/run3.out" 2>"$work/run3.err"
rc=$?
[ $rc -eq 0 ] && ok "imapsync's file.txt form runs (exit 0)" || { not_ok "imapsync's file.txt form runs (got $rc)"; tail -n 20 "$work/run3.err" | sed 's/^/# /'; }
grep -q "copied 0 messages" "$work/run3.out" && ok "pairs already migrated by another run are matched, not copied twice" ||
	{ not_ok "pairs already migrated by another run are matched, not copied twice"; cat "$work/run3.out" | sed 's/^/# /'; }
bad=0
for u in user05 user06; do same_mail "$LAB_SRC_IMAPS" $u $u >/dev/null 2>&1 || bad=$((bad + 1)); done
[ $bad -eq 0 ] && ok "after the file.txt run both accounts are still exact (nothing twice)" || not_ok "$bad accounts differ after the file.txt run"
grep -q "$(cat "$LAB_SECRETS/src/user05")" "$work/run3.err" "$work/run3.out" && not_ok "no inline password in the output" || ok "no inline password in the output"
