#!/bin/sh
# imapfleet run on a real terminal (tmux): the progress display fits the terminal at 80 and 200
# columns and after a resize, log lines are printed above it and never glued to it, no stale copy
# of it is left in the scrollback, its counters are right at the end (done and failed apart); with
# a `worker` (another host) on the same run its bytes are the whole run's, both hosts' copies;
# without a terminal the same words come as timestamped log lines, and --quiet leaves warnings
# and errors only.
# Accounts: user13..user20 (dst wiped first), user12 with a wrong source password (fails).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
command -v tmux >/dev/null 2>&1 || skip_all "tmux is not installed (scripts/deps.sh installs it)"
plan 30
work=$(mktemp -d)
proxy="${top_builddir:-.}/tests/tools/faultproxy"
sock="fleet-progress-$$"
users="user13 user14 user15 user16 user17 user18 user19 user20"
wk=""
cleanup() {
	tmux -L "$sock" kill-server 2>/dev/null
	kill $p1 $wk 2>/dev/null
	drop_db
	rm -rf "$work"
}
trap cleanup EXIT
imapfleet=$(cd "$(dirname "$IMAPFLEET")" && pwd)/$(basename "$IMAPFLEET")

# The source through a proxy that stalls now and then: the run lasts long enough to be watched.
"$proxy" --listen 127.0.0.1:0 --target "127.0.0.1:$LAB_SRC_IMAPS" --stall-ms 40 --stall-prob 0.5 --seed 7 \
	>"$work/p1.out" 2>&1 &
p1=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work/p1.out" ] && break; sleep 0.2; done
sport=$(head -n 1 "$work/p1.out")
printf 'not-the-password\n' >"$work/wrong"
chmod 600 "$work/wrong"
csv="$work/accounts.csv"
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	for u in $users; do
		echo "localhost,$sport,$u,$LAB_SECRETS/src/$u,ssl,localhost,$LAB_DST_IMAPS,$u,$LAB_SECRETS/dst/$u,ssl"
	done
	echo "localhost,$sport,user12,$work/wrong,ssl,localhost,$LAB_DST_IMAPS,user12,$LAB_SECRETS/dst/user12,ssl"
} >"$csv"
# Where nothing is watched: two accounts and the failing one, no stalls.
sed -n "1p;2,3p;\$p" "$csv" | sed "s/,$sport,/,$LAB_SRC_IMAPS,/" >"$work/direct.csv"
printf 'set -g history-limit 50000\nset -g remain-on-exit on\n' >"$work/tmux.conf"

# watch NAME COLS [RESIZE_TO]: a fresh state and destination, `imapfleet run` in a COLS x 30 tmux
# pane, the screen captured every 0.2 s (wrapped lines joined: a line that wrapped shows as one
# longer line) into $work/NAME.snapN until it exits; with RESIZE_TO the window is resized to that
# many columns once an account has finished. Leaves the scrollback in $work/NAME.all.
watch() {
	name=$1 cols=$2 resize=${3:-}
	drop_db
	fresh_db "progress_$name"
	wipe_dst $users
	cat >"$work/$name.sh" <<EOF
cd "$work" && "$imapfleet" run accounts.csv --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --workers 3
echo "EXIT=\$?" >"$work/$name.exit"
EOF
	tmux -L "$sock" -f "$work/tmux.conf" new-session -d -x "$cols" -y 30 -s "$name" "sh $work/$name.sh"
	n=0 resized=""
	while [ ! -s "$work/$name.exit" ] && [ $n -lt 900 ]; do
		n=$((n + 1))
		tmux -L "$sock" capture-pane -p -J -t "$name" >"$work/$name.snap$n" 2>/dev/null
		if [ -n "$resize" ] && [ -z "$resized" ] && grep -q "done: " "$work/$name.snap$n"; then
			tmux -L "$sock" resize-window -t "$name" -x "$resize" -y 30
			resized=$n
			echo "$n" >"$work/$name.resized"
		fi
		sleep 0.2
	done
	sleep 0.3
	tmux -L "$sock" capture-pane -p -J -S - -t "$name" >"$work/$name.all"
	tmux -L "$sock" kill-session -t "$name" 2>/dev/null
	nsnaps=$n
}

# check_display NAME COLS [FROM]: every display line of every capture from FROM on fits COLS - 1.
check_display() {
	name=$1 cols=$2 from=${3:-1} bad=0 seen=0
	i=$from
	while [ $i -le $nsnaps ]; do
		f="$work/$name.snap$i"
		i=$((i + 1))
		[ -f "$f" ] || continue
		if grep -Eq '^run [0-9]+ ' "$f"; then seen=$((seen + 1)); fi
		long=$(grep -E '^(run [0-9]+ |accounts [0-9]+/|  user[0-9]+@|  \.\.\. )' "$f" |
			awk -v max=$((cols - 1)) 'length($0) > max { print }')
		if [ -n "$long" ]; then
			bad=$((bad + 1))
			[ $bad -le 2 ] && printf '%s\n' "$long" | sed "s/^/# $name snap: /"
		fi
	done
	echo "$seen $bad"
}

