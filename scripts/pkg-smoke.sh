#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke test of a packaged or in-tree-built xdpguard (runs in the test VM,
# from scripts/test-packaging.sh): the module XDPGUARD_KO loads and attaches
# to a veth, a deny rule applied by the CLI XDPGUARD_CLI drops a source's
# pings while another source passes and the drop counter counts them, and
# rmmod detaches everything. KTAP output (selftests/lib.sh).
source "$(dirname "$0")/../selftests/lib.sh"

xg_require
trap xg_cleanup EXIT
ktap_print_header
ktap_set_plan 6
ktap_print_msg "module $XG_KO ($(modinfo -F vermagic "$XG_KO")), CLI $XG_CLI"

COUNT=4
xg_unload
xg_veth_pair
ip addr add 192.0.2.1/24 dev "$XG_IF"
ip -n "$XG_NS" addr add 192.0.2.2/24 dev "$XG_PEER"
ip -n "$XG_NS" addr add 192.0.2.3/24 dev "$XG_PEER"

received() {
	ip netns exec "$XG_NS" ping -q -n -c "$COUNT" -i 0.2 -W 1 -I "$1" 192.0.2.1 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p'
}
expect_received() {
	local got
	got=$(received "$1")
	[[ $got == "$2" ]] || fail "from $1: $got of $COUNT replies, want $2"
}
attached() {
	insmod "$XG_KO" ifaces="$XG_IF" || fail "insmod $XG_KO failed"
	grep -q "^$XG_IF " "$XG_SYSFS/links" || fail "$XG_IF not in $XG_SYSFS/links: $(cat "$XG_SYSFS/links")"
}
deny_applied() {
	xg_apply <<-RULES
	[[rule]]
	action = "deny"
	src = "192.0.2.3"
	RULES
}
drops_counted() {
	local d
	d=$(xg_delta drop)
	((d == COUNT)) || fail "drop counter +$d, want +$COUNT"
}
unloaded() {
	rmmod xdpguard || fail "rmmod failed"
	! xg_loaded || fail "module still loaded"
	[[ -z "$(ip -d link show "$XG_IF" | grep -i xdp)" ]] || fail "XDP still attached to $XG_IF"
	expect_received 192.0.2.3 "$COUNT"
}

check "the module loads and attaches to a veth" attached
check "xdpguard apply installs a deny rule" deny_applied
xg_snapshot
check "the denied source loses all its pings" expect_received 192.0.2.3 0
check "another source passes" expect_received 192.0.2.2 "$COUNT"
check "the drop counter counts the denied pings" drops_counted
check "rmmod detaches; the denied source passes again" unloaded
ktap_finished
