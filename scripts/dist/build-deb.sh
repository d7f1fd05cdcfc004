#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build xdpguard's Debian source package and binary packages (xdpguard,
# xdpguard-dkms) into build/deb/, then run lintian on them.
#
# The source package is made from the files git tracks, plus what a build
# without network and without a BPF toolchain needs: the generated BPF
# skeleton (make skel) and vendor/ (cargo vendor, from the local cargo
# cache when it has every crate, else from crates.io). dpkg-buildpackage
# then runs offline.
#
# Usage: build-deb.sh   (run through `make deb`, which makes the skeleton)
#        XDPGUARD_LINTIAN=0 skips lintian.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build/deb
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"

version=$(scripts/dist/version.sh)
changelog=$(dpkg-parsechangelog -l debian/changelog -S Version)
[[ "$changelog" == "$version" ]] || {
	echo "build-deb: debian/changelog is at $changelog but Cargo.toml at $version; add an entry: dch -v $version" >&2
	exit 1
}
[[ -f rust/xdpguard/skel_generated.rs ]] || { echo "build-deb: run 'make skel' first" >&2; exit 1; }

rm -rf "$OUT"
src=$OUT/xdpguard-$version
mkdir -p "$src"
# Tracked and new (not ignored) files that exist: the working tree as it is.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done |
	xargs -0 cp -a --parents -t "$src"
cp rust/xdpguard/skel_generated.rs "$src/rust/xdpguard/"

echo "build-deb: vendoring crates into the source package"
(cd "$src" && { cargo vendor --locked --offline --versioned-dirs vendor >/dev/null 2>"$OUT/vendor.log" ||
	cargo vendor --locked --versioned-dirs vendor >/dev/null 2>>"$OUT/vendor.log"; }) || {
	cat "$OUT/vendor.log" >&2
	echo "build-deb: cargo vendor failed (no network and crates missing from ~/.cargo/registry?)" >&2
	exit 1
}

echo "build-deb: dpkg-buildpackage -us -uc (log: $OUT/build.log)"
(cd "$src" && dpkg-buildpackage -us -uc >"$OUT/build.log" 2>&1) || {
	tail -n 40 "$OUT/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed; full log in $OUT/build.log" >&2
	exit 1
}
ls -l "$OUT"/*.deb "$OUT"/*.dsc

if [[ "${XDPGUARD_LINTIAN:-1}" == 0 ]]; then
	echo "build-deb: lintian skipped (XDPGUARD_LINTIAN=0)"
	exit 0
fi
echo "build-deb: lintian (a few minutes: the source has the vendored crates)"
changes=$(ls "$OUT"/xdpguard_"$version"_*.changes)
lintian --info --display-info --fail-on error,warning "$changes" | tee "$OUT/lintian.txt"
echo "build-deb: lintian passed (no errors or warnings; output in $OUT/lintian.txt)"
