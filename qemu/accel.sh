#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the QEMU accelerator to use: "kvm" if a KVM guest really boots here,
# else "tcg". On some machines /dev/kvm opens but guests hang at "Booting
# from ROM" (broken nested virtualisation), so a bounded boot is the only
# honest probe. The answer is cached per host boot. XDPGUARD_ACCEL=tcg|kvm
# skips the probe.
# Usage: accel.sh BZIMAGE
set -euo pipefail
if [[ -n "${XDPGUARD_ACCEL:-}" ]]; then
	echo "$XDPGUARD_ACCEL"
	exit 0
fi
if [[ ! -w /dev/kvm ]]; then
	echo tcg
	exit 0
fi
CACHE=${XDPGUARD_CACHE:-$HOME/.cache/xdpguard}
mkdir -p "$CACHE"
stamp="$CACHE/accel-$(cat /proc/sys/kernel/random/boot_id)"
if [[ -f "$stamp" ]]; then
	cat "$stamp"
	exit 0
fi
log=$(mktemp)
# No root file system: the kernel panics right after start-up and, with
# panic=-1 and -no-reboot, QEMU exits. Seeing the banner is enough.
{ timeout -k 2 20 qemu-system-x86_64 -accel kvm -cpu host -m 256M -nographic -no-reboot \
	-nodefaults -serial stdio -kernel "$1" -append "console=ttyS0 panic=-1" \
	</dev/null >"$log" 2>&1 || true; } 2>/dev/null
if grep -q 'Linux version' "$log"; then accel=kvm; else accel=tcg; fi
rm -f "$log"
echo "$accel" >"$stamp"
echo "$accel"
