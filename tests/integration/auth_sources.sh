#!/bin/sh
# Where a login's secret comes from (sync and probe): --passcmd runs a command without a shell and
# takes the first line of its output; a failing, silent or hanging command fails the login with a
# message naming the option and the exit status, never the command's output; only one secret source
# per side; --authmech XOAUTH2 without a token is a usage error.
# Accounts: user41 (created by this test on every side).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 10

top=${top_srcdir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/auth-sources.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
"$top/scripts/lab.sh" add-account user41 >/dev/null 2>&1 || true
all="$tmp/all-output"
: >"$all"

# run_sync ARGS...: imapfleet sync of user41 (src -> dst) with the given secret options.
run_sync() {
	capture "$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user41 --cafile1 "$LAB_CA" \
		--host2 localhost --port2 "$LAB_DST_IMAPS" --user2 user41 --cafile2 "$LAB_CA" --no-state "$@"
}

# Put a few messages on the source of user41.
python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/user41" "$LAB_CA" <<'PY'
import imaplib, ssl, sys, time
m = imaplib.IMAP4_SSL("localhost", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[3]))
m.login("user41", open(sys.argv[2]).read().strip())
typ, d = m.select("INBOX")
for i in range(int(d[0]), 5):
    body = ("From: a@example.org\r\nTo: user41@example.org\r\nSubject: auth source %d\r\n"
            "Message-ID: <auth-%d@example.org>\r\n\r\nbody %d\r\n" % (i, i, i)).encode()
    m.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(time.time() - 60 * i), body)
m.logout()
PY
wipe_dst user41 || diag "could not wipe user41"

# A helper that prints the password only when called with the right arguments (no shell: the
# arguments arrive exactly as written, quotes removed, nothing expanded).
cat >"$tmp/pw helper" <<EOF
#!/bin/sh
[ "\$1" = "--side" ] && [ "\$2" = "two words" ] && [ "\$3" = '\$HOME' ] || exit 9
cat "\$4"
echo
echo "a second line that is not the password"
EOF
chmod 700 "$tmp/pw helper"

run_sync --passcmd1 "cat $LAB_SECRETS/src/user41" \
	--passcmd2 "'$tmp/pw helper' --side \"two words\" '\$HOME' $LAB_SECRETS/dst/user41"
expect "sync with --passcmd1/--passcmd2 (arguments quoted, no shell): exit 0, complete" 0 'result: +complete'
check "user41: destination equals source message by message" same_mail "$LAB_SRC_IMAPS" user41 user41

run_sync --passcmd1 "cat $LAB_SECRETS/src/user41" --passcmd2 "sh -c 'echo oops-output-never-shown; exit 3'"
expect "a failing --passcmd2: exit 6, names the option and the status, not the output" 6 \
	'--passcmd.*exited with status 3'
printf '%s\n' "$out" | grep -q oops-output && not_ok "the command's output is never shown" ||
	ok "the command's output is never shown"

run_sync --passcmd1 "cat $LAB_SECRETS/src/user41" --passcmd2 "true"
expect "a --passcmd2 that prints nothing fails the login" 6 'printed nothing'

run_sync --passcmd1 "cat $LAB_SECRETS/src/user41" --passcmd2 "/nonexistent/helper"
expect "a --passcmd2 that does not exist says so" 6 'not found or not executable'

run_sync --passfile1 "$LAB_SECRETS/src/user41" --passcmd1 "cat x" --passfile2 "$LAB_SECRETS/dst/user41"
expect "two secret sources for one side: usage error" 2 'give one of'

run_sync --passfile1 "$LAB_SECRETS/src/user41" --passfile2 "$LAB_SECRETS/dst/user41" --authmech2 XOAUTH2
expect "--authmech2 XOAUTH2 with a password: usage error naming the token options" 2 'needs a token'

capture "$IMAPFLEET" probe --host localhost --port "$LAB_DST_IMAPS" --cafile "$LAB_CA" --user user41 \
	--passcmd "cat $LAB_SECRETS/dst/user41"
expect "probe --passcmd logs in" 0 '^login: +ok as user41'

leaked=0
for f in "$LAB_SECRETS/src/user41" "$LAB_SECRETS/dst/user41"; do
	grep -qF -- "$(cat "$f")" "$all" && leaked=1
done
[ "$leaked" = 0 ] && ok "no password appears in any output" || not_ok "no password appears in any output"
exit 0
