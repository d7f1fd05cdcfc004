#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every rule kind and parsing policy of the engine, with real traffic
# through a guarded veth (ping, TCP connects, UDP datagrams) and crafted
# frames (xgpkt.py) for what sockets cannot send: QinQ tags, IPv6 extension
# chains, fragments, truncated headers, SYN floods. Each check asserts what
# arrived (or did not) and the exact counter deltas.
#
#   ns-XXXX (sender)                     initial namespace (guarded)
#   xpXXXX 192.0.2.2 198.51.100.2        xgXXXX 192.0.2.1 198.51.100.1  <- xdpguard
#          2001:db8::2                          2001:db8::1
#   .100 (802.1Q) 203.0.113.2            xgv 203.0.113.1
source "$(dirname "$0")/lib.sh"

xg_require
command -v ethtool >/dev/null || ktap_exit_skip "ethtool is not installed"
trap 'xg_cleanup; kill $(jobs -p) 2>/dev/null' EXIT
ktap_print_header
ktap_set_plan 16

xg_unload
xg_veth_pair
xg_veth_addrs 192.0.2.1/24 192.0.2.2/24 198.51.100.1/24 198.51.100.2/24 \
	2001:db8::1/64 2001:db8::2/64
# 802.1Q on both sides; tags stay in the frame data (no tx offload).
ip link add link "$XG_IF" name "xgv${XG_IF:2:6}" type vlan id 100
XG_LINKS+=("xgv${XG_IF:2:6}")
ip link set "xgv${XG_IF:2:6}" up
ip addr add 203.0.113.1/24 dev "xgv${XG_IF:2:6}"
ip -n "$XG_NS" link add link "$XG_PEER" name vl100 type vlan id 100
ip -n "$XG_NS" link set vl100 up
ip -n "$XG_NS" addr add 203.0.113.2/24 dev vl100
ip netns exec "$XG_NS" ethtool -K "$XG_PEER" txvlan off >/dev/null 2>&1
MAC=$(cat /sys/class/net/$XG_IF/address)
PEER_MAC=$(ip -n "$XG_NS" -j link show "$XG_PEER" | jq -r '.[0].address')

insmod "$XG_KO" ifaces="$XG_IF" || ktap_exit_skip "insmod failed; see xdpguard_load.sh"

# TCP listeners on ports 22 and 80 (the kernel completes handshakes for a
# listening socket even if nobody accepts). They live as long as this
# script (on the debug kernel it runs for over ten minutes).
python3 - <<'EOF' &
import os, socket, time
parent = os.getppid()
socks = []
for port in (22, 80):
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        s.listen(64)
        socks.append(s)
while os.getppid() == parent:
    time.sleep(1)
EOF
sleep 1

received() { # SOURCE DEST [COUNT] [INTERVAL]
	ip netns exec "$XG_NS" ping -q -n -c "${3:-5}" -i "${4:-0.2}" -W 1 -I "$1" "$2" 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p'
}
expect_ping() { # SOURCE DEST WANT
	local got
	got=$(received "$1" "$2")
	[[ $got == "$3" ]] || fail "ping from $1 to $2: $got of 5 replies, want $3"
}
tcp_connects() { # SOURCE DEST PORT
	ip netns exec "$XG_NS" python3 -c '
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET)
s.settimeout(2)
s.bind((src, 0))
s.connect((dst, port))' "$@" 2>/dev/null
}
pkt() { # KIND SRC DST COUNT [DPORT]
	ip netns exec "$XG_NS" python3 "$XG_PKT" "$XG_PEER" "$MAC" "$1" "$2" "$3" --count "$4" --dport "${5:-22}"
}
want_delta() { # COUNTER WANT
	local got
	got=$(xg_delta "$1")
	[[ $got == "$2" ]] || fail "$1 grew by $got, want $2"
}

cidr_rule() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "198.51.100.0/24"
EOF
	expect_ping 198.51.100.2 198.51.100.1 0 && expect_ping 192.0.2.2 192.0.2.1 5
}
check "a CIDR rule drops its whole prefix and nothing else" cidr_rule

combined_rule() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "192.0.2.0/24"
proto = "tcp"
dport = 22
EOF
	xg_snapshot
	! tcp_connects 192.0.2.2 192.0.2.1 22 || fail "tcp/22 from 192.0.2.2 connected" || return
	tcp_connects 192.0.2.2 192.0.2.1 80 || fail "tcp/80 from 192.0.2.2 did not connect" || return
	expect_ping 192.0.2.2 192.0.2.1 5 || return 1
	# The SYN and its retransmissions within the 2 s timeout.
	(($(xg_rule_counter 1) >= 1)) || fail "rule 1 counted nothing"
}
check "CIDR AND port: tcp/22 is dropped while tcp/80 and ping from the same source pass" combined_rule

