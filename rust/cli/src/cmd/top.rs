// SPDX-License-Identifier: GPL-2.0

//! `xdpguard top` (alias `watch`): per-second rates per interface, verdict
//! and reason, redrawn in place on a terminal, plain lines otherwise.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use xdpguard_abi::*;
use xdpguard_user::{
    rates::{self, Rate},
    samples,
    sys::{self, Failure, Opened},
    sysfs, Guard,
};

/// Options of `top`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds between updates.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub interval: f64,
    /// Stop after this many updates (default: until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
    /// One JSON object per interval and line.
    #[arg(long)]
    pub json: bool,
}

struct Snapshot {
    at: Instant,
    ifaces: Vec<(u32, IfCounters)>,
    stats: Vec<Counter>,
}

fn snapshot(guard: &Guard) -> Result<Snapshot, Failure> {
    Ok(Snapshot {
        at: Instant::now(),
        ifaces: guard.iface_counters()?,
        stats: guard.stats()?,
    })
}

fn rate_json(r: Rate) -> Value {
    json!({"pps": round(r.pps), "bps": round(r.bps)})
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The rates between two snapshots as the JSON object `top --json` prints.
fn rates_between(a: &Snapshot, b: &Snapshot) -> Value {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let get = |s: &Snapshot, i: u32| {
        s.ifaces
            .iter()
            .find(|(k, _)| *k == i)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    };
    // Attached interfaces first (idle ones show 0), then any other
    // interface the program has seen frames on.
    let links = sysfs::links();
    let mut ifs: Vec<(u32, String, Option<String>)> = links
        .iter()
        .map(|l| (l.ifindex, l.ifname.clone(), Some(l.mode.clone())))
        .collect();
    for (i, _) in &b.ifaces {
        if !ifs.iter().any(|(k, _, _)| k == i) {
            ifs.push((*i, samples::ifname(*i), None));
        }
    }
    let interfaces: Vec<Value> = ifs
        .into_iter()
        .map(|(i, name, mode)| {
            let (p, n) = (get(a, i), get(b, i));
            json!({
                "name": name, "ifindex": i, "mode": mode,
                "pass": rate_json(rates::rate(p.pass, n.pass, secs)),
                "drop": rate_json(rates::rate(p.drop, n.drop, secs)),
            })
        })
        .collect();
    let mut verdicts = serde_json::Map::new();
    let mut reasons = serde_json::Map::new();
    for (i, name) in STAT_NAMES.iter().enumerate() {
        let r = rate_json(rates::rate(
            a.stats.get(i).copied().unwrap_or_default(),
            b.stats.get(i).copied().unwrap_or_default(),
            secs,
        ));
        if i < 2 {
            verdicts.insert(name.to_string(), r);
        } else {
            reasons.insert(name.to_string(), r);
        }
    }
    json!({
        "time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "interval": round(secs * 1000.0) / 1000.0,
        "interfaces": interfaces,
        "verdicts": verdicts,
        "reasons": reasons,
    })
}

fn f(v: &Value) -> String {
    rates::human(v.as_f64().unwrap_or(0.0))
}

fn table(v: &Value) -> String {
    let mut out = String::new();
    out += &format!(
        "{:<16} {:<8} {:>10} {:>10} {:>10} {:>10}\n",
        "interface", "mode", "pass pps", "pass B/s", "drop pps", "drop B/s"
    );
    for i in v["interfaces"].as_array().into_iter().flatten() {
        out += &format!(
            "{:<16} {:<8} {:>10} {:>10} {:>10} {:>10}\n",
            i["name"].as_str().unwrap_or("?"),
            i["mode"].as_str().unwrap_or("-"),
            f(&i["pass"]["pps"]),
            f(&i["pass"]["bps"]),
            f(&i["drop"]["pps"]),
            f(&i["drop"]["bps"])
        );
    }
    out += &format!("\n{:<16} {:>10} {:>10}\n", "verdict/reason", "pps", "B/s");
    for key in ["verdicts", "reasons"] {
        for (n, r) in v[key].as_object().into_iter().flatten() {
            out += &format!("{n:<16} {:>10} {:>10}\n", f(&r["pps"]), f(&r["bps"]));
        }
    }
    out
}

/// One plain line per interval for pipes and logs.
fn line(v: &Value) -> String {
    let mut parts = Vec::new();
    for i in v["interfaces"].as_array().into_iter().flatten() {
        parts.push(format!(
            "{} pass {} drop {}",
            i["name"].as_str().unwrap_or("?"),
            f(&i["pass"]["pps"]),
            f(&i["drop"]["pps"])
        ));
    }
    for (n, r) in v["reasons"].as_object().into_iter().flatten() {
        if r["pps"].as_f64().unwrap_or(0.0) > 0.0 {
            parts.push(format!("{n} {}", f(&r["pps"])));
        }
    }
    format!("{} pps: {}", v["time"], parts.join(", "))
}

/// Runs `top`.
pub fn run(a: Args) -> Result<(), Failure> {
    if !a.interval.is_finite() || a.interval <= 0.0 || a.interval > 3600.0 {
        return Err(Failure::new(
            xdpguard_user::sys::EXIT_USAGE,
            "--interval must be a number of seconds above 0 and at most 3600",
        ));
    }
    let mut guard = xdpguard_user::sys::open_guard()?;
    let tty = !a.json && std::io::stdout().is_terminal();
    let mut prev = snapshot(&guard)?;
    let mut n = 0;
    while a.count.is_none_or(|c| n < c) {
        // The interval in short naps, each followed by a look at the
        // module: an rmmod ends `top` within one nap, whatever the interval.
        let end = prev.at + Duration::from_secs_f64(a.interval);
        let state = loop {
            let left = end.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(super::log::MODULE_CHECK));
            match sys::opened_state(&guard) {
                // After a quick reload the new module may still be
                // initialising: wait for it.
                Opened::Unloaded if sys::module_coming() => {
                    std::thread::sleep(super::log::MODULE_CHECK)
                }
                Opened::Current if Instant::now() < end => {}
                state => break state,
            }
        };
        match state {
            Opened::Current => {}
            Opened::Unloaded => return Err(Failure::not_loaded()),
            Opened::Reloaded => {
                // The maps held count nothing any more: start over on the
                // new module's.
                guard = sys::open_guard()?;
                prev = snapshot(&guard)?;
                continue;
            }
        }
        let now = snapshot(&guard)?;
        let v = rates_between(&prev, &now);
        let mut out = std::io::stdout().lock();
        let text = if a.json {
            format!("{v}\n")
        } else if tty {
            // Home, draw, clear what is left of the last frame.
            format!(
                "\x1b[H\x1b[2Jxdpguard top, every {} s (Ctrl-C quits)\n\n{}",
                a.interval,
                table(&v)
            )
        } else {
            format!("{}\n", line(&v))
        };
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            // The reader went away (e.g. `| head`): stop quietly.
            return Ok(());
        }
        prev = now;
        n += 1;
    }
    Ok(())
}
