// SPDX-License-Identifier: GPL-2.0

//! Classification: each field the rules constrain is looked up (address
//! tables, MAC hash, protocol and port arrays) into the class of the
//! frame's value; the combination of classes is looked up in
//! `xdpg_classes` for the best compound rule, which competes with the
//! best address-only rules of the source and destination by rank. No
//! match leaves the interface's or the generation's default policy.

use aya_ebpf::{maps::Array, programs::XdpContext};
use xdpguard_abi::*;

use crate::parse::{
    bytes16, load, load_addr6, load_mac, Facts, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPPROTO_UDP, IPV4_SADDR, IPV6_SADDR,
};
use crate::{
    Decision, ADDRV, CLASSES, HOST4, HOST6, IFACES, MACS, NO_RULE, PORTS, PROTO, SCRATCH, V4T,
    V6T,
};

#[inline(always)]
fn port_class(generation: u32, table: u32, index: u16) -> u16 {
    PORTS
        .get(port_index(generation, table, index))
        .copied()
        .unwrap_or(0)
}

/// The class of the frame's source (`DIR_SRC`, bytes 6..12) or
/// destination (`DIR_DST`, bytes 0..6) MAC.
#[inline(always)]
fn mac_class(ctx: &XdpContext, generation: u32, dir: u8) -> u16 {
    let off = if dir == DIR_SRC { 6 } else { 0 };
    // The parser saw the Ethernet header, so this load succeeds.
    let Some(mac) = load_mac(ctx, off) else {
        return 0;
    };
    let key = MacKey::new(generation, dir, mac);
    match MACS.get_ptr(&key) {
        // SAFETY: a hash lookup result points at a live value for the rest
        // of this program run (RCU).
        Some(v) => unsafe { *v },
        None => 0,
    }
}

/// The address tables hold something the program does not understand
/// (a pointer past the last level, a value out of range).
pub(crate) struct Corrupt;

/// The cell a leaf or pointer `c` leads to: the next level's cell at
/// `index` in the chunk `c` points at, or `c` itself if it is a leaf.
/// `Err` for a missing cell (an offset out of range).
#[inline(always)]
fn step(
    table: &Array<u32>,
    region: fn(u32, u32) -> u32,
    generation: u32,
    c: u32,
    index: u32,
) -> Result<u32, Corrupt> {
    let (kind, payload) = cell_parts(c);
    if kind != CELL_CHILD {
        return Ok(c);
    }
    table
        .get(region(generation, payload + index))
        .copied()
        .ok_or(Corrupt)
}

/// The address entry of the longest prefix matching the frame's source
/// (`DIR_SRC`) or destination address (`DIR_DST`): one cell per level of
/// the address table (a leaf ends the walk), then, under a leaf marked
/// `CELL_HOSTS`, the host hash, then the value. At most 4 cells for IPv4
/// and 15 for IPv6, one hash lookup and one value, whatever the number of
/// prefixes.
#[inline(always)]
fn addr_entry(
    ctx: &XdpContext,
    generation: u32,
    f: &Facts,
    dir: u8,
) -> Result<&'static AddrEntry, Corrupt> {
    let g = generation;
    let (kind, mut value) = if f.family == FAMILY_V4 {
        let w = load::<u32>(ctx, f.l3 + IPV4_SADDR + 4 * dir as usize).ok_or(Corrupt)?;
        let a = w.to_le_bytes();
        let l1 = l1_offset(dir) + ((a[0] as u32) << 8 | a[1] as u32);
        let mut c = V4T.get(v4t_index(g, l1)).copied().ok_or(Corrupt)?;
        c = step(&V4T, v4t_index, g, c, a[2] as u32)?;
        c = step(&V4T, v4t_index, g, c, (a[3] >> 4) as u32)?;
        c = step(&V4T, v4t_index, g, c, (a[3] & 0x0f) as u32)?;
        let (kind, value) = cell_parts(c);
        if kind == CELL_HOSTS {
            let k = HostWords {
                head: host_head(g, dir),
                addr: [w],
            };
            if let Some(v) = HOST4.get_ptr(k.host4()) {
                // SAFETY: a hash lookup result points at a live value for
                // the rest of this program run (RCU).
                return entry(g, unsafe { *v });
            }
        }
        (kind, value)
    } else {
        let off = f.l3 + IPV6_SADDR + 16 * dir as usize;
        let words = load_addr6(ctx, off).ok_or(Corrupt)?;
        let a = bytes16(words);
        let l1 = l1_offset(dir) + (addr6_byte(&a, 0) << 8 | addr6_byte(&a, 1));
        let mut c = V6T.get(v6t_index(g, l1)).copied().ok_or(Corrupt)?;
        for k in 2..16 {
            if cell_parts(c).0 != CELL_CHILD {
                break;
            }
            c = step(&V6T, v6t_index, g, c, addr6_byte(&a, k))?;
        }
        let (kind, value) = cell_parts(c);
        if kind == CELL_HOSTS {
            let k = HostWords {
                head: host_head(g, dir),
                addr: words,
            };
            if let Some(v) = HOST6.get_ptr(k.host6()) {
                // SAFETY: as above.
                return entry(g, unsafe { *v });
            }
        }
        (kind, value)
    };
    if kind != CELL_LEAF && kind != CELL_HOSTS {
        // A pointer below the last level, or an unknown kind.
        return Err(Corrupt);
    }
    value &= CELL_PAYLOAD;
    entry(g, value)
}

