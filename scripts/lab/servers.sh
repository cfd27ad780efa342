#!/usr/bin/env bash
# scripts/lab/servers.sh: Cyrus IMAP 3.6 and Courier IMAP 5.0 in the lab, beside its Dovecots.
#
# Sourced by scripts/lab.sh (functions servers_*), or run on its own:
#   servers.sh install     unpack the Debian packages into the private prefix (idempotent)
#   servers.sh check       exit 0 when the prefix is complete, else print why not
#
# Both Debian packages conflict with dovecot-imapd (they all provide imap-server), so they are
# never installed: `apt-get download` fetches the .debs and `dpkg-deb -x` unpacks them, with
# the few libraries they need that Debian does not already have here, into one prefix
# ($IMAPFLEET_SERVERS_PREFIX, default /opt/imapfleet-lab/bookworm as root, else under
# ~/.cache). Nothing is configured on the host, no service is started, no user is created.
#
# Cyrus finds its libraries through LD_LIBRARY_PATH and takes every path from its own
# configuration (-C, -M), so it runs directly, as the lab's mail user. Courier has its paths
# compiled in (/etc/courier, /run/courier/authdaemon, /usr/lib/courier), so it runs in a
# private mount namespace where the prefix is laid over /usr and the lab's files over /etc and
# /run (scripts/lab/courier-ns.sh); that needs root (unshare --mount).

SERVERS_DEBS="cyrus-common cyrus-imapd sasl2-bin courier-base courier-imap courier-authlib
	courier-authdaemon courier-authlib-userdb libltdl7 libidn12 libcourier-unicode4 libgamin0
	libical3 libxapian30 gamin"
if [ "$(id -u)" = 0 ]; then
	SERVERS_PREFIX=${IMAPFLEET_SERVERS_PREFIX:-/opt/imapfleet-lab/bookworm}
else
	SERVERS_PREFIX=${IMAPFLEET_SERVERS_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/imapfleet-lab/bookworm}
fi
SERVERS_LIBPATH=$SERVERS_PREFIX/usr/lib/x86_64-linux-gnu:$SERVERS_PREFIX/usr/lib:$SERVERS_PREFIX/usr/lib/courier-authlib
CYRUS_BIN=$SERVERS_PREFIX/usr/lib/cyrus/bin
# Binaries whose libraries must all resolve for the servers to run.
SERVERS_BINS="usr/lib/cyrus/bin/master usr/lib/cyrus/bin/imapd usr/lib/cyrus/bin/ctl_cyrusdb
	usr/sbin/saslpasswd2 usr/sbin/couriertcpd usr/bin/couriertls usr/bin/imapd
	usr/lib/courier/courier/imaplogin usr/lib/courier/courier-authlib/authdaemond
	usr/lib/courier-authlib/libauthuserdb.so.0 usr/libexec/gam_server"

servers_say() { echo "servers: $*" >&2; }

