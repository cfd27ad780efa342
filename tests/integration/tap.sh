# tests/integration/tap.sh: tiny TAP helpers for shell integration tests (sourced).
# Each test script prints a plan, then one "ok"/"not ok" line per assertion.
_tap_n=0
_tap_failed=0
plan() { echo "1..$1"; }
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
diag() { echo "# $*" | sed '2,$s/^/# /'; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
# check DESCRIPTION COMMAND...: ok when the command exits 0; its output is shown as diagnostics otherwise.
check() {
	_desc=$1; shift
	if _out=$("$@" 2>&1); then ok "$_desc"; else not_ok "$_desc"; printf '%s\n' "$_out" | tail -n 30 | sed 's/^/# /'; fi
}
# The lab's connection details, written by scripts/lab.sh up.
lab_require() {
	_labdir=${LAB_DIR:-${top_srcdir:-.}/.lab}
	[ -f "$_labdir/lab.env" ] || skip_all "the lab is not running (scripts/lab.sh up)"
	. "$_labdir/lab.env"
}
IMAPFLEET=${top_builddir:-.}/imapfleet
