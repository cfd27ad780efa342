#!/usr/bin/env bash
# scripts/demo.sh: the main job on the built-in lab, from a fresh clone.
#   installs what is missing, builds, starts the lab (PostgreSQL + source and destination Dovecot
#   with a generated CA, all on loopback), seeds the source accounts, then runs a real bulk
#   migration of every account with `imapfleet run`, checks every mailbox message by message,
#   changes the source (new mail in three accounts, a flag in a fourth), runs the delta pass and
#   checks that exactly those changes came over, writes the reports and says what to do next.
#   Exits non-zero when a mailbox differs or the delta pass copied anything else.
# Options: --accounts N (default 24), --keep-lab (leave the servers running), --messages M.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

accounts=24
messages=""
keep_lab=""
while [ $# -gt 0 ]; do
	case "$1" in
	--accounts) accounts=$2; shift ;;
	--messages) messages="--messages $2"; shift ;;
	--keep-lab) keep_lab=1 ;;
	*) echo "usage: scripts/demo.sh [--accounts N] [--messages M] [--keep-lab]" >&2; exit 2 ;;
	esac
	shift
done

step() { printf '\n==> %s\n' "$*"; }

step "installing what is missing and building"
scripts/deps.sh
scripts/build.sh "$top/build" --enable-werror

step "starting the lab"
export LAB_DIR="$top/.lab"
scripts/lab.sh up >/dev/null
[ -z "$keep_lab" ] && trap '"$top/scripts/lab.sh" down >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. "$LAB_DIR/lab.env"
scripts/lab.sh status

step "seeding $accounts source accounts"
# shellcheck disable=SC2086
scripts/lab.sh seed --users "$accounts" $messages
scripts/lab.sh wipe dst --users "$accounts" >/dev/null
scripts/lab.sh accounts "$accounts" >/dev/null
echo "accounts file: $LAB_DIR/accounts.csv"
head -n 3 "$LAB_DIR/accounts.csv" | sed 's/^/  /'

work="$top/build/demo"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

step "imapfleet run (pre-stage pass; state in an embedded PostgreSQL under $work/.imapfleet)"
"$top/build/imapfleet" run "$LAB_DIR/accounts.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" || true

step "checking every mailbox, message by message (bytes, flags, INTERNALDATE)"
bad=0
# check_mailbox USER: mailcmp of USER's source and destination; one line, counted in $bad when they differ.
check_mailbox() {
	if out=$(python3 "$top/tests/tools/mailcmp.py" --cafile "$LAB_CA" \
		--src-host localhost --src-port "$LAB_SRC_IMAPS" --src-user "$1" --src-passfile "$LAB_SECRETS/src/$1" \
		--dst-host localhost --dst-port "$LAB_DST_IMAPS" --dst-user "$1" --dst-passfile "$LAB_SECRETS/dst/$1" 2>&1); then
		echo "  $1: $(echo "$out" | tail -n 1)"
	else
		echo "  $1: MISMATCH"; echo "$out" | tail -n 20 | sed 's/^/    /'; bad=$((bad + 1))
	fi
}
for i in $(seq 1 "$accounts"); do
	u=$(printf 'user%02d' "$i")
	check_mailbox "$u"
done

step "changing the source, as users do between the pre-stage and the switch"
# New mail in three accounts and a flag changed in a fourth: the delta pass must bring exactly
# these over and nothing else.
pick() { printf 'user%02d' $(($1 <= accounts ? $1 : accounts)); }
declare -A want_new=() want_flags=()
u=$(pick 2); python3 "$top/scripts/lab/change.py" append "$u" INBOX 3; want_new[$u]=$((${want_new[$u]:-0} + 3))
u=$(pick 5); python3 "$top/scripts/lab/change.py" append "$u" Projects/Alpha 2; want_new[$u]=$((${want_new[$u]:-0} + 2))
u=$(pick 9); python3 "$top/scripts/lab/change.py" append "$u" Sent 1; want_new[$u]=$((${want_new[$u]:-0} + 1))
u=$(pick 11); python3 "$top/scripts/lab/change.py" flag "$u" INBOX '\Flagged'; want_flags[$u]=$((${want_flags[$u]:-0} + 1))

