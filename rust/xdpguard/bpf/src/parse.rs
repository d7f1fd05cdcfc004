// SPDX-License-Identifier: GPL-2.0

//! Header parsing: Ethernet, up to `MAX_VLAN_TAGS` VLAN tags, IPv4 with
//! options, IPv6 with a bounded extension-header walk, then the L4 fields
//! rules read, all within the length the IP header gives. Every packet
//! access goes through `load`: one word-sized load per field group (no
//! byte-by-byte copies), fields taken out of the word in registers. The
//! addresses and MACs stay in the packet: `eval` loads them only when a
//! rule needs them.

use aya_ebpf::programs::XdpContext;
use xdpguard_abi::*;

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
/// Length of the Ethernet header.
const ETH_HLEN: usize = 14;
/// Length of the IPv6 header.
const IPV6_HLEN: usize = 40;
/// Offset of the source address in the IPv4 header (the destination
/// follows).
pub(crate) const IPV4_SADDR: usize = 12;
/// Offset of the source address in the IPv6 header (the destination
/// follows).
pub(crate) const IPV6_SADDR: usize = 8;
/// Offsets past this cannot be inside an XDP frame; checking it first keeps
/// every variable packet offset bounded for the verifier.
const MAX_OFFSET: usize = 8192;

/// What the parser learnt about a frame (kept in registers and on the
/// stack: a few words). Always fully initialised, never an `Option`'s
/// payload: at low opt-levels LLVM spills an absent payload's undefined
/// registers, which the verifier refuses to read.
pub(crate) struct Facts {
    /// Offset of the IP header (0 for a non-IP frame).
    pub(crate) l3: usize,
    /// Source and destination port, host order.
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    /// ICMP `type << 8 | code`.
    pub(crate) icmp: u16,
    /// 4, 6, or 0 for a non-IP frame.
    pub(crate) family: u8,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub(crate) proto: u8,
    /// The L4 fields rules read are present: the ports (first 4 bytes of
    /// TCP or UDP) or the ICMP type and code (first 2 bytes).
    pub(crate) l4: bool,
    /// The L4 header is cut short (within the frame or the IP length) or
    /// invalid (TCP data offset below 5); the fields above may be there.
    pub(crate) l4_bad: bool,
    /// A non-first fragment.
    pub(crate) fragment: bool,
    /// A first fragment of several (offset 0, more fragments follow).
    pub(crate) first_fragment: bool,
    /// Link-essential traffic (ARP, ND/RA/MLD, DHCP replies).
    pub(crate) essential: bool,
    /// A TCP SYN without ACK.
    pub(crate) syn: bool,
}

impl Facts {
    /// Nothing known yet (a non-IP frame).
    pub(crate) const NONE: Facts = Facts {
        l3: 0,
        sport: 0,
        dport: 0,
        icmp: 0,
        family: 0,
        proto: 0,
        l4: false,
        l4_bad: false,
        fragment: false,
        first_fragment: false,
        essential: false,
        syn: false,
    };
}

/// An integer read straight out of the packet.
///
/// # Safety
///
/// Implementors are plain integers of 1, 2 or 4 bytes: valid for every
/// bit pattern; `at` loads exactly `size_of::<Self>()` bytes.
pub(crate) unsafe trait Word: Copy {
    /// The integer at `addr`, in memory byte order, by one BPF load of
    /// its width.
    ///
    /// # Safety
    ///
    /// `addr..addr + size_of::<Self>()` lies inside the packet, which
    /// stays valid for the whole program run.
    unsafe fn at(addr: usize) -> Self;
}

/// One BPF load of `$width` from `$addr`. `read_unaligned` would be the
/// portable spelling, but BPF LLVM (without the global
/// `allows-misaligned-mem-access`, which would also misalign stack
/// accesses the verifier refuses) splits it into byte loads and shifts:
/// four loads and six ALU instructions for a `u32`. The kernel's verifier
/// accepts misaligned packet loads where the architecture has efficient
/// unaligned access (x86-64, arm64, ...; not under
/// `BPF_F_STRICT_ALIGNMENT`, which the module does not set).
macro_rules! packet_load {
    ($addr:expr, $width:literal) => {{
        let v: u64;
        // SAFETY (of the caller, see `Word::at`): the bytes are inside
        // the packet. The instruction only reads them (`readonly`,
        // `pure`: LLVM may merge or drop repeated loads), touches no
        // stack and no flags.
        core::arch::asm!(
            concat!("{v} = *(", $width, " *)({a} + 0)"),
            v = lateout(reg) v,
            a = in(reg) $addr,
            options(pure, readonly, nostack, preserves_flags),
        );
        v
    }};
}

