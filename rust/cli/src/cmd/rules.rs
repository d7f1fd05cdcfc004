// SPDX-License-Identifier: GPL-2.0

//! `add`, `delete`, `list`, `set` and `limiter`: edit the active rule set one rule or setting at a time.
//!
//! Every edit reads the active rule set (`ctl::active`), changes a copy,
//! validates and compiles all of it, and swaps it in through the same
//! generation switch as `apply` (`ctl::commit`).

use clap::Args;
use serde_json::{json, Value};
use xdpguard_abi::RULES_PER_GENERATION;
use xdpguard_rules::{Action, Fragments, Limit, Rule, RuleSet, RuleSpec};

use xdpguard::ctl::{self, Failure};

/// What a rule matches, as options (the fields of a `[[rule]]` table).
#[derive(Args, Clone, Debug, Default)]
pub struct Match {
    /// Source CIDR or address; repeat (or separate with commas) for a list
    /// (lists only on rules with nothing but --src).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub src: Vec<String>,
    /// Destination CIDR or address (lists as for --src).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub dst: Vec<String>,
    /// Protocol: tcp, udp, icmp, icmpv6, gre, esp, ah, sctp or 0-255.
    #[arg(long)]
    pub proto: Option<String>,
    /// Source port or range LO-HI (needs --proto tcp or udp).
    #[arg(long, value_name = "PORT[-PORT]")]
    pub sport: Option<String>,
    /// Destination port or range LO-HI (needs --proto tcp or udp).
    #[arg(long, value_name = "PORT[-PORT]")]
    pub dport: Option<String>,
    /// ICMP or ICMPv6 type (needs --proto icmp or icmpv6).
    #[arg(long)]
    pub icmp_type: Option<String>,
    /// ICMP or ICMPv6 code (needs --icmp-type).
    #[arg(long)]
    pub icmp_code: Option<String>,
    /// Ethernet source address.
    #[arg(long, value_name = "MAC")]
    pub src_mac: Option<String>,
    /// Ethernet destination address.
    #[arg(long, value_name = "MAC")]
    pub dst_mac: Option<String>,
    /// Limiter of a `limit` rule (see `xdpguard limiter add`).
    #[arg(long, value_name = "NAME")]
    pub limit: Option<String>,
}

impl Match {
    fn is_empty(&self) -> bool {
        self.src.is_empty()
            && self.dst.is_empty()
            && self.proto.is_none()
            && self.sport.is_none()
            && self.dport.is_none()
            && self.icmp_type.is_none()
            && self.icmp_code.is_none()
            && self.src_mac.is_none()
            && self.dst_mac.is_none()
            && self.limit.is_none()
    }

    /// The rule `ACTION` plus these options mean, checked like a file's.
    pub fn rule(
        &self,
        action: &str,
        comment: Option<String>,
        rs: &RuleSet,
    ) -> Result<Rule, String> {
        RuleSpec {
            action: action.to_string(),
            limit: self.limit.clone(),
            src: self.src.clone(),
            dst: self.dst.clone(),
            proto: self.proto.clone(),
            sport: self.sport.clone(),
            dport: self.dport.clone(),
            icmp_type: self.icmp_type.clone(),
            icmp_code: self.icmp_code.clone(),
            src_mac: self.src_mac.clone(),
            dst_mac: self.dst_mac.clone(),
            comment,
        }
        .to_rule(&rs.limits)
    }
}

/// `xdpguard add`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    xdpguard add deny --src 10.0.0.0/8 --proto tcp --dport 22\n  \
    xdpguard add allow --proto udp --dport 53 --comment dns\n  \
    xdpguard add deny --src-mac 02:00:5e:10:00:01\n  \
    xdpguard add limit --limit syn --proto tcp --dport 80")]
