#!/bin/sh
# crash_points: SIGKILL at chosen points of one run of 2 accounts, each time started again with
# the same command, then finished; every account must be exact and the ledger consistent.
# Step 6 comes first (on a fresh state: a kill leaves the windows begun ahead open, and a folder
# whose window is open is matched, never begun ahead), then the failpoint steps 3 and 4, while
# the whole corpus is still to be copied: under load the other steps copy more before their kill,
# and could leave no large message behind.
#   1. during logins and folder creation (0-200 ms after the first claim);
#   2. a dead engine's connection slots: with --max-conns-per-host 2, the restarted process must
#      make progress within the lease (+10 s), not wait for the dead engine's registration (the
#      first process dies holding its slots at IMAPFLEET_FAILPOINT=after-append);
#   3. halfway through the APPEND of a message of 64 KB or more (IMAPFLEET_FAILPOINT=mid-append,
#      --batch 1: the open window is that message);
#   4. between the APPENDs and the ledger write: the process kills itself there
#      (IMAPFLEET_FAILPOINT=after-append), so the destination holds more messages than the ledger;
#   5. a crash between the ledger write and the window close (simulated in the database after
#      the run: the window of a finished folder left open): the next pass closes it and copies
#      nothing twice;
#   6. inside a multi-folder flush: the first windows of several folders were begun in one write
#      and a later folder takes its window begun ahead (IMAPFLEET_FAILPOINT=window-begun-ahead),
#      the earlier folders' rows and window ends not written yet.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init crash_points user18 user19
FL_SEED=${FL_SEED:-$(( $$ ^ $(date +%s) ))}
RANDOM=$FL_SEED
plan 17
diag "seed $FL_SEED"

# The source is reached through a plain faultproxy, which counts the connections; the accounts
# file, hence the jobs, stay the same throughout.
fl_faultproxy SRCPROXY --target "127.0.0.1:$LAB_SRC_IMAPS"
fl_prepare "$SRCPROXY"
ARGS="--lease 3000 --workers 2 --retry-base 200 --retry-cap 1000"
attempts() { fl_num "select count(*) from job_attempt"; }
killit() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ---- 6. inside a multi-folder flush ------------------------------------------------------------
# The process kills itself when a folder starts copying under the window begun ahead for it in an
# earlier folder's flush: several folders' windows are open, and what the earlier folders appended
# since is on the destination but not in the ledger. The rest of the test finishes the run and
# compares every message. One connection pair (--conns-per-account 1): once other pairs have
# started (a round trip of 10 ms or more, as on a loaded machine) no window is begun ahead.
before=$(fl_copied)
if [ "$before" -ge "$total" ]; then
	ok "6: # SKIP nothing left to copy (small corpus)"
	ok "6: # SKIP"
else
	# shellcheck disable=SC2086
	fl_run_to_failpoint window-begun-ahead $ARGS --max-conns-per-host 64 --conns-per-account 1
	rc=$FL_RC dst=$FL_DST rec=$FL_REC
	open=$(fl_sql "select count(*) from folder where window_dst_uidnext is not null")
	diag "6: exit $rc; $open windows open; destination holds $dst messages, the ledger records $rec"
	if [ $rc -eq 137 ]; then ok "6: killed when a folder took the window begun ahead for it"
	else not_ok "6: killed when a folder took the window begun ahead for it (exit $rc, want 137)"; fi
	if [ "$open" -ge 2 ]; then ok "6: $open windows open at the kill (several folders' windows in one flush)"
	else not_ok "6: several windows open at the kill ($open)"; fi
	sleep 4 # the lease of the killed engine
fi

# ---- 3. halfway through the APPEND of a large message --------------------------------------------
# IMAPFLEET_FAILPOINT=mid-append: the process kills itself when half of a body of 64 KB or more has
# gone to the destination (--batch 1: that message alone is the open window). The server must drop
# the half literal; the next run matches or copies it again, once. One connection pair: an extra
# pair (a loaded machine's round trips look far) keeps its window in folder_window, not in folder.
big=$(for u in $FL_USERS; do fl_big_msgs "$u" 65536 | sed "s/^/$u\t/"; done)
if [ -z "$big" ]; then
	ok "3: # SKIP no message of 64 KB or more in the source"
else
	# shellcheck disable=SC2086
	(export IMAPFLEET_FAILPOINT=mid-append; fl_run $ARGS --max-conns-per-host 64 --batch 1 --conns-per-account 1)
	rc=$?
	hit=""
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		size=$(printf '%s\n' "$big" | awk -F'\t' -v k="$line" '($1 "\t" $2 "\t" $3) == k { print $4; exit }')
		[ -n "$size" ] && { hit="$(printf '%s' "$line" | tr '\t' ' ') ($size bytes)"; break; }
	done <<<"$(fl_sql "select j.user1 || chr(9) || f.src_name || chr(9) || f.window_first_uid from folder f
		join job j on j.id = f.job_id where f.window_dst_uidnext is not null")"
	if [ $rc -eq 137 ] && [ -n "$hit" ]; then
		ok "3: killed halfway through the APPEND of a large message: $hit"
	else
		not_ok "3: killed halfway through the APPEND of a large message (exit $rc, want 137; open window: ${hit:-none of 64 KB or more})"
	fi
	sleep 4 # the lease of the killed engine
