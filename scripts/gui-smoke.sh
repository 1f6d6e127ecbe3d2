#!/usr/bin/env bash
# Opens `mdu` (no subcommand: the GUI) under Xvfb, checks that its window appears and that the
# process is still alive, then closes it. Optional second argument: where to save a screenshot.
# An X server that never answers (Xvfb occasionally loses its display to a race with another
# server) is not the program's fault: that case, and only that one, is tried again on a new server.
set -euo pipefail
bin="${1:?usage: gui-smoke.sh PATH_TO_MDU [SCREENSHOT.png]}"
shot="${2:-}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"; chmod 700 "$XDG_RUNTIME_DIR"
xvfb_log=$(mktemp)
lost=$(mktemp -u)  # written by the inner script when the X server, not mdu, failed
for attempt in 1 2 3; do
  status=0
  rm -f "$lost"
  LOST="$lost" xvfb-run -a -e "$xvfb_log" -s '-screen 0 1280x800x24' bash -c '
    set -u
    log=$(mktemp)
    # The X server answers before the window is asked for (a server still starting made mdu exit).
    up=0
    for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && { up=1; break; }; sleep 0.2; done
    [ $up = 1 ] || { echo "gui-smoke: the X server on $DISPLAY never answered"; touch "$LOST"; exit 3; }
    "$0" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 60); do
      if xdotool search --name "MDU Workbench" >/dev/null 2>&1; then break; fi
      if ! kill -0 $pid 2>/dev/null; then
        cat "$log"
        # Lost the server, not a failure of mdu: say so, and let the caller try a new one.
        if grep -q "connection to X server" "$log" && ! xdpyinfo >/dev/null 2>&1; then
          echo "gui-smoke: the X server on $DISPLAY went away"; touch "$LOST"; exit 3
        fi
        echo "gui-smoke: mdu exited early"; exit 1
      fi
      sleep 1
    done
    xdotool search --name "MDU Workbench" >/dev/null || { echo "gui-smoke: no window titled MDU Workbench"; cat "$log"; kill $pid; exit 1; }
    sleep 3
    kill -0 $pid || { echo "gui-smoke: mdu died after opening"; cat "$log"; exit 1; }
    if [ -n "$1" ] && command -v import >/dev/null; then import -window root "$1"; fi
    kill $pid; wait $pid 2>/dev/null || true
    echo "gui-smoke: window opened and stayed up"
  ' "$bin" "$shot" || status=$?
  # xvfb-run may turn the inner status into its own when its server is gone: the file decides.
  [ -e "$lost" ] || exit "$status"
  echo "gui-smoke: attempt $attempt lost its X server (Xvfb said: $(tail -3 "$xvfb_log" | tr '\n' ' ')); trying a new one" >&2
done
echo "gui-smoke: no X server answered in 3 attempts" >&2
exit 1
