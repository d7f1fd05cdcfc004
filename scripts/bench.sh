#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (make bench), in two parts; results go to the VM's
# output directory (build/vm/bench/ on the host):
#   prog   xdpguard-bench: the XDP program's cost per packet alone by
#          BPF_PROG_TEST_RUN (instructions under qemu/run.sh --icount, which
#          sets XDPGUARD_ICOUNT=1; else ns), against a bare XDP_PASS program
#          and xdp-filter (bench.csv). XDPGUARD_BENCH_ARGS adds options.
#   suite  scripts/bench-suite.py: pktgen traffic through a veth into each
#          contender (xdpguard native/generic, xdp-filter, nftables,
#          iptables, ipset, no filter) at each rule-set size (suite/).
#          XDPGUARD_BENCH_SUITE_ARGS adds options.
# XDPGUARD_BENCH_PARTS chooses (default "prog suite").
set -euo pipefail
source "$(dirname "$0")/../selftests/lib.sh"
trap xg_cleanup EXIT
parts=${XDPGUARD_BENCH_PARTS:-prog suite}
echo "machine: $(nproc) CPU(s) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), kernel $(uname -r)," \
	"accelerator: ${XDPGUARD_BENCH_ACCEL:-unknown}, icount: ${XDPGUARD_ICOUNT:-0}"
if [[ " $parts " == *" prog "* ]]; then
	start=$(date +%s)
	xg_unload
	insmod "$XG_KO"
	# shellcheck disable=SC2086
	"$XG_DIR/../target/release/xdpguard-bench" --csv /run/xgout/bench.csv ${XDPGUARD_BENCH_ARGS:-}
	xg_unload
	echo "bench: prog part took $(($(date +%s) - start)) s"
fi
if [[ " $parts " == *" suite "* ]]; then
	start=$(date +%s)
	# shellcheck disable=SC2086
	python3 "$XG_DIR/../scripts/bench-suite.py" --out /run/xgout/suite ${XDPGUARD_BENCH_SUITE_ARGS:-}
	echo "bench: suite part took $(($(date +%s) - start)) s"
fi
