#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke run of the benchmark (make bench runs it in full): small sizes and
# repeat counts, so that it cannot rot. Asserts that it runs and that every
# benchmark frame gets the verdict it is meant to (drop frames drop at
# every size, including in xdp-filter's column's rule set).
source "$(dirname "$0")/lib.sh"

xg_require
BENCH=${XDPGUARD_BENCH:-$XG_DIR/../target/release/xdpguard-bench}
[[ -x "$BENCH" ]] || ktap_exit_skip "no benchmark binary at $BENCH (make cli)"
trap 'xg_cleanup; ip link del xgbench0 2>/dev/null' EXIT
ktap_print_header
ktap_set_plan 2

xg_unload
insmod "$XG_KO" || ktap_exit_skip "insmod failed"
csv=$(mktemp)
out=$("$BENCH" --sizes 1,1000 --repeat 1000 --runs 1 --xdp-filter-max 1 --csv "$csv" 2>&1)
printf '%s\n' "$out" | sed 's/^/# /'
check "the benchmark runs at 1 and 1000 CIDRs and prints its table" \
	test "$(grep -c ',' "$csv")" -eq 17

verdicts_right() {
	awk -F, 'NR > 1 {
		want = ($2 ~ /drop/) ? "drop" : "pass"
		if ($8 != want) { print "size " $1 ", " $2 ": " $8 ", want " want; bad = 1 }
	} END { exit bad }' "$csv"
}
check "every benchmark frame gets its intended verdict at every size" verdicts_right
rm -f "$csv"

ktap_finished
