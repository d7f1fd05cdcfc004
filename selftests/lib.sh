#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers of the xdpguard kselftests: KTAP output (as
# tools/testing/selftests/kselftest/ktap_helpers.sh), module loading,
# namespaces and veth pairs, and BPF map access through bpftool.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

XG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XG_KO=${XDPGUARD_KO:-$XG_DIR/../rust/xdpguard/xdpguard.ko}
XG_SYSFS=/sys/module/xdpguard/bpf

KTAP_PASS=0
KTAP_FAIL=0
KTAP_SKIP=0
KTAP_NUM=0

ktap_print_header() { echo "TAP version 13"; }
ktap_set_plan() { echo "1..$1"; }
ktap_print_msg() { echo "# $*"; }
ktap_test_pass() { KTAP_NUM=$((KTAP_NUM + 1)); KTAP_PASS=$((KTAP_PASS + 1)); echo "ok $KTAP_NUM $*"; }
ktap_test_fail() { KTAP_NUM=$((KTAP_NUM + 1)); KTAP_FAIL=$((KTAP_FAIL + 1)); echo "not ok $KTAP_NUM $*"; }
ktap_test_skip() { KTAP_NUM=$((KTAP_NUM + 1)); KTAP_SKIP=$((KTAP_SKIP + 1)); echo "ok $KTAP_NUM $1 # SKIP $2"; }
ktap_exit_skip() { echo "1..0 # SKIP $*"; exit $KSFT_SKIP; }
ktap_finished() {
	echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL xfail:0 xpass:0 skip:$KTAP_SKIP error:0"
	((KTAP_FAIL == 0)) && exit $KSFT_PASS
	exit $KSFT_FAIL
}

# check NAME COMMAND...: one KTAP result from a command's exit status; the
# command's own output is shown as diagnostics.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_test_pass "$name"
	else
		[[ -n "$out" ]] && printf '%s\n' "$out" | sed 's/^/# /'
		ktap_test_fail "$name"
	fi
}

# fail MESSAGE: print a diagnostic and return false (for check'ed functions).
fail() { echo "$*" >&2; return 1; }

xg_require() {
	[[ $(id -u) -eq 0 ]] || ktap_exit_skip "must run as root"
	[[ -f "$XG_KO" ]] || ktap_exit_skip "no module at $XG_KO (make module)"
	local t
	for t in ip bpftool jq python3 ping insmod rmmod; do
		command -v "$t" >/dev/null || ktap_exit_skip "$t is not installed"
	done
	[[ -x "$XG_CLI" ]] || ktap_exit_skip "no xdpguard CLI at $XG_CLI (make cli)"
	[[ -d /sys/fs/bpf ]] || ktap_exit_skip "kernel has no BPF support"
}

xg_loaded() { [[ -d /sys/module/xdpguard ]]; }

xg_unload() {
	if xg_loaded; then rmmod xdpguard; fi
}

# Marks the kernel log, so xg_dmesg_since shows only what came after.
xg_mark() {
	XG_MARK="xdpguard-selftest-mark-$RANDOM$RANDOM"
	echo "$XG_MARK" >/dev/kmsg
}
xg_dmesg_since() { dmesg | sed -n "/$XG_MARK/,\$p"; }

xg_prog_id() { cat "$XG_SYSFS/prog_id"; }
xg_map_id() { awk -v n="$1" '$1 == n { print $2 }' "$XG_SYSFS/maps"; }

XG_CLI=${XDPGUARD_CLI:-$XG_DIR/../target/release/xdpguard}
XG_PKT="$XG_DIR/xgpkt.py"

# xg_apply: applies the rule file given on stdin with the xdpguard CLI.
xg_apply() {
	local f
	f=$(mktemp --suffix=.toml)
	cat >"$f"
	"$XG_CLI" apply "$f" >/dev/null || { rm -f "$f"; fail "xdpguard apply failed"; return 1; }
	rm -f "$f"
}

