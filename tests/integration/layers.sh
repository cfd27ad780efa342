#!/bin/sh
# tests/integration/layers.sh: the layer order of docs/HACKING.md holds (no include points up), and
# scripts/check-style.sh really catches one that does. Needs no lab.
. "${top_srcdir:-.}/tests/integration/tap.sh"
top=${top_srcdir:-.}
plan 4
check "no include in the tree points up the layer order" env CHECK_STYLE_NO_FORMAT=1 sh "$top/scripts/check-style.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in cli ops scheduler accounts engine state io common; do
	mkdir -p "$tmp/$d" && cp "$top/$d"/*.[ch] "$tmp/$d/" 2>/dev/null
done
# refused DESCRIPTION FILE HEADER: with an include of HEADER added to FILE, check-style fails and
# names both; FILE is put back afterwards.
refused() {
	printf '#include "%s"\n' "$3" >>"$tmp/$2"
	out=$(CHECK_STYLE_ROOT=$tmp CHECK_STYLE_NO_FORMAT=1 sh "$top/scripts/check-style.sh" 2>&1)
	if [ $? -ne 0 ] && printf '%s\n' "$out" | grep -q "$2:.*$3"; then ok "$1"; else not_ok "$1"; diag "$out"; fi
	sed -i '$d' "$tmp/$2"
}
refused "scheduler including ops is refused and named" scheduler/policy.h ops/report.h
refused "state including io (same level) is refused" state/conn.c io/net.h
printf '#include "common/log.h"\n' >>"$tmp/accounts/accounts.c"
check "an include pointing down passes" env CHECK_STYLE_ROOT="$tmp" CHECK_STYLE_NO_FORMAT=1 sh "$top/scripts/check-style.sh"
exit 0
