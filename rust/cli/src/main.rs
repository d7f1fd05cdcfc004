// SPDX-License-Identifier: GPL-2.0

//! `xdpguard`: apply rule sets to the loaded xdpguard module and read its counters.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use xdpguard::sys::Failure;
use xdpguard_abi::{MAP_STATS, RULES_PER_GENERATION, STAT_COUNT, STAT_NAMES};

mod cmd;
use xdpguard_rules::RuleSet;

mod generate;

/// Control the xdpguard XDP firewall module.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  xdpguard check rules.toml\n  xdpguard apply rules.toml\n  xdpguard status\n  xdpguard top\n  xdpguard stats --json\n\nExit codes: 0 success, 1 operation failed, 2 bad usage or input,\n3 module not loaded, 4 insufficient privilege."
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
    #[command(
        after_help = "Examples:\n  xdpguard log\n  xdpguard log --json --count 10 --timeout 5"
    )]
    Log(cmd::log::Args),
    /// Write samples of dropped packets to a pcap file (tcpdump -r FILE).
    #[command(
        after_help = "Examples:\n  xdpguard capture -w drops.pcap --count 100\n  xdpguard capture -w - --timeout 10 | tcpdump -n -r -"
    )]
    Capture(cmd::capture::Args),
    /// Pin the module's maps under /sys/fs/bpf/xdpguard (idempotent;
    /// replaces stale pins).
    #[command(
        after_help = "Examples:\n  xdpguard pin\n  xdpguard pin --wait 30    # from udev, as the module loads\n  bpftool map dump pinned /sys/fs/bpf/xdpguard/xdpg_active"
    )]
    Pin(cmd::pin::PinArgs),
    /// Remove /sys/fs/bpf/xdpguard and every pin in it (also stale ones).
    Unpin,
    /// Module, interfaces, program, maps, pins, rule set and counters.
    #[command(
        after_help = "Examples:\n  xdpguard status\n  xdpguard status --json | jq .interfaces"
    )]
    Status(cmd::status::Args),
    /// Live rates per interface, verdict and reason, redrawn every interval.
    #[command(
        visible_alias = "watch",
        after_help = "Examples:\n  xdpguard top\n  xdpguard top --interval 2\n  xdpguard watch --json --count 5 | jq .interfaces"
    )]
    Top(cmd::top::Args),
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

fn run(cli: Cli) -> Result<(), Failure> {
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
            let guard = xdpguard::sys::open_guard()?;
            // Guard::apply compiles once, for the generation it switches to.
            let img = guard.apply(&rs).map_err(|e| format!("{file}: {e}"))?;
            println!(
                "{file}: applied {}; generation {} active",
                summary(&img),
                img.generation
            );
        }
        Cmd::Log(a) => cmd::log::run(a)?,
        Cmd::Capture(a) => cmd::capture::run(a)?,
        Cmd::Pin(a) => cmd::pin::pin(a)?,
        Cmd::Unpin => cmd::pin::unpin()?,
        Cmd::Status(a) => cmd::status::run(a)?,
        Cmd::Top(a) => cmd::top::run(a)?,
        Cmd::Stats { json, rules } => {
            let guard = xdpguard::sys::open_guard()?;
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
            ExitCode::from(e.code)
        }
    }
}
