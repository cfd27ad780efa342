#!/bin/sh
# crash_ledger: the write path that records a window's rows and end together with the next
# statement that writes anyway (the next window's begin, or the folder's status), and an
# unchanged folder that costs no statement. Two accounts, small windows (--batch 2) so that most
# folders have several windows:
#   1. SIGKILL where a window's end is held back (IMAPFLEET_FAILPOINT=window-end-held): the
#      destination holds more messages than the ledger, and that window is still open;
#   2. the same command finishes the run: every message compared, the ledger and the folder
#      counters agree, no window left open, nothing copied twice;
#   3. a second pass over the unchanged accounts writes nothing for the folders (one statement
#      for all of them, from PostgreSQL's own statistics) and copies nothing;
#   4. new mail in one folder: only that folder is written, and it arrives exactly.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init crash_ledger user16 user17
plan 15

fl_csv "$FL_WORK/accounts.csv" "$LAB_SRC_IMAPS" "$LAB_DST_IMAPS"
fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
total=$(fl_src_total) || bail "cannot count the source messages"
[ "$total" -gt 0 ] || bail "the source accounts are empty (scripts/lab.sh seed)"
diag "$total source messages in $FL_USERS"
ARGS="--lease 3000 --workers 2 --retry-base 200 --retry-cap 1000 --batch 2"

# ---- 1. killed with a window's end held back ------------------------------------------------
# shellcheck disable=SC2086
fl_run_to_failpoint window-end-held $ARGS
rc=$FL_RC dst=$FL_DST rec=$FL_REC
open=$(fl_num "$FL_OPEN_WINDOWS")
diag "1: exit $rc; destination holds $dst messages, the ledger records $rec, $open windows open"
if [ $rc -eq 137 ]; then ok "1: killed where a window's end is held back"
else not_ok "1: killed where a window's end is held back (exit $rc, want 137)"; fi
if [ "$dst" -gt "$rec" ] && [ "$open" -ge 1 ]; then
	ok "1: the held window is open and its messages are on the destination only ($((dst - rec)) of them)"
else
	not_ok "1: the held window is open and its messages are on the destination only (destination $dst, ledger $rec, $open open)"
fi
sleep 4 # the lease of the killed engine

# ---- 2. the same command finishes ---------------------------------------------------------
# shellcheck disable=SC2086
fl_run_ok "2: the same command finishes the run" $ARGS
fl_db_checks "$total"
fl_mailcmp_all
bad=$(fl_sql "select count(*) from folder f where msgs_copied <> (select count(*) from message m
	where m.folder_id = f.id and m.src_uidvalidity = f.src_uidvalidity and m.state = 'copied')
	or state <> 'done'")
if [ "$bad" = 0 ]; then ok "2: every folder is done and its counter equals its copied rows"
else not_ok "2: $bad folders not done or with a counter unlike their copied rows"
	fl_sql "select src_name, state, msgs_copied from folder order by id" | sed 's/^/# /'; fi

# ---- 3. an unchanged pass writes nothing for the folders ----------------------------------
folder_writes() {
	psql "$LAB_PG_SUPER_URL" -qAtX -c "select pg_stat_force_next_flush()" >/dev/null 2>&1
	sleep 1
	psql "$FL_STATE" -qAtX -c "select n_tup_ins + n_tup_upd + n_tup_del from pg_stat_user_tables where relname = 'folder'"
}
w0=$(folder_writes)
# shellcheck disable=SC2086
fl_run $ARGS
rc=$?
w1=$(folder_writes)
copied=$(grep -o 'pass [0-9]* (delta[^:]*: [0-9]* copied' "$FL_WORK/run.out" | tail -n 1 | grep -o '[0-9]* copied')
diag "3: exit $rc, $copied, folder rows written $w0 -> $w1"
if [ $rc -eq 0 ] && [ "$copied" = "0 copied" ]; then ok "3: the unchanged pass copies nothing"
else not_ok "3: the unchanged pass copies nothing (exit $rc, ${copied:-no pass line})"; fi
if [ -n "$w0" ] && [ "$w0" = "$w1" ]; then ok "3: and writes no folder row"
else not_ok "3: and writes no folder row ($w0 -> $w1)"; fi

# ---- 4. new mail in one folder ------------------------------------------------------------
"$FL_PY" "${top_srcdir:-.}/scripts/lab/change.py" append user16 Sent 3 >/dev/null ||
	bail "cannot append to user16's Sent"
w0=$(folder_writes)
# shellcheck disable=SC2086
fl_run $ARGS
rc=$?
w1=$(folder_writes)
copied=$(grep -o 'pass [0-9]* (delta[^:]*: [0-9]* copied' "$FL_WORK/run.out" | tail -n 1 | grep -o '[0-9]* copied')
if [ $rc -eq 0 ] && [ "$copied" = "3 copied" ] && [ $((w1 - w0)) -ge 1 ] && [ $((w1 - w0)) -le 4 ]; then
	ok "4: 3 new messages copied; folder rows written only for that folder ($((w1 - w0)) updates)"
else
	not_ok "4: 3 new messages copied, only that folder written (exit $rc, ${copied:-no pass line}, $w0 -> $w1)"
fi
n=$(fl_sql "select count(*) from message where state = 'copied'")
if [ "$n" = $((total + 3)) ]; then ok "4: ledger has $n copied rows"; else not_ok "4: ledger has $n copied rows, expected $((total + 3))"; fi
