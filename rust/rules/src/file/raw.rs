// SPDX-License-Identifier: GPL-2.0

//! The rule file as serde reads it: every value keeps its span.

use super::*;

/// One entry of `src` or `dst`, parsed as serde reads it (no copy of the
/// text is kept: a million-entry list is a million `IpNet`s); a bad entry
/// keeps parse_cidr's message until the rule's key is known.
pub(super) struct Cidr(pub(super) Result<IpNet, String>);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address or CIDR")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Cidr, E> {
                Ok(Cidr(parse_cidr(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An address or a list of them. A list keeps each entry's span, so that
/// an error names the line of the entry (lists may span many lines).
pub(super) enum OneOrMany {
    One(Cidr),
    Many(Vec<Spanned<Cidr>>),
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
                Ok(OneOrMany::One(Cidr(parse_cidr(s))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(s) = seq.next_element::<Spanned<Cidr>>()? {
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
pub(super) enum StrOrNum {
    Num(i64),
    Str(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) default: Option<Spanned<String>>,
    pub(super) monitor: Option<bool>,
    pub(super) malformed: Option<Spanned<String>>,
    pub(super) fragments: Option<Spanned<String>>,
    pub(super) global_limit: Option<Spanned<String>>,
    pub(super) syn_limit: Option<Spanned<String>>,
    pub(super) samples: Option<u16>,
    #[serde(default)]
    pub(super) interfaces: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) limit: Vec<Spanned<RawLimit>>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<RawRule>>,
}

// Every value keeps its span (toml's `Spanned`): an error about a key
// names that key's line; only an error about a key that is missing names
// the table's `[[limit]]` or `[[rule]]` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimit {
    pub(super) name: Spanned<String>,
    pub(super) pps: Option<Spanned<u32>>,
    pub(super) burst: Option<Spanned<u32>>,
    pub(super) bps: Option<Spanned<u64>>,
    pub(super) burst_bytes: Option<Spanned<u64>>,
    pub(super) prefix4: Option<Spanned<u8>>,
    pub(super) prefix6: Option<Spanned<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) action: Spanned<String>,
    pub(super) limit: Option<Spanned<String>>,
    pub(super) src: Option<Spanned<OneOrMany>>,
    pub(super) dst: Option<Spanned<OneOrMany>>,
    pub(super) proto: Option<Spanned<StrOrNum>>,
    pub(super) sport: Option<Spanned<StrOrNum>>,
    pub(super) dport: Option<Spanned<StrOrNum>>,
    pub(super) icmp_type: Option<Spanned<u8>>,
    pub(super) icmp_code: Option<Spanned<u8>>,
    pub(super) src_mac: Option<Spanned<String>>,
    pub(super) dst_mac: Option<Spanned<String>>,
    pub(super) comment: Option<String>,
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
pub(super) type KeyError = (Option<Key>, String);

pub(super) fn list_span(v: &Option<Spanned<OneOrMany>>, i: Option<usize>) -> Option<Range<usize>> {
    let v = v.as_ref()?;
    match (v.get_ref(), i) {
        (OneOrMany::Many(items), Some(i)) => items.get(i).map(Spanned::span).or(Some(v.span())),
        _ => Some(v.span()),
    }
}

impl RawRule {
    /// Where `key` is written (none if it is not).
    pub(super) fn span_of(&self, key: Key) -> Option<Range<usize>> {
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
