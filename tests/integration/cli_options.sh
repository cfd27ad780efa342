#!/bin/sh
# tests/integration/cli_options.sh: one option model for every command (common/opt.h). A missing
# value, an unknown option (each with its "did you mean"), a value after a per-side base name and a
# long command line are all reported at once, before anything connects. Needs no lab.
. "${top_srcdir:-.}/tests/integration/tap.sh"
plan 18
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'host1,user1,password1,host2,user2,password2\nlocalhost,a,x,localhost,b,y\n' >"$tmp/accounts.csv"
printf 'secret\n' >"$tmp/pw"
chmod 600 "$tmp/pw" "$tmp/accounts.csv"
IMAPFLEET=$(cd "$(dirname "$IMAPFLEET")" && pwd)/$(basename "$IMAPFLEET")
# preflight's default --workers as ops/preflight.h names it
pf_workers=$(sed -n 's/^#define PREFLIGHT_WORKERS[[:space:]]*\([0-9][0-9]*\)u\{0,1\}[[:space:]]*$/\1/p' \
	"${top_srcdir:-.}/ops/preflight.h")
cd "$tmp" || exit 1

# expect NAME RC PATTERN... -- CMD...: exit code RC and every PATTERN (fixed string) in the output;
# a PATTERN !TEXT: TEXT must not be in it.
expect() {
	_name=$1 _rc=$2; shift 2
	_pats=""
	while [ "$1" != "--" ]; do _pats="$_pats
$1"; shift; done
	shift
	_out=$("$@" 2>&1); _got=$?
	_bad=""
	[ "$_got" = "$_rc" ] || _bad="exit $_got, not $_rc"
	_ifs=$IFS; IFS='
'
	for _p in $_pats; do
		case $_p in
		!*) ! printf '%s\n' "$_out" | grep -qF -- "${_p#!}" || _bad="$_bad; '${_p#!}' is there" ;;
		*) printf '%s\n' "$_out" | grep -qF -- "$_p" || _bad="$_bad; no '$_p'" ;;
		esac
	done
	IFS=$_ifs
	if [ -z "$_bad" ]; then ok "$_name"; else not_ok "$_name"; diag "$_bad"; diag "$_out"; fi
}

expect "run ACCOUNTS --state without a value is a usage error naming --state" 2 \
	"option --state needs a value" -- "$IMAPFLEET" run accounts.csv --state
expect "--state without a value is not taken as an account option" 2 "!account option" "!state store" -- \
	"$IMAPFLEET" run accounts.csv --workers 2 --state

expect "run --cafile F names --cafile1/--cafile2, not the value" 2 \
	"'--cafile' (did you mean --cafile1/--cafile2?)" -- "$IMAPFLEET" run accounts.csv --cafile ca.pem
expect "the value of an unknown per-side base is not called an unexpected argument" 2 "!ca.pem" "!usage:" -- \
	"$IMAPFLEET" run accounts.csv --cafile ca.pem

expect "every unknown option is reported in one message, each with its suggestion" 2 \
	"'--dry-run' (did you mean --dry?)" "'--cafile' (did you mean --cafile1/--cafile2?)" \
	"'--frobnicate'" "'--worker' (did you mean --workers?)" \
	"'--delete1' (imapsync's; here use nothing" "option --max-attempts needs a number from 1 to 1000" -- \
	"$IMAPFLEET" run accounts.csv --dry-run --cafile x --frobnicate --worker 3 --delete1 --max-attempts 0

# 300 words: the last ones still count (they were dropped silently after the 254th).
long=""
i=0
while [ $i -lt 150 ]; do long="$long --folder F$i"; i=$((i + 1)); done
# shellcheck disable=SC2086
expect "run reads every word of a long command line (an unknown one at word 302 is reported)" 2 \
	"'--bogus-at-the-end'" -- "$IMAPFLEET" run accounts.csv $long --bogus-at-the-end
# shellcheck disable=SC2086
expect "run checks the account options after word 254 too" 2 \
	"option --maxage: 'soon' is not a number" -- "$IMAPFLEET" run accounts.csv $long --maxage soon

expect "worker takes no accounts file" 2 "unexpected argument 'accounts.csv'" -- "$IMAPFLEET" worker accounts.csv
expect "sync reports its unknown options at once" 2 \
	"'--cafile' (did you mean --cafile1/--cafile2?)" "'--dryrun' (did you mean --dry?)" -- \
	"$IMAPFLEET" sync --host1 h --user1 u --passfile1 pw --host2 h --user2 u --passfile2 pw --cafile c --dryrun
expect "preflight names --cafile1/--cafile2" 2 "'--cafile' (did you mean --cafile1/--cafile2?)" -- \
	"$IMAPFLEET" preflight accounts.csv --cafile ca.pem
expect "probe (one side) names --cafile for --cafile2" 2 "'--cafile2' (did you mean --cafile?)" -- \
	"$IMAPFLEET" probe --host h --cafile2 ca.pem
expect "status suggests --json" 2 "'--jsn' (did you mean --json?)" -- "$IMAPFLEET" status --jsn
expect "a flag given a value is refused" 2 "option --dry takes no value" -- "$IMAPFLEET" run accounts.csv --dry=yes
# --help shows each default from the constant that sets it, never a copy of the number.
expect "preflight --help shows PREFLIGHT_WORKERS (${pf_workers:-not found in ops/preflight.h}) as --workers' default" 0 \
	"accounts checked at once (default ${pf_workers:-?})" -- "$IMAPFLEET" preflight --help
for c in run sync worker preflight probe status report retry cancel verify; do "$IMAPFLEET" "$c" --help; done \
	>help.out 2>&1
expect "no --help leaves a default unfilled ('{}')" 0 "!{}" "(default 993; 143 means STARTTLS)" -- cat help.out
expect "run --help lists the side settings" 0 "--cafile1/2 F" "--insecure1/2" "--authuser1/2 A" "--oauth1/2" \
	"--tls1/2" "--exclude RE" -- "$IMAPFLEET" run --help

# Options of other work keep parsing: presets, folder rules, imapsync's no-ops, OAuth side settings.
# All accepted, the sync gets as far as connecting (nothing listens on port 1: exit 5).
expect "presets, folder rules, no-op and OAuth options still parse (sync reaches the connect)" 5 \
	"note: --syncinternaldates" -- "$IMAPFLEET" sync --host1 127.0.0.1 --port1 1 --user1 u --passfile1 pw \
	--host2 127.0.0.1 --port2 1 --user2 u --passfile2 pw --no-state --gmail1 --office2 --syncinternaldates \
	--timeout1 30 --f1f2 Old=New --regextrans2 's/a/b/' --subfolder2=Imported --casefold2 --maxsize 20M \
	--authmech2 PLAIN --tls1 --plain2 --justlogin
expect "--name=VALUE works like --name VALUE" 2 "option --workers needs a number from 1 to 1024, not 'x'" -- \
	"$IMAPFLEET" run accounts.csv --workers=x
