// SPDX-License-Identifier: GPL-2.0

//! The rule compiler: a [`RuleSet`] becomes the contents of every map of one
//! generation (an [`Image`]).
//!
//! Compound rules are numbered in rank order (0 is the best) and classified
//! by field classes (classes.rs): each field table maps a value to its
//! class, and `xdpg_classes` maps each combination of classes under which
//! some compound rule matches to the best such rule. Address-only rules
//! live in the address tables directly, with their rank. Every address
//! entry carries what its covering (shorter) prefixes mean, because a
//! lookup returns only the longest match.

use std::collections::BTreeMap;


use ipnet::IpNet;
use xdpguard_abi::*;

use crate::classes::{combinations, ranges, Field, Set};
use crate::dir::{Table, Values};
use crate::{Action, Fragments, RuleSet};

/// Contents of every map for one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The generation (0 or 1) the keys and indices below belong to.
    pub generation: u32,
    /// `xdpg_config[generation]`.
    pub config: Config,
    /// `xdpg_classes` entries of this generation.
    pub classes: Vec<(ClassKey, RuleEntry)>,
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
    /// `xdpg_mac` entries of this generation (MAC → class).
    pub macs: Vec<(MacKey, u16)>,
    /// `xdpg_proto` from `proto_index(generation, 0)`,
    /// `PROTOS_PER_GENERATION` classes.
    pub proto: Vec<u16>,
    /// `xdpg_ports` from `port_index(generation, 0, 0)`,
    /// `PORTS_PER_GENERATION` classes indexed by `port_offset(table, value)`.
    pub ports: Vec<u16>,
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
            classes: Vec::new(),
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

/// An address-only rule's match: rank, rule id, action, limiter.
type Plain = (u32, u32, u8, u16);

