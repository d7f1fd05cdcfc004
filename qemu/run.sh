#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the xdpguard test kernel in QEMU with the host's root file system
# shared read-only over virtio-9p (as virtme-ng does), run one command in
# the guest, and bring back its exit status and the guest's dmesg.
#
# Usage: qemu/run.sh [--name NAME] [--kernel BZIMAGE] [--mem SIZE]
#                    [--smp N] [--timeout SECONDS] [--append KERNEL-ARGS]
#                    [--icount]
#                    -- COMMAND [ARGS...]
#
# COMMAND runs as root in the guest, from the repository's top directory,
# with the host's XDPGUARD_* environment variables, and XDPGUARD_ICOUNT=1
# under --icount (tools then report instructions, not ns).
# Results go to $XDPGUARD_OUT (default build/vm/NAME): console.log,
# dmesg.txt, exit-code. The run fails when the command fails, when the VM
# does not finish within the timeout, or when the guest kernel logged any
# splat (WARNING:, BUG:, Oops, panic, refcount_t:, lockdep, kmemleak, ...).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDPGUARD_CACHE:-$HOME/.cache/xdpguard}
NAME=vm
KERNEL=
MEM=2G
SMP=2
TIMEOUT=1200
APPEND=
ICOUNT=

while (($#)); do
	case "$1" in
	--name) NAME=$2; shift 2 ;;
	--kernel) KERNEL=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--smp) SMP=$2; shift 2 ;;
	# Instruction counting (Documentation/performance.rst): TCG, the guest
	# clock advancing 1 ns per instruction; use with --smp 1.
	--icount) ICOUNT="-icount shift=0,sleep=off,align=off"; shift ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--append) APPEND=$2; shift 2 ;;
	--) shift; break ;;
	-h | --help) sed -n '3,/^set -e/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
	*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
(($#)) || { echo "run.sh: no command given (see --help)" >&2; exit 2; }
# The default kernel is the keyed tree of this checkout (see build-kernel.sh).
[[ -n "$KERNEL" ]] || KERNEL="$("$ROOT/scripts/build-kernel.sh" --print-kdir)/arch/x86/boot/bzImage"
[[ -f "$KERNEL" ]] || { echo "run.sh: no kernel at $KERNEL; run 'make kernel' first" >&2; exit 2; }

OUT=${XDPGUARD_OUT:-$ROOT/build/vm/$NAME}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The guest runs this script; arguments are quoted as the host shell sees them.
{
	echo "cd $(printf '%q' "$ROOT")"
	printf 'export PATH=%q\n' "$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	printf 'export XDPGUARD_VM=1 HOME=/tmp TERM=dumb\n'
	# XDPGUARD_* settings (test sizes, paths) carry over into the guest;
	# XDPGUARD_ICOUNT=1 says the guest clock counts instructions (--icount)
	# and is set by this script only.
	while IFS= read -r var; do
		printf 'export %q\n' "$var"
	done < <(env | grep '^XDPGUARD_' | grep -v '^XDPGUARD_ICOUNT=' || true)
	[[ -z "$ICOUNT" ]] || printf 'export XDPGUARD_ICOUNT=1\n'
	printf '%q ' "$@"
	echo
} >"$OUT/cmd.sh"

accel=$("$ROOT/qemu/accel.sh" "$KERNEL")
[[ -z "$ICOUNT" ]] || accel=tcg
echo "run.sh: booting $(basename "$KERNEL") with $accel, $SMP CPUs, $MEM (output in $OUT)"

cmdline="console=ttyS0 root=/dev/root rootfstype=9p"
cmdline+=" rootflags=trans=virtio,version=9p2000.L,msize=262144 ro"
# loglevel=4: only warnings and errors interleave with the command's output;
# the whole log is saved as dmesg.txt.
cmdline+=" init=$ROOT/qemu/guest-init.sh panic=-1 loglevel=4"
# Unknown name=value parameters without a dot reach init's environment.
cmdline+=" XGREPO=$ROOT"
cmdline+=${APPEND:+ $APPEND}

set +e
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
	-accel "$accel" $ICOUNT -cpu max -smp "$SMP" -m "$MEM" \
	-nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$KERNEL" -append "$cmdline" \
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=root,mount_tag=/dev/root \
	-fsdev local,id=out,path="$OUT",security_model=none \
	-device virtio-9p-pci,fsdev=out,mount_tag=xgout \
	</dev/null 2>&1 | tee "$OUT/console.log"
status=${PIPESTATUS[0]}
set -e

if ((status == 124 || status == 137)); then
	echo "run.sh: the VM did not finish within $TIMEOUT s" >&2
	exit 124
fi
if [[ ! -f "$OUT/exit-code" ]]; then
	echo "run.sh: the guest did not report an exit status (kernel panic or init failure?); see $OUT/console.log" >&2
	exit 1
fi
rc=$(cat "$OUT/exit-code")
[[ -f "$OUT/dmesg.txt" ]] || cp "$OUT/console.log" "$OUT/dmesg.txt"
if "$ROOT/qemu/check-splats.sh" "$OUT/dmesg.txt"; then
	echo "run.sh: guest dmesg has no kernel splat ($OUT/dmesg.txt)"
else
	echo "run.sh: kernel splat in the guest's dmesg: failing the run" >&2
	rc=1
fi
echo "run.sh: guest command exited $rc"
exit "$rc"
