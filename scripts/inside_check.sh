#!/usr/bin/env bash
# The Inside view's numbers on the demo, and the committed inputs of its snapshot test:
#  1. MDU τ = 0, GA and NPO demo runs (100 steps on the CPU; NPO at 4e-4, the rate the demo sweep
#     picked; the others at 2e-4), each with the leakage probe after training; MDU with a live
#     evaluation (and KL-per-role diagnostic) every 10 steps;
#  2. `mdu trace` of the first 24 forget questions with the starting model and with MDU's
#     unlearned model (on its own denoising paths, and along the starting model's paths: the same
#     tokens), all against the starting model's anchor at τ = 0 (uniform target).
# Writes results/inside/{roles.md,leakage.md,role_means_*.json,leakage_*.json,summary_*.json,
# trace_time.txt} and tests/fixtures/gui/inside/{before,after,after_along}.jsonl (first 4
# questions) and role_kl.jsonl.
#   scripts/inside_check.sh [path/to/mdu]   (about 8 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
MDU="${1:-target/release/mdu}"
OUT=results/inside
FIX=tests/fixtures/gui/inside
mkdir -p "$OUT" "$FIX"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/data"
for method in mdu ga npo; do
  flags=(--method "$method")
  [ "$method" = mdu ] && flags+=(--set live_every=10)
  [ "$method" = npo ] && flags+=(--lr 4e-4)
  "$MDU" unlearn --demo --device cpu "${flags[@]}" --quiet --out "$tmp/$method" > /dev/null
  cp "$tmp/$method/leakage.json" "$OUT/leakage_$method.json"
  cp "$tmp/$method/summary.json" "$OUT/summary_$method.json"
done
demo=$(ls -d "$XDG_DATA_HOME"/mdu-workbench/demo-*)
forget="$demo/data/forget.jsonl"
: > "$OUT/trace_time.txt"
for which in before after after_along; do
  case "$which" in
    before) from=(--checkpoint "$demo/model" --tau 0) ;;
    after) from=(--run "$tmp/mdu") ;;
    after_along) from=(--run "$tmp/mdu" --along "$tmp/trace_before/trace.jsonl") ;;
  esac
  start=$(date +%s.%N)
  "$MDU" trace "${from[@]}" --data "$forget" --items 24 --device cpu --out "$tmp/trace_$which" > /dev/null
  end=$(date +%s.%N)
  echo "mdu trace ($which, 24 questions, cpu): $(python3 -c "print(round($end - $start, 2))") s" >> "$OUT/trace_time.txt"
  cp "$tmp/trace_$which/role_means.json" "$OUT/role_means_$which.json"
  head -4 "$tmp/trace_$which/trace.jsonl" > "$FIX/$which.jsonl"
done
grep '"event":"role_kl"' "$tmp/mdu/metrics.jsonl" > "$FIX/role_kl.jsonl"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
before = {m["role"]: m for m in json.load(open(f"{out}/role_means_before.json"))}
after = {m["role"]: m for m in json.load(open(f"{out}/role_means_after_along.json"))}
own = {m["role"]: m for m in json.load(open(f"{out}/role_means_after.json"))}
paper = {"stored-knowledge": -20.6, "in-context": 1.4, "structural": -3.8}
lines = ["Mean KL(p_conditional ‖ uniform) per token role over the denoising trajectories of the first 24",
         "demo forget questions (`mdu trace`): the starting model, and the model after `mdu unlearn --demo`",
         "(MDU τ = 0, 100 steps) along the starting model's trajectories (`--along`: the same cells, token",
         "for token) and on its own; cells = masked (step, token) positions.", "",
         "| role | before: KL (cells) | after, same cells | change | paper | after, own paths: KL (cells) |",
         "|---|---|---|---|---|---|"]
for role in ["stored-knowledge", "in-context", "structural"]:
    b, a = before.get(role), after.get(role)
    cell = lambda m: f"{m['kl']:.3f} ({m['cells']})" if m else "–"
    change = f"{(a['kl'] - b['kl']) / b['kl'] * 100:+.1f} %" if a and b else "–"
    lines.append(f"| {role} | {cell(b)} | {cell(a)} | {change} | {paper[role]:+.1f} % | {cell(own.get(role))} |")
open(f"{out}/roles.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
rows = ["Forget ROUGE-L recall after 100 demo steps: the evaluation's own decoding path and the worst",
        "case over the leakage probe's paths (`inside::leakage`), mean over the 48 forget items.", "",
        "| method | default path | worst path | worst path per item (most frequent) |", "|---|---|---|---|"]
for method in ["mdu", "ga", "npo"]:
    l = json.load(open(f"{out}/leakage_{method}.json"))
    counts = {}
    for it in l["items"]:
        if it["worst_rouge_l"] > it["default_rouge_l"]:
            counts[it["worst_path"]] = counts.get(it["worst_path"], 0) + 1
    top = ", ".join(f"{k} ({v})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3]) or "default"
    rows.append(f"| {method} | {l['default_rouge_l']:.3f} | {l['worst_rouge_l']:.3f} | {top} |")
open(f"{out}/leakage.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
