#!/usr/bin/env bash
# scripts/demo.sh: the main job on the built-in lab, from a fresh clone.
#   installs what is missing, builds, starts the lab (PostgreSQL + source and destination Dovecot
#   with a generated CA, all on loopback), seeds the source accounts, then runs a real bulk
#   migration of every account with `imapfleet run`, checks every mailbox message by message,
#   runs the delta pass, and writes the reports.
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
for i in $(seq 1 "$accounts"); do
	u=$(printf 'user%02d' "$i")
	if out=$(python3 "$top/tests/tools/mailcmp.py" --cafile "$LAB_CA" \
		--src-host localhost --src-port "$LAB_SRC_IMAPS" --src-user "$u" --src-passfile "$LAB_SECRETS/src/$u" \
		--dst-host localhost --dst-port "$LAB_DST_IMAPS" --dst-user "$u" --dst-passfile "$LAB_SECRETS/dst/$u" 2>&1); then
		echo "  $u: $(echo "$out" | tail -n 1)"
	else
		echo "  $u: MISMATCH"; echo "$out" | tail -n 20 | sed 's/^/    /'; bad=$((bad + 1))
	fi
done

step "imapfleet run again (the delta pass: only what changed is copied)"
"$top/build/imapfleet" run "$LAB_DIR/accounts.csv" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" || true

if "$top/build/imapfleet" report --out "$work/report" >/dev/null 2>&1; then
	step "reports written to $work/report (accounts.csv, accounts.json, report.html)"
fi

step "summary"
if [ "$bad" -eq 0 ]; then
	echo "all $accounts accounts migrated exactly"
else
	echo "$bad of $accounts accounts differ (see above)"
	exit 1
fi