for spec in "w80:80" "w200:200:100"; do
	name=${spec%%:*} rest=${spec#*:}
	cols=${rest%%:*} resize=""
	[ "$rest" != "$cols" ] && resize=${rest#*:}
	watch "$name" "$cols" "$resize"
	grep -q "EXIT=1" "$work/$name.exit" && ok "$name: the run ends with exit 1 (one account failed)" ||
		{ not_ok "$name: exit 1 (got $(cat "$work/$name.exit" 2>/dev/null))"; tail -n 20 "$work/$name.all" | sed 's/^/# /'; }

	if [ -n "$resize" ] && [ -f "$work/$name.resized" ]; then
		# Up to the resize: the wide terminal; from the second capture after it: the narrow one.
		r=$(cat "$work/$name.resized")
		nsave=$nsnaps
		set -- $(check_display "$name" "$resize" $((r + 2)))
		[ "$2" = 0 ] && ok "$name: after a resize to $resize columns every display line fits $((resize - 1))" ||
			not_ok "$name: after a resize to $resize columns every display line fits ($2 captures too wide)"
		nsnaps=$r
		set -- $(check_display "$name" "$cols")
		nsnaps=$nsave
	else
		[ -n "$resize" ] && not_ok "$name: the window was resized mid-run (no account had finished before the end)"
		set -- $(check_display "$name" "$cols")
	fi
	[ "$1" -ge 3 ] && ok "$name: the display was on the screen while the run went on ($1 captures)" ||
		not_ok "$name: the display was on the screen while the run went on ($1 captures)"
	[ "$2" = 0 ] && ok "$name: no display line is wider than $((cols - 1)) columns (never wraps)" ||
		not_ok "$name: no display line is wider than $((cols - 1)) columns ($2 captures too wide)"

	stale=0 i=1
	while [ $i -le $nsnaps ]; do
		c=$(grep -Ec '^run [0-9]+ .*ETA' "$work/$name.snap$i" 2>/dev/null)
		[ "${c:-0}" -gt 1 ] && stale=$((stale + 1))
		i=$((i + 1))
	done
	[ $stale = 0 ] && ok "$name: one display on the screen at a time" ||
		not_ok "$name: one display on the screen at a time ($stale captures show more)"
	heads=$(grep -Ec '^run [0-9]+ .*ETA' "$work/$name.all")
	[ "$heads" = 1 ] && ok "$name: the scrollback holds no stale copy of the display (only the final one)" ||
		{ not_ok "$name: the scrollback holds no stale copy of the display ($heads)"; grep -E 'ETA' "$work/$name.all" | head -n 5 | sed 's/^/# /'; }
	glued=$(grep -Ec '.[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (INFO|WARN|ERROR)|^[0-9]{4}-[0-9]{2}-.*(ETA|finished: [0-9]+ done)' \
		"$work/$name.all")
	[ "$glued" = 0 ] && ok "$name: log lines are never glued to the display, nor it to them" ||
		{ not_ok "$name: log lines are never glued to the display ($glued lines)"; grep -E '.[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work/$name.all" | grep -Ev '^[0-9]{4}-' | head -n 5 | sed 's/^/# /'; }
	accts=$(cat "$work"/$name.snap* | grep -Ec '^  user[0-9]+@localhost +folder [0-9]+/[0-9]+ +[0-9]+/~?[0-9]+ msgs +[0-9.]+/~?[0-9.]+ [KM]?B')
	[ "$accts" -ge 1 ] && ok "$name: running accounts are shown with their own counters" ||
		not_ok "$name: running accounts are shown with their own counters"
	grep -Eq '^accounts 9/9 finished: 8 done, 1 failed; 0 running \(0 here\), 0 queued$' "$work/$name.all" &&
		ok "$name: the final counters stay on the screen: 9 finished, 8 done, 1 failed" ||
		{ not_ok "$name: the final counters stay on the screen"; grep -E '^accounts|^run' "$work/$name.all" | sed 's/^/# /'; }
	grep -Eq '^run [0-9]+  100% \[=+\] [0-9.]+/[0-9.]+ MB .*ETA 0:00$' "$work/$name.all" &&
		ok "$name: the final line is at 100% of the bytes" ||
		{ not_ok "$name: the final line is at 100% of the bytes"; grep -E '^run' "$work/$name.all" | sed 's/^/# /'; }
done

bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp.$u" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp.$u" | sed 's/^/# /'; }; done
[ $bad = 0 ] && ok "all 8 accounts equal their source message by message" || not_ok "$bad of 8 accounts differ"

# Two hosts: `run` in an 120-column pane and a `worker` that joins the run from its directory. The
# display's bytes are the whole run's (the state store's ledger): its final total is what both
# copied, not the pane's own share.
drop_db
fresh_db progress_two
wipe_dst $users
cat >"$work/two.sh" <<EOF
cd "$work" && "$imapfleet" run accounts.csv --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --workers 2
echo "EXIT=\$?" >"$work/two.exit"
EOF
tmux -L "$sock" -f "$work/tmux.conf" new-session -d -x 120 -y 30 -s two "sh $work/two.sh"
for i in $(seq 1 200); do
	[ "$(psql "$STATE_URL" -Atc "select count(*) from job" 2>/dev/null)" = 9 ] && break
	sleep 0.05
done
(cd "$work" && exec "$imapfleet" worker --state "$STATE_URL" --no-progress --workers 2 >"$work/wk.out" 2>"$work/wk.err") &
wk=$!
n=0
while [ ! -s "$work/two.exit" ] && [ $n -lt 900 ]; do n=$((n + 1)); sleep 0.2; done
sleep 0.3
tmux -L "$sock" capture-pane -p -J -S - -t two >"$work/two.all"
tmux -L "$sock" kill-session -t two 2>/dev/null
wait $wk
wrc=$?
wk=""
grep -q "EXIT=1" "$work/two.exit" && [ $wrc -le 1 ] && ok "two hosts: the run ends with exit 1 (one account failed), the worker ends too" ||
	{ not_ok "two hosts: exit 1 and the worker ends (run $(cat "$work/two.exit" 2>/dev/null), worker $wrc)"; tail -n 5 "$work/wk.err" | sed 's/^/# /'; }
hosts=$(psql "$STATE_URL" -Atc "select count(distinct a.engine_id) from job_attempt a where a.outcome = 'done'")
[ "${hosts:-0}" -ge 2 ] && ok "two hosts: both the run and the worker copied accounts" ||
	not_ok "two hosts: both the run and the worker copied accounts ($hosts engines finished accounts)"
dbmb=$(psql "$STATE_URL" -Atc "select to_char(sum(bytes_copied) / 1048576.0, 'FM9999990.0') from job")
final=$(grep -E '^run [0-9]+  ' "$work/two.all" | tail -n 1)
diag "two hosts: database $dbmb MB; final line: $final"
printf '%s\n' "$final" | grep -Eq "^run [0-9]+  100% \[=+\] $dbmb/$dbmb MB .*ETA 0:00$" &&
	ok "two hosts: the display's final total is the whole run's ($dbmb MB, both hosts' copies)" ||
	not_ok "two hosts: the display's final total is the whole run's ($dbmb MB): $final"
bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp2.$u" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp2.$u" | sed 's/^/# /'; }; done
[ $bad = 0 ] && ok "two hosts: all 8 accounts equal their source message by message" || not_ok "two hosts: $bad of 8 accounts differ"

# Not a terminal: the same words as timestamped log lines; --quiet: warnings and errors only.
drop_db
fresh_db progress_plain
wipe_dst user13 user14
"$IMAPFLEET" run "$work/direct.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --workers 3 \
	>"$work/plain.out" 2>"$work/plain.err"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z INFO  progress: run [0-9]+: 100% .* ETA 0:00; accounts 3/3 finished: 2 done, 1 failed; 0 running \(0 here\), 0 queued$' "$work/plain.err" &&
	ok "not on a terminal: a timestamped progress line with the final counters" ||
	{ not_ok "not on a terminal: a timestamped progress line"; grep progress "$work/plain.err" | sed 's/^/# /'; }
nots=$(grep -Evc '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (INFO |WARN |ERROR|DEBUG)' "$work/plain.err")
[ "$nots" = 0 ] && ok "not on a terminal: every line of standard error is a timestamped log line" ||
	{ not_ok "not on a terminal: every line is a timestamped log line ($nots are not)"; grep -Ev '^[0-9]{4}-' "$work/plain.err" | head -n 5 | sed 's/^/# /'; }
grep -q $'\033' "$work/plain.err" && not_ok "not on a terminal: no escape sequences" || ok "not on a terminal: no escape sequences"

drop_db
fresh_db progress_quiet
wipe_dst user13 user14
"$IMAPFLEET" run "$work/direct.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --workers 3 --quiet \
	>"$work/quiet.out" 2>"$work/quiet.err"
rc=$?
[ $rc = 1 ] && ok "--quiet: the same outcome (exit 1)" || not_ok "--quiet: the same outcome (exit 1, got $rc)"
if grep -q " INFO " "$work/quiet.err"; then
	not_ok "--quiet: no INFO line on the terminal"
	grep " INFO " "$work/quiet.err" | head -n 3 | sed 's/^/# /'
else
	ok "--quiet: no INFO line on the terminal"
fi
grep -q "ERROR .*user12.*AUTHENTICATIONFAILED" "$work/quiet.err" && ok "--quiet: the failed account's error is still shown" ||
	{ not_ok "--quiet: the failed account's error is still shown"; sed 's/^/# /' "$work/quiet.err" | head; }
