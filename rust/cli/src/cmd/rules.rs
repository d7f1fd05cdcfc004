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

use xdpguard_user::ctl::{self, Failure};

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

    /// Checks what the words alone decide, before the module is looked for
    /// (exit 2 first, then 3): all of [`Match::rule`] but whether the
    /// limiter named exists, which only the active set knows.
    pub fn precheck(&self, action: &str, comment: Option<String>) -> Result<(), String> {
        let mut rs = RuleSet::default();
        if let Some(name) = &self.limit {
            rs.limits.push(Limit {
                name: name.clone(),
                pps: 1,
                burst: 1,
                bps: 0,
                burst_bytes: 0,
                prefix4: 32,
                prefix6: 128,
            });
        }
        self.rule(action, comment, &rs).map(|_| ())
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
    if !dry_run {
        // A module that goes away while this waits or writes ends it (exit 3).
        ctl::watch(&guard);
    }
    let _lock = ctl::lock()?;
    let active = ctl::active(&guard)?;
    let mut rs = active.rules.clone();
    let what = change(&mut rs)?;
    let changes = xdpguard_rules::diff::diff(&active.rules, &rs);
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
        Some(d) => {
            println!("{what}; generation {} active", d.generation);
            super::apply::restored_note(&d);
        }
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

/// The checks of the compiler that need no module (the interfaces named
/// exist), before the module is looked for.
pub fn check_interfaces(interfaces: &[(String, bool)]) -> Result<(), Failure> {
    let only = RuleSet {
        interfaces: interfaces.to_vec(),
        ..RuleSet::default()
    };
    xdpguard_rules::compile(&only, 0, &xdpguard_user::ifindex)
        .map(|_| ())
        .map_err(Failure::usage)
}

/// Runs `xdpguard add`.
pub fn add(a: Add) -> Result<(), Failure> {
    // The words first (exit 2), then the module (exit 3).
    a.what
        .precheck(&a.action, a.comment.clone())
        .map_err(|m| Failure::usage(format!("add: {m}")))?;
    if a.at == Some(0) {
        return Err(Failure::usage("add: --at 0: rule numbers start at 1"));
    }
    edit(a.dry_run, |rs| {
        let rule = a
            .what
            .rule(&a.action, a.comment.clone(), rs)
            .map_err(|m| Failure::usage(format!("add: {m}")))?;
        if let Some(i) = rs.rules.iter().position(|r| same(r, &rule)) {
            return Ok(format!(
                "rule {} already is {}",
                i + 1,
                xdpguard_rules::text::rule_text(rs, &rs.rules[i])
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
        let text = xdpguard_rules::text::rule_text(rs, &rule);
        rs.rules.insert(at, rule);
        Ok(format!("added rule {}: {text}", at + 1))
    })
}

/// Runs `xdpguard delete`.
pub fn delete(d: Delete) -> Result<(), Failure> {
    // The words first (exit 2), then the module (exit 3).
    match d.rule.parse::<usize>() {
        Ok(_) if !d.what.is_empty() => {
            return Err(Failure::usage(
                "delete: give a rule number or an action with options, not both",
            ))
        }
        Ok(0) => return Err(Failure::usage("delete: no rule 0: rule numbers start at 1")),
        Ok(_) => {}
        Err(_) => d
            .what
            .precheck(&d.rule, None)
            .map_err(|m| Failure::usage(format!("delete: {m}")))?,
    }
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
            return Ok(format!(
                "deleted rule {n}: {}",
                xdpguard_rules::text::rule_text(rs, &r)
            ));
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
                xdpguard_rules::text::rule_text(rs, &r)
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
            xdpguard_rules::text::rule_text(rs, &rule)
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
            "drift": super::verify::gen_json(&check.gens[0]),
            "foreign": super::verify::foreign_json(&check),
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
        super::verify::print_drift(&a.drift, 20, true);
        super::verify::print_drift(&check.foreign, 20, true);
    }
    Err(f)
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

/// Every command checks its words and files before it looks for the
/// module: bad input is exit 2 naming what is wrong, loaded module or not
/// (on a host without the module, looking first would give exit 3).
#[cfg(test)]
mod input_before_module {
    use clap::Parser;

    /// The failure of `xdpguard ARGS...`.
    fn fails(args: &[&str]) -> xdpguard_user::sys::Failure {
        let argv = std::iter::once("xdpguard").chain(args.iter().copied());
        let cli = crate::Cli::try_parse_from(argv).expect("clap accepts the words");
        crate::run(cli).expect_err("must fail")
    }

    fn file(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("xdpguard-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("temp file");
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn bad_words_and_files_are_exit_2_naming_them() {
        let bad_rules = file(
            "bad.toml",
            "[[rule]]\naction = \"deny\"\n\nsrc = \"10.0.0.1/8\"\n",
        );
        let no_iface = file(
            "iface.toml",
            "[interfaces]\nxgnosuch0 = \"deny\"\n\n[[rule]]\naction = \"deny\"\nsrc = \"192.0.2.1\"\n",
        );
        let bad_list = file("list.txt", "192.0.2.1\n# ok\n10.0.0.1/8\n");
        let cases: Vec<(Vec<&str>, String)> = vec![
            (
                vec!["add", "dny", "--src", "1.2.3.4"],
                "add: action = \"dny\"".into(),
            ),
            (
                vec!["add", "deny", "--src", "10.0.0.1/8"],
                "did you mean 10.0.0.0/8".into(),
            ),
            (vec!["add", "deny", "--dport", "22"], "need proto".into()),
            (
                vec!["add", "deny", "--proto", "tcp", "--dport", "70000"],
                "70000".into(),
            ),
            (
                vec!["add", "deny", "--src-mac", "zz"],
                "\"zz\" is not a MAC".into(),
            ),
            (
                vec!["add", "allow", "--limit", "syn"],
                "limit = ... only goes with".into(),
            ),
            (
                vec!["add", "deny", "--src", "192.0.2.1", "--at", "0"],
                "--at 0".into(),
            ),
            (vec!["delete", "0"], "no rule 0".into()),
            (vec!["delete", "2", "--src", "192.0.2.1"], "not both".into()),
            (
                vec!["delete", "dny", "--src", "192.0.2.1"],
                "delete: action = \"dny\"".into(),
            ),
            (vec!["set", "default", "maybe"], "set default maybe".into()),
            (
                vec!["set", "monitor", "on", "off"],
                "takes one value".into(),
            ),
            (vec!["set", "samples", "70000"], "set samples 70000".into()),
            (
                vec!["set", "fragments", "some"],
                "set fragments some".into(),
            ),
            (
                vec!["set", "colour", "red"],
                "set colour: unknown setting".into(),
            ),
            (
                vec!["set", "interface", "xgnosuch0", "deny"],
                "\"xgnosuch0\"".into(),
            ),
            (
                vec!["set", "interface", "a-name-of-16-byt", "deny"],
                "1 to 15 bytes".into(),
            ),
            (
                vec!["limiter", "add", "syn"],
                "give --pps and/or --bps".into(),
            ),
            (
                vec!["limiter", "add", "syn", "--pps", "5", "--burst", "0"],
                "bursts must be".into(),
            ),
            (
                vec!["limiter", "add", "syn", "--pps", "5", "--prefix4", "33"],
                "prefix4".into(),
            ),
            (
                vec!["import", "--deny", &bad_list],
                format!("{bad_list}:3: '10.0.0.1/8'"),
            ),
            (
                vec!["import", "--deny", "/nonexistent/list"],
                "/nonexistent/list".into(),
            ),
            (
                vec!["apply", &bad_rules],
                format!("{bad_rules}:4: rule 1: src:"),
            ),
            (
                vec!["apply", "--dry-run", &bad_rules],
                format!("{bad_rules}:4:"),
            ),
            (
                vec!["apply", &no_iface],
                "no interface named \"xgnosuch0\"".into(),
            ),
            (vec!["check", &bad_rules], format!("{bad_rules}:4:")),
            (vec!["log", "--timeout=-1"], "--timeout -1".into()),
            (vec!["log", "--timeout", "NaN"], "--timeout NaN".into()),
            (
                vec!["capture", "-w", "/dev/null", "--timeout", "inf"],
                "--timeout inf".into(),
            ),
            (vec!["top", "--interval", "0"], "--interval".into()),
            (vec!["pin", "--wait=-1"], "--wait".into()),
        ];
        for (args, want) in &cases {
            let f = fails(args);
            assert_eq!(f.code(), xdpguard_user::sys::EXIT_USAGE, "{args:?}: {}", f.msg());
            assert!(
                f.msg().contains(want.as_str()),
                "{args:?}: {:?} lacks {want:?}",
                f.msg()
            );
        }
    }
}
