#!/usr/bin/env bash
# Opens timbrel in a virtual X display (Xvfb), renders the first blend of the demo notes,
# and saves a screenshot of the window: docs/screenshot.png (or the path given).
#
#   scripts/screenshot.sh [OUT.png] [SECONDS_TO_WAIT]
#
# Installs xvfb, x11-apps and imagemagick with apt-get when missing (sudo when not root).
# Uses a fresh session, its own data and cache folders, and no audio output.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshot.png}
wait_secs=${2:-25}
need=()
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xwd >/dev/null || need+=(x11-apps)
command -v magick >/dev/null || [ -x /usr/bin/convert ] || need+=(imagemagick)
if [ ${#need[@]} -gt 0 ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" \
        libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6
fi
timbrel=${TIMBREL:-target/release/timbrel}
[ -x "$timbrel" ] || ./dev app --help >/dev/null
tmp=$(mktemp -d)
trap 'kill "${app_pid:-0}" "${xvfb_pid:-0}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1280x860x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
xvfb_pid=$!
sleep 1
DISPLAY=$display TIMBREL_DATA_DIR="$tmp/data" TIMBREL_CACHE_DIR="$tmp/cache" \
    XDG_DATA_HOME="$tmp/xdg" LIBGL_ALWAYS_SOFTWARE=1 WINIT_UNIX_BACKEND=x11 \
    "$timbrel" gui --fresh --no-audio --no-midi --render-on-start >"$tmp/app.log" 2>&1 &
app_pid=$!
sleep "$wait_secs"
if ! kill -0 "$app_pid" 2>/dev/null; then
    echo "screenshot: timbrel exited early:" >&2
    cat "$tmp/app.log" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
xwd -root -display "$display" -silent >"$tmp/screen.xwd"
convert=(convert); command -v magick >/dev/null && convert=(magick)
[ -x /usr/bin/convert ] && convert=(/usr/bin/convert)
"${convert[@]}" "xwd:$tmp/screen.xwd" -crop 1200x800+0+0 +repage "$out"
echo "wrote $out"
