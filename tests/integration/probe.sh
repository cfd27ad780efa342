#!/bin/sh
# imapfleet probe against the lab: TLS and certificate result, capabilities, login result, exit codes
# (0 ok, 5 connection/TLS, 6 login refused), and never a password in the output.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 16

tmp=$(mktemp -d "${TMPDIR:-/tmp}/probe-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
all="$tmp/all-output" # every byte any probe printed, for the password check
: >"$all"
src_pw="$LAB_SECRETS/src/user35"
printf 'Lp-not-the-password-%s' "$$" >"$tmp/wrong"
chmod 600 "$tmp/wrong"

# probe ARGS...: runs imapfleet probe, output in $out, exit status in $rc.
probe() { capture "$IMAPFLEET" probe "$@"; }

probe --host localhost --port "$LAB_SRC_IMAPS" --cafile "$LAB_CA" --user user35 --passfile "$src_pw"
expect "implicit TLS with the lab CA: verified, logged in, exit 0" 0 \
	'^tls: +TLSv1\.[23], cipher ' '^verification: +ok' '^login: +ok as user35' \
	'^probe: OK: TLSv1\.[23], certificate verified, login ok$'
expect "implicit TLS shows greeting, certificate subject, issuer, expiry and names" 0 \
	'^greeting: .*ready' 'subject CN=localhost' 'issuer +CN=imapfleet lab CA' 'expires 20[0-9][0-9]-' \
	'names +DNS:localhost'
expect "capabilities are shown before and after login" 0 \
	'^capabilities before login: IMAP4rev1' '^capabilities after login: +IMAP4rev1.* UIDPLUS'

probe --host localhost --port "$LAB_SRC_IMAP" --tls --cafile "$LAB_CA" --user user35 --passfile "$src_pw"
expect "STARTTLS to the plain port: verified, logged in, exit 0" 0 'STARTTLS \(--tls\)' \
	'^probe: OK: TLSv1\.[23], certificate verified, login ok$'

probe --host "$LAB_HOST_NONLOCAL" --port "$LAB_SRC_IMAP" --tls --cafile "$LAB_CA" --user user35 --passfile "$src_pw"
expect "STARTTLS where the server refuses cleartext login (127.0.0.2): ok" 0 '^probe: OK: '

probe --host localhost --port "$LAB_SRC_IMAPS" --user user35 --passfile "$src_pw"
expect "without --cafile: exit 5, names the unknown CA and the fix, still shows the certificate" 5 \
	'^probe: FAILED: certificate verify failed' 'unable to get local issuer certificate|self-signed' \
	'--cafile' 'issuer +CN=imapfleet lab CA'

# A name that reaches the lab but is not in its certificate (localhost, 127.0.0.1, ::1, 127.0.0.2).
other=
for n in "$(hostname 2>/dev/null)" localhost.localdomain ip6-localhost; do
	[ -n "$n" ] && [ "$n" != localhost ] || continue
	addr=$(getent hosts "$n" 2>/dev/null | awk '{print $1; exit}')
	case "$addr" in 127.0.0.1 | 127.0.0.2 | ::1) other=$n; break ;; esac
done
if [ -n "$other" ]; then
	probe --host "$other" --port "$LAB_SRC_IMAPS" --cafile "$LAB_CA" --user user35 --passfile "$src_pw"
	expect "host name not in the certificate ($other): exit 5, host name mismatch" 5 \
		'^probe: FAILED: certificate verify failed' 'host name mismatch'
else
	ok "host name mismatch # SKIP no other name of this machine resolves to the lab's addresses"
fi

probe --host localhost --port "$LAB_SRC_IMAPS" --insecure --user user35 --passfile "$src_pw"
expect "--insecure: logs in, warns, and says what verification would have said" 0 \
	'warning: certificate verification is off' 'skipped \(--insecure\); it would fail' \
	'^probe: OK: TLSv1\.[23], certificate NOT verified'

probe --host localhost --port "$LAB_SRC_IMAPS" --insecure --cafile "$LAB_CA" --user user35 --passfile "$src_pw"
expect "--insecure with the right CA: says verification would pass" 0 'it would pass'

probe --host localhost --port "$LAB_SRC_IMAPS" --cafile "$LAB_CA" --user user35 --passfile "$tmp/wrong"
expect "wrong password: exit 6, the server's refusal shown" 6 '^probe: FAILED: login refused: .*AUTHENTICATIONFAILED'

probe --host "$LAB_HOST_NONLOCAL" --port "$LAB_SRC_IMAP" --plain --user user35 --passfile "$src_pw"
expect "--plain where the server disables cleartext login: exit 6, LOGINDISABLED" 6 'LOGINDISABLED'

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
probe --host 127.0.0.1 --port "$port" --cafile "$LAB_CA" --user user35 --passfile "$src_pw"
expect "closed port: exit 5, connection refused" 5 '^probe: FAILED: could not connect to 127\.0\.0\.1:[0-9]+: connection refused'

probe --host localhost --port "$LAB_SRC_IMAP" --ssl --cafile "$LAB_CA"
expect "implicit TLS on a cleartext port: exit 5, says to use STARTTLS" 5 'did not answer in TLS'

probe --host localhost --port "$LAB_SRC_IMAPS" --cafile "$LAB_CA"
expect "without --user: connection and certificate only, exit 0" 0 '^capabilities: +IMAP4rev1' \
	'^probe: OK: TLSv1\.[23], certificate verified, no login tried'

probe --host localhost --port "$LAB_SRC_IMAPS" --cafile "$LAB_CA" --user user35 --passfile "$src_pw" --trace
expect "--trace shows the dialogue with the credentials redacted" 0 '<redacted>' 'C: [a-z0-9]+ LOGOUT'

leaked=
for f in "$src_pw" "$tmp/wrong"; do
	grep -qF -- "$(cat "$f")" "$all" && leaked="$leaked $f"
done
if [ -z "$leaked" ]; then ok "no password appears in any probe output"; else not_ok "password leaked:$leaked"; fi
