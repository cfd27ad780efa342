#!/bin/sh
# scripts/lab/courier-ns.sh: runs the lab's Courier IMAP inside a private mount namespace.
#
# Started by scripts/lab/servers.sh as `unshare --mount --pid --fork --kill-child sh
# courier-ns.sh ...`. Courier's binaries and libraries have their paths compiled in (/usr/lib/
# courier, /etc/courier, /run/courier/authdaemon/socket), and the Debian package conflicts with
# dovecot-imapd. So the packages are unpacked into a private prefix (never installed), and in
# this namespace only that prefix is laid over /usr, the lab's configuration over /etc and a
# lab directory over /run. Nothing outside the lab changes on the host; every lab has its own
# namespace, so several labs can run side by side.
#
# Usage: courier-ns.sh PREFIX STATEDIR IMAP_PORT IMAPS_PORT ADDRESS
#   STATEDIR holds etc/courier (written by servers.sh: Debian's files, authdaemonrc, userdb,
#   imapd.pem, lab.env), which becomes /etc/courier, and run/, which becomes /run.
#   Runs in the foreground until killed.
set -eu
PFX=$1 ST=$2 LAB_PORT=$3 LAB_SSLPORT=$4 LAB_ADDR=$5

mount -t overlay overlay -o "lowerdir=$PFX/usr:/usr" /usr
mount -t overlay overlay -o "lowerdir=$PFX/etc:/etc" /etc
mount --bind "$ST/etc/courier" /etc/courier
mkdir -p "$ST/run/courier/authdaemon"
mount --bind "$ST/run" /run

cd /etc/courier
/usr/sbin/makeuserdb
# Courier's own scripts read these as shell variable files.
set -a +u
. /etc/courier/imapd
. /etc/courier/imapd-ssl
. /etc/courier/lab.env
set +a -u

/usr/lib/courier/courier-authlib/authdaemond &
/usr/sbin/couriertcpd -address="$LAB_ADDR" -maxprocs=200 -maxperip=100 -nodnslookup -noidentlookup "$LAB_PORT" \
	/usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir &
/usr/sbin/couriertcpd -address="$LAB_ADDR" -maxprocs=200 -maxperip=100 -nodnslookup -noidentlookup "$LAB_SSLPORT" \
	/usr/bin/couriertls -server -tcpd /usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir &
wait
