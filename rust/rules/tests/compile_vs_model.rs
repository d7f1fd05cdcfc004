// SPDX-License-Identifier: GPL-2.0

//! Property tests: a compiled image, looked up the way the XDP program does (longest-prefix match, field classes, ranks), decides every frame as the reference model does.
//!
//! The VM's differential test runs the real program; this one checks the
//! compiler on the host in milliseconds.

use std::collections::BTreeMap;

use ipnet::IpNet;
use proptest::prelude::*;
use xdpguard_abi::*;
use xdpguard_rules::{compile, model, Action, Fragments, Image, Rule, RuleSet};

/// The program's lookups over an image (see rust/xdpguard/bpf/src/eval.rs).
fn simulate(img: &Image, frame: &[u8], ifindex: u32) -> (bool, u32) {
    let cfg = &img.config;
    let g = img.generation;
    let Some(f) = model::parse(frame) else {
        return finish(cfg, cfg.malformed_action == ACTION_DENY, REASON_MALFORMED);
    };
    if f.fragment && cfg.frag_policy != FRAG_L3_ONLY {
        return finish(cfg, cfg.frag_policy == FRAG_DROP, REASON_FRAGMENT);
    }
    let mac = |dir: u8, m: [u8; 6]| {
        img.macs
            .iter()
            .find(|(k, _)| *k == MacKey::new(g, dir, m))
            .map_or(0, |(_, c)| *c)
    };
    let mut key = ClassKey {
        generation: g as u8,
        family: FAMILY_NONIP,
        mac_src: mac(DIR_SRC, f.eth_src),
        mac_dst: mac(DIR_DST, f.eth_dst),
        ..Default::default()
    };
    let mut best: Option<(u32, u8)> = None;
    let mut consider = |rank: u32, action: u8| {
        if action != ACTION_NONE && best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, action));
        }
    };
    if let Some((s, d)) = f.addrs {
        // The program's walk over the address tables.
        let lookup = |dir: u8, a: std::net::IpAddr| -> AddrEntry {
            let e = match a {
                std::net::IpAddr::V4(a) => img.addr_entry(true, dir, u32::from(a) as u128),
                std::net::IpAddr::V6(a) => img.addr_entry(false, dir, u128::from(a)),
            };
            e.expect("tables the program reads without corruption")
        };
        let (src, dst) = (lookup(DIR_SRC, s), lookup(DIR_DST, d));
        key.family = if s.is_ipv4() { FAMILY_V4 } else { FAMILY_V6 };
        (key.src, key.dst) = (src.class, dst.class);
        key.proto = img.proto[f.proto as usize];
        let port = |t: u32, v: u16| img.ports[port_offset(t, v)];
        if let Some((a, b)) = f.l4 {
            match f.proto {
                6 => (key.sport, key.dport) = (port(PORTS_TCP_SRC, a), port(PORTS_TCP_DST, b)),
                17 => (key.sport, key.dport) = (port(PORTS_UDP_SRC, a), port(PORTS_UDP_DST, b)),
                1 => key.icmp = port(PORTS_ICMP4, a),
                _ => key.icmp = port(PORTS_ICMP6, a),
            }
        }
        for e in [src, dst] {
            consider(e.best.rank, e.best.action);
        }
    }
    // One lookup per group, of the group's fields only.
    for gi in 0..cfg.groups as usize {
        let (mask, need) = (cfg.group_mask[gi], cfg.group_need[gi]);
        let fields = [
            (KEY_MAC_SRC, key.mac_src),
            (KEY_MAC_DST, key.mac_dst),
            (KEY_SRC, key.src),
            (KEY_DST, key.dst),
            (KEY_PROTO, key.proto),
            (KEY_SPORT, key.sport),
            (KEY_DPORT, key.dport),
            (KEY_ICMP, key.icmp),
        ];
        if fields.iter().any(|&(bit, c)| need & bit != 0 && c == 0) {
            continue;
        }
        let m = |bit: u8, c: u16| if mask & bit != 0 { c } else { 0 };
        let k = ClassKey {
            mac_src: m(KEY_MAC_SRC, key.mac_src),
            mac_dst: m(KEY_MAC_DST, key.mac_dst),
            src: m(KEY_SRC, key.src),
            dst: m(KEY_DST, key.dst),
            proto: m(KEY_PROTO, key.proto),
            sport: m(KEY_SPORT, key.sport),
            dport: m(KEY_DPORT, key.dport),
            icmp: m(KEY_ICMP, key.icmp),
            group: gi as u8,
            ..key
        };
        if let Ok(i) = img.classes.binary_search_by_key(&k, |(k, _)| *k) {
            let r = img.classes[i].1;
            consider(r.rank, r.action);
        }
    }
    if let Some((_, action)) = best {
        let deny = action == ACTION_DENY;
        if f.l4_bad && !deny {
            return malformed_l4(cfg, &f);
        }
        return finish(
            cfg,
            deny,
            if deny {
                REASON_RULE_DENY
            } else {
                REASON_RULE_ALLOW
            },
        );
    }
    if f.l4_bad {
        return malformed_l4(cfg, &f);
    }
    if f.essential {
        return finish(cfg, false, REASON_ESSENTIAL);
    }
    let key = iface_key(ifindex, g);
    let deny = match img.ifaces.iter().find(|(k, _)| *k == key) {
        Some((_, a)) => *a as u8 == ACTION_DENY,
        None => cfg.default_action == ACTION_DENY,
    };
    finish(
        cfg,
        deny,
        if deny {
            REASON_DEFAULT_DENY
        } else {
            REASON_DEFAULT_ALLOW
        },
    )
}

