// SPDX-License-Identifier: GPL-2.0

//! Benchmark of the xdpguard program: cost per packet by `BPF_PROG_TEST_RUN` at growing rule-set sizes, against a bare `XDP_PASS` program and xdp-filter measured in the same run.
//!
//! Usage: `xdpguard-bench [--sizes 1,1000,100000,1000000]
//! [--compound 1,64,1024,4096] [--repeat N] [--runs N] [--xdp-filter-max N]
//! [--csv FILE] [--fixed [--baseline FILE [--tolerance PCT]]]`. Needs the
//! module loaded and root.
//!
//! Two kinds of rule set are measured. At each of `--sizes` N: a deny list
//! of N source CIDRs and an allow list of N destination CIDRs (mixed
//! lengths, IPv4 and IPv6), plus three compound rules; its frames come
//! from outside the lists, and from inside them: the deepest entry of each
//! list (the one with the most list prefixes and branch points above it
//! in a binary trie of the list), a host entry and the deepest other
//! prefix, IPv4 and IPv6. At each of `--compound` K: K per-customer
//! service rules (source prefix, TCP, one destination port) under a
//! default deny, with frames from a middle customer to its port and to
//! another one. A size the program refuses to load is reported as
//! "refused: why" and skipped.
//!
//! Under QEMU's instruction counting (`qemu/run.sh --icount`, which
//! exports XDPGUARD_ICOUNT=1) the test run's duration in ns is the number
//! of x86 instructions per packet, exact; elsewhere it is time.
//! `--fixed` measures the regression check's fixed set (small; 1 000
//! repetitions, the least of three runs) and `--baseline FILE` compares it with a CSV
//! this program wrote, failing on growth above `--tolerance` percent.

use std::{
    collections::{HashMap, HashSet},
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Command, ExitCode},
    time::Instant,
};

use clap::Parser;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use xdpguard_rules::{Action, Rule, RuleSet};
use xdpguard_user::{ctl, Guard, Prog};

#[derive(Parser)]
struct Args {
    /// CIDR-list sizes: N source CIDRs denied and N destination CIDRs
    /// allowed, plus three compound rules.
    #[arg(long, value_delimiter = ',', default_value = "1,1000,100000,1000000")]
    sizes: Vec<usize>,
    /// Compound-rule counts: K per-customer service rules under a default
    /// deny (0: none).
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024,4096")]
    compound: Vec<usize>,
    /// Program runs per measurement, the kernel reports the mean (default
    /// 1000 under icount, where that is exact, else 100 000).
    #[arg(long)]
    repeat: Option<u32>,
    /// Measurements per figure; the least is reported under icount, else
    /// the median (default 1 under icount, else 5).
    #[arg(long)]
    runs: Option<usize>,
    /// Largest size loaded into xdp-filter (one command per address).
    #[arg(long, default_value_t = 1000)]
    xdp_filter_max: usize,
    /// Also write the results as CSV here.
    #[arg(long)]
    csv: Option<String>,
    /// The regression check's fixed set: CIDR sizes 1 and 1000, 1 and 16
    /// compound rules, 1000 repetitions, the least of three runs, no
    /// xdp-filter (overrides the options above).
    #[arg(long)]
    fixed: bool,
    /// Compares xdpguard's figures with this CSV (an earlier --csv) and
    /// fails if any frame grew by more than --tolerance percent.
    #[arg(long)]
    baseline: Option<String>,
    /// Growth in percent over the baseline that fails --baseline.
    #[arg(long, default_value_t = 2.0)]
    tolerance: f64,
}

/// The frames' sources and destinations outside every list.
const DROP4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const DROP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x66);
const PASS4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const PASS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
const DST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The allow list's fixed entries (outside its generated ranges).
const ALLOW4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const ALLOW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x9000, 0, 0, 0, 0, 0x99);
/// The compound rule set's service ports, one per rule in turn.
const SERVICES: [u16; 16] = [
    22, 25, 53, 80, 110, 143, 443, 465, 587, 993, 995, 3306, 5432, 6379, 8080, 8443,
];
/// A port no compound rule names.
const OTHER_PORT: u16 = 9999;

fn eth(ethertype: u16, vlan: bool) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if vlan {
        p.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    }
    p.extend_from_slice(&ethertype.to_be_bytes());
    p
}

fn l4(proto: u8, dport: u16) -> Vec<u8> {
    let mut h = vec![0x9c, 0x40];
    h.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0, 0, 0, 0, 0]);
    } else {
        h.extend_from_slice(&[0, 8, 0, 0]);
    }
    h
}

fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, dport: u16, vlan: bool) -> Vec<u8> {
    let mut p = eth(0x0800, vlan);
    p.extend_from_slice(&[0x45, 0, 0, 46, 0, 1, 0, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend(l4(proto, dport));
    // The total length is the datagram's; the padding after it is not.
    let ip = if vlan { 18 } else { 14 };
    let total = (p.len() - ip) as u16;
    p[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    p.resize(p.len().max(64), 0);
    p
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, dport: u16, ext: bool) -> Vec<u8> {
    let mut p = eth(0x86dd, false);
    let first = if ext { 0 } else { proto };
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 40, first, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    if ext {
        p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]);
    }
    p.extend(l4(proto, dport));
    let payload = (p.len() - 14 - 40) as u16;
    p[18..20].copy_from_slice(&payload.to_be_bytes());
    p.resize(p.len().max(64), 0);
    p
}

/// One benchmark frame: its name (the key of the CSV and the baseline;
/// "drop" in it means it must be dropped), where it goes, and its bytes.
struct Frame {
    name: &'static str,
    src: String,
    dst: String,
    bytes: Vec<u8>,
}

impl Frame {
    fn new(name: &'static str, src: impl ToString, dst: impl ToString, bytes: Vec<u8>) -> Frame {
        Frame {
            name,
            src: src.to_string(),
            dst: dst.to_string(),
            bytes,
        }
    }
}

/// Where the generated part of a list lies.
struct Ranges {
    /// IPv4: `base | (random & mask)`.
    v4_base: u32,
    v4_mask: u32,
    /// IPv6: `base | random << 16`.
    v6_base: u128,
    seed: u64,
}

/// The deny list: 10.128.0.0/9 and 2001:db8:0::/48, as before.
const DENY: Ranges = Ranges {
    v4_base: 0x0a80_0000,
    v4_mask: 0x007f_ffff,
    v6_base: 0x2001_0db8_0000_0000_0000_0000_0000_0000,
    seed: 0x9e37_79b9_7f4a_7c15,
};
/// The allow list: 172.16.0.0/12 and 2001:db8:8000::/48.
const ALLOW: Ranges = Ranges {
    v4_base: 0xac10_0000,
    v4_mask: 0x000f_ffff,
    v6_base: 0x2001_0db8_8000_0000_0000_0000_0000_0000,
    seed: 0x2545_f491_4f6c_dd1d,
};

/// `n` CIDRs of mixed lengths (three IPv4 in four, /16 to /32; IPv6 /48
/// to /128), the two fixed host entries first, sorted, duplicates removed.
fn cidrs(n: usize, fixed: [IpAddr; 2], r: &Ranges) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = fixed.iter().map(|&a| IpNet::from(a)).collect();
    let mut x = r.seed;
    while out.len() < n.max(2) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let net = if out.len() % 4 == 3 {
            let addr = Ipv6Addr::from(r.v6_base | ((x as u128) << 16));
            let len = [48u8, 56, 64, 128][(x >> 60) as usize & 3];
            IpNet::V6(
                Ipv6Net::new(addr, len)
                    .map(|n| n.trunc())
                    .unwrap_or_default(),
            )
        } else {
            let addr = Ipv4Addr::from(r.v4_base | (x as u32 & r.v4_mask));
            let len = [16u8, 20, 24, 28, 32, 32, 32, 32][(x >> 61) as usize & 7];
            IpNet::V4(
                Ipv4Net::new(addr, len)
                    .map(|n| n.trunc())
                    .unwrap_or_default(),
            )
        };
        out.push(net);
    }
    out.sort();
    out.dedup();
    out
}

/// A prefix as left-aligned bits and a length (IPv4 in the top 32 bits).
type Bits = (u128, u8);

fn bits(net: &IpNet) -> Bits {
    match net {
        IpNet::V4(n) => ((u32::from(n.addr()) as u128) << 96, n.prefix_len()),
        IpNet::V6(n) => (u128::from(n.addr()), n.prefix_len()),
    }
}

fn trunc(b: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        b & (!0u128 << (128 - len as u32))
    }
}

fn is_prefix(p: Bits, q: Bits) -> bool {
    p.1 <= q.1 && trunc(q.0, p.1) == p.0
}

/// The deepest entry of one family of a list and an address that takes
/// it as its longest match.
struct Deep {
    net: IpNet,
    addr: IpAddr,
    /// Nodes on its path in a binary trie of the list (entries and branch
    /// points), itself included.
    depth: usize,
}

