#!/usr/bin/env bash
# scripts/lab.sh: a throwaway mail lab on loopback for imapfleet's tests and benchmark.
#
# One PostgreSQL 15 and three Dovecot instances (src, dst, legacy) with a generated CA, all
# state under $LAB_DIR (default <repo>/.lab); beside them Cyrus and Courier (cyrus, courier)
# when they can be unpacked (scripts/lab/servers.sh). See docs/lab.md.
#
#   lab.sh up                      create (first time) and start everything, print the env
#   lab.sh down [--purge]          stop everything; --purge also deletes the lab directory
#   lab.sh status                  what runs and answers; non-zero exit if anything is down
#   lab.sh env                     print the shell-sourceable lab variables
#   lab.sh seed [--users N] [--messages M] [--big]
#                                  fill the source accounts (src, legacy) with a test corpus
#   lab.sh wipe SIDE [USER...]     empty accounts of one side (src, dst, legacy, cyrus, courier;
#                                  default all)
#   lab.sh accounts [N]            write accounts.csv and file.txt for user01..userN
#   lab.sh add-account NAME        add an account (all three sides, random passwords)
#   lab.sh restart-dovecot NAME    restart one Dovecot (src, dst or legacy)
#   lab.sh restart-pg              restart PostgreSQL
#   lab.sh stop-pg | start-pg      stop PostgreSQL (an outage), start it again
#   lab.sh stop-dovecot NAME       stop one Dovecot (an outage, for fault tests)
#   lab.sh start-dovecot NAME      start it again; returns once it answers
#
# LAB_COMPRESS=0 at "up" (or a Dovecot restart) leaves COMPRESS=DEFLATE out of src's and dst's
# capabilities: the benchmark's default, because mbsync 1.4 compresses whenever it is offered.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HERE=$REPO/scripts/lab
LAB_DIR=${LAB_DIR:-$REPO/.lab}
# PostgreSQL binaries: $PGBIN, else Debian's 15 (or newest), else pg_config's.
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGBIN/initdb" ]; then
	PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	[ -x "$PGBIN/initdb" ] || PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/bin)
fi
DOVECOT=${DOVECOT:-$(command -v dovecot || echo /usr/sbin/dovecot)}
SIDES="src dst legacy"
# A caller may ask for more users than the lab has (LAB_USERS=40 scripts/test.sh after a
# 24-user demo): remember the request before lab.conf overrides the variable.
REQ_USERS=${LAB_USERS:-}
[[ "$REQ_USERS" =~ ^[0-9]+$ ]] || REQ_USERS=0
QUOTA_RULE='*:storage=2M'

die() { echo "lab: $*" >&2; exit 1; }
say() { echo "lab: $*" >&2; }
quiet() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }

# --- who runs what ---------------------------------------------------------------------
# As root: Dovecot's master runs as root, mail belongs to "nobody", PostgreSQL runs as
# "postgres" (or "nobody"). Otherwise everything runs as the invoking user.
if [ "$(id -u)" = 0 ]; then
	ROOT=1
	MAIL_USER=nobody
	PG_USER=postgres
	id -u "$PG_USER" >/dev/null 2>&1 || PG_USER=nobody
	AUTH_GROUP=$(id -gn dovecot 2>/dev/null || echo root)   # Dovecot's auth process group
else
	ROOT=0
	MAIL_USER=$(id -un)
	PG_USER=$MAIL_USER
	AUTH_GROUP=$(id -gn)
fi
MAIL_UID=$(id -u "$MAIL_USER")
MAIL_GID=$(id -g "$MAIL_USER")

as_pg() { # run a command as the PostgreSQL user, from a directory it can enter
	if [ "$ROOT" = 1 ]; then (cd / && runuser -u "$PG_USER" -- "$@"); else (cd / && "$@"); fi
}

