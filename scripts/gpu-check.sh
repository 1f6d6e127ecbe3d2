#!/usr/bin/env bash
# GPU check: build a slim headless `mdu` here, run the GPU parity checks and the benchmarks on an
# NVIDIA machine that has no Rust toolchain and no network.
#
#   scripts/gpu-check.sh build         here: slim binary (no window, no embedded demo; CUDA, wgpu
#                                      and CPU backends), stripped, xz-compressed if over 50 MiB,
#                                      staged with the Python twins in .gpu-check/
#   scripts/gpu-check.sh run [WHAT]    on the GPU machine, in a copy of this repository that has
#                                      .gpu-check/, in one visit of at most ~8 minutes, in this order:
#                                      parity checks on CUDA; MDU step (small, then 1B) fresh and warm
#                                      kernel cache, then PyTorch's 1B step, peak memory by NVML for
#                                      both; masked-KL GB/s and the card's copy bandwidth; the 8B step
#                                      (Burn, PyTorch); checks and KL on wgpu. WHAT = all (default) |
#                                      checks | step | kl | 8b | wgpu. Results: $OUT (else
#                                      .gpu-check/results/) gets summary.txt and results.tar.gz,
#                                      rewritten after every phase
#   scripts/gpu-check.sh summary DIR   the summary of an unpacked results.tar.gz
#   scripts/gpu-check.sh remote HOST   build, copy .gpu-check/ and scripts/ to HOST:mdu-gpu-check/
#                                      over ssh, run there, copy the results back
#
# The GPU machine needs the NVIDIA driver, NVRTC and the CUDA headers (for CUDA), a Vulkan loader
# (for wgpu; optional), and python3 with torch and nvidia-ml-py (for the baseline and NVML).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=.gpu-check
limit=$((50 * 1024 * 1024))

build() {
  cargo build --release --locked --no-default-features --features cuda --bin mdu
  mkdir -p "$stage"
  rm -f "$stage/mdu" "$stage/mdu.xz"
  strip -o "$stage/mdu" "${CARGO_TARGET_DIR:-target}/release/mdu"
  local size; size=$(stat -c %s "$stage/mdu")
  echo "slim mdu: $((size / 1024 / 1024)) MiB stripped ($size bytes)"
  if [ "$size" -gt "$limit" ]; then
    xz -T0 -9 -f "$stage/mdu"
    echo "over 50 MiB: compressed to $(( $(stat -c %s "$stage/mdu.xz") / 1024 / 1024 )) MiB ($stage/mdu.xz)"
  fi
  # The slim binary was built without the demo and window: the default release binary is rebuilt
  # by the next plain `cargo build --release`.
}