/// The entry of `list` (IPv6 if `v6`) with the most trie nodes on its
/// path: a host entry (/32, /128) if `host`, else the deepest other
/// prefix (ties: the longer prefix, then the lower address). The trie is
/// the path-compressed binary trie of the list (the shape of the kernel's
/// LPM trie): its nodes are the entries and the longest common prefixes
/// of neighbours in sorted order that are not entries.
fn deepest(list: &[IpNet], v6: bool, host: bool) -> Option<Deep> {
    let max: u8 = if v6 { 128 } else { 32 };
    let mut e: Vec<Bits> = list
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        .map(bits)
        .collect();
    e.sort();
    e.dedup();
    let entries: HashSet<Bits> = e.iter().copied().collect();
    // (bits, len, not an entry): an entry sorts before its branch-point twin.
    let mut nodes: Vec<(u128, u8, bool)> = e.iter().map(|&(b, l)| (b, l, false)).collect();
    for w in e.windows(2) {
        let (a, b) = (w[0], w[1]);
        let common = ((a.0 ^ b.0).leading_zeros() as u8).min(a.1).min(b.1);
        if common < a.1.min(b.1) {
            nodes.push((trunc(a.0, common), common, true));
        }
    }
    nodes.sort();
    nodes.dedup_by_key(|n| (n.0, n.1));
    let mut stack: Vec<Bits> = Vec::new();
    let mut found: Vec<(usize, u8, u128)> = Vec::new();
    for &(b, l, branch) in &nodes {
        while let Some(&top) = stack.last() {
            if is_prefix(top, (b, l)) {
                break;
            }
            stack.pop();
        }
        stack.push((b, l));
        if !branch && (l == max) == host {
            found.push((stack.len(), l, b));
        }
    }
    // Deepest first, then longer, then lower.
    found.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
    for (depth, len, b) in found.into_iter().take(64) {
        // An address whose longest match in the list is this entry.
        let host_bits = if len == 128 { 0 } else { !0u128 >> len };
        let top = if v6 { !0u128 } else { !0u128 << 96 };
        let addr = (0u128..32)
            .map(|k| b | (host_bits & top & (1 + k * 0x0101_0101_0101_0101_0101_0101_0101_0101)))
            .find(|&a| (len + 1..=max).all(|m| !entries.contains(&(trunc(a, m), m))));
        if let Some(a) = addr {
            let (net, addr) = if v6 {
                let n = Ipv6Net::new(Ipv6Addr::from(b), len).ok()?;
                (IpNet::V6(n), IpAddr::V6(Ipv6Addr::from(a)))
            } else {
                let n = Ipv4Net::new(Ipv4Addr::from((b >> 96) as u32), len).ok()?;
                (IpNet::V4(n), IpAddr::V4(Ipv4Addr::from((a >> 96) as u32)))
            };
            return Some(Deep { net, addr, depth });
        }
    }
    None
}

/// The CIDR rule set of size `n`: the deny and allow lists, then the three
/// compound rules of 192.0.2.0/24 (tcp/22 allow, tcp/23 and udp/5353 deny).
fn cidr_ruleset(deny: &[IpNet], allow: &[IpNet]) -> RuleSet {
    let mut rs = RuleSet::default();
    rs.rules.push(Rule {
        action: Some(Action::Deny),
        src: deny.to_vec(),
        ..Default::default()
    });
    rs.rules.push(Rule {
        action: Some(Action::Allow),
        dst: allow.to_vec(),
        ..Default::default()
    });
    let net = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 0), 24).unwrap_or_default());
    for (action, proto, port) in [
        (Action::Allow, 6, 22),
        (Action::Deny, 6, 23),
        (Action::Deny, 17, 5353),
    ] {
        rs.rules.push(Rule {
            action: Some(action),
            src: vec![net],
            proto: Some(proto),
            dport: Some((port, port)),
            ..Default::default()
        });
    }
    rs
}

/// Customer `i`'s prefix: even customers IPv4 in 100.64.0.0/10 (a /22
/// slot each, /22 to /28 of it used), odd ones IPv6 in 2001:db8:c000::/34
/// (a /48 slot each, /48 to /64 used).
fn customer(i: usize) -> IpNet {
    let slot = (i / 2) as u32;
    if i % 2 == 0 {
        let len = [24u8, 22, 26, 28, 23, 25, 27, 24][slot as usize % 8];
        let addr = Ipv4Addr::from(0x6440_0000 + (slot << 10));
        IpNet::V4(Ipv4Net::new(addr, len).unwrap_or_default())
    } else {
        let len = [48u8, 52, 56, 64][slot as usize % 4];
        let base = 0x2001_0db8_c000_0000_0000_0000_0000_0000u128;
        let addr = Ipv6Addr::from(base | ((slot as u128) << 80));
        IpNet::V6(Ipv6Net::new(addr, len).unwrap_or_default())
    }
}

