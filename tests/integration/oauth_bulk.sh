#!/bin/sh
# Bulk runs whose destination logins are OAuth 2.0 (the lab's dst Dovecot checks every token at the
# tests' token service, tokens living a few seconds):
#  1. an accounts file with auth2/tokencmd2/tokenfile2 columns: 20 accounts end exact (every
#     message compared); every tokencmd row ran its helper; tokenfile rows read their file;
#  2. the same 20 accounts with a Google service account (--oauth2 google, domain-wide delegation):
#     imapfleet fetches every user's token itself and the run ends exact; a second pass after the
#     tokens expired fetches a new token for every account (one refresh per account);
#  3. a token refused at login (expired between fetch and login) is fetched again once and the
#     login retried: the account completes;
#  4. Microsoft 365 app credentials with a wrong client secret: the run ends quickly, every
#     account failed as auth, one message naming the tenant, one request to the token endpoint.
# No token, key or secret appears in any output or log.
# Accounts: oa01..oa20 (created by this test).
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/integration/oauthlab.sh"
lab_require
plan 12
fresh_db oauthbulk
work=$(mktemp -d "${TMPDIR:-/tmp}/oauth-bulk.XXXXXX")
trap 'oauth_lab_down; drop_db; rm -rf "$work"' EXIT INT TERM
oauth_users 20 || { echo "Bail out! could not seed the oa accounts"; exit 1; }
# shellcheck disable=SC2086
oauth_lab_up "$work" 4 $users || { echo "Bail out! the token service did not start"; exit 1; }
# shellcheck disable=SC2086
wipe_dst $users

# 1. per-row tokens: odd rows tokencmd2 (a helper counting its calls), even rows tokenfile2
csv="$work/accounts.csv"
token_rows_csv "$csv"
"$IMAPFLEET" run "$csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress --workers 4 \
	>"$work/run1.out" 2>"$work/run1.err"
rc=$?
[ $rc = 0 ] && ok "run with tokencmd2/tokenfile2 rows exits 0" ||
	{ not_ok "run with tokencmd2/tokenfile2 rows exits 0 (got $rc)"; tail -n 20 "$work/run1.err" | sed 's/^/# /'; }
check "tokencmd/tokenfile rows: all 20 destinations equal their sources message by message" all_same
ncalls=$(sort -u "$work/calls" 2>/dev/null | wc -l)
[ "$ncalls" = 10 ] && ok "every tokencmd row ran its helper (10 users)" || not_ok "every tokencmd row ran its helper ($ncalls users)"

# 2. Google service account for every destination
# shellcheck disable=SC2086
wipe_dst $users
psql "$LAB_PG_SUPER_URL" -qc "drop database if exists ${_db}" -c "create database ${_db} owner imapfleet" >/dev/null 2>&1
tenant_csv "$work/tenant.csv"
google="--oauth2 google --service-account2 $work/sa.json"
# shellcheck disable=SC2086
"$IMAPFLEET" run "$work/tenant.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--workers 4 $google >"$work/run2.out" 2>"$work/run2.err"
rc=$?
[ $rc = 0 ] && ok "run with a Google service account (--oauth2 google) exits 0" ||
	{ not_ok "run with a Google service account exits 0 (got $rc)"; tail -n 20 "$work/run2.err" | sed 's/^/# /'; }
check "google: all 20 destinations equal their sources message by message" all_same
low=""
for u in $users; do [ "$(issued "$u")" -ge 1 ] || low="$low $u"; done
[ -z "$low" ] && ok "google: imapfleet obtained a token for every user" || not_ok "google: no token obtained for:$low"

sleep 5 # every token of the first pass has expired
python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS" "$LAB_CA" $users <<'PY'
import imaplib, ssl, sys, time
port, secrets, ca, users = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for u in users:
    m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ssl.create_default_context(cafile=ca))
    m.login(u, open("%s/src/%s" % (secrets, u)).read().strip())
    m.append("INBOX", "()", imaplib.Time2Internaldate(time.time()),
             ("From: late@example.org\r\nSubject: delta for %s\r\nMessage-ID: <delta-%s@example.org>\r\n\r\nnew\r\n" % (u, u)).encode())
    m.logout()