run() {
  # One visit of at most ~8 minutes: phases in order of importance, each under its own time limit
  # and all under one deadline (MDU_CHECK_BUDGET seconds, default 450); a phase that no longer fits
  # is skipped and named. After every phase the results so far are packed into $OUT/results.tar.gz
  # and the summary rewritten, so whatever a limit cuts off, what ran comes back.
  local only="${1:-all}" out="${OUT:-$stage/results}"
  mkdir -p "$out"
  local work; work=$(mktemp -d)
  local log="$work/log.txt" deadline=$(( $(date +%s) + ${MDU_CHECK_BUDGET:-450} ))
  if [ -f "$stage/mdu.xz" ]; then
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" \
      "$stage/mdu.xz" /tmp/mdu
  else
    cp "$stage/mdu" /tmp/mdu
  fi
  chmod +x /tmp/mdu
  local mdu=/tmp/mdu
  # Vulkan loaders carried as .deb files (see the device tool's README), when present.
  if ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  # NVRTC and the driver where a toolkit or driver mount keeps them off the default library path.
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
    if [ -d "$d" ]; then LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; fi
  done
  export LD_LIBRARY_PATH
  if [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  # Every kernel-cache folder starts empty: "fresh" is a first run on this machine, "warm" the
  # same command again with the cache the fresh one left.
  local caches="$work/caches"; mkdir -p "$caches"

  pack() {
    summarize "$work" >"$work/summary.txt" 2>&1 || true
    cp "$work/summary.txt" "$out/summary.txt"
    tar -C "$work" -czf "$out/results.tar.gz.part" --exclude caches . && mv "$out/results.tar.gz.part" "$out/results.tar.gz"
  }
  # phase NAME SECONDS COMMAND...: runs COMMAND with a limit of SECONDS (less if the deadline is
  # nearer), stdout to NAME.jsonl, stderr to the log; skipped when under 20 s remain.
  phase() {
    local name="$1" limit="$2"; shift 2
    local left=$(( deadline - $(date +%s) ))
    if [ "$left" -lt 20 ]; then
      echo "== $name: skipped, ${left}s left of the budget" | tee -a "$log"
      echo "$name" >>"$work/skipped.txt"
      return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (limit ${limit}s)" | tee -a "$log"
    local t0; t0=$(date +%s%N)
    LIMIT="$limit" "$@" >"$work/$name.jsonl" 2> >(tee -a "$log" >&2) || echo "$name: exit $?" >>"$work/failed.txt"
    echo "{\"phase\": \"$name\", \"wall_ms\": $(( ($(date +%s%N) - t0) / 1000000 )), \"limit_s\": $limit}" >>"$work/phases.jsonl"
    pack
  }
  limited() { timeout -k 5 "$LIMIT" "$@"; } # the phase's limit, for a command run directly
  burn_step() { # PRESET CACHE: Burn's MDU step under NVML, with the kernel log of that run
    MDU_KERNEL_CACHE="$caches/$2" MDU_KERNEL_LOG="$work/kernels_$1_$2.log" python3 scripts/nvml_peak.py -- \
      timeout -k 5 "$LIMIT" "$mdu" bench-step --preset "$1" --device cuda --warmup 2 --iters 5
  }
  torch_step() { # PRESET INIT
    python3 scripts/nvml_peak.py -- timeout -k 5 "$LIMIT" python3 scripts/bench_step.py --preset "$1" \
      --device cuda --warmup 2 --iters 5 --init "$2"
  }
  want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    "$mdu" --version
    "$mdu" devices
  } >"$work/machine.txt" 2>&1
  cat "$work/machine.txt"
  if want checks; then
    MDU_KERNEL_CACHE="$caches/checks" MDU_KERNEL_LOG="$work/kernels_checks.log" \
      phase checks_cuda 75 limited "$mdu" selftest --device cuda --bench none
  fi
  if want step; then
    phase step_small_fresh 60 burn_step small fresh_small
    phase step_small_warm 30 burn_step small fresh_small
    phase step_1b_fresh 100 burn_step 1b fresh_1b
    phase step_1b_warm 45 burn_step 1b fresh_1b
    phase step_1b_torch 50 torch_step 1b splitmix
  fi
  if want kl; then
    phase kl_cuda 30 limited "$mdu" bench-kl --device cuda --shapes 512x126464,2048x126464,4096x32000
    phase bandwidth 20 limited python3 scripts/copy_bandwidth.py
  fi
  if want 8b; then
    phase step_8b 70 burn_step 8b fresh_8b
    phase step_8b_torch 50 torch_step 8b torch
  fi
  if want wgpu; then
    phase checks_wgpu 40 limited "$mdu" selftest --device wgpu:discrete:0 --bench none
    phase kl_wgpu 20 limited "$mdu" bench-kl --device wgpu:discrete:0 --shapes 512x126464
  fi
  pack
  cat "$work/summary.txt"
}