/// Byte `k` (0 to 15) of an IPv6 address.
#[inline(always)]
fn addr6_byte(a: &[u8; 16], k: usize) -> u32 {
    // SAFETY: `k & 15` is below 16, the array's length. (An index with a
    // bounds check would keep a panic call, which BPF cannot make, at low
    // opt-levels.)
    unsafe { *a.get_unchecked(k & 15) as u32 }
}

/// A host hash key made of words: the layout of [`Host4Key`] (`N` = 1)
/// and [`Host6Key`] (`N` = 4), generation, direction and two zero bytes
/// in the first word, then the address as loaded from the packet. Built
/// with one store per word; the ABI's byte-array keys take one per byte.
#[repr(C)]
struct HostWords<const N: usize> {
    head: u32,
    addr: [u32; N],
}

// The twins have the keys' sizes and field offsets, and at least their
// alignment.
const _: () = {
    assert!(core::mem::align_of::<HostWords<1>>() >= core::mem::align_of::<Host4Key>());
    assert!(core::mem::align_of::<HostWords<4>>() >= core::mem::align_of::<Host6Key>());
    assert!(core::mem::size_of::<HostWords<1>>() == core::mem::size_of::<Host4Key>());
    assert!(core::mem::size_of::<HostWords<4>>() == core::mem::size_of::<Host6Key>());
    assert!(core::mem::offset_of!(HostWords<1>, addr) == core::mem::offset_of!(Host4Key, addr));
    assert!(core::mem::offset_of!(HostWords<4>, addr) == core::mem::offset_of!(Host6Key, addr));
    assert!(core::mem::offset_of!(Host4Key, dir) == 1 && core::mem::offset_of!(Host6Key, dir) == 1);
};

/// The first word of a host key: generation, direction, two zero bytes
/// (little-endian: BPF here is bpfel).
#[inline(always)]
fn host_head(generation: u32, dir: u8) -> u32 {
    u32::from_le_bytes([generation as u8, dir, 0, 0])
}

impl HostWords<1> {
    #[inline(always)]
    fn host4(&self) -> &Host4Key {
        // SAFETY: `Host4Key` has this type's size and field offsets,
        // at most its alignment (asserted above) and no invalid bit
        // patterns (integers and bytes only), so these 8 bytes are a
        // `Host4Key` for as long as `self` lives.
        unsafe { &*(self as *const Self as *const Host4Key) }
    }
}

impl HostWords<4> {
    #[inline(always)]
    fn host6(&self) -> &Host6Key {
        // SAFETY: as in `host4`, with `Host6Key`'s 20 bytes.
        unsafe { &*(self as *const Self as *const Host6Key) }
    }
}

/// Value `value` of `generation` in `xdpg_addrv`.
#[inline(always)]
fn entry(generation: u32, value: u32) -> Result<&'static AddrEntry, Corrupt> {
    if value >= ADDR_VALUES {
        return Err(Corrupt);
    }
    ADDRV
        .get(addr_value_index(generation, value))
        .ok_or(Corrupt)
}

