#!/bin/sh
# OAuth 2.0 logins on more than one host: `run` imports and works, `worker` (no accounts file)
# joins, both against the lab's dst Dovecot, which checks every token at the tests' token service
# (tokens living a few seconds, so logins refresh them mid-run):
#  1. per-row token sources (tokencmd2, tokenfile2, auth2 columns) reach the worker through the
#     state, sealed: the worker logs in with them, every account ends exact, no source in clear
#     in the database;
#  2. Google service account (--oauth2 google) on both processes: every token request goes through
#     the shared store, the run ends exact;
#  3. Microsoft 365 app-only (--oauth2 ms365, certificate): the destination is tests/tools/
#     exofront.py, which checks the login as Exchange Online does (an application token, granted
#     the mailbox) in front of the dst Dovecot. Both hosts share the application's token: the
#     service issues about one per token lifetime, not one per account or host; every account ends
#     exact. A mailbox not granted to the application fails that account as auth, without a new
#     application token.
# Accounts: oa01..oa20 (created by oauth_bulk.sh or here).
. "${top_srcdir:-.}/tests/integration/tap.sh"
. "${top_srcdir:-.}/tests/integration/oauthlab.sh"
lab_require
plan 15
fresh_db oauthworkers
work=$(mktemp -d "${TMPDIR:-/tmp}/oauth-workers.XXXXXX")
pa= pb=
trap 'kill $pa $pb 2>/dev/null; exofront_down; oauth_lab_down; drop_db; [ -n "$KEEP" ] || rm -rf "$work"' EXIT INT TERM
oauth_users 20 || { echo "Bail out! could not seed the oa accounts"; exit 1; }
# shellcheck disable=SC2086
oauth_lab_up "$work" 3 $users || { echo "Bail out! the token service did not start"; exit 1; }

# run_pair NAME CSV [OPTION...]: `run` (1 worker thread, one message per window: slow enough to
# share) and a `worker` process (3 threads, no accounts file, its own directory with the key file)
# on the same state; waits for both. Sets rca and rcb; NAME.a.err and NAME.b.err keep their output.
run_pair() {
	_n=$1 _csv=$2
	shift 2
	mkdir -p "$work/$_n.a" "$work/$_n.b/.imapfleet"
	(cd "$work/$_n.a" && exec "$IMAPFLEET" run "$_csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
		--no-progress --workers 1 --batch 1 --lease 4000 "$@" >"$work/$_n.a.out" 2>"$work/$_n.a.err") &
	pa=$!
	for _i in $(seq 1 200); do # the worker joins once the run is in the database
		[ -s "$work/$_n.a/.imapfleet/key" ] && [ "$(psql "$STATE_URL" -Atc "select count(*) from job where state <> 'queued'" 2>/dev/null)" -ge 1 ] && break
		sleep 0.05
	done
	cp "$work/$_n.a/.imapfleet/key" "$work/$_n.b/.imapfleet/key"
	(cd "$work/$_n.b" && exec "$IMAPFLEET" worker --state "$STATE_URL" --no-progress --workers 3 --lease 4000 \
		>"$work/$_n.b.out" 2>"$work/$_n.b.err") &
	pb=$!
	wpid=$pb
	wait $pa
	rca=$?
	wait $pb
	rcb=$?
	pa= pb=
}
worker_jobs() { # accounts the worker process finished
	psql "$STATE_URL" -Atc "select count(distinct a.job_id) from job_attempt a join engine e on e.id = a.engine_id
		where e.pid = $wpid and a.outcome = 'done'" 2>/dev/null
}

# 1. per-row token sources on a worker host
# shellcheck disable=SC2086
wipe_dst $users
csv="$work/rows.csv"
token_rows_csv "$csv"
run_pair rows "$csv"
[ $rca = 0 ] && [ $rcb = 0 ] && ok "token rows: run and worker exit 0" ||
	{ not_ok "token rows: run and worker exit 0 (run $rca, worker $rcb)"; tail -n 8 "$work/rows.a.err" "$work/rows.b.err" | sed 's/^/# /'; }
wj=$(worker_jobs)
[ "${wj:-0}" -ge 3 ] && ok "the worker host logged in with stored token sources ($wj accounts)" ||
	{ not_ok "the worker host logged in with stored token sources (${wj:-0} accounts)"; tail -n 8 "$work/rows.b.err" | sed 's/^/# /'; }
