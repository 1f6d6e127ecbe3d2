#!/usr/bin/env bash
# Training-step throughput (MDLM SFT step: forward, backward, clip, AdamW) on the demo model's shape,
# Burn (ndarray and wgpu on lavapipe) next to PyTorch, same config, same machine, same run, interleaved.
# usage: scripts/bench_train.sh [PATH_TO_MDU] [PYTHON] [ROUNDS=3]
#   PATH_TO_MDU defaults to target/release/mdu (build it first: cargo build --release);
#   PYTHON must have torch (see scripts/README.md). Each round runs every implementation once
#   (2 warm-up + 5 timed steps each); the summary takes the median over rounds of the per-run medians.
set -euo pipefail
cd "$(dirname "$0")/.."
mdu="${1:-target/release/mdu}"
python="${2:-python3}"
rounds="${3:-3}"
threads=2
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
# lavapipe: at most this many rendering threads (it reads LP_NUM_THREADS).
export LP_NUM_THREADS=$threads
results=$(mktemp)
trap 'rm -f "$results"' EXIT
wgpu=1
# (grep reads all of it: with pipefail, `grep -q` closing the pipe early would fail the test)
if ! "$mdu" devices 2>/dev/null | grep '^wgpu:cpu' >/dev/null; then
  echo "note: no software wgpu adapter (wgpu:cpu, e.g. lavapipe) on this machine; skipping it" >&2
  wgpu=0
fi
for round in $(seq "$rounds"); do
  echo "# round $round/$rounds" >&2
  "$python" scripts/bench_train.py --threads $threads --warmup 2 --iters 5 | tee -a "$results"
  "$mdu" bench-train --device cpu --warmup 2 --iters 5 | tee -a "$results"
  if [ $wgpu = 1 ]; then
    "$mdu" bench-train --device wgpu:cpu --warmup 2 --iters 5 | tee -a "$results"
  fi
done
"$python" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
def runs(impl, device):
    return [r for r in rows if r["impl"] == impl and r["device"] == device]
def median_tps(rs):
    return statistics.median(r["tokens_per_s"] for r in rs)
def phases(rs):
    keys = ("forward", "backward", "clip", "adamw")
    if not all("phase_ms_median" in r for r in rs):
        return ""
    return "\n      phases (ms): " + "  ".join(
        f"{k} {statistics.median(r['phase_ms_median'][k] for r in rs):.1f}" for k in keys)
torch_runs = runs("pytorch", "cpu")
base = median_tps(torch_runs)
r0 = torch_runs[0]
print(f"training step, {r0['params']:,} parameters, {r0['tokens_per_step']} tokens/step "
      f"({r0['masked_per_step']} masked), {len(torch_runs)} round(s)")
print(f"  pytorch {'cpu':<9} {base:8,.0f} tok/s  step {statistics.median(r['step_ms_median'] for r in torch_runs):7.1f} ms"
      f"  loss_first {r0['loss_first']:.6f}" + phases(torch_runs))
for device in ("cpu", "wgpu:cpu"):
    rs = runs("burn", device)
    if not rs:
        continue
    t = median_tps(rs)
    print(f"  burn    {device:<9} {t:8,.0f} tok/s  step {statistics.median(r['step_ms_median'] for r in rs):7.1f} ms"
          f"  loss_first {rs[0]['loss_first']:.6f}  ratio burn/pytorch {t / base:.3f}" + phases(rs))
PY
