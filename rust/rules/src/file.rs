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

/// An address or a list of them. A list keeps each entry's span, so that
/// an error names the line of the entry (lists may span many lines).
enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address or CIDR, or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(OneOrMany::Many(v))
            }
        }
        d.deserialize_any(V)
    }
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

// Every value keeps its span (toml's `Spanned`): an error about a key
// names that key's line; only an error about a key that is missing names
// the table's `[[limit]]` or `[[rule]]` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    name: Spanned<String>,
    pps: Option<Spanned<u32>>,
    burst: Option<Spanned<u32>>,
    bps: Option<Spanned<u64>>,
    burst_bytes: Option<Spanned<u64>>,
    prefix4: Option<Spanned<u8>>,
    prefix6: Option<Spanned<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: Spanned<String>,
    limit: Option<Spanned<String>>,
    src: Option<Spanned<OneOrMany>>,
    dst: Option<Spanned<OneOrMany>>,
    proto: Option<Spanned<StrOrNum>>,
    sport: Option<Spanned<StrOrNum>>,
    dport: Option<Spanned<StrOrNum>>,
    icmp_type: Option<Spanned<u8>>,
    icmp_code: Option<Spanned<u8>>,
    src_mac: Option<Spanned<String>>,
    dst_mac: Option<Spanned<String>>,
    comment: Option<String>,
}

/// The key of a `[[rule]]` an error is about; for `src` and `dst`, which
/// entry of a list (`None`: the key itself). An error with no key is about
/// one that is missing, and names the rule's `[[rule]]` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Action,
    Limit,
    Src(Option<usize>),
    Dst(Option<usize>),
    Proto,
    Sport,
    Dport,
    IcmpType,
    SrcMac,
    DstMac,
}

/// A rule's error: the key it is about (`None`: a missing one), what is wrong.
type KeyError = (Option<Key>, String);

fn list_span(v: &Option<Spanned<OneOrMany>>, i: Option<usize>) -> Option<Range<usize>> {
    let v = v.as_ref()?;
    match (v.get_ref(), i) {
        (OneOrMany::Many(items), Some(i)) => items.get(i).map(Spanned::span).or(Some(v.span())),
        _ => Some(v.span()),
    }
}