PY
before=$(for u in $users; do issued "$u"; done | tr '\n' ' ')
# shellcheck disable=SC2086
"$IMAPFLEET" run "$work/tenant.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--workers 4 $google >"$work/run3.out" 2>"$work/run3.err"
rc=$?
after=$(for u in $users; do issued "$u"; done | tr '\n' ' ')
refreshed=$(python3 -c "import sys; b=sys.argv[1].split(); a=sys.argv[2].split(); print(sum(int(y) > int(x) for x, y in zip(b, a)))" "$before" "$after")
[ $rc = 0 ] && [ "$refreshed" = 20 ] && ok "google delta pass after expiry: exit 0, a new token for each of the 20 accounts" ||
	{ not_ok "google delta pass refreshes every account's token (exit $rc, $refreshed of 20)"; tail -n 10 "$work/run3.err" | sed 's/^/# /'; }
check "google delta: all 20 destinations equal their sources (the new messages too, nothing twice)" all_same

# 3. a token refused at login is fetched again once
oauth_refuse 1
b=$(issued oa01)
# shellcheck disable=SC2086
sync_out=$("$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 oa01 --passfile1 "$LAB_SECRETS/src/oa01" \
	--cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" --user2 oa01 --cafile2 "$LAB_CA" --no-state \
	$google 2>&1)
rc=$?
a=$(issued oa01)
[ $rc = 0 ] && [ $((a - b)) = 2 ] && printf '%s' "$sync_out" | grep -q "getting a new token" &&
	ok "a token refused at login: one new token, one more login, the account completes" ||
	{ not_ok "a token refused at login is refreshed once (exit $rc, $((a - b)) tokens)"; printf '%s\n' "$sync_out" | tail -n 8 | sed 's/^/# /'; }

# 4. a wrong client secret stops every account of the tenant at once
printf 'Sec~wrong-%s' "$$" >"$work/wrong.secret"
psql "$LAB_PG_SUPER_URL" -qc "drop database if exists ${_db}" -c "create database ${_db} owner imapfleet" >/dev/null 2>&1
nref=$(grep -c 'contoso/oauth2/v2.0/token HTTP/1.1" 401' "$work/ts.log")
t0=$(date +%s)
"$IMAPFLEET" run "$work/tenant.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
	--workers 4 --oauth2 ms365 --tenant2 contoso --client-id2 app1 --client-secret-file2 "$work/wrong.secret" \
	--token-url2 "$OAUTH_MS_URL" >"$work/run4.out" 2>"$work/run4.err"
rc=$?
t1=$(date +%s)
nref2=$(grep -c 'contoso/oauth2/v2.0/token HTTP/1.1" 401' "$work/ts.log")
nmsg=$(grep -c "refused application app1 of tenant contoso" "$work/run4.err")
[ $rc = 1 ] && [ "$nmsg" = 1 ] && ok "wrong client secret: exit 1, exactly one message naming the tenant" ||
	{ not_ok "wrong client secret: exit 1 and one message (exit $rc, $nmsg messages)"; tail -n 10 "$work/run4.err" | sed 's/^/# /'; }
nfailed=$(psql "$STATE_URL" -Atc "select count(*) from job where state = 'failed' and last_error_class = 'auth'" 2>/dev/null)
[ $((nref2 - nref)) = 1 ] && [ "$nfailed" = 20 ] && [ $((t1 - t0)) -lt 60 ] &&
	ok "one request to the token endpoint, all 20 accounts failed as auth, in $((t1 - t0)) s" ||
	not_ok "no retry storm ($((nref2 - nref)) token requests, $nfailed accounts failed as auth, $((t1 - t0)) s)"

leaked=""
cat "$work"/run*.out "$work"/run*.err >"$work/all.out"
printf '%s\n' "$sync_out" >>"$work/all.out"
for f in "$work/app.secret" "$work/wrong.secret" "$work/oa02.token"; do
	grep -qF -- "$(cat "$f")" "$work/all.out" && leaked="$leaked $f"
done
grep -Eq 'ya29\.|ms-[A-Za-z0-9_-]{20}|PRIVATE KEY' "$work/all.out" && leaked="$leaked token-or-key"
[ -z "$leaked" ] && ok "no token, key or secret in any output" || not_ok "no token, key or secret in any output:$leaked"
exit 0