/// Classification's working memory, in the per-CPU scratch map rather
/// than in registers and on the stack: the verifier does not track map
/// memory, so the paths through a lookup that was made or skipped, a
/// candidate that won or lost, leave it one state instead of one per path
/// (with these in registers it walked a million instructions and gave
/// up); and unoptimised builds, which keep every temporary on the
/// 512-byte stack, have the room.
#[repr(C)]
pub(crate) struct Work {
    /// The frame's class in each field.
    classes: ClassKey,
    /// The lookup key of one group.
    key: ClassKey,
    /// The best compound match so far (`packed`).
    packed: u64,
    /// `KEY_*` bits of the fields whose class is 0.
    zero: u32,
    /// Non-zero once no compound rule can match.
    dead: u32,
    /// The best match so far.
    best: Best,
}

/// The best rule match: lowest rank among the best compound rule and the
/// address-only rules of the source and destination.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Best {
    rank: u32,
    pub(crate) action: u8,
    pub(crate) rule_id: u32,
    pub(crate) limit: u16,
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

/// 1 if `class` is 0 and `empty` (`Config::empty_default`) says class 0
/// of `field` (a `FIELD_*` bit) is empty, else 0.
#[inline(always)]
fn empty_class(class: u16, empty: u32, field: u32) -> u32 {
    (class == 0 && empty & field != 0) as u32
}

/// A class if bit `shift` of the group's `mask` says its keys hold the
/// field, else 0.
#[inline(always)]
fn masked(c: u16, mask: u8, shift: u32) -> u16 {
    c & 0u16.wrapping_sub(((mask >> shift) & 1) as u16)
}

/// A compound rule's match as one number: its rank above, its limiter
/// below (the action and rule come back from the rank, `rank_action`,
/// `rank_order`), so the best of several is the smallest. No match is
/// `RANK_NONE`'s.
#[inline(always)]
fn packed(r: &RuleEntry) -> u64 {
    (r.rank as u64) << 31 | r.limit as u64
}

// `best_of_groups` indexes the group arrays with `g & 7`.
const _: () = assert!(MAX_GROUPS == 8);

/// The best compound rule of the groups under the frame's classes
/// (`w.classes`) into `w.packed`: one `xdpg_classes` lookup per group,
/// skipped when a field all the group's rules constrain has class 0,
/// with `w.key` rewritten for each group.
#[inline(always)]
fn best_of_groups(cfg: &Config, w: &mut Work) {
    w.packed = (RANK_NONE as u64) << 31;
    w.zero = 0;
    if w.classes.mac_src == 0 {
        w.zero |= KEY_MAC_SRC as u32;
    }
    if w.classes.mac_dst == 0 {
        w.zero |= KEY_MAC_DST as u32;
    }
    if w.classes.src == 0 {
        w.zero |= KEY_SRC as u32;
    }
    if w.classes.dst == 0 {
        w.zero |= KEY_DST as u32;
    }
    if w.classes.proto == 0 {
        w.zero |= KEY_PROTO as u32;
    }
    if w.classes.sport == 0 {
        w.zero |= KEY_SPORT as u32;
    }
    if w.classes.dport == 0 {
        w.zero |= KEY_DPORT as u32;
    }
    if w.classes.icmp == 0 {
        w.zero |= KEY_ICMP as u32;
    }
    w.key.generation = w.classes.generation;
    w.key.family = w.classes.family;
    w.key._pad = 0;
    let groups = (cfg.groups as u32).min(MAX_GROUPS);
    let mut g = 0;
    while g < groups {
        // SAFETY: `g & 7` is below 8, the arrays' length (an index with a
        // bounds check keeps a panic call at low opt-levels).
        let (mask, need) = unsafe {
            (
                *cfg.group_mask.get_unchecked(g as usize & 7),
                *cfg.group_need.get_unchecked(g as usize & 7),
            )
        };
        w.key.group = g as u8;
        g += 1;
        if need as u32 & w.zero != 0 {
            continue;
        }
        let c = &w.classes;
        w.key.mac_src = masked(c.mac_src, mask, 0);
        w.key.mac_dst = masked(c.mac_dst, mask, 1);
        w.key.src = masked(c.src, mask, 2);
        w.key.dst = masked(c.dst, mask, 3);
        w.key.proto = masked(c.proto, mask, 4);
        w.key.sport = masked(c.sport, mask, 5);
        w.key.dport = masked(c.dport, mask, 6);
        w.key.icmp = masked(c.icmp, mask, 7);
        if let Some(r) = CLASSES.get_ptr(&w.key) {
            // SAFETY: a hash lookup result points at a live value for the
            // rest of this program run (RCU).
            let p = packed(unsafe { &*r });
            if p < w.packed {
                w.packed = p;
            }
        }
    }
}