/// Customer `i`'s service port.
fn service(i: usize) -> u16 {
    SERVICES[(i / 2) % SERVICES.len()]
}

/// `k` compound rules: allow tcp to customer i's service port from its
/// prefix, under a default deny.
fn compound_ruleset(k: usize) -> RuleSet {
    let mut rs = RuleSet {
        default_deny: true,
        ..Default::default()
    };
    for i in 0..k {
        rs.rules.push(Rule {
            action: Some(Action::Allow),
            src: vec![customer(i)],
            proto: Some(6),
            dport: Some((service(i), service(i))),
            ..Default::default()
        });
    }
    rs
}

/// A host inside a customer's prefix (its first address plus one).
fn host_in(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + 1)),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + 1)),
    }
}

fn v4_of(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn v6_of(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// The frames of a CIDR rule set: the fixed ones outside the lists, then
/// the deepest entries' (those the lists have; `-` lines say which not).
fn cidr_frames(deny: &[IpNet], allow: &[IpNet], notes: &mut Vec<String>) -> Vec<Frame> {
    let mut f = vec![
        Frame::new("ipv4 udp pass", PASS4, DST4, v4(PASS4, DST4, 17, 53, false)),
        Frame::new("ipv4 udp drop", DROP4, DST4, v4(DROP4, DST4, 17, 53, false)),
        Frame::new("ipv4 tcp pass", PASS4, DST4, v4(PASS4, DST4, 6, 80, false)),
        Frame::new(
            "ipv4 tcp/22 allow",
            "192.0.2.7",
            DST4,
            v4(Ipv4Addr::new(192, 0, 2, 7), DST4, 6, 22, false),
        ),
        Frame::new(
            "vlan ipv4 udp drop",
            DROP4,
            DST4,
            v4(DROP4, DST4, 17, 53, true),
        ),
        Frame::new("ipv6 tcp pass", PASS6, DST6, v6(PASS6, DST6, 6, 80, false)),
        Frame::new("ipv6 udp drop", DROP6, DST6, v6(DROP6, DST6, 17, 53, false)),
        Frame::new(
            "ipv6 ext-hdr tcp pass",
            PASS6,
            DST6,
            v6(PASS6, DST6, 6, 443, true),
        ),
    ];
    let deep: [(&'static str, bool, bool, bool); 8] = [
        ("ipv4 deepest /32 src drop", false, true, false),
        ("ipv4 deepest prefix src drop", false, false, false),
        ("ipv6 deepest /128 src drop", true, true, false),
        ("ipv6 deepest prefix src drop", true, false, false),
        ("ipv4 deepest /32 dst pass", false, true, true),
        ("ipv4 deepest prefix dst pass", false, false, true),
        ("ipv6 deepest /128 dst pass", true, true, true),
        ("ipv6 deepest prefix dst pass", true, false, true),
    ];
    for (name, is6, host, dst) in deep {
        let list = if dst { allow } else { deny };
        let Some(d) = deepest(list, is6, host) else {
            notes.push(format!("{name}: -, the list has no such entry"));
            continue;
        };
        let at = format!("{} in {} (depth {})", d.addr, d.net, d.depth);
        let frame = match (is6, dst) {
            (false, false) => Frame::new(name, at, DST4, v4(v4_of(d.addr), DST4, 17, 53, false)),
            (true, false) => Frame::new(name, at, DST6, v6(v6_of(d.addr), DST6, 17, 53, false)),
            (false, true) => Frame::new(name, PASS4, at, v4(PASS4, v4_of(d.addr), 17, 53, false)),
            (true, true) => Frame::new(name, PASS6, at, v6(PASS6, v6_of(d.addr), 6, 80, false)),
        };
        f.push(frame);
    }
    f
}

/// The frames of `k` compound rules: from the middle IPv4 and IPv6
/// customers to their service port and to a port no rule names.
fn compound_frames(k: usize, notes: &mut Vec<String>) -> Vec<Frame> {
    let mut f = Vec::new();
    for is6 in [false, true] {
        // The customer of this family nearest the middle.
        let m = (k / 2) & !1 | is6 as usize;
        let m = if m >= k { m.saturating_sub(2) } else { m };
        if m >= k || (m % 2 == 1) != is6 {
            notes.push(format!(
                "compound ipv{} frames: -, no IPv{} customer among {k} rules",
                if is6 { 6 } else { 4 },
                if is6 { 6 } else { 4 }
            ));
            continue;
        }
        let net = customer(m);
        let src = host_in(&net);
        let at = format!("{src} in {net} (customer {m})");
        for (name4, name6, port) in [
            (
                "compound ipv4 service pass",
                "compound ipv6 service pass",
                service(m),
            ),
            (
                "compound ipv4 other port drop",
                "compound ipv6 other port drop",
                OTHER_PORT,
            ),
        ] {
            let dst = format!(
                "{} tcp/{port}",
                if is6 {
                    DST6.to_string()
                } else {
                    DST4.to_string()
                }
            );
            f.push(if is6 {
                Frame::new(name6, &at, dst, v6(v6_of(src), DST6, 6, port, false))
            } else {
                Frame::new(name4, &at, dst, v4(v4_of(src), DST4, 6, port, false))
            });
        }
    }
    f
}

/// The figure of `runs` measurements of `repeat` runs each, after a
/// warm-up of a tenth of that, which empties the per-CPU sample budget of
/// the drop path (`samples`, 10 a second). Under icount (`least`) it is
/// the least of them: the counts are exact, and the only thing that can
/// change them is a sample window opening during a measurement (a second
/// of guest clock is 10^9 instructions, so at most one in a frame's runs),
/// which adds its samples and clock reads to at most two consecutive
/// runs; the other is clean. Elsewhere it is the median, against timing
/// noise.
fn measure(
    prog: &Prog,
    frame: &[u8],
    repeat: u32,
    runs: usize,
    least: bool,
) -> Result<(f64, u32), String> {
    let mut v = Vec::new();
    let mut ret = 0;
    prog.test_run(frame, (repeat / 10).max(10))
        .map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
    for _ in 0..runs.max(1) {
        let r = prog
            .test_run(frame, repeat)
            .map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
        v.push(r.duration_ns as f64);
        ret = r.retval;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok((if least { v[0] } else { v[v.len() / 2] }, ret))
}

fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads xdp-filter on a dummy device with the deny list's addresses as
/// denied sources (exact addresses: xdp-filter has no CIDRs). Returns its
/// program and the seconds the loading took.
fn xdp_filter(deny: &[IpNet]) -> Result<(Prog, f64), String> {
    let _ = sh("xdp-filter unload xgbench0 2>/dev/null; ip link del xgbench0 2>/dev/null");
    sh("ip link add xgbench0 type dummy && ip link set xgbench0 up")?;
    let start = Instant::now();
    sh("xdp-filter load -m skb -p allow -f ipv4,ipv6,udp,tcp xgbench0")?;
    let mut script = String::new();
    for net in deny {
        let _ = writeln!(script, "xdp-filter ip -m src {}", net.addr());
    }
    sh(&script)?;
    let secs = start.elapsed().as_secs_f64();
    let id = sh("ip -j -d link show xgbench0 | jq -r '.[0].xdp.prog.id'")?;
    let id: u32 = id
        .trim()
        .parse()
        .map_err(|_| format!("xdp-filter: no program on xgbench0 ({id})"))?;
    Ok((Prog::from_id(id).map_err(|e| e.to_string())?, secs))
}

fn verdict(ret: u32) -> &'static str {
    if ret == 1 {
        "drop"
    } else {
        "pass"
    }
}

/// One measured frame.
struct Row {
    set: &'static str,
    size: usize,
    frame: &'static str,
    cost: f64,
    bare: f64,
    xdp_filter: Option<(f64, &'static str)>,
}

const CSV_HEADER: &str = "set,size,frame,src,dst,unit,xdpguard,bare,ratio_bare,xdp_filter,ratio_xdp_filter,xdp_filter_verdict,verdict\n";

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xdpguard-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark; `Ok(false)` when the baseline comparison failed.
fn run(a: &Args) -> Result<bool, String> {
    let icount = std::env::var("XDPGUARD_ICOUNT").is_ok_and(|v| v == "1");
    let (unit, unit_short) = if icount {
        ("instructions per packet", "insn")
    } else {
        ("ns per packet", "ns")
    };
    let (sizes, compound, repeat, runs, xf_max) = if a.fixed {
        (vec![1, 1000], vec![1, 16], 1000, 3, 0)
    } else {
        (
            a.sizes.clone(),
            a.compound.iter().copied().filter(|&k| k > 0).collect(),
            a.repeat.unwrap_or(if icount { 1000 } else { 100_000 }),
            a.runs.unwrap_or(if icount { 1 } else { 5 }),
            a.xdp_filter_max,
        )
    };
    let guard = Guard::open().map_err(|e| e.to_string())?;
    let prog = guard.prog().map_err(|e| e.to_string())?;
    let _lock = ctl::lock().map_err(|e| e.to_string())?;
    let bare = Prog::load_xdp_pass().map_err(|e| format!("loading the XDP_PASS baseline: {e}"))?;
    let have_xdp_filter = xf_max > 0 && sh("command -v xdp-filter").is_ok();
    let mut csv = String::from(CSV_HEADER);
    let mut rows: Vec<Row> = Vec::new();
    let of = if icount { "least" } else { "median" };
    println!("xdpguard-bench: {unit} (BPF_PROG_TEST_RUN, mean of {repeat} runs, {of} of {runs})");
    if icount {
        println!(
            "under QEMU icount: the guest clock counts instructions, so the test run's ns are x86"
        );
        println!(
            "instructions per packet, helpers included (exact); cache and TLB misses do not show;"
        );
        println!("load times below are by the guest clock too (10^9 instructions a second), not wall time");
    } else {
        println!("times by the guest clock; under QEMU TCG absolute numbers are not meaningful (use --icount)");
    }
    let mut sets: Vec<(&'static str, usize)> = sizes.iter().map(|&n| ("cidrs", n)).collect();
    sets.extend(compound.iter().map(|&k| ("compound", k)));
    for (set, n) in sets {
        let mut notes = Vec::new();
        let (rs, frames, deny) = if set == "cidrs" {
            let deny = cidrs(n, [IpAddr::V4(DROP4), IpAddr::V6(DROP6)], &DENY);
            let allow = cidrs(n, [IpAddr::V4(ALLOW4), IpAddr::V6(ALLOW6)], &ALLOW);
            let frames = cidr_frames(&deny, &allow, &mut notes);
            (cidr_ruleset(&deny, &allow), frames, deny)
        } else {
            (
                compound_ruleset(n),
                compound_frames(n, &mut notes),
                Vec::new(),
            )
        };
        println!();
        let title = if set == "cidrs" {
            format!("{n} CIDRs denied by source and {n} allowed by destination, 3 compound rules")
        } else {
            format!("{n} compound rules (per-customer tcp service allows), default deny")
        };
        let t = Instant::now();
        if let Err(e) = ctl::commit(&guard, &rs, &mut ctl::Quiet) {
            println!("{title}: refused: {e}");
            if a.fixed {
                return Err(format!("the fixed set {set} {n} did not load: {e}"));
            }
            continue;
        }
        let apply = t.elapsed().as_secs_f64();
        let xf = if set == "cidrs" && have_xdp_filter && n <= xf_max {
            Some(xdp_filter(&deny)?)
        } else {
            None
        };
        print!("{title}: xdpguard apply {apply:.2} s");
        match &xf {
            Some((_, s)) => println!(", xdp-filter load of {} addresses {s:.2} s", deny.len()),
            None if set == "cidrs" && have_xdp_filter => {
                println!(", xdp-filter not loaded (over --xdp-filter-max: one command per address)")
            }
            None => println!(),
        }
        println!(
            "{:<30} {:>9} {:>9} {:>7} {:>10} {:>7} {:>7}  where",
            "frame", "xdpguard", "XDP_PASS", "ratio", "xdp-filter", "ratio", "verdict"
        );
        for f in &frames {
            let (cost, ret) = measure(&prog, &f.bytes, repeat, runs, icount)?;
            let (base, _) = measure(&bare, &f.bytes, repeat, runs, icount)?;
            let xfr = match &xf {
                Some((p, _)) => {
                    let (c, r) = measure(p, &f.bytes, repeat, runs, icount)?;
                    Some((c, verdict(r)))
                }
                None => None,
            };
            let ratio = cost / base.max(1.0);
            let (xs, xr, xv) = match xfr {
                Some((x, v)) => (format!("{x:.0}"), format!("{:.2}", cost / x.max(1.0)), v),
                None => ("-".into(), "-".into(), "-"),
            };
            let v = verdict(ret);
            println!(
                "{:<30} {cost:>9.0} {base:>9.0} {ratio:>7.2} {xs:>10} {xr:>7} {v:>7}  {} > {}",
                f.name, f.src, f.dst
            );
            let _ = writeln!(
                csv,
                "{set},{n},{},{},{},{unit_short},{cost:.1},{base:.1},{ratio:.3},{xs},{xr},{xv},{v}",
                f.name, f.src, f.dst
            );
            rows.push(Row {
                set,
                size: n,
                frame: f.name,
                cost,
                bare: base,
                xdp_filter: xfr,
            });
        }
        for note in notes {
            println!("{note}");
        }
        if xf.is_some() {
            let _ = sh("xdp-filter unload xgbench0; ip link del xgbench0");
        }
    }
    println!("\nratio: xdpguard / XDP_PASS and xdpguard / xdp-filter on the same frame (xdp-filter matches");
    println!("exact addresses only: it holds the deny list's addresses, not its CIDRs, and no allow list;");
    println!("its own verdict is in the CSV); depth: nodes on the entry's path in a binary trie of the list");
    summary(&rows, unit);
    if let Some(path) = &a.csv {
        std::fs::write(path, &csv).map_err(|e| format!("{path}: {e}"))?;
    }
    match &a.baseline {
        Some(path) => compare(&rows, path, a.tolerance, unit_short),
        None => Ok(true),
    }
}

/// Each frame's cost over the sizes of its set, and its growth over the
/// smallest size it was measured at.
fn summary(rows: &[Row], unit: &str) {
    for set in ["cidrs", "compound"] {
        let mut sizes: Vec<usize> = rows
            .iter()
            .filter(|r| r.set == set)
            .map(|r| r.size)
            .collect();
        sizes.sort();
        sizes.dedup();
        if sizes.len() < 2 {
            continue;
        }
        let mut names: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.set == set) {
            if !names.contains(&r.frame) {
                names.push(r.frame);
            }
        }
        println!(
            "\n{}: xdpguard {unit} at each size (x: over the smallest size measured)",
            if set == "cidrs" {
                "CIDR lists"
            } else {
                "compound rules"
            }
        );
        let mut head = format!("{:<30}", "frame");
        for s in &sizes {
            let _ = write!(head, " {:>15}", s);
        }
        println!("{head}");
        for name in names {
            let mut line = format!("{name:<30}");
            let mut first = None;
            for s in &sizes {
                match rows
                    .iter()
                    .find(|r| r.set == set && r.size == *s && r.frame == name)
                {
                    Some(r) => {
                        let f = *first.get_or_insert(r.cost);
                        let _ = write!(
                            line,
                            " {:>15}",
                            format!("{:.0} x{:.2}", r.cost, r.cost / f.max(1.0))
                        );
                    }
                    None => {
                        let _ = write!(line, " {:>15}", "-");
                    }
                }
            }
            println!("{line}");
        }
    }
}

/// Compares xdpguard's figures with a baseline CSV; false if any frame
/// grew by more than `tol` percent.
fn compare(rows: &[Row], path: &str, tol: f64, unit: &str) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or(format!("{path}: empty"))?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("{path}: no column {name}"))
    };
    let (cset, csize, cframe, cunit, ccost, cbare) = (
        col("set")?,
        col("size")?,
        col("frame")?,
        col("unit")?,
        col("xdpguard")?,
        col("bare")?,
    );
    let mut base: HashMap<(String, usize, String), (f64, f64)> = HashMap::new();
    let mut order = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        if get(cunit) != unit {
            return Err(format!(
                "{path}: figures in {}, this run in {unit}: a baseline compares only with the same unit",
                get(cunit)
            ));
        }
        let key = (
            get(cset).to_string(),
            get(csize)
                .parse()
                .map_err(|_| format!("{path}: bad size in {l}"))?,
            get(cframe).to_string(),
        );
        let num = |i: usize| {
            get(i)
                .parse::<f64>()
                .map_err(|_| format!("{path}: bad number in {l}"))
        };
        base.insert(key.clone(), (num(ccost)?, num(cbare)?));
        order.push(key);
    }
    println!("\nagainst the baseline {path} (fail: growth over {tol} %)");
    println!(
        "{:<9} {:>5} {:<30} {:>9} {:>9} {:>8}  {:>6} {:>6}",
        "set", "size", "frame", "baseline", "now", "change", "bare", "now"
    );
    let (mut grew, mut improved, mut new, mut bare_moved) = (0, 0, 0, false);
    for r in rows {
        let key = (r.set.to_string(), r.size, r.frame.to_string());
        let Some(&(b, bb)) = base.get(&key) else {
            println!(
                "{:<9} {:>5} {:<30} {:>9} {:>9.0}  new: not in the baseline",
                r.set, r.size, r.frame, "-", r.cost
            );
            new += 1;
            continue;
        };
        let change = (r.cost - b) / b.max(1.0) * 100.0;
        let mark = if change > tol {
            grew += 1;
            "  GREW"
        } else if change < -tol {
            improved += 1;
            "  improved"
        } else {
            ""
        };
        if (r.bare - bb).abs() > 0.5 {
            bare_moved = true;
        }
        println!(
            "{:<9} {:>5} {:<30} {b:>9.0} {:>9.0} {change:>+7.1}%  {bb:>6.0} {:>6.0}{mark}",
            r.set, r.size, r.frame, r.cost, r.bare
        );
        let _ = r.xdp_filter;
    }
    for key in &order {
        if !rows
            .iter()
            .any(|r| (r.set, r.size, r.frame) == (key.0.as_str(), key.1, key.2.as_str()))
        {
            println!(
                "{:<9} {:>5} {:<30} not measured in this run",
                key.0, key.1, key.2
            );
        }
    }
    if bare_moved {
        println!("the bare XDP_PASS floor differs from the baseline's: another kernel or QEMU than the baseline's?");
    }
    if improved > 0 || new > 0 {
        println!(
            "{improved} frame(s) improved by more than {tol} %, {new} new: refresh the baseline (make icount-baseline) in the commit that made the change, saying why"
        );
    }
    if grew > 0 {
        println!("{grew} frame(s) grew by more than {tol} %: a regression, or a change that must update the baseline (make icount-baseline) and say why");
    }
    Ok(grew == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepest_in_a_small_list() {
        let list: Vec<IpNet> = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.3/32",
            "10.9.9.9/32",
            "10.1.2.4/32",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let d = deepest(&list, false, true).unwrap();
        // 10/8, the branch of 10.1 and 10.9 (/12), 10.1/16, 10.1.2/24, the
        // branch of .3 and .4 (/29), .3.
        assert_eq!(d.net.to_string(), "10.1.2.3/32");
        assert_eq!(d.depth, 6);
        let d = deepest(&list, false, false).unwrap();
        assert_eq!(d.net.to_string(), "10.1.2.0/24");
        assert_eq!(d.addr.to_string(), "10.1.2.0");
        assert_eq!(d.depth, 4);
    }

    #[test]
    fn deepest_of_the_generated_lists() {
        for n in [1usize, 1000, 100_000] {
            let t = Instant::now();
            let deny = cidrs(n, [IpAddr::V4(DROP4), IpAddr::V6(DROP6)], &DENY);
            let allow = cidrs(n, [IpAddr::V4(ALLOW4), IpAddr::V6(ALLOW6)], &ALLOW);
            let mut notes = Vec::new();
            let f = cidr_frames(&deny, &allow, &mut notes);
            for fr in &f {
                eprintln!("{n} {}: {} > {}", fr.name, fr.src, fr.dst);
            }
            eprintln!("{n}: {:?} {:.2} s", notes, t.elapsed().as_secs_f64());
            // From 1000 on, every deepest-entry frame has its entry.
            assert_eq!(f.len(), if n == 1 { 12 } else { 16 });
        }
        for k in [1usize, 16, 4096] {
            let mut notes = Vec::new();
            for fr in compound_frames(k, &mut notes) {
                eprintln!("{k} {}: {} > {}", fr.name, fr.src, fr.dst);
            }
            assert_eq!(compound_ruleset(k).rules.len(), k);
        }
    }
}

#[cfg(test)]
mod compare_tests {
    use super::*;

    fn row(frame: &'static str, cost: f64) -> Row {
        Row {
            set: "cidrs",
            size: 1,
            frame,
            cost,
            bare: 91.0,
            xdp_filter: None,
        }
    }

    #[test]
    fn growth_over_the_tolerance_fails_and_improvement_does_not() {
        let path = std::env::temp_dir().join(format!("xg-baseline-{}.csv", std::process::id()));
        let text = format!(
            "# a comment\n{CSV_HEADER}cidrs,1,a,x,y,insn,1000.0,91.0,1,-,-,-,pass\n\
             cidrs,1,b,x,y,insn,1000.0,91.0,1,-,-,-,drop\n"
        );
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        assert!(compare(&[row("a", 1020.0), row("b", 900.0)], p, 2.0, "insn").unwrap());
        assert!(!compare(&[row("a", 1021.0), row("b", 1000.0)], p, 2.0, "insn").unwrap());
        assert!(compare(&[row("a", 1000.0)], p, 2.0, "ns").is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
