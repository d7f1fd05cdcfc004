#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The regression check of the program's cost per packet (make icount-check,
# part of make test): instructions per packet of a fixed set of frames and
# rule sets (xdpguard-bench --fixed: 1 and 1000 CIDRs with frames from
# outside and from the deepest entries of the lists, 1 and 16 compound
# rules; IPv4 and IPv6, pass and drop, VLAN, extension headers), measured
# under QEMU's instruction counting, against the baseline committed in
# selftests/icount-baseline.csv. Fails if any frame grew by more than 2 %
# (XDPGUARD_ICOUNT_TOLERANCE); reports improvements beyond it (refresh the
# baseline: make icount-baseline, in the commit that changed the program).
# A second measurement in a freshly loaded module must give the same
# counts. Skipped unless the VM runs under icount (qemu/run.sh --icount
# --smp 1 exports XDPGUARD_ICOUNT=1): elsewhere the figures are times, and
# under TCG noise.
source "$(dirname "$0")/lib.sh"

[[ ${XDPGUARD_ICOUNT:-} == 1 ]] ||
	ktap_exit_skip "not under QEMU icount (qemu/run.sh --icount --smp 1, make icount-check): times would be noise"
xg_require
BENCH=${XDPGUARD_BENCH:-$XG_DIR/../target/release/xdpguard-bench}
BASELINE=${XDPGUARD_ICOUNT_BASELINE:-$XG_DIR/icount-baseline.csv}
TOLERANCE=${XDPGUARD_ICOUNT_TOLERANCE:-2}
[[ -x "$BENCH" ]] || ktap_exit_skip "no benchmark binary at $BENCH (make cli)"
first=$(mktemp) second=$(mktemp) log=$(mktemp)
trap 'xg_cleanup; rm -f "$first" "$second" "$log" "$log".[12]' EXIT
ktap_print_header
ktap_set_plan 3

# The counts depend on what the maps held before (the trie keeps the idle
# generation), so each measurement starts from a fresh module.
fresh() { xg_unload && insmod "$XG_KO"; }

fresh || ktap_exit_skip "insmod failed"
"$BENCH" --fixed --csv "$first" --baseline "$BASELINE" --tolerance "$TOLERANCE" >"$log" 2>&1
rc=$?
sed 's/^/# /' "$log"
# The figures of this run, for the record (build/vm/NAME/ on the host).
[[ -d /run/xgout ]] && cp "$first" /run/xgout/icount.csv

verdicts_right() {
	[[ -s "$first" ]] || fail "no CSV written (the benchmark failed)"
	xg_bench_verdicts "$first"
}
check "every fixed frame gets its intended verdict" verdicts_right
check "no frame's instructions per packet grew more than $TOLERANCE % over $(basename "$BASELINE")" \
	test "$rc" -eq 0

# set,size,frame,xdpguard,bare of a CSV.
counts() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{ print $col["set"] "," $col["size"] "," $col["frame"] "," $col["xdpguard"] "," $col["bare"] }' "$1"; }
same_again() {
	fresh || fail "insmod failed"
	"$BENCH" --fixed --csv "$second" >/dev/null 2>&1 || fail "the second run failed"
	# Files, not <(...): the guest has no /dev/fd.
	counts "$first" >"$log.1"
	counts "$second" >"$log.2"
	diff "$log.1" "$log.2" || fail "the counts differ between two runs"
}
check "a second run in a fresh module gives identical counts" same_again

ktap_finished
