// SPDX-License-Identifier: GPL-2.0

//! xdpguard's rule language: parsing and validation, the compiler to BPF map images, and the reference model.
//!
//! * [`RuleSet::from_toml`] reads a rule file and checks all of it before
//!   anything is applied; errors name the line and the fix.
//! * [`compile`] turns a rule set into an [`Image`]: the exact contents of
//!   the program's maps for one generation.
//! * [`model::evaluate`] decides a packet's fate from the rule *list*, the
//!   way Documentation/rules.rst describes it, without the maps. The
//!   differential test checks the compiled maps plus the real program
//!   against it.

mod classes;
mod compile;
pub mod diff;
mod dir;
mod file;
pub mod model;
pub mod text;

pub use compile::{compile, Image};
pub use file::{parse_cidr, parse_mac, Error, RuleSpec};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What a rule (or a policy) does with the packets it matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Pass.
    Allow,
    /// Drop.
    Deny,
    /// Pass while the source is within the limiter (index into
    /// [`RuleSet::limits`]), else drop.
    Limit(usize),
}

impl Action {
    /// The ABI's `ACTION_*` code.
    pub fn code(&self) -> u8 {
        match self {
            Action::Allow => xdpguard_abi::ACTION_ALLOW,
            Action::Deny => xdpguard_abi::ACTION_DENY,
            Action::Limit(_) => xdpguard_abi::ACTION_LIMIT,
        }
    }
}

/// Policy for non-first fragments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fragments {
    /// Evaluate rules without the L4 header (default).
    #[default]
    L3Only,
    /// Drop them.
    Drop,
    /// Pass them unevaluated.
    Pass,
}

/// A per-source rate limiter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Name rules refer to it by.
    pub name: String,
    /// Packets per second (0: none).
    pub pps: u32,
    /// Packet burst.
    pub burst: u32,
    /// Bytes per second (0: none).
    pub bps: u64,
    /// Byte burst.
    pub burst_bytes: u64,
    /// Sources are grouped by this IPv4 prefix length.
    pub prefix4: u8,
    /// Sources are grouped by this IPv6 prefix length.
    pub prefix6: u8,
}

/// One rule. Every constraint that is set must hold for the rule to match.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rule {
    /// What to do on a match.
    pub action: Option<Action>,
    /// Source CIDRs (any of them). Lists longer than one only on rules with
    /// no other constraint.
    pub src: Vec<IpNet>,
    /// Destination CIDRs (any of them), same restriction.
    pub dst: Vec<IpNet>,
    /// IP protocol number (after IPv6 extension headers).
    pub proto: Option<u8>,
    /// Source port range (TCP or UDP).
    pub sport: Option<(u16, u16)>,
    /// Destination port range (TCP or UDP).
    pub dport: Option<(u16, u16)>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code (needs a type).
    pub icmp_code: Option<u8>,
    /// Ethernet source address.
    pub src_mac: Option<[u8; 6]>,
    /// Ethernet destination address.
    pub dst_mac: Option<[u8; 6]>,
    /// Free text, kept by export.
    pub comment: Option<String>,
}

impl Rule {
    /// The rule's action (validated rules always have one).
    pub fn action(&self) -> &Action {
        self.action.as_ref().unwrap_or(&Action::Deny)
    }

    /// Address-only: one address field and nothing else. Such rules are
    /// stored in the address tries directly and need no rule bit.
    pub fn is_address_only(&self) -> bool {
        (self.src.is_empty() != self.dst.is_empty())
            && self.proto.is_none()
            && self.src_mac.is_none()
            && self.dst_mac.is_none()
    }

    /// IP families the rule can match: `(ipv4, ipv6)`.
    pub fn families(&self) -> (bool, bool) {
        if let Some(net) = self.src.first().or(self.dst.first()) {
            return (matches!(net, IpNet::V4(_)), matches!(net, IpNet::V6(_)));
        }
        match self.proto {
            Some(1) => (true, false),
            Some(58) => (false, true),
            _ => (true, true),
        }
    }

    /// Number of MAC constraints.
    pub fn macs(&self) -> u32 {
        self.src_mac.is_some() as u32 + self.dst_mac.is_some() as u32
    }

    /// L4 specificity: 0 none, 1 protocol, 2 port range or ICMP type,
    /// 3 single port or ICMP type and code.
    pub fn l4_score(&self) -> u32 {
        let exact = |r: Option<(u16, u16)>| r.map(|(lo, hi)| lo == hi);
        if exact(self.sport) == Some(true)
            || exact(self.dport) == Some(true)
            || self.icmp_code.is_some()
        {
            3
        } else if self.sport.is_some() || self.dport.is_some() || self.icmp_type.is_some() {
            2
        } else if self.proto.is_some() {
            1
        } else {
            0
        }
    }

    /// Can match non-IP frames (no IP-level constraint at all).
    pub fn matches_non_ip(&self) -> bool {
        self.src.is_empty() && self.dst.is_empty() && self.proto.is_none()
    }

    /// Precedence when it matches with these prefix lengths (`order` is its
    /// position in the rule set).
    pub fn rank(&self, prefix_bits: u32, order: u32) -> u32 {
        xdpguard_abi::rank(
            self.macs(),
            prefix_bits,
            self.l4_score(),
            self.action().code(),
            order,
        )
    }
}

/// A whole rule set: policies, limiters and rules. Apply swaps it in at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// Drop packets no rule matches.
    pub default_deny: bool,
    /// Monitor (dry-run) mode: count, never drop.
    pub monitor: bool,
    /// Drop malformed packets (default) rather than pass them.
    pub malformed_deny: bool,
    /// Non-first fragments.
    pub fragments: Fragments,
    /// Rate limiters (at most 15).
    pub limits: Vec<Limit>,
    /// Limiter for every passing packet, per source.
    pub global_limit: Option<usize>,
    /// Limiter for passing TCP SYNs, per source.
    pub syn_limit: Option<usize>,
    /// Per-interface default policy (`true`: deny), by name.
    pub interfaces: Vec<(String, bool)>,
    /// Dropped-packet samples per second per CPU for `xdpguard log`
    /// (0: none).
    pub samples: u16,
    /// The rules, in file order (the order breaks ties).
    pub rules: Vec<Rule>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            default_deny: false,
            monitor: false,
            malformed_deny: true,
            fragments: Fragments::L3Only,
            limits: Vec::new(),
            global_limit: None,
            syn_limit: None,
            interfaces: Vec::new(),
            samples: 10,
            rules: Vec::new(),
        }
    }
}

/// A small rule set (an SSH allow, a denied range, a denied list under
/// `default = "deny"`) that the tests of this crate and the CLI's share.
#[doc(hidden)]
pub const TEST_RULES: &str = r#"
default = "deny"
[[rule]]
action = "allow"
proto = "tcp"
dport = 22
[[rule]]
action = "deny"
src = "10.0.0.0/8"
[[rule]]
action = "deny"
src = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
"#;
