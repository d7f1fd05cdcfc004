// SPDX-License-Identifier: GPL-2.0

//! The difference between two rule sets, rule by rule.

use rustc_hash::FxHashSet as HashSet;

use crate::text::{action_text, limit_text, rule_text, settings};
use crate::{Rule, RuleSet};

/// One difference between two rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A setting (`default`, `monitor`, ..., `interface eth1`) changed:
    /// name, old value (`none` if absent), new value.
    Setting(String, String, String),
    /// A limiter was added (`+`), removed (`-`) or changed (`~`).
    Limit(char, String),
    /// A rule was removed: its number in the old set, its text.
    Removed(usize, String),
    /// A rule was added: its number in the new set, its text.
    Added(usize, String),
    /// A rule at old number / new number changed: old text, new text, and
    /// for address lists the addresses added and removed.
    Changed(usize, usize, String, String, usize, usize),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Setting(n, a, b) => write!(f, "~ {n}: {a} -> {b}"),
            Change::Limit(c, t) => write!(f, "{c} limiter {t}"),
            Change::Removed(i, t) => write!(f, "- rule {i}: {t}"),
            Change::Added(i, t) => write!(f, "+ rule {i}: {t}"),
            Change::Changed(i, j, a, b, plus, minus) => {
                if i == j {
                    write!(f, "~ rule {i}: {a}\n       -> {b}")?;
                } else {
                    write!(f, "~ rule {i} (now {j}): {a}\n       -> {b}")?;
                }
                if plus + minus > 0 {
                    write!(f, "\n       (+{plus} -{minus} addresses)")?;
                }
                Ok(())
            }
        }
    }
}

/// Rules compared for the diff: every field, with the limiter compared by
/// name (its index may differ between the sets).
fn same_rule(a: &RuleSet, ra: &Rule, b: &RuleSet, rb: &Rule) -> bool {
    action_text(a, ra) == action_text(b, rb)
        && ra.comment == rb.comment
        && ra.proto == rb.proto
        && ra.sport == rb.sport
        && ra.dport == rb.dport
        && ra.icmp_type == rb.icmp_type
        && ra.icmp_code == rb.icmp_code
        && ra.src_mac == rb.src_mac
        && ra.dst_mac == rb.dst_mac
        && ra.src == rb.src
        && ra.dst == rb.dst
}

/// Largest LCS table (cells) the diff builds; bigger middles are shown
/// as one block of removals and additions.
///
/// The LCS is written here rather than taken from a diff crate: `similar`
/// (Myers, Patience or its own LCS) finds common subsequences as long as
/// this one but, where several exist, often another one (about a quarter
/// of random small rule lists), and it has no block fallback for huge
/// middles, so `apply --dry-run` would print other pairings than it does.
const LCS_MAX_CELLS: usize = 1 << 22;

