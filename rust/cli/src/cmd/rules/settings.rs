// SPDX-License-Identifier: GPL-2.0

//! `set` and `limiter`: change a setting or a rate limiter of the active rule set.

use xdpguard_rules::{Action, Fragments, Limit, RuleSet};

use super::{check_interfaces, edit, Limiter, Set};
use xdpguard_user::ctl::Failure;

fn policy(v: &str, what: &str) -> Result<bool, Failure> {
    match v {
        "allow" | "pass" | "accept" => Ok(false),
        "deny" | "drop" => Ok(true),
        _ => Err(Failure::usage(format!("set {what} {v}: use allow or deny"))),
    }
}

fn limiter_ref(rs: &RuleSet, v: &str, what: &str) -> Result<Option<usize>, Failure> {
    if v == "none" {
        return Ok(None);
    }
    rs.limits
        .iter()
        .position(|l| l.name == v)
        .map(Some)
        .ok_or_else(|| {
            Failure::usage(format!(
                "set {what} {v}: no limiter named \"{v}\" (xdpguard limiter add {v} --pps N)"
            ))
        })
}

/// A setting as the words of `set KEY VALUE` give it, checked; limiter
/// names are looked up in the active set later.
enum Setting {
    Default(bool),
    Malformed(bool),
    Monitor(bool),
    Fragments(Fragments),
    Samples(u16),
    SynLimit(String),
    GlobalLimit(String),
    /// Interface name, policy (`None`: remove it).
    Interface(String, Option<bool>),
}

/// Parses `set`'s words (exit 2), before the module is looked for.
fn parse_setting(s: &Set) -> Result<Setting, Failure> {
    let one = || -> Result<&str, Failure> {
        match s.value.as_slice() {
            [v] => Ok(v.as_str()),
            _ => Err(Failure::usage(format!("set {}: takes one value", s.key))),
        }
    };
    Ok(match s.key.as_str() {
        "default" => Setting::Default(policy(one()?, "default")?),
        "malformed" => Setting::Malformed(policy(one()?, "malformed")?),
        "monitor" => Setting::Monitor(match one()? {
            "on" | "true" | "yes" => true,
            "off" | "false" | "no" => false,
            v => return Err(Failure::usage(format!("set monitor {v}: use on or off"))),
        }),
        "fragments" => Setting::Fragments(match one()? {
            "l3" | "l3-only" => Fragments::L3Only,
            "drop" | "deny" => Fragments::Drop,
            "pass" | "allow" => Fragments::Pass,
            v => {
                return Err(Failure::usage(format!(
                    "set fragments {v}: use l3, drop or pass"
                )))
            }
        }),
        "samples" => {
            let v = one()?;
            Setting::Samples(
                v.parse().map_err(|_| {
                    Failure::usage(format!("set samples {v}: use a number 0-65535"))
                })?,
            )
        }
        "syn-limit" | "syn_limit" => Setting::SynLimit(one()?.to_string()),
        "global-limit" | "global_limit" => Setting::GlobalLimit(one()?.to_string()),
        "interface" => {
            let [name, v] = s.value.as_slice() else {
                return Err(Failure::usage(
                    "set interface IFNAME allow|deny|none: give a name and a policy",
                ));
            };
            if name.is_empty() || name.len() > 15 {
                return Err(Failure::usage(format!(
                    "set interface \"{name}\": names are 1 to 15 bytes"
                )));
            }
            let deny = match v.as_str() {
                "none" => None,
                v => Some(policy(v, "interface")?),
            };
            if let Some(deny) = deny {
                // A policy for an interface that does not exist would not
                // compile; that of one that went away can still be removed.
                check_interfaces(&[(name.clone(), deny)])?;
            }
            Setting::Interface(name.clone(), deny)
        }
        k => {
            return Err(Failure::usage(format!(
                "set {k}: unknown setting (default, monitor, malformed, fragments, samples, \
                 syn-limit, global-limit, interface)"
            )))
        }
    })
}

