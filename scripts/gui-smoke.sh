#!/usr/bin/env bash
# Opens `mdu` (no subcommand: the GUI) under Xvfb, checks that its window appears and that the
# process is still alive, then closes it. Optional second argument: where to save a screenshot.
set -euo pipefail
bin="${1:?usage: gui-smoke.sh PATH_TO_MDU [SCREENSHOT.png]}"
shot="${2:-}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"; chmod 700 "$XDG_RUNTIME_DIR"
xvfb-run -a -s '-screen 0 1280x800x24' bash -c '
  set -u
  # The X server answers before the window is asked for (a server still starting made mdu exit).
  for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.2; done
  "$0" >/tmp/mdu-gui-smoke.log 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    if xdotool search --name "MDU Workbench" >/dev/null 2>&1; then break; fi
    kill -0 $pid 2>/dev/null || { echo "gui-smoke: mdu exited early"; cat /tmp/mdu-gui-smoke.log; exit 1; }
    sleep 1
  done
  xdotool search --name "MDU Workbench" >/dev/null || { echo "gui-smoke: no window titled MDU Workbench"; cat /tmp/mdu-gui-smoke.log; kill $pid; exit 1; }
  sleep 3
  kill -0 $pid || { echo "gui-smoke: mdu died after opening"; cat /tmp/mdu-gui-smoke.log; exit 1; }
  if [ -n "$1" ] && command -v import >/dev/null; then import -window root "$1"; fi
  kill $pid; wait $pid 2>/dev/null || true
  echo "gui-smoke: window opened and stayed up"
' "$bin" "$shot"