/// The changes that turn rule set `old` into `new`: settings, limiters,
/// then rules (aligned by a longest common subsequence, so an insertion
/// shows as one added rule, not as every later rule changed; a removal and
/// an addition at the same place pair up as a change).
pub fn diff(old: &RuleSet, new: &RuleSet) -> Vec<Change> {
    let mut out = Vec::new();
    let (sa, sb) = (settings(old), settings(new));
    let get = |v: &[(String, String)], k: &str| {
        v.iter()
            .find(|(n, _)| n == k)
            .map_or("none".to_string(), |(_, x)| x.clone())
    };
    let mut names: Vec<String> = sa.iter().map(|(n, _)| n.clone()).collect();
    for (n, _) in &sb {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    for n in names {
        let (a, b) = (get(&sa, &n), get(&sb, &n));
        if a != b {
            out.push(Change::Setting(n, a, b));
        }
    }
    for l in &old.limits {
        match new.limits.iter().find(|m| m.name == l.name) {
            None => out.push(Change::Limit('-', limit_text(l))),
            Some(m) if m != l => out.push(Change::Limit('~', limit_text(m))),
            _ => {}
        }
    }
    for m in &new.limits {
        if !old.limits.iter().any(|l| l.name == m.name) {
            out.push(Change::Limit('+', limit_text(m)));
        }
    }

    // LCS over rules, after the common head and tail are set aside.
    let (a, b) = (&old.rules, &new.rules);
    let mut head = 0;
    while head < a.len() && head < b.len() && same_rule(old, &a[head], new, &b[head]) {
        head += 1;
    }
    let mut tail = 0;
    while tail < a.len() - head
        && tail < b.len() - head
        && same_rule(old, &a[a.len() - 1 - tail], new, &b[b.len() - 1 - tail])
    {
        tail += 1;
    }
    let (n, m) = (a.len() - tail, b.len() - tail);
    let (rows, cols) = (n - head + 1, m - head + 1);
    let small = rows * cols <= LCS_MAX_CELLS;
    let mut l = vec![0u32; if small { rows * cols } else { 0 }];
    let at = |i: usize, j: usize| (i - head) * cols + (j - head);
    if small {
        for i in (head..n).rev() {
            for j in (head..m).rev() {
                l[at(i, j)] = if same_rule(old, &a[i], new, &b[j]) {
                    l[at(i + 1, j + 1)] + 1
                } else {
                    l[at(i + 1, j)].max(l[at(i, j + 1)])
                };
            }
        }
    }
    let lcs = |i: usize, j: usize| if small { l[at(i, j)] } else { 0 };
    let (mut i, mut j) = (head, head);
    let (mut gone, mut came): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    // How alike two rules are, to pair a removal with an addition as a
    // change: 0 unrelated (same action and kind needed), more is closer.
    let alike = |x: &Rule, y: &Rule| -> u32 {
        if action_text(old, x) != action_text(new, y)
            || x.is_address_only() != y.is_address_only()
            || x.src.is_empty() != y.src.is_empty()
        {
            return 0;
        }
        let mut score = 1;
        if x.is_address_only() {
            let xs: HashSet<_> = x.src.iter().chain(&x.dst).collect();
            if y.src.iter().chain(&y.dst).any(|n| xs.contains(n))
                || (x.comment.is_some() && x.comment == y.comment)
            {
                score += 2;
            }
        } else if (x.proto, x.sport, x.dport, x.icmp_type)
            == (y.proto, y.sport, y.dport, y.icmp_type)
            || (x.src == y.src && x.dst == y.dst)
        {
            score += 1;
        }
        score
    };
    let flush = |gone: &mut Vec<usize>, came: &mut Vec<usize>, out: &mut Vec<Change>| {
        let mut paired = vec![false; gone.len()];
        let mut lone = Vec::new();
        let mut changes = Vec::new();
        // Pairing compares every removal with every addition: only for
        // gaps of modest size.
        let pair = gone.len() * came.len() <= 1 << 16;
        for &c in came.iter() {
            let best = (0..if pair { gone.len() } else { 0 })
                .filter(|&k| !paired[k])
                .map(|k| (alike(&a[gone[k]], &b[c]), k))
                .filter(|&(s, _)| s > 0)
                .max_by_key(|&(s, k)| (s, std::cmp::Reverse(k)));
            match best {
                Some((_, k)) => {
                    paired[k] = true;
                    let (x, y) = (&a[gone[k]], &b[c]);
                    let (plus, minus) = if x.is_address_only() && y.is_address_only() {
                        let xs: HashSet<_> = x.src.iter().chain(&x.dst).collect();
                        let ys: HashSet<_> = y.src.iter().chain(&y.dst).collect();
                        (ys.difference(&xs).count(), xs.difference(&ys).count())
                    } else {
                        (0, 0)
                    };
                    changes.push(Change::Changed(
                        gone[k] + 1,
                        c + 1,
                        rule_text(old, x),
                        rule_text(new, y),
                        plus,
                        minus,
                    ));
                }
                None => lone.push(c),
            }
        }
        for (k, &g) in gone.iter().enumerate() {
            if !paired[k] {
                out.push(Change::Removed(g + 1, rule_text(old, &a[g])));
            }
        }
        out.extend(changes);
        for c in lone {
            out.push(Change::Added(c + 1, rule_text(new, &b[c])));
        }
        gone.clear();
        came.clear();
    };
    while i < n || j < m {
        if small && i < n && j < m && same_rule(old, &a[i], new, &b[j]) {
            flush(&mut gone, &mut came, &mut out);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs(i, j + 1) >= lcs(i + 1, j)) {
            came.push(j);
            j += 1;
        } else {
            gone.push(i);
            i += 1;
        }
    }
    flush(&mut gone, &mut came, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;

    fn rs(text: &str) -> RuleSet {
        RuleSet::from_toml(text).expect("parses")
    }

    use crate::TEST_RULES as BASE;

    #[test]
    fn identical_sets_have_no_diff() {
        assert_eq!(diff(&rs(BASE), &rs(BASE)), vec![]);
    }
    #[test]
    fn an_inserted_rule_is_one_addition() {
        let new = BASE.replacen(
            "[[rule]]\naction = \"deny\"\nsrc = \"10",
            "[[rule]]\naction = \"allow\"\nproto = \"udp\"\n[[rule]]\naction = \"deny\"\nsrc = \"10",
            1,
        );
        let d = diff(&rs(BASE), &rs(&new));
        assert_eq!(d, vec![Change::Added(2, "allow proto udp".into())]);
    }
    #[test]
    fn removal_policy_and_list_changes() {
        let new = r#"
default = "allow"
[[rule]]
action = "allow"
proto = "tcp"
dport = 22
[[rule]]
action = "deny"
src = ["192.0.2.1", "192.0.2.4"]
"#;
        let d = diff(&rs(BASE), &rs(new));
        assert_eq!(
            d[0],
            Change::Setting("default".into(), "deny".into(), "allow".into())
        );
        // 10.0.0.0/8 is gone; the list lost two addresses and gained one.
        assert_eq!(d[1], Change::Removed(2, "deny src 10.0.0.0/8".into()));
        assert!(matches!(d[2], Change::Changed(3, 2, _, _, 1, 2)), "{d:?}");
        assert_eq!(d.len(), 3, "{d:?}");
    }
    #[test]
    fn big_rule_sets_diff_without_a_quadratic_table() {
        let mut a = RuleSet::default();
        for i in 0..8000u32 {
            a.rules.push(Rule {
                action: Some(Action::Deny),
                src: vec![format!("10.{}.{}.0/24", i >> 8, i & 255)
                    .parse()
                    .expect("cidr")],
                ..Rule::default()
            });
        }
        let mut b = a.clone();
        b.rules.reverse();
        let d = diff(&a, &b);
        assert!(!d.is_empty());
        b = a.clone();
        b.rules.remove(4000);
        assert_eq!(
            diff(&a, &b),
            vec![Change::Removed(4001, "deny src 10.15.160.0/24".into())]
        );
    }
}
