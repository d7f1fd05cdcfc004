// SPDX-License-Identifier: GPL-2.0

//! The rule set written back in the file format.

use super::*;

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
