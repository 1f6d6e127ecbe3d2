#!/usr/bin/env bash
# Copies a finished demo training into assets/demo/ (what the binary embeds).
#   scripts/package_demo.sh WORLD_DIR FULL_MODEL_DIR RETAIN_MODEL_DIR
# WORLD_DIR is `mdu demo-world --out WORLD_DIR`; the model dirs are `mdu finetune --out X` → X/model.
set -euo pipefail
world=$1 full=$2 retain=$3
out=$(dirname "$0")/../assets/demo
mkdir -p "$out/model" "$out/retain_model" "$out/data"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json; do
  cp "$full/$f" "$out/model/$f"
  cp "$retain/$f" "$out/retain_model/$f"
done
for f in forget retain holdout retain_eval world_facts real_people world_facts_eval real_people_eval; do
  cp "$world/$f.jsonl" "$out/data/$f.jsonl"
done
du -sh "$out"
