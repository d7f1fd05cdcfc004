// SPDX-License-Identifier: GPL-2.0

//! `verify`: whether both generations of the rule maps hold exactly what xdpguard wrote into them, entry by entry; changes nothing.

use clap::Args;
use serde_json::{json, Value};

use xdpguard_user::ctl::{self, Drift, Failure, GenCheck};

/// `xdpguard verify`.
#[derive(Args, Debug)]
#[command(
    after_help = "Reads every rule map back and compares both generations (the \
    active one and the idle one) with xdpguard's record of what it wrote, then lists \
    each entry that differs (map, key, expected, found): entries changed or added by \
    another program such as `bpftool map update`. Changes nothing; `xdpguard apply FILE` \
    (or any rule change) writes the rule set again and puts the idle generation back.\n\n\
    Examples:\n  xdpguard verify\n  xdpguard verify --json | jq '.generations[].drift'\n\n\
    Exit status: 0 both generations hold what xdpguard wrote; 1 something differs \
    (or a generation has no valid record); 3 module not loaded; 4 not root."
)]
pub struct Verify {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn drift_json(d: &Drift) -> Value {
    json!({
        "generation": d.generation,
        "map": d.map.name(),
        "key": d.key,
        "key_hex": d.key_hex,
        "expected": d.expected,
        "found": d.found,
    })
}

/// One generation's result, as `verify --json` and `list --json` give it.
pub fn gen_json(c: &GenCheck) -> Value {
    json!({
        "generation": c.generation,
        "active": c.active,
        "tag": format!("{:08x}", c.tag),
        "origin": c.origin,
        "checked": c.checked,
        "clean": c.clean(),
        "maps": c.maps,
        "drift": c.drift.iter().map(drift_json).collect::<Vec<_>>(),
        "note": c.note,
    })
}

/// Keys of no generation, as JSON.
pub fn foreign_json(v: &ctl::Verification) -> Value {
    Value::Array(v.foreign.iter().map(drift_json).collect())
}

/// `  xdpg_ports 458774 (...): expected 0x1, found 0x0` lines.
pub fn print_drift(d: &[Drift], limit: usize, to_stderr: bool) {
    let line = |s: String| {
        if to_stderr {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    for x in d.iter().take(limit) {
        line(format!("  {x}"));
    }
    if d.len() > limit {
        line(format!(
            "  ... and {} more (xdpguard verify lists all)",
            d.len() - limit
        ));
    }
}

/// Runs `xdpguard verify`.
pub fn run(a: Verify) -> Result<(), Failure> {
    let guard = ctl::open()?;
    let v = ctl::verify(&guard, true, true)?;
    if a.json {
        let out = json!({
            "clean": v.clean(),
            "active": v.active,
            "entries": v.entries(),
            "generations": v.gens.iter().map(gen_json).collect::<Vec<_>>(),
            "foreign": foreign_json(&v),
        });
        println!("{out}");
    } else {
        for c in &v.gens {
            let head = format!(
                "generation {} ({}, tag {:08x}, {})",
                c.generation,
                if c.active { "active" } else { "idle" },
                c.tag,
                c.origin
            );
            let note = c.note.as_ref().map_or(String::new(), |n| format!(" ({n})"));
            if c.clean() {
                println!("{head}: holds what xdpguard wrote{note}");
            } else if c.origin == "unrecorded" {
                println!("{head}: cannot be checked{note}");
            } else {
                println!(
                    "{head}: {} {}{note}",
                    c.drift.len(),
                    if c.drift.len() == 1 {
                        "entry differs"
                    } else {
                        "entries differ"
                    }
                );
                print_drift(&c.drift, usize::MAX, false);
            }
        }
        if !v.foreign.is_empty() {
            println!(
                "keys of no generation (or a bad xdpg_active): {}",
                v.foreign.len()
            );
            print_drift(&v.foreign, usize::MAX, false);
        }
    }
    if v.clean() {
        return Ok(());
    }
    let n = v.entries();
    Err(Failure::failed(format!(
        "{}the rule maps do not hold what xdpguard wrote; `xdpguard apply FILE` (or any \
         rule change) writes the rule set again and puts the idle generation back",
        ctl::entries_differ(n as usize, "")
    )))
}
