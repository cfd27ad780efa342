#!/usr/bin/env bash
# scripts/build.sh [BUILD_DIR] [configure flags...]: configures (once) and builds out of tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/build}
shift || true
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh >/dev/null 2>&1
mkdir -p "$builddir"
cd "$builddir"
flags="$*"
if [ ! -f Makefile ] || [ "$(cat .configure-flags 2>/dev/null)" != "$flags" ]; then
	# shellcheck disable=SC2086
	"$top/configure" $flags >configure.out 2>&1 || { tail -n 30 configure.out >&2; exit 1; }
	echo "$flags" >.configure-flags
fi
make -j"$(nproc)" >make.out 2>&1 || { grep -E 'error|Error' make.out | head -n 40 >&2; exit 1; }
echo "build: ok in $builddir"
