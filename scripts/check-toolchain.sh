#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Refuse to build an out-of-tree Rust module against a kernel tree it cannot
# be built for: a kernel older than 6.12, one without CONFIG_RUST=y, one
# whose Rust metadata is missing, or one made by another rustc/bindgen. The
# build would otherwise end in a wall of compiler errors. Each failure is one
# paragraph saying what is missing and how to get it.
#
# A tree built with clang (CONFIG_CC_IS_CLANG) needs the same LLVM= for
# the out-of-tree build (kbuild would otherwise hand gcc clang's flags):
# `check-toolchain.sh --make-args KDIR` prints it (LLVM=-19 when clang-19
# is installed and made the tree, LLVM=1 for a plain `clang`, nothing for gcc).
#
# Usage: check-toolchain.sh [--print-vars | --make-args] KDIR
#
#   Without options: check that PATH has the rustc and bindgen the kernel
#   recorded, by their plain names or by the versioned names Ubuntu's
#   toolchain packages install (rustc-1.80 from rustc-1.80, which also puts
#   /usr/lib/rust-1.80/bin/rustc; bindgen-0.65 from bindgen-0.65).
#   --print-vars: also look for matching tools outside PATH (~/.cargo/bin,
#   /root/.cargo/bin, /usr/local/bin, rustup toolchains) and print
#   "RUSTC=/path/rustc" for the kernel's make, the tool the check chose
#   (`make module` and DKMS builds pass it; DKMS runs with a minimal PATH).
#
# On Ubuntu (ID or ID_LIKE in /etc/os-release, or $XDPGUARD_OS_RELEASE)
# the mismatch messages name the packages of the kernel's own versions.
#   --make-args: print only the LLVM= argument the tree needs.
set -euo pipefail

print_vars=0
MAKE_ARGS=
case "${1:-}" in
--print-vars) print_vars=1; shift ;;
--make-args) MAKE_ARGS=1; shift ;;
esac
KDIR=${1:?usage: check-toolchain.sh [--print-vars | --make-args] KDIR}
conf="$KDIR/include/config/auto.conf"
MIN_KERNEL=6.12

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

krel=$(cat "$KDIR/include/config/kernel.release" 2>/dev/null || echo "in $KDIR")

# One paragraph on stderr, wrapped; then exit 1.
fail() {
	{
		printf 'xdpguard: cannot build for kernel %s (%s): %s\n' "$krel" "$KDIR" "$*" | fmt -w 78
	} >&2
	exit 1
}

[[ -f "$conf" ]] ||
	fail "include/config/auto.conf is missing, so this is not a configured and built kernel tree. Point KDIR (or dkms --kernelsourcedir) at one, e.g. /lib/modules/\$(uname -r)/build from the kernel's headers package."

# auto.conf writes strings unquoted; .config quotes them.
conf_text() { sed -n "s/^$1=//p" "$conf" | sed 's/^"\(.*\)"$/\1/'; }

kver=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$krel")
if [[ -n "$kver" ]] && [[ "$(printf '%s\n' "$MIN_KERNEL" "$kver" | sort -V | head -n1)" != "$MIN_KERNEL" ]]; then
	fail "xdpguard needs Linux $MIN_KERNEL or later (it uses the kernel's Rust APIs and kern_sys_bpf as of $MIN_KERNEL); this kernel is $krel. Install a $MIN_KERNEL or newer kernel with Rust enabled."
fi

grep -q '^CONFIG_RUST=y' "$conf" ||
	fail "the kernel was built without CONFIG_RUST=y, and xdpguard is a Rust module. Use a kernel with Rust enabled (Ubuntu's generic kernels have it; Debian's do not, so build one with CONFIG_RUST=y, see Documentation/packaging.rst)."

missing=()
for f in rust/libkernel.rmeta rust/libcore.rmeta rust/libmacros.so; do
	[[ -e "$KDIR/$f" ]] || missing+=("$f")
