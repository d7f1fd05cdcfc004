// SPDX-License-Identifier: GPL-2.0

//! Classification of compound rules by field classes.
//!
//! Compound rules are numbered in rank order (0 is the best). For one
//! field (an address table of one family and direction, a MAC direction,
//! the protocol, the source or destination port, the ICMP type and code)
//! the rules that constrain it split its values into *classes*: two
//! values are in the same class when the same rules accept them. Class 0
//! is the class of the values no rule names; its set is the field's
//! *wild* rules, those that do not constrain it, and every other class is
//! its named rules plus the wild ones. The program looks up each field's
//! class, then the combination of classes in `xdpg_classes`, whose value
//! is the best rule in the intersection of their sets. The compiler
//! enumerates exactly the combinations whose intersection is not empty,
//! depth first, pruning a partial combination as soon as it is.

use std::collections::HashMap;

use xdpguard_abi::*;

/// A set of compound rules (bit `i`: rule `i` in rank order).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Set(Vec<u64>);

impl Set {
    pub(crate) fn empty(n: usize) -> Set {
        Set(vec![0; n.div_ceil(64)])
    }

    pub(crate) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The lowest rule in the set (the best), if any.
    pub(crate) fn first(&self) -> Option<usize> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, &w)| w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }

    /// The rules in both sets.
    pub(crate) fn and_new(&self, other: &Set) -> Set {
        let mut out = Set::empty(0);
        out.0 = self.0.iter().zip(&other.0).map(|(a, b)| a & b).collect();
        out
    }

    /// Whether the two sets share a rule.
    fn meets(&self, other: &Set) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    /// The rules in the set, in order.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    i * 64 + b
                })
            })
        })
    }

    fn and(&self, other: &Set, out: &mut Set) {
        for ((o, a), b) in out.0.iter_mut().zip(&self.0).zip(&other.0) {
            *o = a & b;
        }
    }

}

/// The classes of one field, interned by the sorted list of the rules
/// that name the values (the wild rules are in every class).
pub(crate) struct Field {
    /// Rules that do not constrain the field (class 0's set).
    wild: Set,
    /// Class id of each list of naming rules; `[]` is class 0.
    ids: HashMap<Vec<u32>, u16>,
    /// The set of each class, by id.
    sets: Vec<Set>,
    /// The classes other than 0 that each rule is named in.
    by_rule: Vec<Vec<u16>>,
}

impl Field {
    /// A field whose unconstrained rules are `wild`.
    pub(crate) fn new(wild: Set) -> Field {
        let mut ids = HashMap::new();
        ids.insert(Vec::new(), 0);
        Field {
            sets: vec![wild.clone()],
            by_rule: vec![Vec::new(); wild.0.len() * 64],
            wild,
            ids,
        }
    }

    /// The class of a value that the rules `named` (sorted, deduplicated)
    /// accept. `Err` once the field has more classes than an id holds.
    pub(crate) fn class(&mut self, named: &[u32], what: &str) -> Result<u16, String> {
        if let Some(&id) = self.ids.get(named) {
            return Ok(id);
        }
        let id = self.sets.len();
        if id as u32 >= MAX_CLASSES {
            return Err(format!(
                "the compound rules split {what} into more than {MAX_CLASSES} classes \
                 (distinct sets of rules); merge rules that name overlapping values"
            ));
        }
        let mut set = self.wild.clone();
        for &r in named {
            set.insert(r as usize);
            self.by_rule[r as usize].push(id as u16);
        }
        self.sets.push(set);
        self.ids.insert(named.to_vec(), id as u16);
        Ok(id as u16)
    }

    /// Whether class 0 is empty (every rule constrains the field).
    pub(crate) fn default_empty(&self) -> bool {
        self.wild.is_empty()
    }

    /// Whether no rule constrains the field (it has only class 0).
    pub(crate) fn unconstrained(&self) -> bool {
        self.sets.len() == 1
    }

