// SPDX-License-Identifier: GPL-2.0

//! Differential test: random rule sets and random (often malformed) frames run through the loaded, JIT-compiled xdpguard program and the reference model; every verdict and counter must agree.
//!
//! Usage: `xdpguard-difftest [--cases N] [--per-set N] [--seed S]`. Needs
//! the module loaded (any ifaces=) and root. Prints one line per mismatch
//! (frame in hex, expected and actual) and a summary; exits 1 on any.

use std::{collections::BTreeMap, net::IpAddr, process::ExitCode};

use clap::Parser;
use ipnet::IpNet;
use rand::{rngs::SmallRng, seq::SliceRandom, Rng, SeedableRng};
use xdpguard_abi::*;
use xdpguard_rules::{model, Action, Fragments, Limit, Rule, RuleSet};
use xdpguard_user::{ctl, Guard};

#[derive(Parser)]
struct Args {
    /// Frames to test in total.
    #[arg(long, default_value_t = 100_000)]
    cases: u64,
    /// Frames per rule set.
    #[arg(long, default_value_t = 500)]
    per_set: u64,
    /// Seed of the generator (a run is reproducible from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const MACS: [[u8; 6]; 4] = [
    [2, 0, 0, 0, 0, 1],
    [2, 0, 0, 0, 0, 2],
    [2, 0, 0, 0, 0, 3],
    [0xff; 6],
];

fn pool_addr(rng: &mut SmallRng, v4: bool) -> IpAddr {
    if v4 {
        let a: [u8; 4] = match rng.gen_range(0..10) {
            0..=5 => [
                10,
                rng.gen_range(0..3),
                rng.gen_range(0..3),
                rng.gen_range(0..4),
            ],
            6..=8 => [192, 0, 2, rng.gen_range(0..8)],
            _ => rng.gen(),
        };
        IpAddr::from(a)
    } else {
        let mut a = [0u8; 16];
        if rng.gen_range(0..10) < 9 {
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            a[5] = rng.gen_range(0..3);
            a[7] = rng.gen_range(0..3);
            a[15] = rng.gen_range(0..4);
        } else {
            a = rng.gen();
        }
        IpAddr::from(a)
    }
}

fn gen_cidr(rng: &mut SmallRng, v4: bool) -> IpNet {
    let addr = pool_addr(rng, v4);
    let plen = if v4 {
        // Every level of the address table: the first (0-16), the
        // chunks of /17-/24, /25-/28 and /29-/31, and hosts.
        *[
            0u8,
            8,
            16,
            20,
            24,
            26,
            28,
            30,
            31,
            32,
            32,
            rng.gen_range(0..=32),
        ]
        .choose(rng)
        .unwrap_or(&32)
    } else {
        *[
            0u8,
            16,
            32,
            48,
            56,
            64,
            72,
            120,
            127,
            128,
            128,
            rng.gen_range(0..=128),
        ]
        .choose(rng)
        .unwrap_or(&128)
    };
    IpNet::new(addr, plen)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(addr))
}

fn gen_ports(rng: &mut SmallRng) -> (u16, u16) {
    let lo = *[22u16, 53, 67, 68, 80, 443, 546, 1000]
        .choose(rng)
        .unwrap_or(&80);
    if rng.gen_bool(0.5) {
        (lo, lo)
    } else {
        (lo, lo + rng.gen_range(0..100))
    }
}

