#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print xdpguard's version: the one place it is set is [workspace.package]
# in the top Cargo.toml (the CLI, dkms.conf and debian/changelog follow it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
v=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
[[ -n "$v" ]] || { echo "version.sh: no [workspace.package] version in $ROOT/Cargo.toml" >&2; exit 1; }
echo "$v"
