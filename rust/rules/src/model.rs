// SPDX-License-Identifier: GPL-2.0

//! The reference model: what the XDP program must decide for a packet, computed from the rule list itself.
//!
//! It shares no code with the program or the compiler beyond the ABI
//! constants and `abi::rank`: it parses the frame with its own code and
//! tries every rule in turn. Rate limiters are assumed to have tokens (the
//! model has no clock); the differential test configures them so.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use xdpguard_abi::*;

use crate::{Action, Fragments, Rule, RuleSet};

/// What the parser of the model learnt about a frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Ethernet source.
    pub eth_src: [u8; 6],
    /// Ethernet destination.
    pub eth_dst: [u8; 6],
    /// Source and destination address, for IP frames.
    pub addrs: Option<(IpAddr, IpAddr)>,
    /// Upper-layer protocol.
    pub proto: u8,
    /// Ports (TCP/UDP, the header's first 4 bytes) or `(type << 8 | code,
    /// 0)` for ICMP (its first 2), when the frame shows them.
    pub l4: Option<(u16, u16)>,
    /// The L4 header is shorter than its minimum or (TCP) its data
    /// offset says, or that offset is below 5.
    pub l4_bad: bool,
    /// A non-first fragment.
    pub fragment: bool,
    /// The first of several fragments.
    pub first_fragment: bool,
    /// Link-essential (ARP, ICMPv6 ND/RA/MLD, DHCP client traffic).
    pub essential: bool,
    /// TCP SYN without ACK.
    pub syn: bool,
}

/// Parses a frame; `None` means malformed at L2/L3.
pub fn parse(p: &[u8]) -> Option<Facts> {
    let mut f = Facts::default();
    let eth = p.get(0..14)?;
    f.eth_dst.copy_from_slice(&eth[0..6]);
    f.eth_src.copy_from_slice(&eth[6..12]);
    let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = 14;
    let mut tags = 0;
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        if tags == MAX_VLAN_TAGS {
            return None;
        }
        let tag = p.get(off..off + 4)?;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        off += 4;
        tags += 1;
    }
    match ethertype {
        0x0800 => {
            let ip = p.get(off..off + 20)?;
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || p.len() < off + total {
                return None;
            }
            // The datagram ends where its header says, not at the frame's end.
            let p = &p[..off + total];
            f.proto = ip[9];
            let s = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let d = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            f.addrs = Some((s.into(), d.into()));
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            if frag & 0x1fff != 0 {
                f.fragment = true;
            } else {
                f.first_fragment = frag & 0x2000 != 0;
                l4(p, off + ihl, 4, &mut f);
            }
        }
        0x86dd => {
            let ip = p.get(off..off + 40)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let end = off + 40 + u16::from_be_bytes([ip[4], ip[5]]) as usize;
            let p = p.get(..end)?;
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            f.addrs = Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()));
            let mut next = ip[6];
            off += 40;
            let mut walked = 0;
            loop {
                let is_ext = matches!(next, 0 | 43 | 60 | 51 | 44);
                if !is_ext {
                    break;
                }
                if walked == MAX_EXT_HDRS {
                    return None;
                }
                walked += 1;
                match next {
                    44 => {
                        let h = p.get(off..off + 8)?;
                        next = h[0];
                        off += 8;
                        let frag = u16::from_be_bytes([h[2], h[3]]);
                        if frag >> 3 != 0 {
                            f.proto = next;
                            f.fragment = true;
                            return Some(f);
                        }
                        f.first_fragment = frag & 1 != 0;
                    }
                    51 => {
                        let h = p.get(off..off + 2)?;
                        next = h[0];
                        off += (h[1] as usize + 2) * 4;
                    }
                    _ => {
                        let h = p.get(off..off + 2)?;
                        next = h[0];
                        off += (h[1] as usize + 1) * 8;
                    }
                }
                if off > p.len() {
                    return None;
                }
            }
            f.proto = next;
            l4(p, off, 6, &mut f);
        }
        0x0806 => f.essential = true,
        _ => {}
    }
    Some(f)
}

