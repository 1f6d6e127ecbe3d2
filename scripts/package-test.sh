#!/usr/bin/env bash
# The install test of the Linux packages in dist/ (from scripts/package.sh): unpacks the .deb into a
# fresh folder (dpkg -x) and checks its declared dependencies, desktop entry and icon; from there
# runs `mdu --version`, a 2-step unlearning of the demo in a private home folder, and opens the
# window under Xvfb; then the same binary from the .tar.gz.
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${DIST:-$PWD/dist}"
deb=$(ls -t "$dist"/mdu-workbench_*.deb | head -1)
tgz=$(ls -t "$dist"/mdu-workbench-*-linux.tar.gz | head -1)
fail() { echo "package-test: $*" >&2; exit 1; }

root=$(mktemp -d)
dpkg -x "$deb" "$root"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libvulkan1 libx11-6 libxkbcommon-x11-0 libegl1 libwayland-client0; do
  [[ "$depends" == *"$lib"* ]] || fail "$deb does not declare $lib (Depends: $depends)"
done
[[ "$(dpkg-deb -f "$deb" Recommends)" == *mesa-vulkan-drivers* ]] || fail "mesa-vulkan-drivers is not recommended"
desktop-file-validate "$root/usr/share/applications/mdu-workbench.desktop"
[ -s "$root/usr/share/icons/hicolor/256x256/apps/mdu-workbench.png" ] || fail "no 256x256 icon"
[ -s "$root/usr/share/icons/hicolor/scalable/apps/mdu-workbench.svg" ] || fail "no scalable icon"
mdu="$root/usr/bin/mdu"
"$mdu" --version

home=$(mktemp -d)
HOME="$home" XDG_DATA_HOME="$home/.local/share" XDG_CACHE_HOME="$home/.cache" \
  "$mdu" unlearn --demo --steps 2 --out "$home/run" --quiet >"$home/unlearn.out"
[ -s "$home/run/summary.json" ] || fail "the demo unlearning wrote no summary.json"
HOME="$home" bash scripts/gui-smoke.sh "$mdu"

troot=$(mktemp -d)
tar -C "$troot" -xzf "$tgz"
"$troot"/mdu-workbench-*/bin/mdu --version
desktop-file-validate "$troot"/mdu-workbench-*/share/applications/mdu-workbench.desktop
echo "package-test: $(basename "$deb") and $(basename "$tgz") install and run"
