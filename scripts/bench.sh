#!/usr/bin/env bash
# scripts/bench.sh: imapfleet against mbsync on the lab, in one go (design.md section 10).
#
#   scripts/bench.sh [options]
#
# By default it starts a lab of its own (a fresh LAB_DIR under /tmp, its own ports and servers,
# so it never disturbs tests running on .lab), seeds 40 accounts x 400 messages on src, and
# stops and deletes that lab at the end. Then, each time into an emptied destination:
#   1. imapfleet run (default settings), then a delta pass (the same run again, nothing new)
#   2. imapfleet run --workers 64 --max-conns-per-host 64 (peak RSS at 64 workers)
#   3. mbsync (isync), one process per account, 8 in parallel, then a delta pass
#   4. with --sweep: imapfleet with other --workers / --max-conns-per-host settings
# Both copies are checked message by message (scripts/bench/verify.py = mailcmp's comparison,
# with mbsync's added X-TUID header reported as an alteration). It prints wall time, client CPU
# (user+sys of the client processes only), peak RSS, messages/s, MB/s (10^6 bytes), the CPU the
# servers (Dovecot src, dst; PostgreSQL for imapfleet's state) and the whole machine used, and
# the imapfleet/mbsync ratios against the targets. See docs/performance.md.
#
# options:
#   --lab-dir DIR     use this lab (started if down) instead of a private one; it is seeded if
#                     its seed.json does not match --users/--messages, and left running.
#                     The destination accounts user01..userN are wiped several times.
#   --keep-lab        keep the private lab running afterwards (reuse it with --lab-dir)
#   --users N         accounts (default 40)          --messages M   per account (default 400)
#   --imapfleet BIN   binary to measure (default build-bench/imapfleet, built if missing)
#   --workers N --max-conns-per-host N   settings of the main imapfleet run (default: its own)
#   --sweep "W:C ..." also run imapfleet with each --workers W --max-conns-per-host C
#                     (--sweep default = "8:8 16:16 32:16 32:32 48:48")
#   --repeat R        run the main imapfleet and mbsync copies R times each, alternating,
#                     and report the median (default 1)
#   --no-mbsync --no-verify --no-rss64   skip those parts
#   --out DIR         keep logs and results there (default: a temporary directory, printed)
#
# WAN mode (instead of the runs above):
#   --wan "RTT..."    for each round-trip time in ms (e.g. "0 50 100"), both lab Dovecots are put
#                     behind scripts/bench/delayproxy (added round-trip time per connection, and
#                     --kbit), and imapfleet then mbsync copy the accounts through it, each into an
#                     emptied destination, --repeat times (alternating); wall and CPU ratios per RTT.
#                     --users defaults to 16 here. Each tool's last copy per RTT is verified.
#   --wan-workers N   accounts in parallel, for both tools (default 8: imapfleet --workers N
#                     --max-conns-per-host N, mbsync N processes)
#   --wan-conns N     imapfleet's --max-conns-per-host in WAN mode instead (e.g. 32: room for
#                     --conns-per-account 4 with 8 accounts at once; mbsync has one per account)
#   --kbit N          bandwidth per connection and direction, kbit/s (default unlimited)
#   --huge N          also the huge-mailbox case: one account ("huge") of N small messages in INBOX
#                     (seeded once), copied by both tools through the proxy at --huge-rtt ms
#   --huge-rtt MS     round-trip time of the huge-mailbox case (default 50)
#   --huge-only       WAN mode: only the huge-mailbox case
#   --imapfleet-opts "OPTS"  extra options for every imapfleet run (e.g. "--conns-per-account 4")
#   --server-compress the lab Dovecots offer COMPRESS=DEFLATE (default: they do not, as when the
#                     targets' baseline was measured; mbsync 1.4 compresses whenever it is offered,
#                     even on loopback, which costs it about 3.7 times its CPU). Applies to a
#                     private lab, or to a --lab-dir lab that is down when the benchmark starts.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BENCH=$REPO/scripts/bench
USERS=40 MESSAGES=400 LAB='' KEEP=0 BIN='' WORKERS='' CONNS='' SWEEP='' REPEAT=1
DO_MBSYNC=1 DO_VERIFY=1 DO_RSS64=1 OUT=''
WAN='' WAN_WORKERS=8 WAN_CONNS='' KBIT=0 HUGE=0 HUGE_RTT=50 HUGE_ONLY=0 IF_OPTS='' USERS_SET=0
SERVER_COMPRESS=0
DEFAULT_SWEEP="8:8 16:16 32:16 32:32 48:48"

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--lab-dir) LAB=${2:?}; shift ;;
	--keep-lab) KEEP=1 ;;
	--users) USERS=${2:?}; USERS_SET=1; shift ;;
	--messages) MESSAGES=${2:?}; shift ;;
	--imapfleet) BIN=${2:?}; shift ;;
	--workers) WORKERS=${2:?}; shift ;;
	--max-conns-per-host) CONNS=${2:?}; shift ;;
	--sweep)
		if [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+:[0-9]+ ]]; then SWEEP=$2; shift; else SWEEP=$DEFAULT_SWEEP; fi ;;
	--repeat) REPEAT=${2:?}; shift ;;
	--no-mbsync) DO_MBSYNC=0 ;;
	--no-verify) DO_VERIFY=0 ;;
	--no-rss64) DO_RSS64=0 ;;
	--out) OUT=${2:?}; shift ;;
	--wan) WAN=${2:?}; shift ;;
	--wan-workers) WAN_WORKERS=${2:?}; shift ;;
	--wan-conns) WAN_CONNS=${2:?}; shift ;;
	--kbit) KBIT=${2:?}; shift ;;
	--huge) HUGE=${2:?}; shift ;;
	--huge-rtt) HUGE_RTT=${2:?}; shift ;;
	--huge-only) HUGE_ONLY=1 ;;
	--imapfleet-opts) IF_OPTS=${2?}; shift ;;
	--server-compress) SERVER_COMPRESS=1 ;;
	-h | --help) usage ;;
	*) die "unknown option $1 (--help)" ;;
	esac
	shift