step "imapfleet run again (the delta pass: only what changed is copied)"
"$top/build/imapfleet" run "$LAB_DIR/accounts.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" 2>&1 |
	tee "$work/delta.log" || true

step "what the delta pass brought over (from its per-account \"done\" lines)"
changed=0
for i in $(seq 1 "$accounts"); do
	u=$(printf 'user%02d' "$i")
	line=$(grep -F "[$u@" "$work/delta.log" | grep -F '] done: ' | tail -n 1 || true)
	copied=$(printf '%s' "$line" | sed -n 's/.* done: \([0-9]*\) messages copied.*/\1/p')
	flags=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) flag changes.*/\1/p')
	want_c=${want_new[$u]:-0} want_f=${want_flags[$u]:-0}
	if [ -z "$copied" ] || [ -z "$flags" ]; then
		echo "  $u: no \"done\" line in the delta pass"
		bad=$((bad + 1))
	elif [ "$copied" != "$want_c" ] || [ "$flags" != "$want_f" ]; then
		echo "  $u: $copied copied and $flags flag changes, but $want_c and $want_f were expected"
		bad=$((bad + 1))
	elif [ "$want_c" != 0 ] || [ "$want_f" != 0 ]; then
		echo "  $u: $copied new messages copied, $flags flag changes (as made above)"
		changed=$((changed + 1))
	fi
done
echo "  the other $((accounts - changed)) accounts: nothing copied, no flag changed (as expected)"

step "checking the changed accounts again, message by message"
for u in $(printf '%s\n' "${!want_new[@]}" "${!want_flags[@]}" | sort -u); do
	check_mailbox "$u"
done

if "$top/build/imapfleet" report --out "$work/report" >/dev/null 2>&1; then
	step "reports written to $work/report (accounts.csv, accounts.json, report.html)"
fi

step "imapfleet verify (both servers and the ledger compared, folder by folder; changes nothing)"
if "$top/build/imapfleet" verify "$LAB_DIR/accounts.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" >"$work/verify.out" 2>&1; then
	tail -n 1 "$work/verify.out" | sed 's/^/  /'
	echo "  verdict: PASS"
else
	grep -v '^PASS ' "$work/verify.out" | tail -n 20 | sed 's/^/  /'
	echo "  verdict: FAIL"
	bad=$((bad + 1))
fi

step "summary"
if [ "$bad" -eq 0 ]; then
	echo "all $accounts accounts migrated exactly; the delta pass copied exactly what changed"
else
	echo "$bad problems (see above)"
fi

step "next steps"
echo "  the binary:        $top/build/imapfleet  (manual: man -l $top/docs/imapfleet.1)"
echo "  this demo's state: $work/.imapfleet (an embedded PostgreSQL); from $work:"
echo "      $top/build/imapfleet status"
echo "      $top/build/imapfleet report --format html --out report"
echo "  your own cutover:  docs/operations.md (preflight, pre-stage, delta, report), docs/accounts-file.md"
if [ -n "$keep_lab" ]; then
	echo "  the lab is still running (--keep-lab); its servers, ports, CA and passwords: docs/lab.md"
	echo "      . $LAB_DIR/lab.env                 the lab's variables in your shell"
	echo "      $top/scripts/lab.sh status          what runs"
	echo "      $LAB_DIR/accounts.csv               an accounts file for it (imapfleet run needs --cafile1/2 \$LAB_CA)"
	echo "      $top/scripts/lab.sh down            stop it (--purge also deletes $LAB_DIR)"
else
	echo "  the lab is stopped; scripts/demo.sh --keep-lab leaves it running to explore, and"
	echo "  scripts/lab.sh up starts it again with the same ports, passwords and mail (docs/lab.md)"
fi
[ "$bad" -eq 0 ]
