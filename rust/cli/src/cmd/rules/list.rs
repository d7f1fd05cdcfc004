// SPDX-License-Identifier: GPL-2.0

//! `list`: the active rule set with its per-rule counters, and the check that the maps hold it.

use serde_json::{json, Value};
use xdpguard_abi::RULES_PER_GENERATION;
use xdpguard_rules::text::mac_text;
use xdpguard_rules::{Action, Rule, RuleSet};

use super::List;
use xdpguard_user::ctl::{self, Failure};

fn rule_json(rs: &RuleSet, n: usize, r: &Rule, c: &xdpguard_abi::Counter) -> Value {
    let nets = |v: &[ipnet::IpNet]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let mac = |m: &[u8; 6]| mac_text(m);
    let ports = |p: (u16, u16)| json!([p.0, p.1]);
    json!({
        "number": n,
        "action": match r.action() { Action::Allow => "allow", Action::Deny => "deny", Action::Limit(_) => "limit" },
        "limit": match r.action() { Action::Limit(i) => rs.limits.get(*i).map(|l| l.name.clone()), _ => None },
        "src": nets(&r.src),
        "dst": nets(&r.dst),
        "proto": r.proto,
        "sport": r.sport.map(ports),
        "dport": r.dport.map(ports),
        "icmp_type": r.icmp_type,
        "icmp_code": r.icmp_code,
        "src_mac": r.src_mac.as_ref().map(mac),
        "dst_mac": r.dst_mac.as_ref().map(mac),
        "comment": r.comment,
        "text": xdpguard_rules::text::match_text(r),
        "packets": c.packets,
        "bytes": c.bytes,
    })
}

/// Runs `xdpguard list`.
pub fn list(l: List) -> Result<(), Failure> {
    let guard = ctl::open()?;
    let active = ctl::active(&guard)?;
    let rs = &active.rules;
    let n = (rs.rules.len() as u32).min(RULES_PER_GENERATION);
    // The counters of the generation read, even if an apply switched since.
    let counters = guard.generation_rule_counters(active.generation, n)?;
    // What packets see is the maps, not the record: entries another
    // program changed are reported (exit 1).
    let check = ctl::verify(&guard, false, true)?;
    let origin = match active.origin {
        ctl::Origin::Fresh => "fresh",
        ctl::Origin::Recorded => "recorded",
    };
    if l.json {
        let settings: serde_json::Map<String, Value> = xdpguard_rules::text::settings(rs)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("interface "))
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let ifaces: serde_json::Map<String, Value> = rs
            .interfaces
            .iter()
            .map(|(n, d)| (n.clone(), json!(if *d { "deny" } else { "allow" })))
            .collect();
        let limits: Vec<Value> = rs
            .limits
            .iter()
            .map(|l| {
                json!({"name": l.name, "pps": l.pps, "burst": l.burst, "bps": l.bps,
                       "burst_bytes": l.burst_bytes, "prefix4": l.prefix4, "prefix6": l.prefix6})
            })
            .collect();
        let rules: Vec<Value> = rs
            .rules
            .iter()
            .zip(&counters)
            .enumerate()
            .map(|(i, (r, c))| rule_json(rs, i + 1, r, c))
            .collect();
        let out = json!({
            "generation": active.generation,
            "tag": format!("{:08x}", active.tag),
            "origin": origin,
            "settings": settings,
            "interfaces": ifaces,
            "limits": limits,
            "rules": rules,
            "clean": check.clean(),
            "drift": crate::cmd::verify::gen_json(&check.gens[0]),
            "foreign": crate::cmd::verify::foreign_json(&check),
        });
        println!("{out}");
        return report_drift(&check);
    }
    let s: Vec<String> = xdpguard_rules::text::settings(rs)
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("{}", s.join(", "));
    for l in &rs.limits {
        println!("limiter {}", xdpguard_rules::text::limit_text(l));
    }
    println!(
        "{:>4}  {:<12} {:<44} {:>12} {:>14}",
        "#", "action", "match", "packets", "bytes"
    );
    for (i, (r, c)) in rs.rules.iter().zip(&counters).enumerate() {
        let comment = r
            .comment
            .as_ref()
            .map_or(String::new(), |c| format!("  # {c}"));
        println!(
            "{:>4}  {:<12} {:<44} {:>12} {:>14}{comment}",
            i + 1,
            xdpguard_rules::text::action_text(rs, r),
            xdpguard_rules::text::match_text(r),
            c.packets,
            c.bytes
        );
    }
    println!(
        "{} rules; generation {} ({origin}, tag {:08x})",
        rs.rules.len(),
        active.generation,
        active.tag
    );
    report_drift(&check)
}

/// Exit 1, with the entries on standard error, if the active generation
/// is not what xdpguard wrote (`list`, `status`).
pub fn report_drift(check: &ctl::Verification) -> Result<(), Failure> {
    let Some(f) = ctl::drift_failure(check) else {
        return Ok(());
    };
    let a = &check.gens[0];
    if !a.drift.is_empty() || !check.foreign.is_empty() {
        eprintln!(
            "xdpguard: generation {} (active) is not what xdpguard wrote:",
            a.generation
        );
        crate::cmd::verify::print_drift(&a.drift, 20, true);
        crate::cmd::verify::print_drift(&check.foreign, 20, true);
    }
    Err(f)
}
