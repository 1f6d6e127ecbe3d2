#!/usr/bin/env bash
# bf16 against f32 AdamW moments on the embedded demo: the default MDU run (100 steps) with each,
# for seeds 0 and 1, on the CPU (where bf16 moments hold bf16 values in f32 tensors: the same
# numbers a CUDA run stores as bf16). Writes results/moments/{runs.jsonl,table.md}.
#   scripts/moments_check.sh [path/to/mdu]
set -euo pipefail
cd "$(dirname "$0")/.."
MDU="${1:-target/release/mdu}"
OUT=results/moments
mkdir -p "$OUT"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
: > "$OUT/runs.jsonl"
for seed in 0 1; do
  for moments in f32 bf16; do
    dir="$scratch/$moments-$seed"
    XDG_DATA_HOME="$scratch/data" "$MDU" unlearn --demo --device cpu --seed "$seed" \
      --moments "$moments" --quiet --out "$dir" > /dev/null
    python3 - "$dir" "$moments" "$seed" >> "$OUT/runs.jsonl" <<'PY'
import json, sys
d, moments, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.load(open(f"{d}/summary.json"))
steps = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"loss"' in l]
last = [x["loss"] for x in steps[-10:]]
print(json.dumps({"moments": moments, "seed": seed,
                  "forget_rougeL": s["after"]["forget"]["rougeL_recall"],
                  "retain_rougeL": s["after"]["retain"]["rougeL_recall"],
                  "loss_last10": sum(last) / len(last)}))
PY
  done
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/runs.jsonl")]
lines = ["`mdu unlearn --demo --device cpu --seed S --moments M` (MDU τ = 0, 100 steps), after training:", "",
         "| moments | seed | forget ROUGE-L ↓ | retain ROUGE-L ↑ | mean loss, last 10 steps |", "|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['moments']} | {r['seed']} | {r['forget_rougeL']:.3f} | {r['retain_rougeL']:.3f} | {r['loss_last10']:.4f} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
