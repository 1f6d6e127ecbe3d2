#!/usr/bin/env bash
# The time estimate of a run against the run's measured time on this machine: first
# `mdu unlearn --estimate-time` (a short probe, scaled), then the same run, timed. Both start from
# an empty data directory, so neither finds a cached evaluation. Writes
# results/cost_estimate/$CASE/{estimate.json,estimate.txt,run.json,table.md} (CASE: demo).
#   scripts/cost_check.sh [path/to/mdu] [unlearn flags…]   (default: --demo --device cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
MDU="${1:-target/release/mdu}"
shift || true
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--demo --device cpu)
OUT=results/cost_estimate/${CASE:-demo}
mkdir -p "$OUT"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
XDG_DATA_HOME="$scratch/estimate" "$MDU" unlearn "${flags[@]}" --estimate-time \
  > "$OUT/estimate.json" 2> "$OUT/estimate.txt"
start=$(date +%s.%N)
XDG_DATA_HOME="$scratch/run" "$MDU" unlearn "${flags[@]}" --quiet --out "$scratch/run/out" > "$OUT/run.json"
end=$(date +%s.%N)
python3 - "$OUT" "$start" "$end" "${flags[*]}" <<'PY'
import json, sys
out, start, end, flags = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
e = json.load(open(f"{out}/estimate.json"))
total = sum(e[k] for k in ["loading_s", "retain_model_s", "before_s", "training_s", "live_s", "after_s"])
measured = end - start
err = (total - measured) / measured * 100
lines = [f"`mdu unlearn {flags}`", "",
         "| part | estimate s |", "|---|---|"]
for k in ["loading_s", "retain_model_s", "before_s", "training_s", "live_s", "after_s"]:
    lines.append(f"| {k[:-2]} | {e[k]:.1f} |")
lines += [f"| **total** | **{total:.1f}** |", "",
          f"Measured wall time of the run (process start to exit): {measured:.1f} s. "
          f"Estimate error: {err:+.1f} %."]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
