#!/usr/bin/env bash
# scripts/bench/scale.sh: organisation-scale figures of the scheduler and the state store (issue 19).
# A benchmark, not a test: it prints figures, it does not pass or fail. See docs/performance.md.
#
#   scripts/bench/scale.sh [--lab-dir DIR] [--imapfleet BIN] [--cases "claim refusing import accounts status"]
#
# By default it starts a lab of its own under /tmp (its own ports and servers, so it never
# disturbs tests running on .lab) and stops and deletes it at the end. Cases:
#   claim      PostgreSQL CPU per account attempt (claim, failure, next due) at 1,000 and 50,000
#              queued jobs, through the state module's own statements (tests/tools/claimbench.c)
#   refusing   20,000 rows, 19,980 of them on a source that refuses every connection and 20 real
#              accounts: wall time, attempts, server-level verdicts, PostgreSQL CPU
#              (--server-down-limit 60)
#   import     50,000 rows (a refusing source): time from start to the first attempt
#   accounts   1,000 accounts x 20 messages: wall, client CPU, PostgreSQL CPU per account
#              (seeds 1,000 lab accounts on first use: several minutes)
#   status     `imapfleet status` over a copy of the 50,000-account run of `import` (80 % of it
#              marked done, 2 % failed): median time and size of the default page, --state
#              failed, --server with --page, --json, and --limit 0 (every account)
#   report     `imapfleet report` over the same copy: time, and the size of report.html (it holds
#              at most 10,000 accounts) and accounts.json (every account)
# PostgreSQL CPU is read from /proc: the postmaster's own and reaped children's time plus every
# live backend's, before and after (scripts/bench/cpustat.py).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

lab_dir=""
bin=""
cases="claim refusing import status report accounts"
while [ $# -gt 0 ]; do
	case "$1" in
	--lab-dir) lab_dir=$2; shift ;;
	--imapfleet) bin=$2; shift ;;
	--cases) cases=$2; shift ;;
	*) echo "usage: scripts/bench/scale.sh [--lab-dir DIR] [--imapfleet BIN] [--cases LIST]" >&2; exit 2 ;;
	esac
	shift
done
say() { echo "scale: $*" >&2; }
builddir=$top/build
[ -n "$bin" ] || bin=$builddir/imapfleet
[ -x "$bin" ] || { say "no imapfleet at $bin (scripts/build.sh build)"; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd -P)/$(basename "$bin") # the cases run it from their own folders

own_lab=""
if [ -z "$lab_dir" ]; then
	lab_dir=$(mktemp -d /tmp/imapfleet-scale-lab.XXXXXX)
	chmod 755 "$lab_dir" # Cyrus and Courier run as nobody and read their configuration there
	own_lab=1
fi
export LAB_DIR=$lab_dir
work=$(mktemp -d /tmp/imapfleet-scale.XXXXXX)
cleanup() {
	if [ -n "$own_lab" ]; then scripts/lab.sh down --purge >/dev/null 2>&1; fi
	rm -rf "$work"
}
trap cleanup EXIT
LAB_USERS=${LAB_USERS:-40} scripts/lab.sh up >/dev/null || { say "the lab did not start"; exit 1; }
# shellcheck source=/dev/null
. "$LAB_DIR/lab.env"
scripts/lab.sh seed --users 20 --messages 20 >/dev/null || { say "seeding failed"; exit 1; }

postmaster=$(head -n 1 "$LAB_DIR/run/pg/postmaster.pid")
pg_cpu() { python3 scripts/bench/cpustat.py tree "$postmaster"; }
fresh_db() { # fresh_db NAME: prints its URL
	psql "$LAB_PG_SUPER_URL" -qc "drop database if exists $1" -c "create database $1 owner imapfleet" >/dev/null 2>&1
	echo "${LAB_PG_URL%/imapfleet}/$1"
}
secs() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
now() { date +%s.%N; }

