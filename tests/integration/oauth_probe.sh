#!/bin/sh
# OAuth logins tested one at a time with probe, against the lab's dst Dovecot (passdb oauth2,
# tokens introspected at the tests' token service): a Google service account token for the user
# logs in; an unknown user is refused by the token endpoint and said so; a token endpoint whose
# certificate does not verify is an error naming --cafile; Microsoft 365 app credentials obtain a
# token with the client secret and with the certificate (client assertion), and a wrong secret is
# reported naming the tenant; --tokencmd and --tokenfile log in; no secret is ever printed.
# Accounts: user42 (created by this test).
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/integration/oauthlab.sh"
lab_require
plan 10

tmp=$(mktemp -d "${TMPDIR:-/tmp}/oauth-probe.XXXXXX")
trap 'oauth_lab_down; rm -rf "$tmp"' EXIT INT TERM
"${top_srcdir:-.}/scripts/lab.sh" add-account user42 >/dev/null 2>&1 || true
oauth_lab_up "$tmp" 3600 user42 || { echo "Bail out! the token service did not start"; exit 1; }
all="$tmp/all-output"
: >"$all"

probe() { capture "$IMAPFLEET" probe --host localhost --port "$LAB_DST_IMAPS" "$@"; }

probe --cafile "$LAB_CA" --user user42 --oauth google --service-account "$tmp/sa.json"
expect "google service account: the user's token logs in (XOAUTH2)" 0 '^login: +ok as user42' '^probe: OK'

probe --cafile "$LAB_CA" --user user42 --oauth google --service-account "$tmp/sa.json" --authmech OAUTHBEARER
expect "google service account with --authmech OAUTHBEARER logs in" 0 '^login: +ok as user42'

probe --cafile "$LAB_CA" --user nosuchuser --oauth google --service-account "$tmp/sa.json"
expect "an unknown user: refused by the token endpoint, named, exit 6" 6 \
	'no token for user nosuchuser .*Invalid email or User ID'

# Without the lab CA (the IMAP side trusts it through --cafile only) the endpoint cannot verify.
probe --user user42 --oauth google --service-account "$tmp/sa.json" --cafile "$LAB_DIR/tls/selfsigned.pem"
expect "a token endpoint whose certificate does not verify: error naming --cafile" 6 \
	'token endpoint .*certificate verification failed' '--cafile'

probe --cafile "$LAB_CA" --user user42 --oauth ms365 --tenant contoso --client-id app1 \
	--client-secret-file "$tmp/app.secret" --token-url "$OAUTH_MS_URL"
# Dovecot wants the user in the token; an application token names the application only, so
# Dovecot cannot accept it (app-only logins are tested against an Exchange-like front).
n_ms=$(grep -c 'POST /contoso/oauth2/v2.0/token HTTP/1.1" 200' "$tmp/ts.log")
[ "$n_ms" = 1 ] && ok "ms365 with a client secret obtains an application token" ||
	{ not_ok "ms365 with a client secret obtains an application token"; diag "$out"; }

probe --cafile "$LAB_CA" --user user42 --oauth ms365 --tenant contoso --client-id app1 \
	--client-cert "$tmp/app.pem" --token-url "$OAUTH_MS_URL"
n_ms=$(grep -c 'POST /contoso/oauth2/v2.0/token HTTP/1.1" 200' "$tmp/ts.log")
[ "$n_ms" = 2 ] && ok "ms365 with a certificate (signed client assertion) obtains an application token" ||
	{ not_ok "ms365 with a certificate (signed client assertion) obtains an application token"; diag "$out"; }

printf 'Sec~not-the-secret' >"$tmp/wrong.secret"
probe --cafile "$LAB_CA" --user user42 --oauth ms365 --tenant contoso --client-id app1 \
	--client-secret-file "$tmp/wrong.secret" --token-url "$OAUTH_MS_URL"
expect "ms365 with a wrong client secret: exit 6, names the application and tenant and the endpoint's reason" 6 \
	'refused application app1 of tenant contoso: invalid_client: AADSTS7000215'

probe --cafile "$LAB_CA" --user user42 --tokencmd "$(gettoken_cmd user42)"
expect "--tokencmd runs the token helper and logs in" 0 '^login: +ok as user42'

gettoken_cmd user42 >"$tmp/cmd"
sh -c "$(cat "$tmp/cmd")" >"$tmp/token" 2>/dev/null
probe --cafile "$LAB_CA" --user user42 --tokenfile "$tmp/token"
expect "--tokenfile logs in" 0 '^login: +ok as user42'

leaked=""
for f in "$tmp/app.secret" "$tmp/token"; do
	grep -qF -- "$(cat "$f")" "$all" && leaked="$leaked $f"
done
grep -q -- "PRIVATE KEY" "$all" && leaked="$leaked key"
grep -Eq 'ya29\.|ms-[A-Za-z0-9_-]{20}' "$all" && leaked="$leaked access-token"
[ -z "$leaked" ] && ok "no secret, key or token appears in any output" ||
	not_ok "no secret, key or token appears in any output ($leaked)"
exit 0
