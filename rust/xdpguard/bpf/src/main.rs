// SPDX-License-Identifier: GPL-2.0

//! The xdpguard XDP program: classifies every received frame against the active rule set and passes or drops it.
//!
//! Stages: `parse` (Ethernet, up to two VLAN tags, IPv4 with options, IPv6
//! with a bounded extension-header walk, the L4 ports or ICMP type, all
//! within the length the IP header gives), then `classify` (field lookups
//! that each yield a bitmap of compound rules, ANDed; the best compound
//! rule against the best address-only rules by rank), then `finish` (rate
//! limiters, monitor mode, counters). A map value the program does not
//! understand drops the frame as `corrupt`; nothing unknown passes. The rule
//! semantics are written down in Documentation/rules.rst and implemented
//! again, independently, by the reference model in rust/rules, which the
//! differential test compares with this program.

#![no_std]
#![no_main]
// `atomic_cxchg`: the target spec of bpfel-unknown-none says no CAS (it
// predates BPF_ATOMIC), so `AtomicU64::compare_exchange` is missing, but
// LLVM lowers `cmpxchg` to BPF_CMPXCHG (BPF CPU v3, Linux 5.12).
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{atomic_cxchg, AtomicOrdering};

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST},
    helpers::bpf_ktime_get_ns,
    helpers::gen::bpf_xdp_load_bytes,
    macros::{map, xdp},
    maps::{
        lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf,
    },
    programs::XdpContext,
};
use xdpguard_abi::*;

// Names and sizes must equal `xdpguard_abi::MAPS`; xdpguard-skel checks them.
#[map(name = "xdpg_active")]
static ACTIVE: Array<u32> = Array::with_max_entries(1, 0);
#[map(name = "xdpg_config")]
static CONFIG: Array<Config> = Array::with_max_entries(GENERATIONS, 0);
#[map(name = "xdpg_rules")]
static RULES: Array<RuleEntry> = Array::with_max_entries(GENERATIONS * MAX_BIT_RULES, 0);
#[map(name = "xdpg_v4")]
static V4: LpmTrie<[u8; 8], AddrEntry> = LpmTrie::with_max_entries(V4_MAX, BPF_F_NO_PREALLOC);
#[map(name = "xdpg_v6")]
static V6: LpmTrie<[u8; 20], AddrEntry> = LpmTrie::with_max_entries(V6_MAX, BPF_F_NO_PREALLOC);
#[map(name = "xdpg_mac")]
static MACS: HashMap<MacKey, u64> = HashMap::with_max_entries(MAC_MAX, 0);
#[map(name = "xdpg_proto")]
static PROTO: Array<u64> = Array::with_max_entries(GENERATIONS * 256, 0);
#[map(name = "xdpg_ports")]
static PORTS: Array<u64> = Array::with_max_entries(GENERATIONS * PORT_TABLES * 65536, 0);
#[map(name = "xdpg_limits")]
static LIMITS: Array<LimitConfig> = Array::with_max_entries(GENERATIONS * MAX_LIMITS, 0);
#[map(name = "xdpg_buckets")]
static BUCKETS: LruHashMap<BucketKey, Bucket> = LruHashMap::with_max_entries(BUCKETS_MAX, 0);
#[map(name = "xdpg_ifaces")]
static IFACES: HashMap<u32, u32> = HashMap::with_max_entries(IFACES_MAX, 0);
#[map(name = "xdpg_stats")]
static STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(STAT_COUNT, 0);
#[map(name = "xdpg_rule_stats")]
static RULE_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(MAX_RULE_IDS, 0);
#[map(name = "xdpg_samples")]
static SAMPLES: RingBuf = RingBuf::with_byte_size(SAMPLES_BYTES, 0);
#[map(name = "xdpg_if_stats")]
static IF_STATS: PerCpuArray<IfCounters> = PerCpuArray::with_max_entries(IF_STATS_ARRAY, 0);
#[map(name = "xdpg_if_hash")]
static IF_HASH: PerCpuHashMap<u32, IfCounters> = PerCpuHashMap::with_max_entries(IF_HASH_MAX, 0);
#[map(name = "xdpg_scratch")]
static SCRATCH: PerCpuArray<Facts> = PerCpuArray::with_max_entries(1, 0);
// The scratch map's value size comes from the ABI (checked by the skeleton).
const _: () = assert!(core::mem::size_of::<Facts>() == SCRATCH_SIZE as usize);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
/// Offsets past this cannot be inside an XDP frame; checking it first keeps
/// every variable packet offset bounded for the verifier.
const MAX_OFFSET: usize = 8192;
/// Rule id meaning "no rule" (default policy, malformed, ...).
const NO_RULE: u32 = u32::MAX;

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