summarize() { # the summary of a results folder (also usable on an unpacked results.tar.gz)
  python3 - "$1" <<'PY'
import json, os, sys
d = sys.argv[1]
def lines(name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return []
    out = []
    for l in open(p):
        l = l.strip()
        if l.startswith("{"):
            try:
                out.append(json.loads(l))
            except ValueError:
                pass
    return out
def step(name):  # (report, nvml) of one step phase, or None
    rows = lines(name + ".jsonl")
    rep = next((r for r in rows if r.get("bench") == "mdu_step"), None)
    nv = next((r for r in rows if "nvml_device_peak_mib" in r), None)
    return rep, nv
def peak(nv):
    return (nv or {}).get("nvml_process_peak_mib") or (nv or {}).get("nvml_device_peak_mib")
for f in ("skipped.txt", "failed.txt"):
    p = os.path.join(d, f)
    if os.path.exists(p):
        print(f"{f[:-4]}: " + ", ".join(open(p).read().split("\n")).strip(", "))
for name in ("checks_cuda", "checks_wgpu"):
    checks = [c for c in lines(name + ".jsonl") if "check" in c]
    if checks:
        bad = [c for c in checks if not c["pass"]]
        print(f"{name}: {len(checks) - len(bad)}/{len(checks)} checks pass"
              + "".join(f"\n  FAIL {c['device']} {c['check']}: {c['detail']}" for c in bad))
for preset in ("small", "1b", "8b"):
    for run in ("fresh", "warm"):
        rep, nv = step(f"step_{preset}_{run}" if preset != "8b" else "step_8b")
        if preset == "8b" and run == "warm":
            continue
        if rep:
            k = rep.get("first_step_kernels", {})
            print(f"Burn {preset} {run}: first step {rep['first_step_since_start_s']:.1f} s after start "
                  f"(the step itself {rep['first_step_ms'] / 1e3:.1f} s: {k.get('compiled')} kernels compiled, "
                  f"{k.get('tuned')} tuned, {k.get('tuning_cache_entries')} tunings from the cache); steady "
                  f"{rep['tokens_per_s']:.0f} tokens/s ({rep['step_ms_median']:.1f} ms/step, {rep['precision']}); "
                  f"peak {peak(nv)} MiB")
        elif nv is not None or os.path.exists(os.path.join(d, f"step_{preset}_{run}.jsonl")):
            print(f"Burn {preset} {run}: no report (time limit or failure; see log.txt and the kernel log)")
    t, tn = step(f"step_{preset}_torch")
    if t:
        print(f"PyTorch {preset}: first step {t['first_step_since_start_s']:.1f} s after start; steady "
              f"{t['tokens_per_s']:.0f} tokens/s ({t['step_ms_median']:.1f} ms/step, {t['precision']}); peak {peak(tn)} MiB")
        b, bn = step(f"step_{preset}_warm") if preset != "8b" else step("step_8b")
        if b:
            print(f"ratio {preset}: Burn / PyTorch tokens/s = {b['tokens_per_s'] / t['tokens_per_s']:.2f}x; "
                  f"peak memory Burn {peak(bn)} MiB vs PyTorch {peak(tn)} MiB; first-step losses Burn "
                  f"{b['forget_first']:.5f} / {b['retain_first']:.5f}, PyTorch {t['forget_first']:.5f} / {t['retain_first']:.5f}")
bw = lines("bandwidth.jsonl")
card = bw[0]["copy_gb_s"] if bw else None
for name in ("kl_cuda", "kl_wgpu"):
    for r in lines(name + ".jsonl"):
        frac = f" = {r['kernel_forward_backward_gb_s'] / card:.0%} of the copy bandwidth ({card:.0f} GB/s)" if card else ""
        print(f"masked KL on {r.get('device', '?')}: {r['rows']} x {r['vocab']}: fwd+bwd kernel "
              f"{r['kernel_forward_backward_gb_s']:.0f} GB/s{frac}, composite {r['composite_forward_backward_gb_s']:.0f} GB/s")
PY
}

case "${1:-}" in
  build) build ;;
  run) run "${2:-all}" ;;
  summary) summarize "${2:?usage: scripts/gpu-check.sh summary DIR}" ;;
  remote)
    host="${2:?usage: scripts/gpu-check.sh remote HOST}"
    build
    ssh "$host" mkdir -p mdu-gpu-check
    scp -r "$stage" scripts "$host":mdu-gpu-check/
    ssh "$host" "cd mdu-gpu-check && bash scripts/gpu-check.sh run"
    scp -r "$host":mdu-gpu-check/"$stage"/results "$stage/" ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
