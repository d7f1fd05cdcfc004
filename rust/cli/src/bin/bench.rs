// SPDX-License-Identifier: GPL-2.0

//! Benchmark of the xdpguard program: ns per packet by `BPF_PROG_TEST_RUN` at growing rule-set sizes, against a bare `XDP_PASS` program and xdp-filter measured in the same run.
//!
//! Usage: `xdpguard-bench [--sizes 1,1000,100000,1000000] [--repeat N]
//! [--runs N] [--xdp-filter-max N] [--csv FILE]`. Needs the module loaded
//! and root. Absolute numbers depend on the machine (and mean little under
//! QEMU's TCG); the ratios are measured within one run and are the result.

use std::{
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
    /// Rule-set sizes (CIDRs in one deny list, plus a few compound rules).
    #[arg(long, value_delimiter = ',', default_value = "1,1000,100000,1000000")]
    sizes: Vec<usize>,
    /// Program runs per measurement (the kernel reports the mean).
    #[arg(long, default_value_t = 100_000)]
    repeat: u32,
    /// Measurements per figure; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Largest size loaded into xdp-filter (one command per address).
    #[arg(long, default_value_t = 1000)]
    xdp_filter_max: usize,
    /// Also write the results as CSV here.
    #[arg(long)]
    csv: Option<String>,
}

const DROP4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const DROP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x66);
const PASS4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const PASS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);

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

