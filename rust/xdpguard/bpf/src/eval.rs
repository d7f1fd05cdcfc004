// SPDX-License-Identifier: GPL-2.0

//! Classification: each field the rules constrain is looked up (address
//! tries, MAC hash, protocol and port arrays) into a bitmap of compound
//! rules; the bitmaps are ANDed and the best compound rule competes with
//! the best address-only rules of the source and destination by rank.
//! No match leaves the interface's or the generation's default policy.

use aya_ebpf::{maps::Array, programs::XdpContext};
use xdpguard_abi::*;

use crate::parse::{
    bytes16, load, load_addr6, load_mac, Facts, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPPROTO_UDP, IPV4_SADDR, IPV6_SADDR,
};
use crate::{Decision, ADDRV, HOST4, HOST6, IFACES, MACS, NO_RULE, PORTS, PROTO, RULES, V4T, V6T};

#[inline(always)]
fn port_bits(generation: u32, table: u32, index: u16) -> u64 {
    PORTS
        .get(port_index(generation, table, index))
        .copied()
        .unwrap_or(0)
}

/// The compound-rule bits of the frame's source (`DIR_SRC`, bytes 6..12)
/// or destination (`DIR_DST`, bytes 0..6) MAC.
#[inline(always)]
fn mac_bits(ctx: &XdpContext, generation: u32, dir: u8) -> u64 {
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
        let a = load::<u32>(ctx, f.l3 + IPV4_SADDR + 4 * dir as usize)
            .ok_or(Corrupt)?
            .to_le_bytes();
        let l1 = l1_offset(dir) + ((a[0] as u32) << 8 | a[1] as u32);
        let mut c = V4T.get(v4t_index(g, l1)).copied().ok_or(Corrupt)?;
        c = step(&V4T, v4t_index, g, c, a[2] as u32)?;
        c = step(&V4T, v4t_index, g, c, (a[3] >> 4) as u32)?;
        c = step(&V4T, v4t_index, g, c, (a[3] & 0x0f) as u32)?;
        let (kind, value) = cell_parts(c);
        if kind == CELL_HOSTS {
            if let Some(v) = HOST4.get_ptr(&Host4Key::new(g, dir, a)) {
                // SAFETY: a hash lookup result points at a live value for
                // the rest of this program run (RCU).
                return entry(g, unsafe { *v });
            }
        }
        (kind, value)
    } else {
        let off = f.l3 + IPV6_SADDR + 16 * dir as usize;
        let a = bytes16(load_addr6(ctx, off).ok_or(Corrupt)?);
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
            if let Some(v) = HOST6.get_ptr(&Host6Key::new(g, dir, a)) {
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

/// Index of the lowest set bit of a non-zero `b`: the ones below it,
/// counted without branches (a SWAR population count). Not `cttz`, which
/// LLVM lowers to a table lookup in .rodata; not a binary search, whose
/// six branches leave 64 different constants for the verifier to carry
/// through the rest of the program (it walked it once per bit position:
/// an eighth of all the instructions it processed).
#[inline(always)]
fn lowest_bit(b: u64) -> u32 {
    let below = (b & b.wrapping_neg()).wrapping_sub(1);
    // SAFETY: reads a local. Volatile, so LLVM does not see the count as
    // `cttz` (and emit its table) again.
    let mut x = unsafe { core::ptr::read_volatile(&below) };
    x -= (x >> 1) & 0x5555_5555_5555_5555;
    x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
    x = (x + (x >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    (x.wrapping_mul(0x0101_0101_0101_0101) >> 56) as u32
}

/// The best rule match: lowest rank among the best compound rule and the
/// address-only rules of the source and destination.
pub(crate) struct Best {
    rank: u32,
    pub(crate) action: u8,
    pub(crate) rule_id: u32,
    pub(crate) limit: u8,
}

impl Best {
    /// No match yet: loses to every rule.
    const NONE: Best = Best {
        rank: RANK_NONE,
        action: ACTION_NONE,
        rule_id: NO_RULE,
        limit: LIMIT_NONE,
    };
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

/// Classifies a parsed frame that arrived on `ifindex`. Each lookup is
/// made only if some rule needs it: a field no compound rule constrains
/// (its `wild_*` set is all of them) is not looked up, an empty trie is
/// not searched, and once no compound rule can match any more (`bits` is
/// zero) the remaining field lookups are skipped.
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
    let mut best = Best::NONE;
    let all = cfg.all;
    let mut bits = all;
    if bits != 0 && cfg.wild_mac_src != all {
        bits &= mac_bits(ctx, generation, DIR_SRC) | cfg.wild_mac_src;
    }
    if bits != 0 && cfg.wild_mac_dst != all {
        bits &= mac_bits(ctx, generation, DIR_DST) | cfg.wild_mac_dst;
    }

    if f.family == 0 {
        bits &= cfg.nonip;
    } else {
        let v4 = f.family == FAMILY_V4;
        let (src_bit, dst_bit) = if v4 {
            (TRIE_SRC4, TRIE_DST4)
        } else {
            (TRIE_SRC6, TRIE_DST6)
        };
        // Address rules apply to every IP frame, link-essential ones too,
        // so the address tables are searched whatever `bits` says.
        let mut src = None;
        if cfg.tries & src_bit != 0 {
            match addr_entry(ctx, generation, f, DIR_SRC) {
                Ok(e) => src = Some(e),
                Err(Corrupt) => return Decision::corrupt(),
            }
        }
        let mut dst = None;
        if cfg.tries & dst_bit != 0 {
            match addr_entry(ctx, generation, f, DIR_DST) {
                Ok(e) => dst = Some(e),
                Err(Corrupt) => return Decision::corrupt(),
            }
        }
        let (wild_src, wild_dst) = if v4 {
            (cfg.wild_src4, cfg.wild_dst4)
        } else {
            (cfg.wild_src6, cfg.wild_dst6)
        };
        bits &= (src.map_or(0, |e| e.bits) | wild_src) & (dst.map_or(0, |e| e.bits) | wild_dst);
        if bits != 0 && cfg.wild_proto != all {
            bits &= PROTO
                .get(proto_index(generation, f.proto))
                .copied()
                .unwrap_or(0)
                | cfg.wild_proto;
        }
        if bits != 0 {
            let (mut sport, mut dport, mut icmp) = (0u64, 0u64, 0u64);
            if f.l4 {
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
        }
        if let Some(e) = src {
            consider(&mut best, &e.best);
        }
        if let Some(e) = dst {
            consider(&mut best, &e.best);
        }
    }
    if bits != 0 {
        if let Some(r) = RULES.get(rule_index(generation, lowest_bit(bits))) {
            consider(&mut best, r);
        }
    }

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