done
((${#missing[@]} == 0)) ||
	fail "the kernel's Rust metadata is missing (${missing[*]} not found). Headers packages ship it separately: on Ubuntu install linux-lib-rust-$krel (apt install linux-lib-rust-\$(uname -r) for the running kernel); for a self-built kernel use the build tree itself."

want_rustc=$(conf_text CONFIG_RUSTC_VERSION_TEXT)
want_bindgen=$(conf_text CONFIG_BINDGEN_VERSION_TEXT)
rustc_ver=$(awk '{print $2}' <<<"$want_rustc")
bindgen_ver=$(awk '{print $2}' <<<"$want_bindgen")
# major.minor, the version in Ubuntu's package and command names.
short() { sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$1"; }

# Candidate paths for a tool, PATH first: its plain name, then the
# versioned name of the wanted version ($2), then (rustc) Ubuntu's
# /usr/lib/rust-X.Y/bin; with --print-vars the usual install directories.
candidates() {
	local tool=$1 ver d
	ver=$(short "$2")
	type -P "$tool" || true
	[[ -z "$ver" ]] || type -P "$tool-$ver" || true
	[[ "$tool" != rustc || -z "$ver" || ! -x "/usr/lib/rust-$ver/bin/rustc" ]] || echo "/usr/lib/rust-$ver/bin/rustc"
	((print_vars)) || return 0
	for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/bin "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/*/bin /root/.rustup/toolchains/*/bin; do
		[[ -x "$d/$tool" ]] && echo "$d/$tool"
	done
}

# The first candidate of tool $1 whose --version prints exactly $2.
find_tool() {
	local tool=$1 want=$2 c
	while IFS= read -r c; do
		[[ -n "$c" ]] || continue
		if [[ "$("$c" --version 2>/dev/null | head -n1)" == "$want" ]]; then
			echo "$c"
			return 0
		fi
	done < <(candidates "$tool" "$(awk '{print $2}' <<<"$want")" | awk '!seen[$0]++')
	return 1
}

# Ubuntu ships the kernel's toolchain as versioned packages; say which.
os_release=${XDPGUARD_OS_RELEASE:-/etc/os-release}
ubuntu=0
if [[ -r "$os_release" ]] && grep -qE '^(ID|ID_LIKE)=.*\bubuntu\b' "$os_release"; then
	ubuntu=1
fi
ubuntu_hint() { # PACKAGES COMMANDS: the apt line, and "Or" before rustup's
	((ubuntu)) || { printf ' Get'; return 0; }
	printf ' On Ubuntu, install the packages of the kernel'"'"'s own toolchain: apt install %s (they provide %s), then build again. Or get' "$1" "$2"
}

if ! rustc=$(find_tool rustc "$want_rustc"); then
	have=$(rustc --version 2>/dev/null || echo "no rustc in PATH")
	pkgs="rustc-$(short "$rustc_ver")"
	provides="rustc-$(short "$rustc_ver")"
	if [[ -n "$want_bindgen" ]] && ! find_tool bindgen "$want_bindgen" >/dev/null; then
		pkgs+=" bindgen-$(short "$bindgen_ver")"
		provides+=" and bindgen-$(short "$bindgen_ver")"
	fi
	fail "the kernel was built with '$want_rustc' but the rustc found is '$have'. An out-of-tree Rust module must be compiled by exactly the rustc that built its kernel (and its bindgen, '$want_bindgen').$(ubuntu_hint "$pkgs" "$provides") it with 'rustup toolchain install $rustc_ver' and put it first in PATH (rustup default $rustc_ver, or PATH=\$HOME/.rustup/toolchains/$rustc_ver-$(uname -m)-unknown-linux-gnu/bin:\$PATH), then build again."
fi

if [[ -n "$want_bindgen" ]] && ! find_tool bindgen "$want_bindgen" >/dev/null; then
	have=$(bindgen --version 2>/dev/null || echo "no bindgen in PATH")
	fail "the kernel was built with '$want_bindgen' but the bindgen found is '$have'. Out-of-tree Rust modules need the same bindgen as the kernel.$(ubuntu_hint "bindgen-$(short "$bindgen_ver")" "bindgen-$(short "$bindgen_ver")") it with 'cargo install bindgen-cli --locked --version $bindgen_ver' (it needs libclang, e.g. apt install libclang-dev), then build again."
fi

if ((print_vars)); then
	echo "RUSTC=$rustc"
fi

if grep -q '^CONFIG_CC_IS_CLANG=y' "$conf"; then
	cc=$(llvm_arg)
	cc=${cc#LLVM=}
	[[ "$cc" == 1 ]] && cc=
	command -v "clang$cc" >/dev/null ||
		fail "the kernel was built with clang ($(conf_text CONFIG_CC_VERSION_TEXT)) and no clang is in PATH (apt install clang-$(($(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$conf") / 10000)) lld-$(($(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$conf") / 10000)))"
fi