fn v4(src: Ipv4Addr, proto: u8, dport: u16, vlan: bool) -> Vec<u8> {
    let mut p = eth(0x0800, vlan);
    p.extend_from_slice(&[0x45, 0, 0, 46, 0, 1, 0, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&[192, 0, 2, 1]);
    p.extend(l4(proto, dport));
    // The total length is the datagram's; the padding after it is not.
    let ip = if vlan { 18 } else { 14 };
    let total = (p.len() - ip) as u16;
    p[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    p.resize(p.len().max(64), 0);
    p
}

fn v6(src: Ipv6Addr, proto: u8, dport: u16, ext: bool) -> Vec<u8> {
    let mut p = eth(0x86dd, false);
    let first = if ext { 0 } else { proto };
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 40, first, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
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

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("ipv4 udp pass", v4(PASS4, 17, 53, false)),
        ("ipv4 udp drop", v4(DROP4, 17, 53, false)),
        ("ipv4 tcp pass", v4(PASS4, 6, 80, false)),
        (
            "ipv4 tcp/22 allow",
            v4(Ipv4Addr::new(192, 0, 2, 7), 6, 22, false),
        ),
        ("vlan ipv4 udp drop", v4(DROP4, 17, 53, true)),
        ("ipv6 tcp pass", v6(PASS6, 6, 80, false)),
        ("ipv6 udp drop", v6(DROP6, 17, 53, false)),
        ("ipv6 ext-hdr tcp pass", v6(PASS6, 6, 443, true)),
    ]
}

/// `n` CIDRs of mixed lengths, always covering DROP4 and DROP6.
fn cidrs(n: usize) -> Vec<IpNet> {
    let mut out = vec![
        IpNet::from(IpAddr::V4(DROP4)),
        IpNet::from(IpAddr::V6(DROP6)),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < n.max(2) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let net = if out.len() % 4 == 3 {
            let addr =
                Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | ((x as u128) << 16));
            let len = [48u8, 56, 64, 128][(x >> 60) as usize & 3];
            IpNet::V6(
                Ipv6Net::new(addr, len)
                    .map(|n| n.trunc())
                    .unwrap_or_default(),
            )
        } else {
            // 10.0.0.0/8 minus DROP4's /24 and the pass sources.
            let addr = Ipv4Addr::from(0x0a00_0000 | (x as u32 & 0x00ff_ffff) | 0x0080_0000);
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

fn ruleset(n: usize) -> RuleSet {
    let mut rs = RuleSet::default();
    rs.rules.push(Rule {
        action: Some(Action::Deny),
        src: cidrs(n),
        ..Default::default()
    });
    for (action, proto, port) in [
        (Action::Allow, 6, 22),
        (Action::Deny, 6, 23),
        (Action::Deny, 17, 5353),
    ] {
        rs.rules.push(Rule {
            action: Some(action),
            src: vec!["192.0.2.0/24"
                .parse()
                .unwrap_or(IpNet::from(IpAddr::V4(PASS4)))],
            proto: Some(proto),
            dport: Some((port, port)),
            ..Default::default()
        });
    }
    rs
}

fn median(prog: &Prog, frame: &[u8], repeat: u32, runs: usize) -> Result<(f64, u32), String> {
    let mut v = Vec::new();
    let mut ret = 0;
    for _ in 0..runs {
        let r = prog
            .test_run(frame, repeat)
            .map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
        v.push(r.duration_ns as f64);
        ret = r.retval;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok((v[v.len() / 2], ret))
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

/// Loads xdp-filter on a dummy device with `n` source addresses denied
/// (exact addresses: xdp-filter has no CIDRs). Returns its program and
/// the seconds the loading took.
fn xdp_filter(n: usize) -> Result<(Prog, f64), String> {
    let _ = sh("xdp-filter unload xgbench0 2>/dev/null; ip link del xgbench0 2>/dev/null");
    sh("ip link add xgbench0 type dummy && ip link set xgbench0 up")?;
    let start = Instant::now();
    sh("xdp-filter load -m skb -p allow -f ipv4,ipv6,udp,tcp xgbench0")?;
    let mut script = String::new();
    for net in cidrs(n).iter().take(n.max(2)) {
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

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpguard-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let guard = Guard::open().map_err(|e| e.to_string())?;
    let prog = guard.prog().map_err(|e| e.to_string())?;
    let _lock = ctl::lock().map_err(|e| e.to_string())?;
    let bare = Prog::load_xdp_pass().map_err(|e| format!("loading the XDP_PASS baseline: {e}"))?;
    let have_xdp_filter = sh("command -v xdp-filter").is_ok();
    let mut csv = String::from(
        "size,frame,xdpguard_ns,bare_ns,ratio_bare,xdp_filter_ns,ratio_xdp_filter,verdict\n",
    );
    println!(
        "xdpguard-bench: ns per packet (BPF_PROG_TEST_RUN, mean of {} runs, median of {})",
        a.repeat, a.runs
    );
    println!("under QEMU TCG absolute numbers are not meaningful; ratios within a size are");
    for &n in &a.sizes {
        let rs = ruleset(n);
        let t = Instant::now();
        ctl::commit(&guard, &rs, &mut ctl::Quiet).map_err(|e| e.to_string())?;
        let apply = t.elapsed().as_secs_f64();
        let xf = if have_xdp_filter && n <= a.xdp_filter_max {
            Some(xdp_filter(n)?)
        } else {
            None
        };
        println!();
        print!("{n} CIDRs: xdpguard apply {apply:.2} s");
        match &xf {
            Some((_, s)) => println!(", xdp-filter load of {} addresses {s:.2} s", n.max(2)),
            None => {
                println!(", xdp-filter not loaded (over --xdp-filter-max: one command per address)")
            }
        }
        println!(
            "{:<24} {:>10} {:>10} {:>8} {:>12} {:>8}  verdict",
            "frame", "xdpguard", "XDP_PASS", "ratio", "xdp-filter", "ratio"
        );
        for (name, frame) in frames() {
            let (ns, ret) = median(&prog, &frame, a.repeat, a.runs)?;
            let (base, _) = median(&bare, &frame, a.repeat, a.runs)?;
            let xfns = match &xf {
                Some((p, _)) => Some(median(p, &frame, a.repeat, a.runs)?.0),
                None => None,
            };
            let verdict = if ret == 1 { "drop" } else { "pass" };
            let ratio = ns / base.max(1.0);
            let (xs, xr) = match xfns {
                Some(x) => (format!("{x:.0}"), format!("{:.2}", ns / x.max(1.0))),
                None => ("-".into(), "-".into()),
            };
            println!("{name:<24} {ns:>10.0} {base:>10.0} {ratio:>8.2} {xs:>12} {xr:>8}  {verdict}");
            let _ = writeln!(
                csv,
                "{n},{name},{ns:.1},{base:.1},{ratio:.3},{xs},{xr},{verdict}"
            );
        }
        if xf.is_some() {
            let _ = sh("xdp-filter unload xgbench0; ip link del xgbench0");
        }
    }
    println!("\nratio: xdpguard / XDP_PASS and xdpguard / xdp-filter on the same frame (xdp-filter matches");
    println!("exact addresses only, so it holds the list's addresses, not its CIDRs)");
    if let Some(path) = &a.csv {
        std::fs::write(path, csv).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}