# xg_rule_counter N: packets counted for rule N (1 = first rule of the file).
xg_rule_counter() {
	"$XG_CLI" stats --json --rules | jq -r --argjson n "$1" '[.rules[] | select(.rule == $n) | .packets] | add // 0'
}

# xg_snapshot: remembers all counters; xg_delta NAME [packets|bytes]: growth
# of a verdict or reason counter (names as `xdpguard stats` prints them).
# Every frame of an xdpguard-bench CSV got the verdict its name says
# (a name with "drop" must be dropped, any other passed); prints the others.
xg_bench_verdicts() { # CSV
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{
		want = ($col["frame"] ~ /drop/) ? "drop" : "pass"
		got = $col["verdict"]
		if (got != want) { print $col["set"] " " $col["size"] ", " $col["frame"] ": " got ", want " want; bad = 1 }
	} END { exit bad }' "$1"
}
xg_snapshot() { XG_SNAP=$("$XG_CLI" stats --json); }
xg_delta() {
	local now
	now=$("$XG_CLI" stats --json)
	jq -n --argjson a "$XG_SNAP" --argjson b "$now" --arg n "$1" --arg f "${2:-packets}" \
		'$b.counters[$n][$f] - $a.counters[$n][$f]'
}

# The XDP attachment `ip link` reports for a device: xdp, xdpgeneric or none.
xg_xdp_mode() {
	local mode
	mode=$(ip -d -j link show dev "$1" | jq -r '.[0].xdp.mode // empty')
	case "$mode" in
	1) echo xdp ;;
	2) echo xdpgeneric ;;
	"") echo none ;;
	*) echo "mode$mode" ;;
	esac
}