done
{ [ -n "$WAN" ] || [ "$HUGE_ONLY" = 1 ]; } && [ "$USERS_SET" = 0 ] && USERS=16
[[ $USERS =~ ^[0-9]+$ && $USERS -ge 1 && $USERS -le 99 ]] || die "--users: 1 to 99"
for v in $WAN $WAN_WORKERS $WAN_CONNS $KBIT $HUGE $HUGE_RTT; do [[ $v =~ ^[0-9]+$ ]] || die "--wan/--wan-workers/--kbit/--huge/--huge-rtt take numbers"; done
[ "$HUGE_ONLY" = 0 ] || [ "$HUGE" -gt 0 ] || die "--huge-only needs --huge N"
[ "$HUGE" = 0 ] || [ -n "$WAN" ] || [ "$HUGE_ONLY" = 1 ] || die "--huge is part of WAN mode: give --wan RTTs or --huge-only"
[[ $MESSAGES =~ ^[0-9]+$ ]] || die "--messages needs a number"
[[ $REPEAT =~ ^[1-9]$ ]] || die "--repeat: 1 to 9"
for t in python3 psql /usr/bin/time; do command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh)"; done
[ "$DO_MBSYNC" = 0 ] || command -v mbsync >/dev/null || die "mbsync is missing: apt-get install isync (scripts/deps.sh)"

T0=$(date +%s)

# --- the binary ------------------------------------------------------------------------
if [ -z "$BIN" ]; then
	BIN=$REPO/build-bench/imapfleet
	if [ ! -x "$BIN" ]; then
		say "building $BIN (optimised, no sanitizers)"
		# build.sh runs autogen.sh on a fresh clone, where ./configure does not exist yet
		"$REPO/scripts/build.sh" "$REPO/build-bench" >/dev/null ||
			die "build failed: see $REPO/build-bench/make.out"
	fi
fi
[ -x "$BIN" ] || die "no imapfleet binary at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")

# --- work directory --------------------------------------------------------------------
if [ -n "$OUT" ]; then mkdir -p "$OUT"; W=$(cd "$OUT" && pwd -P); else W=$(mktemp -d /tmp/imapfleet-bench-out.XXXXXX); fi
RES=$W/results.tsv
printf 'phase\ttool\twall_s\tuser_s\tsys_s\trss_kb\tsrc_cpu_s\tdst_cpu_s\tpg_cpu_s\tmachine_busy_s\tload1\trc\n' >"$RES"

