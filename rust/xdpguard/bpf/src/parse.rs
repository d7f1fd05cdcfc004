// SPDX-License-Identifier: GPL-2.0

//! Header parsing: Ethernet, up to `MAX_VLAN_TAGS` VLAN tags, IPv4 with
//! options, IPv6 with a bounded extension-header walk, then the L4 fields
//! rules read, all within the length the IP header gives. Every packet
//! access goes through `ptr_at`.

use aya_ebpf::programs::XdpContext;
use xdpguard_abi::*;

use crate::Facts;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_HOPOPTS: u8 = 0;
pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
/// Offsets past this cannot be inside an XDP frame; checking it first keeps
/// every variable packet offset bounded for the verifier.
const MAX_OFFSET: usize = 8192;
/// Returns a pointer to a `T` at `off` bytes into the packet, or `None` when
/// the packet is too short. The only way this program touches packet memory.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    if off > MAX_OFFSET {
        return None;
    }
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

/// A header as it lies in the packet, copied out by [`read`].
///
/// # Safety
///
/// Implementors are `repr(C)` structs of bytes and byte arrays: alignment
/// 1 (packet offsets need not be aligned) and valid for every bit pattern.
unsafe trait Header: Copy {}

/// Ethernet header.
#[repr(C)]
#[derive(Clone, Copy)]
struct EthHdr {
    dst: [u8; 6],
    src: [u8; 6],
    proto: [u8; 2],
}

/// 802.1Q / 802.1ad tag (after the MACs: TCI, then the inner EtherType).
#[repr(C)]
#[derive(Clone, Copy)]
struct VlanHdr {
    tci: [u8; 2],
    proto: [u8; 2],
}

/// IPv4 header without options.
#[repr(C)]
#[derive(Clone, Copy)]
struct Ipv4Hdr {
    version_ihl: u8,
    tos: u8,
    total_len: [u8; 2],
    id: [u8; 2],
    frag_off: [u8; 2],
    ttl: u8,
    proto: u8,
    check: [u8; 2],
    saddr: [u8; 4],
    daddr: [u8; 4],
}

/// IPv6 header.
#[repr(C)]
#[derive(Clone, Copy)]
struct Ipv6Hdr {
    version_flow: [u8; 4],
    payload_len: [u8; 2],
    next: u8,
    hop_limit: u8,
    saddr: [u8; 16],
    daddr: [u8; 16],
}

/// The start of an IPv6 extension header (hop-by-hop, routing,
/// destination options, AH): next header and length.
#[repr(C)]
#[derive(Clone, Copy)]
struct ExtHdr {
    next: u8,
    len: u8,
}

/// IPv6 fragment header.
#[repr(C)]
#[derive(Clone, Copy)]
struct FragHdr {
    next: u8,
    reserved: u8,
    frag_off: [u8; 2],
    id: [u8; 4],
}

/// The ports at the start of TCP and UDP.
#[repr(C)]
#[derive(Clone, Copy)]
struct PortsHdr {
    source: [u8; 2],
    dest: [u8; 2],
}

/// TCP bytes 12 and 13: data offset and flags.
#[repr(C)]
#[derive(Clone, Copy)]
struct TcpFlags {
    doff: u8,
    flags: u8,
}

/// The start of ICMP and ICMPv6.
#[repr(C)]
#[derive(Clone, Copy)]
struct IcmpHdr {
    icmp_type: u8,
    code: u8,
}

/// Declares the header views [`Header`]s.
macro_rules! headers {
    ($($t:ty),*) => {
        $(
            // SAFETY: each is repr(C) of `u8` and `[u8; N]` fields only
            // (alignment 1, checked below; any bit pattern is valid).
            unsafe impl Header for $t {}
            const _: () = assert!(core::mem::align_of::<$t>() == 1);
        )*
    };
}
headers!(EthHdr, VlanHdr, Ipv4Hdr, Ipv6Hdr, ExtHdr, FragHdr, PortsHdr, TcpFlags, IcmpHdr);

const _: () = {
    assert!(core::mem::size_of::<EthHdr>() == 14);
    assert!(core::mem::size_of::<VlanHdr>() == 4);
    assert!(core::mem::size_of::<Ipv4Hdr>() == 20);
    assert!(core::mem::size_of::<Ipv6Hdr>() == 40);
    assert!(core::mem::size_of::<FragHdr>() == 8);
};

/// Copies the header at `off` out of the packet; `None` when the packet
/// is too short.
#[inline(always)]
fn read<T: Header>(ctx: &XdpContext, off: usize) -> Option<T> {
    let p = ptr_at::<T>(ctx, off)?;
    // SAFETY: `ptr_at` checked that a `T` at `p` lies inside the packet,
    // which stays valid for the whole run; `T: Header` has alignment 1 and
    // every bit pattern is valid.
    Some(unsafe { *p })
}

/// The frame's length (a number: comparing with it needs no packet bound).
#[inline(always)]
pub(crate) fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parses the frame into `f`. `None`: malformed at L2 or L3.
#[inline(always)]
pub(crate) fn parse(ctx: &XdpContext, f: &mut Facts) -> Option<()> {
    let eth = read::<EthHdr>(ctx, 0)?;
    f.eth_dst[..6].copy_from_slice(&eth.dst);
    f.eth_src[..6].copy_from_slice(&eth.src);
    let mut proto = be16(eth.proto);
    let mut off = core::mem::size_of::<EthHdr>();
    // Up to MAX_VLAN_TAGS tags; a third is malformed.
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let tag = read::<VlanHdr>(ctx, off)?;
        proto = be16(tag.proto);
        off += core::mem::size_of::<VlanHdr>();
    }
    match proto {
        ETH_P_8021Q | ETH_P_8021AD => None,
        ETH_P_IP => parse_ipv4(ctx, off, f),
        ETH_P_IPV6 => parse_ipv6(ctx, off, f),
        ETH_P_ARP => {
            f.essential = 1;
            Some(())
        }
        _ => Some(()),
    }
}

