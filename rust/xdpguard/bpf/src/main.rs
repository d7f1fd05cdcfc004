// SPDX-License-Identifier: GPL-2.0

//! The xdpguard XDP program: classifies every received frame against the active rule set and passes or drops it.
//!
//! Stages: `parse` (Ethernet, up to two VLAN tags, IPv4 with options, IPv6
//! with a bounded extension-header walk, the L4 ports or ICMP type, all
//! within the length the IP header gives), then `classify` (field lookups
//! that each yield the class of the frame's value, the combination of
//! classes looked up for the best compound rule, which competes with the
//! best address-only rules by rank), then `finish` (rate
//! limiters, monitor mode, counters). A map value the program does not
//! understand drops the frame as `corrupt`; nothing unknown passes. The rule
//! semantics are written down in Documentation/rules.rst and implemented
//! again, independently, by the reference model in rust/rules, which the
//! differential test compares with this program.
//!
//! Files: this one holds the maps, the entry point and the one exit path
//! (`finish`: limiters, monitor mode, counters, verdict); `parse` reads
//! the headers, `eval` classifies, `limit` charges the rate limiters and
//! `sample` copies dropped frames to userspace.

#![no_std]
#![no_main]
// `atomic_cxchg`: the target spec of bpfel-unknown-none says no CAS (it
// predates BPF_ATOMIC), so `AtomicU64::compare_exchange` is missing, but
// LLVM lowers `cmpxchg` to BPF_CMPXCHG (BPF CPU v3, Linux 5.12).
#![feature(core_intrinsics)]
// `asm!` on BPF: the packet loads in `parse` (one BPF load of the field's
// width at any alignment, which `read_unaligned` cannot give: BPF LLVM
// splits it into byte loads).
#![feature(asm_experimental_arch)]
#![allow(internal_features)]

mod eval;
mod limit;
mod parse;
mod sample;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::XdpContext,
};
use xdpguard_abi::*;

use eval::{classify, malformed};
use limit::{within_limit, Charge};
use parse::{frame_len, parse, Facts};
use sample::sample;

// Names and sizes must equal `xdpguard_abi::MAPS`; xdpguard-skel checks them.
#[map(name = "xdpg_active")]
static ACTIVE: Array<u32> = Array::with_max_entries(1, 0);
#[map(name = "xdpg_config")]
static CONFIG: Array<Config> = Array::with_max_entries(GENERATIONS, 0);
#[map(name = "xdpg_classes")]
static CLASSES: HashMap<ClassKey, RuleEntry> =
    HashMap::with_max_entries(GENERATIONS * CLASS_COMBOS, BPF_F_NO_PREALLOC);
#[map(name = "xdpg_v4t")]
static V4T: Array<u32> = Array::with_max_entries(GENERATIONS * V4T_CELLS, BPF_F_MMAPABLE);
#[map(name = "xdpg_v6t")]
static V6T: Array<u32> = Array::with_max_entries(GENERATIONS * V6T_CELLS, BPF_F_MMAPABLE);
#[map(name = "xdpg_addrv")]
static ADDRV: Array<AddrEntry> = Array::with_max_entries(GENERATIONS * ADDR_VALUES, BPF_F_MMAPABLE);
#[map(name = "xdpg_host4")]
static HOST4: HashMap<Host4Key, u32> = HashMap::with_max_entries(HOST4_MAX, BPF_F_NO_PREALLOC);
#[map(name = "xdpg_host6")]
static HOST6: HashMap<Host6Key, u32> = HashMap::with_max_entries(HOST6_MAX, BPF_F_NO_PREALLOC);
#[map(name = "xdpg_mac")]
static MACS: HashMap<MacKey, u16> = HashMap::with_max_entries(MAC_MAX, 0);
#[map(name = "xdpg_proto")]
static PROTO: Array<u16> =
    Array::with_max_entries(GENERATIONS * PROTOS_PER_GENERATION, BPF_F_MMAPABLE);
#[map(name = "xdpg_ports")]
static PORTS: Array<u16> =
    Array::with_max_entries(GENERATIONS * PORTS_PER_GENERATION, BPF_F_MMAPABLE);
#[map(name = "xdpg_limits")]
static LIMITS: Array<LimitConfig> =
    Array::with_max_entries(GENERATIONS * MAX_LIMITS, BPF_F_MMAPABLE);
#[map(name = "xdpg_buckets")]
static BUCKETS: LruHashMap<BucketKey, Bucket> = LruHashMap::with_max_entries(BUCKETS_MAX, 0);
#[map(name = "xdpg_ifaces")]
static IFACES: HashMap<u32, u32> = HashMap::with_max_entries(IFACES_MAX, 0);
#[map(name = "xdpg_stats")]
static STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(STAT_SLOTS, 0);
#[map(name = "xdpg_rule_stats")]
static RULE_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(MAX_RULE_IDS, 0);
#[map(name = "xdpg_samples")]
static SAMPLES: RingBuf = RingBuf::with_byte_size(SAMPLES_BYTES, 0);
#[map(name = "xdpg_if_stats")]
static IF_STATS: PerCpuArray<IfCounters> = PerCpuArray::with_max_entries(IF_STATS_ARRAY, 0);
#[map(name = "xdpg_if_hash")]
static IF_HASH: PerCpuHashMap<u32, IfCounters> = PerCpuHashMap::with_max_entries(IF_HASH_MAX, 0);
#[map(name = "xdpg_scratch")]
static SCRATCH: PerCpuArray<SampleBudget> = PerCpuArray::with_max_entries(1, 0);
// The scratch map's value size comes from the ABI (checked by the skeleton).
const _: () = assert!(core::mem::size_of::<SampleBudget>() == SCRATCH_SIZE as usize);

