#!/bin/sh
# make check-style: banned functions (unbounded or error-blind C library calls) and clang-format.
# Banned after curl/git: strcpy strcat sprintf vsprintf gets strtok atoi atol atoll.
set -u
cd "$(dirname "$0")/.."
status=0
files=$(ls common/*.[ch] io/*.[ch] state/*.[ch] engine/*.[ch] scheduler/*.[ch] cli/*.[ch] 2>/dev/null)
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll)[[:space:]]*\('
if hits=$(grep -nE "$banned" $files); then
	echo "check-style: banned functions (use fleet_buf / snprintf / fleet_parse_u64):"
	echo "$hits"
	status=1
fi
if command -v clang-format >/dev/null 2>&1; then
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
[ $status -eq 0 ] && echo "check-style: ok (no banned functions)"
exit $status
