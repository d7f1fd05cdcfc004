#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Real traffic through a guarded veth: denied IPv4 and IPv6 sources lose
# their packets at XDP while other sources pass, and the per-verdict
# counters equal what was sent.
#
#   ns-XXXX (sender)                     initial namespace (guarded)
#   xpXXXX 192.0.2.2 .3                  xgXXXX 192.0.2.1   <- xdpguard
#          2001:db8::2 ::3                      2001:db8::1
source "$(dirname "$0")/lib.sh"

xg_require
trap xg_cleanup EXIT
ktap_print_header
ktap_set_plan 9

COUNT=5
xg_unload
xg_veth_pair
ip addr add 192.0.2.1/24 dev "$XG_IF"
ip addr add 2001:db8::1/64 dev "$XG_IF" nodad
ip -n "$XG_NS" addr add 192.0.2.2/24 dev "$XG_PEER"
ip -n "$XG_NS" addr add 192.0.2.3/24 dev "$XG_PEER"
ip -n "$XG_NS" addr add 2001:db8::2/64 dev "$XG_PEER" nodad
ip -n "$XG_NS" addr add 2001:db8::3/64 dev "$XG_PEER" nodad
# Static neighbours: no ARP or neighbour discovery crosses the guarded link,
# so the only IPv4/IPv6 packets from the denied sources are the pings.
mac=$(cat /sys/class/net/$XG_IF/address)
peer_mac=$(ip -n "$XG_NS" -j link show "$XG_PEER" | jq -r '.[0].address')
ip -n "$XG_NS" neigh replace 192.0.2.1 lladdr "$mac" dev "$XG_PEER" nud permanent
ip -n "$XG_NS" neigh replace 2001:db8::1 lladdr "$mac" dev "$XG_PEER" nud permanent
for a in 192.0.2.2 192.0.2.3 2001:db8::2 2001:db8::3; do
	ip neigh replace "$a" lladdr "$peer_mac" dev "$XG_IF" nud permanent
done

insmod "$XG_KO" ifaces="$XG_IF" || ktap_exit_skip "insmod failed; see xdpguard_load.sh"

# received SOURCE DEST: pings DEST from SOURCE in the sender namespace and
# prints how many replies came back.
received() {
	ip netns exec "$XG_NS" ping -q -n -c "$COUNT" -i 0.2 -W 1 -I "$1" "$2" 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p'
}

expect_received() {
	local got
	got=$(received "$1" "$2")
	[[ $got == "$3" ]] || fail "from $1 to $2: $got of $COUNT replies, want $3"
}

xg_snapshot
check "IPv4 traffic passes before any rule" expect_received 192.0.2.3 192.0.2.1 $COUNT
xg_apply <<EOF
[[rule]]
action = "deny"
src = "192.0.2.3"
[[rule]]
action = "deny"
src = "2001:db8::3"
EOF
check "a denied IPv4 source loses all its packets" expect_received 192.0.2.3 192.0.2.1 0
check "another IPv4 source still passes" expect_received 192.0.2.2 192.0.2.1 $COUNT
check "a denied IPv6 source loses all its packets" expect_received 2001:db8::3 2001:db8::1 0
check "another IPv6 source still passes" expect_received 2001:db8::2 2001:db8::1 $COUNT

counters_match() {
	local drops bytes passes r1 r2
	drops=$(xg_delta drop)
	bytes=$(xg_delta drop bytes)
	passes=$(xg_delta pass)
	# Echo requests with ping's 56-byte payload: 14 + 20 + 8 + 56 = 98 bytes
	# on IPv4, 14 + 40 + 8 + 56 = 118 on IPv6.
	((drops == 2 * COUNT)) || fail "drop counter +$drops, want +$((2 * COUNT))" || return
	((bytes == COUNT * (98 + 118))) || fail "drop bytes +$bytes, want +$((COUNT * (98 + 118)))" || return
	(($(xg_delta rule_deny) == 2 * COUNT)) || fail "rule_deny +$(xg_delta rule_deny), want +$((2 * COUNT))" || return
	r1=$(xg_rule_counter 1)
	r2=$(xg_rule_counter 2)
	((r1 == COUNT && r2 == COUNT)) || fail "per-rule counters $r1 and $r2, want $COUNT each" || return
	# Passed: the first IPv4 round and both allowed rounds, plus whatever
	# link-local chatter (IPv6 router solicitations, MLD) crossed meanwhile.
	((passes >= 3 * COUNT)) || fail "pass counter +$passes, want at least +$((3 * COUNT))"
}
check "verdict, reason and per-rule counters equal the packets sent" counters_match

samples_logged() {
	local log
	log=$("$XG_CLI" log --count 10 --timeout 5)
	printf '%s\n' "$log" | sed 's/^/  /'
	grep -q "$XG_IF drop (rule_deny rule 1) 192.0.2.3 -> 192.0.2.1 icmp type 8 code 0 len 98" <<<"$log" ||
		fail "no IPv4 drop sample in: $log"
	grep -q "$XG_IF drop (rule_deny rule 2) 2001:db8::3 -> 2001:db8::1 icmpv6 type 128 code 0 len 118" <<<"$log" ||
		fail "no IPv6 drop sample in: $log"
}
check "xdpguard log decodes samples of the dropped packets" samples_logged

xg_apply </dev/null
check "applying a rule set without the rules restores IPv4 at once" expect_received 192.0.2.3 192.0.2.1 $COUNT
check "applying a rule set without the rules restores IPv6 at once" expect_received 2001:db8::3 2001:db8::1 $COUNT

ktap_finished