/// Reads `N` bytes at `off`; `None` when the packet is too short.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    let p = ptr_at::<[u8; N]>(ctx, off)?;
    // SAFETY: `ptr_at` checked that N bytes at `p` lie inside the packet,
    // which stays valid for the whole run; `[u8; N]` has alignment 1 and
    // every bit pattern is valid.
    Some(unsafe { *p })
}

/// The frame's length (a number: comparing with it needs no packet bound).
#[inline(always)]
fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// What the parser learnt about a frame. Arrays first and 8-byte aligned,
/// MACs padded to 8 bytes: zeroing it is then plain stores, not a `memset`
/// call (which BPF cannot make).
#[repr(C, align(8))]
struct Facts {
    saddr: [u8; 16],
    daddr: [u8; 16],
    eth_src: [u8; 8],
    eth_dst: [u8; 8],
    sport: u16,
    dport: u16,
    /// ICMP `type << 8 | code`.
    icmp: u16,
    /// 4, 6, or 0 for a non-IP frame.
    family: u8,
    /// Upper-layer protocol (after IPv6 extension headers).
    proto: u8,
    /// The L4 fields rules read are present: the ports (first 4 bytes of
    /// TCP or UDP) or the ICMP type and code (first 2 bytes).
    l4: u8,
    /// The L4 header is cut short (within the frame or the IP length) or
    /// invalid (TCP data offset below 5); the fields above may be there.
    l4_bad: u8,
    /// A non-first fragment.
    fragment: u8,
    /// A first fragment of several (offset 0, more fragments follow).
    first_fragment: u8,
    /// Link-essential traffic (ARP, ND/RA/MLD, DHCP replies).
    essential: u8,
    /// A TCP SYN without ACK.
    syn: u8,
    /// Sampling token bucket of this CPU (kept across packets).
    sample_last_ns: u64,
    sample_tokens: u64,
    _pad: [u8; SCRATCH_SIZE as usize - 80],
}

/// The outcome of classification.
struct Decision {
    action: u8,
    reason: u32,
    rule_id: u32,
    limit: u8,
}