# --- lab layout ------------------------------------------------------------------------
[ "${1:-}" = up ] && mkdir -p "$LAB_DIR"
if [ -d "$LAB_DIR" ]; then LAB_DIR=$(cd "$LAB_DIR" && pwd -P); fi
case $LAB_DIR in /*) ;; *) LAB_DIR=$PWD/$LAB_DIR ;; esac
CONF=$LAB_DIR/lab.conf       # persistent settings (ports, users); survives "down"
ENVF=$LAB_DIR/lab.env        # exported variables; exists only while the lab is up
SECRETS=$LAB_DIR/secrets
RUN=$LAB_DIR/run             # server state; may be a symlink to /tmp (see setup_run)
[ -e "$RUN" ] && RUN=$(cd "$RUN" && pwd -P)

# The servers' unprivileged users must reach $RUN, and Unix socket paths are limited to
# 107 bytes. When $LAB_DIR is too deep or not traversable (a clone under /root), the server
# state goes to a /tmp directory that $LAB_DIR/run points to; "down --purge" removes it.
setup_run() {
	local u ok=1
	if [ "${#LAB_DIR}" -gt 64 ]; then ok=0; fi
	if [ "$ROOT" = 1 ]; then
		for u in "$MAIL_USER" "$PG_USER" dovecot; do
			id -u "$u" >/dev/null 2>&1 || continue
			runuser -u "$u" -- test -x "$LAB_DIR" 2>/dev/null || ok=0
		done
	fi
	if [ "$ok" = 1 ]; then
		mkdir -p "$LAB_DIR/run"
	else
		ln -s "$(mktemp -d /tmp/imapfleet-lab.XXXXXX)" "$LAB_DIR/run"
		say "server state in $(readlink "$LAB_DIR/run") ($LAB_DIR is too deep or not world-traversable)"
	fi
	chmod 755 "$LAB_DIR/run/"
	RUN=$(cd "$LAB_DIR/run" && pwd -P)
}

load_conf() {
	[ -f "$CONF" ] || die "no lab in $LAB_DIR (scripts/lab.sh up)"
	# shellcheck source=/dev/null
	. "$CONF"
	# The lab never shrinks; a larger request raises the count (ensure_accounts records it).
	[ "$REQ_USERS" -gt "$LAB_USERS" ] && LAB_USERS=$REQ_USERS
	return 0
}

conf_users() { sed -n 's/^LAB_USERS=\([0-9]*\).*/\1/p' "$CONF" 2>/dev/null | head -n 1; }

port_of() { # port_of src imaps
	local v
	v=$(echo "$1_$2" | tr '[:lower:]' '[:upper:]')
	echo "${!v}"
}

# --- TLS -------------------------------------------------------------------------------
make_tls() {
	local d=$LAB_DIR/tls
	mkdir -p "$d"
	(
		cd "$d"
		umask 077
		quiet openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
			-subj "/CN=imapfleet lab CA" -keyout ca.key -out ca.pem \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
		quiet openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key \
			-out server.csr
		sign() { # sign NAME DAYS SAN
			printf '%s\n' "subjectAltName=$3" "basicConstraints=CA:FALSE" \
				"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
				"subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >"$1.ext"
			quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -sha256 -days "$2" \
				-set_serial "0x$(openssl rand -hex 12)" -extfile "$1.ext" -out "$1.pem"
			rm -f "$1.ext"
		}
		sign server 825 "DNS:localhost,IP:127.0.0.1,IP:::1,IP:127.0.0.2"
		# For tests against a scripted server (all use server.key): a wrong host name, an
		# expired certificate, a self-signed one.
		sign wrongname 825 "DNS:wrong.example.invalid"
		sign expired -1 "DNS:localhost,IP:127.0.0.1"
		quiet openssl req -x509 -key server.key -sha256 -days 825 -subj "/CN=localhost" \
			-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out selfsigned.pem
		rm -f server.csr
		chmod 644 ./*.pem
	)
}

# --- accounts --------------------------------------------------------------------------
new_password() {
	local pw=""
	while [ "${#pw}" -lt 16 ]; do
		pw=$(head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | cut -c1-16)
	done
	echo "Lp-$pw"
}

secret() { # secret SIDE USER: create the password file if missing
	local f=$SECRETS/$1/$2
	[ -s "$f" ] && return
	(umask 077 && mkdir -p "$SECRETS/$1" && new_password | tr -d '\n' >"$f")
}

# Regenerate one instance's passwd-file (and master-users on dst) from secrets/<side>/.
write_passwd() {
	local side=$1 dir=$RUN/$1 f user extra
	mkdir -p "$dir"
	: >"$dir/passwd.new"
	for f in "$SECRETS/$side"/*; do
		user=${f##*/}
		[ "$side/$user" = dst/admin ] && continue
		extra=""
		[ "$side/$user" = dst/quotauser ] && extra="userdb_quota_rule=$QUOTA_RULE"
		printf '%s:{PLAIN}%s:%s:%s::%s::%s\n' "$user" "$(cat "$f")" "$MAIL_UID" "$MAIL_GID" \
			"$RUN/mail/$side/$user" "$extra" >>"$dir/passwd.new"
	done
	if [ "$side" = dst ]; then
		printf 'admin:{PLAIN}%s\n' "$(cat "$SECRETS/dst/admin")" >"$dir/master-users"
		chgrp "$AUTH_GROUP" "$dir/master-users"
		chmod 640 "$dir/master-users"
	fi
	chgrp "$AUTH_GROUP" "$dir/passwd.new"
	chmod 640 "$dir/passwd.new"
	mv "$dir/passwd.new" "$dir/passwd" # Dovecot rereads a passwd-file when it changes
}

