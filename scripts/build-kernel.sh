#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the xdpguard test kernel from Debian's linux-source-6.12 and
# qemu/kernel.config into a cache outside the repository, keyed by what went
# into it (source version, config fragments, rustc, bindgen, the C compiler,
# this script). A tree whose key is unchanged is reused; re-running is a no-op.
#
# Flavours: `test` (default; gcc, qemu/kernel.config) and `debug` (clang-19
# with LLVM=-19, qemu/kernel.config + qemu/kernel-debug.config: KASAN,
# lockdep, kmemleak, fault injection; see Documentation/testing.rst).
#
# Usage: build-kernel.sh [--flavour test|debug] [--print-kdir]
# Environment: XDPGUARD_KFLAVOUR (same as --flavour), XDPGUARD_KCONFIG
# (space-separated fragments replacing the flavour's), XDPGUARD_CACHE.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDPGUARD_CACHE:-$HOME/.cache/xdpguard}
FLAVOUR=${XDPGUARD_KFLAVOUR:-test}
PRINT_KDIR=
while (($#)); do
	case "$1" in
	--flavour) FLAVOUR=$2; shift 2 ;;
	--print-kdir) PRINT_KDIR=1; shift ;;
	*) echo "build-kernel.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
# LLVM= as the kernel's Makefile takes it: "-19" picks clang-19, ld.lld-19,
# llvm-ar-19, ... (Debian's versioned names); empty means gcc and binutils.
case "$FLAVOUR" in
test) FRAGMENTS="$ROOT/qemu/kernel.config" LLVM_ARG= MINUTES=7 ;;
debug) FRAGMENTS="$ROOT/qemu/kernel.config $ROOT/qemu/kernel-debug.config" LLVM_ARG=-19 MINUTES=25 ;;
*) echo "build-kernel.sh: unknown flavour $FLAVOUR (test or debug)" >&2; exit 2 ;;
esac
read -r -a FRAGMENTS <<<"${XDPGUARD_KCONFIG:-$FRAGMENTS}"
KMAKE=(make ${LLVM_ARG:+LLVM=$LLVM_ARG})
SRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

log() { printf 'kernel: %s\n' "$*"; }

key() {
	{
		dpkg-query -W -f='${Version}\n' linux-source-6.12
		cat "${FRAGMENTS[@]}"
		rustc -vV
		bindgen --version
		if [[ -n "$LLVM_ARG" ]]; then
			echo "LLVM=$LLVM_ARG"
			"clang$LLVM_ARG" --version | head -n1
			"ld.lld$LLVM_ARG" --version | head -n1
		else
			gcc --version | head -n1
		fi
		cat "$ROOT/scripts/build-kernel.sh"
	} | sha256sum | cut -c1-16
}

KEY=$(key)
KDIR="$CACHE/linux-$FLAVOUR-$KEY"
if [[ -n "$PRINT_KDIR" ]]; then
	echo "$KDIR"
	exit 0
fi

mkdir -p "$CACHE"
# One build per key at a time: a second `make` (another checkout, a test
# started meanwhile) waits for the first and then reuses its tree.
exec 9>"$KDIR.lock"
if ! flock -n 9; then
	log "another build of $KDIR is running; waiting for it"
	flock 9
fi
if [[ -f "$KDIR/.xdpguard-complete" ]]; then
	ln -sfn "$KDIR" "$CACHE/linux-$FLAVOUR"
	log "reusing $KDIR"
	exit 0
fi

rm -rf "$KDIR"
log "extracting $(basename "$SRC_TARBALL") into $KDIR"
mkdir -p "$KDIR.tmp"
tar -C "$KDIR.tmp" -xf "$SRC_TARBALL"
mv "$KDIR.tmp/linux-source-6.12" "$KDIR"
rmdir "$KDIR.tmp"

cd "$KDIR"
log "configuring (tinyconfig + ${FRAGMENTS[*]##*/}${LLVM_ARG:+, LLVM=$LLVM_ARG})"
"${KMAKE[@]}" -s tinyconfig
./scripts/kconfig/merge_config.sh -m .config "${FRAGMENTS[@]}" >/dev/null
"${KMAKE[@]}" -s olddefconfig
# Every option of the fragment must have stuck; a silent drop (a missing
# dependency) would give a kernel that boots but cannot run the tests.
bad=0
while IFS= read -r line; do
	if [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		opt=${BASH_REMATCH[1]} want=
	elif [[ "$line" =~ ^CONFIG_ ]]; then
		opt=${line%%=*} want=${line#*=}
	else
		continue
	fi
	got=$(grep -E "^$opt=" .config | cut -d= -f2- || true)
	if [[ "$got" != "$want" ]]; then
		log "config option $opt: wanted $want, got ${got:-unset}"
		bad=1
	fi
done < <(cat "${FRAGMENTS[@]}")
((bad == 0)) || { log "fix ${FRAGMENTS[*]} (missing dependencies?)"; exit 1; }
"${KMAKE[@]}" -s rustavailable >/dev/null

jobs=$(($(nproc) + 1))
log "building bzImage and modules with -j$jobs (about $MINUTES minutes on 2 cores); log: $KDIR/build.log"
start=$(date +%s)
set +e
"${KMAKE[@]}" -j"$jobs" bzImage modules >build.log 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 30
	kill -0 "$pid" 2>/dev/null || break
	log "  $(($(date +%s) - start)) s, $(grep -c '^  [A-Z]' build.log) steps, last: $(grep '^  [A-Z]' build.log | tail -n1 | awk '{print $2}')"
done
wait "$pid"
rc=$?
set -e
if ((rc != 0)); then
	tail -n 40 build.log
	log "build failed (exit $rc); full log in $KDIR/build.log"
	exit 1
fi
touch .xdpguard-complete
ln -sfn "$KDIR" "$CACHE/linux-$FLAVOUR"
log "built $KDIR in $(($(date +%s) - start)) s"
