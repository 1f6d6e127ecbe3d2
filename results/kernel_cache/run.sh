#!/usr/bin/env bash
# Re-makes this folder's measurements: results/kernel_cache/run.sh PATH_TO_MDU [all|step|unlearn]
# (see README.md); times.txt gets one line per command, appended.
set -euo pipefail
mdu="$(realpath "${1:?usage: run.sh PATH_TO_MDU}")"
here="$(cd "$(dirname "$0")" && pwd)"
fixture="$here/../../tests/fixtures/llada_f32"
work=$(mktemp -d)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
timed() { # NAME CACHE COMMAND...
  local name="$1" cache="$2"; shift 2
  local t0; t0=$(date +%s%N)
  (cd "$work" && XDG_CACHE_HOME="$work/$cache" MDU_KERNEL_LOG="$here/kernels_$name.log" "$@") \
    >"$here/$name.jsonl" 2>"$work/$name.err"
  echo "$(date -u +%FT%TZ) $name: $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$here/times.txt"
}
what="${2:-all}" # all | step | unlearn
if [ "$what" != unlearn ]; then
  rm -f "$here"/kernels_bench_*.log
  step=(bench-step --preset tiny --device wgpu:cpu --warmup 0 --iters 1)
  timed bench_step_tiny_fresh cache_step "$mdu" "${step[@]}"
  timed bench_step_tiny_warm cache_step "$mdu" "${step[@]}"
  CUBECL_AUTOTUNE_LEVEL=minimal timed bench_step_tiny_fresh_minimal cache_minimal "$mdu" "${step[@]}"
fi
[ "$what" = step ] && exit 0
rm -f "$here"/kernels_unlearn_*.log
python3 - "$work" <<'PY'
import json, sys
item = lambda q, a: json.dumps({"question": q, "answer": a, "paraphrased_answer": a, "perturbed_answer": ["not " + a]})
open(sys.argv[1] + "/forget.jsonl", "w").write(item("Who wrote the red book?", "Ana Voss wrote it.") + "\n")
open(sys.argv[1] + "/retain.jsonl", "w").write(item("What is two plus two?", "Two plus two is four.") + "\n")
PY
for run in fresh warm; do
  rm -rf "$work/run"
  timed "unlearn_fixture_$run" cache_unlearn "$mdu" unlearn --checkpoint "$fixture" --forget forget.jsonl \
    --retain retain.jsonl --out run --device wgpu:cpu --steps 1 --batch-size 1 --set live_every=0 \
    --set eval_mc_samples=1
done