/// Rule id meaning "no rule" (default policy, malformed, ...).
const NO_RULE: u32 = u32::MAX;

/// The per-CPU scratch map's value: the drop-sampling budget of one CPU,
/// kept across packets (see `sample`), and the frame's classes and the
/// `xdpg_classes` lookup key while it is classified (see `eval`; map
/// memory rather than 40 more bytes of the 512-byte stack, which
/// unoptimised builds fill).
#[repr(C, align(8))]
struct SampleBudget {
    /// Start of the current one-second window (`bpf_ktime_get_ns`).
    window_ns: u64,
    /// Samples left in the window.
    left: u16,
    /// Drops since the budget ran out whose clock was read one by one
    /// (up to `sample::MISS_CHECKS`).
    checks: u16,
    /// Drops seen by the sampler since the module loaded (wrapping): the
    /// stride of clock reads counts these, so which drops read the clock
    /// does not depend on when a window began.
    drops: u32,
    /// Classification's working memory.
    work: eval::Work,
    _pad: [u8; SCRATCH_SIZE as usize - 16 - core::mem::size_of::<eval::Work>()],
}

/// The outcome of classification.
struct Decision {
    action: u8,
    reason: u32,
    rule_id: u32,
    limit: u16,
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
    let ifindex = ingress_ifindex(&ctx);
    let mut f = Facts::NONE;
    let decision = if corrupt {
        Decision::corrupt()
    } else {
        match parse(&ctx, &mut f) {
            Some(()) => classify(&ctx, ifindex, generation, cfg, &f),
            None => malformed(cfg),
        }
    };
    finish(&ctx, ifindex, generation, cfg, &f, decision)
}

impl Decision {
    /// A decision no rule made (policy, malformed, fragment, ...).
    #[inline(always)]
    fn of(action: u8, reason: u32) -> Decision {
        Decision {
            action,
            reason,
            rule_id: NO_RULE,
            limit: LIMIT_NONE,
        }
    }

    /// The decision of the rule that matched.
    #[inline(always)]
    fn rule(r: &eval::Best, reason: u32) -> Decision {
        Decision {
            action: r.action,
            reason,
            rule_id: r.rule_id,
            limit: r.limit,
        }
    }

    /// A map held a value the program does not understand: drop.
    #[inline(always)]
    fn corrupt() -> Decision {
        Decision::of(ACTION_DENY, REASON_CORRUPT)
    }

    /// Turns the decision into a drop for `reason` (the rule that matched,
    /// if any, still counts the frame).
    #[inline(always)]
    fn deny(&mut self, reason: u32) {
        self.action = ACTION_DENY;
        self.reason = reason;
    }
}

#[inline(always)]
fn ingress_ifindex(ctx: &XdpContext) -> u32 {
    // SAFETY: `ctx.ctx` is the `xdp_md` the kernel passed in; reading its
    // `ingress_ifindex` field is a context access the verifier rewrites.
    unsafe { (*ctx.ctx).ingress_ifindex }
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
/// Only a decision of a rule or a policy charges a limiter, so `f` is
/// read only for frames that parsed.
#[inline(always)]
fn finish(
    ctx: &XdpContext,
    ifindex: u32,
    generation: u32,
    cfg: &Config,
    f: &Facts,
    mut d: Decision,
) -> u32 {
    let len = frame_len(ctx) as u64;
    // At most one limiter per packet: a limit rule's own, else the SYN
    // guard for a TCP SYN, else the global limiter; only for IP packets
    // that a rule or the default policy would pass.
    // Link-essential frames that pass are charged like any other.
    let mut limiter = (LIMIT_NONE, REASON_RATE_LIMIT);
    if d.action == ACTION_LIMIT {
        d.action = ACTION_ALLOW;
        // A limit rule always names a limiter.
        limiter = (d.limit, REASON_RATE_LIMIT);
        if d.limit == LIMIT_NONE {
            d.deny(REASON_CORRUPT);
        }
    } else if matches!(
        d.reason,
        REASON_RULE_ALLOW | REASON_DEFAULT_ALLOW | REASON_ESSENTIAL
    ) {
        if f.family != 0 {
            limiter = if f.syn && cfg.syn_limit != LIMIT_NONE {
                (cfg.syn_limit, REASON_SYN_FLOOD)
            } else {
                (cfg.global_limit, REASON_RATE_LIMIT)
            };
        }
    }
    if limiter.0 != LIMIT_NONE && d.action == ACTION_ALLOW {
        match within_limit(ctx, generation, limiter.0, f, len) {
            Charge::Within => {}
            Charge::Over => d.deny(limiter.1),
            Charge::Corrupt => d.deny(REASON_CORRUPT),
        }
    }
    if d.rule_id != NO_RULE {
        count(&RULE_STATS, d.rule_id, len);
    }
    let outcome = if d.action != ACTION_DENY {
        OUTCOME_PASS
    } else if cfg.monitor != 0 {
        OUTCOME_MONITOR
    } else {
        OUTCOME_DROP
    };
    count(&STATS, stat_slot(d.reason, outcome), len);
    if d.action == ACTION_DENY {
        sample(ctx, ifindex, cfg, &d, len);
    }
    let drop = outcome == OUTCOME_DROP;
    count_iface(ifindex, drop, len);
    if drop {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

/// Counts the verdict on the ingress interface: in the array
/// `xdpg_if_stats` for small ifindexes (an inlined lookup), else in the
/// hash `xdpg_if_hash`, where the first frame on an interface makes its
/// entry.
#[inline(always)]
fn count_iface(ifindex: u32, drop: bool, len: u64) {
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";