# servers_check: 0 when the prefix is complete; otherwise prints why (one line) and returns 1.
servers_check() {
	local b missing
	[ -f "$SERVERS_PREFIX/.installed" ] || { echo "not unpacked in $SERVERS_PREFIX (scripts/lab/servers.sh install)"; return 1; }
	for b in $SERVERS_BINS; do
		[ -e "$SERVERS_PREFIX/$b" ] || { echo "$SERVERS_PREFIX/$b is missing"; return 1; }
		missing=$(LD_LIBRARY_PATH=$SERVERS_LIBPATH ldd "$SERVERS_PREFIX/$b" 2>&1 | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
		[ -z "$missing" ] || { echo "$b needs libraries that are not here: $missing"; return 1; }
	done
}

servers_install() {
	local parent tmp deb why
	servers_check >/dev/null && return 0
	parent=$(dirname "$SERVERS_PREFIX")
	mkdir -p "$parent" || return 1
	(
		flock 9
		servers_check >/dev/null && exit 0 # another lab installed it meanwhile
		tmp=$(mktemp -d "$parent/.unpack.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		mkdir "$tmp/debs" "$tmp/root"
		# apt drops to the _apt user for downloads when it can write the directory.
		chmod 777 "$tmp/debs"
		# shellcheck disable=SC2086
		if ! (cd "$tmp/debs" && apt-get download -q $SERVERS_DEBS >"$tmp/apt.log" 2>&1); then
			tail -n 5 "$tmp/apt.log" >&2
			servers_say "could not download the Cyrus/Courier packages (apt-get update first?)"
			exit 1
		fi
		for deb in "$tmp"/debs/*.deb; do
			dpkg-deb -x "$deb" "$tmp/root" || exit 1
			dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$tmp/root/.installed"
		done
		rm -rf "$SERVERS_PREFIX"
		mv "$tmp/root" "$SERVERS_PREFIX"
		chmod 755 "$SERVERS_PREFIX"
	) 9>"$parent/.lock" || return 1
	why=$(servers_check) || { servers_say "$why"; return 1; }
	servers_say "Cyrus and Courier unpacked in $SERVERS_PREFIX"
}

# Whether Courier can run here: it needs a private mount namespace.
courier_possible() {
	[ "$(id -u)" = 0 ] && unshare --mount --propagation private --pid --fork true 2>/dev/null
}

# --- accounts ------------------------------------------------------------------------------
# Passwords live in $SECRETS/cyrus and $SECRETS/courier like the Dovecots'. Cyrus checks them
# in a sasldb of its own, Courier in a userdb (rebuilt inside its namespace).
# (Only the passwords changed since the last write: a process start is slow on a busy machine.)
servers_write_cyrus_users() {
	local f user dir=$RUN/cyrus newer=()
	mkdir -p "$dir"
	[ -f "$dir/sasldb2.stamp" ] && [ -f "$dir/sasldb2" ] && newer=(-newer "$dir/sasldb2.stamp")
	touch "$dir/sasldb2.stamp.new"
	for f in $(find "$SECRETS/cyrus" -type f "${newer[@]}"); do
		user=${f##*/}
		LD_LIBRARY_PATH=$SERVERS_LIBPATH "$SERVERS_PREFIX/usr/sbin/saslpasswd2" \
			-f "$dir/sasldb2" -p -c -u localhost "$user" <"$f"
	done
	mv "$dir/sasldb2.stamp.new" "$dir/sasldb2.stamp"
	chown "$MAIL_USER:" "$dir/sasldb2"
	chmod 600 "$dir/sasldb2"
}

servers_write_courier_users() {
	local f user st=$RUN/courier hash
	mkdir -p "$st/etc/courier"
	if [ -f "$st/etc/courier/userdb" ] && [ -z "$(find "$SECRETS/courier" -type f -newer "$st/etc/courier/userdb")" ]; then
		return 0
	fi
	(umask 077 && : >"$st/etc/courier/userdb.new")
	for f in "$SECRETS/courier"/*; do
		user=${f##*/}
		hash=$(openssl passwd -6 -stdin <"$f")
		printf '%s\tuid=%s|gid=%s|home=%s|mail=%s|systempw=%s\n' "$user" "$MAIL_UID" "$MAIL_GID" \
			"$RUN/mail/courier/$user" "$RUN/mail/courier/$user/Maildir" "$hash" \
			>>"$st/etc/courier/userdb.new"
		if [ ! -d "$RUN/mail/courier/$user/Maildir" ]; then
			mkdir -p "$RUN/mail/courier/$user/Maildir/cur" "$RUN/mail/courier/$user/Maildir/new" \
				"$RUN/mail/courier/$user/Maildir/tmp"
			chown -R "$MAIL_USER:" "$RUN/mail/courier/$user"
		fi
	done
	mv "$st/etc/courier/userdb.new" "$st/etc/courier/userdb"
	# A running Courier reads userdb.dat: rebuild it inside its namespace.
	local pid
	if pid=$(courier_pid); then
		nsenter -t "$(pgrep -P "$pid" | head -n 1)" -m sh -c 'cd /etc/courier && /usr/sbin/makeuserdb' ||
			servers_say "could not rebuild Courier's userdb"
	fi
}

# Cyrus mailboxes are made by its admin: user.NAME for every account, and the quota.
servers_cyrus_mailboxes() {
	local users
	users=$(cd "$SECRETS/cyrus" && ls | grep -vx admin | tr '\n' ' ')
	# shellcheck disable=SC2086
	python3 "$HERE/labutil.py" cyrus-mailboxes "$CYRUS_IMAP" "$SECRETS/cyrus/admin" $users
}

# servers_accounts USER...: password files on cyrus and courier (cyrus also: admin, quotauser).
servers_accounts() {
	local u
	for u in "$@"; do secret cyrus "$u"; secret courier "$u"; done
	secret cyrus admin
	secret cyrus quotauser
	servers_available || return 0
	servers_write_cyrus_users
	[ "$COURIER_OK" = 1 ] && servers_write_courier_users
	if cyrus_pid >/dev/null; then servers_cyrus_mailboxes; fi
	return 0
}

# --- Cyrus -----------------------------------------------------------------------------------
cyrus_pid() {
	local f=$RUN/cyrus/run/master.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_cyrus_conf() {
	local d=$RUN/cyrus c=$LAB_DIR/conf
	mkdir -p "$d/conf" "$d/spool" "$d/sieve" "$d/run" "$c" "$RUN/log"
	install -m 600 "$LAB_DIR/tls/server.key" "$d/tls.key"
	chown -R "$MAIL_USER:" "$d"
	cat >"$c/cyrus-imapd.conf" <<-EOF
		# Cyrus instance of the imapfleet lab, generated by scripts/lab/servers.sh on every "up".
		configdirectory: $d/conf
		partition-default: $d/spool
		sievedir: $d/sieve
		servername: localhost
		admins: admin
		cyrus_user: $MAIL_USER
		cyrus_group: $(id -gn "$MAIL_USER")
		master_pid_file: $d/run/master.pid
		idlesocket: $d/run/idle
		lmtpsocket: $d/run/lmtp
		notifysocket: $d/run/notify
		syslog_prefix: imapfleet-lab-cyrus
		# Passwords from the lab's own sasldb (scripts/lab/servers.sh writes it).
		sasl_pwcheck_method: auxprop
		sasl_auxprop_plugin: sasldb
		sasl_sasldb_path: $d/sasldb2
		sasl_mech_list: PLAIN LOGIN
		allowplaintext: yes
		# The layout the tests want: personal namespace "INBOX.", separator ".".
		altnamespace: no
		unixhierarchysep: no
		specialusealways: yes
		# Cyrus's defaults for 8-bit headers (munge8bit) stay: imapfleet must live with them.
		tls_server_cert: $LAB_DIR/tls/server.pem
		tls_server_key: $d/tls.key
		tls_versions: tls1_2 tls1_3
		quotawarn: 101
		# A lab: what is deleted is gone at once (no DELETED.* hierarchy, no delayed expunge).
		delete_mode: immediate
		expunge_mode: immediate
	EOF
	cat >"$c/cyrus.conf" <<-EOF
		# generated by scripts/lab/servers.sh
		START {
		  recover cmd="$CYRUS_BIN/ctl_cyrusdb -C $c/cyrus-imapd.conf -r"
		}
		SERVICES {
		  imap cmd="$CYRUS_BIN/imapd -C $c/cyrus-imapd.conf" listen="127.0.0.1:$CYRUS_IMAP" prefork=1 maxchild=200
		  imaps cmd="$CYRUS_BIN/imapd -s -C $c/cyrus-imapd.conf" listen="127.0.0.1:$CYRUS_IMAPS" prefork=1 maxchild=200
		}
		EVENTS {
		}
		DAEMON {
		}
	EOF
}

start_cyrus() {
	cyrus_pid >/dev/null && return 0
	write_cyrus_conf
	servers_write_cyrus_users
	# Cyrus logs to syslog only; its stderr at start goes to cyrus.start.log.
	if ! (cd / && LD_LIBRARY_PATH=$SERVERS_LIBPATH "$CYRUS_BIN/master" -C "$LAB_DIR/conf/cyrus-imapd.conf" \
		-M "$LAB_DIR/conf/cyrus.conf" -p "$RUN/cyrus/run/master.pid" -d \
		</dev/null >"$RUN/log/cyrus.start.log" 2>&1); then
		cat "$RUN/log/cyrus.start.log" >&2
		die "Cyrus did not start (config: $LAB_DIR/conf/cyrus-imapd.conf)"
	fi
}

stop_cyrus() {
	local pid i
	pid=$(cyrus_pid) || return 0
	kill -TERM "$pid"
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	servers_say "Cyrus did not stop in 10 s, killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# --- Courier ---------------------------------------------------------------------------------
courier_pid() {
	local f=$RUN/courier/pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_courier_conf() {
	local st=$RUN/courier
	mkdir -p "$st/etc/courier" "$st/run" "$RUN/mail/courier" "$RUN/log"
	cp "$SERVERS_PREFIX/etc/courier/imapd" "$SERVERS_PREFIX/etc/courier/imapd-ssl" "$st/etc/courier/"
	chown "$MAIL_USER:" "$RUN/mail/courier"
	chmod 700 "$RUN/mail/courier"
	cat >"$st/etc/courier/authdaemonrc" <<-EOF
		# generated by scripts/lab/servers.sh
		authmodulelist="authuserdb"
		daemons=3
		authdaemonvar=/run/courier/authdaemon
		DEBUG_LOGIN=0
		DEFAULTOPTIONS=""
		LOGGEROPTS=""
	EOF
	(umask 077 && cat "$LAB_DIR/tls/server.key" "$LAB_DIR/tls/server.pem" >"$st/etc/courier/imapd.pem")
	# Read after Debian's imapd and imapd-ssl (shell variable files).
	cat >"$st/etc/courier/lab.env" <<-EOF
		TLS_CERTFILE=/etc/courier/imapd.pem
		TLS_CACHEFILE=
		TLS_PROTOCOL=TLS1_2
		IMAP_STARTTLS=YES
		# Debian empties Trash of messages older than 7 days at login: not in a test lab.
		IMAP_EMPTYTRASH=
		IMAP_ULIMITD=
	EOF
}

start_courier() {
	courier_pid >/dev/null && return 0
	write_courier_conf
	servers_write_courier_users
	# A PID namespace as well: couriertcpd detaches into sessions of its own, but everything
	# in the namespace dies with its first process, which --kill-child ends with unshare.
	unshare --mount --propagation private --pid --fork --kill-child sh "$HERE/courier-ns.sh" "$SERVERS_PREFIX" \
		"$RUN/courier" "$COURIER_IMAP" "$COURIER_IMAPS" 127.0.0.1 \
		</dev/null >"$RUN/log/courier.log" 2>&1 &
	echo $! >"$RUN/courier/pid"
}

stop_courier() {
	local pid i
	pid=$(courier_pid) || return 0
	kill -TERM "$pid"
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$RUN/courier/pid"; return 0; }
		sleep 0.1
	done
	servers_say "Courier did not stop in 10 s, killing it"
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$RUN/courier/pid"
}

# --- lab hooks -------------------------------------------------------------------------------
# servers_available: the prefix is complete (sets COURIER_OK: Courier can also run here).
servers_available() {
	COURIER_OK=0
	servers_check >/dev/null || return 1
	courier_possible && COURIER_OK=1
	return 0
}

# servers_ports: the lab's Cyrus/Courier ports, picked once and kept in lab.conf.
servers_ports() {
	[ -n "${CYRUS_IMAP:-}" ] && return 0
	read -r CYRUS_IMAP CYRUS_IMAPS COURIER_IMAP COURIER_IMAPS <<<"$(python3 "$HERE/labutil.py" ports 4)"
	printf 'CYRUS_IMAP=%s CYRUS_IMAPS=%s\nCOURIER_IMAP=%s COURIER_IMAPS=%s\n' \
		"$CYRUS_IMAP" "$CYRUS_IMAPS" "$COURIER_IMAP" "$COURIER_IMAPS" >>"$CONF"
}

# servers_up: install if needed, start what can run; never fails the lab (the tests skip).
servers_up() {
	local why
	SERVERS_UP=""
	if ! servers_available; then
		servers_install >"$RUN/log/servers-install.log" 2>&1 || true
		if ! servers_available; then
			why=$(servers_check)
			servers_say "Cyrus and Courier not started: $why"
			echo "$why" >"$RUN/servers.why"
			return 0
		fi
	fi
	rm -f "$RUN/servers.why"
	servers_ports
	start_cyrus
	[ "$COURIER_OK" = 1 ] && start_courier
	if ! python3 "$HERE/labutil.py" wait-imap "$CYRUS_IMAP" 15; then
		die "Cyrus does not answer on 127.0.0.1:$CYRUS_IMAP (config: $LAB_DIR/conf/cyrus-imapd.conf)"
	fi
	servers_cyrus_mailboxes
	SERVERS_UP="cyrus"
	if [ "$COURIER_OK" = 1 ]; then
		if ! python3 "$HERE/labutil.py" wait-imap "$COURIER_IMAP" 15; then
			tail -n 20 "$RUN/log/courier.log" >&2
			die "Courier does not answer on 127.0.0.1:$COURIER_IMAP (log: $RUN/log/courier.log)"
		fi
		SERVERS_UP="cyrus courier"
	else
		echo "Courier needs root and a private mount namespace (unshare --mount)" >"$RUN/servers.why"
		servers_say "Courier not started: it needs root and unshare --mount"
	fi
}

servers_down() {
	stop_cyrus
	stop_courier
}

# servers_env: lines for lab.env (only for the servers that run).
servers_env() {
	if cyrus_pid >/dev/null; then
		q LAB_CYRUS_IMAP "$CYRUS_IMAP"
		q LAB_CYRUS_IMAPS "$CYRUS_IMAPS"
	fi
	if courier_pid >/dev/null; then
		q LAB_COURIER_IMAP "$COURIER_IMAP"
		q LAB_COURIER_IMAPS "$COURIER_IMAPS"
	fi
	[ -f "$RUN/servers.why" ] && q LAB_SERVERS_WHY "$(cat "$RUN/servers.why")"
	return 0
}

servers_status() {
	local ca=$LAB_DIR/tls/ca.pem name pid port ports bad=0
	for name in cyrus courier; do
		if [ -z "${CYRUS_IMAP:-}" ] || { [ "$name" = courier ] && ! courier_possible; }; then
			printf '%-9s absent (%s)\n' "$name" "$(cat "$RUN/servers.why" 2>/dev/null || echo 'not installed')"
			continue
		fi
		port=$(port_of "$name" imap)
		ports=$(port_of "$name" imaps)
		if pid=$("${name}_pid") && python3 "$HERE/labutil.py" probe-imap "$port" &&
			python3 "$HERE/labutil.py" probe-imap "$ports" "$ca"; then
			printf '%-9s up    pid %s imap 127.0.0.1:%s imaps 127.0.0.1:%s\n' "$name" "$pid" "$port" "$ports"
		else
			printf '%-9s DOWN\n' "$name"
			bad=1
		fi
	done
	return $bad
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case "${1:-}" in
	install) servers_install ;;
	check) servers_check ;;
	*) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
fi
