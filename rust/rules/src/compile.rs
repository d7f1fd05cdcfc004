// SPDX-License-Identifier: GPL-2.0

//! The rule compiler: a [`RuleSet`] becomes the contents of every map of one
//! generation (an [`Image`]).
//!
//! Compound rules get one bit each, in rank order (bit 0 is the best). Each
//! field table maps a field value to the bits of the rules that constrain
//! that field and accept the value; the `wild_*` bitmaps of the config hold
//! the rules that do not constrain it. Address-only rules live in the tries
//! directly, with their rank. Every trie entry carries what its covering
//! (shorter) prefixes mean, because a trie lookup returns only the longest
//! match.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use ipnet::IpNet;
use xdpguard_abi::*;

use crate::dir::{Table, Values};
use crate::{Action, Fragments, RuleSet};

/// Contents of every map for one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The generation (0 or 1) the keys and indices below belong to.
    pub generation: u32,
    /// `xdpg_config[generation]`.
    pub config: Config,
    /// `xdpg_rules` from `rule_index(generation, 0)`, `MAX_BIT_RULES` entries.
    pub rules: Vec<RuleEntry>,
    /// `xdpg_v4t` from `v4t_index(generation, 0)`, `V4T_CELLS` cells.
    pub v4t: Vec<u32>,
    /// `xdpg_v6t` from `v6t_index(generation, 0)`, `V6T_CELLS` cells.
    pub v6t: Vec<u32>,
    /// `xdpg_addrv` from `addr_value_index(generation, 0)`,
    /// `ADDR_VALUES` entries.
    pub addrv: Vec<AddrEntry>,
    /// `xdpg_host4` entries of this generation.
    pub host4: Vec<(Host4Key, u32)>,
    /// `xdpg_host6` entries of this generation.
    pub host6: Vec<(Host6Key, u32)>,
    /// IPv4 and IPv6 prefixes (hosts included) the tables hold.
    pub prefixes: [usize; 2],
    /// `xdpg_mac` entries of this generation.
    pub macs: Vec<(MacKey, u64)>,
    /// `xdpg_proto` from `proto_index(generation, 0)`,
    /// `PROTOS_PER_GENERATION` entries.
    pub proto: Vec<u64>,
    /// `xdpg_ports` from `port_index(generation, 0, 0)`,
    /// `PORTS_PER_GENERATION` entries indexed by `port_offset(table, value)`.
    pub ports: Vec<u64>,
    /// `xdpg_limits` from `limit_index(generation, 0)`, `MAX_LIMITS` entries.
    pub limits: Vec<LimitConfig>,
    /// `xdpg_ifaces` entries of this generation (keys are `iface_key`s).
    pub ifaces: Vec<(u32, u32)>,
}

impl Image {
    /// Generation `generation` of a freshly loaded module: every array
    /// zero, every hash empty, the all-zero config.
    pub fn empty(generation: u32) -> Image {
        Image {
            generation,
            config: Config::default(),
            rules: vec![RuleEntry::default(); MAX_BIT_RULES as usize],
            v4t: vec![0; V4T_CELLS as usize],
            v6t: vec![0; V6T_CELLS as usize],
            addrv: vec![AddrEntry::default(); ADDR_VALUES as usize],
            host4: Vec::new(),
            host6: Vec::new(),
            prefixes: [0; 2],
            macs: Vec::new(),
            proto: vec![0; PROTOS_PER_GENERATION as usize],
            ports: vec![0; PORTS_PER_GENERATION as usize],
            limits: vec![LimitConfig::default(); MAX_LIMITS as usize],
            ifaces: Vec::new(),
        }
    }
}

/// What one trie node says by itself, before inheritance.
#[derive(Clone, Copy, Default)]
struct Node {
    bits: u64,
    plain: Option<(u32, u32, u8, u8)>, // rank, rule id, action, limit
}

fn better(
    a: Option<(u32, u32, u8, u8)>,
    b: Option<(u32, u32, u8, u8)>,
) -> Option<(u32, u32, u8, u8)> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Prefix length and address bits (IPv4 in the low 32 bits) of a CIDR.
fn key_of(net: &IpNet) -> (bool, u8, u128) {
    match net {
        IpNet::V4(n) => (true, n.prefix_len(), u32::from(n.network()) as u128),
        IpNet::V6(n) => (false, n.prefix_len(), u128::from(n.network())),
    }
}

fn mask(addr: u128, plen: u8, width: u8) -> u128 {
    if plen == 0 {
        return 0;
    }
    let keep = if plen >= 128 {
        u128::MAX
    } else {
        !(u128::MAX >> plen)
    };
    let shifted = addr << (128 - width as u32);
    (shifted & keep) >> (128 - width as u32)
}

