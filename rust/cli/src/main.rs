// SPDX-License-Identifier: GPL-2.0

//! `xdpguard`: apply rule sets to the loaded xdpguard module and read its counters.

mod cmd;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use xdpguard_abi::{RULES_PER_GENERATION, STAT_NAMES};
use xdpguard_user::sys::Failure;

mod generate;
mod manpages;

/// Control the xdpguard XDP firewall module.
#[derive(Parser)]
#[command(
    name = "xdpguard",
    version,
    about,
    after_help = "Examples:\n  xdpguard check rules.toml\n  xdpguard apply --dry-run rules.toml\n  xdpguard apply rules.toml\n  xdpguard add deny --src 10.0.0.0/8 --proto tcp --dport 22\n  xdpguard list\n  xdpguard verify\n  xdpguard import --deny blocklist.txt\n  xdpguard export > saved.toml\n  xdpguard status\n  xdpguard top\n  xdpguard stats --json\n\nExit codes: 0 success, 1 operation failed, 2 bad usage or input,\n3 module not loaded, 4 insufficient privilege."
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
    /// Save the active rule set to /etc/xdpguard/rules.toml for boot.
    Save(cmd::saved::Save),
    /// Apply the saved rule set (at boot: --wait for the module).
    Restore(cmd::saved::Restore),
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
    /// Check that both generations of the rule maps hold exactly what
    /// xdpguard wrote (lists every entry another program changed).
    Verify(cmd::verify::Verify),
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
    /// Counters and state in Prometheus' text format, for node_exporter's
    /// textfile collector.
    #[command(
        after_help = "Examples:\n  xdpguard metrics\n  xdpguard metrics -o /var/lib/prometheus/node-exporter/xdpguard.prom"
    )]
    Metrics(cmd::metrics::Args),
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

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::Generate { what } => generate::run(Cli::command(), what)?,
        Cmd::Check { file } => {
            let rs = cmd::apply::load(&file)?;
            xdpguard_rules::compile(&rs, 0, &xdpguard_user::ifindex)
                .map_err(|e| Failure::usage(format!("{file}: {e}")))?;
            println!("{file}: {} rules, valid", rs.rules.len());
        }
        Cmd::Apply(a) => return cmd::apply::apply(a),
        Cmd::Export(e) => return cmd::apply::export(e),
        Cmd::Save(s) => return cmd::saved::save(s),
        Cmd::Restore(r) => return cmd::saved::restore(r),
        Cmd::Add(a) => return cmd::rules::add(a),
        Cmd::Delete(d) => return cmd::rules::delete(d),
        Cmd::List(l) => return cmd::rules::list(l),
        Cmd::Set(x) => return cmd::rules::set(x),
        Cmd::Limiter(l) => return cmd::rules::limiter(l),
        Cmd::Import(i) => return cmd::import::import(i),
        Cmd::Verify(v) => return cmd::verify::run(v),
        Cmd::Log(a) => cmd::log::run(a)?,
        Cmd::Capture(a) => cmd::capture::run(a)?,
        Cmd::Pin(a) => cmd::pin::pin(a)?,
        Cmd::Unpin => cmd::pin::unpin()?,
        Cmd::Status(a) => cmd::status::run(a)?,
        Cmd::Metrics(a) => cmd::metrics::run(a)?,
        Cmd::Top(a) => cmd::top::run(a)?,
        Cmd::Stats { json, rules } => {
            let guard = xdpguard_user::sys::open_guard()?;
            let stats = guard.stats()?;
            let per_rule = if rules {
                guard.rule_counters(RULES_PER_GENERATION)?
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
            eprintln!("xdpguard: {}", e.msg());
            ExitCode::from(e.code())
        }
    }
}