// SAFETY: one byte, valid for any bit pattern; `at` loads one byte.
unsafe impl Word for u8 {
    #[inline(always)]
    unsafe fn at(addr: usize) -> u8 {
        // SAFETY: the caller keeps the byte inside the packet.
        unsafe { packet_load!(addr, "u8") as u8 }
    }
}
// SAFETY: as above, two bytes.
unsafe impl Word for u16 {
    #[inline(always)]
    unsafe fn at(addr: usize) -> u16 {
        // SAFETY: the caller keeps the two bytes inside the packet.
        unsafe { packet_load!(addr, "u16") as u16 }
    }
}
// SAFETY: as above, four bytes.
unsafe impl Word for u32 {
    #[inline(always)]
    unsafe fn at(addr: usize) -> u32 {
        // SAFETY: the caller keeps the four bytes inside the packet.
        unsafe { packet_load!(addr, "u32") as u32 }
    }
}

/// The `T` at `off` bytes into the packet, in memory byte order (network
/// order fields need `from_be`), or `None` when the packet is too short.
/// The only way this program reads packet memory: one load of the word's
/// size, at any alignment.
#[inline(always)]
pub(crate) fn load<T: Word>(ctx: &XdpContext, off: usize) -> Option<T> {
    if off > MAX_OFFSET {
        return None;
    }
    let start = ctx.data();
    if start + off + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    // SAFETY: the check above keeps the `T` at `start + off` inside the
    // packet, which stays valid for the whole run.
    Some(unsafe { T::at(start + off) })
}

/// The MAC address at `off` (0: destination, 6: source): one 16-bit and
/// one 32-bit load after one bounds check.
#[inline(always)]
pub(crate) fn load_mac(ctx: &XdpContext, off: usize) -> Option<[u8; 6]> {
    if off > MAX_OFFSET {
        return None;
    }
    let start = ctx.data();
    if start + off + 6 > ctx.data_end() {
        return None;
    }
    // SAFETY: the check above keeps the 6 bytes at `start + off` inside
    // the packet, valid for the whole run.
    let (a, b) = unsafe {
        (
            u16::at(start + off).to_le_bytes(),
            u32::at(start + off + 2).to_le_bytes(),
        )
    };
    Some([a[0], a[1], b[0], b[1], b[2], b[3]])
}

/// The IPv6 address at `off` as four words as loaded (memory order).
#[inline(always)]
pub(crate) fn load_addr6(ctx: &XdpContext, off: usize) -> Option<[u32; 4]> {
    Some([
        load::<u32>(ctx, off)?,
        load::<u32>(ctx, off + 4)?,
        load::<u32>(ctx, off + 8)?,
        load::<u32>(ctx, off + 12)?,
    ])
}

/// The 16 bytes of four words as loaded, in memory order. Constant
/// indexes only: slicing or a variable index keeps a bounds-check panic
/// (a call BPF cannot make) at low opt-levels.
#[inline(always)]
pub(crate) fn bytes16(w: [u32; 4]) -> [u8; 16] {
    let [a, b, c, d] = [
        w[0].to_le_bytes(),
        w[1].to_le_bytes(),
        w[2].to_le_bytes(),
        w[3].to_le_bytes(),
    ];
    [
        a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2],
        d[3],
    ]
}

/// The frame's length (a number: comparing with it needs no packet bound).
#[inline(always)]
pub(crate) fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

/// Bytes 2 and 3 of a word as loaded, a network-order 16-bit field.
#[inline(always)]
fn hi16(w: u32) -> u16 {
    u16::from_be((w >> 16) as u16)
}

/// Bytes 0 and 1 of a word as loaded, a network-order 16-bit field.
#[inline(always)]
fn lo16(w: u32) -> u16 {
    u16::from_be(w as u16)
}

/// Parses the frame into `f` (which starts as [`Facts::NONE`]). `None`:
/// malformed at L2 or L3 (`f` then holds what was learnt before).
#[inline(always)]
pub(crate) fn parse(ctx: &XdpContext, f: &mut Facts) -> Option<()> {
    let mut proto = u16::from_be(load::<u16>(ctx, 12)?);
    let mut off = ETH_HLEN;
    // Up to MAX_VLAN_TAGS tags; a third is malformed. A tag is the TCI,
    // then the inner EtherType.
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        proto = u16::from_be(load::<u16>(ctx, off + 2)?);
        off += 4;
    }
    match proto {
        ETH_P_8021Q | ETH_P_8021AD => return None,
        ETH_P_IP => parse_ipv4(ctx, off, f)?,
        ETH_P_IPV6 => parse_ipv6(ctx, off, f)?,
        ETH_P_ARP => f.essential = true,
        _ => {}
    }
    Some(())
}

