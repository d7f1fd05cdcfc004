#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The rule semantics of issue 13, with real traffic through a guarded veth
# and sockets, sniffed replies and exact counter deltas:
#
#  S1  address rules apply to every IP frame, link-essential ones included
#      (DHCP to 68/546, neighbour solicitations); ARP still passes;
#      global_limit charges essential frames too.
#  S2  the tiny-fragment attack (RFC 1858): a SYN whose first fragment
#      carries 8 bytes of TCP never reaches a port a rule denies, for every
#      malformed x fragments policy, IPv4 and IPv6.
#  S3  a map value the program does not understand (trie action byte,
#      per-interface policy, active generation) drops as `corrupt`.
#  and destination CIDRs, destination MACs and DHCP with real traffic.
#
#   ns-XXXX (sender)                 initial namespace (guarded)
#   xpXXXX 192.0.2.2 .3              xgXXXX 192.0.2.1 .11    <- xdpguard
#          2001:db8::2 ::3                  2001:db8::1 ::11
#
# 192.0.2.2 and 2001:db8::2 are the "listed" (denied) sources of S1.
# Frames the sockets cannot send (DHCP from port 67, neighbour
# solicitations with a chosen source, fragments) are built by the Python
# helper below with correct IP, UDP, TCP and ICMPv6 checksums, so that what
# xdpguard passes is really delivered by the stack. IPv6 link-local
# addresses are off (addrgenmode none) and neighbours are static, so no
# frame crosses the guarded link unless a check sends it.
source "$(dirname "$0")/lib.sh"

xg_require
HELPER=$(mktemp --suffix=.py)
# S3 pins the maps here; the pins would keep them alive after rmmod.
PINS=/sys/fs/bpf/xdpguard
trap 'xg_cleanup; kill $(jobs -p) 2>/dev/null; rm -rf "$HELPER" "$SRV" "$PINS"' EXIT
ktap_print_header
ktap_set_plan 19

cat >"$HELPER" <<'EOF'
#!/usr/bin/env python3
"""Frames and sockets for xdpguard_semantics.sh (stdlib only), a server
reading one command a line:

send IFACE DST_MAC KIND SRC DST [--count N] [--sport P] [--dport P]
     [--interval S] [--expect REPLY --wait S [--until N]]: sends KIND;
     answers "REPLIES SECONDS": how many REPLY frames came back on IFACE
     within S seconds (sniffed from before the first send, -1 without
     --expect; --until: stop early at N) and how long the sending took.
rx_open FAMILY PORT / rx_count FAMILY PORT: a UDP socket on PORT; how many
     datagrams it got (then it is closed).
listen PORT...: TCP listeners (IPv4 and IPv6) for the rest of the run.
snmp FILE KEY...: values of /proc/net/snmp(6) counters.
"""
import argparse, ipaddress, os, random, select, shlex, socket, struct, sys, time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo(src, dst, proto, length):
    if src.version == 4:
        return struct.pack("!4s4sBBH", src.packed, dst.packed, 0, proto, length)
    return struct.pack("!16s16sIxxxB", src.packed, dst.packed, length, proto)


def with_csum(src, dst, proto, seg, off):
    c = csum(pseudo(src, dst, proto, len(seg)) + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def ip4(src, dst, proto, payload, ident=1, frag=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                    src.packed, dst.packed)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ip6(src, dst, nh, payload, hlim=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hlim, src.packed, dst.packed) + payload


def udp(src, dst, sport, dport):
    seg = struct.pack("!HHHH", sport, dport, 8 + 4, 0) + b"xg13"
    return with_csum(src, dst, 17, seg, 6)


def syn(src, dst, sport, dport):
    # A 20-byte header (doff 5) and 12 bytes of data (a SYN may carry data;
    # without a Fast Open cookie the stack answers the SYN alone), so that it
    # can be split after 8 bytes (the attack) or after 24 (the whole TCP
    # header in the first fragment).
    seg = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 0x50, 0x02, 64240, 0, 0)
    return with_csum(src, dst, 6, seg + b"xdpguard-13!", 16)


def mac(s):
    return bytes.fromhex(s.replace(":", ""))


