#!/bin/sh
# Hostile and broken servers (issue 13), scripted by tests/tools/hostileimap.py: whatever a server
# sends, the run ends, only the account or folder concerned fails, every text is stored and shown
# as valid UTF-8 without control characters, and a refused login is tried once, not every lease
# period forever.
# Destination: lab dst user13 (wiped first); sources are the hostile fake servers.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 8
fresh_db hostile
work=$(mktemp -d)
pids=""
cleanup() { [ -n "$pids" ] && kill $pids 2>/dev/null; [ -n "$KEEP" ] || { drop_db; rm -rf "$work"; }; }
trap cleanup EXIT
printf 'fake-src-pw\n' >"$work/pw"
chmod 600 "$work/pw"
wipe_dst user13

start_hostile() { # SCENARIO NAME [args]: sets $port
	_scn=$1 _name=$2; shift 2
	python3 "${top_srcdir:-.}/tests/tools/hostileimap.py" --scenario "$_scn" --cert "$LAB_DIR/tls/server.pem" \
		--key "$LAB_DIR/tls/server.key" --implicit-tls --user src --password fake-src-pw \
		--log "$work/$_name.log" "$@" >"$work/$_name.port" 2>"$work/$_name.err" &
	pids="$pids $!"
	for _i in $(seq 1 100); do [ -s "$work/$_name.port" ] && break; sleep 0.2; done
	port=$(head -n 1 "$work/$_name.port")
}
# run_from PORT NAME [run options]: imapfleet run of one row from the fake into lab dst user13,
# bounded by a timeout (a hang is a failure, not a stuck test).
run_from() {
	_p=$1 _name=$2; shift 2
	{
		echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
		echo "localhost,$_p,src,$work/pw,ssl,localhost,$LAB_DST_IMAPS,user13,$LAB_SECRETS/dst/user13,ssl"
	} >"$work/$_name.csv"
	timeout 120 "$IMAPFLEET" run "$work/$_name.csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
		--no-progress "$@" >"$work/$_name.out" 2>&1
}
sql() { psql "$STATE_URL" -Atc "$1" 2>&1; }
no_control_bytes() { # FILE: no ESC, no bare CR, valid UTF-8
	python3 - "$1" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
b.decode("utf-8")
assert b"\x1b" not in b and b"\r" not in b, "control bytes in output"
PY
}

# ---- 2a: a login refusal in Latin-1 is recorded; the job fails once and the run ends ------------
start_hostile login-latin1 l1
run_from "$port" l1
rc=$?
[ $rc -eq 1 ] && ok "a Latin-1 login refusal ends the run with exit 1 (account failed)" ||
	{ not_ok "a Latin-1 login refusal ends the run with exit 1 (got $rc)"; tail -n 15 "$work/l1.out" | sed 's/^/# /'; }
st=$(sql "select state || ' ' || last_error_class from job")
[ "$st" = "failed auth" ] && ok "the job is recorded as failed (auth), not left running" || not_ok "job recorded failed auth (got '$st')"
txt=$(sql "select last_error_text from job")
case "$txt" in
*'ung\xFCltig f\xFCr'*) ok "the refusal text is stored with the Latin-1 bytes in hex" ;;
*) not_ok "the refusal text is stored with the Latin-1 bytes in hex (got '$txt')" ;;
esac
nlogin=$(grep -c " C: [^ ]* \(LOGIN\|AUTHENTICATE\)" "$work/l1.log")
[ "$nlogin" -eq 1 ] && ok "exactly one login was attempted (no lockout loop)" || not_ok "exactly one login attempted (got $nlogin)"

# ---- 2b: one APPEND refused in Latin-1 fails that message only ---------------------------------------
start_hostile append-latin1 a1 --seed 5 --reject-append 2
"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user13 --passfile1 "$LAB_SECRETS/src/user13" \
	--cafile1 "$LAB_CA" --host2 localhost --port2 "$port" --user2 src --passfile2 "$work/pw" --cafile2 "$LAB_CA" \
	--state "$STATE_URL" --folder INBOX >"$work/a1.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "a Latin-1 APPEND refusal makes sync exit 1 (finished with failures), not a failed account" ||
	{ not_ok "a Latin-1 APPEND refusal: exit 1 (got $rc)"; tail -n 15 "$work/a1.out" | sed 's/^/# /'; }
nf=$(sql "select count(*) from message where state = 'failed' and strpos(error, 'gro\xDF \x1B[2J') > 0")
nc=$(sql "select count(*) from message where state = 'copied'")
[ "$nf" = 1 ] && [ "$nc" -ge 1 ] && ok "the refused message is recorded failed with its text in hex; the others are copied" ||
	not_ok "one failed message with its text, others copied (failed '$nf', copied '$nc')"
check "sync output holds no control bytes and is valid UTF-8" no_control_bytes "$work/a1.out"
check "run output holds no control bytes and is valid UTF-8" no_control_bytes "$work/l1.out"
