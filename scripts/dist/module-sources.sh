#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the files a kernel module build of xdpguard needs, relative to the
# top of the repository, one a line: the DKMS source tree, the in-tree copy
# and `make install`'s checks all use this one list. The generated BPF
# skeleton is in it, so none of those builds needs bpf-linker or nightly
# Rust. Fails when the skeleton is missing or a #[path]/include! of the
# module points outside the list.
#
# Usage: module-sources.sh [ROOT]
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"

[[ -f rust/xdpguard/skel_generated.rs ]] || {
	echo "module-sources: rust/xdpguard/skel_generated.rs is missing; run 'make skel' first" >&2
	exit 1
}

list=$(
	{
		echo Kbuild
		ls rust/xdpguard/Kbuild rust/xdpguard/*.rs rust/xdpguard/ffi/*.rs rust/xdpguard/*.c rust/xdpguard/*.h 2>/dev/null
		ls rust/abi/src/*.rs
	} | grep -v '\.mod\.c$' | sort -u
)

# Every file the module's sources pull in by relative path must be listed.
while IFS= read -r src; do
	dir=$(dirname "$src")
	while IFS= read -r rel; do
		target=$(realpath -m --relative-to=. "$dir/$rel")
		grep -qxF "$target" <<<"$list" || {
			echo "module-sources: $src includes $rel ($target), which is not in the list" >&2
			exit 1
		}
	done < <(sed -n -e 's/.*#\[path = "\([^"]*\)"\].*/\1/p' -e 's/.*include!("\([^"]*\)").*/\1/p' "$src")
done < <(grep '^rust/xdpguard/.*\.rs$' <<<"$list")
echo "$list"