def frames(kind, own, dst_mac, src, dst, sport, dport):
    """[(dst_mac, ethertype, payload)]"""
    v4 = src.version == 4
    et = 0x0800 if v4 else 0x86DD
    if kind == "udp":
        seg = udp(src, dst, sport, dport)
        return [(dst_mac, et, ip4(src, dst, 17, seg) if v4 else ip6(src, dst, 17, seg))]
    if kind == "syn":
        seg = syn(src, dst, sport, dport)
        return [(dst_mac, et, ip4(src, dst, 6, seg) if v4 else ip6(src, dst, 6, seg))]
    if kind in ("syn-frag8", "syn-frag24"):
        seg = syn(src, dst, sport, dport)
        cut = 8 if kind == "syn-frag8" else 24
        ident = random.getrandbits(16 if v4 else 32)
        if v4:
            return [(dst_mac, et, ip4(src, dst, 6, seg[:cut], ident, 0x2000)),
                    (dst_mac, et, ip4(src, dst, 6, seg[cut:], ident, cut // 8))]
        fh = lambda off, more: struct.pack("!BBHI", 6, 0, (off // 8) << 3 | more, ident)
        return [(dst_mac, et, ip6(src, dst, 44, fh(0, 1) + seg[:cut])),
                (dst_mac, et, ip6(src, dst, 44, fh(cut, 0) + seg[cut:]))]
    if kind == "ns":
        # Neighbour solicitation for DST to its solicited-node group, with
        # our link-layer address.
        t = dst.packed
        group = ipaddress.ip_address(b"\xff\x02" + b"\0" * 9 + b"\x01\xff" + t[13:])
        body = struct.pack("!BBHI16s", 135, 0, 0, 0, t) + struct.pack("!BB6s", 1, 1, own)
        body = with_csum(src, group, 58, body, 2)
        return [(b"\x33\x33\xff" + t[13:], 0x86DD, ip6(src, group, 58, body, 255))]
    if kind == "arp":
        body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, own, src.packed, b"\0" * 6, dst.packed)
        return [(b"\xff" * 6, 0x0806, body)]
    sys.exit("unknown kind " + kind)


def l3(frame):
    """(ethertype, l3 bytes) of a received frame, VLAN-less."""
    return struct.unpack("!H", frame[12:14])[0], frame[14:]


def is_reply(expect, frame, src, dst, sport, dport):
    et, p = l3(frame)
    if expect == "arp-reply":
        return (et == 0x0806 and len(p) >= 28 and struct.unpack("!H", p[6:8])[0] == 2
                and p[14:18] == dst.packed and p[24:28] == src.packed)
    if expect == "na":
        return (et == 0x86DD and len(p) >= 64 and p[6] == 58 and p[24:40] == src.packed
                and p[40] == 136 and p[48:64] == dst.packed)
    if expect == "synack":
        if et == 0x0800 and len(p) >= 20 and p[9] == 6:
            ihl = (p[0] & 15) * 4
            a, b, t = p[12:16], p[16:20], p[ihl:]
        elif et == 0x86DD and len(p) >= 40 and p[6] == 6:
            a, b, t = p[8:24], p[24:40], p[40:]
        else:
            return False
        if len(t) < 14 or a != dst.packed or b != src.packed:
            return False
        sp, dp = struct.unpack("!HH", t[:4])
        return sp == dport and dp == sport and t[13] & 0x12 == 0x12
    sys.exit("unknown reply " + expect)


def send(a):
    src, dst = ipaddress.ip_address(a.src), ipaddress.ip_address(a.dst)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((a.iface, 0))
    own = s.getsockname()[4][:6]
    t0 = time.monotonic()
    for _ in range(a.count):
        for dmac, et, payload in frames(a.kind, own, mac(a.dst_mac), src, dst, a.sport, a.dport):
            s.send(dmac + own + struct.pack("!H", et) + payload)
        if a.interval:
            time.sleep(a.interval)
    took = time.monotonic() - t0
    got, end = -1, time.monotonic() + a.wait
    if a.expect:
        got = 0
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            data, addr = s.recvfrom(2048)
            if addr[2] != socket.PACKET_OUTGOING and is_reply(a.expect, data, src, dst, a.sport, a.dport):
                got += 1
                if a.until and got >= a.until:
                    break
    s.close()
    return "%d %.3f" % (got, took)


RX = {}
LISTENERS = []


def rx_open(a):
    fam = socket.AF_INET6 if a.family == "6" else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", a.port))
    RX[(a.family, a.port)] = s
    return "ok"


def rx_count(a):
    """Datagrams queued on the socket (waiting 0.5 s for stragglers); closes it."""
    s = RX.pop((a.family, a.port))
    n, end = 0, time.monotonic() + 0.5
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        s.recv(2048)
        n += 1
    s.close()
    return str(n)


def listen(a):
    for port in a.ports:
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
            s.listen(64)
            LISTENERS.append(s)
    return "ok"


def snmp(a):
    vals = {}
    with open(a.file) as f:
        lines = f.read().split("\n")
    if a.file.endswith("snmp6"):
        for l in lines:
            if l.split():
                k, v = l.split()
                vals[k] = v
    else:
        for h, v in zip(lines[::2], lines[1::2]):
            p = h.split(":")[0]
            for k, x in zip(h.split()[1:], v.split()[1:]):
                vals[p + k] = x
    return " ".join(vals.get(k, "?") for k in a.keys)


ap = argparse.ArgumentParser(prog="xgsem", exit_on_error=False)
sub = ap.add_subparsers(dest="cmd", required=True)
p = sub.add_parser("send")
for x in ("iface", "dst_mac", "kind", "src", "dst"):
    p.add_argument(x)
p.add_argument("--count", type=int, default=1)
p.add_argument("--sport", type=int, default=40000)
p.add_argument("--dport", type=int, default=9)
p.add_argument("--interval", type=float, default=0)
p.add_argument("--expect")
p.add_argument("--wait", type=float, default=1.5)
p.add_argument("--until", type=int, default=0, help="stop sniffing at this many replies")
p.set_defaults(fn=send)
p = sub.add_parser("rx_open")
p.add_argument("family")
p.add_argument("port", type=int)
p.set_defaults(fn=rx_open)
p = sub.add_parser("rx_count")
p.add_argument("family")
p.add_argument("port", type=int)
p.set_defaults(fn=rx_count)
p = sub.add_parser("listen")
p.add_argument("ports", type=int, nargs="+")
p.set_defaults(fn=listen)
p = sub.add_parser("snmp")
p.add_argument("file")
p.add_argument("keys", nargs="+")
p.set_defaults(fn=snmp)
# One command a line on stdin, one answer line on stdout each ("error ..."
# on failure): started once per namespace, as Python starts slowly in the
# emulated VM.
for line in sys.stdin:
    try:
        a = ap.parse_args(shlex.split(line))
        out = a.fn(a)
    except SystemExit:
        out = "error: bad command: %s" % line.strip()
    except Exception as e:
        out = "error: %r" % e
    print(out, flush=True)
EOF

xg_unload
xg_mark
xg_veth_pair
# No IPv6 link-local addresses: no router solicitations or neighbour
# discovery of their own cross the link (only the checks' frames).
# (Taking the links down removes the link-local addresses made so far.)
ip link set "$XG_IF" down
ip -n "$XG_NS" link set "$XG_PEER" down
ip link set "$XG_IF" addrgenmode none
ip -n "$XG_NS" link set "$XG_PEER" addrgenmode none
ip link set "$XG_IF" up
ip -n "$XG_NS" link set "$XG_PEER" up
xg_veth_addrs 192.0.2.1/24 192.0.2.2/24 2001:db8::1/64 2001:db8::2/64
ip addr add 192.0.2.11/24 dev "$XG_IF"
ip addr add 2001:db8::11/64 dev "$XG_IF" nodad
ip -n "$XG_NS" addr add 192.0.2.3/24 dev "$XG_PEER"
ip -n "$XG_NS" addr add 2001:db8::3/64 dev "$XG_PEER" nodad
MAC=$(cat /sys/class/net/$XG_IF/address)
PEER_MAC=$(ip -n "$XG_NS" -j link show "$XG_PEER" | jq -r '.[0].address')
IFINDEX=$(cat /sys/class/net/$XG_IF/ifindex)
for a in 192.0.2.1 192.0.2.11 2001:db8::1 2001:db8::11; do
	ip -n "$XG_NS" neigh replace "$a" lladdr "$MAC" dev "$XG_PEER" nud permanent
done
for a in 192.0.2.2 192.0.2.3 2001:db8::2 2001:db8::3; do
	ip neigh replace "$a" lladdr "$PEER_MAC" dev "$XG_IF" nud permanent
done

insmod "$XG_KO" ifaces="$XG_IF" || ktap_exit_skip "insmod failed; see xdpguard_load.sh"

# The helper runs as two servers, one in each namespace, started once
# (Python starts slowly in the emulated VM): srv P|G COMMAND... prints the
# answer line, or fails with it if it is an error.
SRV=$(mktemp -d)
mkfifo "$SRV/P.in" "$SRV/P.out" "$SRV/G.in" "$SRV/G.out"
ip netns exec "$XG_NS" python3 "$HELPER" <"$SRV/P.in" >"$SRV/P.out" 2>"$SRV/P.err" &
exec {P_IN}>"$SRV/P.in" {P_OUT}<"$SRV/P.out"
python3 "$HELPER" <"$SRV/G.in" >"$SRV/G.out" 2>"$SRV/G.err" &
exec {G_IN}>"$SRV/G.in" {G_OUT}<"$SRV/G.out"
srv() {
	local in out r
	if [[ $1 == P ]]; then in=$P_IN out=$P_OUT; else in=$G_IN out=$G_OUT; fi
	shift
	echo "$*" >&"$in"
	read -r -t 120 r <&"$out" || r="error: no answer from the helper to: $*"
	[[ $r != error* ]] || { fail "$r"; return 1; }
	echo "$r"
}

# TCP listeners on 23 (denied by the fragment checks) and 80 (allowed):
# the kernel answers a SYN that reaches a listener with a SYN-ACK.
[[ $(srv G listen 23 80) == ok ]] || ktap_exit_skip "the helper could not listen on TCP 23 and 80: $(cat "$SRV/G.err")"

# pkt KIND SRC DST [ARGS...]: sends crafted frames from the peer namespace
# to the guarded interface's MAC; replies ... prints how many replies were
# sniffed (--expect), send_time ... how long the sending took (s).
pkt() { srv P send "$XG_PEER" "$MAC" "$@" >/dev/null; }
replies() { local r; r=$(srv P send "$XG_PEER" "$MAC" "$@") && echo "${r% *}"; }
send_time() { local r; r=$(srv P send "$XG_PEER" "$MAC" "$@") && echo "${r#* }"; }
# UDP sockets in the guarded namespace: rx_start FAMILY PORT; rx_stop
# FAMILY PORT prints how many datagrams reached the socket.
rx_start() { [[ $(srv G rx_open "$1" "$2") == ok ]]; }
rx_stop() { srv G rx_count "$1" "$2"; }

# Counters, read with one `xdpguard stats` each: deltas NAME... prints the
# growth of each since xg_snapshot; want_deltas NAME=WANT... fails naming
# each that grew otherwise.
deltas() {
	local now
	now=$("$XG_CLI" stats --json) || { fail "xdpguard stats failed"; return 1; }
	jq -rn --argjson a "$XG_SNAP" --argjson b "$now" '[$ARGS.positional[] |
		if $b.counters[.] == null then "none" else $b.counters[.].packets - $a.counters[.].packets end] |
		join(" ")' --args "$@"
}
want_deltas() {
	local names=() wants=() got i
	for i in "$@"; do
		names+=("${i%=*}")
		wants+=("${i#*=}")
	done
	read -r -a got <<<"$(deltas "${names[@]}")" || return 1
	local bad=()
	for i in "${!names[@]}"; do
		[[ ${got[i]} == "${wants[i]}" ]] || bad+=("${names[i]} grew by ${got[i]}, want ${wants[i]}")
	done
	((${#bad[@]} == 0)) || fail "$(printf "%s; " "${bad[@]}")"
}
want_delta() { want_deltas "$1=$2"; }
# The peer's MLD reports for its new addresses (sent from ::, up to 2 s
# after they are added) are the only frames nobody asked for: wait until
# nothing arrives for a second, so counter deltas are exact.
settle() {
	local i last now
	last=$("$XG_CLI" stats --json | jq '.counters.pass.packets + .counters.drop.packets')
	for i in $(seq 20); do
		sleep 1
		now=$("$XG_CLI" stats --json | jq '.counters.pass.packets + .counters.drop.packets')
		[[ $now == "$last" ]] && return 0
		last=$now
	done
	fail "traffic on the guarded link did not stop"
}
received() { # SOURCE DEST: replies to 5 pings
	ip netns exec "$XG_NS" ping -q -n -c 5 -i 0.2 -W 1 -I "$1" "$2" 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p'
}
expect_ping() { # SOURCE DEST WANT
	local got
	got=$(received "$1" "$2")
	[[ $got == "$3" ]] || fail "ping from $1 to $2: ${got:-?} of 5 replies, want $3"
}

N=5
S1_RULES='default = "deny"
[[rule]]
action = "allow"
proto = "tcp"
dport = 22
[[rule]]
action = "deny"
src = ["192.0.2.2", "2001:db8::2"]'

# ---- S1: address rules apply to link-essential frames ----

dhcp4_listed_dropped() {
	xg_apply <<<"$S1_RULES" || return 1
	settle || return 1
	rx_start 4 68 || return 1
	xg_snapshot
	pkt udp 192.0.2.2 192.0.2.1 --count $N --sport 67 --dport 68 || return 1
	local got
	got=$(rx_stop 4 68) || return 1
	[[ $got == 0 ]] || fail "$got of $N datagrams from the denied 192.0.2.2 reached the socket on :68" || return
	want_deltas rule_deny=$N drop=$N essential=0
}
check "S1: DHCP (UDP 67 -> 68) from a denied IPv4 source is dropped under default deny (rule_deny +$N, not delivered)" dhcp4_listed_dropped

dhcp4_other_delivered() {
	rx_start 4 68 || return 1
	xg_snapshot
	pkt udp 192.0.2.3 192.0.2.1 --count $N --sport 67 --dport 68 || return 1
	local got
	got=$(rx_stop 4 68) || return 1
	[[ $got == "$N" ]] || fail "$got of $N datagrams from 192.0.2.3 reached the socket on :68" || return
	want_deltas essential=$N pass=$N rule_deny=0
}
check "S1: the same DHCP frames from another source are delivered (essential +$N)" dhcp4_other_delivered

dhcp6() {
	rx_start 6 546 || return 1
	xg_snapshot
	pkt udp 2001:db8::2 2001:db8::1 --count $N --sport 547 --dport 546 || return 1
	pkt udp 2001:db8::3 2001:db8::1 --count $N --sport 547 --dport 546 || return 1
	local got
	got=$(rx_stop 6 546) || return 1
	[[ $got == "$N" ]] || fail "$got datagrams reached the socket on :546, want the $N from 2001:db8::3 only" || return
	want_deltas rule_deny=$N essential=$N
}
check "S1: DHCPv6 (UDP to 546) from the denied IPv6 source is dropped, from another delivered" dhcp6

nd_solicit() {
	xg_snapshot
	local got
	got=$(replies ns 2001:db8::2 2001:db8::1 --count $N --interval 0.05 --expect na --wait 1.5) || return 1
	[[ $got == 0 ]] || fail "$got neighbour advertisements answered the denied 2001:db8::2" || return
	want_deltas rule_deny=$N essential=0 || return 1
	xg_snapshot
	got=$(replies ns 2001:db8::3 2001:db8::1 --count $N --interval 0.05 --expect na --wait 3 --until $N) || return 1
	[[ $got == "$N" ]] || fail "$got of $N solicitations from 2001:db8::3 were answered" || return
	want_deltas essential=$N rule_deny=0
}
check "S1: a neighbour solicitation from the denied IPv6 source is dropped; from another answered" nd_solicit

arp_listed() {
	xg_snapshot
	local got
	got=$(replies arp 192.0.2.2 192.0.2.1 --count $N --interval 0.05 --expect arp-reply --wait 3 --until $N) || return 1
	[[ $got == "$N" ]] || fail "$got of $N ARP requests from the denied 192.0.2.2 were answered" || return
	want_deltas essential=$N rule_deny=0
}
check "S1: ARP from the denied host still passes (no IP address to match; answered, essential +$N)" arp_listed

global_limit_essential() {
	xg_apply <<EOF || return 1
global_limit = "g"
$S1_RULES
[[limit]]
name = "g"
pps = 1
burst = 3
EOF
	rx_start 4 68 || return 1
	xg_snapshot
	local took got ess rl
	took=$(send_time udp 192.0.2.5 192.0.2.1 --count 20 --sport 67 --dport 68) || return 1
	got=$(rx_stop 4 68) || return 1
	read -r ess rl <<<"$(deltas essential rate_limit)"
	# At 1 pps, burst 3: at most 3 + 1 per second the sending took + 1.
	local most=$((3 + ${took%.*} + 1))
	((ess + rl == 20)) || fail "essential +$ess and rate_limit +$rl, want 20 together" || return
	((ess <= most)) || fail "essential +$ess: more than $most of 20 passed a 1 pps, burst 3 global limit" || return
	((got == ess)) || fail "$got datagrams delivered, essential +$ess"
}
check "S1: global_limit charges essential frames (UDP to 68 beyond the burst counts rate_limit)" global_limit_essential

# ---- S2: the tiny-fragment attack ----

snmp_reasm() {
	echo "$(srv G snmp /proc/net/snmp IpReasmOKs) $(srv G snmp /proc/net/snmp6 Ip6ReasmOKs)"
}
synack() { # KIND SRC DST DPORT [ARGS]: SYN-ACKs sniffed for one SYN (new source port each)
	local kind=$1 src=$2 dst=$3 dport=$4
	shift 4
	replies "$kind" "$src" "$dst" --sport $((20000 + RANDOM % 40000)) --dport "$dport" --expect synack --wait 1.5 "$@"
}

frag_control() {
	xg_apply <<EOF || return 1
fragments = "l3"
[[rule]]
action = "deny"
proto = "tcp"
dport = 23
EOF
	local fam src dst got
	for fam in 4 6; do
		if [[ $fam == 4 ]]; then src=192.0.2.3 dst=192.0.2.1; else src=2001:db8::3 dst=2001:db8::1; fi
		got=$(synack syn $src $dst 80 --wait 3 --until 1)
		[[ $got -ge 1 ]] || fail "IPv$fam: an unfragmented SYN to the allowed port 80 was not answered" || return
		got=$(synack syn-frag24 $src $dst 80 --wait 3 --until 1)
		[[ $got -ge 1 ]] || fail "IPv$fam: a SYN to port 80 in two fragments (24-byte first) was not reassembled and answered" || return
		got=$(synack syn $src $dst 23)
		[[ $got == 0 ]] || fail "IPv$fam: an unfragmented SYN to the denied port 23 was answered" || return
	done
}
check "S2: control: SYNs to port 80, whole or in two fragments with the full TCP header first, are answered; to 23 not" frag_control

tiny_fragments() { # MALFORMED FRAGMENTS
	xg_apply <<EOF || return 1
malformed = "$1"
fragments = "$2"
[[rule]]
action = "deny"
proto = "tcp"
dport = 23
EOF
	# (The peer answers a SYN-ACK it did not ask for with a reset, which
	# passes: pass and default_allow are not checked here.)
	local before after got fam src dst rd mf dr want_dr=1
	[[ $2 == drop ]] && want_dr=2
	before=$(snmp_reasm)
	xg_snapshot
	for fam in 4 6; do
		if [[ $fam == 4 ]]; then src=192.0.2.3 dst=192.0.2.1; else src=2001:db8::3 dst=2001:db8::1; fi
		got=$(synack syn-frag8 $src $dst 23) || return 1
		[[ $got == 0 ]] || fail "IPv$fam: the tiny-fragment SYN to the denied port 23 was answered ($got SYN-ACKs)" || return
	done
	# Per family, the first fragment is always dropped (by the port rule,
	# or as malformed); the second as the fragments policy says.
	read -r rd mf dr <<<"$(deltas rule_deny malformed drop)"
	((rd + mf == 2)) || fail "rule_deny + malformed grew by $rd + $mf, want 2 (the two first fragments)" || return
	((dr == 2 * want_dr)) || fail "drop grew by $dr, want $((2 * want_dr))" || return
	after=$(snmp_reasm)
	[[ $after == "$before" ]] || fail "the guarded stack reassembled a datagram (IpReasmOKs Ip6ReasmOKs $before -> $after)"
}
for m in allow deny; do
	for fr in l3 drop pass; do
		check "S2: a SYN to denied port 23 with 8 bytes of TCP in its first fragment is never answered (malformed=$m fragments=$fr)" tiny_fragments $m $fr
	done
done

# ---- S3: values the program does not understand ----

# hexbytes JSON-ARRAY: the bytes bpftool printed ("0x1a" ...) as "1a ...".
hexbytes() { jq -r '[.[] | ltrimstr("0x")] | join(" ")'; }
active_gen() { # the u32 in xdpg_active (little-endian)
	local x
	read -r -a x <<<"$(bpftool -j map lookup pinned $PINS/xdpg_active key 0 0 0 0 | jq -r '.value' | hexbytes)"
	((${#x[@]} == 4)) && echo $((16#${x[3]}${x[2]}${x[1]}${x[0]}))
}

# le32 N: N as the four little-endian bytes bpftool takes as an array key.
le32() { echo $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# u32_at PIN INDEX: the u32 value at INDEX of an array of u32s.
u32_at() {
	local x
	# shellcheck disable=SC2046
	read -r -a x <<<"$(bpftool -j map lookup pinned "$1" key $(le32 "$2") | jq -r '.value' | hexbytes)"
	((${#x[@]} == 4)) && echo $((16#${x[3]}${x[2]}${x[1]}${x[0]}))
}
# v4_leaf GENERATION DIR A B C D: the index in xdpg_v4t and the value of
# the cell the program's walk for A.B.C.D ends at: in the generation's
# region (2^21 cells), the first level (DIR * 65536 + the top 16 bits),
# then while the cell is a pointer (kind 2, its top two bits) the cell of
# the chunk it points at (strides 8, 4, 4).
v4_leaf() {
	local base=$(($1 << 21)) idx c n
	idx=$((base + $2 * 65536 + ($3 << 8 | $4)))
	c=$(u32_at $PINS/xdpg_v4t $idx) || return 1
	for n in "$5" $(($6 >> 4)) $(($6 & 15)); do
		((c >> 30 == 2)) || break
		idx=$((base + (c & 0x3fffffff) + n))
		c=$(u32_at $PINS/xdpg_v4t $idx) || return 1
	done
	echo "$idx $c"
}

corrupt_trie() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "192.0.2.0/24"
EOF
	"$XG_CLI" pin >/dev/null || fail "xdpguard pin failed" || return
	local gen idx c value key val
	gen=$(active_gen)
	[[ $gen == 0 || $gen == 1 ]] || fail "active generation is '$gen'" || return
	# The cell of 192.0.2.2 as a source (DIR_SRC 0): a leaf (kind 0; no
	# host addresses under it) whose payload is the address entry's value.
	read -r idx c <<<"$(v4_leaf "$gen" 0 192 0 2 2)"
	[[ -n $c ]] || fail "no xdpg_v4t cell for 192.0.2.2 in generation $gen" || return
	((c >> 30 == 0 && (c & 0x3fffffff) != 0)) ||
		fail "xdpg_v4t cell $idx of 192.0.2.2 is $(printf '%#010x' "$c"), want a leaf of a non-empty value" || return
	value=$((c & 0x3fffffff))
	# The entry is xdpg_addrv's generation * 65536 + value.
	key=$(le32 $((gen * 65536 + value)))
	# shellcheck disable=SC2086
	val=$(bpftool -j map lookup pinned $PINS/xdpg_addrv key $key | jq -r '.value' | hexbytes)
	# AddrEntry { bits: u64, best: RuleEntry { rank u32, rule_id u32, action u8, ... } }:
	# the action is byte 16.
	read -r -a b <<<"$val"
	((${#b[@]} == 24)) || fail "no 24-byte address entry $value for 192.0.2.0/24 in generation $gen: '$val'" || return
	[[ ${b[16]} == 02 ]] || fail "address entry $value: action byte ${b[16]}, want 02 (deny): $val" || return
	b[16]=77
	# shellcheck disable=SC2086
	bpftool map update pinned $PINS/xdpg_addrv key $key value hex "${b[@]}" || fail "bpftool map update failed" || return
	xg_snapshot
	expect_ping 192.0.2.2 192.0.2.1 0 || return 1
	want_deltas corrupt=5 drop=5
}
check "S3: an address entry with action 0x77 in the active generation drops its source's pings as corrupt (+5)" corrupt_trie

list_exit() {
	local out rc
	out=$("$XG_CLI" list 2>&1)
	rc=$?
	((rc == 1)) || fail "xdpguard list exited $rc on a corrupt address entry, want 1: $out"
}
check "S3: xdpguard list exits 1 on the corrupt address entry" list_exit

corrupt_other() {
	local gen key
	# A per-interface policy that is neither allow nor deny.
	xg_apply <<EOF || return 1
[interfaces]
$XG_IF = "deny"
EOF
	gen=$(active_gen)
	[[ $gen == 0 || $gen == 1 ]] || fail "active generation is '$gen'" || return
	# Key ifindex | generation << 31, little-endian; value u32.
	key=$(python3 -c 'import sys,struct; print(" ".join(str(x) for x in struct.pack("<I", int(sys.argv[1]) | int(sys.argv[2]) << 31)))' "$IFINDEX" "$gen")
	# shellcheck disable=SC2086
	bpftool map update pinned $PINS/xdpg_ifaces key $key value 9 0 0 0 || fail "bpftool map update failed" || return
	xg_snapshot
	expect_ping 192.0.2.3 192.0.2.1 0 || return 1
	want_delta corrupt 5 || return 1
	# An active generation that is neither 0 nor 1.
	xg_apply </dev/null || return 1
	gen=$(active_gen)
	xg_snapshot
	bpftool map update pinned $PINS/xdpg_active key 0 0 0 0 value 7 0 0 0 || fail "bpftool map update failed" || return
	expect_ping 192.0.2.3 192.0.2.1 0
	local rc=$?
	bpftool map update pinned $PINS/xdpg_active key 0 0 0 0 value "$gen" 0 0 0
	((rc == 0)) && want_delta corrupt 5 || return 1
	expect_ping 192.0.2.3 192.0.2.1 5
}
check "S3: a per-interface policy 9 and an active generation 7 drop as corrupt, never pass" corrupt_other

# ---- Destinations and MACs with real traffic ----

dst_cidr() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
dst = ["192.0.2.11", "2001:db8::11"]
EOF
	xg_snapshot
	expect_ping 192.0.2.3 192.0.2.11 0 || return 1
	expect_ping 2001:db8::3 2001:db8::11 0 || return 1
	want_deltas rule_deny=10 drop=10 || return 1
	expect_ping 192.0.2.3 192.0.2.1 5 && expect_ping 2001:db8::3 2001:db8::1 5 && want_deltas rule_deny=10 drop=10
}
check "a destination rule drops pings to one of the interface's addresses (IPv4, IPv6), not to the other" dst_cidr

dst_mac() {
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
dst_mac = "$MAC"
EOF
	rx_start 4 7777 || return 1
	xg_snapshot
	pkt udp 192.0.2.3 192.0.2.1 --count $N --dport 7777 || return 1
	local got
	got=$(rx_stop 4 7777) || return 1
	[[ $got == 0 ]] || fail "$got unicast datagrams to the denied MAC reached the socket" || return
	want_delta rule_deny $N || return 1
	got=$(replies arp 192.0.2.3 192.0.2.1 --count 3 --interval 0.05 --expect arp-reply --wait 3 --until 3) || return 1
	[[ $got == 3 ]] || fail "$got of 3 broadcast ARP requests were answered" || return
	want_delta rule_deny $N || return 1
	xg_apply </dev/null || return 1
	rx_start 4 7777 || return 1
	pkt udp 192.0.2.3 192.0.2.1 --count $N --dport 7777 || return 1
	got=$(rx_stop 4 7777) || return 1
	[[ $got == "$N" ]] || fail "without the rule $got of $N datagrams arrived"
}
check "a destination MAC rule drops unicast UDP to the interface while broadcast ARP still resolves" dst_mac

no_splat() {
	local log
	log=$(mktemp)
	xg_dmesg_since >"$log"
	if [[ -x $XG_DIR/../qemu/check-splats.sh ]]; then
		"$XG_DIR/../qemu/check-splats.sh" "$log" || { rm -f "$log"; fail "kernel splat (lines above)"; return 1; }
	elif grep -E 'WARNING:|BUG:|Oops|Call Trace:|KASAN:|UBSAN:' "$log"; then
		rm -f "$log"
		fail "kernel splat (lines above)"
		return 1
	fi
	rm -f "$log"
}
check "no kernel splat in dmesg during the test" no_splat

ktap_finished
