#!/usr/bin/env bash
# Wall time of one default demo MDU run with before/after evaluation (issue gate: ≤ 60 s on the
# 2-core CI machine, release build): a first run in a fresh data folder ("cold": the before
# evaluation and the retain-only truth ratios come from the record embedded with the demo) and a
# second ("warm": from the local cache). MDU_NO_EVAL_CACHE=1 in the environment recomputes them.
# Usage: scripts/bench_demo_run.sh [path/to/mdu]   (default: target/release/mdu)
set -euo pipefail
mdu="${1:-target/release/mdu}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
stamp() { date +%s.%N; }
phase_times() {
  # Seconds from the start to each phase event, from the event stream's arrival times.
  awk -v t0="$1" '{ split($0, a, "\t"); printf "  %6.1f s  %s\n", a[1] - t0, a[2] }' "$2"
}
# A private data folder: the first run unpacks the demo and fills the evaluation cache (cold), the
# second reuses both (warm).
export XDG_DATA_HOME="$tmp/data"
for mode in cold warm; do
  t0="$(stamp)"
  "$mdu" unlearn --demo --device cpu --out "$tmp/$mode" 2>/dev/null |
    while IFS= read -r line; do
      case "$line" in *'"event":"phase"'*|*'"event":"finished"'*) printf '%s\t%s\n' "$(stamp)" "${line:0:80}";; esac
    done > "$tmp/$mode.phases"
  t1="$(stamp)"
  printf '%s: %.1f s wall\n' "$mode" "$(echo "$t1 - $t0" | bc)"
  phase_times "$t0" "$tmp/$mode.phases"
done
