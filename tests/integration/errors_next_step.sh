#!/bin/sh
# An account that fails says where it came from and what to do next, in the message itself: a
# refused login names the accounts file's line and the password file; a full destination says by
# how much it is short and to raise the quota, then `retry --account ID`. A second `run` of the
# same file at the same time says it joins run N and who else works on it. A new, empty embedded
# state in another directory than the one the accounts file ran with is said loudly. Each
# account's log is named after it.
# Accounts: quotauser (dst quota 2 MB), user12 (wrong password), user15 and user16 (read only,
# then dst wiped), user13 (--justlogin only).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_embedded_test
plan 12
proxy="${top_builddir:-.}/tests/tools/faultproxy"
imapfleet=$(cd "$(dirname "$IMAPFLEET")" && pwd)/$(basename "$IMAPFLEET")
bg=""
cleanup() { [ -n "$bg" ] && kill "$bg" 2>/dev/null; lab_db_cleanup; }
hdr="host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
row() { echo "localhost,$1,$2,$3,ssl,localhost,$LAB_DST_IMAPS,$2,$LAB_SECRETS/dst/$2,ssl"; }

# 1. a wrong password and a full destination
fresh_db errors_next
wipe_dst quotauser
printf 'not-the-password\n' >"$work/wrong"
chmod 600 "$work/wrong"
{
	echo "$hdr"
	row "$LAB_SRC_IMAPS" user12 "$work/wrong"
	row "$LAB_SRC_IMAPS" quotauser "$LAB_SECRETS/src/quotauser"
} >"$work/accounts.csv"
"$IMAPFLEET" run "$work/accounts.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	>"$work/a.out" 2>"$work/a.err"
rc=$?
[ $rc = 1 ] && ok "both accounts fail: exit 1" || not_ok "both accounts fail: exit 1 (got $rc)"
auth=$(grep "ERROR .*user12@.*account failed (auth" "$work/a.err")
id12=$(psql "$STATE_URL" -Atc "select id from job where user1 = 'user12'")
idq=$(psql "$STATE_URL" -Atc "select id from job where user1 = 'quotauser'")
has "a refused login names the line of the accounts file and the password file" "$auth" \
	"line 2 of $work/accounts.csv, source user12@localhost: password from $work/wrong: check it"
has "a refused login says to retry that account once fixed" "$auth" "then \`imapfleet retry --account $id12\` and run again"
quota=$(grep "ERROR .*quotauser@.*account failed (permanent, OVERQUOTA)" "$work/a.err")
has "a full destination says how full and by how much it is short" "$quota" -E \
	"destination over quota: [0-9.]+ [KM]?B of 2\.0 MB used, (at least )?[0-9.]+ [KM]?B still to copy: short by (at least )?[0-9.]+ [KM]?B"
has "a full destination says to raise the quota, then retry that account" "$quota" \
	"line 3 of $work/accounts.csv: once the destination's quota is raised (by the shortfall above when it is given), \`imapfleet retry --account $idq\` and run again"
drop_db

# 2. a second run of the same file while the first is going on
fresh_db errors_join
wipe_dst user15 user16
"$proxy" --listen 127.0.0.1:0 --target "127.0.0.1:$LAB_SRC_IMAPS" --stall-ms 60 --stall-prob 0.7 --seed 3 \
	>"$work/p1.out" 2>&1 &
pids="$pids $!"
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work/p1.out" ] && break; sleep 0.2; done
sport=$(head -n 1 "$work/p1.out")
{
	echo "$hdr"
	row "$sport" user15 "$LAB_SECRETS/src/user15"
	row "$sport" user16 "$LAB_SECRETS/src/user16"
} >"$work/join.csv"
"$IMAPFLEET" run "$work/join.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--workers 1 >"$work/j1.out" 2>"$work/j1.err" &
bg=$!
for i in $(seq 1 100); do grep -q "attempt 1 of" "$work/j1.err" 2>/dev/null && break; sleep 0.1; done
"$IMAPFLEET" run "$work/join.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--workers 1 >"$work/j2.out" 2>"$work/j2.err"
wait $bg
rc1=$?
bg=""
run=$(psql "$STATE_URL" -Atc "select id from run")
grep -Eq "WARN  run $run is already going on: this process joins it; also working on it: [^ ]+ \(pid [0-9]+, 1 account running\)" "$work/j2.err" &&
	ok "a second run says it joins run $run and who else works on it" ||
	{ not_ok "a second run says it joins the run and who else works on it"; head -n 5 "$work/j2.err" | sed 's/^/# /'; }
pid1=$(sed -n 's/.*also working on it: [^ ]* (pid \([0-9]*\),.*/\1/p' "$work/j2.err")
first=$(psql "$STATE_URL" -Atc "select pid from engine order by id limit 1")
[ -n "$pid1" ] && [ "$pid1" = "$first" ] && ok "the other process named is the first run's" ||
	not_ok "the other process named is the first run's (named $pid1, first $first)"
bad=0
for u in user15 user16; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp.$u" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp.$u" | sed 's/^/# /'; }; done
[ $rc1 = 0 ] && [ $bad = 0 ] && ok "the two runs together migrate both accounts exactly" ||
	not_ok "the two runs together migrate both accounts exactly (first run exit $rc1, $bad differ)"
drop_db

# 3. the same accounts file from another directory: a new, empty embedded state, said loudly
unset IMAPFLEET_STATE PGHOST PGDATABASE
mkdir -p "$work/batch" "$work/elsewhere"
chmod 755 "$work/batch" "$work/elsewhere"
{
	echo "$hdr"
	row "$LAB_SRC_IMAPS" user13 "$LAB_SECRETS/src/user13"
} >"$work/batch/accounts.csv"
(cd "$work/batch" && "$imapfleet" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	-- --justlogin >"$work/e1.out" 2>"$work/e1.err")
rc=$?
[ -f "$work/batch/.imapfleet/logs/user13@localhost-1.log" ] && grep -q "logged in on both sides" "$work/batch/.imapfleet/logs/user13@localhost-1.log" &&
	ok "the account's log is named after it: .imapfleet/logs/user13@localhost-1.log" ||
	{ not_ok "the account's log is named after it"; ls "$work/batch/.imapfleet/logs" | sed 's/^/# /'; }
[ $rc = 0 ] && ! grep -q "NEW STATE" "$work/e1.err" && ok "the first run in its own directory says nothing special" ||
	{ not_ok "the first run in its own directory says nothing special (exit $rc)"; tail -n 5 "$work/e1.err" | sed 's/^/# /'; }
(cd "$work/elsewhere" && "$imapfleet" run ../batch/accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	--no-progress -- --justlogin >"$work/e2.out" 2>"$work/e2.err")
batch=$(cd "$work/batch" && pwd -P)
grep -q "WARN  NEW STATE: $batch/accounts.csv ran before with the state in $batch/.imapfleet, but this run starts a new, empty state in .*/elsewhere/.imapfleet" "$work/e2.err" &&
	ok "from another directory: the new, empty state is said loudly, with where the old one is" ||
	{ not_ok "from another directory: the new, empty state is said loudly"; grep -i "state" "$work/e2.err" | head -n 5 | sed 's/^/# /'; }
(cd "$work/batch" && "$imapfleet" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	-- --justlogin >"$work/e3.out" 2>"$work/e3.err")
grep -q "NEW STATE" "$work/e3.err" && not_ok "back in its own directory: no warning" || ok "back in its own directory: no warning"
