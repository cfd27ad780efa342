#!/bin/sh
# secrets_audit: no lab password (every file under $LAB_SECRETS) may appear anywhere imapfleet or
# the test suite leaves traces. Runs LAST in `make check` (listed last in tests/Makefile.inc).
#   - a short run with passfiles and one with password1/password2 columns in the CSV, plus a
#     `sync` with --passfile1/2, while `ps -eo args` is sampled every 50 ms (the state URL, which
#     holds the PostgreSQL password, is given through IMAPFLEET_STATE, not argv); their stdout
#     and stderr, per-account logs and `imapfleet report` output;
#   - an unreachable state URL that carries the real PostgreSQL password: the error must not echo it;
#   - every *.log and *.trs under the build tree (all earlier tests' output);
#   - every .imapfleet/ directory (logs, reports) under the source tree, the build tree and
#     /tmp/imapfleet-* work directories that tests kept;
#   - a pg_dump of every database of the lab PostgreSQL;
#   - core files in the build tree, the source tree and /tmp.
# OAuth 2.0 (issue 16): runs with Microsoft 365 app-only credentials (a client secret, then a
# certificate, through the Exchange-style front), a Google service account (trace level: the
# AUTHENTICATE lines) and tokencmd/tokenfile rows, inside the same ps sampling. Every token the
# test's token service issued (also hex-encoded, as a bytea would be dumped), the client secret and
# the lines of both private keys join the passwords looked for everywhere below; and anything
# shaped like a signed JWT (a client assertion) or a token of the test services' formats is
# looked for too.
# A hit fails the test and prints where (file and line numbers), never the password.
# Out of scope by design: `sync --password1 X` (the user chose argv), the lab's own inputs
# ($LAB_DIR: the secrets themselves, file.txt with inline passwords).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/tools/faultlib.sh"
. "${top_srcdir:-.}/tests/integration/oauthlab.sh"

fl_init secrets_audit user13 user14 user15
plan 13
src=$(cd "${top_srcdir:-.}" && pwd)
bld=$(cd "${top_builddir:-.}" && pwd)

# The passwords, one per line, in a private directory that is never scanned.
PRIV=$(mktemp -d "${TMPDIR:-/tmp}/fleet-audit-priv.XXXXXX")
chmod 700 "$PRIV"
trap 'exofront_down; oauth_lab_down; rm -rf "$PRIV"; fl_cleanup' EXIT
find "$LAB_SECRETS" -type f -exec sh -c 'for f; do cat "$f"; echo; done' _ {} + | grep -v '^$' | sort -u >"$PRIV/pw"
npw=$(wc -l <"$PRIV/pw")
[ "$npw" -gt 0 ] || bail "no password files under $LAB_SECRETS"
diag "$npw lab passwords"

