// SPDX-License-Identifier: GPL-2.0

//! The TOML rule file: parsing, validation with line numbers, and export.
//!
//! `raw` holds the file as serde reads it (every value with its span),
//! `value` the parsers of single values and of one `[[rule]]`, `spec`
//! the command-line form of a rule, `export` the writer; this file reads
//! and checks a whole file.

use std::{collections::BTreeMap, fmt, ops::Range};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::{Action, Fragments, Limit, Rule, RuleSet};

mod export;
mod raw;
mod spec;
mod value;

pub(crate) use raw::Key;
use raw::*;
pub use spec::RuleSpec;
use spec::*;
use value::*;
pub use value::{parse_cidr, parse_mac};

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
        Ok(())
    }
}

#[cfg(test)]
mod tests;