fi

# ---- 4. between APPEND and ledger write -------------------------------------------------------
# IMAPFLEET_FAILPOINT=after-append makes the process SIGKILL itself as soon as a window's APPEND
# has completed and before the ledger records it: the crash window, hit every time.
before=$(fl_copied)
if [ "$before" -ge "$total" ]; then
	ok "4: # SKIP nothing left to copy (small corpus)"
else
	# shellcheck disable=SC2086
	fl_run_to_failpoint after-append $ARGS --max-conns-per-host 64
	rc=$FL_RC dst=$FL_DST rec=$FL_REC
	diag "4: exit $rc; destination holds $dst messages, the ledger records $rec"
	if [ $rc -eq 137 ] && [ "$dst" -gt "$rec" ]; then
		ok "4: killed between APPEND and ledger write: $((dst - rec)) messages on the destination not in the ledger"
	else
		not_ok "4: killed between APPEND and ledger write (exit $rc, want 137; destination $dst, ledger $rec)"
	fi
	sleep 4 # the lease of the killed engine
fi

# ---- 1. logins and folder creation -----------------------------------------------------------
a0=$(attempts)
# shellcheck disable=SC2086
fl_run_bg $ARGS --max-conns-per-host 64
pid=$FL_PID
t0=$SECONDS
while fl_alive "$pid" && [ "$(attempts)" -le "$a0" ] && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.02; done
fl_msleep "$(fl_rand 0 200)"
killit "$pid"
n=$(fl_copied)
folders=$(fl_num "select count(*) from folder")
if [ "$n" -eq 0 ]; then ok "1: killed during logins or folder creation ($folders folders known, no message recorded)"
else ok "1: killed early ($n messages already recorded, $folders folders)"; fi

# ---- 2. the dead engine's connection slots ----------------------------------------------------
# (the slots the process of step 1 may hold are removed by hand first: this step kills its own)
# The process dies holding its slots mid-copy, at a point it always reaches with something left to
# copy: IMAPFLEET_FAILPOINT=after-append, after its first window's APPENDs and before the ledger
# records them (that window is then left for the restarted process to match).
fl_sql "delete from conn_slot" >/dev/null
# shellcheck disable=SC2086
(export IMAPFLEET_FAILPOINT=after-append; fl_run $ARGS --max-conns-per-host 2)
rc=$?
slots=$(fl_num "select count(*) from conn_slot")
[ $rc -eq 137 ] || diag "2: the first process ended with exit $rc, not at the failpoint (137)"
before=$(fl_appended)
# shellcheck disable=SC2086
fl_run_bg $ARGS --max-conns-per-host 2
pid=$FL_PID
t0=$SECONDS
while fl_alive "$pid" && [ "$(fl_appended)" -le "$before" ] && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.1; done
waited=$((SECONDS - t0))
if [ "$(fl_appended)" -gt "$before" ] && [ $waited -le 13 ]; then
	ok "2: after kill -9 the restarted process copies again within $waited s (lease 3 s)"
else
	not_ok "2: after kill -9 the restarted process copies again within the lease + 10 s (nothing after $waited s)"
	diag "$slots connection slots were held when the process died: a dead engine's slots are kept until its"
	diag "registration expires (ENGINE_TTL_MS, 90 s), whatever --lease says"
fi
killit "$pid"
# The slots of the dead engines are removed by hand so that the rest of the test is not blocked.
fl_sql "delete from conn_slot" >/dev/null

# ---- the same command finishes the run --------------------------------------------------------
# shellcheck disable=SC2086
fl_run_ok "the same command finishes the run" $ARGS --max-conns-per-host 64
fl_db_checks "$total"

# ---- 5. a window left open after the ledger write ----------------------------------------------
# As if the process had died after the last ledger flush of INBOX and before the window close.
fid=$(fl_sql "select f.id from folder f join job j on j.id = f.job_id where j.user1 = 'user18' and f.src_name = 'INBOX'")
fl_sql "update folder set window_dst_uidnext = greatest(dst_uidnext, 1), window_first_uid = highest_uid_copied,
	window_last_uid = highest_uid_copied, window_started_at = now() where id = $fid" >/dev/null
# shellcheck disable=SC2086
fl_run $ARGS --max-conns-per-host 64
rc=$?
if [ $rc -eq 0 ]; then ok "5: the next pass runs (exit 0)"; else not_ok "5: the next pass runs (exit $rc)"; fi
n=$(fl_sql "select count(*) from folder where window_dst_uidnext is not null")
if [ "$n" = 0 ]; then ok "5: the next pass closes a window whose messages are all in the ledger"
else not_ok "5: the next pass closes a window whose messages are all in the ledger ($n still open)"
	diag "engine/engine.c migrate_folder: an open window is closed only when there is something left to copy"
fi
fl_mailcmp_all
n=$(fl_sql "select count(*) from message where state = 'copied'")
if [ "$n" = "$total" ]; then ok "5: ledger still has $n copied rows"; else not_ok "5: ledger has $n copied rows, expected $total"; fi
