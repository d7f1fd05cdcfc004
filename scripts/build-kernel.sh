#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the xdpguard test kernel from Debian's linux-source-6.12 and
# qemu/kernel.config into a cache outside the repository, keyed by what went
# into it (source version, config fragment, rustc, bindgen, gcc, this script).
# A tree whose key is unchanged is reused; re-running is a no-op.
#
# Usage: build-kernel.sh [--print-kdir]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDPGUARD_CACHE:-$HOME/.cache/xdpguard}
FRAGMENT=${XDPGUARD_KCONFIG:-$ROOT/qemu/kernel.config}
FLAVOUR=${XDPGUARD_KFLAVOUR:-test}
SRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

log() { printf 'kernel: %s\n' "$*"; }

key() {
	{
		dpkg-query -W -f='${Version}\n' linux-source-6.12
		cat "$FRAGMENT"
		rustc -vV
		bindgen --version
		gcc --version | head -n1
		cat "$ROOT/scripts/build-kernel.sh"
	} | sha256sum | cut -c1-16
}

KEY=$(key)
KDIR="$CACHE/linux-$FLAVOUR-$KEY"
if [[ "${1:-}" == --print-kdir ]]; then
	echo "$KDIR"
	exit 0
fi

if [[ -f "$KDIR/.xdpguard-complete" ]]; then
	ln -sfn "$KDIR" "$CACHE/linux-$FLAVOUR"
	log "reusing $KDIR"
	exit 0
fi

mkdir -p "$CACHE"
rm -rf "$KDIR"
log "extracting $(basename "$SRC_TARBALL") into $KDIR"
mkdir -p "$KDIR.tmp"
tar -C "$KDIR.tmp" -xf "$SRC_TARBALL"
mv "$KDIR.tmp/linux-source-6.12" "$KDIR"
rmdir "$KDIR.tmp"

cd "$KDIR"
log "configuring (tinyconfig + $(basename "$FRAGMENT"))"
make -s tinyconfig
./scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >/dev/null
make -s olddefconfig
# Every option of the fragment must have stuck; a silent drop (a missing
# dependency) would give a kernel that boots but cannot run the tests.
bad=0
while IFS= read -r line; do
	[[ "$line" =~ ^CONFIG_ ]] || continue
	opt=${line%%=*} want=${line#*=}
	got=$(grep -E "^$opt=" .config | cut -d= -f2- || true)
	if [[ "$got" != "$want" ]]; then
		log "config option $opt: wanted $want, got ${got:-unset}"
		bad=1
	fi
done <"$FRAGMENT"
((bad == 0)) || { log "fix $FRAGMENT (missing dependencies?)"; exit 1; }
make -s rustavailable >/dev/null

jobs=$(($(nproc) + 1))
log "building bzImage and modules with -j$jobs (about 7 minutes on 2 cores); log: $KDIR/build.log"
start=$(date +%s)
set +e
make -j"$jobs" bzImage modules >build.log 2>&1 &
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