# rows N REAL: an accounts CSV with REAL lab accounts (src -> dst) and N-REAL rows whose source
# (127.0.0.1:9) refuses every connection.
rows() {
	local n=$1 real=$2 i u
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	for i in $(seq 1 "$real"); do
		u=$(printf 'user%02d' "$i")
		echo "localhost,$LAB_SRC_IMAPS,$u,$LAB_SECRETS/src/$u,ssl,localhost,$LAB_DST_IMAPS,$u,$LAB_SECRETS/dst/$u,ssl"
	done
	awk -v n="$((n - real))" -v sp="$LAB_SECRETS/src/user01" -v dp="$LAB_SECRETS/dst/user01" -v dport="$LAB_DST_IMAPS" \
		'BEGIN { for (i = 1; i <= n; i++) printf "127.0.0.1,9,ghost%06d,%s,ssl,localhost,%s,ghost%06d,%s,ssl\n", i, sp, dport, i, dp }'
}
run_fleet() { # run_fleet DB CSV ARGS...: imapfleet run in $work, output in $work/out
	local url=$1 csv=$2
	shift 2
	(cd "$work" && "$bin" run "$csv" --state "$url" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress "$@" >"$work/out" 2>&1)
}

for c in $cases; do
	case $c in
	claim)
		cc=${CC:-cc}
		$cc -O2 -D_GNU_SOURCE -I"$top" -I"$builddir" -I/usr/include/postgresql -o "$work/claimbench" \
			tests/tools/claimbench.c "$builddir/state/libstate.a" "$builddir/common/libcommon.a" \
			-lpq -lssl -lcrypto -lpthread || { say "cannot build claimbench"; continue; }
		for n in 1000 50000; do
			url=$(fresh_db "scale_claim_$n")
			echo "claim: $("$work/claimbench" "$url" "$n" 2000 2>/dev/null)"
		done
		;;
	refusing)
		rows 20000 20 >"$work/refusing.csv"
		scripts/lab.sh wipe dst $(seq -f 'user%02g' 1 20) >/dev/null 2>&1
		url=$(fresh_db scale_refusing)
		c0=$(pg_cpu)
		t0=$(now)
		run_fleet "$url" "$work/refusing.csv" --server-down-limit 60
		rc=$?
		t1=$(now)
		c1=$(pg_cpu)
		verdicts=$(grep -c "refused or dropped every connection" "$work/out")
		downs=$(grep -c "is down (" "$work/out")
		echo "refusing: rows=20000 wall_s=$(secs "$t0" "$t1") exit=$rc pg_cpu_s=$(secs "$c0" "$c1")" \
			"attempts=$(psql "$url" -qAtX -c 'select count(*) from job_attempt')" \
			"done=$(psql "$url" -qAtX -c "select count(*) from job where state = 'done'")" \
			"failed=$(psql "$url" -qAtX -c "select count(*) from job where state = 'failed'")" \
			"down_lines=$downs verdict_lines=$verdicts"
		;;
	import)
		# Passwords in the file, each its own but all sharing a 12-byte prefix (as passwords handed
		# out by one admin often do; the secret table once keyed on the first bytes went quadratic).
		awk -v n=50000 -v dport="$LAB_DST_IMAPS" 'BEGIN {
			print "host1,port1,user1,password1,tls1,host2,port2,user2,password2,tls2"
			for (i = 1; i <= n; i++)
				printf "127.0.0.1,9,ghost%06d,Welcome2026!src%06d,ssl,localhost,%s,ghost%06d,Welcome2026!dst%06d,ssl\n", i, i, dport, i, i
		}' >"$work/import.csv"
		# Three runs (the machine is shared: a range, not one figure); the last one's database
		# stays for the status and report cases.
		for rep in 1 2 3; do
			url=$(fresh_db scale_import)
			c0=$(pg_cpu)
			t0=$(now)
			(cd "$work" && exec "$bin" run "$work/import.csv" --state "$url" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
				--no-progress --server-down-limit 0 >"$work/out" 2>&1) &
			pid=$!
			first=""
			for _ in $(seq 1200); do
				if grep -q "attempt 1 of" "$work/out"; then first=$(now); break; fi
				sleep 0.02
			done
			# CPU up to the first attempt: the client's (utime + stime) and PostgreSQL's.
			ccpu=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$pid/stat" 2>/dev/null)
			c1=$(pg_cpu)
			kill -INT "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			if [ -n "$first" ]; then echo "import: rows=50000 run=$rep first_attempt_after_s=$(secs "$t0" "$first")" \
				"client_cpu_s=${ccpu:-?} pg_cpu_s=$(secs "$c0" "$c1") load=$(cut -d' ' -f1 /proc/loadavg)"
			else echo "import: rows=50000 run=$rep no attempt within 24 s; the run's last lines:"; tail -n 3 "$work/out"; fi
		done
		;;
	status)
		src="${LAB_PG_URL%/imapfleet}/scale_import"
		if ! psql "$src" -qAtc 'select 1' >/dev/null 2>&1; then say "status needs the import case first"; continue; fi
		# A copy of the 50,000-account run with a mix of states: 80 % done, 2 % failed, the rest queued.
		psql "$LAB_PG_SUPER_URL" -qc "drop database if exists scale_status" \
			-c "create database scale_status template scale_import owner imapfleet" >/dev/null 2>&1
		url="${LAB_PG_URL%/imapfleet}/scale_status"
		psql "$url" -q -c "update job set state = 'done', msgs_copied = 20 where id % 5 <> 0" \
			-c "update job set state = 'failed', last_error_class = 'transient',
			    last_error_text = 'could not connect to 127.0.0.1:9: connection refused' where id % 50 = 0" \
			-c "vacuum analyze job" >/dev/null
		# status_case NAME ARGS...: the median of 5 runs, and the output's size
		status_case() {
			local name=$1 i t0 t1 ts=""
			shift
			for i in 1 2 3 4 5; do
				t0=$(now)
				"$bin" status --state "$url" "$@" >"$work/status.out" 2>&1
				t1=$(now)
				ts="$ts $(secs "$t0" "$t1")"
			done
			echo "status: accounts=50000 case=$name median_s=$(echo $ts | tr ' ' '\n' | sort -n | sed -n 3p)" \
				"runs_s=[$(echo $ts)] bytes=$(wc -c <"$work/status.out")"
		}
		status_case default
		status_case failed --state failed
		status_case server_page3 --server 127.0.0.1:9 --page 3
		status_case json_failed --json --state failed,partial --limit 50
		status_case all --limit 0
		;;
	report)
		url="${LAB_PG_URL%/imapfleet}/scale_status"
		if ! psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then say "report needs the status case first"; continue; fi
		for fmt in html all; do
			rm -rf "$work/report"
			t0=$(now)
			"$bin" report --state "$url" --format "$fmt" --out "$work/report" >"$work/report.out" 2>&1
			t1=$(now)
			echo "report: accounts=50000 format=$fmt wall_s=$(secs "$t0" "$t1")" \
				"report_html_bytes=$(stat -c %s "$work/report/report.html" 2>/dev/null || echo -)" \
				"accounts_json_bytes=$(stat -c %s "$work/report/accounts.json" 2>/dev/null || echo -)"
		done
		;;
	accounts)
		LAB_USERS=1000 scripts/lab.sh seed --users 1000 --messages 20 >/dev/null || { say "seeding 1,000 accounts failed"; continue; }
		scripts/lab.sh wipe dst >/dev/null 2>&1
		{
			echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
			for i in $(seq 1 1000); do
				u=$(printf 'user%02d' "$i")
				echo "localhost,$LAB_SRC_IMAPS,$u,$LAB_SECRETS/src/$u,ssl,localhost,$LAB_DST_IMAPS,$u,$LAB_SECRETS/dst/$u,ssl"
			done
		} >"$work/accounts.csv"
		url=$(fresh_db scale_accounts)
		c0=$(pg_cpu)
		t0=$(now)
		/usr/bin/time -f "%U %S" -o "$work/time" "$bin" run "$work/accounts.csv" --state "$url" --cafile1 "$LAB_CA" \
			--cafile2 "$LAB_CA" --no-progress >"$work/out" 2>&1
		rc=$?
		t1=$(now)
		c1=$(pg_cpu)
		client=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time")
		pg=$(secs "$c0" "$c1")
		echo "accounts: accounts=1000 wall_s=$(secs "$t0" "$t1") exit=$rc client_cpu_s=$client pg_cpu_s=$pg" \
			"pg_ms_per_account=$(python3 -c "print('%.2f' % (float('$pg') * 1000 / 1000))")" \
			"done=$(psql "$url" -qAtX -c "select count(*) from job where state = 'done'")"
		;;
	*) say "unknown case $c" ;;
	esac
done
