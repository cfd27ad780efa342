#!/usr/bin/env bash
# scripts/deps.sh: installs the Debian packages imapfleet needs to build, test and run its lab.
# Idempotent and quiet: does nothing when everything is there. Needs root (or sudo) to install.
set -euo pipefail

PACKAGES=(
	build-essential autoconf automake pkg-config   # build
	libssl-dev libpq-dev libcsv-dev zlib1g-dev     # libraries imapfleet links
	libcurl4-openssl-dev libjansson-dev            # OAuth token endpoints (HTTPS, JSON)
	libcmocka-dev                                  # unit tests
	postgresql openssl python3                     # lab: state store, CA, seeding and checks
	dovecot-core dovecot-imapd                     # lab: source and destination IMAP servers
	procps psmisc time                                # pgrep/pkill/fuser for the lab and tests
	isync                                          # mbsync, the peer the benchmark compares with
	chromium                                       # report.sh renders report.html headless
	tmux                                           # progress_tty.sh watches the live display on a terminal
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Cyrus and Courier for the lab: unpacked into a private prefix, never installed (their
# packages conflict with dovecot-imapd); see scripts/lab/servers.sh.
servers() {
	bash "$(dirname "$0")/lab/servers.sh" install ||
		echo "deps: Cyrus/Courier could not be unpacked; the tests that need them will skip" >&2
}
if [ ${#missing[@]} -eq 0 ]; then servers; exit 0; fi

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start system-wide Dovecot/PostgreSQL services: the lab runs its own.
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	policy_added=1
fi
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -n "$policy_added" ] && $SUDO rm -f /usr/sbin/policy-rc.d
servers
exit 0