#[xdp]
pub fn xdpguard(ctx: XdpContext) -> u32 {
    // Anything but 0 or 1 is corrupt: classify nothing, drop (with the
    // counters and monitor setting of generation 0).
    let (generation, corrupt) = match ACTIVE.get(0) {
        Some(&g) if g < GENERATIONS => (g, false),
        _ => (0, true),
    };
    let Some(cfg) = CONFIG.get(generation) else {
        return xdp_action::XDP_ABORTED;
    };
    // Parse results live in per-CPU scratch space, not on the stack; every
    // field the parser may skip is reset here.
    let Some(f) = SCRATCH.get_ptr_mut(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: a per-CPU array lookup returns this CPU's value, which no one
    // else touches while this program runs here (XDP runs with preemption
    // off); `Facts` is integers and byte arrays, valid for any bit pattern.
    let f = unsafe { &mut *f };
    f.saddr = [0; 16];
    f.daddr = [0; 16];
    f.eth_src = [0; 8];
    f.eth_dst = [0; 8];
    f.sport = 0;
    f.dport = 0;
    f.icmp = 0;
    f.family = 0;
    f.proto = 0;
    f.l4 = 0;
    f.l4_bad = 0;
    f.fragment = 0;
    f.first_fragment = 0;
    f.essential = 0;
    f.syn = 0;
    let decision = if corrupt {
        Decision::of(ACTION_DENY, REASON_CORRUPT)
    } else {
        match parse(&ctx, f) {
            Some(()) => classify(&ctx, generation, cfg, f),
            None => malformed(cfg),
        }
    };
    finish(&ctx, generation, cfg, f, decision)
}

impl Decision {
    /// A decision no rule made (policy, malformed, corrupt, ...).
    #[inline(always)]
    fn of(action: u8, reason: u32) -> Decision {
        Decision {
            action,
            reason,
            rule_id: NO_RULE,
            limit: LIMIT_NONE,
        }
    }
}

/// Parses the frame into `f`. `None`: malformed at L2 or L3.
#[inline(always)]
fn parse(ctx: &XdpContext, f: &mut Facts) -> Option<()> {
    let eth = bytes::<14>(ctx, 0)?;
    f.eth_dst[..6].copy_from_slice(&eth[0..6]);
    f.eth_src[..6].copy_from_slice(&eth[6..12]);
    let mut proto = be16([eth[12], eth[13]]);
    let mut off = 14usize;
    // Up to MAX_VLAN_TAGS tags; a third is malformed.
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let tag = bytes::<4>(ctx, off)?;
        proto = be16([tag[2], tag[3]]);
        off += 4;
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
    let ip = bytes::<20>(ctx, off)?;
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = be16([ip[2], ip[3]]) as usize;
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl {
        return None;
    }
    // The options and the whole datagram the header announces must be
    // there (the frame may be longer: Ethernet padding).
    ptr_at::<u8>(ctx, off + ihl - 1)?;
    if off + total > frame_len(ctx) {
        return None;
    }
    f.family = 4;
    f.proto = ip[9];
    f.saddr[..4].copy_from_slice(&ip[12..16]);
    f.daddr[..4].copy_from_slice(&ip[16..20]);
    let frag = be16([ip[6], ip[7]]);
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
    let ip = bytes::<40>(ctx, off)?;
    if ip[0] >> 4 != 6 {
        return None;
    }
    // The payload the header announces must be there.
    let end = off + 40 + be16([ip[4], ip[5]]) as usize;
    if end > frame_len(ctx) {
        return None;
    }
    f.family = 6;
    f.saddr.copy_from_slice(&ip[8..24]);
    f.daddr.copy_from_slice(&ip[24..40]);
    let mut next = ip[6];
    let mut off = off + 40;
    for _ in 0..MAX_EXT_HDRS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let h = bytes::<2>(ctx, off)?;
                next = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            IPPROTO_AH => {
                let h = bytes::<2>(ctx, off)?;
                next = h[0];
                off += (h[1] as usize + 2) * 4;
            }
            IPPROTO_FRAGMENT => {
                let h = bytes::<8>(ctx, off)?;
                next = h[0];
                off += 8;
                if off > end {
                    return None;
                }
                let frag = be16([h[2], h[3]]);
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
            let Some(h) = bytes::<4>(ctx, off) else {
                f.l4_bad = 1;
                return;
            };
            f.sport = be16([h[0], h[1]]);
            f.dport = be16([h[2], h[3]]);
            f.l4 = 1;
            if f.proto == IPPROTO_UDP {
                f.essential =
                    ((f.family == 4 && f.dport == 68) || (f.family == 6 && f.dport == 546)) as u8;
            } else if avail >= 20 {
                if let Some(t) = bytes::<2>(ctx, off + 12) {
                    let doff = (t[0] >> 4) as usize * 4;
                    if doff < 20 || doff > avail {
                        f.l4_bad = 1;
                    }
                    f.syn = (t[1] & 0x12 == 0x02) as u8;
                }
            }
        }
        _ => {
            if avail < 2 {
                return;
            }
            let Some(h) = bytes::<2>(ctx, off) else {
                f.l4_bad = 1;
                return;
            };
            f.icmp = (h[0] as u16) << 8 | h[1] as u16;
            f.l4 = 1;
            f.essential = (f.family == 6
                && f.proto == IPPROTO_ICMPV6
                && ((130..=137).contains(&h[0]) || h[0] == 143)) as u8;
        }
    }
}

#[inline(always)]
fn port_bits(generation: u32, table: u32, index: u16) -> u64 {
    let i = (generation * PORT_TABLES + table) * 65536 + index as u32;
    PORTS.get(i).copied().unwrap_or(0)
}

#[inline(always)]
fn mac_bits(generation: u32, dir: u8, mac: &[u8; 8]) -> u64 {
    let key = MacKey {
        generation: generation as u8,
        dir,
        mac: [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]],
    };
    match MACS.get_ptr(&key) {
        // SAFETY: a hash lookup result points at a live value for the rest
        // of this program run (RCU).
        Some(v) => unsafe { *v },
        None => 0,
    }
}