/// Runs `xdpguard set`.
pub fn set(s: Set) -> Result<(), Failure> {
    // The words first (exit 2), then the module (exit 3).
    let setting = parse_setting(&s)?;
    edit(s.dry_run, |rs| {
        match setting {
            Setting::Default(d) => rs.default_deny = d,
            Setting::Malformed(d) => rs.malformed_deny = d,
            Setting::Monitor(m) => rs.monitor = m,
            Setting::Fragments(f) => rs.fragments = f,
            Setting::Samples(n) => rs.samples = n,
            Setting::SynLimit(v) => rs.syn_limit = limiter_ref(rs, &v, "syn-limit")?,
            Setting::GlobalLimit(v) => rs.global_limit = limiter_ref(rs, &v, "global-limit")?,
            Setting::Interface(name, deny) => {
                rs.interfaces.retain(|(n, _)| n != &name);
                if let Some(deny) = deny {
                    rs.interfaces.push((name, deny));
                    rs.interfaces.sort();
                }
            }
        }
        Ok(format!("set {} {}", s.key, s.value.join(" ")))
    })
}

/// A limiter's own checks (bursts, prefix lengths) are the file's: a set
/// with it alone goes through the file format (exit 2).
fn check_limiter(l: &Limit) -> Result<(), Failure> {
    let alone = RuleSet {
        limits: vec![l.clone()],
        ..RuleSet::default()
    };
    RuleSet::from_toml(&alone.to_toml())
        .map(|_| ())
        .map_err(|e| Failure::usage(format!("limiter add {}: {}", l.name, e.message)))
}

/// Defines (or redefines) `new` in `rs`.
fn limiter_add(rs: &mut RuleSet, new: Limit) -> Result<String, Failure> {
    let name = new.name.clone();
    match rs.limits.iter().position(|x| x.name == name) {
        Some(i) => rs.limits[i] = new,
        None => rs.limits.push(new),
    }
    // With the others too (how many there may be): the file format again.
    *rs = RuleSet::from_toml(&rs.to_toml())
        .map_err(|e| Failure::usage(format!("limiter add {name}: {}", e.message)))?;
    Ok(format!(
        "limiter {}",
        xdpguard_rules::text::limit_text(
            &rs.limits[rs.limits.iter().position(|x| x.name == name).unwrap_or(0)]
        )
    ))
}

/// Runs `xdpguard limiter add|delete`.
pub fn limiter(l: Limiter) -> Result<(), Failure> {
    match l {
        Limiter::Add {
            name,
            pps,
            burst,
            bps,
            burst_bytes,
            prefix4,
            prefix6,
            dry_run,
        } => {
            // The words first (exit 2), then the module (exit 3).
            if pps.is_none() && bps.is_none() {
                return Err(Failure::usage(format!(
                    "limiter add {name}: give --pps and/or --bps"
                )));
            }
            let new = Limit {
                name: name.clone(),
                pps: pps.unwrap_or(0),
                burst: burst.or(pps).unwrap_or(0),
                bps: bps.unwrap_or(0),
                burst_bytes: burst_bytes.or(bps).unwrap_or(0),
                prefix4: prefix4.unwrap_or(32),
                prefix6: prefix6.unwrap_or(128),
            };
            check_limiter(&new)?;
            edit(dry_run, |rs| limiter_add(rs, new))
        }
        Limiter::Delete { name, dry_run } => edit(dry_run, |rs| {
            let i = rs
                .limits
                .iter()
                .position(|x| x.name == name)
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "limiter delete {name}: no limiter named \"{name}\""
                    ))
                })?;
            let users = rs
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.action() == &Action::Limit(i))
                .map(|(n, _)| format!("rule {}", n + 1))
                .chain(
                    rs.syn_limit
                        .filter(|&s| s == i)
                        .map(|_| "syn-limit".to_string()),
                )
                .chain(
                    rs.global_limit
                        .filter(|&s| s == i)
                        .map(|_| "global-limit".to_string()),
                )
                .collect::<Vec<_>>();
            if !users.is_empty() {
                return Err(Failure::usage(format!(
                    "limiter delete {name}: still used by {}",
                    users.join(", ")
                )));
            }
            rs.limits.remove(i);
            let shift = |x: usize| if x > i { x - 1 } else { x };
            for r in &mut rs.rules {
                if let Some(Action::Limit(k)) = &mut r.action {
                    *k = shift(*k);
                }
            }
            rs.syn_limit = rs.syn_limit.map(shift);
            rs.global_limit = rs.global_limit.map(shift);
            Ok(format!("deleted limiter {name}"))
        }),
    }
}
