// SPDX-License-Identifier: GPL-2.0

//! `xdpguard`: apply rule sets to the loaded xdpguard module and read its counters.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xdpguard::ctl::Failure;
use xdpguard::Guard;
use xdpguard_abi::{MAP_STATS, RULES_PER_GENERATION, STAT_COUNT, STAT_NAMES};

/// Control the xdpguard XDP firewall module.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  xdpguard check rules.toml\n  xdpguard apply --dry-run rules.toml\n  xdpguard apply rules.toml\n  xdpguard add deny --src 10.0.0.0/8 --proto tcp --dport 22\n  xdpguard list\n  xdpguard import --deny blocklist.txt\n  xdpguard export > saved.toml\n  xdpguard stats --json"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a rule file without applying it.
    Check {
        /// The rule file (TOML; see Documentation/rules.rst).
        file: String,
    },
    /// Validate a rule file, then switch to it atomically (--dry-run: show the diff).
    Apply(cmd::apply::Apply),
    /// Write the active rule set as a rule file (apply takes it back).
    Export(cmd::apply::Export),
    /// Add a rule to the active rule set.
    Add(cmd::rules::Add),
    /// Delete a rule (by number, or written as it was added).
    Delete(cmd::rules::Delete),
    /// List the active rule set with per-rule packet and byte counters.
    List(cmd::rules::List),
    /// Change a setting: default policy, monitor mode, per-interface policy, ...
    Set(cmd::rules::Set),
    /// Define or remove rate limiters.
    #[command(subcommand)]
    Limiter(cmd::rules::Limiter),
    /// Import a list of addresses (one per line) as a deny or allow rule.
    Import(cmd::import::Import),
    /// Print samples of dropped packets as they come (rate-limited by the
    /// rule set's `samples` setting).
    Log {
        /// Stop after this many samples.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Verdict and reason counters (and per-rule counters with --rules).
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also per-rule counters, by rule number (1 = first rule of the file).
        #[arg(long)]
        rules: bool,
    },
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::Check { file } => {
            let rs = cmd::apply::load(&file)?;
            xdpguard_rules::compile(&rs, 0, &xdpguard::ifindex)
                .map_err(|e| Failure::usage(format!("{file}: {e}")))?;
            println!("{file}: {} rules, valid", rs.rules.len());
        }
        Cmd::Apply(a) => return cmd::apply::apply(a),
        Cmd::Export(e) => return cmd::apply::export(e),
        Cmd::Add(a) => return cmd::rules::add(a),
        Cmd::Delete(d) => return cmd::rules::delete(d),
        Cmd::List(l) => return cmd::rules::list(l),
        Cmd::Set(x) => return cmd::rules::set(x),
        Cmd::Limiter(l) => return cmd::rules::limiter(l),
        Cmd::Import(i) => return cmd::import::import(i),
        Cmd::Log { count, timeout } => {
            let guard = Guard::open().map_err(Failure::from)?;
            let mut ring = guard.samples().map_err(Failure::from)?;
            let start = std::time::Instant::now();
            let mut seen = 0;
            loop {
                ring.poll(|rec| {
                    if count.is_none_or(|c| seen < c) {
                        if let Some(line) = xdpguard::describe_sample(rec) {
                            println!("{line}");
                            seen += 1;
                        }
                    }
                });
                let done = count.is_some_and(|c| seen >= c)
                    || timeout.is_some_and(|t| start.elapsed().as_secs_f64() >= t);
                if done {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Cmd::Stats { json, rules } => {
            let guard = Guard::open().map_err(Failure::from)?;
            let stats = guard
                .counters(MAP_STATS, STAT_COUNT)
                .map_err(Failure::from)?;
            let per_rule = if rules {
                guard
                    .rule_counters(RULES_PER_GENERATION)
                    .map_err(Failure::from)?
            } else {
                Vec::new()
            };
            if json {
                let mut obj = serde_json::Map::new();
                for (name, c) in STAT_NAMES.iter().zip(&stats) {
                    obj.insert(
                        name.to_string(),
                        serde_json::json!({"packets": c.packets, "bytes": c.bytes}),
                    );
                }
                let mut out = serde_json::json!({ "counters": obj });
                if rules {
                    let r: Vec<_> = per_rule
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.packets > 0)
                        .map(|(i, c)| serde_json::json!({"rule": i + 1, "packets": c.packets, "bytes": c.bytes}))
                        .collect();
                    out["rules"] = serde_json::Value::Array(r);
                }
                println!("{out}");
            } else {
                println!("{:<14} {:>12} {:>14}", "counter", "packets", "bytes");
                for (name, c) in STAT_NAMES.iter().zip(&stats) {
                    println!("{name:<14} {:>12} {:>14}", c.packets, c.bytes);
                }
                for (i, c) in per_rule.iter().enumerate().filter(|(_, c)| c.packets > 0) {
                    println!(
                        "{:<14} {:>12} {:>14}",
                        format!("rule {}", i + 1),
                        c.packets,
                        c.bytes
                    );
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpguard: {}", e.msg);
            ExitCode::from(e.code)
        }
    }
}