# --- the lab ---------------------------------------------------------------------------
OWN_LAB=0
cleanup() {
	local rc=$?
	[ -z "${PROXY_PIDS:-}" ] || proxy_stop
	rm -rf "$W"/mbsync*/rc "$W/.imapfleet" # passwords, the credentials key
	for db in $DBS; do psql_super -c "drop database if exists $db" >/dev/null 2>&1 || true; done
	if [ "$OWN_LAB" = 1 ] && [ "$KEEP" = 0 ]; then
		LAB_DIR=$LAB_DIR "$REPO/scripts/lab.sh" down --purge >/dev/null 2>&1 || say "could not stop the lab in $LAB_DIR"
	elif [ "$OWN_LAB" = 1 ]; then
		say "lab kept running: --lab-dir $LAB_DIR (stop: LAB_DIR=$LAB_DIR scripts/lab.sh down --purge)"
	fi
	exit $rc
}
DBS=""
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$LAB" ]; then
	LAB_DIR=$(mktemp -d /tmp/imapfleet-bench.XXXXXX)
	chmod 755 "$LAB_DIR" # Cyrus and Courier run as nobody and read their configuration there
	OWN_LAB=1
	say "starting a private lab in $LAB_DIR"
else
	LAB_DIR=$(mkdir -p "$LAB" && cd "$LAB" && pwd -P)
	if [ "$LAB_DIR" = "$REPO/.lab" ] && [ "${BENCH_SHARED_LAB_OK:-}" != 1 ]; then
		die "$LAB_DIR is the shared test lab: the benchmark wipes its destination accounts." \
			"Use a lab of its own (the default), or set BENCH_SHARED_LAB_OK=1."
	fi
fi
export LAB_DIR
LAB_COMPRESS=$SERVER_COMPRESS LAB_USERS=$USERS "$REPO/scripts/lab.sh" up >"$W/lab-up.log" 2>&1 || { cat "$W/lab-up.log" >&2; die "lab did not come up"; }
sed -i '/^export /d' "$W/lab-up.log" # the variables hold database passwords
# shellcheck source=/dev/null
. "$LAB_DIR/lab.env"
RUN=$(cd "$LAB_DIR/run" && pwd -P)
psql_super() { psql -X -q -v ON_ERROR_STOP=1 "$LAB_PG_SUPER_URL" "$@"; }

seeded() { # the lab holds --users x --messages from this seed?
	python3 - "$LAB_DIR/seed.json" "$USERS" "$MESSAGES" <<-'EOF'
		import json, sys
		try:
		    d = json.load(open(sys.argv[1]))
		except (OSError, ValueError):
		    sys.exit(1)
		n, m = int(sys.argv[2]), int(sys.argv[3])
		acc = d.get("accounts", {})
		ok = d.get("messages_per_account") == m and all(
		    acc.get("src/user%02d" % i, {}).get("messages", 0) > 0 for i in range(1, n + 1))
		sys.exit(0 if ok else 1)
	EOF
}
if [ "$HUGE_ONLY" = 0 ] && ! seeded; then
	say "seeding $USERS accounts x $MESSAGES messages on src"
	"$REPO/scripts/lab.sh" seed --users "$USERS" --messages "$MESSAGES" --sides src >"$W/seed.log" 2>&1 ||
		{ tail -n 20 "$W/seed.log" >&2; die "seed failed"; }
fi
read -r NMSG NBYTES <<<"$(python3 - "$LAB_DIR/seed.json" "$USERS" <<-'EOF'
	import json, sys
	try:
	    acc = json.load(open(sys.argv[1]))["accounts"]
	    v = [acc["src/user%02d" % i] for i in range(1, int(sys.argv[2]) + 1)]
	except (OSError, ValueError, KeyError):
	    v = []  # --huge-only: the users are not seeded
	print(sum(a["messages"] for a in v), sum(a["bytes"] for a in v))
EOF
)"
say "corpus: $USERS accounts, $NMSG messages, $((NBYTES / 1000000)) MB; lab $LAB_DIR; servers offer COMPRESS: $([ "$SERVER_COMPRESS" = 1 ] && echo yes || echo no)"

ACC=$W/accounts.csv
{
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
	for i in $(seq 1 "$USERS"); do
		u=$(printf 'user%02d' "$i")
		echo "localhost,$LAB_SRC_IMAPS,$u,$LAB_SECRETS/src/$u,ssl,localhost,$LAB_DST_IMAPS,$u,$LAB_SECRETS/dst/$u,ssl"
	done
} >"$ACC"
USERLIST=$(seq -f 'user%02g' 1 "$USERS" | tr '\n' ' ')

