#!/usr/bin/env bash
# scripts/bench/profile.sh LAB_DIR [N] [perf|callgrind]: where imapfleet's client CPU goes.
#
# Empties the destination of user01..userN (default 8) on the lab in LAB_DIR (a benchmark lab,
# never the shared .lab: it wipes), then runs `imapfleet run` on those accounts with a fresh state
# database under perf (software cpu-clock sampling with DWARF call graphs: no hardware counters are
# needed, so it works in VMs) or valgrind's callgrind, and prints the top functions by self
# time and by inclusive time. Output files stay in $OUT (default /tmp/imapfleet-profile).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
LAB_DIR=$(cd "${1:?usage: profile.sh LAB_DIR [N] [perf|callgrind]}" && pwd -P)
N=${2:-8} TOOL=${3:-perf} OUT=${OUT:-/tmp/imapfleet-profile}
BIN=${IMAPFLEET:-$REPO/build-bench/imapfleet}
[ "$LAB_DIR" != "$REPO/.lab" ] || { echo "profile: not on the shared lab" >&2; exit 1; }
export LAB_DIR
# shellcheck source=/dev/null
. "$LAB_DIR/lab.env"
mkdir -p "$OUT"
ACC=$OUT/accounts.csv
echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2" >"$ACC"
users=""
for i in $(seq 1 "$N"); do
	u=$(printf 'user%02d' "$i") users="$users $u"
	echo "localhost,$LAB_SRC_IMAPS,$u,$LAB_SECRETS/src/$u,ssl,localhost,$LAB_DST_IMAPS,$u,$LAB_SECRETS/dst/$u,ssl" >>"$ACC"
done
# shellcheck disable=SC2086
"$REPO/scripts/lab.sh" wipe dst $users >/dev/null
psql -X -q "$LAB_PG_SUPER_URL" -c "drop database if exists bench_profile" 2>/dev/null
psql -X -q "$LAB_PG_SUPER_URL" -c "create database bench_profile owner imapfleet"
run=("$BIN" run "$ACC" --state "${LAB_PG_URL%/imapfleet}/bench_profile" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" --no-progress)
cd "$OUT"
case $TOOL in
perf)
	perf record -q -e cpu-clock -F 1999 --call-graph dwarf,16384 -o "$OUT/perf.data" -- "${run[@]}" >"$OUT/run.log" 2>&1
	tail -n 1 "$OUT/run.log"
	echo "== self time (top 40) =="
	perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
	echo "== inclusive time (top 40) =="
	perf report -i "$OUT/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
	;;
callgrind)
	valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "${run[@]}" >"$OUT/run.log" 2>&1
	tail -n 1 "$OUT/run.log"
	callgrind_annotate --inclusive=no "$OUT/callgrind.out" | head -60
	;;
*) echo "profile: perf or callgrind" >&2; exit 2 ;;
esac
psql -X -q "$LAB_PG_SUPER_URL" -c "drop database if exists bench_profile" 2>/dev/null