/// The address entry of the longest prefix matching `addr`, if any.
#[inline(always)]
fn addr_entry(generation: u32, family: u8, dir: u8, addr: &[u8; 16]) -> Option<&'static AddrEntry> {
    if family == 4 {
        let mut data = [0u8; 8];
        data[0] = generation as u8;
        data[1] = dir;
        data[2..6].copy_from_slice(&addr[..4]);
        V4.get(&Key::new(16 + 32, data))
    } else {
        let mut data = [0u8; 20];
        data[0] = generation as u8;
        data[1] = dir;
        data[2..18].copy_from_slice(addr);
        V6.get(&Key::new(16 + 128, data))
    }
}

/// Index of the lowest set bit of a non-zero `b`, without `cttz` (which
/// LLVM lowers to a table lookup in .rodata).
#[inline(always)]
fn lowest_bit(b: u64) -> u32 {
    let mut b = b & b.wrapping_neg();
    let mut n = 0;
    if b >> 32 != 0 {
        n += 32;
        b >>= 32;
    }
    if b >> 16 != 0 {
        n += 16;
        b >>= 16;
    }
    if b >> 8 != 0 {
        n += 8;
        b >>= 8;
    }
    if b >> 4 != 0 {
        n += 4;
        b >>= 4;
    }
    if b >> 2 != 0 {
        n += 2;
        b >>= 2;
    }
    if b >> 1 != 0 {
        n += 1;
    }
    n
}

/// The best rule match: lowest rank among the best compound rule and the
/// address-only rules of the source and destination.
struct Best {
    rank: u32,
    action: u8,
    rule_id: u32,
    limit: u8,
}

#[inline(always)]
fn consider(best: &mut Best, r: &RuleEntry) {
    if r.action != ACTION_NONE && r.rank < best.rank {
        best.rank = r.rank;
        best.action = r.action;
        best.rule_id = r.rule_id;
        best.limit = r.limit;
    }
}