fn malformed_l4(cfg: &Config, f: &model::Facts) -> (bool, u32) {
    let deny = f.first_fragment || cfg.malformed_action == ACTION_DENY;
    finish(cfg, deny, REASON_MALFORMED)
}

fn finish(cfg: &Config, deny: bool, reason: u32) -> (bool, u32) {
    (deny && cfg.monitor == 0, reason)
}

fn cidr(v4: bool, seed: u64, plen: u8) -> IpNet {
    let addr: std::net::IpAddr = if v4 {
        std::net::Ipv4Addr::new(
            10,
            (seed % 3) as u8,
            (seed / 3 % 3) as u8,
            (seed / 9 % 4) as u8,
        )
        .into()
    } else {
        std::net::Ipv6Addr::new(
            0x2001,
            0xdb8,
            (seed % 3) as u16,
            0,
            0,
            0,
            0,
            (seed / 3 % 4) as u16,
        )
        .into()
    };
    let plen = if v4 { plen % 33 } else { plen % 129 };
    IpNet::new(addr, plen).unwrap().trunc()
}

prop_compose! {
    fn rule()(kind in 0u8..6, v4: bool, s1: u64, s2: u64, p1: u8, p2: u8, act in 0u8..3,
              port in prop::sample::select(vec![22u16, 53, 80]), wide: bool, mac: bool) -> Rule {
        let mut r = Rule {
            action: Some(match act { 0 => Action::Allow, 1 => Action::Deny, _ => Action::Limit(0) }),
            ..Default::default()
        };
        match kind {
            0 => r.src = vec![cidr(v4, s1, p1), cidr(!v4, s2, p2)],
            1 => r.dst = vec![cidr(v4, s1, p1)],
            2 => { r.src = vec![cidr(v4, s1, p1)]; r.proto = Some(6); r.dport = Some((port, if wide { port + 10 } else { port })); }
            3 => { r.proto = Some(if v4 { 1 } else { 58 }); r.icmp_type = Some(8); if wide { r.icmp_code = Some(0); } }
            4 => { r.src = vec![cidr(v4, s1, p1)]; r.dst = vec![cidr(v4, s2, p2)]; r.proto = Some(17); }
            _ => {}
        }
        // A MAC makes a rule compound; a mixed-family list must stay
        // address-only.
        if mac && kind != 0 { r.src_mac = Some([2, 0, 0, 0, 0, 1]); }
        r
    }
}

prop_compose! {
    fn ruleset()(rules in prop::collection::vec(rule(), 0..40), deny: bool, monitor: bool,
                 malformed: bool, frag in 0u8..3, iface: Option<bool>) -> RuleSet {
        RuleSet {
            default_deny: deny,
            monitor,
            malformed_deny: malformed,
            fragments: [Fragments::L3Only, Fragments::Drop, Fragments::Pass][frag as usize],
            limits: vec![xdpguard_rules::Limit { name: "l".into(), pps: 1, burst: 1, bps: 0, burst_bytes: 0, prefix4: 32, prefix6: 128 }],
            global_limit: None,
            syn_limit: None,
            interfaces: iface.map(|d| vec![("lo".to_string(), d)]).unwrap_or_default(),
            samples: 10,
            rules,
        }
    }
}

