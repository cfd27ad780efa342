#!/bin/sh
# preflight with OAuth 2.0 sides: it obtains every account's token before anything is copied and
# says which would fail and why (the tests' token service; the dst Dovecot checks user tokens, the
# Exchange front application tokens):
#  1. Google service account: the delegated users GO (token obtained, login ok), a user outside the
#     delegation NO-GO with the token endpoint's reason, no login tried for it;
#  2. Microsoft 365 with a wrong client secret: every account NO-GO naming the tenant, one request
#     to the token endpoint for all of them;
#  3. Microsoft 365 app-only with the certificate through the Exchange front: a granted mailbox GO,
#     one not granted NO-GO "destination login refused", one application token for all;
#  4. a tokencmd2 that fails: NO-GO naming tokencmd2 and how it ended, never its output;
#  and preflight wrote nothing to any mailbox, no token or secret in its output.
# Accounts: oa01..oa04 (created by oauth_bulk.sh or here), user01 (not delegated, not granted).
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/integration/oauthlab.sh"
lab_require
plan 9
work=$(mktemp -d "${TMPDIR:-/tmp}/oauth-preflight.XXXXXX")
trap 'exofront_down; oauth_lab_down; [ -n "$KEEP" ] || rm -rf "$work"' EXIT INT TERM
oauth_users 4 || { echo "Bail out! could not seed the oa accounts"; exit 1; }
# shellcheck disable=SC2086
oauth_lab_up "$work" 60 $users || { echo "Bail out! the token service did not start"; exit 1; }
exofront_up || { echo "Bail out! the Exchange front did not start"; exit 1; }

# dst_state: MESSAGES and UIDNEXT of every dst INBOX concerned (any copy would change them)
dst_state() {
	python3 - "$LAB_DST_IMAPS" "$LAB_SECRETS" "$LAB_CA" $users user01 <<'PY'
import imaplib, ssl, sys
port, secrets, ca, users = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for u in users:
    m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ssl.create_default_context(cafile=ca))
    m.login(u, open("%s/dst/%s" % (secrets, u)).read().strip())
    print(u, m.status("INBOX", "(MESSAGES UIDNEXT)")[1][0].decode())
    m.logout()
PY
}
dst_state >"$work/before"
preflight() { # preflight NAME CSV [OPTION...]: stdout in NAME.out, exit status in rc
	_n=$1 _csv=$2
	shift 2
	"$IMAPFLEET" preflight "$_csv" --out "$work/$_n.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" "$@" \
		>"$work/$_n.out" 2>"$work/$_n.err"
	rc=$?
}

# 1. Google service account
tenant_csv "$work/g.csv" "$LAB_DST_IMAPS" $users user01
preflight google "$work/g.csv" --oauth2 google --service-account2 "$work/sa.json"
ngo=$(grep -c '^GO ' "$work/google.out")
[ $rc = 7 ] && [ "$ngo" = 4 ] && ok "google: the 4 delegated users GO, exit 7 for the one that is not" ||
	{ not_ok "google: 4 GO and exit 7 (exit $rc, $ngo GO)"; sed 's/^/# /' "$work/google.out" | head -n 12; }
grep -Eq '^NO-GO user01@.*: destination token \(--oauth2\): no token for user user01 .*Invalid email or User ID' "$work/google.out" &&
	ok "google: the user outside the delegation is NO-GO with the endpoint's reason" ||
	{ not_ok "google: user01 NO-GO with the endpoint's reason"; grep user01 "$work/google.out" | sed 's/^/# /'; }

# 2. Microsoft 365, wrong client secret
printf 'Sec~wrong-%s' "$$" >"$work/wrong.secret"
tenant_csv "$work/m.csv" "$EXO_PORT" $users user01
nref=$(grep -c 'contoso/oauth2/v2.0/token HTTP/1.1" 401' "$work/ts.log")
preflight wrong "$work/m.csv" --oauth2 ms365 --tenant2 contoso --client-id2 app1 --client-secret-file2 "$work/wrong.secret" \
	--token-url2 "$OAUTH_MS_URL"