#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, off: usize, f: &mut Facts) -> Option<()> {
    // Version and IHL, TOS, total length | id, fragment offset | TTL,
    // protocol, checksum.
    let w0 = load::<u32>(ctx, off)?;
    let w1 = load::<u32>(ctx, off + 4)?;
    let w2 = load::<u32>(ctx, off + 8)?;
    // The addresses must be there too (eval loads them).
    load::<u32>(ctx, off + IPV4_SADDR + 4)?;
    let version_ihl = w0 as u8;
    let ihl = (version_ihl & 0x0f) as usize * 4;
    let total = hi16(w0) as usize;
    if version_ihl >> 4 != 4 || ihl < 20 || total < ihl {
        return None;
    }
    // The options and the whole datagram the header announces must be
    // there (the frame may be longer: Ethernet padding).
    load::<u8>(ctx, off + ihl - 1)?;
    if off + total > frame_len(ctx) {
        return None;
    }
    f.l3 = off;
    f.family = FAMILY_V4;
    f.proto = (w2 >> 8) as u8;
    let frag = hi16(w1);
    if frag & 0x1fff != 0 {
        f.fragment = true;
        return Some(());
    }
    f.first_fragment = frag & 0x2000 != 0;
    parse_l4(ctx, off + ihl, off + total, f);
    Some(())
}

#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, off: usize, f: &mut Facts) -> Option<()> {
    // Version, traffic class, flow label | payload length, next header,
    // hop limit.
    let w0 = load::<u32>(ctx, off)?;
    let w1 = load::<u32>(ctx, off + 4)?;
    // The addresses must be there (eval loads them): the header's end.
    load::<u32>(ctx, off + IPV6_HLEN - 4)?;
    if (w0 as u8) >> 4 != 6 {
        return None;
    }
    // The payload the header announces must be there.
    let end = off + IPV6_HLEN + lo16(w1) as usize;
    if end > frame_len(ctx) {
        return None;
    }
    f.l3 = off;
    f.family = FAMILY_V6;
    let mut next = (w1 >> 16) as u8;
    let mut off = off + IPV6_HLEN;
    for _ in 0..MAX_EXT_HDRS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                // Next header, length in 8-byte units less one.
                let h = load::<u16>(ctx, off)?;
                next = h as u8;
                off += ((h >> 8) as usize + 1) * 8;
            }
            IPPROTO_AH => {
                // Next header, length in 4-byte units less two.
                let h = load::<u16>(ctx, off)?;
                next = h as u8;
                off += ((h >> 8) as usize + 2) * 4;
            }
            IPPROTO_FRAGMENT => {
                // Next header, reserved, fragment offset and flags | id.
                let h = load::<u32>(ctx, off)?;
                load::<u32>(ctx, off + 4)?;
                next = h as u8;
                off += 8;
                if off > end {
                    return None;
                }
                let frag = hi16(h);
                if frag >> 3 != 0 {
                    f.proto = next;
                    f.fragment = true;
                    return Some(());
                }
                f.first_fragment = frag & 1 != 0;
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
        f.l4_bad = true;
    }
    match f.proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            if avail < 4 {
                return;
            }
            let Some(ports) = load::<u32>(ctx, off) else {
                f.l4_bad = true;
                return;
            };
            f.sport = lo16(ports);
            f.dport = hi16(ports);
            f.l4 = true;
            if f.proto == IPPROTO_UDP {
                f.essential = (f.family == FAMILY_V4 && f.dport == 68)
                    || (f.family == FAMILY_V6 && f.dport == 546);
            } else if avail >= 20 {
                // Data offset (high nibble), then the flags.
                if let Some(t) = load::<u16>(ctx, off + 12) {
                    let doff = ((t as u8) >> 4) as usize * 4;
                    if doff < 20 || doff > avail {
                        f.l4_bad = true;
                    }
                    f.syn = (t >> 8) as u8 & 0x12 == 0x02;
                }
            }
        }
        _ => {
            if avail < 2 {
                return;
            }
            // Type, then code: `icmp_value` is the pair in network order.
            let Some(tc) = load::<u16>(ctx, off) else {
                f.l4_bad = true;
                return;
            };
            let icmp_type = tc as u8;
            f.icmp = icmp_value(icmp_type, (tc >> 8) as u8);
            f.l4 = true;
            f.essential = f.family == FAMILY_V6
                && f.proto == IPPROTO_ICMPV6
                && ((130..=137).contains(&icmp_type) || icmp_type == 143);
        }
    }
}
