#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (make bench): loads xdpguard and runs
# xdpguard-bench; the CSV lands in the VM's output directory
# (build/vm/bench/bench.csv on the host). XDPGUARD_BENCH_ARGS adds options.
set -euo pipefail
source "$(dirname "$0")/../selftests/lib.sh"
trap xg_cleanup EXIT
xg_unload
insmod "$XG_KO"
echo "machine: $(nproc) CPU(s) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), kernel $(uname -r)," \
	"accelerator: $(cat /sys/devices/system/cpu/vulnerabilities/meltdown >/dev/null 2>&1; grep -q hypervisor /proc/cpuinfo && echo 'QEMU guest' || echo 'bare metal')"
# shellcheck disable=SC2086
"$XG_DIR/../target/release/xdpguard-bench" --csv /run/xgout/bench.csv ${XDPGUARD_BENCH_ARGS:-}
