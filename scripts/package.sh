#!/usr/bin/env bash
# Linux packages of `mdu`: a .deb for Debian/Ubuntu (cargo-deb: the binary on the PATH, a desktop
# entry and an icon in the application menu) and a .tar.gz of the same files for other Linux
# systems (unpack it into ~/.local or /usr/local: bin/mdu, share/applications, share/icons).
#
#   scripts/package.sh                 release build (cargo build --release), then both packages
#   scripts/package.sh --profile dev   package the debug build already in the target folder (the
#                                      install test in scripts/test.sh; not for distribution)
#
# Packages go to dist/ (or $DIST). Needs cargo-deb (installed with cargo if missing) and dpkg-dev
# (dpkg-shlibdeps, for the library dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
if [ "${1:-}" = "--profile" ]; then profile="${2:?--profile release|dev}"; fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
dist="${DIST:-$PWD/dist}"
mkdir -p "$dist"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(uname -m)

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package.sh: installing cargo-deb" >&2
  cargo install cargo-deb --version 3.8.0 --locked
fi
command -v dpkg-shlibdeps >/dev/null || { echo "package.sh: dpkg-shlibdeps not found: install dpkg-dev" >&2; exit 2; }

if [ "$profile" = release ]; then
  cargo build --release --locked --bin mdu
  dir=release
else
  dir=debug
fi
[ -x "$target/$dir/mdu" ] || { echo "package.sh: no $target/$dir/mdu: build it first" >&2; exit 2; }

# .deb: cargo-deb strips the binary and declares its dependencies (Cargo.toml [package.metadata.deb]).
deb_args=(--no-build --output "$dist")
[ "$profile" = release ] || deb_args+=(--profile "$profile")
deb=$(cargo deb "${deb_args[@]}" | tail -1)
echo "package.sh: $deb ($(( $(stat -c %s "$deb") / 1024 / 1024 )) MiB)"

# .tar.gz: the same files under one folder, laid out as under /usr.
name="mdu-workbench-$version-$arch-linux"
stage=$(mktemp -d)
root="$stage/$name"
install -Dm755 "$target/$dir/mdu" "$root/bin/mdu"
strip "$root/bin/mdu" 2>/dev/null || true
install -Dm644 packaging/mdu-workbench.desktop "$root/share/applications/mdu-workbench.desktop"
install -Dm644 packaging/mdu-workbench.svg "$root/share/icons/hicolor/scalable/apps/mdu-workbench.svg"
install -Dm644 packaging/mdu-workbench-256.png "$root/share/icons/hicolor/256x256/apps/mdu-workbench.png"
install -Dm644 README.md "$root/README.md"
install -Dm644 LICENSE "$root/LICENSE"
tar -C "$stage" -czf "$dist/$name.tar.gz" "$name"
rm -rf "$stage"
echo "package.sh: $dist/$name.tar.gz ($(( $(stat -c %s "$dist/$name.tar.gz") / 1024 / 1024 )) MiB)"
