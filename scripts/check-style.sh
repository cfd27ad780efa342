#!/bin/sh
# make check-style: banned functions (unbounded or error-blind C library calls), includes that point
# up the layer order (both fatal), and clang-format (advisory).
# Banned after curl/git: strcpy strcat sprintf vsprintf gets strtok atoi atol atoll.
set -u
# CHECK_STYLE_ROOT: check another tree (the test plants a bad include in a copy); CHECK_STYLE_NO_FORMAT=1
# skips clang-format.
cd "${CHECK_STYLE_ROOT:-$(dirname "$0")/..}"
status=0
# The layers, top to bottom (docs/HACKING.md). A folder includes headers from its own folder and from
# the folders below it only; state/ and io/ share a level and never include each other.
layers="cli ops scheduler accounts engine state io common"
files=$(for d in $layers; do ls $d/*.[ch] 2>/dev/null; done)
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll)[[:space:]]*\('
if hits=$(grep -nE "$banned" $files); then
	echo "check-style: banned functions (use fleet_buf / snprintf / fleet_parse_u64):"
	echo "$hits"
	status=1
fi
rank() {
	case $1 in
	cli) echo 7 ;; ops) echo 6 ;; scheduler) echo 5 ;; accounts) echo 4 ;; engine) echo 3 ;;
	state | io) echo 2 ;; common) echo 1 ;; *) echo 0 ;;
	esac
}
# Every '#include "dir/x.h"' must point down (or into its own folder); tests and tools may include
# anything.
up=$(for f in $files; do
	from=${f%%/*}
	grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[a-z_]+/' "$f" | while IFS= read -r hit; do
		to=$(printf '%s\n' "$hit" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]+"([a-z_]+)\/.*/\1/')
		[ "$to" = "$from" ] && continue
		rt=$(rank "$to")
		rf=$(rank "$from")
		if [ "$rt" -eq 0 ] || [ "$rt" -ge "$rf" ]; then
			printf '%s:%s\n' "$f" "$hit"
		fi
	done
done)
if [ -n "$up" ]; then
	echo "check-style: includes that point up the layer order ($layers):"
	echo "$up"
	status=1
fi
if [ -n "${CHECK_STYLE_NO_FORMAT:-}" ]; then
	:
elif command -v clang-format >/dev/null 2>&1; then
	n=0
	for f in $files; do
		if ! clang-format --dry-run "$f" 2>/dev/null | cmp -s - /dev/null; then :; fi
		c=$(clang-format --dry-run "$f" 2>&1 | grep -c 'warning:' || true)
		[ "$c" -gt 0 ] && { echo "check-style: $f: $c formatting differences (clang-format -i $f)"; n=$((n + 1)); }
	done
	# Formatting is advisory (reported, not fatal); banned functions are fatal.
	[ "$n" -gt 0 ] && echo "check-style: $n files differ from .clang-format"
else
	echo "check-style: clang-format not installed, formatting not checked"
fi
[ $status -eq 0 ] && echo "check-style: ok (no banned functions, no include pointing up)"
exit $status
