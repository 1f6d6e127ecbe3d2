#!/usr/bin/env bash
# The fair comparison on the embedded demo that README's "Unlearning results" reports: every
# method gets the same 100 steps, batch 8 (+ 8 retain rows), seeds 0,1,2 and the same three
# learning rates; each method's rate is picked on seed 0 by one rule (`mdu sweep --help`:
# reach forget ≤ 0.3 × before with the most retain kept, else forget most); means over seeds.
# Two processes share the 2 cores; a last call reuses every finished run and writes the table.
# Every run is also privacy-audited (the demo ships a holdout split; results/demo_sweep_privacy/).
# Usage: scripts/sweep_demo.sh [path/to/mdu] [OUT]   (about 80 min on the 2-core dev VM, with the
# leakage probe after every run)
set -euo pipefail
mdu="${1:-target/release/mdu}"
out="${2:-runs/demo_sweep}"
common=(--demo --device cpu --steps 100 --batch-size 8 --seeds 0,1,2 --lrs 1e-4,2e-4,4e-4
        --set live_every=0 --set eval_tofu=false --out "$out")
mkdir -p "$out"
"$mdu" sweep "${common[@]}" --tau 0,0.25,0.5,0.75,1 > "$out/p1.out" 2> "$out/p1.err" &
"$mdu" sweep "${common[@]}" --no-mdu --baselines ga,graddiff,npo,simnpo,wga,undial,rmu > "$out/p2.out" 2> "$out/p2.err" &
wait
"$mdu" sweep "${common[@]}" --tau 0,0.25,0.5,0.75,1 --baselines ga,graddiff,npo,simnpo,wga,undial,rmu 2>/dev/null