impl RawRule {
    /// Where `key` is written (none if it is not).
    fn span_of(&self, key: Key) -> Option<Range<usize>> {
        let sp = |v: &Option<Spanned<StrOrNum>>| v.as_ref().map(Spanned::span);
        match key {
            Key::Action => Some(self.action.span()),
            Key::Limit => self.limit.as_ref().map(Spanned::span),
            Key::Src(i) => list_span(&self.src, i),
            Key::Dst(i) => list_span(&self.dst, i),
            Key::Proto => sp(&self.proto),
            Key::Sport => sp(&self.sport),
            Key::Dport => sp(&self.dport),
            Key::IcmpType => self.icmp_type.as_ref().map(Spanned::span),
            Key::SrcMac => self.src_mac.as_ref().map(Spanned::span),
            Key::DstMac => self.dst_mac.as_ref().map(Spanned::span),
        }
    }
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
            let header = l.span();
            let l = l.get_ref();
            let name = l.name.get_ref();
            let at = |v: Option<Range<usize>>| v.unwrap_or_else(|| header.clone());
            if rs.limits.iter().any(|x| &x.name == name) {
                return Err(cx.err(l.name.span(), format!("limit \"{name}\" is defined twice")));
            }
            let pps = l.pps.as_ref().map_or(0, |v| *v.get_ref());
            let bps = l.bps.as_ref().map_or(0, |v| *v.get_ref());
            if pps == 0 && bps == 0 {
                // A rate written as 0, or none at all (the table's line).
                let given = l.pps.as_ref().map(Spanned::span);
                let given = given.or(l.bps.as_ref().map(Spanned::span));
                return Err(cx.err(at(given), format!("limit \"{name}\": set pps, bps or both")));
            }
            // A burst only means something for a rate that is set.
            let burst = if pps > 0 {
                l.burst.as_ref().map_or(pps, |v| *v.get_ref())
            } else {
                0
            };
            let burst_bytes = if bps > 0 {
                l.burst_bytes.as_ref().map_or(bps, |v| *v.get_ref())
            } else {
                0
            };
            let bad_burst = if pps > 0 && burst == 0 {
                Some(l.burst.as_ref().map(Spanned::span))
            } else if (bps > 0 && burst_bytes == 0) || burst_bytes > MAX_BURST {
                // Too big: the burst written, or bps it defaults to.
                let given = l.burst_bytes.as_ref().map(Spanned::span);
                Some(given.or(l.bps.as_ref().map(Spanned::span)))
            } else {
                None
            };
            if let Some(span) = bad_burst {
                return Err(cx.err(
                    at(span),
                    format!("limit \"{name}\": bursts must be 1 to {MAX_BURST}"),
                ));
            }
            let prefix4 = l.prefix4.as_ref().map_or(32, |v| *v.get_ref());
            let prefix6 = l.prefix6.as_ref().map_or(128, |v| *v.get_ref());
            if prefix4 > 32 || prefix6 > 128 {
                let span = if prefix4 > 32 {
                    l.prefix4.as_ref().map(Spanned::span)
                } else {
                    l.prefix6.as_ref().map(Spanned::span)
                };
                return Err(cx.err(
                    at(span),
                    format!("limit \"{name}\": prefix4 is at most 32, prefix6 at most 128"),
                ));
            }
            if rs.limits.len() + 1 >= xdpguard_abi::MAX_LIMITS as usize {
                return Err(cx.err(
                    header,
                    format!("at most {} limits", xdpguard_abi::MAX_LIMITS - 1),
                ));
            }
            rs.limits.push(Limit {
                name: name.clone(),
                pps,
                burst,
                bps,
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
            let rule = rule_from_raw(r.get_ref(), &rs.limits).map_err(|(key, m)| {
                // The offending key's line; the `[[rule]]` line for a
                // missing key.
                let span = key.and_then(|k| r.get_ref().span_of(k));
                cx.err(span.unwrap_or(r.span()), format!("rule {}: {m}", i + 1))
            })?;
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

fn cidrs(
    v: &Option<Spanned<OneOrMany>>,
    what: &str,
    key: fn(Option<usize>) -> Key,
) -> Result<Vec<IpNet>, KeyError> {
    let list: Vec<&String> = match v.as_ref().map(Spanned::get_ref) {
        None => return Ok(Vec::new()),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v.iter().map(Spanned::get_ref).collect(),
    };
    if list.is_empty() {
        return Err((
            Some(key(None)),
            format!("{what} = []: give at least one address, or leave {what} out"),
        ));
    }
    let many =
        list.len() > 1 || matches!(v.as_ref().map(Spanned::get_ref), Some(OneOrMany::Many(_)));
    list.into_iter()
        .enumerate()
        .map(|(i, s)| {
            parse_cidr(s).map_err(|e| (Some(key(many.then_some(i))), format!("{what}: {e}")))
        })
        .collect()
}

fn rule_from_raw(r: &RawRule, limits: &[Limit]) -> Result<Rule, KeyError> {
    let at = |k: Key| move |m: String| (Some(k), m);
    let action = match r.action.get_ref().as_str() {
        "allow" | "pass" | "accept" => Action::Allow,
        "deny" | "drop" => Action::Deny,
        "limit" => {
            let name = r.limit.as_ref().ok_or((
                None,
                "action = \"limit\" needs limit = \"NAME\"".to_string(),
            ))?;
            let name = name.get_ref();
            Action::Limit(limits.iter().position(|l| &l.name == name).ok_or_else(|| {
                (
                    Some(Key::Limit),
                    format!("no limit named \"{name}\" (define it in a [[limit]] table)"),
                )
            })?)
        }
        other => {
            return Err((
                Some(Key::Action),
                format!("action = \"{other}\": use \"allow\", \"deny\" or \"limit\""),
            ))
        }
    };
    if r.limit.is_some() && !matches!(action, Action::Limit(_)) {
        return Err((
            Some(Key::Limit),
            "limit = ... only goes with action = \"limit\"".into(),
        ));
    }
    fn value(v: &Option<Spanned<StrOrNum>>) -> Option<StrOrNumRef<'_>> {
        v.as_ref().map(|p| as_ref(p.get_ref()))
    }
    let rule = Rule {
        action: Some(action),
        src: cidrs(&r.src, "src", Key::Src)?,
        dst: cidrs(&r.dst, "dst", Key::Dst)?,
        proto: value(&r.proto)
            .map(|p| parse_proto(&p))
            .transpose()
            .map_err(at(Key::Proto))?,
        sport: value(&r.sport)
            .map(|p| parse_ports(&p, "sport"))
            .transpose()
            .map_err(at(Key::Sport))?,
        dport: value(&r.dport)
            .map(|p| parse_ports(&p, "dport"))
            .transpose()
            .map_err(at(Key::Dport))?,
        icmp_type: r.icmp_type.as_ref().map(|v| *v.get_ref()),
        icmp_code: r.icmp_code.as_ref().map(|v| *v.get_ref()),
        src_mac: r
            .src_mac
            .as_ref()
            .map(|m| parse_mac(m.get_ref()))
            .transpose()
            .map_err(at(Key::SrcMac))?,
        dst_mac: r
            .dst_mac
            .as_ref()
            .map(|m| parse_mac(m.get_ref()))
            .transpose()
            .map_err(at(Key::DstMac))?,
        comment: r.comment.clone(),
    };
    validate_keyed(&rule)?;
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
            _ => Some(OneOrMany::Many(
                v.iter().map(|s| Spanned::new(0..0, s.clone())).collect(),
            )),
        };
        // Words have no place in a file: no spans.
        fn none<T>(v: T) -> Spanned<T> {
            Spanned::new(0..0, v)
        }
        let num = |v: &Option<String>| v.as_ref().map(|s| none(StrOrNum::Str(s.clone())));
        let text = |v: &Option<String>| v.clone().map(none);
        let byte = |v: &Option<String>, what: &str| -> Result<Option<Spanned<u8>>, String> {
            v.as_ref()
                .map(|s| {
                    s.parse::<u8>()
                        .map(none)
                        .map_err(|_| format!("{what} = \"{s}\": use a number 0-255"))
                })
                .transpose()
        };
        let raw = RawRule {
            action: none(self.action.clone()),
            limit: text(&self.limit),
            src: list(&self.src).map(none),
            dst: list(&self.dst).map(none),
            proto: num(&self.proto),
            sport: num(&self.sport),
            dport: num(&self.dport),
            icmp_type: byte(&self.icmp_type, "icmp_type")?,
            icmp_code: byte(&self.icmp_code, "icmp_code")?,
            src_mac: text(&self.src_mac),
            dst_mac: text(&self.dst_mac),
            comment: self.comment.clone(),
        };
        rule_from_raw(&raw, limits).map_err(|(_, m)| m)
    }
}