wipe_dst() {
	# shellcheck disable=SC2086
	"$REPO/scripts/lab.sh" wipe dst $USERLIST >>"$W/wipe.log" 2>&1 || die "wipe dst failed (see $W/wipe.log)"
}

# --- measuring -------------------------------------------------------------------------
master_pid() { cat "$RUN/$1/base/master.pid" 2>/dev/null || echo 0; }
pg_pid() { head -n 1 "$RUN/pg/postmaster.pid" 2>/dev/null || echo 0; }
snapshot() { # src dst pg machine CPU seconds
	echo "$(python3 "$BENCH/cpustat.py" tree "$(master_pid src)") $(python3 "$BENCH/cpustat.py" tree "$(master_pid dst)")" \
		"$(python3 "$BENCH/cpustat.py" tree "$(pg_pid)") $(python3 "$BENCH/cpustat.py" machine)"
}

# measure PHASE TOOL CMD...: runs CMD under /usr/bin/time (wall, user+sys and max RSS of it and
# of every descendant it waited for), with the servers' and the machine's CPU around it.
measure() {
	local phase=$1 tool=$2 rc=0 b a load
	shift 2
	load=$(cut -d' ' -f1 /proc/loadavg)
	b=$(snapshot)
	/usr/bin/time -f '%e %U %S %M' -o "$W/$phase.time" "$@" >"$W/$phase.log" 2>&1 || rc=$?
	a=$(snapshot)
	python3 - "$phase" "$tool" "$b" "$a" "$load" "$rc" "$(tail -n 1 "$W/$phase.time")" >>"$RES" <<-'EOF'
		import sys
		phase, tool, b, a, load, rc, t = sys.argv[1:8]
		b, a = [float(x) for x in b.split()], [float(x) for x in a.split()]
		wall, user, sys_, rss = t.split()
		d = ["%.2f" % (y - x) for x, y in zip(b, a)]
		print("\t".join([phase, tool, wall, user, sys_, rss] + d + [load, rc]))
	EOF
	[ "$rc" = 0 ] || say "$phase exited with status $rc (log: $W/$phase.log)"
	say "$(printf '%-16s' "$phase") $(awk -F'\t' -v p="$phase" '$1==p {printf "wall %6.1f s  CPU %5.1f s  RSS %4d MB", $3, $4+$5, $6/1024}' "$RES")"
	return 0
}

newdb() { # a fresh, private state database
	psql_super -c "drop database if exists $1" >/dev/null 2>&1
	psql_super -c "create database $1 owner imapfleet" >/dev/null
	case " $DBS " in *" $1 "*) ;; *) DBS="$DBS $1" ;; esac
}

# imapfleet_run PHASE DB [options]: wall clock includes only imapfleet. The accounts file is
# $RUN_ACC (default the lab's, direct), $RUN_N accounts.
imapfleet_run() {
	local phase=$1 db=$2
	shift 2
	# shellcheck disable=SC2086
	(cd "$W" && measure "$phase" imapfleet "$BIN" run "${RUN_ACC:-$ACC}" --state "${LAB_PG_URL%/imapfleet}/$db" \
		--cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress $IF_OPTS "$@")
	grep -Eq "^run [0-9]+: ${RUN_N:-$USERS} done, (0 partial, )?0 failed" "$W/$phase.log" ||
		say "$phase: not every account done: $(grep '^run ' "$W/$phase.log" || tail -n 2 "$W/$phase.log")"
}

MAINOPTS=()
[ -n "$WORKERS" ] && MAINOPTS+=(--workers "$WORKERS")
[ -n "$CONNS" ] && MAINOPTS+=(--max-conns-per-host "$CONNS")

MB=$W/mbsync
if [ "$DO_MBSYNC" = 1 ]; then
	rm -rf "$MB"
	"$BENCH/mbsyncrc.sh" "$ACC" "$MB" "$LAB_CA" >"$W/mbsync-rc.list"
fi
mbsync_run() { # mbsync_run PHASE [LIST [P]]: one mbsync per account, P (8) at once; time counts all of them
	measure "$1" mbsync xargs -P"${3:-8}" -n1 mbsync -q -a -c <"${2:-$W/mbsync-rc.list}"
}
mbsync_fresh() { # mbsync_fresh DIR LIST: empty sync state for every rc of LIST
	rm -rf "$1/state" && mkdir -p "$1/state" && sed 's#.*/##; s#\.rc$##' "$2" |
		while read -r u; do mkdir -p "$1/state/$u"; done
}

