#!/usr/bin/env bash
# scripts/bench/mbsyncrc.sh ACCOUNTS.csv OUTDIR CAFILE
#
# Writes one mbsync (isync 1.4) configuration per row of an imapfleet accounts.csv into
# OUTDIR/rc/<user1>.rc (mode 0600: passwords inline, so that no PassCmd process is spawned
# and counted), sync state under OUTDIR/state/<user1>/, and prints the rc files, one a line.
#
# Each configuration copies every folder of the source (Far) into the destination (Near):
# Patterns INBOX * (INBOX is not matched by "*"), Create Near, Sync Pull (new messages, flags,
# deletions from far to near), CopyArrivalDate yes (keep INTERNALDATE), Expunge/Remove None,
# IMAPS on both sides verified against CAFILE, unlimited pipelining (the default).
set -euo pipefail
[ $# = 3 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
csv=$1 out=$2 ca=$3
mkdir -p "$out/rc" "$out/state"
chmod 700 "$out" "$out/rc"
tlstype() { case $1 in ssl) echo IMAPS ;; starttls) echo STARTTLS ;; *) echo None ;; esac; }
tail -n +2 "$csv" | while IFS=, read -r h1 p1 u1 pf1 t1 h2 p2 u2 pf2 t2 _; do
	[ -n "$u1" ] || continue
	rc=$out/rc/$u1.rc
	mkdir -p "$out/state/$u1"
	(
		umask 077
		cat >"$rc" <<-RC
			IMAPAccount src
			Host $h1
			Port $p1
			User $u1
			Pass "$(cat "$pf1")"
			SSLType $(tlstype "$t1")
			CertificateFile $ca

			IMAPStore src
			Account src

			IMAPAccount dst
			Host $h2
			Port $p2
			User $u2
			Pass "$(cat "$pf2")"
			SSLType $(tlstype "$t2")
			CertificateFile $ca

			IMAPStore dst
			Account dst

			Channel migrate
			Far :src:
			Near :dst:
			Patterns INBOX *
			Create Near
			Remove None
			Expunge None
			Sync Pull
			CopyArrivalDate yes
			SyncState $out/state/$u1/
		RC
	)
	echo "$rc"
done
