#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress: insmod/rmmod cycles (XDPGUARD_STRESS_CYCLES, default 200) while a
# ping flood crosses the guarded veth, then rmmod while the program drops a
# flood. Nothing may be left behind: bpftool's program, map and link counts
# return to what they were, the veth has no XDP, kmemleak (debug kernel)
# suspects nothing; qemu/run.sh fails the run on any kernel splat.
#
#   ns-XXXX: xpXXXX 192.0.2.2  --ping -f-->  xgXXXX 192.0.2.1 <- xdpguard
source "$(dirname "$0")/lib.sh"

xg_require
trap 'xg_flood_stop >/dev/null; xg_cleanup' EXIT
ktap_print_header
ktap_set_plan 6

CYCLES=${XDPGUARD_STRESS_CYCLES:-200}
ROUNDS=${XDPGUARD_STRESS_ROUNDS:-20}
xg_unload
xg_kmemleak_available && xg_kmemleak_clear
xg_veth_pair
xg_veth_addrs 192.0.2.1/24 192.0.2.2/24
BASE=$(xg_bpf_counts)
xg_flood_start 192.0.2.1

program_sees_flood() {
	local n
	insmod "$XG_KO" ifaces="$XG_IF" || fail "insmod failed"
	xg_snapshot
	sleep 2
	n=$(xg_delta pass)
	rmmod xdpguard || fail "rmmod failed"
	((n > 0)) || fail "the program passed $n packets in 2 s of flood"
}
check "the flood crosses the guarded veth and the program counts it" program_sees_flood

cycles() {
	local i
	for ((i = 1; i <= CYCLES; i++)); do
		insmod "$XG_KO" ifaces="$XG_IF" || fail "insmod $i failed"
		grep -q "^$XG_IF " "$XG_SYSFS/links" || fail "cycle $i: $XG_IF not in links: $(cat $XG_SYSFS/links)"
		rmmod xdpguard || fail "rmmod $i failed"
	done
}
start=$(date +%s)
check "$CYCLES insmod/rmmod cycles under a ping flood" cycles
ktap_print_msg "$CYCLES cycles took $(($(date +%s) - start)) s"

# No process substitution: the guest has no /dev/fd.
read -r SENT GOT <<<"$(xg_flood_stop)"
ktap_print_msg "flood during the cycles: ${SENT:-?} echo requests sent, ${GOT:-?} answered"
flood_survived() {
	((${GOT:-0} > 0 && ${SENT:-0} >= GOT)) || fail "ping flood: ${SENT:-?} sent, ${GOT:-?} answered"
}
check "the flood kept flowing through the cycles" flood_survived

nothing_left() {
	xg_wait xg_counts_are "$BASE" || return 1
	xg_no_objects_left || return 1
	[[ $(xg_xdp_mode "$XG_IF") == none ]] || fail "$XG_IF still has XDP attached"
}
check "bpftool prog/map/link counts are back to before; no XDP left" nothing_left

# rmmod while the program drops a flood (every echo request from 192.0.2.2
# hits a deny rule; a per-source limiter charges the rest), ROUNDS times;
# replies come back after each rmmod.
rmmod_while_dropping() {
	local i n
	for i in $(seq "$ROUNDS"); do
		insmod "$XG_KO" ifaces="$XG_IF" || fail "insmod $i failed"
		xg_apply <<-RULES || return 1
			global_limit = "all"
			[[limit]]
			name = "all"
			pps = 100000
			[[rule]]
			action = "deny"
			src = "192.0.2.2/32"
		RULES
		xg_snapshot
		xg_flood_start 192.0.2.1
		sleep 0.5
		n=$(xg_delta rule_deny)
		rmmod xdpguard || fail "rmmod $i under a dropped flood failed"
		xg_flood_stop >/dev/null
		((n > 0)) || fail "round $i: the deny rule dropped $n packets of the flood"
		ip netns exec "$XG_NS" ping -c 1 -W 2 -q 192.0.2.1 >/dev/null ||
			fail "round $i: no reply after rmmod: the drop outlived the module"
	done
	xg_wait xg_counts_are "$BASE"
}
check "rmmod while the program drops a flood ($ROUNDS times)" rmmod_while_dropping

xg_check_kmemleak
ktap_finished