prop_compose! {
    fn frame()(v4: bool, s: u64, d: u64, proto in prop::sample::select(vec![6u8, 17, 1, 58, 47]),
               port in prop::sample::select(vec![22u16, 53, 80, 85, 68]), frag: bool,
               mac: bool, cut in 0usize..80) -> Vec<u8> {
        let mut p = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, if mac { 1 } else { 2 }];
        let (sa, da) = (cidr(v4, s, if v4 { 32 } else { 128 }).addr(), cidr(v4, d, if v4 { 32 } else { 128 }).addr());
        let l4: Vec<u8> = match proto {
            6 => [&[0x9c, 0x40][..], &port.to_be_bytes(), &[0; 8], &[0x50, 0x02], &[0; 6]].concat(),
            17 => [&[0x9c, 0x40][..], &port.to_be_bytes(), &[0, 8, 0, 0]].concat(),
            _ => vec![8, 0, 0, 0],
        };
        match (sa, da) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                p.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 0, 0, 0]);
                p.extend_from_slice(&if frag { [0x00, 0x10] } else { [0, 0] });
                p.extend_from_slice(&[64, proto, 0, 0]);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
            }
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
                p.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, proto, 64]);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
            }
            _ => unreachable!(),
        }
        p.extend(l4);
        // The IP length fields give the datagram before the cut: a cut in
        // the L4 header is a bad length, a cut past 11 an L4 header cut
        // short within a shorter datagram.
        let cut = cut % 24;
        let (lo, hi) = if v4 { (16, 14) } else { (18, 54) };
        let datagram = (p.len() - hi).saturating_sub(cut.saturating_sub(12));
        p[lo..lo + 2].copy_from_slice(&(datagram as u16).to_be_bytes());
        let keep = p.len().saturating_sub(cut % 12).max(14);
        p.truncate(keep);
        p
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiled_image_decides_like_the_model(rs in ruleset(), frames in prop::collection::vec(frame(), 1..20), generation in 0u32..2) {
        let lo = |n: &str| (n == "lo").then_some(1);
        let img = compile(&rs, generation, &lo).expect("generated rule sets compile");
        let ifaces: BTreeMap<u32, bool> = rs.interfaces.iter().map(|(_, d)| (1, *d)).collect();
        for f in &frames {
            let want = model::evaluate(&rs, &ifaces, 1, f);
            let got = simulate(&img, f, 1);
            prop_assert_eq!(got, (want.drop, want.reason), "frame {:02x?}\nrules:\n{}", f, rs.to_toml());
        }
    }

    #[test]
    fn monitor_mode_never_drops(mut rs in ruleset(), frames in prop::collection::vec(frame(), 1..20)) {
        rs.monitor = true;
        for f in &frames {
            prop_assert!(!model::evaluate(&rs, &BTreeMap::new(), 1, f).drop);
        }
    }

    #[test]
    fn export_round_trips(rs in ruleset()) {
        // Mixed-family lists are only valid on address-only rules, which
        // the generator respects; interface names need no resolution here.
        let text = rs.to_toml();
        let again = RuleSet::from_toml(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(again, rs);
    }
}

/// A UDP frame from `src` to `dst` (both of one family), port 53.
fn udp(src: std::net::IpAddr, dst: std::net::IpAddr) -> Vec<u8> {
    use std::net::IpAddr;
    let mut p = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 2];
    let l4 = [0x9c, 0x40, 0, 53, 0, 8, 0, 0];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => unreachable!(),
    }
    p.extend_from_slice(&l4);
    p
}

/// Host addresses are table leaves while their chunks fit and hash
/// entries past that: with more scattered hosts than the tables hold as
/// leaves (9 000 IPv4 /32s in distinct /16s need 288 cells each, 2^21
/// fit 7 281; 600 IPv6 /128s need up to 3 584 each, 2^20 fit about 290),
/// both kinds exist, and every host, its neighbours and addresses near
/// the hash's marked leaves decide as the model says.
#[test]
fn hosts_past_the_leaf_budget_go_to_the_hash_and_decide_like_the_model() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut deny: Vec<IpNet> = Vec::new();
    for _ in 0..9000 {
        deny.push(IpNet::from(IpAddr::V4(Ipv4Addr::from(next() as u32))));
    }
    for _ in 0..600 {
        let a = 0x2001_0db8u128 << 96 | (next() as u128) << 32 | next() as u32 as u128;
        deny.push(IpNet::from(IpAddr::V6(Ipv6Addr::from(a))));
    }
    deny.sort();
    deny.dedup();
    let rs = RuleSet {
        rules: vec![Rule {
            action: Some(Action::Deny),
            src: deny.clone(),
            ..Default::default()
        }],
        samples: 10,
        ..Default::default()
    };
    let none = |_: &str| None;
    let img = compile(&rs, 1, &none).expect("the scattered hosts compile");
    let (h4, h6) = (
        deny.iter().filter(|n| matches!(n, IpNet::V4(_))).count(),
        deny.iter().filter(|n| matches!(n, IpNet::V6(_))).count(),
    );
    assert!(
        !img.host4.is_empty() && img.host4.len() < h4,
        "{} of {h4} IPv4 hosts in the hash",
        img.host4.len()
    );
    assert!(
        !img.host6.is_empty() && img.host6.len() < h6,
        "{} of {h6} IPv6 hosts in the hash",
        img.host6.len()
    );
    let dst4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let dst6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let ifaces = BTreeMap::new();
    let mut drops = 0;
    for n in &deny {
        let (a, dst) = (n.addr(), if n.addr().is_ipv4() { dst4 } else { dst6 });
        let near = match a {
            IpAddr::V4(v) => [u32::from(v) ^ 1, u32::from(v) ^ 0x100, u32::from(v) ^ 0x1_0000]
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            IpAddr::V6(v) => [u128::from(v) ^ 1, u128::from(v) ^ 1 << 64, u128::from(v) ^ 1 << 96]
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        };
        for src in std::iter::once(a).chain(near) {
            let f = udp(src, dst);
            let want = model::evaluate(&rs, &ifaces, 1, &f);
            assert_eq!(simulate(&img, &f, 1), (want.drop, want.reason), "from {src}");
            drops += want.drop as usize;
        }
    }
    // Every host itself is denied (the neighbours may be hosts too).
    assert!(drops >= deny.len());
}