# ensure_accounts N: user01..userN on every side, quotauser on src and dst, admin on dst.
ensure_accounts() {
	local n=$1 i side
	for side in $SIDES; do
		for i in $(seq 1 "$n"); do secret "$side" "$(printf 'user%02d' "$i")"; done
	done
	secret src quotauser
	secret dst quotauser
	secret dst admin
	for side in $SIDES; do write_passwd "$side"; done
	# shellcheck disable=SC2046
	servers_accounts $(for i in $(seq 1 "$n"); do printf 'user%02d ' "$i"; done)
	[ "$n" -gt "${LAB_USERS:-0}" ] && LAB_USERS=$n
	# Record the count in lab.conf (compared with the file, not the variable, which a request
	# may already have raised), so a later "seed" without --users seeds them all.
	if [ -f "$CONF" ] && [ "$LAB_USERS" -gt "$(conf_users || echo 0)" ]; then
		sed -i "s/^LAB_USERS=.*/LAB_USERS=$LAB_USERS/" "$CONF"
		say "lab raised to $LAB_USERS users (user01..user$(printf '%02d' "$LAB_USERS"))"
	fi
	return 0
}

# --- PostgreSQL ------------------------------------------------------------------------
psql_super() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN/pgsock" -p "$PG_PORT" -U postgres -d postgres
}

pg_running() {
	[ -f "$RUN/pg/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" status >/dev/null 2>&1
}

init_pg() {
	mkdir -p "$RUN/pg" "$RUN/pgsock" "$RUN/log"
	touch "$RUN/log/postgres.log"
	chown "$PG_USER" "$RUN/pg" "$RUN/pgsock" "$RUN/log/postgres.log"
	chmod 700 "$RUN/pg"
	as_pg "$PGBIN/initdb" -D "$RUN/pg" -U postgres -E UTF8 --no-locale --no-sync \
		--auth-local=trust --auth-host=scram-sha-256 >"$RUN/log/initdb.log" 2>&1 ||
		{ tail -n 20 "$RUN/log/initdb.log" >&2; die "initdb failed"; }
	cat >>"$RUN/pg/postgresql.conf" <<-EOF

		# imapfleet lab
		listen_addresses = '127.0.0.1'
		port = $PG_PORT
		unix_socket_directories = '$RUN/pgsock'
		max_connections = 200
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF
	start_pg
	secret pg postgres
	secret pg imapfleet
	psql_super <<-EOF
		ALTER ROLE postgres PASSWORD '$(cat "$SECRETS/pg/postgres")';
		CREATE ROLE imapfleet LOGIN CREATEDB PASSWORD '$(cat "$SECRETS/pg/imapfleet")';
		CREATE DATABASE imapfleet OWNER imapfleet;
	EOF
}

start_pg() {
	pg_running && return 0
	if ! as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" -l "$RUN/log/postgres.log" -w -t 30 -s start \
		</dev/null; then
		tail -n 30 "$RUN/log/postgres.log" >&2
		die "PostgreSQL did not start (log: $RUN/log/postgres.log)"
	fi
	"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 10 ||
		die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT"
}

stop_pg() {
	pg_running || return 0
	as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" -m fast -w -t 30 -s stop
}

# --- Dovecot ---------------------------------------------------------------------------
write_dovecot_conf() {
	local side=$1 parts plugins="" imap_plugins="" location="maildir:~/Maildir:LAYOUT=fs"
	parts="common"
	case $side in
	src) parts="$parts ns-slash" imap_plugins="imap_zlib" ;;
	dst) parts="$parts ns-slash quota master oauth" plugins="quota" imap_plugins="imap_quota imap_zlib" ;;
	legacy) parts="$parts ns-courier" location="maildir:~/Maildir" ;;
	esac
	[ "${LAB_COMPRESS:-1}" = 0 ] && imap_plugins=${imap_plugins//imap_zlib/}
	[ "$ROOT" = 1 ] || parts="$parts nonroot"
	mkdir -p "$LAB_DIR/conf" "$RUN/$side/state" "$RUN/mail/$side" "$RUN/log"
	chown "$MAIL_USER:" "$RUN/mail/$side"
	chmod 700 "$RUN/mail/$side"
	local p
	for p in $parts; do
		python3 "$HERE/labutil.py" render "$HERE/dovecot-$p.conf.in" NAME="$side" \
			INSTANCE="imapfleet-lab-$side" RUN="$RUN" LAB_DIR="$LAB_DIR" LISTEN="$LISTEN" \
			IMAP_PORT="$(port_of "$side" imap)" IMAPS_PORT="$(port_of "$side" imaps)" \
			MAIL_UID="$MAIL_UID" MAIL_LOCATION="$location" MAIL_PLUGINS="$plugins" \
			IMAP_PLUGINS="$imap_plugins" RUN_USER="$(id -un)" RUN_GROUP="$(id -gn)"
	done >"$LAB_DIR/conf/$side.conf"
	if [ "$side" = dst ]; then
		ensure_token_port
		python3 "$HERE/labutil.py" render "$HERE/oauth2.conf.ext.in" TOKEN_PORT="$TOKEN_PORT" \
			LAB_DIR="$LAB_DIR" >"$RUN/dst/oauth2.conf.ext"
		chmod 644 "$RUN/dst/oauth2.conf.ext"
	fi
}