#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, off: usize, f: &mut Facts) -> Option<()> {
    let ip = read::<Ipv4Hdr>(ctx, off)?;
    let ihl = (ip.version_ihl & 0x0f) as usize * 4;
    let total = be16(ip.total_len) as usize;
    if ip.version_ihl >> 4 != 4 || ihl < 20 || total < ihl {
        return None;
    }
    // The options and the whole datagram the header announces must be
    // there (the frame may be longer: Ethernet padding).
    ptr_at::<u8>(ctx, off + ihl - 1)?;
    if off + total > frame_len(ctx) {
        return None;
    }
    f.family = FAMILY_V4;
    f.proto = ip.proto;
    f.saddr[..4].copy_from_slice(&ip.saddr);
    f.daddr[..4].copy_from_slice(&ip.daddr);
    let frag = be16(ip.frag_off);
    if frag & 0x1fff != 0 {
        f.fragment = 1;
        return Some(());
    }
    f.first_fragment = (frag & 0x2000 != 0) as u8;
    parse_l4(ctx, off + ihl, off + total, f);
    Some(())
}

#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, off: usize, f: &mut Facts) -> Option<()> {
    let ip = read::<Ipv6Hdr>(ctx, off)?;
    if ip.version_flow[0] >> 4 != 6 {
        return None;
    }
    // The payload the header announces must be there.
    let end = off + 40 + be16(ip.payload_len) as usize;
    if end > frame_len(ctx) {
        return None;
    }
    f.family = FAMILY_V6;
    f.saddr = ip.saddr;
    f.daddr = ip.daddr;
    let mut next = ip.next;
    let mut off = off + 40;
    for _ in 0..MAX_EXT_HDRS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let h = read::<ExtHdr>(ctx, off)?;
                next = h.next;
                off += (h.len as usize + 1) * 8;
            }
            IPPROTO_AH => {
                let h = read::<ExtHdr>(ctx, off)?;
                next = h.next;
                off += (h.len as usize + 2) * 4;
            }
            IPPROTO_FRAGMENT => {
                let h = read::<FragHdr>(ctx, off)?;
                next = h.next;
                off += core::mem::size_of::<FragHdr>();
                if off > end {
                    return None;
                }
                let frag = be16(h.frag_off);
                if frag >> 3 != 0 {
                    f.proto = next;
                    f.fragment = 1;
                    return Some(());
                }
                f.first_fragment = (frag & 1) as u8;
            }
            _ => break,
        }
        // Every extension header lies within the payload.
        if off > end {
            return None;
        }
    }
    if matches!(
        next,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH | IPPROTO_FRAGMENT
    ) {
        // More extension headers than the walk allows.
        return None;
    }
    f.proto = next;
    parse_l4(ctx, off, end, f);
    Some(())
}

/// Reads the fields rules use from the L4 header at `off`, which ends
/// the IP datagram at `end`: the ports from the first 4 bytes of TCP and
/// UDP (TCP flags from byte 13), ICMP type and code from the first 2.
/// A header shorter than its minimum (TCP 20 bytes and its data offset,
/// UDP 8, ICMP 4) or a TCP data offset below 5 sets `l4_bad`; the fields
/// it does show are still read, so a port rule applies to them.
#[inline(always)]
fn parse_l4(ctx: &XdpContext, off: usize, end: usize, f: &mut Facts) {
    let avail = end.saturating_sub(off);
    let need = match f.proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        IPPROTO_ICMP | IPPROTO_ICMPV6 => 4,
        _ => return,
    };
    if avail < need {
        f.l4_bad = 1;
    }
    match f.proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            if avail < 4 {
                return;
            }
            let Some(h) = read::<PortsHdr>(ctx, off) else {
                f.l4_bad = 1;
                return;
            };
            f.sport = be16(h.source);
            f.dport = be16(h.dest);
            f.l4 = 1;
            if f.proto == IPPROTO_UDP {
                f.essential = ((f.family == FAMILY_V4 && f.dport == 68)
                    || (f.family == FAMILY_V6 && f.dport == 546))
                    as u8;
            } else if avail >= 20 {
                if let Some(t) = read::<TcpFlags>(ctx, off + 12) {
                    let doff = (t.doff >> 4) as usize * 4;
                    if doff < 20 || doff > avail {
                        f.l4_bad = 1;
                    }
                    f.syn = (t.flags & 0x12 == 0x02) as u8;
                }
            }
        }
        _ => {
            if avail < 2 {
                return;
            }
            let Some(h) = read::<IcmpHdr>(ctx, off) else {
                f.l4_bad = 1;
                return;
            };
            f.icmp = icmp_value(h.icmp_type, h.code);
            f.l4 = 1;
            f.essential = (f.family == FAMILY_V6
                && f.proto == IPPROTO_ICMPV6
                && ((130..=137).contains(&h.icmp_type) || h.icmp_type == 143))
                as u8;
        }
    }
}
