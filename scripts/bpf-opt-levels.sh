#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the XDP program at every opt-level the build allows, a skeleton
# for each and a module for each, for selftests/xdpguard_optlevels.sh: the
# verifier must accept the program however LLVM optimised it (a bound the
# verifier relies on must never depend on an optimisation).
#
# Usage: scripts/bpf-opt-levels.sh [LEVEL...]     (default: 0 1 2 3 s z)
#        KDIR=tree SKEL_BIN=target/release/xdpguard-skel (as `make opt-levels`)
#
# All levels share one cargo target directory, target/bpf-opt: the level is
# a per-package profile override (--config
# profile.release.package.xdpguard-bpf.opt-level=N), so `core`,
# compiler_builtins and aya-ebpf are built once (at the release profile's
# level) and only the program crate is compiled and linked again for each
# level; rustc hands the same level to bpf-linker (-O0 ... -Oz), which
# optimises the whole program, `core` included, at it.
#
# For each LEVEL, in build/opt/O<LEVEL>/: the ELF (xdpguard-bpf.o),
# skel_generated.rs, build.log, and src/, a copy of the module's sources
# (Kbuild in 6.12 writes objects next to the sources, as for make
# module-debug) kept in sync file by file so that a rerun rebuilds only what
# changed; the module lands in build/opt/xdpguard-O<LEVEL>.ko.
#
# A level whose program does not build or whose skeleton is refused (e.g.
# a call left in the program) is reported with the exact error and skipped;
# build/opt/summary.txt has one line per level ("O<L> ok" or "O<L> skipped:
# STAGE: ERROR"), which the selftest reports. A module that does not build
# from a good skeleton is not an opt-level matter: that fails the script.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

