#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Make the DKMS source tree of xdpguard in DEST (e.g. /usr/src/xdpguard-0.1.0):
# the module sources (scripts/dist/module-sources.sh, with the generated
# BPF skeleton), the toolchain check, the DKMS build step and dkms.conf with
# the version filled in.
#
# Usage: dkms-tree.sh DEST
set -euo pipefail
DEST=${1:?usage: dkms-tree.sh DEST}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
version=$("$ROOT/scripts/dist/version.sh")
files=$("$ROOT/scripts/dist/module-sources.sh" "$ROOT")

mkdir -p "$DEST/scripts"
while IFS= read -r f; do
	install -D -m 0644 "$ROOT/$f" "$DEST/$f"
done <<<"$files"
install -m 0755 "$ROOT/scripts/check-toolchain.sh" "$ROOT/scripts/dist/dkms-build.sh" "$DEST/scripts/"
sed "s/@VERSION@/$version/" "$ROOT/scripts/dist/dkms.conf.in" >"$DEST/dkms.conf"
grep -q "^PACKAGE_VERSION=\"$version\"$" "$DEST/dkms.conf"
