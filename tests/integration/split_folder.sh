#!/bin/sh
# split_folder: one large folder copied by several connection pairs at once (run
# --conns-per-account, far servers), each pair taking windows (UID ranges) of it and recording its
# own append window (folder_window, migration 13); every message compared. Then killed with SIGKILL
# while several pairs copy windows of the folder, the same command finishes it: nothing missing,
# nothing twice (mailcmp, and the ledger: one copied row per source message, no destination UID
# twice, no append window left open, of any pair).
# Then a helper pair fails inside the split (IMAPFLEET_FAILPOINT=split-pair-drop: its connections
# drop after a window's APPENDs landed, before the ledger holds them): the account goes on, the
# pair that split the folder reads it again (the landed window matched) and copies the rest, in
# the same attempt: exit 0, every message once.
# The helper pairs are started while the listing pair reads the folder's metadata (its STATUS
# says it will be split), and wait for the split.
# Accounts: xsplit1, xsplit2 (added here; INBOX filled by scripts/bench/hugeseed.py).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

lab_require
for a in xsplit1 xsplit2; do
	"${top_srcdir:-.}/scripts/lab.sh" add-account $a >/dev/null 2>&1 || skip_all "cannot add the lab account $a"
done
fl_init split_folder xsplit1 xsplit2
fl_plan 32

# 300 small messages in each INBOX (hugeseed empties INBOX first; the same messages every time)
fl_fill_inbox 300

logs() { cat "$FL_WORK"/.imapfleet/logs/*.log 2>/dev/null; }
# pairs_in USER: the connection pairs that copied windows of USER's INBOX ("N:WINDOWS" each), and the
# windows they copied in all.
pairs_in() {
	cat "$FL_WORK"/.imapfleet/logs/*"$1"*.log 2>/dev/null |
		sed -n 's/.*connection pair \([0-9]*\) copied \([0-9]*\) of this folder.s \([0-9]*\) windows.*/\1 \2 \3/p' |
		awk '{ p[$1] += $2; w += $2; n = $3 } END { for (k in p) s = s k ":" p[k] " "; print length(p), w + 0, n + 0, s }'
}

total=$(fl_src_total) || bail "cannot count the source messages"
[ "$total" -ge 600 ] || bail "the INBOXes hold $total messages, 600 expected"
diag "$total source messages in $FL_USERS"

# 1. A far source, one account at a time, free slots, windows of 10 messages: each INBOX is split.
fl_far_source 30
fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
fl_run --workers 1 --max-conns-per-host 8 --conns-per-account 4 --batch 10
rc=$?
if [ $rc -eq 0 ]; then ok "a far source: the run ends with exit 0"
else not_ok "a far source: the run ends with exit 0 (exit $rc)"; tail -n 20 "$FL_WORK/run.out" | sed 's/^/# /'; fi
for a in $FL_USERS; do
	read -r npairs nwin want detail <<<"$(pairs_in "$a")"
	if [ "$npairs" -ge 2 ] && [ "$nwin" = 30 ] && [ "$want" = 30 ]; then
		ok "$a: INBOX split: $npairs connection pairs copied its 30 windows ($detail)"
	else
		not_ok "$a: INBOX split between 2 or more connection pairs (${npairs:-0} pairs, ${nwin:-0} of ${want:-?} windows: $detail)"
		logs | grep -E "connection pair|windows" | head -n 10 | sed 's/^/# /'
	fi
done
# The helpers log in while the listing pair reads the folder's metadata (its STATUS says 300
# messages, 30 windows): they are started before the folder's windows are offered.
for a in $FL_USERS; do
	first=$(cat "$FL_WORK"/.imapfleet/logs/*"$a"*.log 2>/dev/null |
		grep -E "more connection pairs? for this account|copy windows, shared with" | head -n 1)
	case "$first" in
	*"more connection pair"*) ok "$a: the helper pairs started before the windows were offered" ;;
	*) not_ok "$a: the helper pairs started before the windows were offered (first: ${first:-none})" ;;
	esac
done
fl_db_checks "$total"
fl_mailcmp_all

# 2. Killed with SIGKILL three times while several pairs copy windows of a split INBOX; windows of
#    one message and a source 150 ms away, so that the copy lasts and the kills land mid-window.
fl_far_source 150
fl_fresh_start
ARGS="--lease 3000 --workers 1 --max-conns-per-host 64 --conns-per-account 4 --retry-base 200 --retry-cap 1000 --batch 1"
kills=0 windows_open=0 pair_windows=0
for k in 1 2 3; do
	before=$(fl_copied)
	rm -rf "$FL_WORK/.imapfleet/logs"
	# shellcheck disable=SC2086
	fl_run_bg $ARGS
	pid=$FL_PID
	t0=$SECONDS
	# until a helper copies windows of the folder, then a little more
	while fl_alive "$pid" && ! logs | grep -q "copies windows of this folder too" && [ $((SECONDS - t0)) -lt 60 ]; do
		sleep 0.05
	done
	fl_msleep "$(fl_rand 300 1500)"
	n=$(fl_num "select count(*) from folder_window")
	fl_kill_mid_run "$pid" "$k" ", $n of them a helper pair's (copied before: $before)" || break
	pair_windows=$((pair_windows + n))
done
if [ $kills -eq 3 ]; then ok "killed with SIGKILL 3 times mid-run"; else not_ok "killed with SIGKILL 3 times mid-run (only $kills)"; fi
if [ $pair_windows -ge 1 ]; then ok "the kills left append windows of helper pairs open ($pair_windows)"
else not_ok "no kill left a helper pair's append window open"; fi
# shellcheck disable=SC2086
fl_run_ok "the same command finishes the run" $ARGS
fl_db_checks "$total"
fl_mailcmp_all

# 3. A helper pair's connections drop inside the split, after the APPENDs of one of its windows
#    landed and before the ledger holds them (once per process, so in the first account): the
#    account goes on, and the same attempt ends with every message copied once.
fl_far_source 30
fl_fresh_start
: >"$FL_WORK/run.out"
IMAPFLEET_FAILPOINT=split-pair-drop fl_run --workers 1 --max-conns-per-host 8 --conns-per-account 4 --batch 10 --max-attempts 1
rc=$?
if [ $rc -eq 0 ]; then ok "a helper pair failing inside the split: the run ends with exit 0"
else not_ok "a helper pair failing inside the split: the run ends with exit 0 (exit $rc)"; tail -n 20 "$FL_WORK/run.out" | sed 's/^/# /'; fi
stopped=$(logs | grep -c "stopped inside a shared folder")
again=$(logs | grep -c "the folder is read again and what it left is copied")
matched=$(logs | grep -E "messages already on the destination \(matched by identity" | head -n 1)
if [ "$stopped" = 1 ] && [ "$again" = 1 ] && [ -n "$matched" ]; then
	ok "one pair stopped, the folder was read again and its landed window matched (${matched##*] })"
else
	not_ok "one pair stopped, the folder read again, its window matched (stopped $stopped, read again $again, matched: ${matched:-none})"
	logs | grep -E "WARN|matched|connection pair" | head -n 10 | sed 's/^/# /'
fi
n=$(fl_sql "select count(*) from job_attempt")
if [ "$n" = 2 ]; then ok "one attempt per account (2 in all)"; else not_ok "one attempt per account ($n attempts for 2 accounts)"; fi
fl_db_checks "$total"
fl_mailcmp_all
