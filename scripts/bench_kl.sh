#!/usr/bin/env bash
# The MDU masked KL: WGSL kernel against the composite tensor ops (the reference path, fusion on),
# forward and forward + backward, on one wgpu device; JSON lines into results/bench_kl/<device>.jsonl
# and a table on stdout.
# usage: scripts/bench_kl.sh [PATH_TO_MDU] [DEVICE=wgpu:cpu] [SHAPES=64x32000,512x32000,64x126464,256x126464]
#   PATH_TO_MDU defaults to target/release/mdu (build it first: cargo build --release).
#   On an NVIDIA GPU over Vulkan use DEVICE=wgpu:discrete:0 and compare the GB/s column with the
#   card's memory bandwidth.
set -euo pipefail
cd "$(dirname "$0")/.."
mdu="${1:-target/release/mdu}"
device="${2:-wgpu:cpu}"
shapes="${3:-64x32000,512x32000,64x126464,256x126464}"
threads=2
# lavapipe: at most this many rendering threads (it reads LP_NUM_THREADS).
export LP_NUM_THREADS=$threads
out="results/bench_kl/${device//:/_}.jsonl"
mkdir -p results/bench_kl
"$mdu" bench-kl --device "$device" --shapes "$shapes" --warmup 2 --iters 5 | tee "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
print(f"{'N x V':>12} | {'fwd ms kernel/composite':>24} | {'fwd+bwd ms kernel/composite':>28} | "
      f"{'speedup fwd, fwd+bwd':>21} | {'GB/s fwd+bwd kernel/composite':>30}")
for r in rows:
    print(f"{r['rows']:>5} x {r['vocab']:<6} | {r['kernel_forward_ms']:>10.1f} / {r['composite_forward_ms']:<11.1f} | "
          f"{r['kernel_forward_backward_ms']:>12.1f} / {r['composite_forward_backward_ms']:<13.1f} | "
          f"{r['speedup_forward']:>8.2f}x, {r['speedup_forward_backward']:>6.2f}x   | "
          f"{r['kernel_forward_backward_gb_s']:>12.3f} / {r['composite_forward_backward_gb_s']:<12.3f}")
PY
