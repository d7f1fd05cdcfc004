// SPDX-License-Identifier: GPL-2.0

//! The TOML rule file: parsing, validation with line numbers, and export.

use std::{collections::BTreeMap, fmt, ops::Range};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::{Action, Fragments, Limit, Rule, RuleSet};

/// A rule-file error: the line (when known) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// 1-based line of the file, if the error has one.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for Error {}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Num(i64),
    Str(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default: Option<Spanned<String>>,
    monitor: Option<bool>,
    malformed: Option<Spanned<String>>,
    fragments: Option<Spanned<String>>,
    global_limit: Option<Spanned<String>>,
    syn_limit: Option<Spanned<String>>,
    samples: Option<u16>,
    #[serde(default)]
    interfaces: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    limit: Vec<Spanned<RawLimit>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    name: String,
    #[serde(default)]
    pps: u32,
    burst: Option<u32>,
    #[serde(default)]
    bps: u64,
    burst_bytes: Option<u64>,
    prefix4: Option<u8>,
    prefix6: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: String,
    limit: Option<String>,
    src: Option<OneOrMany>,
    dst: Option<OneOrMany>,
    proto: Option<StrOrNum>,
    sport: Option<StrOrNum>,
    dport: Option<StrOrNum>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    src_mac: Option<String>,
    dst_mac: Option<String>,
    comment: Option<String>,
}

/// Largest burst the program's token arithmetic allows.
const MAX_BURST: u64 = 1 << 32;

/// 1-based line of byte offset `pos` in `text`.
fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

struct Ctx<'a> {
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        Error {
            line: Some(line_of(self.text, span.start)),
            message: message.into(),
        }
    }
}

fn parse_policy(word: &str, what: &str) -> Result<bool, String> {
    match word {
        "allow" | "pass" | "accept" => Ok(false),
        "deny" | "drop" => Ok(true),
        _ => Err(format!("{what} = \"{word}\": use \"allow\" or \"deny\"")),
    }
}

/// Parses a protocol name or number.
pub(crate) fn parse_proto(p: &StrOrNumRef<'_>) -> Result<u8, String> {
    match p {
        StrOrNumRef::Num(n) => u8::try_from(*n).map_err(|_| format!("proto = {n}: protocol numbers are 0 to 255")),
        StrOrNumRef::Str(s) => match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "icmpv6" | "ipv6-icmp" => Ok(58),
            "gre" => Ok(47),
            "esp" => Ok(50),
            "ah" => Ok(51),
            "sctp" => Ok(132),
            other => other
                .parse::<u8>()
                .map_err(|_| format!("proto = \"{s}\": use tcp, udp, icmp, icmpv6, gre, esp, ah, sctp or a number 0-255")),
        },
    }
}

pub(crate) enum StrOrNumRef<'a> {
    Num(i64),
    Str(&'a str),
}

fn as_ref(v: &StrOrNum) -> StrOrNumRef<'_> {
    match v {
        StrOrNum::Num(n) => StrOrNumRef::Num(*n),
        StrOrNum::Str(s) => StrOrNumRef::Str(s),
    }
}

