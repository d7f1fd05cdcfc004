#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Send crafted Ethernet frames for the xdpguard selftests (AF_PACKET, stdlib only).

Usage: xgpkt.py IFACE DST_MAC KIND SRC DST [--count N] [--dport P]

KIND: tcp-syn, udp, ext-tcp (IPv6 with hop-by-hop, routing and destination
options headers before TCP), frag-first (first fragment of a UDP datagram),
frag-later (non-first fragment),
trunc-tcp (TCP header cut after 3 bytes), qinq-udp (802.1ad + 802.1Q tags),
deep-ext (more IPv6 extension headers than xdpguard walks).
SRC/DST are IPv4 or IPv6 addresses; the family follows SRC.
"""
import argparse
import ipaddress
import socket
import struct


def l4(kind, dport):
    if kind in ("tcp-syn", "ext-tcp", "deep-ext"):
        return 6, struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, 0x50, 0x02, 8192, 0, 0)
    if kind == "trunc-tcp":
        return 6, struct.pack("!HB", 40000, dport >> 8)
    return 17, struct.pack("!HHHH", 40000, dport, 8, 0)


def ipv4(src, dst, proto, payload, frag=0):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0,
                       src.packed, dst.packed) + payload


def ipv6(src, dst, nexthdr, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nexthdr, 64, src.packed, dst.packed) + payload


def ext(next_hdr):
    """An 8-byte hop-by-hop/routing/destination-options header."""
    return struct.pack("!BB6s", next_hdr, 0, b"\x01\x04\x00\x00\x00\x00")


def frame(kind, src, dst, dport):
    proto, seg = l4(kind, dport)
    if src.version == 4:
        if kind == "frag-first":
            return 0x0800, ipv4(src, dst, proto, seg, frag=0x2000)
        if kind == "frag-later":
            return 0x0800, ipv4(src, dst, 17, b"\x00" * 16, frag=0x0002)
        return 0x0800, ipv4(src, dst, proto, seg)
    if kind == "ext-tcp":
        # Hop-by-hop (0) -> routing (43) -> destination options (60) -> TCP.
        chain = struct.pack("!BB6s", 43, 0, b"\x01\x04\x00\x00\x00\x00")
        chain += struct.pack("!BBBB4s", 60, 0, 0, 0, b"\x00" * 4)
        chain += ext(6)
        return 0x86DD, ipv6(src, dst, 0, chain + seg)
    if kind == "deep-ext":
        chain = b"".join(ext(60) for _ in range(7)) + ext(6)
        return 0x86DD, ipv6(src, dst, 60, chain + seg)
    if kind in ("frag-first", "frag-later"):
        offset = 0 if kind == "frag-first" else 8
        fh = struct.pack("!BBHI", proto if kind == "frag-first" else 17, 0, (offset << 3) | (1 if offset == 0 else 0), 7)
        body = seg if kind == "frag-first" else b"\x00" * 16
        return 0x86DD, ipv6(src, dst, 44, fh + body)
    return 0x86DD, ipv6(src, dst, proto, seg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("dst_mac")
    ap.add_argument("kind")
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--dport", type=int, default=22)
    a = ap.parse_args()
    src, dst = ipaddress.ip_address(a.src), ipaddress.ip_address(a.dst)
    ethertype, payload = frame(a.kind.replace("qinq-", ""), src, dst, a.dport)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    own = s.getsockname()[4]
    hdr = bytes.fromhex(a.dst_mac.replace(":", "")) + own
    if a.kind.startswith("qinq-"):
        hdr += struct.pack("!HHHH", 0x88A8, 10, 0x8100, 20)
    pkt = hdr + struct.pack("!H", ethertype) + payload
    for _ in range(a.count):
        s.send(pkt)


if __name__ == "__main__":
    main()