fn gen_rule(rng: &mut SmallRng, limits: usize) -> Rule {
    let action = match rng.gen_range(0..10) {
        0..=4 => Action::Deny,
        5..=8 => Action::Allow,
        _ if limits > 0 => Action::Limit(rng.gen_range(0..limits)),
        _ => Action::Allow,
    };
    let mut r = Rule {
        action: Some(action),
        ..Default::default()
    };
    let v4 = rng.gen_bool(0.5);
    match rng.gen_range(0..10) {
        // Address-only, possibly a list of mixed lengths and families.
        0..=3 => {
            let n = rng.gen_range(1..=3);
            let list = (0..n)
                .map(|_| {
                    let fam = rng.gen_bool(0.7) == v4;
                    gen_cidr(rng, fam)
                })
                .collect();
            if rng.gen_bool(0.5) {
                r.src = list;
            } else {
                r.dst = list;
            }
        }
        // MAC-only.
        4 => {
            if rng.gen_bool(0.5) {
                r.src_mac = Some(*MACS.choose(rng).unwrap_or(&MACS[0]));
            } else {
                r.dst_mac = Some(*MACS.choose(rng).unwrap_or(&MACS[0]));
            }
        }
        // Everything (a catch-all), rarely.
        5 if rng.gen_bool(0.2) => {}
        // Compound.
        _ => {
            if rng.gen_bool(0.6) {
                r.src = vec![gen_cidr(rng, v4)];
            }
            if rng.gen_bool(0.4) {
                r.dst = vec![gen_cidr(rng, v4)];
            }
            match rng.gen_range(0..6) {
                0 | 1 => {
                    r.proto = Some(if rng.gen_bool(0.5) { 6 } else { 17 });
                    if rng.gen_bool(0.8) {
                        r.dport = Some(gen_ports(rng));
                    }
                    if rng.gen_bool(0.3) {
                        r.sport = Some(gen_ports(rng));
                    }
                }
                2 => {
                    r.proto = Some(if v4 { 1 } else { 58 });
                    if rng.gen_bool(0.7) {
                        r.icmp_type =
                            Some(*[0u8, 3, 8, 128, 129, 135, 136].choose(rng).unwrap_or(&8));
                        if rng.gen_bool(0.5) {
                            r.icmp_code = Some(rng.gen_range(0..2));
                        }
                    }
                }
                3 => r.proto = Some(*[6u8, 17, 47, 50, 132].choose(rng).unwrap_or(&6)),
                _ => {}
            }
            if rng.gen_bool(0.15) {
                r.src_mac = Some(*MACS.choose(rng).unwrap_or(&MACS[0]));
            }
            // A compound rule needs at least one constraint besides a
            // single address field to stay compound; either kind is fine.
        }
    }
    r
}

fn gen_ruleset(rng: &mut SmallRng) -> RuleSet {
    let nlimits = rng.gen_range(0..3);
    let limits: Vec<Limit> = (0..nlimits)
        .map(|i| Limit {
            name: format!("l{i}"),
            pps: 1,
            burst: 4_000_000_000,
            bps: 0,
            burst_bytes: 0,
            prefix4: 24,
            prefix6: 64,
        })
        .collect();
    let mut rs = RuleSet {
        default_deny: rng.gen_bool(0.5),
        monitor: rng.gen_bool(0.1),
        malformed_deny: rng.gen_bool(0.5),
        fragments: *[
            Fragments::L3Only,
            Fragments::L3Only,
            Fragments::Drop,
            Fragments::Pass,
        ]
        .choose(rng)
        .unwrap_or(&Fragments::L3Only),
        global_limit: (nlimits > 0 && rng.gen_bool(0.3)).then_some(0),
        syn_limit: (nlimits > 1 && rng.gen_bool(0.5)).then_some(1),
        limits,
        interfaces: if rng.gen_bool(0.2) {
            vec![("lo".into(), rng.gen_bool(0.5))]
        } else {
            Vec::new()
        },
        rules: Vec::new(),
        samples: 10,
    };
    let n = rng.gen_range(0..14);
    for _ in 0..n {
        rs.rules.push(gen_rule(rng, rs.limits.len()));
    }
    rs
}