# --- WAN mode: both Dovecots behind the delay proxy ------------------------------------------
PROXY_PIDS=""
proxy_stop() {
	for p in $PROXY_PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PROXY_PIDS; do wait "$p" 2>/dev/null || true; done
	PROXY_PIDS=""
}
# proxied_csv RTT IN OUT: starts a delay proxy per server of IN (src, dst) with RTT ms and writes
# OUT, the same accounts through the proxies.
proxied_csv() {
	local rtt=$1 in=$2 out=$3 ports ps pd
	read -r ps pd <<<"$(python3 "$REPO/scripts/lab/labutil.py" ports 2)"
	for pair in "$ps:$LAB_SRC_IMAPS" "$pd:$LAB_DST_IMAPS"; do
		rm -f "$W/proxy-${pair%%:*}.port"
		"$W/delayproxy" --listen "127.0.0.1:${pair%%:*}" --target "127.0.0.1:${pair##*:}" --rtt-ms "$rtt" \
			--kbit "$KBIT" --port-file "$W/proxy-${pair%%:*}.port" >/dev/null 2>>"$W/delayproxy.log" &
		PROXY_PIDS="$PROXY_PIDS $!"
	done
	for port in $ps $pd; do
		for _ in $(seq 50); do [ -s "$W/proxy-$port.port" ] && break; sleep 0.1; done
		[ -s "$W/proxy-$port.port" ] || die "the delay proxy on $port did not start (see $W/delayproxy.log)"
	done
	sed "s/,$LAB_SRC_IMAPS,/,$ps,/; s/,$LAB_DST_IMAPS,/,$pd,/" "$in" >"$out"
}
# wan_case NAME RTT CSV N USERLIST: imapfleet and mbsync, alternating, --repeat times
wan_case() {
	local name=$1 rtt=$2 csv=$3 n=$4 users=$5 pcsv=$W/$1.csv mbd=$W/mbsync-$1 r
	proxied_csv "$rtt" "$csv" "$pcsv"
	[ "$DO_MBSYNC" = 0 ] || "$BENCH/mbsyncrc.sh" "$pcsv" "$mbd" "$LAB_CA" >"$mbd.list"
	for r in $(seq 1 "$REPEAT"); do
		# shellcheck disable=SC2086
		"$REPO/scripts/lab.sh" wipe dst $users >>"$W/wipe.log" 2>&1 || die "wipe dst failed (see $W/wipe.log)"
		newdb "bench_$name"
		RUN_ACC=$pcsv RUN_N=$n imapfleet_run "$name-imapfleet.$r" "bench_$name" \
			--workers "$WAN_WORKERS" --max-conns-per-host "${WAN_CONNS:-$WAN_WORKERS}"
		if [ "$r" = "$REPEAT" ] && [ "$DO_VERIFY" = 1 ]; then
			python3 "$BENCH/verify.py" "$csv" --cafile "$LAB_CA" --label "imapfleet $name" \
				>"$W/verify-$name-imapfleet.txt" 2>&1 || true
			say "$(tail -n 1 "$W/verify-$name-imapfleet.txt")"
		fi
		[ "$DO_MBSYNC" = 1 ] || continue
		# shellcheck disable=SC2086
		"$REPO/scripts/lab.sh" wipe dst $users >>"$W/wipe.log" 2>&1 || die "wipe dst failed (see $W/wipe.log)"
		mbsync_fresh "$mbd" "$mbd.list"
		mbsync_run "$name-mbsync.$r" "$mbd.list" "$WAN_WORKERS"
		if [ "$r" = "$REPEAT" ] && [ "$DO_VERIFY" = 1 ]; then
			python3 "$BENCH/verify.py" "$csv" --cafile "$LAB_CA" --label "mbsync $name" \
				>"$W/verify-$name-mbsync.txt" 2>&1 || true
			say "$(tail -n 1 "$W/verify-$name-mbsync.txt")"
		fi
	done
	proxy_stop
}
if [ -n "$WAN" ] || [ "$HUGE_ONLY" = 1 ]; then
	cc -O2 -pthread -o "$W/delayproxy" "$BENCH/delayproxy.c" || die "cannot build scripts/bench/delayproxy.c"
	if [ "$HUGE_ONLY" = 0 ]; then
		for rtt in $WAN; do
			wan_case "wan$rtt" "$rtt" "$ACC" "$USERS" "$USERLIST"
		done
	fi
	if [ "$HUGE" -gt 0 ]; then
		HACC=$W/accounts-huge.csv
		"$REPO/scripts/lab.sh" add-account huge >/dev/null 2>&1 || die "cannot add the account huge"
		if [ "$(cat "$LAB_DIR/huge.seeded" 2>/dev/null)" != "$HUGE" ]; then
			say "seeding huge: $HUGE messages in INBOX"
			python3 "$BENCH/hugeseed.py" --port "$LAB_SRC_IMAPS" --user huge --passfile "$LAB_SECRETS/src/huge" \
				--cafile "$LAB_CA" --messages "$HUGE" >"$W/hugeseed.log" 2>&1 || { cat "$W/hugeseed.log" >&2; die "seeding huge failed"; }
			echo "$HUGE" >"$LAB_DIR/huge.seeded"
		fi
		{
			echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2"
			echo "localhost,$LAB_SRC_IMAPS,huge,$LAB_SECRETS/src/huge,ssl,localhost,$LAB_DST_IMAPS,huge,$LAB_SECRETS/dst/huge,ssl"
		} >"$HACC"
		wan_case "huge$HUGE_RTT" "$HUGE_RTT" "$HACC" 1 huge
	fi
	echo
	python3 "$BENCH/wanreport.py" "$RES" --kbit "$KBIT" --workers "$WAN_WORKERS" --users "$USERS" \
		--messages "$MESSAGES" --huge "$HUGE" | tee "$W/report.txt"
	cat "$W"/verify-*.txt 2>/dev/null | grep -v '^ *$' | sed 's/^/  /' | tee -a "$W/report.txt"
	echo "bench: $(($(date +%s) - T0)) s in all; logs and results in $W" | tee -a "$W/report.txt"
	exit 0
