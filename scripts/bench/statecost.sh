#!/usr/bin/env bash
# scripts/bench/statecost.sh: PostgreSQL cost of the state writes per account and per copied message
# (issues 15 and 19). A benchmark, not a test: it prints figures, it does not pass or fail.
#
#   scripts/bench/statecost.sh --lab-dir DIR [--imapfleet BIN]... [--first N] [--accounts N]
#                              [--repeat R] [--delta] [--run-args "ARGS"]
#
# Runs `imapfleet run` over lab accounts userFIRST.. (seeded beforehand, e.g. `scripts/lab.sh seed
# --users 200 --messages 20` for small accounts, or `--messages 400 --sides src user201 ...` for
# the per-message case) into a fresh database, the destination accounts wiped first, and prints per
# run: wall, client CPU, PostgreSQL CPU (postmaster tree, scripts/bench/cpustat.py), the database's
# committed transactions (one per statement outside BEGIN) and row writes, per account and per
# copied message, and (with pg_stat_statements loaded) the claims, next-due looks and slot statements
# per account. Several --imapfleet binaries alternate run by run (before/after, back to back).
# --delta also runs each binary a second time over the same state (an unchanged delta pass).
# --run-args adds options to every `imapfleet run` (e.g. "--max-conns-per-host 4": accounts wait
# for connection slots).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

lab_dir="" first=1 n=200 repeat=1 delta="" run_args=""
bins=()
while [ $# -gt 0 ]; do
	case "$1" in
	--lab-dir) lab_dir=$2; shift ;;
	--imapfleet) bins+=("$2"); shift ;;
	--first) first=$2; shift ;;
	--accounts) n=$2; shift ;;
	--repeat) repeat=$2; shift ;;
	--delta) delta=1 ;;
	--run-args) run_args=$2; shift ;;
	*) echo "usage: scripts/bench/statecost.sh --lab-dir DIR [--imapfleet BIN]... [--first N] [--accounts N] [--repeat R] [--delta] [--run-args ARGS]" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$lab_dir" ] || { echo "statecost: --lab-dir DIR (a lab that is up and seeded)" >&2; exit 2; }
[ ${#bins[@]} -gt 0 ] || bins=("$top/build/imapfleet")
export LAB_DIR=$lab_dir
# shellcheck source=/dev/null
. "$LAB_DIR/lab.env"
work=$(mktemp -d /tmp/imapfleet-statecost.XXXXXX)
trap 'rm -rf "$work"' EXIT

postmaster=$(head -n 1 "$LAB_DIR/run/pg/postmaster.pid")
pg_cpu() { python3 scripts/bench/cpustat.py tree "$postmaster"; }
users=()
for i in $(seq "$first" $((first + n - 1))); do users+=("$(printf 'user%02d' "$i")"); done
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	for u in "${users[@]}"; do
		echo "localhost,$LAB_SRC_IMAPS,$u,$LAB_SECRETS/src/$u,ssl,localhost,$LAB_DST_IMAPS,$u,$LAB_SECRETS/dst/$u,ssl"
	done
} >"$work/accounts.csv"

# stats DB: "commits rows_written"
stats() {
	psql "$LAB_PG_SUPER_URL" -qAtX -F ' ' -c "select pg_stat_force_next_flush()" >/dev/null 2>&1
	psql "$LAB_PG_SUPER_URL" -qAtX -F ' ' -c "select xact_commit, tup_inserted + tup_updated + tup_deleted
		from pg_stat_database where datname = '$1'"
}

# With pg_stat_statements loaded (shared_preload_libraries in the lab's postgresql.conf), the
# calls of the scheduler's polling statements: "claims next_due slot_statements" (slot_statements:
# acquire tries with their reclaims and counts, releases not included); "- - -" without it.
pss=""
psql "$LAB_PG_SUPER_URL" -qAtX -c "create extension if not exists pg_stat_statements" >/dev/null 2>&1 &&
	psql "$LAB_PG_SUPER_URL" -qAtX -c "select 1 from pg_stat_statements limit 1" >/dev/null 2>&1 && pss=1
polls() {
	[ -n "$pss" ] || { echo "- - -"; return; }
	psql "$LAB_PG_SUPER_URL" -qAtX -F ' ' -c "select coalesce(sum(calls) filter (where query like 'WITH x AS (SELECT id, state AS old_state%'), 0),
		coalesce(sum(calls) filter (where query like '%FROM min(t) - now())%'), 0),
		coalesce(sum(calls) filter (where query like '%INSERT INTO conn_slot%' or query like 'DELETE FROM conn_slot c WHERE c.server%'
			or query like 'SELECT count(*) FROM conn_slot WHERE server = \$1 AND slot_no%'), 0)
		from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = '$1'"
}

one() { # one BIN LABEL URL DB
	local t0 t1 c0 c1 s0 s1 rc copied
	sleep 1
	[ -n "$pss" ] && psql "$LAB_PG_SUPER_URL" -qAtX -c "select pg_stat_statements_reset()" >/dev/null 2>&1
	s0=$(stats "$4")
	c0=$(pg_cpu)
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086 # run_args: words
	/usr/bin/time -f "%U %S" -o "$work/time" "$1" run "$work/accounts.csv" --state "$3" --cafile1 "$LAB_CA" \
		--cafile2 "$LAB_CA" --no-progress $run_args >"$work/out" 2>&1
	rc=$?
	t1=$(date +%s.%N)
	c1=$(pg_cpu)
	sleep 1 # the statistics of the last backends
	s1=$(stats "$4")
	copied=$(psql "$3" -qAtX -c "select coalesce(sum(msgs_copied), 0) from job")
	python3 - "$2" "$t0" "$t1" "$c0" "$c1" "$s0" "$s1" "$rc" "$n" "$copied" "$(cat "$work/time")" "$(polls "$4")" <<'EOF'
import sys
a = sys.argv
p = a[12].split()
per = lambda v: v if v == "-" else "%.1f" % (int(v) / int(a[9]))
label, t0, t1, c0, c1 = a[1], float(a[2]), float(a[3]), float(a[4]), float(a[5])
x0, w0 = map(int, a[6].split()); x1, w1 = map(int, a[7].split())
rc, n, copied = a[8], int(a[9]), int(a[10])
u, s = map(float, a[11].split())
pg = c1 - c0
print("%s: accounts=%d exit=%s wall_s=%.2f client_cpu_s=%.2f pg_cpu_s=%.2f pg_ms_per_account=%.2f "
      "copied=%d pg_us_per_copied=%s commits=%d commits_per_account=%.1f row_writes=%d"
      % (label, n, rc, t1 - t0, u + s, pg, pg * 1000 / n, copied,
         ("%.0f" % (pg * 1e6 / copied)) if copied else "-", x1 - x0, (x1 - x0) / n, w1 - w0)
      + " claims_per_account=%s next_due_per_account=%s slot_statements_per_account=%s" % tuple(per(v) for v in p))
EOF
}

for r in $(seq 1 "$repeat"); do
	k=0
	for b in "${bins[@]}"; do
		k=$((k + 1))
		db=statecost_$k
		psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $db" -c "create database $db owner imapfleet" >/dev/null 2>&1
		url="${LAB_PG_URL%/imapfleet}/$db"
		# the schema first, so its migrations are not measured
		"$b" status --state "$url" >/dev/null 2>&1
		scripts/lab.sh wipe dst "${users[@]}" >/dev/null 2>&1
		one "$b" "run $r bin $k full " "$url" "$db"
		[ -n "$delta" ] && one "$b" "run $r bin $k delta" "$url" "$db"
	done
done