#[inline(always)]
fn classify(ctx: &XdpContext, generation: u32, cfg: &Config, f: &Facts) -> Decision {
    // The drop and pass fragment policies come before any rule.
    if f.fragment != 0 && cfg.frag_policy != FRAG_L3_ONLY {
        return match cfg.frag_policy {
            FRAG_DROP => Decision::of(ACTION_DENY, REASON_FRAGMENT),
            FRAG_PASS => Decision::of(ACTION_ALLOW, REASON_FRAGMENT),
            _ => Decision::of(ACTION_DENY, REASON_CORRUPT),
        };
    }
    let mut best = Best {
        rank: RANK_NONE,
        action: ACTION_NONE,
        rule_id: NO_RULE,
        limit: LIMIT_NONE,
    };
    // A lookup only matters for a field some compound rule constrains.
    let all = cfg.all;
    let mut bits = all;
    if cfg.wild_mac_src != all {
        bits &= mac_bits(generation, DIR_SRC, &f.eth_src) | cfg.wild_mac_src;
    }
    if cfg.wild_mac_dst != all {
        bits &= mac_bits(generation, DIR_DST, &f.eth_dst) | cfg.wild_mac_dst;
    }

    if f.family == 0 {
        bits &= cfg.nonip;
    } else {
        let (src_bit, dst_bit) = if f.family == 4 {
            (TRIE_SRC4, TRIE_DST4)
        } else {
            (TRIE_SRC6, TRIE_DST6)
        };
        let src = if cfg.tries & src_bit != 0 {
            addr_entry(generation, f.family, DIR_SRC, &f.saddr)
        } else {
            None
        };
        let dst = if cfg.tries & dst_bit != 0 {
            addr_entry(generation, f.family, DIR_DST, &f.daddr)
        } else {
            None
        };
        let (wild_src, wild_dst) = if f.family == 4 {
            (cfg.wild_src4, cfg.wild_dst4)
        } else {
            (cfg.wild_src6, cfg.wild_dst6)
        };
        bits &= (src.map_or(0, |e| e.bits) | wild_src) & (dst.map_or(0, |e| e.bits) | wild_dst);
        if cfg.wild_proto != all {
            bits &= PROTO
                .get(generation * 256 + f.proto as u32)
                .copied()
                .unwrap_or(0)
                | cfg.wild_proto;
        }
        let (mut sport, mut dport, mut icmp) = (0u64, 0u64, 0u64);
        if f.l4 != 0 {
            let (sp, dp, ic) = (
                cfg.wild_sport != all,
                cfg.wild_dport != all,
                cfg.wild_icmp != all,
            );
            match f.proto {
                IPPROTO_TCP => {
                    if sp {
                        sport = port_bits(generation, PORTS_TCP_SRC, f.sport);
                    }
                    if dp {
                        dport = port_bits(generation, PORTS_TCP_DST, f.dport);
                    }
                }
                IPPROTO_UDP => {
                    if sp {
                        sport = port_bits(generation, PORTS_UDP_SRC, f.sport);
                    }
                    if dp {
                        dport = port_bits(generation, PORTS_UDP_DST, f.dport);
                    }
                }
                IPPROTO_ICMP if ic => icmp = port_bits(generation, PORTS_ICMP4, f.icmp),
                IPPROTO_ICMPV6 if ic => icmp = port_bits(generation, PORTS_ICMP6, f.icmp),
                _ => {}
            }
        }
        bits &= (sport | cfg.wild_sport) & (dport | cfg.wild_dport) & (icmp | cfg.wild_icmp);
        // Address rules apply to every IP frame, link-essential ones too.
        if let Some(e) = src {
            consider(&mut best, &e.best);
        }
        if let Some(e) = dst {
            consider(&mut best, &e.best);
        }
    }
    if bits != 0 {
        if let Some(r) = RULES.get(generation * MAX_BIT_RULES + lowest_bit(bits)) {
            consider(&mut best, r);
        }
    }

    if best.action != ACTION_NONE {
        let reason = match best.action {
            ACTION_DENY => REASON_RULE_DENY,
            ACTION_ALLOW | ACTION_LIMIT => REASON_RULE_ALLOW,
            _ => return Decision::of(ACTION_DENY, REASON_CORRUPT),
        };
        // A header cut short or invalid only keeps a frame if a rule
        // drops it.
        if f.l4_bad != 0 && reason != REASON_RULE_DENY {
            return malformed_l4(cfg, f);
        }
        return Decision {
            action: best.action,
            reason,
            rule_id: best.rule_id,
            limit: best.limit,
        };
    }
    if f.l4_bad != 0 {
        return malformed_l4(cfg, f);
    }
    let key = ingress_ifindex(ctx) | generation << 31;
    let default = match IFACES.get_ptr(&key) {
        // SAFETY: a hash lookup result points at a live value for the rest
        // of this program run (RCU).
        Some(a) => unsafe { *a },
        None => cfg.default_action as u32,
    };
    match default as u8 {
        _ if default > u8::MAX as u32 => Decision::of(ACTION_DENY, REASON_CORRUPT),
        // The link-essential exemption overrides the default policy only.
        ACTION_DENY | ACTION_ALLOW if f.essential != 0 => {
            Decision::of(ACTION_ALLOW, REASON_ESSENTIAL)
        }
        ACTION_DENY => Decision::of(ACTION_DENY, REASON_DEFAULT_DENY),
        ACTION_ALLOW => Decision::of(ACTION_ALLOW, REASON_DEFAULT_ALLOW),
        _ => Decision::of(ACTION_DENY, REASON_CORRUPT),
    }
}

/// The malformed policy: `ACTION_ALLOW` passes, anything else drops.
#[inline(always)]
fn malformed(cfg: &Config) -> Decision {
    let action = if cfg.malformed_action == ACTION_ALLOW {
        ACTION_ALLOW
    } else {
        ACTION_DENY
    };
    Decision::of(action, REASON_MALFORMED)
}

/// The malformed policy for a bad L4 header, except that a first
/// fragment whose L4 header is incomplete is always dropped: the fields a
/// rule needs may come in a later fragment, where no rule sees them.
#[inline(always)]
fn malformed_l4(cfg: &Config, f: &Facts) -> Decision {
    if f.first_fragment != 0 {
        return Decision::of(ACTION_DENY, REASON_MALFORMED);
    }
    malformed(cfg)
}

#[inline(always)]
fn ingress_ifindex(ctx: &XdpContext) -> u32 {
    // SAFETY: `ctx.ctx` is the `xdp_md` the kernel passed in; reading its
    // `ingress_ifindex` field is a context access the verifier rewrites.
    unsafe { (*ctx.ctx).ingress_ifindex }
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
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi.to_be_bytes());
    out[8..].copy_from_slice(&lo.to_be_bytes());
    out
}

