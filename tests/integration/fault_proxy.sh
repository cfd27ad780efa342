#!/bin/sh
# fault_proxy: a bulk run of 4 accounts with a faultproxy between imapfleet and BOTH Dovecots.
# Half of the connections are cut with a TCP reset after a random number of server->client bytes
# (source: 20-400 KB, mid-FETCH literal; destination: 2-16 KB of responses, so mostly while
# APPEND literals are being sent), and some chunks stall. imapfleet retries (--max-attempts 30,
# backoff 200 ms .. 2 s; an attempt that copied messages before its cut is not counted) and must end exact: mailcmp straight against the lab servers, not
# through the proxies; the ledger must count every source message once.
# TLS still verifies: the accounts file says localhost, which the lab certificate covers.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

fl_init fault_proxy user20 user21 user22 user23
FL_SEED=${FL_SEED:-$(( ($$ ^ $(date +%s)) % 100000 ))}
plan 12
diag "seed $FL_SEED (FL_SEED=$FL_SEED repeats the proxies' fault pattern)"

fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
total=$(fl_src_total) || bail "cannot count the source messages"
[ "$total" -gt 0 ] || bail "the source accounts are empty (scripts/lab.sh seed)"
diag "$total source messages in $FL_USERS"

fl_faultproxy SRCP --target "127.0.0.1:$LAB_SRC_IMAPS" --seed "$FL_SEED" --drop-after 20000:400000 \
	--drop-prob 0.7 --reset --stall-ms 200 --stall-prob 0.01 --count-file "$FL_WORK/src.counts"
# The destination answers little: about 5 KB to set up (TLS handshake, capabilities, CREATEs)
# and 18 KB in all for one of these accounts, so its cut points span 2-16 KB: some in the
# handshake, most while windows are being appended.
fl_faultproxy DSTP --target "127.0.0.1:$LAB_DST_IMAPS" --seed "$((FL_SEED + 1))" --drop-after 2000:16000 \
	--drop-prob 0.7 --reset --stall-ms 200 --stall-prob 0.02 --count-file "$FL_WORK/dst.counts"
fl_csv "$FL_WORK/accounts.csv" "$SRCP" "$DSTP"

t0=$SECONDS
FL_TIMEOUT=170 fl_run --workers 4 --lease 10000 --retry-base 200 --retry-cap 2000 --max-attempts 30
rc=$?
if [ $rc -eq 0 ]; then ok "the run ends with exit 0 through the faulty proxies ($((SECONDS - t0)) s)"
else not_ok "the run ends with exit 0 through the faulty proxies (exit $rc after $((SECONDS - t0)) s)"
	grep -E 'ERROR|failed' "$FL_WORK/run.out" | tail -n 15 | sed 's/^/# /'; fi
src_cut=$(sed -n 's/.*cut=\([0-9]*\).*/\1/p' "$FL_WORK/src.counts")
dst_cut=$(sed -n 's/.*cut=\([0-9]*\).*/\1/p' "$FL_WORK/dst.counts")
diag "source proxy: $(cat "$FL_WORK/src.counts"); destination proxy: $(cat "$FL_WORK/dst.counts")"
retries=$(grep -c 'attempt [0-9]* failed' "$FL_WORK/run.out")
diag "$retries attempts failed and were retried; $(fl_sql "select string_agg(user1 || '=' || attempts, ' ') from job")"
if [ "${src_cut:-0}" -gt 0 ] && [ "${dst_cut:-0}" -gt 0 ]; then ok "connections were cut on both sides (source $src_cut, destination $dst_cut)"
else not_ok "connections were cut on both sides (source ${src_cut:-?}, destination ${dst_cut:-?})"; fi
if [ "$retries" -gt 0 ]; then ok "imapfleet retried the accounts whose connections broke ($retries retries)"
else not_ok "imapfleet retried the accounts whose connections broke (no retry logged)"; fi
progressed=$(grep -c 'not counted against --max-attempts' "$FL_WORK/run.out")
diag "$progressed of the failed attempts had copied messages first (not counted against --max-attempts)"
fl_stop "$SRCP_PID"
fl_stop "$DSTP_PID"

fl_db_checks "$total"
fl_mailcmp_all
