#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Check, without installing anything, that the tools to build the named parts
# are here; list what is missing and how to get it, then exit 1.
#
#   cli     the CLI: cargo
#   bpf     the XDP program: cargo, rustup's rust-src, bpf-linker (LLVM 22)
#   kernel  the test kernel: Debian's kernel build packages, linux-source-6.12,
#           rustc and bindgen (make without KDIR= builds it)
#
# The module against a given KDIR= is checked by check-toolchain.sh (rustc
# and bindgen exactly as the tree was built). `make setup`
# (scripts/bootstrap.sh) installs all of it on Debian 12; `make demo`,
# `make test` and the other VM, benchmark and packaging targets run it.
#
# Usage: check-build-tools.sh PART...
set -euo pipefail

. "$(dirname "$0")/packages.sh"
export PATH="$HOME/.cargo/bin:$PATH"

missing=()
need() {
	local m
	for m in "${missing[@]}"; do [[ "$m" == "$1" ]] && return 0; done
	missing+=("$1")
}

has_cargo() {
	command -v cargo >/dev/null || { need "cargo (install Rust with rustup: https://rustup.rs, or apt install cargo)"; return 1; }
}

check_cli() { has_cargo || true; }

check_bpf() {
	has_cargo || return 0
	local sysroot
	sysroot=$(rustc --print sysroot 2>/dev/null || true)
	[[ -d "$sysroot/lib/rustlib/src/rust/library/core" ]] ||
		need "rust-src (rustup component add rust-src; the BPF target builds core from source)"
	[[ "$(bpf-linker --version 2>/dev/null)" == "bpf-linker $BPF_LINKER_VERSION" ]] ||
		need "bpf-linker $BPF_LINKER_VERSION (apt install llvm-22-dev libpolly-22-dev libzstd-dev, then LLVM_SYS_221_PREFIX=/usr/lib/llvm-22 RUSTFLAGS='-L /usr/lib/llvm-22/lib' cargo install bpf-linker --locked --version $BPF_LINKER_VERSION --no-default-features --features llvm-22)"
}

check_kernel() {
	if command -v dpkg-query >/dev/null; then
		local p absent=()
		for p in "${BUILD_PACKAGES[@]}"; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || absent+=("$p")
		done
		((${#absent[@]} == 0)) || need "Debian packages: ${absent[*]} (apt install ${absent[*]})"
	else
		need "the test kernel is built from Debian 12's linux-source-6.12; on another system build the module with KDIR=<your Rust-enabled kernel tree>"
	fi
	command -v rustc >/dev/null || need "rustc (rustup)"
	[[ "$(bindgen --version 2>/dev/null)" == "bindgen $BINDGEN_VERSION" ]] ||
		need "bindgen $BINDGEN_VERSION (LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install bindgen-cli --locked --version $BINDGEN_VERSION)"
}

(($#)) || { echo "usage: check-build-tools.sh cli|bpf|kernel..." >&2; exit 2; }
for part in "$@"; do
	case "$part" in
	cli) check_cli ;;
	bpf) check_bpf ;;
	kernel) check_kernel ;;
	*) echo "check-build-tools.sh: unknown part $part" >&2; exit 2 ;;
	esac
done
if ((${#missing[@]})); then
	{
		echo "xdpguard: cannot build ($*): missing"
		printf '  - %s\n' "${missing[@]}"
		echo "Nothing was installed. On Debian 12, 'make setup' (scripts/bootstrap.sh, as root) installs all of it."
	} >&2
	exit 1
fi
