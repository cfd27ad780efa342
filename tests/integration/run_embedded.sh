#!/bin/sh
# With no state configured, `imapfleet run` creates its own PostgreSQL cluster under
# ./.imapfleet/pg, uses it, and stops it when it exits; a second run in the same directory resumes
# from it. SIGINT stops a run cleanly (exit 4, accounts back in the queue) and the same command
# resumes it; the result is exact.
# Accounts: user10, user11.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_embedded_test
plan 9
unset IMAPFLEET_STATE PGHOST PGDATABASE
users="user10 user11"
wipe_dst $users
# The source sits behind the benchmark's delay proxy (60 ms round trip), so that the copy lasts
# seconds and the SIGINT below lands mid-copy however fast the machine is.
cc -O2 -pthread -o "$work/delayproxy" "${top_srcdir:-.}/scripts/bench/delayproxy.c" || { echo "Bail out! cannot build scripts/bench/delayproxy.c"; exit 1; }
"$work/delayproxy" --listen 127.0.0.1:0 --target "127.0.0.1:$LAB_SRC_IMAPS" --rtt-ms 60 \
	--port-file "$work/proxy.port" >/dev/null 2>"$work/proxy.err" &
pids="$pids $!"
for _ in $(seq 50); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
far_src=$(head -n 1 "$work/proxy.port")
[ -n "$far_src" ] || { echo "Bail out! the delay proxy did not start"; exit 1; }
# shellcheck disable=SC2086
LAB_SRC_IMAPS=$far_src lab_csv $users >"$work/accounts.csv"
cd "$work" || exit 1
run() { "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress --workers 1 "$@"; }

# 1. interrupted by SIGINT mid-copy
# Started directly (not through the shell function) so that the signal reaches imapfleet itself.
"$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress --workers 1 --batch 2 \
	>"$work/a.out" 2>"$work/a.err" &
pid=$!
for i in $(seq 1 300); do grep -q "attempt 1 of" "$work/a.err" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 4 ] && ok "SIGINT stops the run with exit code 4 (interrupted)" || { not_ok "SIGINT exit code 4 (got $rc)"; tail -n 15 "$work/a.err" | sed 's/^/# /'; }
grep -q "run the same command again to resume" "$work/a.out" && ok "it says how to resume" || not_ok "it says how to resume"
[ -d "$work/.imapfleet/pg" ] && ok "the embedded cluster lives in ./.imapfleet/pg" || not_ok "the embedded cluster lives in ./.imapfleet/pg"
sleep 1
if pgrep -f "$work/.imapfleet/pg" >/dev/null; then not_ok "the embedded PostgreSQL stopped with the last imapfleet process"; else ok "the embedded PostgreSQL stopped with the last imapfleet process"; fi

# 2. the same command resumes and finishes
run >"$work/b.out" 2>"$work/b.err"
rc=$?
[ $rc -eq 0 ] && ok "the same command resumes and finishes (exit 0)" || { not_ok "resume exit 0 (got $rc)"; tail -n 15 "$work/b.err" | sed 's/^/# /'; }
grep -q "^run 1:" "$work/b.out" && ok "it resumed run 1 from the embedded state" || { not_ok "it resumed run 1"; cat "$work/b.out" | sed 's/^/# /'; }
bad=0
for u in $users; do same_mail "$LAB_SRC_IMAPS" $u $u >"$work/cmp" 2>&1 || { bad=$((bad + 1)); tail -n 10 "$work/cmp" | sed 's/^/# /'; }; done
[ $bad -eq 0 ] && ok "both accounts are exact after the interruption: nothing missing, nothing twice" || not_ok "$bad accounts differ"

# 3. a third run is the delta pass: nothing to copy
run >"$work/c.out" 2>"$work/c.err"
grep -q "copied 0 messages" "$work/c.out" && ok "a third run copies nothing" || { not_ok "a third run copies nothing"; cat "$work/c.out" | sed 's/^/# /'; }
if pgrep -f "$work/.imapfleet/pg" >/dev/null; then not_ok "and the embedded PostgreSQL is stopped again"; else ok "and the embedded PostgreSQL is stopped again"; fi
