// SPDX-License-Identifier: GPL-2.0

//! A rule as command-line words, checked as a `[[rule]]` table is.

use super::*;

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
            1 => Some(OneOrMany::One(Cidr(parse_cidr(&v[0])))),
            _ => Some(OneOrMany::Many(
                v.iter().map(|s| Spanned::new(0..0, Cidr(parse_cidr(s)))).collect(),
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
pub(super) fn validate_keyed(rule: &Rule) -> Result<(), KeyError> {
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
