#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Differential test: random rule sets and frames through the JIT-compiled
# program (BPF_PROG_TEST_RUN) against the reference model. Every verdict and
# every counter must agree. XDPGUARD_DIFF_CASES sets the number of frames
# (default 100000; `make difftest` runs millions), XDPGUARD_DIFF_PER_SET the
# frames run against each random rule set (default the binary's, 500; every
# set goes through the CLI's commit, about 0.6 s under TCG).
source "$(dirname "$0")/lib.sh"

xg_require
DIFF=${XDPGUARD_DIFFTEST:-$XG_DIR/../target/release/xdpguard-difftest}
[[ -x "$DIFF" ]] || ktap_exit_skip "no difftest binary at $DIFF (make cli)"
trap xg_cleanup EXIT
ktap_print_header
ktap_set_plan 2

xg_unload
insmod "$XG_KO" || ktap_exit_skip "insmod failed"

cases=${XDPGUARD_DIFF_CASES:-100000}
for seed in 1 2; do
	out=$("$DIFF" --cases $((cases / 2)) ${XDPGUARD_DIFF_PER_SET:+--per-set "$XDPGUARD_DIFF_PER_SET"} --seed "$seed" 2>&1)
	printf '%s\n' "$out" | tail -n 2 | sed 's/^/# /'
	if grep -q "^difftest: $((cases / 2)) frames, .* 0 mismatches$" <<<"$out"; then
		ktap_test_pass "program and model agree on $((cases / 2)) random frames (seed $seed)"
	else
		printf '%s\n' "$out" | grep -m 20 MISMATCH | sed 's/^/# /'
		ktap_test_fail "program and model agree on $((cases / 2)) random frames (seed $seed)"
	fi
done

ktap_finished
