// SPDX-License-Identifier: GPL-2.0

//! `add`, `delete`, `list`, `set` and `limiter`: edit the active rule set one rule or setting at a time.
//!
//! Every edit reads the active rule set (`ctl::active`), changes a copy,
//! validates and compiles all of it, and swaps it in through the same
//! generation switch as `apply` (`ctl::commit`).

mod list;
mod settings;

use clap::Args;
use xdpguard_rules::{Limit, Rule, RuleSet, RuleSpec};

use xdpguard_user::ctl::{self, Failure};

pub use list::{list, report_drift};
pub use settings::{limiter, set};

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
