#!/bin/sh
# tls_resume: the connections of a run to one server resume TLS sessions from the pool kept per
# server (io/tls.c): 4 accounts with 4 connection pairs each (the source behind a 30 ms delay proxy),
# each connection's handshake counted from the debug log ("TLS with ...", "(session resumed,
# certificate verified)"), then every message compared.
# The lab's Dovecots run two login processes, each with its own ticket key, and a ticket resumes
# only at the process that issued it: about half of the connections can resume there, whatever the
# client does (measured: 13-15 of 32). The check asks for a quarter; the pool's gain over one shared
# session (single-use tickets) is tests/unit/test_stream's.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"

lab_require
for a in xresume1 xresume2 xresume3 xresume4; do
	"${top_srcdir:-.}/scripts/lab.sh" add-account $a >/dev/null 2>&1 || skip_all "cannot add the lab account $a"
done
fl_init tls_resume xresume1 xresume2 xresume3 xresume4
fl_plan 11

fl_fill_inbox 120
total=$(fl_src_total) || bail "cannot count the source messages"

fl_far_source 30
fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
fl_run --workers 2 --max-conns-per-host 16 --conns-per-account 4 --batch 20 --log-level debug
rc=$?
check_rc 0 "$rc" "the run ends with exit 0" "$FL_WORK/run.out"
logs() { cat "$FL_WORK"/.imapfleet/logs/*.log 2>/dev/null; }
full=$(logs | grep -c ': TLS with .*TLSv1')
res=$(logs | grep -c ': TLS with .*(session resumed, certificate verified)')
if [ "$full" -ge 24 ] && [ $((res * 4)) -ge "$full" ]; then
	ok "TLS sessions resumed on $res of $full connections (a quarter or more)"
else
	not_ok "TLS sessions resumed on a quarter or more of the connections ($res of $full; 24 or more connections expected)"
fi
fl_db_checks "$total"
fl_mailcmp_all