fn better(a: Option<Plain>, b: Option<Plain>) -> Option<Plain> {
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

/// The prefixes of one family and direction under construction: what
/// each names by itself, before inheritance. Plain vectors, sorted once
/// in `resolve`: a million prefixes take 32 bytes each, where a hash map
/// of nodes took about 170 (and its page faults were most of the time of
/// a million-entry compile under TCG).
#[derive(Default)]
struct Trie {
    /// Address-only rules' matches: (address, length, match); one prefix
    /// may come several times.
    plain: Vec<(u128, u8, Plain)>,
    /// Compound rules' address constraints: (address, length, rule in
    /// rank order).
    named: Vec<(u128, u8, u32)>,
}

/// A prefix on the stack of `Trie::resolve`: its address and length and
/// what it gives the prefixes inside it.
struct Open {
    addr: u128,
    plen: u8,
    plain: Option<Plain>,
    /// Compound rules of it and its covering prefixes (sorted, unique).
    named: Vec<u32>,
    class: u16,
}

impl Trie {
    fn plain(&mut self, plen: u8, addr: u128, p: Plain) {
        self.plain.push((addr, plen, p));
    }

    fn named(&mut self, plen: u8, addr: u128, rule: u32) {
        self.named.push((addr, plen, rule));
    }

    /// Folds every covering prefix's compound rules and best address-only
    /// rule into each prefix; the compound rules become the entry's class
    /// in `field`. One sweep in address order with a stack of the
    /// prefixes that cover the current one (at most `width` + 1: in that
    /// order a prefix comes before every prefix inside it, and every
    /// prefix between them is inside it too). The result is sorted by
    /// (length, address).
    fn resolve(
        &mut self,
        width: u8,
        field: &mut Field,
        what: &str,
    ) -> Result<Vec<(u8, u128, AddrEntry)>, String> {
        self.plain.sort_unstable_by_key(|&(a, l, _)| (a, l));
        self.named.sort_unstable();
        let mut out = Vec::with_capacity(self.plain.len() + self.named.len());
        let mut stack: Vec<Open> = Vec::new();
        let (mut i, mut j) = (0, 0);
        let mut own = Vec::new();
        // The class of a value no compound rule names.
        let top = field.class(&[], what)?;
        loop {
            // The next prefix in (address, length) order, with all it names.
            let next = match (self.plain.get(i), self.named.get(j)) {
                (None, None) => break,
                (Some(p), None) => (p.0, p.1),
                (None, Some(n)) => (n.0, n.1),
                (Some(p), Some(n)) => (p.0, p.1).min((n.0, n.1)),
            };
            let mut plain = None;
            while let Some(&(a, l, p)) = self.plain.get(i) {
                if (a, l) != next {
                    break;
                }
                plain = better(plain, Some(p));
                i += 1;
            }
            own.clear();
            while let Some(&(a, l, r)) = self.named.get(j) {
                if (a, l) != next {
                    break;
                }
                own.push(r);
                j += 1;
            }
            let (addr, plen) = next;
            while stack
                .last()
                .is_some_and(|o| o.plen >= plen || mask(addr, o.plen, width) != o.addr)
            {
                stack.pop();
            }
            let (plain, named, class) = match stack.last() {
                Some(o) if own.is_empty() => (better(plain, o.plain), Vec::new(), o.class),
                Some(o) => {
                    let mut named = o.named.clone();
                    named.extend_from_slice(&own);
                    named.sort_unstable();
                    named.dedup();
                    let class = field.class(&named, what)?;
                    (better(plain, o.plain), named, class)
                }
                // Most prefixes of a big list: no compound rule names them
                // or a cover.
                None if own.is_empty() => (plain, Vec::new(), top),
                None => {
                    own.dedup();
                    let class = field.class(&own, what)?;
                    (plain, own.clone(), class)
                }
            };
            let (rank, rule_id, action, limit) =
                plain.unwrap_or((RANK_NONE, u32::MAX, ACTION_NONE, LIMIT_NONE));
            let best = RuleEntry {
                rank,
                rule_id,
                action,
                limit,
                ..Default::default()
            };
            out.push((
                plen,
                addr,
                AddrEntry {
                    class,
                    _pad: [0; 6],
                    best,
                },
            ));
            // A prefix inherits the named rules of its cover: keep them
            // on the stack only where it adds some (a host covers nothing).
            if plen < width {
                let named = if own.is_empty() {
                    stack.last().map_or_else(Vec::new, |o| o.named.clone())
                } else {
                    named
                };
                stack.push(Open {
                    addr,
                    plen,
                    plain,
                    named,
                    class,
                });
            }
        }
        out.sort_unstable_by_key(|&(l, a, _)| (l, a));
        Ok(out)
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
        Action::Limit(i) => *i as u16 + 1,
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
        global_limit: rs.global_limit.map_or(LIMIT_NONE, |i| i as u16 + 1),
        syn_limit: rs.syn_limit.map_or(LIMIT_NONE, |i| i as u16 + 1),
        sample_rate: rs.samples,
        ..Default::default()
    };

    // Tries: [family v4, v6][direction src, dst].
    let mut tries: [[Trie; 2]; 2] = Default::default();

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
            tries[!v4 as usize][dir].plain(
                plen,
                addr,
                (rank, id(order), r.action().code(), limit_no(r.action())),
            );
        }
    }

    // Compound rules, numbered in rank order.
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
    let n = compound.len();
    let entries: Vec<RuleEntry> = compound
        .iter()
        .map(|&(rank, order)| {
            let r = &rs.rules[order];
            RuleEntry {
                rank,
                rule_id: id(order),
                action: r.action().code(),
                limit: limit_no(r.action()),
                ..Default::default()
            }
        })
        .collect();
    // The wild set of each field: the rules that do not constrain it.
    let wild = |f: &dyn Fn(&crate::Rule) -> bool| {
        let mut s = Set::empty(n);
        for (i, &(_, order)) in compound.iter().enumerate() {
            if f(&rs.rules[order]) {
                s.insert(i);
            }
        }
        s
    };
    let mut f_mac = [
        Field::new(wild(&|r| r.src_mac.is_none())),
        Field::new(wild(&|r| r.dst_mac.is_none())),
    ];
    // [family][direction].
    let mut f_addr = [
        [
            Field::new(wild(&|r| r.src.is_empty() && r.families().0)),
            Field::new(wild(&|r| r.dst.is_empty() && r.families().0)),
        ],
        [
            Field::new(wild(&|r| r.src.is_empty() && r.families().1)),
            Field::new(wild(&|r| r.dst.is_empty() && r.families().1)),
        ],
    ];
    let mut f_proto = Field::new(wild(&|r| r.proto.is_none()));
    let mut f_sport = Field::new(wild(&|r| r.sport.is_none()));
    let mut f_dport = Field::new(wild(&|r| r.dport.is_none()));
    let mut f_icmp = Field::new(wild(&|r| r.icmp_type.is_none()));
    let nonip = wild(&|r| r.matches_non_ip());

    let mut mac_named: [BTreeMap<[u8; 6], Vec<u32>>; 2] = Default::default();
    let mut proto_ranges = Vec::new();
    // [sport, dport][tcp, udp]; ICMP [v4, v6].
    let mut port_ranges: [[Vec<(u32, u32, u32)>; 2]; 2] = Default::default();
    let mut icmp_ranges: [Vec<(u32, u32, u32)>; 2] = Default::default();
    for (i, &(_, order)) in compound.iter().enumerate() {
        let r = &rs.rules[order];
        let i = i as u32;
        for (dir, nets) in [(0usize, &r.src), (1, &r.dst)] {
            if let Some(net) = nets.first() {
                let (v4, plen, addr) = key_of(net);
                tries[!v4 as usize][dir].named(plen, addr, i);
            }
        }
        for (dir, mac) in [(0, r.src_mac), (1, r.dst_mac)] {
            if let Some(mac) = mac {
                mac_named[dir].entry(mac).or_default().push(i);
            }
        }
        if let Some(p) = r.proto {
            proto_ranges.push((i, p as u32, p as u32));
        }
        let udp = (r.proto != Some(6)) as usize;
        for (k, range) in [r.sport, r.dport].into_iter().enumerate() {
            if let Some((lo, hi)) = range {
                port_ranges[k][udp].push((i, lo as u32, hi as u32));
            }
        }
        if let Some(t) = r.icmp_type {
            let v6 = (r.proto != Some(1)) as usize;
            let (lo, hi) = match r.icmp_code {
                Some(c) => (icmp_value(t, c), icmp_value(t, c)),
                None => (icmp_value(t, 0), icmp_value(t, 255)),
            };
            icmp_ranges[v6].push((i, lo as u32, hi as u32));
        }
    }
    let mut macs: BTreeMap<MacKey, u16> = BTreeMap::new();
    for (dir, named) in mac_named.iter().enumerate() {
        for (mac, rules) in named {
            let class = f_mac[dir].class(rules, "MAC addresses")?;
            macs.insert(MacKey::new(g, dir as u8, *mac), class);
        }
    }
    let proto = ranges(
        &mut f_proto,
        PROTOS_PER_GENERATION as usize,
        &proto_ranges,
        "protocols",
    )?;
    let mut ports = vec![0u16; PORTS_PER_GENERATION as usize];
    for (k, field) in [&mut f_sport, &mut f_dport].into_iter().enumerate() {
        for (udp, list) in port_ranges[k].iter().enumerate() {
            let table = [[PORTS_TCP_SRC, PORTS_UDP_SRC], [PORTS_TCP_DST, PORTS_UDP_DST]][k][udp];
            let classes = ranges(field, PORT_TABLE_SIZE as usize, list, "ports")?;
            let at = port_offset(table, 0);
            ports[at..at + PORT_TABLE_SIZE as usize].copy_from_slice(&classes);
        }
    }
    for (v6, list) in icmp_ranges.iter().enumerate() {
        let table = [PORTS_ICMP4, PORTS_ICMP6][v6];
        let classes = ranges(&mut f_icmp, PORT_TABLE_SIZE as usize, list, "ICMP types")?;
        let at = port_offset(table, 0);
        ports[at..at + PORT_TABLE_SIZE as usize].copy_from_slice(&classes);
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
        // Host addresses of both directions, placed once every prefix of
        // the family is: they only take the cells the prefixes left.
        let mut hosts = Vec::new();
        for (dir, bit) in [(DIR_SRC, src_bit), (DIR_DST, dst_bit)] {
            let what = ["IPv4", "IPv6"][fam];
            let what = format!("{what} {} addresses", ["source", "destination"][dir as usize]);
            let entries =
                tries[fam][dir as usize].resolve(width, &mut f_addr[fam][dir as usize], &what)?;
            if !entries.is_empty() {
                cfg.tries |= bit;
            }
            prefixes[fam] += entries.len();
            // `resolve` sorts by length: shorter prefixes are written
            // first, longer ones over their share.
            for (plen, addr, e) in entries {
                let value = values.intern(e);
                if plen == width {
                    hosts.push((dir, addr, value));
                } else {
                    tables[fam].prefix(dir, addr, plen as u32, value)?;
                }
            }
        }
        // A host is a leaf of the last level while the chunks on its path
        // fit (a lookup then needs no hash, and addresses near it that
        // are not in the list do not land on a `CELL_HOSTS` leaf); the
        // rest go to the host hash, under a marked leaf.
        let mut marks = Vec::new();
        for (dir, addr, value) in hosts {
            if tables[fam].host_leaf(dir, addr, value) {
                continue;
            }
            marks.push((dir, addr));
            match fam {
                0 => host4.push((Host4Key::new(g, dir, (addr as u32).to_be_bytes()), value)),
                _ => host6.push((Host6Key::new(g, dir, addr.to_be_bytes()), value)),
            }
        }
        for (dir, addr) in marks {
            tables[fam].host(dir, addr);
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

    // Groups of compound rules by the fields they constrain.
    let signature = |r: &crate::Rule| -> u8 {
        let mut m = 0;
        for (on, bit) in [
            (r.src_mac.is_some(), KEY_MAC_SRC),
            (r.dst_mac.is_some(), KEY_MAC_DST),
            (!r.src.is_empty(), KEY_SRC),
            (!r.dst.is_empty(), KEY_DST),
            (r.proto.is_some(), KEY_PROTO),
            (r.sport.is_some(), KEY_SPORT),
            (r.dport.is_some(), KEY_DPORT),
            (r.icmp_type.is_some(), KEY_ICMP),
        ] {
            if on {
                m |= bit;
            }
        }
        m
    };
    let mut by_sig: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for (i, &(_, order)) in compound.iter().enumerate() {
        by_sig.entry(signature(&rs.rules[order])).or_default().push(i);
    }
    // The largest groups keep their own fields; the rest share the last
    // group, whose keys then hold the union of their fields.
    let mut sigs: Vec<(u8, Vec<usize>)> = by_sig.into_iter().collect();
    sigs.sort_by_key(|(sig, rules)| (std::cmp::Reverse(rules.len()), *sig));
    let mut groups: Vec<(u8, u8, Set)> = Vec::new(); // mask, need, rules
    for (sig, rules) in sigs {
        if groups.len() < MAX_GROUPS as usize {
            let mut set = Set::empty(n);
            rules.iter().for_each(|&i| set.insert(i));
            groups.push((sig, sig, set));
        } else if let Some(last) = groups.last_mut() {
            last.0 |= sig;
            last.1 &= sig;
            rules.iter().for_each(|&i| last.2.insert(i));
        }
    }
    let fam4 = wild(&|r| r.families().0);
    let fam6 = wild(&|r| r.families().1);

    // The combinations of classes, group by group and family by family.
    let mut classes = Vec::new();
    let mut left = CLASS_COMBOS as usize;
    for (gi, (mask, need, members)) in groups.iter().enumerate() {
        cfg.group_mask[gi] = *mask;
        cfg.group_need[gi] = *need;
        for (family, start) in [(FAMILY_V4, &fam4), (FAMILY_V6, &fam6), (FAMILY_NONIP, &nonip)] {
            let start = start.and_new(members);
            if start.is_empty() {
                continue;
            }
            let ip = family != FAMILY_NONIP;
            let [src, dst] = &f_addr[(family == FAMILY_V6) as usize];
            let on = |bit: u8, f| (mask & bit != 0).then_some(f);
            let fields = [
                on(KEY_MAC_SRC, &f_mac[0]),
                on(KEY_MAC_DST, &f_mac[1]),
                on(KEY_SRC, src).filter(|_| ip),
                on(KEY_DST, dst).filter(|_| ip),
                on(KEY_PROTO, &f_proto).filter(|_| ip),
                on(KEY_SPORT, &f_sport).filter(|_| ip),
                on(KEY_DPORT, &f_dport).filter(|_| ip),
                on(KEY_ICMP, &f_icmp).filter(|_| ip),
            ];
            let found = combinations(&start, &fields, left, &mut |k, best| {
                let key = ClassKey {
                    generation: g as u8,
                    family,
                    mac_src: k[0],
                    mac_dst: k[1],
                    src: k[2],
                    dst: k[3],
                    proto: k[4],
                    sport: k[5],
                    dport: k[6],
                    icmp: k[7],
                    group: gi as u8,
                    _pad: 0,
                };
                classes.push((key, entries[best]));
            })
            .map_err(|_| {
                format!(
                    "the {n} compound rules match under more than {CLASS_COMBOS} combinations \
                     of field values (map xdpg_classes): rules that constrain the same fields \
                     with overlapping values multiply, as do more than {MAX_GROUPS} kinds of \
                     rules (by the fields they constrain), which share one group; \
                     give such rules fewer kinds of fields or make them address-only"
                )
            })?;
            left -= found;
        }
    }
    cfg.groups = groups.len() as u8;
    classes.sort_unstable_by_key(|(k, _)| *k);
    cfg.compound = n as u32;
    for (bit, f) in [
        (FIELD_MAC_SRC, &f_mac[0]),
        (FIELD_MAC_DST, &f_mac[1]),
        (FIELD_PROTO, &f_proto),
        (FIELD_SPORT, &f_sport),
        (FIELD_DPORT, &f_dport),
        (FIELD_ICMP, &f_icmp),
    ] {
        if !f.unconstrained() {
            cfg.lookups |= bit;
        }
    }
    if n > 0 {
        for (bit, f) in [
            (FIELD_MAC_SRC, &f_mac[0]),
            (FIELD_MAC_DST, &f_mac[1]),
            (FIELD_SRC4, &f_addr[0][0]),
            (FIELD_DST4, &f_addr[0][1]),
            (FIELD_SRC6, &f_addr[1][0]),
            (FIELD_DST6, &f_addr[1][1]),
            (FIELD_PROTO, &f_proto),
            (FIELD_SPORT, &f_sport),
            (FIELD_DPORT, &f_dport),
            (FIELD_ICMP, &f_icmp),
        ] {
            if f.default_empty() {
                cfg.empty_default |= bit;
            }
        }
        if nonip.is_empty() {
            cfg.empty_default |= FIELD_NONIP;
        }
    }

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
        classes,
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
        assert_eq!((e8.best.action, e8.class), (ACTION_DENY, 0));
        // /16 exists only for the compound rule; it inherits /8's deny.
        let base = rule_stats_index(1, 0);
        assert_eq!(
            (e16.best.action, e16.best.rule_id, e16.class),
            (ACTION_DENY, base, 1)
        );
        // /24 has its own allow and inherits the compound rule's class.
        assert_eq!(
            (e24.best.action, e24.best.rule_id, e24.class),
            (ACTION_ALLOW, base + 2, 1)
        );
        // The compound rule (tcp from 10.1.0.0/16) under its classes.
        assert_eq!(
            img.classes,
            vec![(
                ClassKey {
                    generation: 1,
                    family: FAMILY_V4,
                    src: 1,
                    proto: img.proto[6],
                    ..Default::default()
                },
                RuleEntry {
                    rank: img.classes[0].1.rank,
                    rule_id: base + 1,
                    action: ACTION_ALLOW,
                    ..Default::default()
                }
            )]
        );
        assert_eq!(
            img.config.empty_default,
            FIELD_SRC4 | FIELD_SRC6 | FIELD_DST6 | FIELD_PROTO | FIELD_NONIP
        );
        assert_eq!(img.config.lookups, FIELD_PROTO);
        assert_eq!(find("11.0.0.1"), AddrEntry::default());
        assert_eq!(img.prefixes, [3, 0]);
    }

    #[test]
    fn the_best_rule_of_a_combination_follows_rank_order() {
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
        let c22 = img.ports[port_offset(PORTS_TCP_DST, 22)];
        let tcp = img.proto[6];
        assert_ne!(c22, 0);
        assert_eq!(img.ports[port_offset(PORTS_TCP_DST, 23)], 0);
        assert_eq!(img.ports[port_offset(PORTS_UDP_DST, 22)], 0);
        assert_eq!(img.config.lookups, FIELD_PROTO | FIELD_DPORT);
        let rule_of = |family, dport| {
            img.classes
                .iter()
                .find(|(k, _)| k.family == family && k.proto == tcp && k.dport == dport)
                .map(|(_, r)| r.rule_id)
        };
        // tcp/22: both rules match, the port rule is more specific.
        assert_eq!(rule_of(FAMILY_V4, c22), Some(1));
        assert_eq!(rule_of(FAMILY_V6, c22), Some(1));
        assert_eq!(rule_of(FAMILY_V4, 0), Some(0));
        assert_eq!(img.classes.len(), 4);
    }

    #[test]
    fn thousands_of_compound_rules_compile_to_one_combination_each() {
        // Per-service rules from per-customer ranges: 256 customers, 16
        // services each.
        let mut text = String::new();
        for c in 0..256 {
            for s in 0..16 {
                text += &format!(
                    "[[rule]]\naction = \"allow\"\nsrc = \"10.{c}.0.0/16\"\nproto = \"tcp\"\ndport = {}\n",
                    8000 + s
                );
            }
        }
        let rs = RuleSet::from_toml(&text).expect("parses");
        let img = compile(&rs, 0, &no_ifaces).expect("compiles");
        assert_eq!(img.config.compound, 4096);
        assert_eq!(img.classes.len(), 4096);
    }

    #[test]
    fn rules_on_different_fields_do_not_multiply() {
        // 600 rules on sources and protocols, 600 on protocols and ports:
        // two groups, 600 combinations for the first (IPv4), 1 200 for
        // the second (IPv4 and IPv6), not 360 000.
        let mut text = String::new();
        for i in 0..600 {
            text += &format!(
                "[[rule]]\naction = \"deny\"\nsrc = \"10.{}.{}.0/24\"\nproto = \"udp\"\n",
                i / 256,
                i % 256
            );
            text += &format!(
                "[[rule]]\naction = \"allow\"\nproto = \"udp\"\ndport = {}\n",
                1000 + i
            );
        }
        let rs = RuleSet::from_toml(&text).expect("parses");
        let img = compile(&rs, 0, &no_ifaces).expect("compiles");
        assert_eq!(img.config.groups, 2);
        assert_eq!(img.classes.len(), 1800);
    }

    #[test]
    fn too_many_combinations_are_refused() {
        // In one group: 600 rules from distinct /24s to ports 1000 and up,
        // 600 from their /8 to one port each; every /24 meets every port.
        let mut text = String::new();
        for i in 0..600 {
            text += &format!(
                "[[rule]]\naction = \"deny\"\nsrc = \"10.{}.{}.0/24\"\nproto = \"udp\"\ndport = \"1000-65535\"\n",
                i / 256,
                i % 256
            );
            text += &format!(
                "[[rule]]\naction = \"allow\"\nsrc = \"10.0.0.0/8\"\nproto = \"udp\"\ndport = {}\n",
                1000 + i
            );
        }
        let rs = RuleSet::from_toml(&text).expect("parses");
        let e = compile(&rs, 0, &no_ifaces).err().expect("refused");
        assert!(e.contains("xdpg_classes"), "{e}");
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