/// A large rule set: the small random one plus 1 000 to 4 096 compound
/// rules of the shape real hosts have, per-service rules from
/// per-customer ranges (IPv4 /24s and IPv6 /48s, TCP or UDP, one port or
/// a range; mostly allows, some denies and limits).
fn gen_large_ruleset(rng: &mut SmallRng) -> RuleSet {
    let mut rs = gen_ruleset(rng);
    let k = rng.gen_range(1000..=4096);
    let services = [22u16, 53, 80, 443, 1000, 3306, 5432, 8080];
    for i in 0..k {
        let v6 = i % 4 == 3;
        let net: IpNet = if v6 {
            let a = std::net::Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 0);
            IpNet::new(a.into(), 48).unwrap_or_else(|_| IpNet::from(IpAddr::from(a)))
        } else {
            let a = std::net::Ipv4Addr::new(10, (i / 256) as u8, (i % 256) as u8, 0);
            IpNet::new(a.into(), 24).unwrap_or_else(|_| IpNet::from(IpAddr::from(a)))
        };
        let port = services[rng.gen_range(0..services.len())];
        let action = match rng.gen_range(0..10) {
            0 | 1 => Action::Deny,
            2 if !rs.limits.is_empty() => Action::Limit(0),
            _ => Action::Allow,
        };
        rs.rules.push(Rule {
            action: Some(action),
            src: vec![net],
            proto: Some(if rng.gen_bool(0.7) { 6 } else { 17 }),
            dport: Some(if rng.gen_bool(0.8) { (port, port) } else { (port, port + 50) }),
            ..Default::default()
        });
    }
    rs
}

/// An address from the rules (so lookups hit), or from the pool.
fn pick_addr(rng: &mut SmallRng, rs: &RuleSet, v4: bool) -> [u8; 16] {
    let nets: Vec<&IpNet> = rs
        .rules
        .iter()
        .flat_map(|r| r.src.iter().chain(r.dst.iter()))
        .filter(|n| matches!(n, IpNet::V4(_)) == v4)
        .collect();
    let addr = if !nets.is_empty() && rng.gen_bool(0.6) {
        let net = nets[rng.gen_range(0..nets.len())];
        match net {
            IpNet::V4(n) => {
                let host = if n.prefix_len() == 32 {
                    0
                } else {
                    rng.gen::<u32>() >> n.prefix_len()
                };
                IpAddr::from((u32::from(n.network()) | host).to_be_bytes())
            }
            IpNet::V6(n) => {
                let host = if n.prefix_len() == 128 {
                    0
                } else {
                    rng.gen::<u128>() >> n.prefix_len()
                };
                IpAddr::from((u128::from(n.network()) | host).to_be_bytes())
            }
        }
    } else {
        pool_addr(rng, v4)
    };
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out.copy_from_slice(&a.octets()),
    }
    out
}

fn l4_header(rng: &mut SmallRng, proto: u8, rs: &RuleSet) -> Vec<u8> {
    let port = |rng: &mut SmallRng| -> u16 {
        let rule_ports: Vec<(u16, u16)> = rs
            .rules
            .iter()
            .flat_map(|r| r.sport.into_iter().chain(r.dport))
            .collect();
        if !rule_ports.is_empty() && rng.gen_bool(0.6) {
            let (lo, hi) = rule_ports[rng.gen_range(0..rule_ports.len())];
            rng.gen_range(lo..=hi)
        } else {
            *[22u16, 53, 67, 68, 80, 546, 547, rng.gen()]
                .choose(rng)
                .unwrap_or(&80)
        }
    };
    match proto {
        6 => {
            let mut h = Vec::new();
            h.extend_from_slice(&port(rng).to_be_bytes());
            h.extend_from_slice(&port(rng).to_be_bytes());
            h.extend_from_slice(&[0; 8]);
            // Mostly a 20-byte header; sometimes a data offset below 5 or
            // past the segment.
            h.push(if rng.gen_bool(0.9) {
                0x50
            } else {
                rng.gen_range(0..16) << 4
            });
            h.push(
                *[0x02u8, 0x12, 0x10, 0x18, rng.gen()]
                    .choose(rng)
                    .unwrap_or(&0x02),
            );
            h.extend_from_slice(&[0; 6]);
            h
        }
        17 => {
            let mut h = Vec::new();
            h.extend_from_slice(&port(rng).to_be_bytes());
            h.extend_from_slice(&port(rng).to_be_bytes());
            h.extend_from_slice(&[0, 8, 0, 0]);
            h
        }
        1 | 58 => {
            let t = *[
                0u8,
                3,
                8,
                128,
                129,
                130,
                133,
                134,
                135,
                136,
                137,
                143,
                rng.gen(),
            ]
            .choose(rng)
            .unwrap_or(&8);
            vec![t, rng.gen_range(0..3), 0, 0, 0, 0, 0, 0]
        }
        _ => (0..rng.gen_range(0..8)).map(|_| rng.gen()).collect(),
    }
}

