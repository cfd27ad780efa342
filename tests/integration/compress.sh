#!/bin/sh
# COMPRESS=DEFLATE (RFC 4978, io/deflate.h) against the lab's Dovecots, which offer it with the
# imap_zlib plugin (scripts/lab.sh): with --compress on both connections are compressed (the trace
# says so for each side) and every message of the copy is compared; --compress off sends no
# COMPRESS command.
# Accounts: src user01 (read only); dst xcompress (added here).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 5
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"${top_srcdir:-.}/scripts/lab.sh" add-account xcompress >/dev/null 2>&1 || diag "add-account xcompress failed"
wipe() { python3 "${top_srcdir:-.}/scripts/lab/seed.py" --wipe dst xcompress >/dev/null 2>&1 || diag "could not wipe dst xcompress"; }
csync() {
	"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user01 --passfile1 "$LAB_SECRETS/src/user01" \
		--cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" --user2 xcompress \
		--passfile2 "$LAB_SECRETS/dst/xcompress" --cafile2 "$LAB_CA" --no-state --trace "$@"
}
wipe
csync --compress on >"$out" 2>&1
rc=$?
n=$(grep -c "COMPRESS=DEFLATE on" "$out")
[ "$rc" = 0 ] && [ "$n" = 2 ] && ok "--compress on: both sides compressed (src and dst say COMPRESS=DEFLATE on), exit 0" ||
	{ not_ok "--compress on: both sides compressed, exit 0 (exit $rc, $n sides; a lab started before imap_zlib was added needs scripts/lab.sh down and up)"; grep -E "COMPRESS|ERROR" "$out" | head -n 10 | sed 's/^/# /'; }
grep -q "messages: .* 0 failed" "$out" && ok "... no message failed" || { not_ok "... no message failed"; grep "messages:" "$out" | sed 's/^/# /'; }
check "... and every message, flag and date of the copy is equal to the source" same_mail "$LAB_SRC_IMAPS" user01 xcompress
wipe
csync --compress off >"$out" 2>&1
grep -q "C: [^ ]* COMPRESS DEFLATE" "$out" && not_ok "--compress off sends no COMPRESS command" || ok "--compress off sends no COMPRESS command"
check "... and that copy is equal too" same_mail "$LAB_SRC_IMAPS" user01 xcompress
exit 0
