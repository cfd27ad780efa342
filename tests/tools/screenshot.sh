#!/bin/sh
# tests/tools/screenshot.sh: renders a local HTML file in headless Chromium.
#
#   screenshot.sh [--size WxH] [--fragment F] PAGE.html PNG [DOM.html]
#
# Writes a PNG screenshot of the page and, when a third argument is given, the DOM as it stands
# after the page's scripts ran (--dump-dom), so tests can check what a reader would see.
# --fragment appends "#F" to the file URL (report.html reads "#sort=-copied").
# Chromium runs with a throwaway profile, no sandbox (containers), no GPU, and every background
# network feature off. Exit status: 0 done, 1 Chromium failed, 2 usage, 77 Chromium missing.
set -u
size=1280,1600
frag=
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$(printf '%s' "$2" | tr x ,); shift 2 ;;
	--fragment) frag=$2; shift 2 ;;
	--) shift; break ;;
	-*) echo "screenshot.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || { echo "usage: screenshot.sh [--size WxH] [--fragment F] PAGE.html PNG [DOM.html]" >&2; exit 2; }
page=$1 png=$2 dom=${3:-}
browser=
for b in chromium chromium-browser google-chrome; do
	if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
[ -n "$browser" ] || { echo "screenshot.sh: chromium is not installed (Debian package chromium)" >&2; exit 77; }
case $page in /*) ;; *) page=$(pwd)/$page ;; esac
case $png in /*) ;; *) png=$(pwd)/$png ;; esac
url="file://$page${frag:+#$frag}"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT INT TERM
run() {
	timeout 90 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--disable-default-apps --disable-extensions --mute-audio --hide-scrollbars \
		--user-data-dir="$profile" --window-size="$size" "$@" "$url"
}
rm -f "$png"
run --screenshot="$png" >"$profile/shot.log" 2>&1
if [ ! -s "$png" ]; then
	echo "screenshot.sh: chromium wrote no screenshot" >&2
	tail -n 20 "$profile/shot.log" >&2
	exit 1
fi
if [ -n "$dom" ]; then
	if ! run --dump-dom >"$dom" 2>"$profile/dom.log" || [ ! -s "$dom" ]; then
		echo "screenshot.sh: chromium could not dump the DOM" >&2
		tail -n 20 "$profile/dom.log" >&2
		exit 1
	fi
fi
exit 0