/// Now and then an L4 header cut short (as in a tiny first fragment).
fn cut_l4(rng: &mut SmallRng, mut h: Vec<u8>) -> Vec<u8> {
    if rng.gen_bool(0.12) {
        let keep = rng.gen_range(0..=h.len());
        h.truncate(keep);
    }
    h
}

/// The length field for `real` bytes: mostly `real`, sometimes more
/// (longer than the frame: malformed) or less (the rest is padding).
fn datagram_len(rng: &mut SmallRng, real: usize) -> u16 {
    match rng.gen_range(0..40) {
        0 => real as u16 + rng.gen_range(1..64),
        1 => rng.gen_range(0..=real as u16),
        _ => real as u16,
    }
}

fn gen_frame(rng: &mut SmallRng, rs: &RuleSet) -> Vec<u8> {
    let mac = |rng: &mut SmallRng| -> [u8; 6] {
        let from_rules: Vec<[u8; 6]> = rs
            .rules
            .iter()
            .flat_map(|r| r.src_mac.into_iter().chain(r.dst_mac))
            .collect();
        if !from_rules.is_empty() && rng.gen_bool(0.5) {
            from_rules[rng.gen_range(0..from_rules.len())]
        } else {
            *MACS.choose(rng).unwrap_or(&MACS[0])
        }
    };
    let mut p = Vec::new();
    p.extend_from_slice(&mac(rng));
    p.extend_from_slice(&mac(rng));
    let tags = match rng.gen_range(0..100) {
        0..=79 => 0,
        80..=89 => 1,
        90..=96 => 2,
        _ => 3,
    };
    for _ in 0..tags {
        p.extend_from_slice(&if rng.gen_bool(0.5) {
            [0x81, 0x00]
        } else {
            [0x88, 0xa8]
        });
        p.extend_from_slice(&[0x00, rng.gen_range(1..10)]);
    }
    let kind = rng.gen_range(0..100);
    let proto = *[6u8, 6, 6, 17, 17, 17, 1, 58, 58, 47, 0]
        .choose(rng)
        .unwrap_or(&6);
    let ip = p.len() + 2;
    if kind < 45 {
        p.extend_from_slice(&[0x08, 0x00]);
        let ihl = if rng.gen_bool(0.8) {
            5
        } else {
            rng.gen_range(0..16)
        };
        let version = if rng.gen_bool(0.97) {
            4
        } else {
            rng.gen_range(0..16)
        };
        let frag: u16 = match rng.gen_range(0..20) {
            0 => 0x2000,
            1 | 2 => rng.gen_range(1..0x2000) | if rng.gen_bool(0.5) { 0x2000 } else { 0 },
            _ => 0,
        };
        p.push(version << 4 | ihl);
        p.extend_from_slice(&[0, 0, 60, 0, 0]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0]);
        p.extend_from_slice(&pick_addr(rng, rs, true)[..4]);
        p.extend_from_slice(&pick_addr(rng, rs, true)[..4]);
        for _ in 20..(ihl as usize * 4).max(20) {
            p.push(1);
        }
        let l4 = l4_header(rng, proto, rs);
        p.extend(cut_l4(rng, l4));
        // Total length: the datagram's, now and then a lie.
        let total = datagram_len(rng, p.len() - ip);
        p[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    } else if kind < 90 {
        p.extend_from_slice(&[0x86, 0xdd]);
        let version = if rng.gen_bool(0.97) {
            6
        } else {
            rng.gen_range(0..16)
        };
        let exts: Vec<u8> = match rng.gen_range(0..20) {
            0..=13 => Vec::new(),
            14..=18 => (0..rng.gen_range(1..4))
                .map(|_| *[0u8, 43, 60, 51, 44].choose(rng).unwrap_or(&60))
                .collect(),
            _ => (0..rng.gen_range(5..9))
                .map(|_| *[0u8, 43, 60, 51].choose(rng).unwrap_or(&60))
                .collect(),
        };
        let first = exts.first().copied().unwrap_or(proto);
        p.extend_from_slice(&[version << 4, 0, 0, 0, 0, 40, first, 64]);
        p.extend_from_slice(&pick_addr(rng, rs, false));
        p.extend_from_slice(&pick_addr(rng, rs, false));
        for (i, &h) in exts.iter().enumerate() {
            let next = exts.get(i + 1).copied().unwrap_or(proto);
            match h {
                44 => {
                    let off: u16 = if rng.gen_bool(0.5) {
                        0
                    } else {
                        rng.gen_range(1..0x2000)
                    };
                    p.extend_from_slice(&[next, 0]);
                    p.extend_from_slice(&(off << 3 | rng.gen_range(0..2)).to_be_bytes());
                    p.extend_from_slice(&[0, 0, 0, 1]);
                }
                51 => {
                    // AH: length in 4-byte units minus 2; 12 + 4 bytes.
                    p.extend_from_slice(&[next, 2]);
                    p.extend_from_slice(&[0; 14]);
                }
                _ => {
                    let units = rng.gen_range(0..2);
                    p.extend_from_slice(&[next, units]);
                    p.extend(std::iter::repeat_n(0, 6 + 8 * units as usize));
                }
            }
        }
        let l4 = l4_header(rng, proto, rs);
        p.extend(cut_l4(rng, l4));
        let payload = datagram_len(rng, p.len() - ip - 40);
        p[ip + 4..ip + 6].copy_from_slice(&payload.to_be_bytes());
    } else if kind < 95 {
        p.extend_from_slice(&[0x08, 0x06]);
        p.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        p.extend_from_slice(&[0; 20]);
    } else {
        p.extend_from_slice(&rng.gen::<[u8; 2]>());
        p.extend((0..rng.gen_range(0..30)).map(|_| rng.gen::<u8>()));
    }
    // Ethernet padding past the datagram.
    p.extend((0..rng.gen_range(0..16)).map(|_| rng.gen::<u8>()));
    if rng.gen_bool(0.08) {
        let cut = rng.gen_range(14..=p.len());
        p.truncate(cut);
    }
    if rng.gen_bool(0.05) && p.len() > 14 {
        let i = rng.gen_range(14..p.len());
        p[i] = rng.gen();
    }
    p
}