fi

# --- the runs --------------------------------------------------------------------------
for r in $(seq 1 "$REPEAT"); do
	sfx=$([ "$REPEAT" = 1 ] || echo ".$r")
	wipe_dst
	newdb bench_main
	imapfleet_run "imapfleet-full$sfx" bench_main "${MAINOPTS[@]}"
	imapfleet_run "imapfleet-delta$sfx" bench_main "${MAINOPTS[@]}"
	if [ "$r" = "$REPEAT" ] && [ "$DO_VERIFY" = 1 ]; then
		say "verifying the imapfleet copy"
		python3 "$BENCH/verify.py" "$ACC" --cafile "$LAB_CA" --label imapfleet --json "$W/verify-imapfleet.json" \
			>"$W/verify-imapfleet.txt" 2>&1 || true
	fi
	if [ "$DO_MBSYNC" = 1 ]; then
		wipe_dst
		mbsync_fresh "$MB" "$W/mbsync-rc.list"
		mbsync_run "mbsync-full$sfx"
		mbsync_run "mbsync-delta$sfx"
		if [ "$r" = "$REPEAT" ] && [ "$DO_VERIFY" = 1 ]; then
			say "verifying the mbsync copy"
			python3 "$BENCH/verify.py" "$ACC" --cafile "$LAB_CA" --label mbsync --json "$W/verify-mbsync.json" \
				>"$W/verify-mbsync.txt" 2>&1 || true
		fi
	fi
done
if [ "$DO_RSS64" = 1 ]; then
	wipe_dst
	newdb bench_w64
	imapfleet_run imapfleet-w64 bench_w64 --workers 64 --max-conns-per-host 64
fi
for s in $SWEEP; do
	w=${s%%:*} c=${s##*:}
	wipe_dst
	newdb bench_sweep
	imapfleet_run "sweep-w$w-c$c" bench_sweep --workers "$w" --max-conns-per-host "$c"
done

# --- the report ------------------------------------------------------------------------
echo
python3 "$BENCH/report.py" "$RES" --messages "$NMSG" --bytes "$NBYTES" --users "$USERS" \
	--cores "$(nproc)" --imapfleet-default "$( [ ${#MAINOPTS[@]} = 0 ] && echo default || echo "${MAINOPTS[*]}")" |
	tee "$W/report.txt"
for v in imapfleet mbsync; do
	[ -f "$W/verify-$v.txt" ] && sed 's/^/  /' "$W/verify-$v.txt" | tee -a "$W/report.txt"
done
echo "bench: $(($(date +%s) - T0)) s in all; logs and results in $W" | tee -a "$W/report.txt"
