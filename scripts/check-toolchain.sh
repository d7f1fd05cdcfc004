#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Refuse to build an out-of-tree Rust module against a kernel tree whose
# Rust metadata is missing or was made by another rustc/bindgen: the build
# would otherwise end in a wall of "incompatible metadata" errors.
#
# A tree built with clang (CONFIG_CC_IS_CLANG) needs the same LLVM= for
# the out-of-tree build (kbuild would otherwise hand gcc clang's flags):
# `check-toolchain.sh --make-args KDIR` prints it (LLVM=-19 when clang-19
# is installed and made the tree, LLVM=1 for a plain `clang`, nothing for gcc).
#
# Usage: check-toolchain.sh [--make-args] KDIR
set -euo pipefail
MAKE_ARGS=
if [[ "${1:-}" == --make-args ]]; then
	MAKE_ARGS=1
	shift
fi
KDIR=${1:?usage: check-toolchain.sh [--make-args] KDIR}
conf="$KDIR/include/config/auto.conf"

# LLVM= for a clang-built tree: the versioned tools of the major version that
# built it if installed (Debian's clang-19, ld.lld-19, ...), else plain clang.
llvm_arg() {
	grep -q '^CONFIG_CC_IS_CLANG=y' "$conf" 2>/dev/null || return 0
	local major
	major=$(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$conf")
	major=$((major / 10000))
	if command -v "clang-$major" >/dev/null && command -v "ld.lld-$major" >/dev/null; then
		echo "LLVM=-$major"
	else
		echo "LLVM=1"
	fi
}
if [[ -n "$MAKE_ARGS" ]]; then
	llvm_arg
	exit 0
fi

fail() {
	printf 'xdpguard: cannot build against %s:\n  %s\n' "$KDIR" "$*" >&2
	exit 1
}

[[ -f "$conf" ]] || fail "no include/config/auto.conf: not a configured and built kernel tree (set KDIR to one, e.g. /lib/modules/\$(uname -r)/build)"
grep -q '^CONFIG_RUST=y' "$conf" || fail "the kernel was built without CONFIG_RUST=y; xdpguard is a Rust module and needs a Rust-enabled kernel"
[[ -f "$KDIR/rust/libkernel.rmeta" ]] || fail "rust/libkernel.rmeta is missing: the tree lacks the kernel's Rust metadata (on Ubuntu: apt install linux-lib-rust-\$(uname -r))"

# auto.conf writes these strings unquoted; .config quotes them.
conf_text() { sed -n "s/^$1=//p" "$conf" | sed 's/^"\(.*\)"$/\1/'; }

want_rustc=$(conf_text CONFIG_RUSTC_VERSION_TEXT)
have_rustc=$(rustc --version 2>/dev/null || echo "no rustc in PATH")
[[ "$want_rustc" == "$have_rustc" ]] || fail "the kernel was built with '$want_rustc' but PATH has '$have_rustc'; out-of-tree Rust modules need the exact same rustc (install that version with rustup and put it first in PATH)"

want_bindgen=$(conf_text CONFIG_BINDGEN_VERSION_TEXT)
if [[ -n "$want_bindgen" ]]; then
	have_bindgen=$(bindgen --version 2>/dev/null || echo "no bindgen in PATH")
	[[ "$want_bindgen" == "$have_bindgen" ]] || fail "the kernel was built with '$want_bindgen' but PATH has '$have_bindgen' (cargo install bindgen-cli --locked --version ${want_bindgen#bindgen })"
fi

if grep -q '^CONFIG_CC_IS_CLANG=y' "$conf"; then
	cc=$(llvm_arg)
	cc=${cc#LLVM=}
	[[ "$cc" == 1 ]] && cc=
	command -v "clang$cc" >/dev/null ||
		fail "the kernel was built with clang ($(conf_text CONFIG_CC_VERSION_TEXT)) and no clang is in PATH (apt install clang-$(($(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$conf") / 10000)) lld-$(($(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$conf") / 10000)))"
fi
