#!/usr/bin/env bash
# scripts/test.sh: from a fresh clone to a test verdict.
#   installs what is missing, builds, starts the lab (real PostgreSQL + Dovecot on loopback),
#   runs `make check` (unit, fuzz-corpus replay and integration tests), stops the lab, and prints
#   `N passed, N failed` as its last line.
# Options: --asan (ASan+UBSan build in build-asan), --tsan, --keep-lab (leave the lab running),
#          --build DIR, -- extra configure flags.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

builddir="$top/build"
flags="--enable-werror"
keep_lab=""
tests=""
while [ $# -gt 0 ]; do
	case "$1" in
	--asan) builddir="$top/build-asan"; flags="$flags --enable-asan" ;;
	--tsan) builddir="$top/build-tsan"; flags="$flags --enable-tsan" ;;
	--keep-lab) keep_lab=1 ;;
	--tests) tests=$2; shift ;;
	--build) builddir=$2; shift ;;
	--) shift; flags="$flags $*"; break ;;
	*) echo "usage: scripts/test.sh [--asan|--tsan] [--keep-lab] [--tests 'T1 T2'] [--build DIR] [-- configure flags]" >&2; exit 2 ;;
	esac
	shift
done

say() { echo "test.sh: $*" >&2; }
t0=$(date +%s)

scripts/deps.sh || { say "could not install dependencies"; echo "0 passed, 1 failed"; exit 1; }
if ! scripts/build.sh "$builddir" $flags; then
	say "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

lab_started=""
if [ -z "${LAB_DIR:-}" ] || [ ! -f "${LAB_DIR}/lab.env" ]; then
	export LAB_DIR="$top/.lab"
fi
# The integration tests use accounts user01..user40 (each test its own; see tests/integration/).
export LAB_USERS=${LAB_USERS:-40}
if ! scripts/lab.sh status >/dev/null 2>&1; then
	scripts/lab.sh up >/dev/null || { say "the lab did not start"; echo "0 passed, 1 failed"; exit 1; }
	lab_started=1
fi
scripts/lab.sh seed >/dev/null || { say "seeding the lab failed"; echo "0 passed, 1 failed"; exit 1; }
stop_lab() { [ -n "$lab_started" ] && [ -z "$keep_lab" ] && scripts/lab.sh down >/dev/null 2>&1; }
trap stop_lab EXIT

# ASan: leak checks on; abort on the first error so a test fails loudly.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 suppressions=$top/tests/tsan.supp}
touch "$builddir/.check-start"
if [ -n "$tests" ]; then
	(cd "$builddir" && exec make -k check TESTS="$tests" >check.out 2>&1) &
else
	(cd "$builddir" && exec make -k check >check.out 2>&1) &
fi
make_pid=$!

# One line per test program as it finishes: automake's driver creates NAME.log when the program
# starts and NAME.trs when it ends, so a poll of both gives each program's verdict and time.
declare -A started=() reported=()
# trs_tally [FILE...]: "PASSED FAILED SKIPPED" over the ":test-result:" lines of automake's .trs files
# (or of standard input): PASS and XFAIL pass; FAIL, ERROR and XPASS fail.
trs_tally() {
	awk '/^:test-result: (PASS|XFAIL)/ { p++ } /^:test-result: (FAIL|ERROR|XPASS)/ { f++ }
		/^:test-result: SKIP/ { s++ } END { print p + 0, f + 0, s + 0 }' "$@"
}
report_finished() {
	local f name now trs p n_pass n_fail n_skip verdict took
	now=$(date +%s.%N)
	while IFS= read -r f; do
		name=${f#"$builddir"/}
		name=${name%.log}
		[ -n "${started[$name]:-}" ] || started[$name]=$now
	done < <(find "$builddir/tests" -name '*.log' -newer "$builddir/.check-start" 2>/dev/null)
	while IFS= read -r trs; do
		name=${trs#"$builddir"/}
		name=${name%.trs}
		[ -z "${reported[$name]:-}" ] || continue
		reported[$name]=1
		read -r n_pass n_fail n_skip < <(trs_tally "$trs")
		verdict=PASS
		[ "$n_pass" -eq 0 ] && [ "$n_skip" -gt 0 ] && verdict=SKIP
		[ "$n_fail" -gt 0 ] && verdict=FAIL
		took=$(awk -v a="${started[$name]:-$now}" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
		printf '%-4s %-40s %4d passed %3d failed %3d skipped %7s s\n' "$verdict" "$name" \
			"$n_pass" "$n_fail" "$n_skip" "$took"
	done < <(find "$builddir/tests" -name '*.trs' -newer "$builddir/.check-start" 2>/dev/null | sort)
}
say "running the tests: one line per test program as it finishes (make check log: $builddir/check.out)"
while kill -0 "$make_pid" 2>/dev/null; do
	report_finished
	sleep 0.3
done
wait "$make_pid" || true
report_finished

# Count every TAP test point automake recorded (.trs), not the per-program summary.
read -r passed failed skipped < <(find "$builddir" -name '*.trs' -newer "$builddir/.check-start" -exec cat {} + 2>/dev/null |
	trs_tally)
ntrs=$(find "$builddir" -name '*.trs' -newer "$builddir/.check-start" | wc -l)
nlog=$(grep -c '^\(PASS\|FAIL\|ERROR\|SKIP\|XFAIL\|XPASS\):' "$builddir/check.out" 2>/dev/null || true)
if [ "$ntrs" -eq 0 ]; then
	say "make check ran no test (see $builddir/check.out)"
	tail -n 30 "$builddir/check.out" >&2
	failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ]; then
	say "failures:"
	grep -E '^(FAIL|ERROR|XPASS):' "$builddir/check.out" >&2 || true
fi
say "$nlog results from $ntrs test programs in $(( $(date +%s) - t0 )) s (logs: $builddir/tests/)"
echo "$passed passed, $failed failed, $skipped skipped" >"$builddir/test-results.txt"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
