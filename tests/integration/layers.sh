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
printf '#include "ops/report.h"\n' >>"$tmp/scheduler/policy.h"
out=$(CHECK_STYLE_ROOT=$tmp CHECK_STYLE_NO_FORMAT=1 sh "$top/scripts/check-style.sh" 2>&1)
if [ $? -ne 0 ] && printf '%s\n' "$out" | grep -q 'scheduler/policy.h:.*ops/report.h'; then
	ok "scheduler including ops is refused and named"
else
	not_ok "scheduler including ops is refused and named"; diag "$out"
fi
sed -i '$d' "$tmp/scheduler/policy.h"
printf '#include "io/net.h"\n' >>"$tmp/state/conn.c"
out=$(CHECK_STYLE_ROOT=$tmp CHECK_STYLE_NO_FORMAT=1 sh "$top/scripts/check-style.sh" 2>&1)
if [ $? -ne 0 ] && printf '%s\n' "$out" | grep -q 'state/conn.c:.*io/net.h'; then
	ok "state including io (same level) is refused"
else
	not_ok "state including io (same level) is refused"; diag "$out"
fi
sed -i '$d' "$tmp/state/conn.c"
printf '#include "common/log.h"\n' >>"$tmp/accounts/accounts.c"
check "an include pointing down passes" env CHECK_STYLE_ROOT="$tmp" CHECK_STYLE_NO_FORMAT=1 sh "$top/scripts/check-style.sh"
exit 0