# The port of the tests' OAuth token service (tests/tools/tokenservice.py), which dst's passdb
# oauth2 asks; labs made before it existed get one on their next "up".
ensure_token_port() {
	[ -n "${TOKEN_PORT:-}" ] && return 0
	TOKEN_PORT=$(python3 "$HERE/labutil.py" ports 1)
	echo "TOKEN_PORT=$TOKEN_PORT" >>"$CONF"
}

dovecot_pid() { # prints the master pid if that instance runs
	local f=$RUN/$1/base/master.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_dovecot() {
	local side=$1 log=$RUN/log/$1.log
	dovecot_pid "$side" >/dev/null && return 0
	# The master keeps the stderr it was started with: never hand it the caller's pipe.
	if ! "$DOVECOT" -c "$LAB_DIR/conf/$side.conf" </dev/null >"$RUN/log/$side.start.log" 2>&1; then
		cat "$RUN/log/$side.start.log" >&2
		[ -f "$log" ] && tail -n 10 "$log" >&2
		die "Dovecot $side did not start (config: $LAB_DIR/conf/$side.conf)"
	fi
}

wait_dovecot() {
	local side=$1 log=$RUN/log/$1.log
	if ! python3 "$HERE/labutil.py" wait-imap "$(port_of "$side" imap)" 15; then
		tail -n 30 "$log" >&2
		die "Dovecot $side does not answer on 127.0.0.1:$(port_of "$side" imap) (log: $log)"
	fi
}

any_alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

stop_dovecot() { # stop_dovecot NAME...: TERM all masters at once (each takes ~3 s to exit)
	local side pid pids="" i
	for side in "$@"; do
		pid=$(dovecot_pid "$side") || continue
		pids="$pids $pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"
		kill -TERM "$pid"
	done
	[ -n "$pids" ] || return 0
	for i in $(seq 100); do
		# shellcheck disable=SC2086
		any_alive $pids || return 0
		sleep 0.1
	done
	say "Dovecot ($*) did not stop in 10 s, killing it"
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
}

# --- Cyrus and Courier -----------------------------------------------------------------
# shellcheck source=lab/servers.sh
. "$HERE/servers.sh"

# --- whole lab -------------------------------------------------------------------------
lab_procs() { # this lab's Dovecot masters and postmaster, if any still run
	local re
	re=$(printf 'dovecot -c %s/conf/|postgres -D %s/pg' "$LAB_DIR" "$RUN" |
		sed 's/[][\.*^$+?(){}]/\\&/g')
	pgrep -af -- "$re" || true
}

stop_all() {
	# shellcheck disable=SC2086
	stop_dovecot $SIDES
	servers_down
	stop_pg
	rm -f "$ENVF"
}

write_env() {
	q() { printf "export %s='%s'\n" "$1" "$(printf '%s' "$2" | sed "s/'/'\\\\''/g")"; }
	{
		q LAB_DIR "$LAB_DIR"
		q LAB_CA "$LAB_DIR/tls/ca.pem"
		q LAB_HOST localhost
		for side in $SIDES; do
			q "LAB_$(echo "$side" | tr '[:lower:]' '[:upper:]')_IMAPS" "$(port_of "$side" imaps)"
			q "LAB_$(echo "$side" | tr '[:lower:]' '[:upper:]')_IMAP" "$(port_of "$side" imap)"
		done
		q LAB_PG_PORT "$PG_PORT"
		q LAB_TOKEN_PORT "$TOKEN_PORT"
		q LAB_PG_SOCKDIR "$RUN/pgsock"
		q LAB_PG_URL "postgresql://imapfleet:$(cat "$SECRETS/pg/imapfleet")@127.0.0.1:$PG_PORT/imapfleet"
		q LAB_PG_SUPER_URL "postgresql://postgres:$(cat "$SECRETS/pg/postgres")@127.0.0.1:$PG_PORT/postgres"
		q LAB_USERS "$LAB_USERS"
		q LAB_SECRETS "$SECRETS"
		q LAB_LOGS "$RUN/log"
		case " $LISTEN " in *" 127.0.0.2,"* | *" 127.0.0.2 "*) q LAB_HOST_NONLOCAL 127.0.0.2 ;; esac
		servers_env
	} >"$ENVF.new"
	mv "$ENVF.new" "$ENVF"
}