# audit LABEL FILE...: prints "file:line,line" for each file that contains a password.
HITS=$PRIV/hits
audit_files() {
	local f lines
	for f in "$@"; do
		[ -f "$f" ] && [ -r "$f" ] || continue
		case "$f" in "$PRIV"/*) continue ;; esac
		lines=$({ grep -a -n -F -f "$PRIV/pw" "$f"; [ -z "$SHAPES" ] || grep -a -n -E -f "$PRIV/shapes" "$f"; } \
			2>/dev/null | cut -d: -f1 | sort -un | head -n 10 | paste -sd, -)
		[ -n "$lines" ] && echo "$f:$lines" >>"$HITS"
	done
	return 0
}
report() {
	local what=$1
	if [ -s "$HITS" ]; then
		not_ok "no lab password in $what"
		sed 's/^/#   password found in /' "$HITS" | head -n 30
	else
		ok "no lab password in $what"
	fi
	: >"$HITS"
}
: >"$HITS"
SHAPES=1
# Shapes of secrets whose value the audit cannot know: signed JWTs (client assertions, Google's
# per-user assertions) and the access tokens of the test services (tokenservice.py's formats).
# Looked for (SHAPES=1) in imapfleet's outputs here, the process list and the build tree's logs.
cat >"$PRIV/shapes" <<'EOF'
eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}
ya29\.[A-Za-z0-9_-]{40}
ms-[A-Za-z0-9_-]{43}
EOF

# ---- runs with ps sampling ----------------------------------------------------------------------
fl_wipe_dst >/dev/null || bail "cannot empty the destination accounts"
export IMAPFLEET_STATE=$FL_STATE
# Every process is sampled (into PRIV); imapfleet's own processes and their children are audited.
# (psql and pg_dump command lines of the test scripts themselves carry URLs with passwords: they
# are the scripts' choice, not imapfleet's, and only counted.)
PS=$PRIV/ps.all
sampler() { while :; do ps -eo pid=,ppid=,comm=,args= >>"$PS" 2>/dev/null; sleep 0.05; done; }
sampler &
SAMPLER=$!
FL_PIDS="$FL_PIDS $SAMPLER"

mkdir -p "$FL_WORK/a" "$FL_WORK/b" "$FL_WORK/c"
echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2" >"$FL_WORK/a/accounts.csv"
echo "localhost,$LAB_SRC_IMAPS,user13,$LAB_SECRETS/src/user13,ssl,localhost,$LAB_DST_IMAPS,user13,$LAB_SECRETS/dst/user13,ssl" >>"$FL_WORK/a/accounts.csv"
# Inline passwords: the CSV itself is an input that holds them, so it lives in PRIV (not scanned).
{
	echo "host1,port1,user1,password1,tls1,host2,port2,user2,password2,tls2"
	printf 'localhost,%s,user14,"%s",ssl,localhost,%s,user14,"%s",ssl\n' "$LAB_SRC_IMAPS" \
		"$(cat "$LAB_SECRETS/src/user14")" "$LAB_DST_IMAPS" "$(cat "$LAB_SECRETS/dst/user14")"
} >"$PRIV/inline.csv"
chmod 600 "$PRIV/inline.csv"

rc_a=0 rc_b=0 rc_c=0
(cd "$FL_WORK/a" && timeout 120 "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	--no-progress --log-level debug >run.out 2>&1) || rc_a=$?
(cd "$FL_WORK/b" && timeout 120 "$IMAPFLEET" run "$PRIV/inline.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	--no-progress --log-level debug >run.out 2>&1) || rc_b=$?
(cd "$FL_WORK/c" && timeout 120 "$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user15 \
	--passfile1 "$LAB_SECRETS/src/user15" --ssl1 --cafile1 "$LAB_CA" --host2 localhost --port2 "$LAB_DST_IMAPS" \
	--user2 user15 --passfile2 "$LAB_SECRETS/dst/user15" --ssl2 --cafile2 "$LAB_CA" >run.out 2>&1) || rc_c=$?

# OAuth 2.0 runs, still sampled: the token service and the Exchange front of the OAuth tests.
OA=$FL_WORK/oauth
mkdir -p "$OA" "$FL_WORK/d" "$FL_WORK/e" "$FL_WORK/f" "$FL_WORK/g"
rc_oauth="not run"
if oauth_users 2 >/dev/null 2>&1 && oauth_lab_up "$OA" 3600 $users && exofront_up; then
	tenant_csv "$FL_WORK/d/accounts.csv" "$EXO_PORT"
	cp "$FL_WORK/d/accounts.csv" "$FL_WORK/e/accounts.csv"
	tenant_csv "$FL_WORK/f/accounts.csv"
	work=$FL_WORK/g
	token_rows_csv "$FL_WORK/g/accounts.csv"
	ms="--oauth2 ms365 --tenant2 contoso --client-id2 app1 --token-url2 $OAUTH_MS_URL"
	rc_oauth=""
	# shellcheck disable=SC2086
	(cd "$FL_WORK/d" && timeout 120 "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
		--log-level debug $ms --client-secret-file2 "$OA/app.secret" >run.out 2>&1) || rc_oauth="$rc_oauth d=$?"
	# shellcheck disable=SC2086
	(cd "$FL_WORK/e" && timeout 120 "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
		--log-level debug $ms --client-cert2 "$OA/app.pem" >run.out 2>&1) || rc_oauth="$rc_oauth e=$?"
	(cd "$FL_WORK/f" && timeout 120 "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
		--log-level trace --oauth2 google --service-account2 "$OA/sa.json" >run.out 2>&1) || rc_oauth="$rc_oauth f=$?"
	(cd "$FL_WORK/g" && timeout 120 "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress \
		--log-level debug >run.out 2>&1) || rc_oauth="$rc_oauth g=$?"
fi
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
ntok=0
if [ -z "$rc_oauth" ]; then
	# What the OAuth runs had: every token issued (and its hex, as bytea is dumped), the client
	# secret, each line of both private keys. The inputs themselves move to PRIV (not scanned).
	python3 - "$LAB_TOKEN_PORT" "$LAB_CA" >"$PRIV/oauth" <<'PY'
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
for t in json.load(urllib.request.urlopen("https://localhost:%s/admin/tokens" % sys.argv[1], context=ctx, timeout=10))["tokens"]:
    print(t)
    print(t.encode().hex())
PY
	ntok=$(($(wc -l <"$PRIV/oauth") / 2))
	{ cat "$OA/app.secret"; echo; grep -hv -- '-----' "$OA/sa.key"; sed -n '/PRIVATE KEY/,/PRIVATE KEY/p' "$OA/app.pem" | grep -v -- '-----'; } >>"$PRIV/oauth"
	grep -v '^$' "$PRIV/oauth" >>"$PRIV/pw"
fi
exofront_down
oauth_lab_down
[ -d "$OA" ] && mv "$OA" "$PRIV/oauth-inputs"
for d in d e f g; do # the token rows' token files are inputs too
	mv "$FL_WORK/$d"/*.token "$PRIV/" 2>/dev/null
done
if [ -z "$rc_oauth" ] && [ "$ntok" -ge 3 ]; then
	ok "OAuth runs (ms365 client secret and certificate through the Exchange front, google at trace level, token rows) succeed ($ntok tokens issued)"
else
	not_ok "OAuth runs succeed (exit codes:${rc_oauth:- none}, $ntok tokens issued)"
	for d in d e f g; do grep -a -E 'ERROR|error' "$FL_WORK/$d/run.out" 2>/dev/null | tail -n 3 | sed "s/^/# $d: /"; done
fi
if [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] && [ $rc_c -eq 0 ]; then
	ok "a run with passfiles, a run with inline CSV passwords and a sync with passfiles all succeed"
else
	not_ok "a run with passfiles, a run with inline CSV passwords and a sync with passfiles all succeed (exit $rc_a, $rc_b, $rc_c)"
	for d in a b c; do grep -a -v -F -f "$PRIV/pw" "$FL_WORK/$d/run.out" | grep -E 'ERROR|error|usage' | tail -n 5 | sed "s/^/# $d: /"; done
fi
awk '$3 ~ /imapfleet/ { print $1 }' "$PS" | sort -u >"$PRIV/pids"
awk 'NR == FNR { p[$1] = 1; next } ($1 in p) || ($2 in p)' "$PRIV/pids" "$PS" >"$FL_WORK/ps.imapfleet"
diag "$(wc -l <"$PS") ps lines sampled, $(wc -l <"$FL_WORK/ps.imapfleet") of imapfleet processes ($(wc -l <"$PRIV/pids") pids) and their children"
others=$(grep -a -c -F -f "$PRIV/pw" "$PS")
[ "$others" -gt 0 ] && diag "$others sampled lines of other processes (test scripts' psql/pg_dump URLs) hold a password"
audit_files "$FL_WORK/ps.imapfleet"
report "the process list sampled during the runs"

# Reports of the run (when the report command works).
for fmt in csv json html; do
	(cd "$FL_WORK/a" && timeout 60 "$IMAPFLEET" report --format "$fmt" --out "$FL_WORK/a/report" >>report.out 2>&1) ||
		diag "imapfleet report --format $fmt failed: $(tail -n 1 "$FL_WORK/a/report.out")"
done
audit_files "$FL_WORK"/{a,b,c}/run.out "$FL_WORK"/a/report.out
while IFS= read -r -d '' f; do audit_files "$f"; done < <(find "$FL_WORK" -path "$PRIV" -prune -o -type f -print0)
report "the runs' output, per-account logs and reports"
# The trace level run logged its AUTHENTICATE lines, redacted.
auth_lines=$(grep -a -rh 'AUTHENTICATE XOAUTH2' "$FL_WORK/f" 2>/dev/null)
if [ -n "$auth_lines" ] && ! printf '%s\n' "$auth_lines" | grep -v -q '<redacted>'; then
	ok "the trace shows AUTHENTICATE XOAUTH2 <redacted> only ($(printf '%s\n' "$auth_lines" | wc -l) lines)"
else
	not_ok "the trace shows AUTHENTICATE XOAUTH2 <redacted> only"
fi

# ---- an unreachable state URL with the real PostgreSQL password --------------------------------
pgpw=$(cat "$LAB_SECRETS/pg/imapfleet" 2>/dev/null)
(cd "$FL_WORK/a" && IMAPFLEET_STATE="postgresql://imapfleet:$pgpw@127.0.0.1:1/nodb?connect_timeout=2" \
	timeout 60 "$IMAPFLEET" run accounts.csv --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress >badstate.out 2>&1)
diag "unreachable state: exit $?"
audit_files "$FL_WORK/a/badstate.out"
report "the error for an unreachable state URL"
unset IMAPFLEET_STATE

# ---- the build tree's logs ----------------------------------------------------------------------
while IFS= read -r -d '' f; do audit_files "$f"; done < <(find "$bld" \( -name '*.log' -o -name '*.trs' -o -name check.out \) -type f -print0)
report "the logs and results under the build tree"

SHAPES=""

# ---- .imapfleet directories and kept work directories ---------------------------------------------
n=0
while IFS= read -r -d '' d; do
	n=$((n + 1))
	while IFS= read -r -d '' f; do audit_files "$f"; done < <(find "$d" -type f -size -200M -print0 2>/dev/null)
done < <({ find "$src" "$bld" -maxdepth 4 -type d -name .imapfleet -print0 2>/dev/null
	find /tmp -maxdepth 1 -type d \( -name 'imapfleet-*' -o -name 'fleet-*' \) ! -path "$PRIV" -print0 2>/dev/null; })
diag "$n directories scanned"
report ".imapfleet directories and kept test work directories"

# ---- pg_dump of every database ------------------------------------------------------------------
base=${LAB_PG_SUPER_URL%/*}
dbs=$(psql "$LAB_PG_SUPER_URL" -qAtX -c "select datname from pg_database where datallowconn order by 1")
for db in $dbs; do
	if pg_dump --no-owner "$base/$db" >"$PRIV/dump.sql" 2>"$PRIV/dump.err"; then
		lines=$(grep -a -n -F -f "$PRIV/pw" "$PRIV/dump.sql" | cut -d: -f1 | head -n 10 | paste -sd, -)
		[ -n "$lines" ] && echo "pg_dump of database $db:$lines" >>"$HITS"
	else
		diag "pg_dump $db failed: $(head -n 1 "$PRIV/dump.err")"
	fi
done
rm -f "$PRIV/dump.sql"
diag "$(echo "$dbs" | wc -w) databases dumped"
report "a pg_dump of every database of the lab PostgreSQL"

# ---- core files ---------------------------------------------------------------------------------
cores=$( { find "$src" "$bld" -maxdepth 4 -type f \( -name core -o -name 'core.[0-9]*' -o -name '*.core' \) 2>/dev/null
	find /tmp -maxdepth 2 -type f \( -name core -o -name 'core.[0-9]*' \) 2>/dev/null; } | sort -u)
[ -n "$cores" ] && diag "core files: $(echo "$cores" | wc -l)"
for f in $cores; do audit_files "$f"; done
report "core files"

# The migrated accounts are exact too (the audit runs are real migrations).
FL_USERS="user13 user14 user15"
fl_mailcmp_all
