#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# DKMS build step of xdpguard (installed as scripts/dkms-build.sh in the
# DKMS source tree). "check" verifies the kernel tree and finds the rustc it
# was built with (scripts/check-toolchain.sh, one paragraph on failure);
# "build" checks again and runs the kernel's module build with that rustc.
# The tree ships the generated BPF skeleton, so no BPF toolchain is needed.
#
# Usage: dkms-build.sh check|build KERNEL_SOURCE_DIR
set -euo pipefail
mode=${1:?usage: dkms-build.sh check|build KERNEL_SOURCE_DIR}
KDIR=${2:?usage: dkms-build.sh check|build KERNEL_SOURCE_DIR}
cd "$(dirname "$0")/.."

vars=$(scripts/check-toolchain.sh --print-vars "$KDIR") || exit 1
case "$mode" in
check) echo "xdpguard: $KDIR is a Rust kernel tree; building with ${vars#RUSTC=}" ;;
build) exec make -C "$KDIR" M="$PWD" "$vars" -j"$(nproc)" modules ;;
*) echo "dkms-build.sh: unknown mode $mode" >&2; exit 2 ;;
esac