check "token rows on two hosts: all 20 destinations equal their sources message by message" all_same
kinds=$(psql "$STATE_URL" -Atc "select string_agg(distinct kind, ',' order by kind) from credential where side = 2")
leak=$(psql "$STATE_URL" -Atc "select count(*) from credential where position(convert_to('gettoken', 'UTF8') in ciphertext) > 0
	or position(convert_to('.token', 'UTF8') in ciphertext) > 0")
[ "$kinds" = "tokencmd,tokenfile" ] && [ "$leak" = 0 ] &&
	ok "the token sources are stored sealed, by kind ($kinds)" || not_ok "token sources stored sealed by kind (kinds '$kinds', $leak in clear)"

# 2. Google service account on both hosts: one token per user, shared
# shellcheck disable=SC2086
wipe_dst $users
psql "$LAB_PG_SUPER_URL" -qc "drop database if exists ${_db}" -c "create database ${_db} owner imapfleet" >/dev/null 2>&1
tenant_csv "$work/tenant.csv"
before=$(for u in $users; do issued "$u"; done | tr '\n' ' ')
t0=$(date +%s)
run_pair google "$work/tenant.csv" --oauth2 google --service-account2 "$work/sa.json"
t1=$(date +%s)
after=$(for u in $users; do issued "$u"; done | tr '\n' ' ')
[ $rca = 0 ] && [ $rcb = 0 ] && ok "google on two hosts: run and worker exit 0" ||
	{ not_ok "google on two hosts: exit 0 (run $rca, worker $rcb)"; tail -n 8 "$work/google.a.err" "$work/google.b.err" | sed 's/^/# /'; }
wj=$(worker_jobs)
[ "${wj:-0}" -ge 3 ] && ok "google: the worker host did accounts too ($wj)" || not_ok "google: the worker host did accounts too (${wj:-0})"
check "google on two hosts: all 20 destinations equal their sources" all_same
# Each account logs in a few times (source, destination, verification) on either host; a token
# lives 6 s and is renewed after 4.8 s. Without sharing, each process would fetch its own.
fetched=$(python3 -c "import sys; b=sys.argv[1].split(); a=sys.argv[2].split(); print(sum(int(y) - int(x) for x, y in zip(b, a)))" "$before" "$after")
stored=$(psql "$STATE_URL" -Atc "select coalesce(sum(fetches), 0) from oauth_token where name like 'google:%'")
[ "$fetched" -ge 20 ] && [ "$fetched" = "$stored" ] &&
	ok "google: every token request went through the shared store ($fetched requests, $stored recorded, $((t1 - t0)) s)" ||
	not_ok "google: token requests through the shared store ($fetched requests, $stored recorded in the state)"
# 3. Microsoft 365 app-only through the Exchange front, on both hosts
exofront_up || { echo "Bail out! the Exchange front did not start"; exit 1; }
# shellcheck disable=SC2086
wipe_dst $users
psql "$LAB_PG_SUPER_URL" -qc "drop database if exists ${_db}" -c "create database ${_db} owner imapfleet" >/dev/null 2>&1
tenant_csv "$work/exo.csv" "$EXO_PORT"
ms="--oauth2 ms365 --tenant2 contoso --client-id2 app1 --client-cert2 $work/app.pem --token-url2 $OAUTH_MS_URL"
before=$(issued app:contoso/app1)
t0=$(date +%s)
# shellcheck disable=SC2086
run_pair exo "$work/exo.csv" $ms
t1=$(date +%s)
after=$(issued app:contoso/app1)
[ $rca = 0 ] && [ $rcb = 0 ] && ok "ms365 app-only on two hosts: run and worker exit 0" ||
	{ not_ok "ms365 app-only on two hosts: exit 0 (run $rca, worker $rcb)"; tail -n 8 "$work/exo.a.err" "$work/exo.b.err" | sed 's/^/# /'; }
wj=$(worker_jobs)
acc=$(grep -c '^accepted' "$work/exo.log")
[ "${wj:-0}" -ge 3 ] && [ "$acc" -ge 20 ] && ! grep -q '^refused' "$work/exo.log" &&
	ok "the front let the application into every mailbox ($acc logins, $wj accounts on the worker host)" ||
	{ not_ok "the front let the application into every mailbox ($acc logins, ${wj:-0} on the worker)"; sed 's/^/# /' "$work/exo.log" | tail -n 5; }
check "ms365 app-only: all 20 destinations equal their sources message by message" all_same
n=$((after - before))
stored=$(psql "$STATE_URL" -Atc "select coalesce(sum(fetches), 0) from oauth_token where name = 'ms365:contoso/app1'")
# A token lives 3 s and is renewed after 2.4 s: at most one per 2 s of the run, whatever the hosts.
[ "$n" -ge 1 ] && [ "$n" -le $(((t1 - t0) / 2 + 1)) ] && [ "$n" = "$stored" ] &&
	ok "one application token per lifetime for 20 accounts on two hosts ($n requests in $((t1 - t0)) s, all through the state)" ||
	not_ok "application tokens shared by both hosts ($n requests in $((t1 - t0)) s, $stored recorded in the state)"
# A mailbox the application was not granted (user01: not in the tenant's list).
tenant_csv "$work/nogrant.csv" "$EXO_PORT" user01
b=$(issued app:contoso/app1)
# shellcheck disable=SC2086
"$IMAPFLEET" run "$work/nogrant.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress $ms \
	>"$work/nogrant.out" 2>"$work/nogrant.err"
rc=$?
a=$(issued app:contoso/app1)
cls=$(psql "$STATE_URL" -Atc "select last_error_class from job where user2 = 'user01'")
[ $rc = 1 ] && [ "$cls" = auth ] && grep -q '^refused user01 mailbox not granted' "$work/exo.log" && [ $((a - b)) -le 1 ] &&
	ok "a mailbox not granted to the application fails that account as auth ($((a - b)) new token)" ||
	{ not_ok "a mailbox not granted fails as auth (exit $rc, class '$cls', $((a - b)) new tokens)"; tail -n 5 "$work/nogrant.err" | sed 's/^/# /'; }
grep -q "user01" "$work/nogrant.err" && grep -qi "authenticat" "$work/nogrant.err" &&
	ok "the failure names the mailbox and the refused login" || { not_ok "the failure names the mailbox and the refused login"; tail -n 5 "$work/nogrant.err" | sed 's/^/# /'; }

leaked=""
cat "$work"/*.out "$work"/*.err >"$work/all.out" 2>/dev/null
for f in "$work/oa02.token" "$work/sa.key" "$work/app.pem" "$work/app.secret"; do
	grep -qF -- "$(head -c 60 "$f")" "$work/all.out" && leaked="$leaked $f"
done
grep -Eq 'ya29\.|ms-[A-Za-z0-9_-]{20}|PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}\.' "$work/all.out" && leaked="$leaked token-or-key"
[ -z "$leaked" ] && ok "no token, key or secret in any output of either host" || not_ok "no secret in any output:$leaked"
exit 0
