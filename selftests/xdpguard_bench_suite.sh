#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke run of the side-by-side benchmark (scripts/bench-suite.py; make
# bench runs it in full): every contender at 1 and 10 deny entries, short
# pktgen bursts. Asserts, from what the receiver counted, that each
# contender really drops the matching packet and passes the other (and that
# no filter passes both), and that the report is written, so the harness
# cannot rot. make bench-smoke runs only this test.
source "$(dirname "$0")/lib.sh"

xg_require
for t in nft iptables-legacy-restore ipset xdp-filter; do
	command -v "$t" >/dev/null || ktap_exit_skip "$t is not installed (scripts/bootstrap.sh)"
done
nft list tables >/dev/null 2>&1 || ktap_exit_skip "kernel without nftables (qemu/kernel.config)"
[[ -d /proc/net/pktgen ]] || ktap_exit_skip "kernel without pktgen (CONFIG_NET_PKTGEN)"

CONTENDERS=(none xdpguard-native xdpguard-generic xdp-filter nftables iptables ipset)
SIZES=(1 10)
res=$(mktemp -d)
trap 'xg_cleanup; rm -rf "$res"' EXIT
ktap_print_header
ktap_set_plan $((${#CONTENDERS[@]} + 1))

xg_unload
# shellcheck disable=SC2086
python3 "$XG_DIR/../scripts/bench-suite.py" --sizes "$(IFS=,; echo "${SIZES[*]}")" \
	--duration 0.2 --reps 1 --load-timeout 120 --rules /tmp/xgbench-rules --out "$res" \
	${XDPGUARD_BENCH_SMOKE_ARGS:-} 2>&1 | sed 's/^/# /'

# verdicts CONTENDER: the matching packet dropped (nothing reached UDP) and
# the other passed (at least 90 % reached it), at every size; for the
# baseline, both passed.
verdicts() {
	local c=$1
	awk -F, -v c="$c" -v nsizes="${#SIZES[@]}" '
		$1 == c {
			seen++
			want = ($3 == "match" && c != "none") ? "drop" : "pass"
			if ($5 == 0) { print c " size " $2 " " $3 ": pktgen sent nothing"; bad = 1 }
			got = ($7 == 0) ? "drop" : ($7 >= 0.9 * $5 ? "pass" : "partial")
			if (got != want) { print c " size " $2 " " $3 ": sent " $5 ", passed " $7 ": " got ", want " want; bad = 1 }
		}
		END {
			want_rows = (c == "none") ? 2 : 2 * nsizes
			if (seen != want_rows) { print c ": " seen+0 " measurements, want " want_rows; bad = 1 }
			exit bad
		}' "$res/runs.csv"
}
for c in "${CONTENDERS[@]}"; do
	check "$c drops the matching packet and passes the other at ${SIZES[*]} entries" verdicts "$c"
done

report() {
	XDPGUARD_BENCH_NO_PLOTS=1 python3 "$XG_DIR/../scripts/bench-report.py" "$res" "$res/report" | sed 's/^/# /'
	grep -q '^control plane' "$res/report/table.txt" && test -s "$res/report/summary.csv" ||
		fail "no report table or summary"
}
check "the report prints its table and writes the CSV" report

ktap_finished
