// SPDX-License-Identifier: GPL-2.0

//! Whether a compiled rule set fits in the keyed maps next to the active
//! one.

use xdpguard_abi::*;
use xdpguard_rules::{Image, RuleSet};

use super::held::{read_held, Held};
use super::Failure;
use crate::Guard;

/// "map xdpg_v4 is full: ..." for `map` of `max` entries.
fn full(map: MapId, needed: usize, max: usize, active: usize, why: &str) -> Failure {
    Failure::failed(format!(
        "map {} is full: {needed} entries needed, max {max} ({active} held by the active rule set{why}); \
         nothing changed",
        map.name(),
    ))
}

/// What `commit` checks before writing anything, for `--dry-run`: `rs`
/// compiles for the idle generation and fits next to the active one.
pub fn check(guard: &Guard, rs: &RuleSet) -> Result<(), Failure> {
    let target = 1 - guard.active()?;
    let img = xdpguard_rules::compile(rs, target, &crate::ifindex).map_err(Failure::usage)?;
    let held = read_held(guard, [false, false])?;
    check_capacity(guard, &img, &held)
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
/// to the other generation's entries (keys of no generation do not count:
/// the commit deletes them first).
pub(super) fn check_capacity(guard: &Guard, img: &Image, held: &Held) -> Result<(), Failure> {
    let other = &held.gens[1 - img.generation as usize];
    for (map, need, active) in [
        (MapId::V4, img.v4.len(), other.v4.len()),
        (MapId::V6, img.v6.len(), other.v6.len()),
        (MapId::Mac, img.macs.len(), other.macs.len()),
        (MapId::Ifaces, img.ifaces.len(), other.ifaces.len()),
    ] {
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
        assert!(MapId::V4.spec().max_entries as usize >= 2_000_000);
        assert!(MapId::V6.spec().max_entries as usize >= 2_000_000);
    }
}
