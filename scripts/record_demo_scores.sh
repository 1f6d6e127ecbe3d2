#!/usr/bin/env bash
# Records assets/demo/scores.json: `mdu eval` of the memorised and the retain-only demo models on
# the demo's forget, retain, real-people and world-facts evaluation files (what a demo run evaluates), demo
# generation setting, 8 Monte-Carlo samples, CPU. Run after scripts/package_demo.sh and a
# release build; tests/suite/demo.rs checks the binary still reproduces these numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo=$root/assets/demo
mdu=${MDU:-$root/target/release/mdu}
files=("$demo/data/forget.jsonl" "$demo/data/retain_eval.jsonl" "$demo/data/real_people_eval.jsonl" "$demo/data/world_facts_eval.jsonl")
tmp=$(mktemp -d)
for m in model retain_model; do
  "$mdu" eval --device cpu --mc-samples 8 --checkpoint "$demo/$m" --data "${files[@]}" \
    --retain-model "$demo/retain_model" --details "$tmp/$m.details.jsonl" > "$tmp/$m.json"
done
python3 - "$tmp" "$demo/scores.json" <<'PY'
import json, sys
tmp, out = sys.argv[1], sys.argv[2]
scores = {m: json.load(open(f"{tmp}/{m}.json")) for m in ("model", "retain_model")}
for m in scores.values():
    # `mdu eval` names splits after their files; the demo's retain evaluation subset is "retain".
    m["retain"] = m.pop("retain_eval")
    for u in ("real_people", "world_facts"):
        m[u] = m.pop(f"{u}_eval")
scores["command"] = "scripts/record_demo_scores.sh (mdu eval --device cpu --mc-samples 8, demo generation setting)"
json.dump(scores, open(out, "w"), indent=1, sort_keys=True)
print({m: {s: round(scores[m][s]["rougeL_recall"], 3) for s in ("forget", "retain")} for m in ("model", "retain_model")})
PY