/// Classifies a parsed frame that arrived on `ifindex`. Each lookup is
/// made only if some rule needs it: a field no compound rule constrains
/// (not in `lookups`) is not looked up, an empty address table is not
/// searched, and once no compound rule can match any more (a field's
/// class 0 that `empty_default` says is empty) the remaining field
/// lookups and the combination are skipped.
#[inline(always)]
pub(crate) fn classify(
    ctx: &XdpContext,
    ifindex: u32,
    generation: u32,
    cfg: &Config,
    f: &Facts,
) -> Decision {
    // The drop and pass fragment policies come before any rule.
    if f.fragment && cfg.frag_policy != FRAG_L3_ONLY {
        return match cfg.frag_policy {
            FRAG_DROP => Decision::of(ACTION_DENY, REASON_FRAGMENT),
            FRAG_PASS => Decision::of(ACTION_ALLOW, REASON_FRAGMENT),
            _ => Decision::corrupt(),
        };
    }
    let (lookups, empty) = (cfg.lookups, cfg.empty_default);
    // A per-CPU array's only entry: the lookup does not fail.
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return Decision::corrupt();
    };
    // SAFETY: this CPU's scratch value, which nothing else uses while the
    // program runs here (XDP does not nest on one CPU).
    let w = unsafe { &mut (*scratch).work };
    // Field by field: a whole constant struct would be copied from
    // .rodata, which the loader does not support.
    w.best.rank = RANK_NONE;
    w.best.action = ACTION_NONE;
    w.best.rule_id = NO_RULE;
    w.best.limit = LIMIT_NONE;
    let c = &mut w.classes;
    c.generation = generation as u8;
    c.family = f.family;
    c.mac_src = 0;
    c.mac_dst = 0;
    c.src = 0;
    c.dst = 0;
    c.proto = 0;
    c.sport = 0;
    c.dport = 0;
    c.icmp = 0;
    c.group = 0;
    c._pad = 0;
    w.dead = (cfg.compound == 0) as u32;
    if w.dead == 0 && lookups & FIELD_MAC_SRC != 0 {
        w.classes.mac_src = mac_class(ctx, generation, DIR_SRC);
    }
    w.dead |= empty_class(w.classes.mac_src, empty, FIELD_MAC_SRC);
    if w.dead == 0 && lookups & FIELD_MAC_DST != 0 {
        w.classes.mac_dst = mac_class(ctx, generation, DIR_DST);
    }
    w.dead |= empty_class(w.classes.mac_dst, empty, FIELD_MAC_DST);

    if f.family == 0 {
        w.dead |= (empty >> FIELD_NONIP.trailing_zeros()) & 1;
    } else {
        let v4 = f.family == FAMILY_V4;
        let (src_bit, dst_bit, src_field, dst_field) = if v4 {
            (TRIE_SRC4, TRIE_DST4, FIELD_SRC4, FIELD_DST4)
        } else {
            (TRIE_SRC6, TRIE_DST6, FIELD_SRC6, FIELD_DST6)
        };
        // Address rules apply to every IP frame, link-essential ones too,
        // so the address tables are searched whatever `dead` says.
        if cfg.tries & src_bit != 0 {
            match addr_entry(ctx, generation, f, DIR_SRC) {
                Ok(e) => {
                    w.classes.src = e.class;
                    consider(&mut w.best, &e.best);
                }
                Err(Corrupt) => return Decision::corrupt(),
            }
        }
        if cfg.tries & dst_bit != 0 {
            match addr_entry(ctx, generation, f, DIR_DST) {
                Ok(e) => {
                    w.classes.dst = e.class;
                    consider(&mut w.best, &e.best);
                }
                Err(Corrupt) => return Decision::corrupt(),
            }
        }
        w.dead |= empty_class(w.classes.src, empty, src_field)
            | empty_class(w.classes.dst, empty, dst_field);
        if w.dead == 0 && lookups & FIELD_PROTO != 0 {
            w.classes.proto = PROTO
                .get(proto_index(generation, f.proto))
                .copied()
                .unwrap_or(0);
        }
        w.dead |= empty_class(w.classes.proto, empty, FIELD_PROTO);
        if w.dead == 0 && f.l4 {
            let (sp, dp, ic) = (
                lookups & FIELD_SPORT != 0,
                lookups & FIELD_DPORT != 0,
                lookups & FIELD_ICMP != 0,
            );
            match f.proto {
                IPPROTO_TCP => {
                    if sp {
                        w.classes.sport = port_class(generation, PORTS_TCP_SRC, f.sport);
                    }
                    if dp {
                        w.classes.dport = port_class(generation, PORTS_TCP_DST, f.dport);
                    }
                }
                IPPROTO_UDP => {
                    if sp {
                        w.classes.sport = port_class(generation, PORTS_UDP_SRC, f.sport);
                    }
                    if dp {
                        w.classes.dport = port_class(generation, PORTS_UDP_DST, f.dport);
                    }
                }
                IPPROTO_ICMP if ic => {
                    w.classes.icmp = port_class(generation, PORTS_ICMP4, f.icmp)
                }
                IPPROTO_ICMPV6 if ic => {
                    w.classes.icmp = port_class(generation, PORTS_ICMP6, f.icmp)
                }
                _ => {}
            }
        }
        w.dead |= empty_class(w.classes.sport, empty, FIELD_SPORT)
            | empty_class(w.classes.dport, empty, FIELD_DPORT)
            | empty_class(w.classes.icmp, empty, FIELD_ICMP);
    }
    if w.dead == 0 {
        best_of_groups(cfg, w);
        let rank = (w.packed >> 31) as u32;
        if rank < w.best.rank {
            w.best = Best {
                rank,
                // `ACTION_INVALID` for a rank the compiler cannot make:
                // corrupt.
                action: rank_action(rank),
                rule_id: rule_stats_index(generation, rank_order(rank)),
                limit: w.packed as u16,
            };
        }
    }
    let best = w.best;

    if best.action != ACTION_NONE {
        let reason = match best.action {
            ACTION_DENY => REASON_RULE_DENY,
            ACTION_ALLOW | ACTION_LIMIT => REASON_RULE_ALLOW,
            _ => return Decision::corrupt(),
        };
        // A header cut short or invalid only keeps a frame if a rule
        // drops it.
        if f.l4_bad && reason != REASON_RULE_DENY {
            return malformed_l4(cfg, f);
        }
        return Decision::rule(&best, reason);
    }
    if f.l4_bad {
        return malformed_l4(cfg, f);
    }
    // The interface's own policy, if the rule set has any.
    let mut default = cfg.default_action as u32;
    if cfg.tries & TABLE_IFACES != 0 {
        if let Some(a) = IFACES.get_ptr(&iface_key(ifindex, generation)) {
            // SAFETY: a hash lookup result points at a live value for the
            // rest of this program run (RCU).
            default = unsafe { *a };
        }
    }
    match default as u8 {
        _ if default > u8::MAX as u32 => Decision::corrupt(),
        // The link-essential exemption overrides the default policy only.
        ACTION_DENY | ACTION_ALLOW if f.essential => Decision::of(ACTION_ALLOW, REASON_ESSENTIAL),
        ACTION_DENY => Decision::of(ACTION_DENY, REASON_DEFAULT_DENY),
        ACTION_ALLOW => Decision::of(ACTION_ALLOW, REASON_DEFAULT_ALLOW),
        _ => Decision::corrupt(),
    }
}

/// The malformed policy: `ACTION_ALLOW` passes, anything else drops.
#[inline(always)]
pub(crate) fn malformed(cfg: &Config) -> Decision {
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
    if f.first_fragment {
        return Decision::of(ACTION_DENY, REASON_MALFORMED);
    }
    malformed(cfg)
}
