#!/usr/bin/env bash
# Makes the committed inputs of the GUI snapshot tests (tests/fixtures/gui/runs/):
#  - mdu-tau0-demo: a real demo run at the GUI's defaults with a live evaluation every 10 steps;
#    its event stream (events.jsonl) and per-item files drive the curves and samples views;
#  - six seed-0 runs of the demo sweep (scripts/sweep_demo.sh), settings and summaries only,
#    for the τ explorer and the history.
# The unlearned model folders are left out (the tests do not need them; they are 6 MB each).
# Usage: scripts/gui_fixtures.sh [path/to/mdu] [SWEEP_DIR]   (about 2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
mdu="${1:-target/release/mdu}"
sweep="${2:-runs/demo_sweep}"
out=tests/fixtures/gui/runs
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$mdu" unlearn --demo --device cpu --steps 100 --set live_every=10 --out "$tmp/mdu-tau0-demo" \
  > "$tmp/events.jsonl"
rm -rf "$out" && mkdir -p "$out/mdu-tau0-demo"
# The engine's whole event stream as the CLI printed it (per-item samples go to samples_*.jsonl).
cp "$tmp/events.jsonl" "$out/mdu-tau0-demo/events.jsonl"
cp "$tmp/mdu-tau0-demo"/{config.toml,metrics.jsonl,run_info.json,samples_before.jsonl,samples_after.jsonl,summary.json,summary_before.json} \
   "$out/mdu-tau0-demo/"
for run in mdu-tau0-lr2e-4-seed0 mdu-tau0.25-lr2e-4-seed0 mdu-tau0.5-lr2e-4-seed0 mdu-tau1-lr2e-4-seed0 \
           ga-lr2e-4-seed0 npo-lr4e-4-seed0; do
  mkdir -p "$out/$run"
  cp "$sweep/$run"/{config.toml,run_info.json,summary.json} "$out/$run/"
done
echo "wrote $out"