fn l4(p: &[u8], off: usize, family: u8, f: &mut Facts) {
    let (full, fields) = match f.proto {
        6 => (20, 4),
        17 => (8, 4),
        1 | 58 => (4, 2),
        _ => return,
    };
    let h = p.get(off..).unwrap_or(&[]);
    f.l4_bad = h.len() < full;
    if h.len() < fields {
        return;
    }
    match f.proto {
        1 | 58 => {
            f.l4 = Some((icmp_value(h[0], h[1]), 0));
            f.essential =
                family == 6 && f.proto == 58 && ((130..=137).contains(&h[0]) || h[0] == 143);
        }
        _ => {
            let (sp, dp) = (
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            );
            f.l4 = Some((sp, dp));
            if f.proto == 17 {
                f.essential = (family == 4 && dp == 68) || (family == 6 && dp == 546);
            } else if h.len() >= 20 {
                let data_offset = (h[12] >> 4) as usize * 4;
                if data_offset < 20 || data_offset > h.len() {
                    f.l4_bad = true;
                }
                f.syn = h[13] & 0x12 == 0x02;
            }
        }
    }
}

/// The verdict and why, as the counters record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `true`: XDP_DROP.
    pub drop: bool,
    /// `REASON_*`.
    pub reason: u32,
    /// The rule that decided (its position in the rule set), if any.
    pub rule_id: Option<u32>,
    /// Monitor mode turned a drop into a pass.
    pub monitored: bool,
    /// The limiter (1-based) the packet was charged to, if any.
    pub limiter: Option<u8>,
}

fn prefix_of(nets: &[ipnet::IpNet], addr: IpAddr) -> Option<u32> {
    nets.iter()
        .filter(|n| n.contains(&addr))
        .map(|n| n.prefix_len() as u32)
        .max()
}

/// The rank of `rule` for the frame, if it matches.
fn rule_rank(rule: &Rule, order: usize, f: &Facts) -> Option<u32> {
    if rule.src_mac.is_some_and(|m| m != f.eth_src) || rule.dst_mac.is_some_and(|m| m != f.eth_dst)
    {
        return None;
    }
    let Some((s, d)) = f.addrs else {
        return rule.matches_non_ip().then(|| rule.rank(0, order as u32));
    };
    let (v4, v6) = rule.families();
    if !rule.is_address_only() && !(if s.is_ipv4() { v4 } else { v6 }) {
        return None;
    }
    let mut bits = 0;
    if !rule.src.is_empty() {
        bits += prefix_of(&rule.src, s)?;
    }
    if !rule.dst.is_empty() {
        bits += prefix_of(&rule.dst, d)?;
    }
    if rule.proto.is_some_and(|p| p != f.proto) {
        return None;
    }
    if rule.sport.is_some() || rule.dport.is_some() {
        let (sp, dp) = f.l4?;
        let in_range = |r: Option<(u16, u16)>, v: u16| r.is_none_or(|(lo, hi)| lo <= v && v <= hi);
        if !in_range(rule.sport, sp) || !in_range(rule.dport, dp) {
            return None;
        }
    }
    if let Some(t) = rule.icmp_type {
        let (tc, _) = f.l4?;
        if (tc >> 8) as u8 != t || rule.icmp_code.is_some_and(|c| c != tc as u8) {
            return None;
        }
    }
    Some(rule.rank(bits, order as u32))
}

/// Decides a frame's fate under `rs`. `iface_deny` holds per-interface
/// default policies by ifindex (`true`: deny); `ifindex` is the frame's.
pub fn evaluate(
    rs: &RuleSet,
    iface_deny: &BTreeMap<u32, bool>,
    ifindex: u32,
    frame: &[u8],
) -> Outcome {
    let malformed = |rs: &RuleSet| Outcome {
        drop: rs.malformed_deny,
        reason: REASON_MALFORMED,
        rule_id: None,
        monitored: false,
        limiter: None,
    };
    let Some(f) = parse(frame) else {
        return finish(rs, malformed(rs));
    };
    if f.fragment && rs.fragments != Fragments::L3Only {
        let drop = rs.fragments == Fragments::Drop;
        return finish(
            rs,
            Outcome {
                drop,
                reason: REASON_FRAGMENT,
                rule_id: None,
                monitored: false,
                limiter: None,
            },
        );
    }
    let best = rs
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| rule_rank(r, i, &f).map(|rank| (rank, i)))
        .min();
    // A bad L4 header is kept only by a rule that drops it; a first
    // fragment with one is dropped whatever the malformed policy says.
    let malformed_l4 = |rs: &RuleSet| {
        let mut o = malformed(rs);
        o.drop |= f.first_fragment;
        o
    };
    let limiter_of = |a: &Action| match a {
        Action::Limit(i) => Some(*i as u8 + 1),
        _ => None,
    };
    let out = if let Some((_, i)) = best {
        let action = rs.rules[i].action();
        let deny = *action == Action::Deny;
        if f.l4_bad && !deny {
            malformed_l4(rs)
        } else {
            Outcome {
                drop: deny,
                reason: if deny {
                    REASON_RULE_DENY
                } else {
                    REASON_RULE_ALLOW
                },
                rule_id: Some(i as u32),
                monitored: false,
                limiter: limiter_of(action),
            }
        }
    } else if f.l4_bad {
        malformed_l4(rs)
    } else if f.essential {
        Outcome {
            drop: false,
            reason: REASON_ESSENTIAL,
            rule_id: None,
            monitored: false,
            limiter: None,
        }
    } else {
        let deny = iface_deny.get(&ifindex).copied().unwrap_or(rs.default_deny);
        Outcome {
            drop: deny,
            reason: if deny {
                REASON_DEFAULT_DENY
            } else {
                REASON_DEFAULT_ALLOW
            },
            rule_id: None,
            monitored: false,
            limiter: None,
        }
    };
    let mut out = out;
    // The one limiter a passing packet is charged to (never exhausted here).
    if out.limiter.is_none()
        && !out.drop
        && matches!(
            out.reason,
            REASON_RULE_ALLOW | REASON_DEFAULT_ALLOW | REASON_ESSENTIAL
        )
        && f.addrs.is_some()
    {
        out.limiter = if f.syn && rs.syn_limit.is_some() {
            rs.syn_limit.map(|i| i as u8 + 1)
        } else {
            rs.global_limit.map(|i| i as u8 + 1)
        };
    }
    finish(rs, out)
}