nref2=$(grep -c 'contoso/oauth2/v2.0/token HTTP/1.1" 401' "$work/ts.log")
nno=$(grep -Ec '^NO-GO .*: destination token \(--oauth2\): the token endpoint refused application app1 of tenant contoso: invalid_client' "$work/wrong.out")
[ $rc = 7 ] && [ "$nno" = 5 ] && ok "wrong client secret: all 5 accounts NO-GO naming the tenant and the refusal" ||
	{ not_ok "wrong client secret: 5 NO-GO naming the tenant (exit $rc, $nno)"; sed 's/^/# /' "$work/wrong.out" | head -n 8; }
[ $((nref2 - nref)) = 1 ] && ok "wrong client secret: one request to the token endpoint for all of them" ||
	not_ok "wrong client secret: one request to the token endpoint ($((nref2 - nref)))"

# 3. Microsoft 365 app-only through the Exchange front
b=$(issued app:contoso/app1)
preflight ms "$work/m.csv" --oauth2 ms365 --tenant2 contoso --client-id2 app1 --client-cert2 "$work/app.pem" \
	--token-url2 "$OAUTH_MS_URL"
a=$(issued app:contoso/app1)
ngo=$(grep -c '^GO ' "$work/ms.out")
[ $rc = 7 ] && [ "$ngo" = 4 ] && [ $((a - b)) = 1 ] &&
	ok "ms365 app-only: the 4 granted mailboxes GO with one application token" ||
	{ not_ok "ms365 app-only: 4 GO, one token (exit $rc, $ngo GO, $((a - b)) tokens)"; sed 's/^/# /' "$work/ms.out" | head -n 8; }
grep -Eq "^NO-GO user01@.*: destination login refused: .*AUTHENTICATE failed" "$work/ms.out" &&
	ok "ms365 app-only: the mailbox not granted is NO-GO, destination login refused" ||
	{ not_ok "ms365: user01 NO-GO, login refused"; grep user01 "$work/ms.out" | sed 's/^/# /'; }

# 4. a failing tokencmd2
cat >"$work/badcmd.sh" <<'EOF'
#!/bin/sh
echo "ya29.this-output-must-never-be-shown"
exit 3
EOF
chmod 700 "$work/badcmd.sh"
{
	echo "host1,port1,user1,passfile1,host2,port2,user2,auth2,tokencmd2"
	echo "localhost,$LAB_SRC_IMAPS,oa01,$LAB_SECRETS/src/oa01,localhost,$LAB_DST_IMAPS,oa01,xoauth2,$work/badcmd.sh"
	echo "localhost,$LAB_SRC_IMAPS,oa02,$LAB_SECRETS/src/oa02,localhost,$LAB_DST_IMAPS,oa02,xoauth2,\"$(gettoken_cmd oa02)\""
} >"$work/cmd.csv"
preflight cmd "$work/cmd.csv"
[ $rc = 7 ] && grep -Eq '^NO-GO oa01@.*: destination token \(tokencmd2\): .*(exit|status).*3' "$work/cmd.out" &&
	grep -q '^GO  *oa02@' "$work/cmd.out" &&
	ok "a failing tokencmd2: NO-GO naming tokencmd2 and its exit status; a working one GO" ||
	{ not_ok "a failing tokencmd2 is NO-GO naming it (exit $rc)"; sed 's/^/# /' "$work/cmd.out" | head -n 6; }

dst_state >"$work/after"
cmp -s "$work/before" "$work/after" && [ -s "$work/before" ] && ok "preflight wrote nothing to any destination" ||
	{ not_ok "preflight wrote nothing to any destination"; diff "$work/before" "$work/after" | sed 's/^/# /'; }
cat "$work"/*.out "$work"/*.err "$work"/*.csv >"$work/all.out" 2>/dev/null
leaked=""
for f in "$work/app.secret" "$work/wrong.secret"; do grep -qF -- "$(cat "$f")" "$work/all.out" && leaked="$leaked $f"; done
grep -Eq 'ya29\.|ms-[A-Za-z0-9_-]{20}|PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}\.' "$work/all.out" && leaked="$leaked token-or-key"
[ -z "$leaked" ] && ok "no token, key or secret in preflight's output or CSV" || not_ok "no secret in preflight's output:$leaked"
exit 0
