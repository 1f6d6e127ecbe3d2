#!/usr/bin/env bash
# README's test command. On a fresh Debian or Ubuntu machine that has only Rust: installs the system
# packages the tests need (Mesa's software Vulkan driver for the wgpu tests, X/EGL libraries and
# Xvfb for the window) when it runs as root or may use sudo, otherwise stops before compiling with
# one line naming the packages and the command that installs them; then runs the whole test suite,
# opens the real window under Xvfb, builds the .deb and .tar.gz from this build and runs their
# install test; last, one closing line "ci: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# Mesa's lavapipe and the Vulkan loader (wgpu tests), X/EGL libraries and Xvfb (the window
# check), dpkg-dev and desktop-file-utils (the package's install test).
read -r -a packages <<< "$(grep -v '^#' scripts/system-packages.txt | tr '\n' ' ')"

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      sudo=()
    elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
      sudo=(sudo)
    else
      echo "scripts/test.sh: missing system packages: ${missing[*]}; install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 2
    fi
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  # Not a Debian system: check for what the packages provide.
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || missing+=("the Vulkan loader (libvulkan.so.1)")
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || missing+=("Mesa's lavapipe Vulkan driver")
  for tool in xvfb-run xdotool; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "scripts/test.sh: missing: ${missing[*]} (on Debian/Ubuntu: ${packages[*]}); install your system's equivalents" >&2
    exit 2
  fi
fi
command -v cargo >/dev/null 2>&1 || { echo "scripts/test.sh: cargo not found: install Rust (rustup.rs)" >&2; exit 2; }

target="${CARGO_TARGET_DIR:-$PWD/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"

log="$(mktemp)"
cargo test --locked 2>&1 | tee "$log"

# `mdu` with no subcommand must open a window under Xvfb.
bash scripts/gui-smoke.sh "$target/debug/mdu"

# The Linux packages, made from this build, install and run (dpkg -x into a fresh folder).
dist=$(mktemp -d)
DIST="$dist" bash scripts/package.sh --profile dev
DIST="$dist" bash scripts/package-test.sh

# One closing line over every test binary (cargo prints one "test result" line per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "ci: %d passed, %d failed\n", p, f }' "$log"
