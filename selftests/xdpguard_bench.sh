#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke run of the benchmark (make bench runs it in full): small sizes and
# repeat counts, so that it cannot rot. Asserts that it runs, measures every
# frame (outside the lists and from their deepest entries; the compound
# rules' frames), that every frame gets the verdict it is meant to at every
# size ("drop" in its name: dropped; else passed), and that a rule set the
# program refuses is reported and skipped, not fatal.
source "$(dirname "$0")/lib.sh"

xg_require
BENCH=${XDPGUARD_BENCH:-$XG_DIR/../target/release/xdpguard-bench}
[[ -x "$BENCH" ]] || ktap_exit_skip "no benchmark binary at $BENCH (make cli)"
csv=$(mktemp)
trap 'xg_cleanup; ip link del xgbench0 2>/dev/null; rm -f "$csv"' EXIT
ktap_print_header
ktap_set_plan 3

xg_unload
insmod "$XG_KO" || ktap_exit_skip "insmod failed"
out=$("$BENCH" --sizes 1,1000 --compound 1,64 --repeat 1000 --runs 1 --xdp-filter-max 1 --csv "$csv" 2>&1)
printf '%s\n' "$out" | sed 's/^/# /'

# Frames measured per set and size: 8 outside the lists, plus the deepest
# entries (at 1 CIDR only the host entries: 4; at 1000 all 8); compound:
# 2 IPv4 frames at 1 rule (no IPv6 customer), 4 at 64.
counts_right() {
	awk -F, 'NR > 1 { n[$1 " " $2]++ }
	END {
		want["cidrs 1"] = 12; want["cidrs 1000"] = 16
		want["compound 1"] = 2; want["compound 64"] = 4
		for (k in want) if (n[k] != want[k]) { print k ": " n[k] + 0 " frames, want " want[k]; bad = 1 }
		exit bad
	}' "$csv"
}
check "the benchmark measures every frame at 1 and 1000 CIDRs and 1 and 64 compound rules" counts_right

check "every benchmark frame gets its intended verdict at every size" xg_bench_verdicts "$csv"

# 100 000 compound rules are more than any rule set may hold.
refused_reported() {
	local o
	o=$("$BENCH" --sizes 1 --compound 100000 --repeat 10 --runs 1 --xdp-filter-max 0 2>&1) ||
		fail "the benchmark failed: $o"
	grep -q '^100000 compound rules.*: refused: ' <<<"$o" || fail "no 'refused:' line in: $o"
}
check "a rule set the program refuses is reported and the benchmark goes on" refused_reported

ktap_finished
