// SPDX-License-Identifier: GPL-2.0

//! `xdpguard`: apply rule sets to the loaded xdpguard module and read its counters.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use xdpguard::Guard;
use xdpguard_abi::{MAP_STATS, RULES_PER_GENERATION, STAT_COUNT, STAT_NAMES};
use xdpguard_rules::RuleSet;

mod generate;

/// Control the xdpguard XDP firewall module.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  xdpguard check rules.toml\n  xdpguard apply rules.toml\n  xdpguard stats --json"
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
    /// Validate a rule file, then switch to it atomically.
    Apply {
        /// The rule file.
        file: String,
        /// Validate and compile only; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
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
    /// Write man pages or shell completions (for packagers; see
    /// Documentation/packaging.rst).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: generate::What,
    },
}

fn load(file: &str) -> Result<RuleSet, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    RuleSet::from_toml(&text).map_err(|e| match e.line {
        Some(l) => format!("{file}:{l}: {}", e.message),
        None => format!("{file}: {}", e.message),
    })
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Generate { what } => generate::run(Cli::command(), what)?,
        Cmd::Check { file } => {
            let rs = load(&file)?;
            xdpguard_rules::compile(&rs, 0, &xdpguard::ifindex)
                .map_err(|e| format!("{file}: {e}"))?;
            println!("{file}: {} rules, valid", rs.rules.len());
        }
        Cmd::Apply { file, dry_run } => {
            let rs = load(&file)?;
            let compound = rs.rules.iter().filter(|r| !r.is_address_only()).count();
            let summary = |img: &xdpguard_rules::Image| {
                format!(
                    "{} rules ({compound} compound), {} IPv4 and {} IPv6 prefixes, {} MACs",
                    rs.rules.len(),
                    img.v4.len(),
                    img.v6.len(),
                    img.macs.len()
                )
            };
            if dry_run {
                let img = xdpguard_rules::compile(&rs, 0, &xdpguard::ifindex)
                    .map_err(|e| format!("{file}: {e}"))?;
                println!(
                    "{file}: {}; valid, nothing applied (--dry-run)",
                    summary(&img)
                );
                return Ok(());
            }
            let guard = Guard::open().map_err(|e| e.to_string())?;
            // Guard::apply compiles once, for the generation it switches to.
            let img = guard.apply(&rs).map_err(|e| format!("{file}: {e}"))?;
            println!(
                "{file}: applied {}; generation {} active",
                summary(&img),
                img.generation
            );
        }
        Cmd::Log { count, timeout } => {
            let guard = Guard::open().map_err(|e| e.to_string())?;
            let mut ring = guard.samples().map_err(|e| e.to_string())?;
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
            let guard = Guard::open().map_err(|e| e.to_string())?;
            let stats = guard
                .counters(MAP_STATS, STAT_COUNT)
                .map_err(|e| e.to_string())?;
            let per_rule = if rules {
                guard
                    .rule_counters(RULES_PER_GENERATION)
                    .map_err(|e| e.to_string())?
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
            eprintln!("xdpguard: {e}");
            ExitCode::FAILURE
        }
    }
}