fn hex(p: &[u8]) -> String {
    p.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The records of the rule sets it commits go to a directory of its
    // own, removed at the end: the test leaves no state in /run/xdpguard.
    let private = std::env::var_os("XDPGUARD_STATE_DIR").is_none().then(|| {
        let dir = std::env::temp_dir().join(format!("xdpguard-difftest-{}", std::process::id()));
        std::env::set_var("XDPGUARD_STATE_DIR", &dir);
        dir
    });
    let result = run(&args);
    if let Some(dir) = private {
        // Nothing to keep; a directory that cannot be removed stays in /tmp.
        let _ = std::fs::remove_dir_all(dir);
    }
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xdpguard-difftest: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<u64, String> {
    let guard = Guard::open().map_err(|e| e.to_string())?;
    let prog = guard.prog().map_err(|e| e.to_string())?;
    let _lock = ctl::lock().map_err(|e| e.to_string())?;
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let lo = xdpguard_user::ifindex("lo").ok_or("no lo interface")?;
    let (mut cases, mut sets, mut mismatches) = (0u64, 0u64, 0u64);
    let mut seen = vec![0u64; STAT_COUNT as usize];
    while cases < args.cases {
        // Every tenth rule set is a large one.
        let rs = if sets % 10 == 9 {
            gen_large_ruleset(&mut rng)
        } else {
            gen_ruleset(&mut rng)
        };
        // The one path of every rule change (`xdpguard apply`).
        ctl::commit(&guard, &rs, &mut ctl::Quiet).map_err(|e| e.to_string())?;
        let ifaces: BTreeMap<u32, bool> = rs
            .interfaces
            .iter()
            .filter_map(|(n, d)| xdpguard_user::ifindex(n).map(|i| (i, *d)))
            .collect();
        let nrules = rs.rules.len() as u32;
        let stats0 = guard.stats().map_err(|e| e.to_string())?;
        let rules0 = guard.rule_counters(nrules).map_err(|e| e.to_string())?;
        if rules0.iter().any(|c| c.packets != 0) {
            mismatches += 1;
            eprintln!("COUNTER MISMATCH set {sets}: per-rule counters did not start at zero");
        }
        let mut want = vec![0u64; STAT_COUNT as usize];
        let mut want_rules = vec![0u64; nrules as usize];
        for _ in 0..args.per_set.min(args.cases - cases) {
            let frame = gen_frame(&mut rng, &rs);
            // BPF_PROG_TEST_RUN runs XDP on the loopback device's queue.
            let out = model::evaluate(&rs, &ifaces, lo, &frame);
            let got = prog
                .test_run(&frame, 1)
                .map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
            let want_ret = if out.drop { 1 } else { 2 };
            if got.retval != want_ret {
                mismatches += 1;
                if mismatches <= 20 {
                    eprintln!(
                        "MISMATCH set {sets} frame {}: program {} model {} (reason {}, rule {:?})\nrules:\n{}",
                        hex(&frame),
                        got.retval,
                        want_ret,
                        STAT_NAMES[out.reason as usize],
                        out.rule_id,
                        rs.to_toml()
                    );
                }
            }
            want[if out.drop { STAT_DROP } else { STAT_PASS } as usize] += 1;
            want[out.reason as usize] += 1;
            if out.monitored {
                want[REASON_MONITOR as usize] += 1;
            }
            if let Some(r) = out.rule_id {
                want_rules[r as usize] += 1;
            }
            cases += 1;
        }
        let stats1 = guard.stats().map_err(|e| e.to_string())?;
        let rules1 = guard.rule_counters(nrules).map_err(|e| e.to_string())?;
        for i in 0..STAT_COUNT as usize {
            let got = stats1[i].packets - stats0[i].packets;
            if got != want[i] {
                mismatches += 1;
                eprintln!(
                    "COUNTER MISMATCH set {sets}: {} is +{got}, model says +{}",
                    STAT_NAMES[i], want[i]
                );
            }
        }
        for i in 0..nrules as usize {
            let got = rules1[i].packets - rules0[i].packets;
            if got != want_rules[i] {
                mismatches += 1;
                eprintln!(
                    "COUNTER MISMATCH set {sets}: rule {} is +{got}, model says +{}",
                    i + 1,
                    want_rules[i]
                );
            }
        }
        for (s, w) in seen.iter_mut().zip(&want) {
            *s += w;
        }
        sets += 1;
    }
    let histogram: Vec<String> = STAT_NAMES
        .iter()
        .zip(&seen)
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    println!(
        "difftest: verdicts and reasons covered: {}",
        histogram.join(", ")
    );
    println!(
        "difftest: {cases} frames, {sets} rule sets ({} with 1000 to 4096 compound rules), seed {}, {mismatches} mismatches",
        sets / 10,
        args.seed
    );
    Ok(mismatches)
}
