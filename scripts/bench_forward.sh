#!/usr/bin/env bash
# Forward-pass throughput, Burn (ndarray and wgpu) next to PyTorch, same shapes, same machine, same run.
# usage: scripts/bench_forward.sh [PATH_TO_MDU] [PYTHON]
#   PATH_TO_MDU defaults to target/release/mdu; PYTHON must have torch (see scripts/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mdu="${1:-target/release/mdu}"
python="${2:-python3}"
threads=2
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
results=$(mktemp)
for preset in tiny 100m; do
  "$python" scripts/bench_forward.py --config "$preset" --threads $threads --warmup 2 --iters 5 | tee -a "$results"
  "$mdu" bench-forward --preset "$preset" --device cpu --warmup 2 --iters 5 | tee -a "$results"
  "$mdu" bench-forward --preset "$preset" --device wgpu --warmup 2 --iters 5 | tee -a "$results"
done
"$python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
for preset in ("tiny", "100m"):
    base = next(r for r in rows if r["impl"] == "pytorch" and r["config"] == preset)["tokens_per_s_median"]
    print(f"{preset}: pytorch {base:,.0f} tok/s")
    for r in rows:
        if r["impl"] == "burn" and r["config"] == preset:
            t = r["tokens_per_s_median"]
            print(f"  burn {r['device']:<6} {t:,.0f} tok/s  ratio vs pytorch {t / base:.3f}")
PY
