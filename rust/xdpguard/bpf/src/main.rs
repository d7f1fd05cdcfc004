// SPDX-License-Identifier: GPL-2.0

//! The xdpguard XDP program: drops packets from denied sources at the earliest point of receive.
//!
//! Parses Ethernet, then IPv4 or IPv6, looks the source address up in the
//! exact-match deny maps, counts the verdict per CPU and returns it. Anything
//! it does not understand (other EtherTypes, truncated headers) passes: the
//! stack drops malformed frames itself.

#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray},
    programs::XdpContext,
};
use xdpguard_abi::{
    Counter, DenyValue, Ipv4Key, Ipv6Key, DENY_V4_MAX, DENY_V6_MAX, STAT_COUNT, STAT_DROP,
    STAT_PASS,
};

// Names and sizes must equal `xdpguard_abi::MAPS`; xdpguard-skel checks them.
#[map(name = "xdpg_deny_v4")]
static DENY_V4: HashMap<Ipv4Key, DenyValue> = HashMap::with_max_entries(DENY_V4_MAX, 0);

#[map(name = "xdpg_deny_v6")]
static DENY_V6: HashMap<Ipv6Key, DenyValue> = HashMap::with_max_entries(DENY_V6_MAX, 0);

#[map(name = "xdpg_stats")]
static STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// Ethernet header. Byte-array fields keep every header type at alignment 1,
/// so a bounds-checked pointer to one is always valid to read.
#[repr(C)]
struct EthHdr {
    dst: [u8; 6],
    src: [u8; 6],
    proto: [u8; 2],
}

/// IPv4 header, fixed part.
#[repr(C)]
struct Ipv4Hdr {
    ver_ihl: u8,
    tos: u8,
    tot_len: [u8; 2],
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
struct Ipv6Hdr {
    ver_tc_flow: [u8; 4],
    payload_len: [u8; 2],
    nexthdr: u8,
    hop_limit: u8,
    saddr: [u8; 16],
    daddr: [u8; 16],
}

/// A packet's fate and the counter it is recorded under.
struct Verdict {
    action: u32,
    stat: u32,
}

const PASS: Verdict = Verdict {
    action: xdp_action::XDP_PASS,
    stat: STAT_PASS,
};
const DROP: Verdict = Verdict {
    action: xdp_action::XDP_DROP,
    stat: STAT_DROP,
};

#[xdp]
pub fn xdpguard(ctx: XdpContext) -> u32 {
    let verdict = classify(&ctx);
    count(&ctx, verdict.stat);
    verdict.action
}

/// Returns a pointer to a `T` at `off` bytes into the packet, or `None` when
/// the packet is too short. The only way this program touches packet memory.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

/// Reads a header of type `T` at `off`; `None` when the packet is too short.
#[inline(always)]
fn header<T>(ctx: &XdpContext, off: usize) -> Option<&T> {
    let p = ptr_at::<T>(ctx, off)?;
    // SAFETY: `ptr_at` checked that `size_of::<T>()` bytes at `p` lie inside
    // the packet, which stays valid for the whole program run; header types
    // are `repr(C)` byte arrays (alignment 1, every bit pattern valid).
    Some(unsafe { &*p })
}

/// Decides the verdict of one frame.
#[inline(always)]
fn classify(ctx: &XdpContext) -> Verdict {
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return PASS;
    };
    let off = core::mem::size_of::<EthHdr>();
    match u16::from_be_bytes(eth.proto) {
        ETH_P_IP => check_ipv4(ctx, off),
        ETH_P_IPV6 => check_ipv6(ctx, off),
        _ => PASS,
    }
}

#[inline(always)]
fn check_ipv4(ctx: &XdpContext, off: usize) -> Verdict {
    let Some(ip) = header::<Ipv4Hdr>(ctx, off) else {
        return PASS;
    };
    let key = Ipv4Key { addr: ip.saddr };
    if DENY_V4.get_ptr(&key).is_some() {
        DROP
    } else {
        PASS
    }
}

#[inline(always)]
fn check_ipv6(ctx: &XdpContext, off: usize) -> Verdict {
    let Some(ip) = header::<Ipv6Hdr>(ctx, off) else {
        return PASS;
    };
    let key = Ipv6Key { addr: ip.saddr };
    if DENY_V6.get_ptr(&key).is_some() {
        DROP
    } else {
        PASS
    }
}

/// Adds the packet to counter `stat` on this CPU.
#[inline(always)]
fn count(ctx: &XdpContext, stat: u32) {
    if let Some(c) = STATS.get_ptr_mut(stat) {
        let len = (ctx.data_end() - ctx.data()) as u64;
        // SAFETY: the pointer comes from a per-CPU array lookup, so it points
        // at this CPU's value, which nothing else writes while XDP runs here
        // (XDP runs with preemption disabled).
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";
