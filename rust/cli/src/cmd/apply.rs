// SPDX-License-Identifier: GPL-2.0

//! `apply` and `export`: switch to a rule file atomically (or show what would change), and write the active rule set back as a file.

use clap::Args;
use xdpguard_rules::RuleSet;

use xdpguard_user::ctl::{self, Failure};

/// `xdpguard apply`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    xdpguard apply rules.toml\n  \
    xdpguard apply --dry-run rules.toml   # validate, print the diff, change nothing\n\n\
    Exit status: 0 applied (or, with --dry-run, valid; the diff may be empty); \
    2 invalid file, nothing applied; 1 the kernel refused (nothing applied); 3 module not loaded.")]
pub struct Apply {
    /// The rule file (TOML; Documentation/rules.rst).
    pub file: String,
    /// Validate all of the file and print how it differs from the active
    /// rule set; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `xdpguard export`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  xdpguard export > saved.toml && xdpguard apply saved.toml")]
pub struct Export {
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,
}

/// Reads and checks a rule file (exit 2 with FILE:LINE on error).
pub fn load(file: &str) -> Result<RuleSet, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("{file}: {e}")))?;
    RuleSet::from_toml(&text).map_err(|e| {
        Failure::usage(match e.line {
            Some(l) => format!("{file}:{l}: {}", e.message),
            None => format!("{file}: {}", e.message),
        })
    })
}

/// Reads a rule file and checks what needs no module (exit 2 before
/// exit 3): its syntax and values, and its interface names.
pub fn checked(file: &str) -> Result<RuleSet, Failure> {
    let rs = load(file)?;
    super::rules::check_interfaces(&rs.interfaces)
        .map_err(|e| Failure::usage(format!("{file}: {}", e.msg())))?;
    Ok(rs)
}

/// Runs `xdpguard apply`.
pub fn apply(a: Apply) -> Result<(), Failure> {
    let file = &a.file;
    let rs = checked(file)?;
    if a.dry_run {
        let guard = ctl::open()?;
        // What only the compiler (interface names) and the maps (room)
        // know is checked too, as apply would.
        ctl::check(&guard, &rs).map_err(|e| match e.code() {
            ctl::EXIT_USAGE => Failure::usage(format!("{file}: {}", e.msg())),
            _ => e,
        })?;
        let active = ctl::active(&guard)?;
        let changes = xdpguard_rules::diff::diff(&active.rules, &rs);
        for c in &changes {
            println!("{c}");
        }
        println!(
            "{file}: valid; {} change{} from the active rule set; nothing applied (--dry-run)",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        );
        return Ok(());
    }
    commit_file(file, &rs)
}

/// Makes `rs`, read from `file` by [`checked`], the active rule set, and
/// says what was applied (`apply`, `restore`).
pub fn commit_file(file: &str, rs: &RuleSet) -> Result<(), Failure> {
    let guard = ctl::open()?;
    // A module that goes away while this waits or writes ends it (exit 3).
    ctl::watch(&guard);
    let _lock = ctl::lock()?;
    // commit compiles (and so checks) all of it before touching anything.
    let done = ctl::commit(&guard, rs, &mut ctl::Quiet).map_err(|e| match e.code() {
        ctl::EXIT_USAGE => Failure::usage(format!("{file}: {}", e.msg())),
        _ => e,
    })?;
    let compound = rs.rules.iter().filter(|r| !r.is_address_only()).count();
    println!(
        "{file}: applied {} rules ({compound} compound), {} IPv4 and {} IPv6 prefixes, {} MACs; \
         generation {} active",
        rs.rules.len(),
        done.v4,
        done.v6,
        done.macs,
        done.generation
    );
    restored_note(&done);
    Ok(())
}

/// The line saying what a commit put back that another program had
/// changed (nothing when it changed nothing).
pub fn restored_note(done: &ctl::Committed) {
    if done.restored > 0 {
        println!(
            "restored {} map entr{} of the idle generation that another program had changed \
             (xdpguard verify shows such changes)",
            done.restored,
            if done.restored == 1 { "y" } else { "ies" }
        );
    }
}

/// Runs `xdpguard export`.
pub fn export(e: Export) -> Result<(), Failure> {
    let guard = ctl::open()?;
    let active = ctl::active(&guard)?;
    let text = active.rules.to_toml();
    match e.output {
        Some(path) => {
            std::fs::write(&path, text).map_err(|err| Failure::failed(format!("{path}: {err}")))?
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (export | head) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}
