// SPDX-License-Identifier: GPL-2.0

//! Whether a compiled rule set fits in the keyed maps next to the active
//! one.

use xdpguard_abi::*;
use xdpguard_rules::{Image, RuleSet};

use super::held::read_held;
use super::state::read_sums;
use super::Failure;
use crate::Guard;

/// "map xdpg_host4 is full: ..." for `map` of `max` entries.
fn full(map: MapId, needed: usize, max: usize, active: usize, why: &str) -> Failure {
    Failure::failed(format!(
        "map {} is full: {needed} entries needed, max {max} ({active} held by the active rule set{why}); \
         nothing changed",
        map.name(),
    ))
}

/// The keyed maps whose room a commit checks, in [`Counts`] order.
const KEYED: [MapId; 4] = [MapId::Host4, MapId::Host6, MapId::Mac, MapId::Ifaces];

/// Entries of one generation in each of the [`KEYED`] maps.
pub(super) type Counts = [usize; 4];

/// The entries of `img` in the keyed maps.
pub(super) fn counts(img: &Image) -> Counts {
    [
        img.host4.len(),
        img.host6.len(),
        img.macs.len(),
        img.ifaces.len(),
    ]
}

/// The entries generation `g` was written with, as its record counts
/// them (`genN.sums.json`); `None` for a generation without a tag or
/// without a valid record.
fn recorded_counts(guard: &Guard, g: u32) -> Option<Counts> {
    let cfg: Config = guard.map(MapId::Config).lookup(&g).ok()??;
    if cfg.tag == 0 {
        return None;
    }
    let sums = read_sums(guard, g, cfg.tag).ok()?;
    let n = |m: MapId| sums.digest.get(m.name()).map(|s| s.entries as usize);
    Some([n(KEYED[0])?, n(KEYED[1])?, n(KEYED[2])?, n(KEYED[3])?])
}

/// What `commit` checks before writing anything, for `--dry-run`: `rs`
/// compiles for the idle generation and fits next to the active one. The
/// active generation's entries are counted by its record; only without
/// one are the keyed maps read.
pub fn check(guard: &Guard, rs: &RuleSet) -> Result<(), Failure> {
    let active = guard.active()?;
    let img = xdpguard_rules::compile(rs, 1 - active, &crate::ifindex).map_err(Failure::usage)?;
    let held = match recorded_counts(guard, active) {
        Some(c) => c,
        None => counts(&read_held(guard, [false, false])?.gens[active as usize]),
    };
    check_capacity(guard, &img, held)
}

/// The capacity of keyed map `map` as the kernel created it (the ABI's
/// `max_entries` if the kernel cannot be asked).
fn max_entries(guard: &Guard, map: MapId) -> usize {
    guard
        .map(map)
        .info()
        .map(|i| i.max_entries)
        .unwrap_or(map.spec().max_entries) as usize
}

/// Fails with "map ... is full" unless `img` fits in the keyed maps next
/// to `other`, the other generation's entries (keys of no generation do
/// not count: the commit deletes them first).
pub(super) fn check_capacity(guard: &Guard, img: &Image, other: Counts) -> Result<(), Failure> {
    for ((map, need), active) in KEYED.into_iter().zip(counts(img)).zip(other) {
        let max = max_entries(guard, map);
        if need > max {
            return Err(full(map, need, max, active, ""));
        }
        if need + active > max {
            return Err(full(
                map,
                need,
                max,
                active,
                "; both generations must fit while the new set is written",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_full_message_names_the_map_its_size_and_the_need() {
        let f = full(
            MapId::Ifaces,
            130,
            256,
            130,
            "; both generations must fit while the new set is written",
        );
        assert_eq!(f.code(), super::super::EXIT_FAILED);
        assert_eq!(
            f.msg(),
            "map xdpg_ifaces is full: 130 entries needed, max 256 (130 held by the active rule \
             set; both generations must fit while the new set is written); nothing changed"
        );
        // A million prefixes per generation fit beside a million.
        assert!(MapId::Host4.spec().max_entries as usize >= 2_000_000);
        assert!(MapId::Host6.spec().max_entries as usize >= 2_000_000);
    }
}
