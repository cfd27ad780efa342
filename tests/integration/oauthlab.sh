# tests/integration/oauthlab.sh: the OAuth part of the lab, for tests that source it after tap.sh.
#
# oauth_lab_up DIR [LIFETIME] [USER...]: makes the test credentials in DIR and starts
# tests/tools/tokenservice.py on LAB_TOKEN_PORT (the port the lab's dst Dovecot introspects tokens
# at), tokens living LIFETIME seconds (default 3600). USERs are the mailboxes the credentials may
# reach. Made in DIR:
#   sa.json sa.key sa.pub       Google service account svc@lab.iam (domain-wide delegation to USERs)
#   app.pem app.crt             Microsoft 365 application "app1" of tenant "contoso": certificate + key
#   app.secret                  its client secret
#   ts.log                      one line per request the service answered
# Sets OAUTH_GOOGLE_URL, OAUTH_MS_URL (contoso's token endpoint), OAUTH_DIR, OAUTH_PID.
# oauth_lab_down: stops the service. oauth_stats: prints the service's /stats JSON.
# bg_wait_ready PID FILE TRIES NAME: waits (TRIES x 0.1 s at most) for the background server PID to
# write a line starting with "ready" into FILE, its output; a diagnostic with that output and 1 when
# it does not (or exits first).
bg_wait_ready() {
	_i=0
	while [ "$_i" -lt "$3" ]; do
		grep -q '^ready' "$2" 2>/dev/null && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
		_i=$((_i + 1))
	done
	diag "$4 did not start:"
	sed 's/^/# /' "$2"
	return 1
}

# bg_stop PID: stops a background server this test started (nothing when PID is empty).
bg_stop() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

oauth_lab_up() {
	OAUTH_DIR=$1
	_life=${2:-3600}
	shift 2 || shift $#
	[ -n "${LAB_TOKEN_PORT:-}" ] || { diag "the lab has no LAB_TOKEN_PORT (restart it: scripts/lab.sh down; up)"; return 1; }
	(
		cd "$OAUTH_DIR" || exit 1
		umask 077
		openssl genrsa -out sa.key 2048 2>/dev/null &&
			openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout app.key -out app.crt -subj /CN=imapfleet-test-app \
				-days 30 2>/dev/null &&
			cat app.crt app.key >app.pem && rm -f app.key &&
			head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^/Sec~/' >app.secret
	) || return 1
	OAUTH_GOOGLE_URL="https://localhost:$LAB_TOKEN_PORT/token"
	OAUTH_MS_URL="https://localhost:$LAB_TOKEN_PORT/contoso/oauth2/v2.0/token"
	python3 - "$OAUTH_DIR" "$OAUTH_GOOGLE_URL" "$@" <<'PY' || return 1
import json, os, sys
d, url, users = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(os.path.join(d, "sa.json"), "w") as f:
    json.dump({"type": "service_account", "client_email": "svc@lab.iam", "client_id": "1234567890",
               "private_key": open(os.path.join(d, "sa.key")).read(), "token_uri": url}, f)
with open(os.path.join(d, "config.json"), "w") as f:
    json.dump({"service_accounts": {"svc@lab.iam": {"public_key": os.path.join(d, "sa.pub"), "users": users}},
               "tenants": {"contoso": {"clients": {"app1": {"secret": open(os.path.join(d, "app.secret")).read(),
                                                            "cert": os.path.join(d, "app.crt")}},
                                       "mailboxes": users}},
               "user_clients": {}}, f)
PY
	python3 "${top_srcdir:-.}/tests/tools/tokenservice.py" --config "$OAUTH_DIR/config.json" --port "$LAB_TOKEN_PORT" \
		--cert "$LAB_DIR/tls/server.pem" --key "$LAB_DIR/tls/server.key" --lifetime "$_life" \
		--log "$OAUTH_DIR/ts.log" >"$OAUTH_DIR/ts.out" 2>&1 &
	OAUTH_PID=$!
	bg_wait_ready "$OAUTH_PID" "$OAUTH_DIR/ts.out" 300 "the token service"
}

oauth_lab_down() {
	bg_stop "${OAUTH_PID:-}"
	OAUTH_PID=
}

oauth_stats() {
	python3 - "$LAB_TOKEN_PORT" "$LAB_CA" <<'PY'
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
print(urllib.request.urlopen("https://localhost:%s/stats" % sys.argv[1], context=ctx, timeout=10).read().decode())
PY
}

# gettoken_cmd USER: the tokencmd that prints a fresh token of USER (JWT bearer grant, as a helper
# script an administrator would use).
gettoken_cmd() {
	printf 'python3 %s/tests/tools/gettoken.py --url %s --key %s/sa.key --iss svc@lab.iam --user %s --cafile %s' \
		"${top_srcdir:-.}" "$OAUTH_GOOGLE_URL" "$OAUTH_DIR" "$1" "$LAB_CA"
}

# oauth_refuse N: the next N logins' introspections answer "inactive", as for a token that expired
# between its fetch and the login.
oauth_refuse() {
	python3 - "$LAB_TOKEN_PORT" "$LAB_CA" "$1" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
urllib.request.urlopen(urllib.request.Request("https://localhost:%s/admin/refuse" % sys.argv[1],
                       data=("count=%s" % sys.argv[3]).encode()), context=ctx, timeout=10).read()
PY
}