# Waits up to 10 s for a condition (link teardown is deferred by the kernel).
xg_wait() {
	local i
	for i in $(seq 50); do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

xg_no_objects_left() {
	local progs maps links
	progs=$(bpftool -j prog show | jq '[.[] | select(.name == "xdpguard")] | length')
	maps=$(bpftool -j map show | jq '[.[] | select((.name // "") | startswith("xdpg_"))] | length')
	links=$(bpftool -j link show | jq '[.[] | select(.type == "xdp")] | length')
	[[ $progs == 0 && $maps == 0 && $links == 0 ]] ||
		fail "left behind: $progs xdpguard programs, $maps xdpg_ maps, $links xdp links"
}

XG_NETNS=()
XG_LINKS=()

# xg_veth_pair: creates a veth pair, one end ($XG_IF) in the initial
# namespace and its peer ($XG_PEER) in a new namespace ($XG_NS), both up.
xg_veth_pair() {
	local rand
	rand=$(mktemp -u XXXXXX)
	XG_NS="ns-$rand"
	XG_IF="xg$rand"
	XG_PEER="xp$rand"
	ip netns add "$XG_NS"
	XG_NETNS+=("$XG_NS")
	ip link add "$XG_IF" type veth peer name "$XG_PEER" netns "$XG_NS"
	XG_LINKS+=("$XG_IF")
	ip link set "$XG_IF" up
	ip -n "$XG_NS" link set lo up
	ip -n "$XG_NS" link set "$XG_PEER" up
}

# xg_veth_addrs LOCAL PEER [LOCAL PEER ...]: adds each LOCAL address (with
# its prefix length) to $XG_IF and each PEER address to $XG_PEER; IPv6
# addresses without duplicate address detection, so they work at once.
xg_veth_addrs() {
	local nodad
	while (($# >= 2)); do
		nodad=()
		[[ $1 == *:* ]] && nodad=(nodad)
		ip addr add "$1" dev "$XG_IF" "${nodad[@]}"
		ip -n "$XG_NS" addr add "$2" dev "$XG_PEER" "${nodad[@]}"
		shift 2
	done
}

xg_cleanup() {
	local ns l
	xg_unload 2>/dev/null
	for l in "${XG_LINKS[@]}"; do ip link del "$l" 2>/dev/null; done
	for ns in "${XG_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	return 0
}

# ---- Stress tests and the debug kernel ----

# xg_bpf_counts: "PROGS MAPS LINKS", all BPF objects of the kernel.
xg_bpf_counts() {
	echo "$(bpftool -j prog show | jq length) $(bpftool -j map show | jq length) $(bpftool -j link show | jq length)"
}

# xg_counts_are WANT: the BPF object counts equal WANT (from xg_bpf_counts).
xg_counts_are() {
	local now
	now=$(xg_bpf_counts)
	[[ $now == "$1" ]] || fail "bpftool prog/map/link counts are $now, were $1 before"
}

# kmemleak (debug kernel only): xg_kmemleak_clear forgets what was
# suspected so far; xg_kmemleak_check scans twice (objects younger than 5 s
# are not reported, hence the pause) and fails, printing the report, if
# kmemleak suspects any leak.
XG_KMEMLEAK=/sys/kernel/debug/kmemleak
xg_kmemleak_available() { [[ -r $XG_KMEMLEAK ]] && cat "$XG_KMEMLEAK" >/dev/null 2>&1; }
xg_kmemleak_clear() {
	echo scan >"$XG_KMEMLEAK" && echo clear >"$XG_KMEMLEAK"
}
xg_kmemleak_check() {
	local report
	echo scan >"$XG_KMEMLEAK" || fail "kmemleak scan failed"
	sleep 6
	echo scan >"$XG_KMEMLEAK" || fail "kmemleak scan failed"
	report=$(cat "$XG_KMEMLEAK")
	[[ -z $report ]] && return 0
	printf '%s\n' "$report" >&2
	fail "kmemleak suspects $(grep -c '^unreferenced object' <<<"$report") leaked objects (report above)"
}

# xg_check_kmemleak: one KTAP result for "kmemleak found nothing since
# xg_kmemleak_clear", skipped on kernels without kmemleak.
xg_check_kmemleak() {
	if xg_kmemleak_available; then
		check "kmemleak: no suspected leak" xg_kmemleak_check
	else
		ktap_test_skip "kmemleak: no suspected leak" "kernel without kmemleak (run make stress STRESS_KERNEL=debug)"
	fi
}

# Inside a region marked by xg_alloc_warnings begin ... end, the stack dumps
# of the kernel's own allocation-failure warnings (warn_alloc: "page
# allocation failure", "vmalloc error"), which fault injection provokes on
# purpose, are not splats; qemu/check-splats.sh knows the markers.
xg_alloc_warnings() { echo "xdpguard-selftest: expected allocation failure warnings $1" >/dev/kmsg; }

# Traffic: xg_flood_start DEST [NS] floods DEST with pings from namespace NS
# (default $XG_NS), at most 500 a second (an unpaced flood starves the
# emulated CPUs) and for at most an hour; xg_flood_stop prints
# "TRANSMITTED RECEIVED".
xg_flood_start() {
	XG_FLOOD_OUT=$(mktemp)
	ip netns exec "${2:-$XG_NS}" ping -f -i 0.002 -q -n -w 3600 "$1" >"$XG_FLOOD_OUT" 2>&1 &
	XG_FLOOD_PID=$!
}
xg_flood_stop() {
	# (Also called from EXIT traps after a stop in a subshell.)
	[[ -n ${XG_FLOOD_PID:-} && -e $XG_FLOOD_OUT ]] || return 0
	kill -INT "$XG_FLOOD_PID" 2>/dev/null
	wait "$XG_FLOOD_PID" 2>/dev/null
	XG_FLOOD_PID=
	sed -n 's/^\([0-9]\+\) packets transmitted, \([0-9]\+\) received.*/\1 \2/p' "$XG_FLOOD_OUT"
	rm -f "$XG_FLOOD_OUT"
}