    /// The classes whose sets may meet `s`: all of them if one of the
    /// wild rules is in `s` (every class holds them), else the classes
    /// naming a rule of `s`.
    fn candidates(&self, s: &Set) -> Vec<u16> {
        if s.meets(&self.wild) {
            return (0..self.sets.len() as u32).map(|c| c as u16).collect();
        }
        let mut out: Vec<u16> = s.iter().flat_map(|r| self.by_rule[r].iter().copied()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Classes of the values of a table of `size` entries (ports, ICMP type
/// and code) from the rules' ranges over it: `(rule, lo, hi)`, inclusive.
/// Returns the class of each value.
pub(crate) fn ranges(
    field: &mut Field,
    size: usize,
    ranges: &[(u32, u32, u32)],
    what: &str,
) -> Result<Vec<u16>, String> {
    // Sweep the range ends: between two consecutive ends the set of
    // covering rules does not change.
    let mut ends: Vec<(u32, bool, u32)> = Vec::with_capacity(2 * ranges.len());
    for &(rule, lo, hi) in ranges {
        ends.push((lo, true, rule));
        ends.push((hi + 1, false, rule));
    }
    ends.sort_unstable();
    let mut out = vec![0u16; size];
    let mut open: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
    let mut i = 0;
    while i < ends.len() {
        let at = ends[i].0;
        while i < ends.len() && ends[i].0 == at {
            let (_, start, rule) = ends[i];
            if start {
                *open.entry(rule).or_default() += 1;
            } else if let Some(n) = open.get_mut(&rule) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&rule);
                }
            }
            i += 1;
        }
        let next = ends.get(i).map_or(size as u32, |e| e.0).min(size as u32);
        if at as usize >= size {
            break;
        }
        let named: Vec<u32> = open.keys().copied().collect();
        let class = field.class(&named, what)?;
        out[at as usize..next as usize].fill(class);
    }
    Ok(out)
}

/// The combinations of classes (`ClassKey` fields in the order of
/// `fields`) whose sets meet the rules in `start` and each other, each
/// with its best rule. `fields` are the key's fields in `ClassKey` order:
/// MAC source, MAC destination, source, destination, protocol, source
/// port, destination port, ICMP (`None`: not in the key, class 0, no
/// constraint). `visit` gets each combination (class per field) and its
/// best rule; at most `limit` combinations (`Err` with the count past it).
pub(crate) fn combinations(
    start: &Set,
    fields: &[Option<&Field>; 8],
    limit: usize,
    visit: &mut dyn FnMut(&[u16; 8], usize),
) -> Result<usize, usize> {
    let mut key = [0u16; 8];
    let mut found = 0usize;
    // Scratch sets, one per depth.
    let mut scratch: Vec<Set> = (0..=8).map(|_| start.clone()).collect();
    fn walk(
        depth: usize,
        fields: &[Option<&Field>; 8],
        scratch: &mut Vec<Set>,
        key: &mut [u16; 8],
        found: &mut usize,
        limit: usize,
        visit: &mut dyn FnMut(&[u16; 8], usize),
    ) -> Result<(), ()> {
        if depth == 8 {
            let Some(best) = scratch[8].first() else {
                return Ok(());
            };
            *found += 1;
            if *found > limit {
                return Err(());
            }
            visit(key, best);
            return Ok(());
        }
        let classes = fields[depth].map_or(vec![0], |f| f.candidates(&scratch[depth]));
        for id in classes {
            {
                let (head, tail) = scratch.split_at_mut(depth + 1);
                match fields[depth] {
                    None => tail[0].0.copy_from_slice(&head[depth].0),
                    Some(f) => head[depth].and(&f.sets[id as usize], &mut tail[0]),
                }
                if tail[0].is_empty() {
                    continue;
                }
            }
            key[depth] = id;
            walk(depth + 1, fields, scratch, key, found, limit, visit)?;
        }
        Ok(())
    }
    match walk(0, fields, &mut scratch, &mut key, &mut found, limit, visit) {
        Ok(()) => Ok(found),
        Err(()) => Err(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, members: &[usize]) -> Set {
        let mut s = Set::empty(n);
        for &m in members {
            s.insert(m);
        }
        s
    }

    #[test]
    fn ranges_split_at_their_ends() {
        // Rule 0: 20..=25, rule 1: 22..=22, rule 2 wild.
        let mut f = Field::new(set(3, &[2]));
        let classes = ranges(&mut f, 30, &[(0, 20, 25), (1, 22, 22)], "ports").unwrap();
        assert_eq!(classes[19], 0);
        assert_eq!(classes[20], classes[21]);
        assert_ne!(classes[21], classes[22]);
        assert_eq!(classes[23], classes[20]);
        assert_eq!(classes[26], 0);
        assert_eq!(f.sets[classes[22] as usize], set(3, &[0, 1, 2]));
        assert_eq!(f.sets[classes[20] as usize], set(3, &[0, 2]));
        // A range up to the table's last value.
        let mut f = Field::new(set(1, &[]));
        let c = ranges(&mut f, 10, &[(0, 5, 9)], "ports").unwrap();
        assert_eq!((c[4], c[9]), (0, 1));
        assert!(f.default_empty());
    }

    #[test]
    fn combinations_are_the_meeting_ones_with_their_best_rule() {
        // Rules: 0 = (a1, p1), 1 = (a2, p1), 2 = (any a, p2).
        let mut a = Field::new(set(3, &[2]));
        let a1 = a.class(&[0], "a").unwrap();
        let a2 = a.class(&[1], "a").unwrap();
        let mut p = Field::new(set(3, &[]));
        let p1 = p.class(&[0, 1], "p").unwrap();
        let p2 = p.class(&[2], "p").unwrap();
        let mut seen = Vec::new();
        let fields = [None, None, Some(&a), None, None, Some(&p), None, None];
        let n = combinations(&set(3, &[0, 1, 2]), &fields, 100, &mut |k, best| {
            seen.push((k[2], k[5], best))
        })
        .unwrap();
        seen.sort();
        assert_eq!(n, 5);
        assert_eq!(
            seen,
            vec![(0, p2, 2), (a1, p1, 0), (a1, p2, 2), (a2, p1, 1), (a2, p2, 2)]
        );
        assert_eq!(
            combinations(&set(3, &[0, 1, 2]), &fields, 4, &mut |_, _| {}),
            Err(5)
        );
    }
}