pub struct Add {
    /// allow, deny or limit (limit needs --limit NAME).
    pub action: String,
    #[command(flatten)]
    pub what: Match,
    /// Free text kept with the rule (shown by list, kept by export).
    #[arg(long)]
    pub comment: Option<String>,
    /// Insert as rule number N (default: last). Order only breaks ties
    /// between equally specific rules.
    #[arg(long, value_name = "N")]
    pub at: Option<usize>,
    /// Show the change; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `xdpguard delete`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    xdpguard delete 3                      # rule 3 of `xdpguard list`\n  \
    xdpguard delete deny --src 10.0.0.0/8  # the rule written this way\n  \
    xdpguard delete deny --src 192.0.2.7   # or that address from an address list")]
pub struct Delete {
    /// A rule number from `xdpguard list`, or an action followed by the
    /// same options the rule was added with.
    pub rule: String,
    #[command(flatten)]
    pub what: Match,
    /// Show the change; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `xdpguard list`.
#[derive(Args, Debug)]
pub struct List {
    /// Print JSON (every address of every list).
    #[arg(long)]
    pub json: bool,
}

/// `xdpguard set`.
#[derive(Args, Debug)]
#[command(after_help = "Settings:\n  \
    default allow|deny          policy when no rule matches\n  \
    monitor on|off              count, never drop\n  \
    malformed allow|deny        frames with broken headers\n  \
    fragments l3|drop|pass      non-first fragments\n  \
    samples N                   dropped-packet samples per second per CPU\n  \
    syn-limit NAME|none         limiter for TCP SYNs\n  \
    global-limit NAME|none      limiter for everything that passes\n  \
    interface IFNAME allow|deny|none   per-interface default policy\n\n\
    Examples:\n  xdpguard set default deny\n  xdpguard set monitor on\n  xdpguard set interface eth1 allow")]
pub struct Set {
    /// The setting.
    pub key: String,
    /// Its value (an interface name, then a policy, for `interface`).
    #[arg(num_args = 1..=2, required = true)]
    pub value: Vec<String>,
    /// Show the change; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `xdpguard limiter`.
#[derive(clap::Subcommand, Debug)]
pub enum Limiter {
    /// Define (or redefine) a per-source rate limiter.
    #[command(
        after_help = "Example:\n  xdpguard limiter add syn --pps 50 --burst 100\n  xdpguard set syn-limit syn"
    )]
    Add {
        /// Its name, for `add limit --limit NAME` and `set syn-limit NAME`.
        name: String,
        /// Packets per second per source.
        #[arg(long)]
        pps: Option<u32>,
        /// Packet bucket size (default: pps).
        #[arg(long)]
        burst: Option<u32>,
        /// Bytes per second per source.
        #[arg(long)]
        bps: Option<u64>,
        /// Byte bucket size (default: bps).
        #[arg(long)]
        burst_bytes: Option<u64>,
        /// Group IPv4 sources by this prefix length (default 32).
        #[arg(long)]
        prefix4: Option<u8>,
        /// Group IPv6 sources by this prefix length (default 128).
        #[arg(long)]
        prefix6: Option<u8>,
        /// Show the change; apply nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a limiter no rule or setting uses.
    Delete {
        /// Its name.
        name: String,
        /// Show the change; apply nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Reads the active set, lets `change` edit a copy (returning what to
/// say), validates and compiles the result and swaps it in.
fn edit(
    dry_run: bool,
    change: impl FnOnce(&mut RuleSet) -> Result<String, Failure>,
) -> Result<(), Failure> {
    let guard = ctl::open()?;
    let _lock = ctl::lock()?;
    let active = ctl::active(&guard)?;
    let mut rs = active.rules.clone();
    let what = change(&mut rs)?;
    let changes = ctl::diff(&active.rules, &rs);
    if changes.is_empty() {
        println!("{what}; nothing to change");
        return Ok(());
    }
    // The whole set is checked exactly as a file would be: by the
    // compiler, before anything is written (commit compiles first).
    let done = if dry_run {
        ctl::check(&guard, &rs)?;
        None
    } else {
        Some(ctl::commit(&guard, &rs, &mut ctl::Quiet)?)
    };
    for c in &changes {
        println!("{c}");
    }
    match done {
        None => println!("{what}; nothing applied (--dry-run)"),
        Some(d) => println!("{what}; generation {} active", d.generation),
    }
    Ok(())
}

/// Rules equal but for the comment.
fn same(a: &Rule, b: &Rule) -> bool {
    Rule {
        comment: None,
        ..a.clone()
    } == Rule {
        comment: None,
        ..b.clone()
    }
}

/// Runs `xdpguard add`.
pub fn add(a: Add) -> Result<(), Failure> {
    edit(a.dry_run, |rs| {
        let rule = a
            .what
            .rule(&a.action, a.comment.clone(), rs)
            .map_err(|m| Failure::usage(format!("add: {m}")))?;
        if let Some(i) = rs.rules.iter().position(|r| same(r, &rule)) {
            return Ok(format!(
                "rule {} already is {}",
                i + 1,
                ctl::rule_text(rs, &rs.rules[i])
            ));
        }
        let at = match a.at {
            None => rs.rules.len(),
            Some(n) if (1..=rs.rules.len() + 1).contains(&n) => n - 1,
            Some(n) => {
                return Err(Failure::usage(format!(
                    "add: --at {n}: rule numbers go from 1 to {}",
                    rs.rules.len() + 1
                )))
            }
        };
        let text = ctl::rule_text(rs, &rule);
        rs.rules.insert(at, rule);
        Ok(format!("added rule {}: {text}", at + 1))
    })
}

/// Runs `xdpguard delete`.
pub fn delete(d: Delete) -> Result<(), Failure> {
    edit(d.dry_run, |rs| {
        if let Ok(n) = d.rule.parse::<usize>() {
            if !d.what.is_empty() {
                return Err(Failure::usage(
                    "delete: give a rule number or an action with options, not both",
                ));
            }
            if n == 0 || n > rs.rules.len() {
                return Err(Failure::usage(format!(
                    "delete: no rule {n}: the active set has {} rules (xdpguard list)",
                    rs.rules.len()
                )));
            }
            let r = rs.rules.remove(n - 1);
            return Ok(format!("deleted rule {n}: {}", ctl::rule_text(rs, &r)));
        }
        let rule = d
            .what
            .rule(&d.rule, None, rs)
            .map_err(|m| Failure::usage(format!("delete: {m}")))?;
        if let Some(i) = rs.rules.iter().position(|r| same(r, &rule)) {
            let r = rs.rules.remove(i);
            return Ok(format!(
                "deleted rule {}: {}",
                i + 1,
                ctl::rule_text(rs, &r)
            ));
        }
        // An address (or a few) out of address-only lists of that action.
        if rule.is_address_only() {
            let dst = rule.src.is_empty();
            let gone: Vec<ipnet::IpNet> = if dst {
                rule.dst.clone()
            } else {
                rule.src.clone()
            };
            let mut hits = 0;
            let mut emptied = Vec::new();
            for (i, r) in rs.rules.iter_mut().enumerate() {
                if !r.is_address_only() || r.action != rule.action || r.src.is_empty() != dst {
                    continue;
                }
                let list = if dst { &mut r.dst } else { &mut r.src };
                let before = list.len();
                list.retain(|n| !gone.contains(n));
                hits += before - list.len();
                if list.is_empty() {
                    emptied.push(i);
                }
            }
            if hits > 0 {
                for i in emptied.into_iter().rev() {
                    rs.rules.remove(i);
                }
                return Ok(format!(
                    "deleted {hits} address(es) from address lists of {} rules",
                    d.rule
                ));
            }
        }
        Err(Failure::usage(format!(
            "delete: no rule is \"{}\" (see xdpguard list; delete N deletes rule N)",
            ctl::rule_text(rs, &rule)
        )))
    })
}

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

/// Runs `xdpguard set`.
pub fn set(s: Set) -> Result<(), Failure> {
    edit(s.dry_run, |rs| {
        let one = || -> Result<&str, Failure> {
            match s.value.as_slice() {
                [v] => Ok(v.as_str()),
                _ => Err(Failure::usage(format!("set {}: takes one value", s.key))),
            }
        };
        match s.key.as_str() {
            "default" => rs.default_deny = policy(one()?, "default")?,
            "malformed" => rs.malformed_deny = policy(one()?, "malformed")?,
            "monitor" => {
                rs.monitor = match one()? {
                    "on" | "true" | "yes" => true,
                    "off" | "false" | "no" => false,
                    v => return Err(Failure::usage(format!("set monitor {v}: use on or off"))),
                }
            }
            "fragments" => {
                rs.fragments = match one()? {
                    "l3" | "l3-only" => Fragments::L3Only,
                    "drop" | "deny" => Fragments::Drop,
                    "pass" | "allow" => Fragments::Pass,
                    v => {
                        return Err(Failure::usage(format!(
                            "set fragments {v}: use l3, drop or pass"
                        )))
                    }
                }
            }
            "samples" => {
                let v = one()?;
                rs.samples = v
                    .parse()
                    .map_err(|_| Failure::usage(format!("set samples {v}: use a number 0-65535")))?
            }
            "syn-limit" | "syn_limit" => rs.syn_limit = limiter_ref(rs, one()?, "syn-limit")?,
            "global-limit" | "global_limit" => {
                rs.global_limit = limiter_ref(rs, one()?, "global-limit")?
            }
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
                rs.interfaces.retain(|(n, _)| n != name);
                if v != "none" {
                    rs.interfaces.push((name.clone(), policy(v, "interface")?));
                    rs.interfaces.sort();
                }
            }
            k => {
                return Err(Failure::usage(format!(
                    "set {k}: unknown setting (default, monitor, malformed, fragments, samples, \
                     syn-limit, global-limit, interface)"
                )))
            }
        }
        Ok(format!("set {} {}", s.key, s.value.join(" ")))
    })
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
        } => edit(dry_run, |rs| {
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
            match rs.limits.iter().position(|x| x.name == name) {
                Some(i) => rs.limits[i] = new,
                None => rs.limits.push(new),
            }
            // A limiter's checks (bursts, prefix lengths, how many) are the
            // file's: go through the file format.
            *rs = RuleSet::from_toml(&rs.to_toml())
                .map_err(|e| Failure::usage(format!("limiter add {name}: {}", e.message)))?;
            Ok(format!(
                "limiter {}",
                ctl::limit_text(
                    &rs.limits[rs.limits.iter().position(|x| x.name == name).unwrap_or(0)]
                )
            ))
        }),
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

fn rule_json(rs: &RuleSet, n: usize, r: &Rule, c: &xdpguard_abi::Counter) -> Value {
    let nets = |v: &[ipnet::IpNet]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let mac = |m: &[u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
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
        "text": ctl::match_text(r),
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
    let origin = match active.origin {
        ctl::Origin::Fresh => "fresh",
        ctl::Origin::Recorded => "recorded",
    };
    if l.json {
        let settings: serde_json::Map<String, Value> = ctl::settings(rs)
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
        });
        println!("{out}");
        return Ok(());
    }
    let s: Vec<String> = ctl::settings(rs)
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("{}", s.join(", "));
    for l in &rs.limits {
        println!("limiter {}", ctl::limit_text(l));
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
            ctl::action_text(rs, r),
            ctl::match_text(r),
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(src: &[&str], proto: Option<&str>, dport: Option<&str>) -> Match {
        Match {
            src: src.iter().map(|s| s.to_string()).collect(),
            proto: proto.map(String::from),
            dport: dport.map(String::from),
            ..Match::default()
        }
    }

    #[test]
    fn add_spec_builds_the_rule_a_file_would() {
        let rs = RuleSet::default();
        let r = m(&["10.0.0.0/8"], Some("tcp"), Some("22"))
            .rule("deny", None, &rs)
            .expect("valid");
        let file = RuleSet::from_toml(
            "[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.0/8\"\nproto = \"tcp\"\ndport = 22\n",
        )
        .expect("parses");
        assert_eq!(r, file.rules[0]);
    }

    #[test]
    fn add_spec_errors_name_the_value() {
        let rs = RuleSet::default();
        let e = m(&["10.0.0.1/8"], None, None)
            .rule("deny", None, &rs)
            .expect_err("host bits");
        assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
        let e = m(&[], None, Some("22"))
            .rule("deny", None, &rs)
            .expect_err("no proto");
        assert!(e.contains("need proto"), "{e}");
        let e = m(&[], Some("tcp"), Some("70000"))
            .rule("deny", None, &rs)
            .expect_err("port");
        assert!(e.contains("70000"), "{e}");
        let e = m(&[], None, None)
            .rule("block", None, &rs)
            .expect_err("action");
        assert!(e.contains("\"block\""), "{e}");
        let e = Match {
            limit: Some("syn".into()),
            ..Match::default()
        }
        .rule("limit", None, &rs)
        .expect_err("no limiter");
        assert!(e.contains("no limit named \"syn\""), "{e}");
        let e = m(&["10.0.0.0/8", "10.1.0.0/16"], Some("tcp"), None)
            .rule("deny", None, &rs)
            .expect_err("list with proto");
        assert!(e.contains("address lists"), "{e}");
    }

    #[test]
    fn a_list_of_sources_is_one_address_only_rule() {
        let r = m(&["192.0.2.1", "2001:db8::/32"], None, None)
            .rule("deny", None, &RuleSet::default())
            .expect("valid");
        assert!(r.is_address_only());
        assert_eq!(r.src.len(), 2);
    }
}