/// Checks one rule's constraints fit together.
pub(crate) fn validate(rule: &Rule) -> Result<(), String> {
    validate_keyed(rule).map_err(|(_, m)| m)
}

/// [`validate`], saying which key is wrong: the one the error is about, or
/// none when a key the rule needs is missing.
fn validate_keyed(rule: &Rule) -> Result<(), KeyError> {
    let v4 = |n: &IpNet| matches!(n, IpNet::V4(_));
    let all: Vec<&IpNet> = rule.src.iter().chain(rule.dst.iter()).collect();
    // Entry `i` of src followed by dst, as a key.
    let entry = |i: usize| {
        if i < rule.src.len() {
            Key::Src((rule.src.len() > 1).then_some(i))
        } else {
            Key::Dst((rule.dst.len() > 1).then_some(i - rule.src.len()))
        }
    };
    if let Some(first) = all.first() {
        // Address-only lists may mix families: each entry goes to its own
        // family's trie.
        if !rule.is_address_only() {
            if let Some(i) = all.iter().position(|n| v4(n) != v4(first)) {
                return Err((
                    Some(entry(i)),
                    "mixes IPv4 and IPv6 addresses; write one rule per family".into(),
                ));
            }
        }
    }
    let has_l4 = rule.sport.is_some() || rule.dport.is_some();
    if has_l4 && !matches!(rule.proto, Some(6) | Some(17)) {
        let key = if rule.sport.is_some() {
            Key::Sport
        } else {
            Key::Dport
        };
        return Err((
            rule.proto.map(|_| key),
            "sport/dport need proto = \"tcp\" or \"udp\"".into(),
        ));
    }
    if rule.icmp_code.is_some() && rule.icmp_type.is_none() {
        return Err((None, "icmp_code needs icmp_type".into()));
    }
    if rule.icmp_type.is_some() && !matches!(rule.proto, Some(1) | Some(58)) {
        return Err((
            rule.proto.map(|_| Key::IcmpType),
            "icmp_type needs proto = \"icmp\" or \"icmpv6\"".into(),
        ));
    }
    if let (Some(p), Some(n)) = (rule.proto, all.first()) {
        if (p == 1 && !v4(n)) || (p == 58 && v4(n)) {
            return Err((
                Some(Key::Proto),
                "proto and address family disagree (icmp is IPv4, icmpv6 is IPv6)".into(),
            ));
        }
    }
    let lists = rule.src.len() > 1 || rule.dst.len() > 1;
    if lists && !rule.is_address_only() {
        let key = if rule.src.len() > 1 {
            Key::Src(None)
        } else {
            Key::Dst(None)
        };
        return Err((
            Some(key),
            "address lists are only allowed on rules with one src or dst list and nothing else; \
                    split it into one rule per address"
                .into(),
        ));
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
        assert_eq!(e.line, Some(5), "{e}");
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

    /// Line and message of the error `text` gets, after a valid rule 1.
    fn line_in_rule_2(text: &str) -> (Option<usize>, String) {
        let file = format!("[[rule]]\naction = \"allow\"\nproto = \"tcp\"\n\n[[rule]]\n{text}");
        let e = err(&file);
        (e.line.map(|l| l - 5), e.message)
    }

    #[test]
    fn errors_name_the_line_of_the_offending_key() {
        // (rule 2's text, line within it: 0 is `[[rule]]`, 1 its first key).
        let cases: &[(&str, usize, &str)] = &[
            ("action = \"deny\"\nproto = \"tcp\"\ndport = \"30-20\"\n", 3, "rule 2: dport = \"30-20\": the range is backwards"),
            ("action = \"deny\"\nproto = \"tcp\"\n\ncomment = \"x\"\nsport = 70000\n", 5, "rule 2: sport = 70000: ports are 0 to 65535"),
            ("comment = \"c\"\naction = \"block\"\n", 2, "rule 2: action = \"block\""),
            ("action = \"deny\"\nproto = \"tcpp\"\n", 2, "rule 2: proto = \"tcpp\""),
            ("action = \"deny\"\nsrc = \"10.0.0.1/8\"\n", 2, "rule 2: src: \"10.0.0.1/8\" has host bits set"),
            ("action = \"deny\"\ndst = []\n", 2, "rule 2: dst = []"),
            ("action = \"deny\"\nsrc_mac = \"02:00:5e:10:00:01\"\ndst_mac = \"zz\"\n", 3, "rule 2: \"zz\" is not a MAC"),
            ("action = \"limit\"\nlimit = \"nope\"\n", 2, "rule 2: no limit named \"nope\""),
            ("action = \"deny\"\nlimit = \"syn\"\n", 2, "rule 2: limit = ... only goes with"),
            // An entry of a list that spans lines: that entry's line.
            ("action = \"deny\"\nsrc = [\n  \"192.0.2.0/24\",\n  \"10.0.0.1/8\",\n]\n", 4, "rule 2: src: \"10.0.0.1/8\""),
            // Keys that do not fit together: the key the error is about.
            ("action = \"deny\"\nsrc = \"10.0.0.0/8\"\nproto = \"tcp\"\ndst = \"2001:db8::/32\"\n", 4, "rule 2: mixes IPv4 and IPv6"),
            ("action = \"deny\"\nproto = \"icmp\"\ndport = 22\n", 3, "rule 2: sport/dport need proto"),
            ("action = \"deny\"\nproto = \"udp\"\nicmp_type = 8\n", 3, "rule 2: icmp_type needs proto"),
            ("action = \"deny\"\nsrc = \"2001:db8::/32\"\nproto = \"icmp\"\n", 3, "rule 2: proto and address family disagree"),
            ("action = \"deny\"\nproto = \"tcp\"\nsrc = [\"10.0.0.0/8\", \"10.1.0.0/16\"]\n", 3, "rule 2: address lists are only allowed"),
            // toml's own errors carry the value's span too.
            ("action = \"deny\"\nproto = \"icmp\"\nicmp_type = 300\n", 3, "invalid value: integer `300`"),
            ("action = \"deny\"\n\nbogus = 1\n", 3, "unknown field `bogus`"),
            // A missing key: the [[rule]] line.
            ("action = \"limit\"\nsrc = \"10.0.0.0/8\"\n", 0, "rule 2: action = \"limit\" needs limit = \"NAME\""),
            ("action = \"deny\"\ndport = 22\n", 0, "rule 2: sport/dport need proto"),
            ("action = \"deny\"\nicmp_type = 8\n", 0, "rule 2: icmp_type needs proto"),
            ("action = \"deny\"\nproto = \"icmp\"\nicmp_code = 0\n", 0, "rule 2: icmp_code needs icmp_type"),
            ("proto = \"tcp\"\n", 0, "missing field `action`"),
        ];
        for (text, line, msg) in cases {
            let (l, m) = line_in_rule_2(text);
            assert_eq!(l, Some(*line), "{text:?}: {m}");
            assert!(m.starts_with(msg), "{text:?}: {m}");
        }
    }

    #[test]
    fn limit_errors_name_the_line_of_the_offending_key() {
        let at = |text: &str| {
            let e = err(&format!("default = \"deny\"\n\n[[limit]]\n{text}"));
            (e.line.map(|l| l - 3), e.message)
        };
        let cases: &[(&str, usize, &str)] = &[
            (
                "name = \"a\"\npps = 1\nburst = 0\n",
                3,
                "limit \"a\": bursts must be 1",
            ),
            (
                "name = \"a\"\nbps = 10\nburst_bytes = 0\n",
                3,
                "limit \"a\": bursts must be 1",
            ),
            (
                "name = \"a\"\nbps = 8589934592\n",
                2,
                "limit \"a\": bursts must be 1",
            ),
            (
                "name = \"a\"\nbps = 10\nburst_bytes = 8589934592\n",
                3,
                "limit \"a\": bursts must be 1",
            ),
            (
                "name = \"a\"\npps = 1\nprefix6 = 64\nprefix4 = 33\n",
                4,
                "limit \"a\": prefix4 is at most 32",
            ),
            (
                "name = \"a\"\npps = 1\nprefix6 = 129\n",
                3,
                "limit \"a\": prefix4 is at most 32",
            ),
            (
                "name = \"a\"\npps = 0\n",
                2,
                "limit \"a\": set pps, bps or both",
            ),
            (
                "name = \"a\"\npps = 1\n\n[[limit]]\nname = \"a\"\npps = 2\n",
                5,
                "limit \"a\" is defined twice",
            ),
            // Missing: the [[limit]] line.
            (
                "name = \"a\"\nprefix4 = 24\n",
                0,
                "limit \"a\": set pps, bps or both",
            ),
            ("pps = 1\n", 0, "missing field `name`"),
        ];
        for (text, line, msg) in cases {
            let (l, m) = at(text);
            assert_eq!(l, Some(*line), "{text:?}: {m}");
            assert!(m.starts_with(msg), "{text:?}: {m}");
        }
    }

    #[test]
    fn command_line_rules_are_checked_as_file_rules() {
        let spec = RuleSpec {
            action: "deny".into(),
            src: vec!["192.0.2.0/24".into(), "10.0.0.1/8".into()],
            ..RuleSpec::default()
        };
        let e = spec.to_rule(&[]).expect_err("host bits");
        assert_eq!(
            e,
            "src: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
        let spec = RuleSpec {
            action: "deny".into(),
            proto: Some("tcp".into()),
            dport: Some("22".into()),
            icmp_code: Some("300".into()),
            ..RuleSpec::default()
        };
        assert_eq!(
            spec.to_rule(&[]).expect_err("code"),
            "icmp_code = \"300\": use a number 0-255"
        );
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