/// Parses a port or a range `lo-hi`.
pub(crate) fn parse_ports(p: &StrOrNumRef<'_>, what: &str) -> Result<(u16, u16), String> {
    let one = |s: &str| -> Result<u16, String> {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("{what} = \"{s}\": ports are 0 to 65535"))
    };
    match p {
        StrOrNumRef::Num(n) => {
            let port =
                u16::try_from(*n).map_err(|_| format!("{what} = {n}: ports are 0 to 65535"))?;
            Ok((port, port))
        }
        StrOrNumRef::Str(s) => {
            let (lo, hi) = match s.split_once('-') {
                Some((lo, hi)) => (one(lo)?, one(hi)?),
                None => {
                    let p = one(s)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!(
                    "{what} = \"{s}\": the range is backwards (write {hi}-{lo})"
                ));
            }
            Ok((lo, hi))
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("\"{s}\" is not a MAC address (write it as 02:00:5e:10:00:01)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Parses a CIDR or a bare address (a host prefix); host bits must be zero.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let net: IpNet = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<std::net::IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => {
                return Err(format!(
                    "\"{s}\" is not an address or CIDR (write 192.0.2.0/24 or 2001:db8::/32)"
                ))
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "\"{s}\" has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

impl RuleSet {
    /// Reads a rule file. All of it is checked; the first problem is
    /// returned with its line.
    pub fn from_toml(text: &str) -> Result<RuleSet, Error> {
        let raw: RawFile = toml::from_str(text).map_err(|e| Error {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim_end().to_string(),
        })?;
        let cx = Ctx { text };
        let mut rs = RuleSet::default();
        if let Some(d) = &raw.default {
            rs.default_deny =
                parse_policy(d.get_ref(), "default").map_err(|m| cx.err(d.span(), m))?;
        }
        if let Some(m) = &raw.malformed {
            rs.malformed_deny =
                parse_policy(m.get_ref(), "malformed").map_err(|e| cx.err(m.span(), e))?;
        }
        rs.monitor = raw.monitor.unwrap_or(false);
        if let Some(n) = raw.samples {
            rs.samples = n;
        }
        if let Some(f) = &raw.fragments {
            rs.fragments = match f.get_ref().as_str() {
                "l3" | "l3-only" => Fragments::L3Only,
                "drop" | "deny" => Fragments::Drop,
                "pass" | "allow" => Fragments::Pass,
                other => {
                    return Err(cx.err(
                        f.span(),
                        format!("fragments = \"{other}\": use \"l3\", \"drop\" or \"pass\""),
                    ))
                }
            };
        }
        for (name, policy) in &raw.interfaces {
            if name.is_empty() || name.len() > 15 {
                return Err(cx.err(
                    policy.span(),
                    format!("interface \"{name}\": names are 1 to 15 bytes"),
                ));
            }
            let deny = parse_policy(policy.get_ref(), &format!("interfaces.{name}"))
                .map_err(|m| cx.err(policy.span(), m))?;
            rs.interfaces.push((name.clone(), deny));
        }
        for l in &raw.limit {
            let span = l.span();
            let l = l.get_ref();
            if rs.limits.iter().any(|x| x.name == l.name) {
                return Err(cx.err(span, format!("limit \"{}\" is defined twice", l.name)));
            }
            if l.pps == 0 && l.bps == 0 {
                return Err(cx.err(span, format!("limit \"{}\": set pps, bps or both", l.name)));
            }
            // A burst only means something for a rate that is set.
            let burst = if l.pps > 0 {
                l.burst.unwrap_or(l.pps)
            } else {
                0
            };
            let burst_bytes = if l.bps > 0 {
                l.burst_bytes.unwrap_or(l.bps)
            } else {
                0
            };
            if (l.pps > 0 && burst == 0)
                || (l.bps > 0 && burst_bytes == 0)
                || burst_bytes > MAX_BURST
            {
                return Err(cx.err(
                    span,
                    format!("limit \"{}\": bursts must be 1 to {MAX_BURST}", l.name),
                ));
            }
            let prefix4 = l.prefix4.unwrap_or(32);
            let prefix6 = l.prefix6.unwrap_or(128);
            if prefix4 > 32 || prefix6 > 128 {
                return Err(cx.err(
                    span,
                    format!(
                        "limit \"{}\": prefix4 is at most 32, prefix6 at most 128",
                        l.name
                    ),
                ));
            }
            if rs.limits.len() + 1 >= xdpguard_abi::MAX_LIMITS as usize {
                return Err(cx.err(
                    span,
                    format!("at most {} limits", xdpguard_abi::MAX_LIMITS - 1),
                ));
            }
            rs.limits.push(Limit {
                name: l.name.clone(),
                pps: l.pps,
                burst,
                bps: l.bps,
                burst_bytes,
                prefix4,
                prefix6,
            });
        }
        let find_limit = |name: &Spanned<String>| -> Result<usize, Error> {
            rs.limits
                .iter()
                .position(|l| &l.name == name.get_ref())
                .ok_or_else(|| {
                    cx.err(
                        name.span(),
                        format!(
                            "no limit named \"{}\" (define it in a [[limit]] table)",
                            name.get_ref()
                        ),
                    )
                })
        };
        rs.global_limit = raw.global_limit.as_ref().map(find_limit).transpose()?;
        rs.syn_limit = raw.syn_limit.as_ref().map(find_limit).transpose()?;

        for (i, r) in raw.rule.iter().enumerate() {
            let span = r.span();
            let rule = rule_from_raw(r.get_ref(), &rs.limits)
                .map_err(|m| cx.err(span.clone(), format!("rule {}: {m}", i + 1)))?;
            rs.rules.push(rule);
        }
        rs.check().map_err(|(i, m)| match i {
            Some(i) => cx.err(raw.rule[i].span(), format!("rule {}: {m}", i + 1)),
            None => Error {
                line: None,
                message: m,
            },
        })?;
        Ok(rs)
    }

    /// Checks every rule and what spans rules (rule counts, limiter
    /// references): the same checks a file gets, for rule sets built in
    /// code.
    pub fn check(&self) -> Result<(), (Option<usize>, String)> {
        for (i, r) in self.rules.iter().enumerate() {
            validate(r).map_err(|m| (Some(i), m))?;
            if let Action::Limit(l) = r.action() {
                if *l >= self.limits.len() {
                    return Err((Some(i), format!("limiter {l} does not exist")));
                }
            }
        }
        if self.rules.len() > xdpguard_abi::RULES_PER_GENERATION as usize {
            return Err((
                None,
                format!(
                    "{} rules; at most {} (put long address lists in one rule's src or dst)",
                    self.rules.len(),
                    xdpguard_abi::RULES_PER_GENERATION
                ),
            ));
        }
        let compound: Vec<usize> = (0..self.rules.len())
            .filter(|&i| !self.rules[i].is_address_only())
            .collect();
        if compound.len() > xdpguard_abi::MAX_BIT_RULES as usize {
            return Err((
                Some(compound[xdpguard_abi::MAX_BIT_RULES as usize]),
                format!(
                    "more than {} rules with ports, protocols, MACs or both addresses; \
                     address-only rules (one src or dst list, nothing else) are unlimited",
                    xdpguard_abi::MAX_BIT_RULES
                ),
            ));
        }
        Ok(())
    }
}

fn cidrs(v: &Option<OneOrMany>, what: &str) -> Result<Vec<IpNet>, String> {
    let list: Vec<&String> = match v {
        None => return Ok(Vec::new()),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v.iter().collect(),
    };
    if list.is_empty() {
        return Err(format!(
            "{what} = []: give at least one address, or leave {what} out"
        ));
    }
    list.into_iter()
        .map(|s| parse_cidr(s).map_err(|e| format!("{what}: {e}")))
        .collect()
}

fn rule_from_raw(r: &RawRule, limits: &[Limit]) -> Result<Rule, String> {
    let action = match r.action.as_str() {
        "allow" | "pass" | "accept" => Action::Allow,
        "deny" | "drop" => Action::Deny,
        "limit" => {
            let name = r
                .limit
                .as_ref()
                .ok_or("action = \"limit\" needs limit = \"NAME\"")?;
            Action::Limit(limits.iter().position(|l| &l.name == name).ok_or_else(|| {
                format!("no limit named \"{name}\" (define it in a [[limit]] table)")
            })?)
        }
        other => {
            return Err(format!(
                "action = \"{other}\": use \"allow\", \"deny\" or \"limit\""
            ))
        }
    };
    if r.limit.is_some() && !matches!(action, Action::Limit(_)) {
        return Err("limit = ... only goes with action = \"limit\"".into());
    }
    let rule = Rule {
        action: Some(action),
        src: cidrs(&r.src, "src")?,
        dst: cidrs(&r.dst, "dst")?,
        proto: r
            .proto
            .as_ref()
            .map(|p| parse_proto(&as_ref(p)))
            .transpose()?,
        sport: r
            .sport
            .as_ref()
            .map(|p| parse_ports(&as_ref(p), "sport"))
            .transpose()?,
        dport: r
            .dport
            .as_ref()
            .map(|p| parse_ports(&as_ref(p), "dport"))
            .transpose()?,
        icmp_type: r.icmp_type,
        icmp_code: r.icmp_code,
        src_mac: r.src_mac.as_deref().map(parse_mac).transpose()?,
        dst_mac: r.dst_mac.as_deref().map(parse_mac).transpose()?,
        comment: r.comment.clone(),
    };
    validate(&rule)?;
    Ok(rule)
}

/// A rule written as command-line words (`xdpguard add deny --src ...`):
/// the fields of a `[[rule]]` table as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// `allow`, `deny` or `limit`.
    pub action: String,
    /// Limiter name for `limit`.
    pub limit: Option<String>,
    /// Source CIDRs.
    pub src: Vec<String>,
    /// Destination CIDRs.
    pub dst: Vec<String>,
    /// Protocol name or number.
    pub proto: Option<String>,
    /// Source port or range.
    pub sport: Option<String>,
    /// Destination port or range.
    pub dport: Option<String>,
    /// ICMP type.
    pub icmp_type: Option<String>,
    /// ICMP code.
    pub icmp_code: Option<String>,
    /// Source MAC.
    pub src_mac: Option<String>,
    /// Destination MAC.
    pub dst_mac: Option<String>,
    /// Comment.
    pub comment: Option<String>,
}

impl RuleSpec {
    /// The rule, checked exactly as a `[[rule]]` of a file is; `limits`
    /// resolves a limiter name.
    pub fn to_rule(&self, limits: &[Limit]) -> Result<Rule, String> {
        let list = |v: &[String]| match v.len() {
            0 => None,
            1 => Some(OneOrMany::One(v[0].clone())),
            _ => Some(OneOrMany::Many(v.to_vec())),
        };
        let num = |v: &Option<String>| v.as_ref().map(|s| StrOrNum::Str(s.clone()));
        let byte = |v: &Option<String>, what: &str| -> Result<Option<u8>, String> {
            v.as_ref()
                .map(|s| {
                    s.parse::<u8>()
                        .map_err(|_| format!("{what} = \"{s}\": use a number 0-255"))
                })
                .transpose()
        };
        let raw = RawRule {
            action: self.action.clone(),
            limit: self.limit.clone(),
            src: list(&self.src),
            dst: list(&self.dst),
            proto: num(&self.proto),
            sport: num(&self.sport),
            dport: num(&self.dport),
            icmp_type: byte(&self.icmp_type, "icmp_type")?,
            icmp_code: byte(&self.icmp_code, "icmp_code")?,
            src_mac: self.src_mac.clone(),
            dst_mac: self.dst_mac.clone(),
            comment: self.comment.clone(),
        };
        rule_from_raw(&raw, limits)
    }
}

/// Checks one rule's constraints fit together.
pub(crate) fn validate(rule: &Rule) -> Result<(), String> {
    let v4 = |n: &IpNet| matches!(n, IpNet::V4(_));
    let all: Vec<&IpNet> = rule.src.iter().chain(rule.dst.iter()).collect();
    if let Some(first) = all.first() {
        // Address-only lists may mix families: each entry goes to its own
        // family's trie.
        if !rule.is_address_only() && all.iter().any(|n| v4(n) != v4(first)) {
            return Err("mixes IPv4 and IPv6 addresses; write one rule per family".into());
        }
    }
    let has_l4 = rule.sport.is_some() || rule.dport.is_some();
    if has_l4 && !matches!(rule.proto, Some(6) | Some(17)) {
        return Err("sport/dport need proto = \"tcp\" or \"udp\"".into());
    }
    if rule.icmp_code.is_some() && rule.icmp_type.is_none() {
        return Err("icmp_code needs icmp_type".into());
    }
    if rule.icmp_type.is_some() && !matches!(rule.proto, Some(1) | Some(58)) {
        return Err("icmp_type needs proto = \"icmp\" or \"icmpv6\"".into());
    }
    if let (Some(p), Some(n)) = (rule.proto, all.first()) {
        if (p == 1 && !v4(n)) || (p == 58 && v4(n)) {
            return Err("proto and address family disagree (icmp is IPv4, icmpv6 is IPv6)".into());
        }
    }
    let lists = rule.src.len() > 1 || rule.dst.len() > 1;
    if lists && !rule.is_address_only() {
        return Err(
            "address lists are only allowed on rules with one src or dst list and nothing else; \
                    split it into one rule per address"
                .into(),
        );
    }
    Ok(())
}

impl RuleSet {
    /// Writes the rule set back in the file format. `from_toml` of the
    /// result gives the same rule set.
    pub fn to_toml(&self) -> String {
        use std::fmt::Write;
        let pol = |deny: bool| if deny { "deny" } else { "allow" };
        let mut s = String::new();
        let _ = writeln!(s, "default = \"{}\"", pol(self.default_deny));
        let _ = writeln!(s, "monitor = {}", self.monitor);
        let _ = writeln!(s, "malformed = \"{}\"", pol(self.malformed_deny));
        let frag = match self.fragments {
            Fragments::L3Only => "l3",
            Fragments::Drop => "drop",
            Fragments::Pass => "pass",
        };
        let _ = writeln!(s, "fragments = \"{frag}\"");
        let _ = writeln!(s, "samples = {}", self.samples);
        if let Some(l) = self.global_limit {
            let _ = writeln!(s, "global_limit = {:?}", self.limits[l].name);
        }
        if let Some(l) = self.syn_limit {
            let _ = writeln!(s, "syn_limit = {:?}", self.limits[l].name);
        }
        if !self.interfaces.is_empty() {
            let _ = writeln!(s, "\n[interfaces]");
            for (name, deny) in &self.interfaces {
                let _ = writeln!(s, "{name:?} = \"{}\"", pol(*deny));
            }
        }
        for l in &self.limits {
            let _ = writeln!(s, "\n[[limit]]\nname = {:?}", l.name);
            if l.pps > 0 {
                let _ = writeln!(s, "pps = {}\nburst = {}", l.pps, l.burst);
            }
            if l.bps > 0 {
                let _ = writeln!(s, "bps = {}\nburst_bytes = {}", l.bps, l.burst_bytes);
            }
            let _ = writeln!(s, "prefix4 = {}\nprefix6 = {}", l.prefix4, l.prefix6);
        }
        let mac = |m: &[u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let ports = |(lo, hi): (u16, u16)| {
            if lo == hi {
                format!("{lo}")
            } else {
                format!("\"{lo}-{hi}\"")
            }
        };
        let nets = |v: &[IpNet]| {
            if v.len() == 1 {
                format!("\"{}\"", v[0])
            } else {
                format!(
                    "[{}]",
                    v.iter()
                        .map(|n| format!("\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        for r in &self.rules {
            let _ = writeln!(s, "\n[[rule]]");
            match r.action() {
                Action::Allow => {
                    let _ = writeln!(s, "action = \"allow\"");
                }
                Action::Deny => {
                    let _ = writeln!(s, "action = \"deny\"");
                }
                Action::Limit(i) => {
                    let _ = writeln!(s, "action = \"limit\"\nlimit = {:?}", self.limits[*i].name);
                }
            }
            if !r.src.is_empty() {
                let _ = writeln!(s, "src = {}", nets(&r.src));
            }
            if !r.dst.is_empty() {
                let _ = writeln!(s, "dst = {}", nets(&r.dst));
            }
            if let Some(p) = r.proto {
                let _ = writeln!(s, "proto = {p}");
            }
            if let Some(p) = r.sport {
                let _ = writeln!(s, "sport = {}", ports(p));
            }
            if let Some(p) = r.dport {
                let _ = writeln!(s, "dport = {}", ports(p));
            }
            if let Some(t) = r.icmp_type {
                let _ = writeln!(s, "icmp_type = {t}");
            }
            if let Some(c) = r.icmp_code {
                let _ = writeln!(s, "icmp_code = {c}");
            }
            if let Some(m) = &r.src_mac {
                let _ = writeln!(s, "src_mac = \"{}\"", mac(m));
            }
            if let Some(m) = &r.dst_mac {
                let _ = writeln!(s, "dst_mac = \"{}\"", mac(m));
            }
            if let Some(c) = &r.comment {
                let _ = writeln!(s, "comment = {c:?}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
default = "deny"
malformed = "deny"
fragments = "l3"
syn_limit = "syn"

[interfaces]
eth1 = "allow"

[[limit]]
name = "syn"
pps = 100
burst = 200

[[rule]]
action = "allow"
proto = "tcp"
dport = 22
comment = "ssh"

[[rule]]
action = "deny"
src = "203.0.113.0/24"
proto = "tcp"
dport = "20-23"

[[rule]]
action = "deny"
src = ["198.51.100.0/24", "2001:db8::/32"]
"#;

    #[test]
    fn example_parses() {
        let rs = RuleSet::from_toml(EXAMPLE).expect("example parses");
        assert!(rs.default_deny);
        assert_eq!(rs.rules.len(), 3);
        assert_eq!(rs.rules[1].dport, Some((20, 23)));
        assert_eq!(rs.syn_limit, Some(0));
        assert_eq!(rs.interfaces, vec![("eth1".to_string(), false)]);
    }

    #[test]
    fn mixed_family_list_is_allowed_on_address_only_rules() {
        // Each entry goes to its own family's trie.
        let rs = RuleSet::from_toml(EXAMPLE).expect("parses");
        assert!(rs.rules[2].is_address_only());
    }

    #[test]
    fn export_round_trips() {
        let rs = RuleSet::from_toml(EXAMPLE).expect("parses");
        let again = RuleSet::from_toml(&rs.to_toml()).expect("export parses");
        assert_eq!(rs, again);
    }

    fn err(text: &str) -> Error {
        RuleSet::from_toml(text).expect_err("must be refused")
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let e = err("default = \"deny\"\n\n[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.1/8\"\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("did you mean 10.0.0.0/8"), "{e}");

        let e = err("[[rule]]\naction = \"deny\"\ndport = 22\n");
        assert!(e.message.contains("need proto"), "{e}");

        let e = err("[[rule]]\naction = \"deny\"\nproto = \"tcp\"\ndport = \"30-20\"\n");
        assert!(e.message.contains("backwards"), "{e}");

        let e = err("[[rule]]\naction = \"limit\"\nsrc = \"10.0.0.0/8\"\n");
        assert!(e.message.contains("needs limit"), "{e}");

        let e = err("[[rule]]\naction = \"deny\"\nsrc_mac = \"zz:00:00:00:00:00\"\n");
        assert!(e.message.contains("not a MAC"), "{e}");

        let e = err("[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.0/8\"\ndst = \"2001:db8::/32\"\n");
        assert!(e.message.contains("mixes IPv4 and IPv6"), "{e}");

        let e = err("deafult = \"deny\"\n");
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn too_many_compound_rules_are_refused() {
        let mut text = String::new();
        for p in 0..65 {
            text.push_str(&format!(
                "[[rule]]\naction = \"deny\"\nproto = \"tcp\"\ndport = {p}\n"
            ));
        }
        let e = err(&text);
        assert!(e.message.contains("more than 64"), "{e}");
        assert_eq!(e.line, Some(65 * 4 - 3), "{e}");
    }
}
