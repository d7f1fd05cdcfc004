// SPDX-License-Identifier: GPL-2.0

//! Rules and rule sets as text, the way `xdpguard add` and `list` write them.

use crate::{Action, Fragments, Limit, Rule, RuleSet};

pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Protocol name (or number).
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn ports_text((lo, hi): (u16, u16)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

/// Most addresses of a list shown in one line.
const LIST_SHOWN: usize = 4;

fn nets_text(v: &[ipnet::IpNet]) -> String {
    if v.len() <= LIST_SHOWN {
        v.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        format!(
            "[{} addresses: {}, ...]",
            v.len(),
            v[..LIST_SHOWN - 1]
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The action word of a rule (`limit NAME` for limit rules).
pub fn action_text(rs: &RuleSet, r: &Rule) -> String {
    match r.action() {
        Action::Allow => "allow".into(),
        Action::Deny => "deny".into(),
        Action::Limit(i) => format!(
            "limit {}",
            rs.limits.get(*i).map_or("?", |l| l.name.as_str())
        ),
    }
}

/// What a rule matches, in the words of `xdpguard add` (`any` if nothing).
pub fn match_text(r: &Rule) -> String {
    let mut w: Vec<String> = Vec::new();
    if !r.src.is_empty() {
        w.push(format!("src {}", nets_text(&r.src)));
    }
    if !r.dst.is_empty() {
        w.push(format!("dst {}", nets_text(&r.dst)));
    }
    if let Some(p) = r.proto {
        w.push(format!("proto {}", proto_name(p)));
    }
    if let Some(p) = r.sport {
        w.push(format!("sport {}", ports_text(p)));
    }
    if let Some(p) = r.dport {
        w.push(format!("dport {}", ports_text(p)));
    }
    if let Some(t) = r.icmp_type {
        w.push(format!("icmp-type {t}"));
    }
    if let Some(c) = r.icmp_code {
        w.push(format!("icmp-code {c}"));
    }
    if let Some(m) = &r.src_mac {
        w.push(format!("src-mac {}", mac_text(m)));
    }
    if let Some(m) = &r.dst_mac {
        w.push(format!("dst-mac {}", mac_text(m)));
    }
    if w.is_empty() {
        "any".into()
    } else {
        w.join(" ")
    }
}

/// One line for a rule: action, match, comment.
pub fn rule_text(rs: &RuleSet, r: &Rule) -> String {
    r.display(rs).to_string()
}

/// A rule as [`rule_text`] writes it, for `{}` (see [`Rule::display`]).
pub struct RuleText<'a> {
    rs: &'a RuleSet,
    rule: &'a Rule,
}

impl Rule {
    /// The rule's one line (action, match, comment) as a `Display`; `rs`
    /// is the rule set it belongs to, which names its limiter.
    pub fn display<'a>(&'a self, rs: &'a RuleSet) -> RuleText<'a> {
        RuleText { rs, rule: self }
    }
}

impl std::fmt::Display for RuleText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.rule;
        write!(f, "{} {}", action_text(self.rs, r), match_text(r))?;
        if let Some(c) = &r.comment {
            write!(f, "  # {c}")?;
        }
        Ok(())
    }
}

fn pol(deny: bool) -> &'static str {
    if deny {
        "deny"
    } else {
        "allow"
    }
}

/// The settings of a rule set that are not rules, as `(name, value)`
/// pairs in the words of `xdpguard set`.
pub fn settings(rs: &RuleSet) -> Vec<(String, String)> {
    let mut v = vec![
        ("default".to_string(), pol(rs.default_deny).to_string()),
        (
            "monitor".into(),
            if rs.monitor { "on" } else { "off" }.into(),
        ),
        ("malformed".into(), pol(rs.malformed_deny).into()),
        (
            "fragments".into(),
            match rs.fragments {
                Fragments::L3Only => "l3",
                Fragments::Drop => "drop",
                Fragments::Pass => "pass",
            }
            .into(),
        ),
        ("samples".into(), rs.samples.to_string()),
        (
            "syn-limit".into(),
            rs.syn_limit
                .and_then(|i| rs.limits.get(i))
                .map_or("none".into(), |l| l.name.clone()),
        ),
        (
            "global-limit".into(),
            rs.global_limit
                .and_then(|i| rs.limits.get(i))
                .map_or("none".into(), |l| l.name.clone()),
        ),
    ];
    for (name, deny) in &rs.interfaces {
        v.push((format!("interface {name}"), pol(*deny).into()));
    }
    v
}

/// One line for a limiter, in the words of `xdpguard limiter add`.
pub fn limit_text(l: &Limit) -> String {
    let mut s = l.name.clone();
    if l.pps > 0 {
        s.push_str(&format!(" --pps {} --burst {}", l.pps, l.burst));
    }
    if l.bps > 0 {
        s.push_str(&format!(" --bps {} --burst-bytes {}", l.bps, l.burst_bytes));
    }
    s.push_str(&format!(" --prefix4 {} --prefix6 {}", l.prefix4, l.prefix6));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(text: &str) -> RuleSet {
        RuleSet::from_toml(text).expect("parses")
    }

    use crate::TEST_RULES as BASE;

    #[test]
    fn texts_read_like_the_add_command() {
        let s = rs(BASE);
        assert_eq!(rule_text(&s, &s.rules[0]), "allow proto tcp dport 22");
        assert_eq!(rule_text(&s, &s.rules[1]), "deny src 10.0.0.0/8");
        assert_eq!(
            format!("{}", s.rules[0].display(&s)),
            "allow proto tcp dport 22"
        );
        let long: Vec<String> = (1..=10).map(|i| format!("\"192.0.2.{i}\"")).collect();
        let s = rs(&format!(
            "[[rule]]\naction = \"deny\"\nsrc = [{}]\n",
            long.join(",")
        ));
        assert_eq!(
            match_text(&s.rules[0]),
            "src [10 addresses: 192.0.2.1/32, 192.0.2.2/32, 192.0.2.3/32, ...]"
        );
    }
}