LEVELS=("$@")
((${#LEVELS[@]})) || LEVELS=(0 1 2 3 s z)
OUT=build/opt
TARGET_DIR=target/bpf-opt
SKEL_BIN=${SKEL_BIN:-target/release/xdpguard-skel}
KDIR=${KDIR:-$(scripts/build-kernel.sh --print-kdir)}

[[ -x $SKEL_BIN ]] || { echo "bpf-opt-levels: no $SKEL_BIN (make skel)" >&2; exit 2; }
[[ -d $KDIR ]] || { echo "bpf-opt-levels: no kernel tree at $KDIR (make kernel)" >&2; exit 2; }
KMAKE_ARGS=$(scripts/check-toolchain.sh --make-args "$KDIR")

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
# The kernel the modules are for, as `uname -r` and `uname -v` print it
# there: the selftest skips modules of another kernel.
uts=$(sed -n 's/^#define UTS_VERSION "\(.*\)"$/\1/p' "$KDIR"/include/generated/{utsversion,compile}.h 2>/dev/null | head -n 1)
echo "$(cat "$KDIR/include/config/kernel.release") $uts" >"$OUT/kernel.txt"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The module's sources, the one list (scripts/dist/module-sources.sh, as
# make module-debug, DKMS and the in-tree copy take them), without the
# generated skeleton, which each level brings.
module_sources() {
	scripts/dist/module-sources.sh "$ROOT" | grep -vxF rust/xdpguard/skel_generated.rs
}

# The sources a copy DEST holds, to delete the ones the list has dropped.
copied_sources() {
	(cd "$1" && find Kbuild rust -type f \( -name Kbuild -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) \
		! -name '*.mod.c' ! -name skel_generated.rs -print)
}

# sync_file FROM TO: copies only when the contents differ, so an unchanged
# file keeps its time stamp and Kbuild does not rebuild from it.
sync_file() {
	cmp -s "$1" "$2" && return 0
	mkdir -p "$(dirname "$2")" && cp "$1" "$2"
}

# sync_sources DEST SKEL: DEST mirrors the module's sources plus SKEL as
# rust/xdpguard/skel_generated.rs; sources deleted here are deleted there.
sync_sources() {
	local dest=$1 skel=$2 f
	while IFS= read -r f; do
		sync_file "$f" "$dest/$f" || return
	done < <(module_sources)
	if [[ -d $dest ]]; then
		while IFS= read -r f; do
			[[ -e $f ]] || rm -f "$dest/$f"
		done < <(copied_sources "$dest" 2>/dev/null)
	fi
	sync_file "$skel" "$dest/rust/xdpguard/skel_generated.rs"
}

# First lines of a log that say what went wrong (rustc/bpf-linker errors).
first_error() {
	grep -m 3 -E '^(error|ERROR|fatal|xdpguard-skel:)|[Ee]rror:' "$1" | paste -sd ' ' | cut -c 1-400
}

# What the program still calls, when the skeleton refuses a relocation
# (a call into a section of functions, e.g. a panic left in): "; calls
# into SECTION: FUNCTION ...".
OBJDUMP=$(command -v llvm-objdump-22 || command -v llvm-objdump)
called() {
	[[ -n $OBJDUMP ]] || return 0
	local sec
	for sec in $("$OBJDUMP" -r "$1" 2>/dev/null |
		awk '/^RELOCATION RECORDS FOR/ { prog = ($4 == "[xdp]:") } prog && $2 == "R_BPF_64_32" { print $3 }' | sort -u); do
		printf '; calls into %s: %s' "$sec" \
			"$("$OBJDUMP" -t -C "$1" | awk -v s="$sec" '$4 == s && $3 == "F" { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }' | paste -sd ' ')"
	done
}

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
built=0 skipped=0 failed=0
t_all=$(now)
for L in "${LEVELS[@]}"; do
	case $L in
	0 | 1 | 2 | 3) value=$L ;;
	s | z) value="\"$L\"" ;;
	*) echo "bpf-opt-levels: unknown opt-level $L (0 1 2 3 s z)" >&2; exit 2 ;;
	esac
	dir=$OUT/O$L
	ko=$OUT/xdpguard-O$L.ko
	log=$dir/build.log
	mkdir -p "$dir"
	rm -f "$ko" "$dir/xdpguard-bpf.o" "$dir/skel_generated.rs"
	: >"$log"

	t=$(now)
	exe=$(RUSTC_BOOTSTRAP=1 cargo build --locked --release -p xdpguard-bpf \
		--target bpfel-unknown-none -Z build-std=core --target-dir "$TARGET_DIR" \
		--config "profile.release.package.xdpguard-bpf.opt-level=$value" \
		--message-format=json-render-diagnostics 2>>"$log" |
		jq -r 'select(.reason == "compiler-artifact" and .target.name == "xdpguard-bpf") | .executable // empty')
	if [[ -z $exe || ! -f $exe ]]; then
		err=$(first_error "$log")
		echo "O$L skipped: bpf: ${err:-cargo build failed, see $log}" | tee -a "$summary"
		skipped=$((skipped + 1))
		continue
	fi
	cp "$exe" "$dir/xdpguard-bpf.o"
	t_bpf=$(since "$t")

	t=$(now)
	if ! "$SKEL_BIN" "$dir/xdpguard-bpf.o" "$dir/skel_generated.rs" 2>>"$log"; then
		rm -f "$dir/skel_generated.rs"
		echo "O$L skipped: skeleton: $(first_error "$log")$(called "$dir/xdpguard-bpf.o")" | tee -a "$summary"
		skipped=$((skipped + 1))
		continue
	fi
	insns=$(grep -c '^    0x' "$dir/skel_generated.rs")

	sync_sources "$dir/src" "$dir/skel_generated.rs" || exit 1
	if ! make -C "$KDIR" M="$ROOT/$dir/src" $KMAKE_ARGS modules >>"$log" 2>&1; then
		echo "O$L FAILED: module: $(first_error "$log") (see $log)" | tee -a "$summary"
		failed=$((failed + 1))
		continue
	fi
	cp "$dir/src/rust/xdpguard/xdpguard.ko" "$ko"
	echo "O$L ok: $insns instructions; program ${t_bpf} s, skeleton and module $(since "$t") s" | tee -a "$summary"
	built=$((built + 1))
done
# Levels not built this time keep their lines of an earlier run only if
# their module is still there.
if [[ -f $OUT/summary.txt ]]; then
	while IFS= read -r line; do
		l=${line%% *}
		grep -q "^$l " "$summary" && continue
		[[ $line == *" ok:"* && ! -f $OUT/xdpguard-$l.ko ]] && continue
		echo "$line" >>"$summary"
	done <"$OUT/summary.txt"
fi
sort "$summary" >"$OUT/summary.txt"
echo "bpf-opt-levels: $built built, $skipped skipped, $failed failed in $(since "$t_all") s ($OUT/summary.txt)"
((failed == 0))