fn finish(rs: &RuleSet, mut out: Outcome) -> Outcome {
    if out.drop && rs.monitor {
        out.drop = false;
        out.monitored = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds Ethernet + IPv4 + L4 frames for the tests.
    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        p.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        let total = (p.len() - 14) as u16;
        p[16..18].copy_from_slice(&total.to_be_bytes());
        p
    }

    /// A 20-byte TCP header (data offset 5).
    fn tcp(dport: u16, flags: u8) -> Vec<u8> {
        let mut h = vec![0x30, 0x39];
        h.extend_from_slice(&dport.to_be_bytes());
        h.extend_from_slice(&[0; 8]);
        h.push(0x50);
        h.push(flags);
        h.extend_from_slice(&[0; 6]);
        h
    }

    /// `frame` as the first of several IPv4 fragments.
    fn first_fragment(mut frame: Vec<u8>) -> Vec<u8> {
        frame[20] |= 0x20;
        frame
    }

    fn eval(rules: &str, frame: &[u8]) -> Outcome {
        let rs = RuleSet::from_toml(rules).expect("rules parse");
        evaluate(&rs, &BTreeMap::new(), 1, frame)
    }

    #[test]
    fn most_specific_rule_wins() {
        let rules = r#"
default = "allow"
[[rule]]
action = "deny"
src = "203.0.113.0/24"
[[rule]]
action = "allow"
src = "203.0.113.0/24"
proto = "tcp"
dport = 22
[[rule]]
action = "deny"
src = "203.0.113.7"
"#;
        let ssh_from = |last| v4([203, 0, 113, last], [192, 0, 2, 1], 6, &tcp(22, 0x02));
        let web_from = |last| v4([203, 0, 113, last], [192, 0, 2, 1], 6, &tcp(80, 0x02));
        // Subnet denied, but its ssh allowed (same prefix, more L4).
        assert_eq!(eval(rules, &ssh_from(5)).rule_id, Some(1));
        assert!(!eval(rules, &ssh_from(5)).drop);
        assert!(eval(rules, &web_from(5)).drop);
        // The /32 is more specific than /24 + tcp/22.
        let o = eval(rules, &ssh_from(7));
        assert!(o.drop);
        assert_eq!(o.rule_id, Some(2));
    }

    #[test]
    fn allow_beats_deny_at_equal_specificity() {
        let rules = r#"
[[rule]]
action = "deny"
src = "10.0.0.0/8"
[[rule]]
action = "allow"
src = "10.0.0.0/8"
"#;
        let o = eval(rules, &v4([10, 1, 1, 1], [10, 2, 2, 2], 17, &[0; 8]));
        assert!(!o.drop);
        assert_eq!(o.rule_id, Some(1));
    }

    #[test]
    fn default_deny_keeps_arp_and_neighbour_discovery() {
        let rules = "default = \"deny\"\n[[rule]]\naction = \"deny\"\nsrc = \"0.0.0.0/0\"\n";
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        let o = eval(rules, &arp);
        assert_eq!((o.drop, o.reason), (false, REASON_ESSENTIAL));
        // Other traffic is denied.
        assert!(eval(rules, &v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &[0; 8])).drop);
        // A MAC rule applies to ARP.
        let by_mac =
            "default = \"deny\"\n[[rule]]\naction = \"deny\"\nsrc_mac = \"02:00:00:00:00:02\"\n";
        assert_eq!(eval(by_mac, &arp).reason, REASON_RULE_DENY);
    }

    #[test]
    fn address_rules_apply_to_link_essential_frames() {
        let rules = "default = \"deny\"\n[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.1\"\n";
        let dhcp = |last| {
            v4(
                [10, 0, 0, last],
                [10, 0, 0, 2],
                17,
                &[0, 67, 0, 68, 0, 8, 0, 0],
            )
        };
        let o = eval(rules, &dhcp(1));
        assert_eq!(
            (o.drop, o.reason, o.rule_id),
            (true, REASON_RULE_DENY, Some(0))
        );
        // Only the default policy gives way to link-essential frames.
        let o = eval(rules, &dhcp(9));
        assert_eq!((o.drop, o.reason), (false, REASON_ESSENTIAL));
        // And they are charged to the global limiter.
        let limited = "global_limit = \"g\"\n[[limit]]\nname = \"g\"\npps = 5\n";
        assert_eq!(eval(limited, &dhcp(9)).limiter, Some(1));
    }

    #[test]
    fn ports_come_from_the_first_four_bytes() {
        let rules = "[[rule]]\naction = \"deny\"\nproto = \"tcp\"\ndport = 23\n";
        // A first fragment with 8 bytes of TCP: ports seen, the rule drops it.
        let tiny = first_fragment(v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp(23, 2)[..8]));
        let o = eval(rules, &tiny);
        assert_eq!((o.drop, o.reason), (true, REASON_RULE_DENY));
        // To another port it is dropped all the same, even under
        // malformed = "allow": the rest of its header comes later.
        let lax = format!("malformed = \"allow\"\n{rules}");
        let other = first_fragment(v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp(80, 2)[..8]));
        assert_eq!(eval(&lax, &other).reason, REASON_MALFORMED);
        assert!(eval(&lax, &other).drop);
        // Unfragmented, a short header takes the malformed policy.
        let short = v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp(80, 2)[..8]);
        assert!(!eval(&lax, &short).drop);
        assert_eq!(eval(&lax, &short).reason, REASON_MALFORMED);
    }

    #[test]
    fn bad_lengths_and_data_offsets_are_malformed() {
        let ok = v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp(80, 2));
        assert_eq!(eval("", &ok).reason, REASON_DEFAULT_ALLOW);
        let mut low_doff = ok.clone();
        low_doff[14 + 20 + 12] = 0x40;
        assert_eq!(eval("", &low_doff).reason, REASON_MALFORMED);
        let mut long_total = ok.clone();
        long_total[16..18].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(eval("", &long_total).reason, REASON_MALFORMED);
        // Ethernet padding after the datagram is fine.
        let mut padded = ok.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(eval("", &padded).reason, REASON_DEFAULT_ALLOW);
    }

    #[test]
    fn truncated_l4_only_falls_to_malformed_when_no_rule_drops_it() {
        let rules = "[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.1\"\n";
        let cut = v4([10, 0, 0, 1], [10, 0, 0, 2], 6, &[0, 1, 0]);
        assert_eq!(eval(rules, &cut).reason, REASON_RULE_DENY);
        let other = v4([10, 0, 0, 9], [10, 0, 0, 2], 6, &[0, 1, 0]);
        let o = eval(rules, &other);
        assert_eq!((o.drop, o.reason), (true, REASON_MALFORMED));
    }

    #[test]
    fn monitor_mode_never_drops() {
        let rules = "monitor = true\ndefault = \"deny\"\n";
        let o = eval(rules, &v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &[0; 8]));
        assert_eq!(
            (o.drop, o.monitored, o.reason),
            (false, true, REASON_DEFAULT_DENY)
        );
    }

    #[test]
    fn vlan_tags_are_skipped_and_a_third_is_malformed() {
        let inner = v4([10, 0, 0, 1], [10, 0, 0, 2], 17, &[0; 8]);
        let tagged = |n: usize| {
            let mut p = inner[..12].to_vec();
            for _ in 0..n {
                p.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
            }
            p.extend_from_slice(&inner[12..]);
            p
        };
        let rules = "[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.1\"\n";
        assert_eq!(eval(rules, &tagged(2)).reason, REASON_RULE_DENY);
        assert_eq!(eval(rules, &tagged(3)).reason, REASON_MALFORMED);
    }
}