/// One address trie (family, direction) under construction.
#[derive(Default)]
struct Trie {
    nodes: FxHashMap<(u8, u128), Node>,
}

impl Trie {
    fn node(&mut self, plen: u8, addr: u128) -> &mut Node {
        self.nodes.entry((plen, addr)).or_default()
    }

    /// Folds every covering prefix's bits and best address-only rule into
    /// each node.
    fn resolve(&self, width: u8) -> Vec<(u8, u128, AddrEntry)> {
        let mut lens: Vec<u8> = self.nodes.keys().map(|(l, _)| *l).collect();
        lens.sort_unstable();
        lens.dedup();
        let mut out = Vec::with_capacity(self.nodes.len());
        for (&(plen, addr), own) in &self.nodes {
            let mut bits = own.bits;
            let mut plain = own.plain;
            for &l in lens.iter().take_while(|&&l| l < plen) {
                if let Some(cover) = self.nodes.get(&(l, mask(addr, l, width))) {
                    bits |= cover.bits;
                    plain = better(plain, cover.plain);
                }
            }
            let (rank, rule_id, action, limit) =
                plain.unwrap_or((RANK_NONE, u32::MAX, ACTION_NONE, LIMIT_NONE));
            let best = RuleEntry {
                rank,
                rule_id,
                action,
                limit,
                _pad: [0; 6],
            };
            out.push((plen, addr, AddrEntry { bits, best }));
        }
        out.sort_by_key(|(l, a, _)| (*l, *a));
        out
    }
}

/// Stable 16-bit identity of a limiter, from its name, so token buckets
/// survive a rule-set swap that keeps the limiter.
fn limit_id(name: &str) -> u16 {
    let mut h: u32 = 0x811c9dc5;
    for b in name.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x01000193);
    }
    ((h >> 16) ^ (h & 0xffff)) as u16 | 1
}