create_lab() {
	# Leftovers of an "up" that failed half-way: stop and remove them.
	stop_all
	[ -L "$LAB_DIR/run" ] && rm -rf "$(readlink "$LAB_DIR/run")"
	rm -rf "$LAB_DIR/run" "$LAB_DIR/tls" "$SECRETS" "$LAB_DIR/conf"
	setup_run
	LISTEN=$(python3 "$HERE/labutil.py" addrs | sed 's/ /, /g')
	local ports
	ports=$(python3 "$HERE/labutil.py" ports 7) || die "no free ports for the lab"
	read -r SRC_IMAP SRC_IMAPS DST_IMAP DST_IMAPS LEGACY_IMAP LEGACY_IMAPS PG_PORT <<<"$ports"
	make_tls
	LAB_USERS=${LAB_USERS:-12}
	init_pg
	cat >"$CONF.new" <<-EOF
		# imapfleet lab settings, written once by "scripts/lab.sh up"
		LAB_USERS=$LAB_USERS
		LISTEN='$LISTEN'
		SRC_IMAP=$SRC_IMAP SRC_IMAPS=$SRC_IMAPS
		DST_IMAP=$DST_IMAP DST_IMAPS=$DST_IMAPS
		LEGACY_IMAP=$LEGACY_IMAP LEGACY_IMAPS=$LEGACY_IMAPS
		PG_PORT=$PG_PORT
	EOF
	mv "$CONF.new" "$CONF"
}

cmd_up() {
	local side
	if [ -f "$ENVF" ] && cmd_status >/dev/null 2>&1; then
		# cmd_status loaded lab.conf, raised to the requested count if larger.
		ensure_accounts "$LAB_USERS"
		write_env
		cat "$ENVF"
		return 0
	fi
	trap 'say "up failed, stopping the lab (logs: $RUN/log)"; stop_all' EXIT
	[ -f "$CONF" ] || create_lab
	load_conf
	ensure_accounts "$LAB_USERS"
	ensure_token_port
	start_pg
	for side in $SIDES; do write_dovecot_conf "$side" && start_dovecot "$side"; done
	for side in $SIDES; do wait_dovecot "$side"; done
	servers_up
	write_env
	trap - EXIT
	cat "$ENVF"
}

cmd_down() {
	local left
	stop_all
	left=$(lab_procs)
	[ -z "$left" ] || die "processes of this lab still run:"$'\n'"$left"
	if [ "${1:-}" = --purge ]; then
		[ -L "$LAB_DIR/run" ] && rm -rf "$(readlink "$LAB_DIR/run")"
		rm -rf "$LAB_DIR"
		say "stopped, $LAB_DIR removed"
	else
		say "stopped (data kept in $LAB_DIR; --purge removes it)"
	fi
}

