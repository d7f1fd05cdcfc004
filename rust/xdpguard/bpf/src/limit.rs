// SPDX-License-Identifier: GPL-2.0

//! Rate limiters: a GCRA token bucket per limiter and source (masked to
//! the limiter's prefix) in the LRU hash `xdpg_buckets`.

// `atomic_cxchg`: see the crate's `#![feature(core_intrinsics)]`.
use core::intrinsics::{atomic_cxchg, AtomicOrdering};

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_ns, programs::XdpContext};
use xdpguard_abi::*;

use crate::parse::{bytes16, load, load_addr6, Facts, IPV4_SADDR, IPV6_SADDR};
use crate::{BUCKETS, LIMITS};

/// The frame's source address, zero-padded to 16 bytes (IPv4 in the
/// first 4); `None` if it is not in the packet (the parser checked it is).
#[inline(always)]
fn source(ctx: &XdpContext, f: &Facts) -> Option<[u8; 16]> {
    if f.family == FAMILY_V4 {
        Some(bytes16([load::<u32>(ctx, f.l3 + IPV4_SADDR)?, 0, 0, 0]))
    } else {
        Some(bytes16(load_addr6(ctx, f.l3 + IPV6_SADDR)?))
    }
}

/// `addr` with all bits past the first `prefix` cleared.
#[inline(always)]
fn masked(addr: &[u8; 16], prefix: u32) -> [u8; 16] {
    let hi = u64::from_be_bytes([
        addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7],
    ]);
    let lo = u64::from_be_bytes([
        addr[8], addr[9], addr[10], addr[11], addr[12], addr[13], addr[14], addr[15],
    ]);
    let mask = |bits: u32| {
        if bits == 0 {
            0
        } else if bits >= 64 {
            u64::MAX
        } else {
            u64::MAX << (64 - bits)
        }
    };
    let hi = hi & mask(prefix.min(64));
    let lo = lo & mask(prefix.saturating_sub(64));
    let (h, l) = (hi.to_be_bytes(), lo.to_be_bytes());
    [
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], l[0], l[1], l[2], l[3], l[4], l[5], l[6],
        l[7],
    ]
}

/// The outcome of charging a frame to a limiter.
#[derive(PartialEq, Eq)]
pub(crate) enum Charge {
    /// Within the limit: pass.
    Within,
    /// Beyond the limit: drop.
    Over,
    /// The limiter is not configured or out of range: a corrupt map.
    Corrupt,
}

/// Charges one packet (and `len` bytes) to the bucket of `limit` for the
/// packet's source.
#[inline(always)]
pub(crate) fn within_limit(
    ctx: &XdpContext,
    generation: u32,
    limit: u16,
    f: &Facts,
    len: u64,
) -> Charge {
    if limit as u32 >= MAX_LIMITS {
        return Charge::Corrupt;
    }
    let Some(cfg) = LIMITS.get(limit_index(generation, limit as u32)) else {
        return Charge::Corrupt;
    };
    if cfg.pps == 0 && cfg.bps == 0 {
        // The compiler never refers to an unconfigured limiter.
        return Charge::Corrupt;
    }
    let prefix = if f.family == FAMILY_V4 {
        cfg.prefix4
    } else {
        cfg.prefix6
    } as u32;
    let Some(saddr) = source(ctx, f) else {
        return Charge::Within;
    };
    let key = BucketKey::new(cfg.id, f.family, masked(&saddr, prefix));
    let b = match BUCKETS.get_ptr_mut(&key) {
        Some(b) => b,
        None => {
            // A new source: an empty state is a full bucket. BPF_NOEXIST
            // keeps a state another CPU made meanwhile; if the map is full
            // of in-use entries the insert fails and the frame passes.
            let _ = BUCKETS.insert(&key, &Bucket::default(), BPF_NOEXIST as u64);
            match BUCKETS.get_ptr_mut(&key) {
                Some(b) => b,
                None => return Charge::Within,
            }
        }
    };
    // SAFETY: `bpf_ktime_get_ns` takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    const NS: u64 = 1_000_000_000;
    if cfg.pps != 0 {
        // Emission interval rounded down: never stricter than the rate.
        let t = NS / cfg.pps as u64;
        // SAFETY: `b` points at a live LRU hash value for this run (RCU);
        // `packet_tat` is an aligned u64 that other CPUs only change with
        // atomic operations too.
        let tat = unsafe { &raw mut (*b).packet_tat };
        if !gcra(tat, now, t, t * cfg.burst_packets as u64) {
            return Charge::Over;
        }
    }
    if cfg.bps != 0 {
        let t = len * NS / cfg.bps;
        // The compiler caps bursts at MAX_BURST, so the product fits.
        let tau = cfg.burst_bytes * NS / cfg.bps;
        // SAFETY: as above, for `byte_tat`.
        let tat = unsafe { &raw mut (*b).byte_tat };
        if !gcra(tat, now, t, tau) {
            return Charge::Over;
        }
    }
    Charge::Within
}

/// The generic cell rate algorithm on the theoretical arrival time at
/// `tat`: a frame costing `t` ns conforms if, once charged, the state is
/// at most `tau` (the burst) ahead of `now`. The state changes only by a
/// compare-and-exchange, so concurrent CPUs never lose a charge; after a
/// few lost races in a row (each one another CPU's successful charge) the
/// frame passes uncharged.
#[inline(always)]
fn gcra(tat: *mut u64, now: u64, t: u64, tau: u64) -> bool {
    // SAFETY: the caller passes a pointer to an aligned u64 in a map value
    // that stays valid for this program run and that every writer updates
    // atomically.
    // An aligned 8-byte load is single-copy atomic in BPF.
    let mut old = unsafe { core::ptr::read_volatile(tat) };
    for _ in 0..GCRA_TRIES {
        let new = if old > now { old } else { now } + t;
        if new - now > tau {
            return false;
        }
        // SAFETY: as above.
        let (cur, done) = unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                tat, old, new,
            )
        };
        if done {
            return true;
        }
        old = cur;
    }
    true
}

/// Compare-and-exchange attempts per charge.
const GCRA_TRIES: u32 = 4;
