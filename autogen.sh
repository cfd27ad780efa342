#!/bin/sh
# Generates ./configure. Needs autoconf, automake and pkg-config (Debian: autoconf automake pkg-config).
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf --install --force
# automake's TAP driver runs our unit (cmocka) and integration (shell) tests.
for d in /usr/share/automake-*; do
	if [ -f "$d/tap-driver.sh" ]; then cp "$d/tap-driver.sh" build-aux/; break; fi
done
[ -f build-aux/tap-driver.sh ] || { echo "autogen.sh: tap-driver.sh not found (install automake)" >&2; exit 1; }