# oauth_seed USER...: puts a small mailbox (INBOX and Archive/2025) on the lab's src for each USER
# that has none yet.
oauth_seed() {
	python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS" "$LAB_CA" "$@" <<'PY'
import imaplib, ssl, sys, time
port, secrets, ca, users = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ctx = ssl.create_default_context(cafile=ca)
for u in users:
    m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)
    m.login(u, open("%s/src/%s" % (secrets, u)).read().strip())
    typ, d = m.select("INBOX")
    if int(d[0]) == 0:
        m.create("Archive/2025")
        for i in range(9):
            box = "INBOX" if i < 6 else "Archive/2025"
            body = ("From: sender%d@example.org\r\nTo: %s@example.org\r\nSubject: oauth %s %d\r\n"
                    "Date: Mon, 2 Nov 2026 10:%02d:00 +0000\r\n%s\r\nbody %d of %s\r\n" %
                    (i, u, u, i, i, "" if i == 4 else "Message-ID: <oauth-%s-%d@example.org>\r\n" % (u, i),
                     i, u)).encode()
            m.append(box, "(\\Seen)" if i % 2 else "()", imaplib.Time2Internaldate(time.time() - 3600 * i), body)
    m.logout()
PY
}

# oauth_users N: the oa01..oaNN accounts (created on the lab when missing) with a small mailbox on
# src each; sets users.
oauth_users() {
	users=$(seq -f 'oa%02g' 1 "$1")
	for _u in $users; do
		[ -s "$LAB_SECRETS/dst/$_u" ] || "${top_srcdir:-.}/scripts/lab.sh" add-account "$_u" >/dev/null 2>&1
	done
	# shellcheck disable=SC2086
	oauth_seed $users
}

# all_same: mailcmp of every account in $users (their src against their dst); the differences of
# each one that differs as TAP comments; fails with the number that differ. Uses $work.
all_same() {
	_bad=0
	for _u in $users; do
		same_mail "$LAB_SRC_IMAPS" "$_u" "$_u" >"$work/cmp.$_u" 2>&1 ||
			{ _bad=$((_bad + 1)); tail -n 8 "$work/cmp.$_u" | sed 's/^/# /'; }
	done
	return $_bad
}

# issued WHO: tokens the service issued for WHO (a user, or app:TENANT/CLIENT).
issued() {
	oauth_stats | python3 -c "import json,sys; print(json.load(sys.stdin)['issued'].get(sys.argv[1], 0))" "$1"
}

# token_rows_csv FILE: an accounts file for $users whose destinations log in with per-row tokens:
# odd rows auth2 xoauth2 with a tokencmd2 (the helper appends its user to $work/calls), even rows
# auth2 oauthbearer with a tokenfile2 ($work/USER.token, a token for 600 s: an outside process
# would keep it fresh).
token_rows_csv() {
	echo "host1,port1,user1,passfile1,host2,port2,user2,auth2,tokencmd2,tokenfile2" >"$1"
	_n=0
	for _u in $users; do
		_n=$((_n + 1))
		if [ $((_n % 2)) = 1 ]; then
			echo "localhost,$LAB_SRC_IMAPS,$_u,$LAB_SECRETS/src/$_u,localhost,$LAB_DST_IMAPS,$_u,xoauth2,\"$(gettoken_cmd "$_u") --count $work/calls\"," >>"$1"
		else
			sh -c "$(gettoken_cmd "$_u") --lifetime 600" >"$work/$_u.token" || diag "no token for $_u"
			echo "localhost,$LAB_SRC_IMAPS,$_u,$LAB_SECRETS/src/$_u,localhost,$LAB_DST_IMAPS,$_u,oauthbearer,,$work/$_u.token" >>"$1"
		fi
	done
}

# tenant_csv FILE [PORT2 [USER...]]: an accounts file for USERs (default $users) with no secret
# column on side 2 (tenant credentials); side 2 on PORT2 (default the dst Dovecot's IMAPS port).
tenant_csv() {
	_f=$1 _p2=${2:-$LAB_DST_IMAPS}
	if [ $# -ge 2 ]; then shift 2; else shift $#; fi
	echo "host1,port1,user1,passfile1,host2,port2,user2" >"$_f"
	for _u in ${*:-$users}; do echo "localhost,$LAB_SRC_IMAPS,$_u,$LAB_SECRETS/src/$_u,localhost,$_p2,$_u" >>"$_f"; done
}

# exofront_up: starts tests/tools/exofront.py (Exchange Online's app-only check in front of the
# lab's dst Dovecot; the token service must be up); sets EXO_PORT and EXO_PID, logins go to
# $OAUTH_DIR/exo.log. exofront_down stops it.
exofront_up() {
	python3 "${top_srcdir:-.}/tests/tools/exofront.py" --cert "$LAB_DIR/tls/server.pem" --key "$LAB_DIR/tls/server.key" \
		--backend-port "$LAB_DST_IMAPS" --backend-ca "$LAB_CA" --secrets "$LAB_SECRETS/dst" \
		--introspect "https://localhost:$LAB_TOKEN_PORT/introspect" --log "$OAUTH_DIR/exo.log" \
		>"$OAUTH_DIR/exo.out" 2>&1 &
	EXO_PID=$!
	bg_wait_ready "$EXO_PID" "$OAUTH_DIR/exo.out" 100 "the Exchange front" || return 1
	EXO_PORT=$(sed -n 's/^ready //p' "$OAUTH_DIR/exo.out")
}

exofront_down() {
	bg_stop "${EXO_PID:-}"
	EXO_PID=
}