/// The outcome of charging a frame to a limiter.
#[derive(PartialEq, Eq)]
enum Charge {
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
fn within_limit(generation: u32, limit: u8, f: &Facts, len: u64) -> Charge {
    if limit as u32 >= MAX_LIMITS {
        return Charge::Corrupt;
    }
    let Some(cfg) = LIMITS.get(generation * MAX_LIMITS + limit as u32) else {
        return Charge::Corrupt;
    };
    if cfg.pps == 0 && cfg.bps == 0 {
        // The compiler never refers to an unconfigured limiter.
        return Charge::Corrupt;
    }
    let prefix = if f.family == 4 {
        cfg.prefix4
    } else {
        cfg.prefix6
    } as u32;
    let key = BucketKey {
        limit_id: cfg.id,
        family: f.family,
        _pad: 0,
        addr: masked(&f.saddr, prefix),
    };
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

/// Tokens after `elapsed` ns at `rate` per second, capped at `full` (the
/// sampling budget). The product `elapsed * rate` is only formed below the
/// fill time, where it is below `full`, so it cannot overflow.
#[inline(always)]
fn refill(tokens: u64, elapsed: u64, rate: u64, full: u64) -> u64 {
    // `checked_div`, not `/`: at opt-level 0 a division keeps its call to
    // the divide-by-zero panic, which BPF cannot make.
    let fill = match full.checked_div(rate) {
        Some(fill) => fill,
        None => return full,
    };
    if elapsed >= fill {
        return full;
    }
    let t = tokens + elapsed * rate;
    if t > full {
        full
    } else {
        t
    }
}

#[inline(always)]
fn count(map: &PerCpuArray<Counter>, index: u32, len: u64) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a per-CPU array lookup, so it is
        // this CPU's value, which nothing else writes while XDP runs here.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

/// Applies rate limiters and monitor mode, counts, returns the verdict.
#[inline(always)]
fn finish(ctx: &XdpContext, generation: u32, cfg: &Config, f: &mut Facts, mut d: Decision) -> u32 {
    let len = frame_len(ctx) as u64;
    // At most one limiter per packet: a limit rule's own, else the SYN
    // guard for a TCP SYN, else the global limiter; only for packets that a
    // rule or the default policy would pass.
    // Link-essential frames that pass are charged like any other.
    let mut limiter = (LIMIT_NONE, REASON_RATE_LIMIT);
    if d.action == ACTION_LIMIT {
        d.action = ACTION_ALLOW;
        // A limit rule always names a limiter.
        limiter = (d.limit, REASON_RATE_LIMIT);
        if d.limit == LIMIT_NONE {
            d.action = ACTION_DENY;
            d.reason = REASON_CORRUPT;
        }
    } else if matches!(
        d.reason,
        REASON_RULE_ALLOW | REASON_DEFAULT_ALLOW | REASON_ESSENTIAL
    ) && f.family != 0
    {
        if f.syn != 0 && cfg.syn_limit != LIMIT_NONE {
            limiter = (cfg.syn_limit, REASON_SYN_FLOOD);
        } else {
            limiter = (cfg.global_limit, REASON_RATE_LIMIT);
        }
    }
    if limiter.0 != LIMIT_NONE && d.action == ACTION_ALLOW {
        match within_limit(generation, limiter.0, f, len) {
            Charge::Within => {}
            Charge::Over => {
                d.action = ACTION_DENY;
                d.reason = limiter.1;
            }
            Charge::Corrupt => {
                d.action = ACTION_DENY;
                d.reason = REASON_CORRUPT;
            }
        }
    }
    if d.rule_id != NO_RULE {
        count(&RULE_STATS, d.rule_id, len);
    }
    count(&STATS, d.reason, len);
    if d.action == ACTION_DENY {
        sample(ctx, cfg, f, &d, len);
    }
    if d.action == ACTION_DENY && cfg.monitor == 0 {
        count(&STATS, STAT_DROP, len);
        count_iface(ctx, true, len);
        return xdp_action::XDP_DROP;
    }
    if d.action == ACTION_DENY {
        count(&STATS, REASON_MONITOR, len);
    }
    count(&STATS, STAT_PASS, len);
    count_iface(ctx, false, len);
    xdp_action::XDP_PASS
}

/// Counts the verdict on the ingress interface: in the array
/// `xdpg_if_stats` for small ifindexes (an inlined lookup), else in the
/// hash `xdpg_if_hash`, where the first frame on an interface makes its
/// entry.
#[inline(always)]
fn count_iface(ctx: &XdpContext, drop: bool, len: u64) {
    let ifindex = ingress_ifindex(ctx);
    let small = ifindex < IF_STATS_ARRAY;
    let entry = if small {
        IF_STATS.get_ptr_mut(ifindex)
    } else {
        IF_HASH.get_ptr_mut(&ifindex)
    };
    if let Some(c) = entry {
        // SAFETY: a per-CPU array or hash lookup returns this CPU's
        // value, which nothing else writes while XDP runs here.
        let c = unsafe {
            if drop {
                &mut (*c).drop
            } else {
                &mut (*c).pass
            }
        };
        c.packets += 1;
        c.bytes += len;
        return;
    }
    if small {
        return;
    }
    let one = Counter {
        packets: 1,
        bytes: len,
    };
    let v = if drop {
        IfCounters {
            pass: Counter::default(),
            drop: one,
        }
    } else {
        IfCounters {
            pass: one,
            drop: Counter::default(),
        }
    };
    // BPF_ANY: if another CPU made the entry meanwhile, this writes only
    // this CPU's value, which was still zero. A full map (more than
    // IF_HASH_MAX such interfaces) loses the count, nothing else.
    let _ = IF_HASH.insert(&ifindex, &v, 0);
}

/// Puts the start of a dropped frame into the sample ring buffer, at most
/// `cfg.sample_rate` per second on this CPU.
#[inline(always)]
fn sample(ctx: &XdpContext, cfg: &Config, f: &mut Facts, d: &Decision, len: u64) {
    if cfg.sample_rate == 0 {
        return;
    }
    const NS: u64 = 1_000_000_000;
    // SAFETY: `bpf_ktime_get_ns` takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let rate = cfg.sample_rate as u64;
    let t = refill(
        f.sample_tokens,
        now.saturating_sub(f.sample_last_ns),
        rate,
        rate * NS,
    );
    f.sample_last_ns = now;
    if t < NS {
        f.sample_tokens = t;
        return;
    }
    f.sample_tokens = t - NS;
    let Some(mut entry) = SAMPLES.reserve::<Sample>(0) else {
        return;
    };
    let s = entry.as_mut_ptr();
    let cap = if len > SAMPLE_CAPTURE as u64 {
        SAMPLE_CAPTURE as u64
    } else {
        len
    };
    // The verifier needs 1 <= size <= SAMPLE_CAPTURE from the instructions
    // themselves. A volatile read hides `cap`'s range from LLVM, so no
    // optimisation can fold the mask below into what it knows of `cap`;
    // the mask and the +1 then prove the range to the verifier. For `cap`
    // in 1..=SAMPLE_CAPTURE the result equals `cap`; 0 becomes
    // SAMPLE_CAPTURE, longer than the frame, and the copy fails cleanly.
    // SAFETY: reading a local through a reference to it.
    let cap = unsafe { core::ptr::read_volatile(&cap) };
    let size = (cap.wrapping_sub(1) & (SAMPLE_CAPTURE as u64 - 1)) + 1;
    const _: () = assert!(SAMPLE_CAPTURE.is_power_of_two());
    // SAFETY: `s` points at a reserved, exclusively owned ring-buffer
    // record of `size_of::<Sample>()` bytes; every field is written before
    // it is submitted. `bpf_xdp_load_bytes` copies `size` (at most
    // SAMPLE_CAPTURE) bytes of the frame into `data`, which has that room.
    unsafe {
        (*s).ts_ns = now;
        (*s).ifindex = ingress_ifindex(ctx);
        (*s).rule_id = d.rule_id;
        (*s).reason = d.reason;
        (*s).len = len as u32;
        (*s).monitor = cfg.monitor as u32;
        (*s).data = [0; SAMPLE_CAPTURE];
        let ok = bpf_xdp_load_bytes(ctx.ctx, 0, (*s).data.as_mut_ptr().cast(), size as u32) == 0;
        (*s).cap_len = if ok { size as u32 } else { 0 };
    }
    entry.submit(0);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";