/// Compiles `rs` into the maps of `generation`. `ifindex` resolves the
/// interface names of per-interface policies.
pub fn compile(
    rs: &RuleSet,
    generation: u32,
    ifindex: &dyn Fn(&str) -> Option<u32>,
) -> Result<Image, String> {
    rs.check().map_err(|(i, m)| match i {
        Some(i) => format!("rule {}: {m}", i + 1),
        None => m,
    })?;
    let g = generation & 1;
    // Per-rule counter index of the rule at `order`.
    let id = |order: usize| rule_stats_index(g, order as u32);
    let limit_no = |a: &Action| match a {
        Action::Limit(i) => *i as u8 + 1,
        _ => LIMIT_NONE,
    };

    let mut cfg = Config {
        default_action: if rs.default_deny {
            ACTION_DENY
        } else {
            ACTION_ALLOW
        },
        monitor: rs.monitor as u8,
        malformed_action: if rs.malformed_deny {
            ACTION_DENY
        } else {
            ACTION_ALLOW
        },
        frag_policy: match rs.fragments {
            Fragments::L3Only => FRAG_L3_ONLY,
            Fragments::Drop => FRAG_DROP,
            Fragments::Pass => FRAG_PASS,
        },
        global_limit: rs.global_limit.map_or(LIMIT_NONE, |i| i as u8 + 1),
        syn_limit: rs.syn_limit.map_or(LIMIT_NONE, |i| i as u8 + 1),
        sample_rate: rs.samples,
        ..Default::default()
    };

    // Tries: [family v4, v6][direction src, dst].
    let mut tries: [[Trie; 2]; 2] = Default::default();
    let mut rules = vec![RuleEntry::default(); MAX_BIT_RULES as usize];
    let mut macs: BTreeMap<MacKey, u64> = BTreeMap::new();
    let mut proto = vec![0u64; PROTOS_PER_GENERATION as usize];
    let mut ports = vec![0u64; PORTS_PER_GENERATION as usize];

    // Address-only rules.
    for (order, r) in rs.rules.iter().enumerate() {
        if !r.is_address_only() {
            continue;
        }
        let (dir, nets) = if r.src.is_empty() {
            (1, &r.dst)
        } else {
            (0, &r.src)
        };
        for net in nets {
            let (v4, plen, addr) = key_of(net);
            let rank = r.rank(plen as u32, order as u32);
            let node = tries[!v4 as usize][dir].node(plen, addr);
            node.plain = better(
                node.plain,
                Some((rank, id(order), r.action().code(), limit_no(r.action()))),
            );
        }
    }

    // Compound rules, one bit each in rank order.
    let mut compound: Vec<(u32, usize)> = rs
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_address_only())
        .map(|(order, r)| {
            let bits = r.src.first().map_or(0, |n| n.prefix_len() as u32)
                + r.dst.first().map_or(0, |n| n.prefix_len() as u32);
            (r.rank(bits, order as u32), order)
        })
        .collect();
    compound.sort_unstable();
    for (bit, &(rank, order)) in compound.iter().enumerate() {
        let r = &rs.rules[order];
        let b = 1u64 << bit;
        rules[bit] = RuleEntry {
            rank,
            rule_id: id(order),
            action: r.action().code(),
            limit: limit_no(r.action()),
            _pad: [0; 6],
        };
        let (fam4, fam6) = r.families();
        for (dir, nets) in [(0usize, &r.src), (1, &r.dst)] {
            match nets.first() {
                Some(net) => {
                    let (v4, plen, addr) = key_of(net);
                    tries[!v4 as usize][dir].node(plen, addr).bits |= b;
                }
                None => {
                    let (w4, w6) = if dir == 0 {
                        (&mut cfg.wild_src4, &mut cfg.wild_src6)
                    } else {
                        (&mut cfg.wild_dst4, &mut cfg.wild_dst6)
                    };
                    if fam4 {
                        *w4 |= b;
                    }
                    if fam6 {
                        *w6 |= b;
                    }
                }
            }
        }
        for (dir, mac, wild) in [
            (DIR_SRC, r.src_mac, &mut cfg.wild_mac_src),
            (DIR_DST, r.dst_mac, &mut cfg.wild_mac_dst),
        ] {
            match mac {
                Some(mac) => *macs.entry(MacKey::new(g, dir, mac)).or_default() |= b,
                None => *wild |= b,
            }
        }
        match r.proto {
            Some(p) => proto[p as usize] |= b,
            None => cfg.wild_proto |= b,
        }
        let tcp = r.proto == Some(6);
        for (range, table_tcp, table_udp, wild) in [
            (r.sport, PORTS_TCP_SRC, PORTS_UDP_SRC, &mut cfg.wild_sport),
            (r.dport, PORTS_TCP_DST, PORTS_UDP_DST, &mut cfg.wild_dport),
        ] {
            match range {
                Some((lo, hi)) => {
                    let table = if tcp { table_tcp } else { table_udp };
                    for p in lo..=hi {
                        ports[port_offset(table, p)] |= b;
                    }
                }
                None => *wild |= b,
            }
        }
        match r.icmp_type {
            Some(t) => {
                let table = if r.proto == Some(1) {
                    PORTS_ICMP4
                } else {
                    PORTS_ICMP6
                };
                let codes = match r.icmp_code {
                    Some(c) => c..=c,
                    None => 0..=255,
                };
                for c in codes {
                    ports[port_offset(table, icmp_value(t, c))] |= b;
                }
            }
            None => cfg.wild_icmp |= b,
        }
        if r.matches_non_ip() {
            cfg.nonip |= b;
        }
        cfg.all |= b;
    }

    let mut values = Values::new();
    let mut tables = [Table::v4(), Table::v6()];
    let mut host4 = Vec::new();
    let mut host6 = Vec::new();
    let mut prefixes = [0usize; 2];
    for (fam, (width, (src_bit, dst_bit))) in [
        (32u8, (TRIE_SRC4, TRIE_DST4)),
        (128, (TRIE_SRC6, TRIE_DST6)),
    ]
    .into_iter()
    .enumerate()
    {
        for (dir, bit) in [(DIR_SRC, src_bit), (DIR_DST, dst_bit)] {
            let entries = tries[fam][dir as usize].resolve(width);
            if !entries.is_empty() {
                cfg.tries |= bit;
            }
            prefixes[fam] += entries.len();
            let mut hosts = Vec::new();
            // `resolve` sorts by length: shorter prefixes are written
            // first, longer ones over their share.
            for (plen, addr, e) in entries {
                let value = values.intern(e);
                if plen == width {
                    hosts.push(addr);
                    match fam {
                        0 => {
                            host4.push((Host4Key::new(g, dir, (addr as u32).to_be_bytes()), value))
                        }
                        _ => host6.push((Host6Key::new(g, dir, addr.to_be_bytes()), value)),
                    }
                } else {
                    tables[fam].prefix(dir, addr, plen as u32, value)?;
                }
            }
            for addr in hosts {
                tables[fam].host(dir, addr);
            }
        }
    }
    if values.len() > ADDR_VALUES as usize {
        return Err(format!(
            "map xdpg_addrv is full: the rule set needs {} distinct address entries, at most {}",
            values.len(),
            ADDR_VALUES
        ));
    }
    let [t4, t6] = tables;

    let mut limits = vec![LimitConfig::default(); MAX_LIMITS as usize];
    for (i, l) in rs.limits.iter().enumerate() {
        limits[i + 1] = LimitConfig {
            pps: l.pps,
            burst_packets: if l.pps > 0 { l.burst } else { 0 },
            bps: l.bps,
            burst_bytes: if l.bps > 0 { l.burst_bytes } else { 0 },
            prefix4: l.prefix4,
            prefix6: l.prefix6,
            id: limit_id(&l.name),
            _pad: [0; 4],
        };
    }

    let mut ifaces = Vec::new();
    for (name, deny) in &rs.interfaces {
        let idx = ifindex(name)
            .ok_or_else(|| format!("interfaces: no interface named \"{name}\" (see `ip link`)"))?;
        if idx > IFACE_IFINDEX_MAX {
            return Err(format!(
                "interfaces: ifindex {idx} of \"{name}\" is out of range"
            ));
        }
        ifaces.push((
            iface_key(idx, g),
            if *deny { ACTION_DENY } else { ACTION_ALLOW } as u32,
        ));
    }

    if !ifaces.is_empty() {
        cfg.tries |= TABLE_IFACES;
    }

    Ok(Image {
        generation: g,
        config: cfg,
        rules,
        v4t: t4.region(),
        v6t: t6.region(),
        addrv: values.region(),
        host4,
        host6,
        prefixes,
        macs: macs.into_iter().collect(),
        proto,
        ports,
        limits,
        ifaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;

    fn no_ifaces(_: &str) -> Option<u32> {
        None
    }

    #[test]
    fn covering_prefixes_are_folded_into_longer_ones() {
        let rs = RuleSet::from_toml(
            r#"
[[rule]]
action = "deny"
src = "10.0.0.0/8"
[[rule]]
action = "allow"
src = "10.1.0.0/16"
proto = "tcp"
[[rule]]
action = "allow"
src = "10.1.2.0/24"
"#,
        )
        .expect("parses");
        let img = compile(&rs, 1, &no_ifaces).expect("compiles");
        let find = |a: &str| {
            let a = u32::from(a.parse::<std::net::Ipv4Addr>().expect("address"));
            img.addr_entry(true, DIR_SRC, a as u128).expect("entry")
        };
        let e8 = find("10.200.0.1");
        let e16 = find("10.1.200.1");
        let e24 = find("10.1.2.3");
        assert_eq!((e8.best.action, e8.bits), (ACTION_DENY, 0));
        // /16 exists only for the compound rule; it inherits /8's deny.
        let base = rule_stats_index(1, 0);
        assert_eq!(
            (e16.best.action, e16.best.rule_id, e16.bits),
            (ACTION_DENY, base, 1)
        );
        // /24 has its own allow and inherits the compound rule's bit.
        assert_eq!(
            (e24.best.action, e24.best.rule_id, e24.bits),
            (ACTION_ALLOW, base + 2, 1)
        );
        assert_eq!(find("11.0.0.1"), AddrEntry::default());
        assert_eq!(img.prefixes, [3, 0]);
    }

    #[test]
    fn bits_follow_rank_order() {
        let rs = RuleSet::from_toml(
            r#"
[[rule]]
action = "deny"
proto = "tcp"
[[rule]]
action = "allow"
proto = "tcp"
dport = 22
"#,
        )
        .expect("parses");
        let img = compile(&rs, 0, &no_ifaces).expect("compiles");
        // The port rule is more specific: bit 0.
        assert_eq!(img.rules[0].rule_id, 1);
        assert_eq!(img.rules[1].rule_id, 0);
        assert_eq!(img.ports[port_offset(PORTS_TCP_DST, 22)], 1);
        assert_eq!(img.proto[6], 0b11);
        assert_eq!(img.config.wild_dport, 0b10);
        assert_eq!(img.config.wild_sport, 0b11);
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let rs = RuleSet::from_toml("[interfaces]\neth9 = \"deny\"\n").expect("parses");
        let e = compile(&rs, 0, &no_ifaces).expect_err("refused");
        assert!(e.contains("eth9"), "{e}");
    }

    #[test]
    fn mask_keeps_the_prefix() {
        assert_eq!(mask(0x0a01_0203, 8, 32), 0x0a00_0000);
        assert_eq!(mask(0x0a01_0203, 0, 32), 0);
        assert_eq!(mask(0x0a01_0203, 32, 32), 0x0a01_0203);
        assert_eq!(mask(u128::MAX, 64, 128), u128::MAX << 64);
    }
}