# The receiver's output is read from a file: a background job's stdout
# cannot be captured by $() and waited for at once.
udp_rule() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
proto = "udp"
dport = "5353-5355"
EOF
	local res
	res=$(mktemp)
	python3 - "$res" <<'EOF' &
import socket, select, sys, time
socks = {}
for port in (5354, 6000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("192.0.2.1", port))
    socks[s] = port
got = {5354: 0, 6000: 0}
end = time.time() + 4
while time.time() < end:
    r, _, _ = select.select(list(socks), [], [], 0.2)
    for s in r:
        s.recv(100)
        got[socks[s]] += 1
open(sys.argv[1], "w").write("%d %d" % (got[5354], got[6000]))
EOF
	local rx=$!
	sleep 1.5
	ip netns exec "$XG_NS" bash -c 'for i in 1 2 3 4 5; do echo x >/dev/udp/192.0.2.1/5354; echo x >/dev/udp/192.0.2.1/6000; done'
	wait $rx
	[[ $(cat "$res") == "0 5" ]] || fail "datagrams received on 5354 and 6000: $(cat "$res"), want 0 5"
	rm -f "$res"
	# Exact counts with crafted frames (socket sends may be retried or
	# coalesced by the sender's stack).
	xg_snapshot
	pkt udp 192.0.2.2 192.0.2.1 7 5353 && pkt udp 192.0.2.2 192.0.2.1 7 5356 || return 1
	want_delta rule_deny 7
}
check "a UDP port-range rule drops its ports only" udp_rule

mac_rule() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src_mac = "$PEER_MAC"
EOF
	expect_ping 192.0.2.2 192.0.2.1 0 || return 1
	xg_apply </dev/null && expect_ping 192.0.2.2 192.0.2.1 5
}
check "a source MAC rule drops everything from that host" mac_rule

default_deny_essential() {
	xg_apply <<EOF || return 1
default = "deny"
[[rule]]
action = "allow"
proto = "icmp"
icmp_type = 8
[[rule]]
action = "allow"
proto = "icmpv6"
icmp_type = 128
EOF
	# Forget the neighbours: ARP and neighbour discovery must get through.
	ip -n "$XG_NS" neigh flush dev "$XG_PEER"
	ip neigh flush dev "$XG_IF"
	xg_snapshot
	expect_ping 192.0.2.2 192.0.2.1 5 || return 1
	expect_ping 2001:db8::2 2001:db8::1 5 || return 1
	(($(xg_delta essential) >= 2)) || fail "essential grew by $(xg_delta essential), want ARP and ND counted" || return
	! tcp_connects 192.0.2.2 192.0.2.1 80 || fail "tcp/80 connected under default deny" || return
	(($(xg_delta default_deny) >= 1)) || fail "default_deny counted nothing"
}
check "default deny keeps ARP and neighbour discovery working (safe by default)" default_deny_essential

vlan_8021q() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "203.0.113.2"
EOF
	xg_snapshot
	expect_ping 203.0.113.2 203.0.113.1 0 || return 1
	want_delta rule_deny 5 || return 1
	xg_apply </dev/null && expect_ping 203.0.113.2 203.0.113.1 5
}
check "802.1Q-tagged traffic is parsed and filtered" vlan_8021q

qinq() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "203.0.113.66"
proto = "udp"
EOF
	xg_snapshot
	pkt qinq-udp 203.0.113.66 203.0.113.1 5 || return 1
	pkt qinq-udp 203.0.113.67 203.0.113.1 5 || return 1
	want_delta rule_deny 5 && want_delta malformed 0
}
check "802.1ad + 802.1Q (QinQ) frames are parsed to the inner header" qinq

ipv6_ext() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "2001:db8::/64"
proto = "tcp"
dport = 22
EOF
	xg_snapshot
	pkt ext-tcp 2001:db8::2 2001:db8::1 5 22 || return 1
	pkt ext-tcp 2001:db8::2 2001:db8::1 5 80 || return 1
	want_delta rule_deny 5 || return 1
	pkt deep-ext 2001:db8::2 2001:db8::1 5 22 || return 1
	want_delta malformed 5
}
check "IPv6 extension headers are walked to the port; an over-long chain is malformed" ipv6_ext

