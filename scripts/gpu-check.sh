#!/usr/bin/env bash
# GPU check: build a slim headless `mdu` here, run the GPU parity checks and the benchmarks on an
# NVIDIA machine that has no Rust toolchain and no network.
#
#   scripts/gpu-check.sh build         here: slim binary (no window, no embedded demo; CUDA, wgpu
#                                      and CPU backends), stripped, xz-compressed if over 50 MiB,
#                                      staged with the Python twins in .gpu-check/
#   scripts/gpu-check.sh run [WHAT]    on the GPU machine, in a copy of this repository that has
#                                      .gpu-check/: selftest --gpu (checks), MDU step Burn vs PyTorch
#                                      with peak memory read by NVML for both (step), masked-KL GB/s
#                                      (kl); WHAT = all (default) | checks | step | kl; results (7
#                                      files) in $OUT, else .gpu-check/results/
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
  # what: all | checks | step | kl (split them where one command may run at most ~10 minutes)
  local what="${1:-all}" out="${OUT:-$stage/results}"
  mkdir -p "$out"
  local log="$out/log.txt"
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
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    "$mdu" --version
    "$mdu" devices
  } 2>&1 | tee "$out/machine.txt"

  if [ "$what" = all ] || [ "$what" = checks ]; then
    echo "== parity checks (CUDA and wgpu over the NVIDIA driver) =="
    "$mdu" selftest --gpu --bench none >"$out/selftest.jsonl" 2> >(tee -a "$log" >&2) || true
  fi
  if [ "$what" = all ] || [ "$what" = step ]; then
    echo "== MDU step, 1B shape, 4 x 256 forget + 4 x 256 retain tokens: Burn/CUDA vs PyTorch eager =="
    python3 scripts/nvml_peak.py -- "$mdu" bench-step --preset 1b --device cuda --warmup 2 --iters 7 \
      >"$out/step_burn.jsonl" 2> >(tee -a "$log" >&2) || true
    python3 scripts/nvml_peak.py -- python3 scripts/bench_step.py --preset 1b --device cuda --warmup 2 --iters 7 \
      >"$out/step_torch.jsonl" 2> >(tee -a "$log" >&2) || true
  fi
  if [ "$what" = all ] || [ "$what" = kl ]; then
    echo "== masked KL GB/s (CUDA, and wgpu where a hardware adapter is listed) =="
    for device in cuda wgpu:discrete:0; do
      "$mdu" bench-kl --device "$device" --shapes 512x126464,2048x126464,4096x32000 \
        >>"$out/kl.jsonl" 2> >(tee -a "$log" >&2) || true
    done
    python3 scripts/copy_bandwidth.py >"$out/bandwidth.json" 2> >(tee -a "$log" >&2) || true
  fi

  python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def lines(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]
checks = [c for c in lines("selftest.jsonl") if "check" in c]
if checks:
    bad = [c for c in checks if not c["pass"]]
    print(f"parity: {len(checks) - len(bad)}/{len(checks)} checks pass"
          + "".join(f"\n  FAIL {c['device']} {c['check']}: {c['detail']}" for c in bad))
burn, torch = lines("step_burn.jsonl"), lines("step_torch.jsonl")
if len(burn) == 2 and len(torch) == 2:
    (b, bm), (t, tm) = burn, torch
    peak = lambda m: m["nvml_process_peak_mib"] or m["nvml_device_peak_mib"]
    print(f"tokens/s  Burn {b['tokens_per_s']:.0f} ({b['precision']}), PyTorch {t['tokens_per_s']:.0f} "
          f"({t['precision']}): ratio {b['tokens_per_s'] / t['tokens_per_s']:.2f}x")
    print(f"peak GPU memory (NVML)  Burn {peak(bm):.0f} MiB, PyTorch {peak(tm):.0f} MiB "
          f"(process table: {bm['nvml_process_peak_mib']}, {tm['nvml_process_peak_mib']})")
    print(f"first-step losses  Burn forget {b['forget_first']:.5f} retain {b['retain_first']:.5f}; "
          f"PyTorch forget {t['forget_first']:.5f} retain {t['retain_first']:.5f}")
elif burn or torch:
    print("step benchmark incomplete: see log.txt")
bw = lines("bandwidth.json")
card = bw[0]["copy_gb_s"] if bw else None
for r in lines("kl.jsonl"):
    frac = f" = {r['kernel_forward_backward_gb_s'] / card:.0%} of the copy bandwidth" if card else ""
    print(f"masked KL on {r.get('device', '?')}: {r['rows']} x {r['vocab']}: "
          f"fwd+bwd kernel {r['kernel_forward_backward_gb_s']:.0f} GB/s{frac}, composite "
          f"{r['composite_forward_backward_gb_s']:.0f} GB/s, fwd kernel {r['kernel_forward_gb_s']:.0f} GB/s")
PY
}

case "${1:-}" in
  build) build ;;
  run) run "${2:-all}" ;;
  remote)
    host="${2:?usage: scripts/gpu-check.sh remote HOST}"
    build
    ssh "$host" mkdir -p mdu-gpu-check
    scp -r "$stage" scripts "$host":mdu-gpu-check/
    ssh "$host" "cd mdu-gpu-check && bash scripts/gpu-check.sh run"
    scp -r "$host":mdu-gpu-check/"$stage"/results "$stage/" ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