cmd_status() {
	local side pid bad=0 ca=$LAB_DIR/tls/ca.pem
	load_conf
	if pg_running && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 3; then
		printf '%-9s up    127.0.0.1:%s socket %s\n' postgres "$PG_PORT" "$RUN/pgsock"
	else
		printf '%-9s DOWN\n' postgres
		bad=1
	fi
	for side in $SIDES; do
		if pid=$(dovecot_pid "$side") &&
			python3 "$HERE/labutil.py" probe-imap "$(port_of "$side" imap)" &&
			python3 "$HERE/labutil.py" probe-imap "$(port_of "$side" imaps)" "$ca"; then
			printf '%-9s up    pid %s imap 127.0.0.1:%s imaps 127.0.0.1:%s\n' "$side" "$pid" \
				"$(port_of "$side" imap)" "$(port_of "$side" imaps)"
		else
			printf '%-9s DOWN  (log: %s)\n' "$side" "$RUN/log/$side.log"
			bad=1
		fi
	done
	servers_status || bad=1
	return $bad
}

require_up() {
	load_conf
	[ -f "$ENVF" ] || die "the lab is not up (scripts/lab.sh up)"
}

cmd_seed() {
	local users=$LAB_USERS
	local args=("$@") i
	for ((i = 0; i < ${#args[@]}; i++)); do
		[ "${args[i]}" = --users ] && users=${args[i + 1]:-}
	done
	[[ "$users" =~ ^[0-9]+$ ]] || die "seed: --users needs a number"
	ensure_accounts "$users"
	write_env
	(
		# shellcheck source=/dev/null
		. "$ENVF"
		python3 "$HERE/seed.py" --users "$users" "$@"
	)
}

cmd_accounts() {
	local n=${1:-$LAB_USERS} i u csv=$LAB_DIR/accounts.csv txt=$LAB_DIR/file.txt
	[[ "$n" =~ ^[0-9]+$ ]] || die "accounts: N must be a number"
	ensure_accounts "$n"
	write_env
	echo "host1,port1,user1,passfile1,tls1,host2,port2,user2,passfile2,tls2" >"$csv"
	(umask 077 && : >"$txt")
	for i in $(seq 1 "$n"); do
		u=$(printf 'user%02d' "$i")
		echo "localhost,$SRC_IMAPS,$u,$SECRETS/src/$u,ssl,localhost,$DST_IMAPS,$u,$SECRETS/dst/$u,ssl" \
			>>"$csv"
		printf 'localhost;%s;%s;localhost;%s;%s;\n' "$u" "$(cat "$SECRETS/src/$u")" \
			"$u" "$(cat "$SECRETS/dst/$u")" >>"$txt"
	done
	echo "$csv"
	echo "$txt"
}

cmd_add_account() {
	local name=${1:-} side
	[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "add-account: give a name of letters, digits, . _ -"
	for side in $SIDES; do secret "$side" "$name"; done
	ensure_accounts "$LAB_USERS"
	servers_accounts "$name"
	for side in $SIDES; do echo "$SECRETS/$side/$name"; done
}

case "${1:-}" in
up) cmd_up ;;
down) shift; cmd_down "$@" ;;
status) cmd_status ;;
env) require_up; cat "$ENVF" ;;
seed) shift; require_up; cmd_seed "$@" ;;
wipe)
	shift; require_up
	side=${1:-}; shift || true
	case $side in src | dst | legacy | cyrus | courier) ;; *) die "wipe: name src, dst, legacy, cyrus or courier" ;; esac
	# shellcheck source=/dev/null
	(. "$ENVF" && python3 "$HERE/seed.py" --wipe "$side" "$@")
	;;
accounts) shift; require_up; cmd_accounts "$@" ;;
add-account) shift; load_conf; cmd_add_account "$@" ;;
restart-dovecot)
	require_up
	case ${2:-} in src | dst | legacy) ;; *) die "restart-dovecot: name src, dst or legacy" ;; esac
	stop_dovecot "$2"; write_dovecot_conf "$2"; start_dovecot "$2"; wait_dovecot "$2"
	say "Dovecot $2 restarted"
	;;
restart-pg) require_up; stop_pg; start_pg; say "PostgreSQL restarted" ;;
stop-pg) require_up; stop_pg; say "PostgreSQL stopped" ;;
start-pg) require_up; start_pg; say "PostgreSQL started" ;;
stop-dovecot)
	require_up
	case ${2:-} in src | dst | legacy) ;; *) die "stop-dovecot: name src, dst or legacy" ;; esac
	stop_dovecot "$2"
	say "Dovecot $2 stopped"
	;;
start-dovecot)
	require_up
	case ${2:-} in src | dst | legacy) ;; *) die "start-dovecot: name src, dst or legacy" ;; esac
	write_dovecot_conf "$2"; start_dovecot "$2"; wait_dovecot "$2"
	say "Dovecot $2 started"
	;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