fragments() {
	xg_apply <<EOF || return 1
fragments = "drop"
EOF
	xg_snapshot
	pkt frag-later 192.0.2.2 192.0.2.1 5 || return 1
	pkt frag-later 2001:db8::2 2001:db8::1 5 || return 1
	want_delta fragment 10 || return 1
	want_delta drop 10 || return 1
	xg_apply <<EOF || return 1
fragments = "l3"
[[rule]]
action = "deny"
src = "192.0.2.2"
[[rule]]
action = "deny"
src = "192.0.2.0/24"
proto = "udp"
dport = 53
EOF
	xg_snapshot
	pkt frag-later 192.0.2.2 192.0.2.1 5 || return 1
	pkt frag-later 192.0.2.3 192.0.2.1 5 || return 1
	# The source rule applies; the port rule cannot (no L4 header in a later
	# fragment; a protocol-only rule would, the protocol is in the IP
	# header); a first fragment carries L4.
	want_delta rule_deny 5 && want_delta default_allow 5 || return 1
	pkt frag-first 192.0.2.3 192.0.2.1 5 53 || return 1
	want_delta rule_deny 10
}
check "non-first fragments follow the fragment policy (drop, or L3-only rules)" fragments

truncated() {
	xg_apply <<EOF || return 1
malformed = "deny"
[[rule]]
action = "deny"
src = "192.0.2.3"
EOF
	xg_snapshot
	pkt trunc-tcp 192.0.2.2 192.0.2.1 5 || return 1
	want_delta malformed 5 || return 1
	pkt trunc-tcp 192.0.2.3 192.0.2.1 5 || return 1
	want_delta rule_deny 5
}
check "a truncated TCP header is malformed unless a rule already drops its source" truncated

monitor() {
	xg_apply <<EOF || return 1
monitor = true
[[rule]]
action = "deny"
src = "192.0.2.2"
EOF
	xg_snapshot
	expect_ping 192.0.2.2 192.0.2.1 5 || return 1
	want_delta rule_deny 5 && want_delta monitor 5 && want_delta drop 0
}
check "monitor mode evaluates and counts every rule but drops nothing" monitor

rate_limit() {
	xg_apply <<EOF || return 1
[[limit]]
name = "slow"
pps = 1
burst = 3
[[rule]]
action = "limit"
limit = "slow"
src = "192.0.2.2"
EOF
	xg_snapshot
	local got
	got=$(received 192.0.2.2 192.0.2.1 20 0.05)
	((got >= 3 && got <= 6)) || fail "$got of 20 replies got through a 1 pps, burst 3 limit" || return
	(($(xg_delta rate_limit) >= 14)) || fail "rate_limit grew by $(xg_delta rate_limit)" || return
	expect_ping 198.51.100.2 198.51.100.1 5
}
check "a per-source rate limit passes its burst and drops the rest of a flood" rate_limit

syn_guard() {
	xg_apply <<EOF || return 1
syn_limit = "syn"
[[limit]]
name = "syn"
pps = 1
burst = 3
EOF
	xg_snapshot
	pkt tcp-syn 192.0.2.2 192.0.2.1 20 80 || return 1
	(($(xg_delta syn_flood) >= 15)) || fail "syn_flood grew by $(xg_delta syn_flood), want at least 15" || return
	tcp_connects 198.51.100.2 198.51.100.1 80 || fail "another source could not connect"
}
check "the SYN-flood guard limits TCP SYNs per source" syn_guard

iface_policy() {
	xg_apply <<EOF || return 1
[interfaces]
$XG_IF = "deny"
EOF
	xg_snapshot
	expect_ping 192.0.2.2 192.0.2.1 0 || return 1
	(($(xg_delta default_deny) >= 5)) || fail "default_deny grew by $(xg_delta default_deny)"
}
check "a per-interface default policy overrides the global one" iface_policy

atomic_swap() {
	xg_apply </dev/null || return 1
	local log i
	log=$(mktemp)
	ip netns exec "$XG_NS" ping -q -n -c 100 -i 0.03 -W 2 -I 192.0.2.2 192.0.2.1 >"$log" 2>&1 &
	local p=$!
	for i in $(seq 10); do
		xg_apply <<EOF || return 1
default = "$( ((i % 2)) && echo deny || echo allow)"
[[rule]]
action = "allow"
proto = "icmp"
[[rule]]
action = "deny"
src = "198.51.100.$i"
EOF
	done
	wait $p
	grep -q " 100 received" "$log" || fail "ping during 10 swaps: $(grep received "$log")"
	rm -f "$log"
}
check "rule-set swaps under traffic lose no allowed packet" atomic_swap

bad_file_changes_nothing() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "192.0.2.2"
EOF
	local f out
	f=$(mktemp --suffix=.toml)
	printf '[[rule]]\naction = "allow"\nsrc = "192.0.2.2"\n\n[[rule]]\naction = "deny"\nsrc = "10.0.0.1/8"\n' >"$f"
	if out=$("$XG_CLI" apply "$f" 2>&1); then
		fail "a bad file was applied"
	fi
	[[ $out == *"$f:7: rule 2: src: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"* ]] ||
		fail "error was: $out"
	rm -f "$f"
	expect_ping 192.0.2.2 192.0.2.1 0
}
check "a bad rule file fails with its line and reason and changes nothing" bad_file_changes_nothing

ktap_finished
