// SPDX-License-Identifier: GPL-2.0

//! Parsers of single values (policies, protocols, ports, MACs, CIDRs)
//! and of one `[[rule]]` table.

use super::*;

/// Largest burst the program's token arithmetic allows.
pub(super) const MAX_BURST: u64 = 1 << 32;

/// 1-based line of byte offset `pos` in `text`.
pub(super) fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    pub(super) fn err(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        Error {
            line: Some(line_of(self.text, span.start)),
            message: message.into(),
        }
    }
}

pub(super) fn parse_policy(word: &str, what: &str) -> Result<bool, String> {
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

pub(super) fn as_ref(v: &StrOrNum) -> StrOrNumRef<'_> {
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
    // A bare address is parsed once, not first tried as a CIDR.
    let net = if s.contains('/') {
        s.parse::<IpNet>().ok()
    } else {
        s.parse::<std::net::IpAddr>().ok().map(IpNet::from)
    };
    let Some(net) = net else {
        return Err(format!(
            "\"{s}\" is not an address or CIDR (write 192.0.2.0/24 or 2001:db8::/32)"
        ));
    };
    if net.trunc() != net {
        return Err(format!(
            "\"{s}\" has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

pub(super) fn cidrs(
    v: &Option<Spanned<OneOrMany>>,
    what: &str,
    key: fn(Option<usize>) -> Key,
) -> Result<Vec<IpNet>, KeyError> {
    let list: Vec<&Cidr> = match v.as_ref().map(Spanned::get_ref) {
        None => return Ok(Vec::new()),
        Some(OneOrMany::One(c)) => vec![c],
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
        .map(|(i, c)| {
            c.0.clone()
                .map_err(|e| (Some(key(many.then_some(i))), format!("{what}: {e}")))
        })
        .collect()
}

pub(super) fn rule_from_raw(r: &RawRule, limits: &[Limit]) -> Result<Rule, KeyError> {
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
