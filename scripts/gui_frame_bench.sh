#!/usr/bin/env bash
# Frame cost of the window while the demo unlearns (issue gate: 95th percentile of egui's per-frame
# CPU time ≤ 16 ms, engine on cores − 1 threads). Opens `mdu` under Xvfb with a private data folder,
# waits for the demo, presses Ctrl+Enter (Start), takes a screenshot half-way, and prints the frame
# statistics the window writes when the run ends (MDU_FRAME_STATS).
# Usage: scripts/gui_frame_bench.sh [path/to/mdu] [screenshot.png]
set -euo pipefail
bin="$(realpath "${1:-target/release/mdu}")"
shot="${2:-}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$tmp/run}"; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
export XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" MDU_FRAME_STATS="$tmp/frames.json"
xvfb-run -a -s '-screen 0 1280x860x24' bash -c '
  set -u
  "$0" >"$2/mdu.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do xdotool search --name "MDU Workbench" >/dev/null 2>&1 && break; sleep 1; done
  win=$(xdotool search --name "MDU Workbench" | head -1)
  sleep 8   # the demo unpacks and its files are read
  xdotool windowfocus --sync "$win" 2>/dev/null || true
  xdotool mousemove --window "$win" 640 400
  xdotool key ctrl+Return
  t0=$(date +%s)
  shot_taken=0
  while [ ! -s "$MDU_FRAME_STATS" ]; do
    kill -0 $pid 2>/dev/null || { echo "mdu exited"; cat "$2/mdu.log"; exit 1; }
    if [ $shot_taken = 0 ] && [ $(( $(date +%s) - t0 )) -ge 40 ] && [ -n "$1" ]; then import -window root "$1"; shot_taken=1; fi
    [ $(( $(date +%s) - t0 )) -lt 900 ] || { echo "timed out"; kill $pid; exit 1; }
    sleep 1
  done
  echo "run took $(( $(date +%s) - t0 )) s in the window"
  kill $pid; wait $pid 2>/dev/null || true
' "$bin" "$shot" "$tmp"
echo "frame CPU time while training: $(cat "$MDU_FRAME_STATS")"
