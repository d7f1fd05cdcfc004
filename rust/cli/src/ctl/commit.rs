// SPDX-License-Identifier: GPL-2.0

//! The one path by which every command changes the rule set: compile,
//! check capacity, write the idle generation, record, switch.

use std::{
    io, thread,
    time::{Duration, Instant},
};

use rustc_hash::FxHashSet as HashSet;
use xdpguard_abi::*;
use xdpguard_rules::{Image, RuleSet};

use super::capacity::{check_capacity, counts};
use super::drift::drift;
use super::held::{blank, digest, fresh_config, fresh_image, read_held, Foreign};
use super::state::{new_tag, read_sums, rules_json, save_record, save_sums, RulesJson};
use super::verify::expected_image;
use super::watch::{alive, disarm, watch};
use super::Failure;
use crate::Guard;

/// Progress of a long commit, for a progress bar.
pub trait Progress {
    /// A new phase with `total` steps begins.
    fn phase(&mut self, name: &str, total: u64);
    /// `done` steps of the phase are done.
    fn set(&mut self, done: u64);
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&mut self, _: &str, _: u64) {}
    fn set(&mut self, _: u64) {}
}

/// What [`commit`] did.
pub struct Committed {
    /// The generation now active.
    pub generation: u32,
    /// IPv4 prefixes (hosts included) in the rule set now active.
    pub v4: usize,
    /// IPv6 prefixes in the rule set now active.
    pub v6: usize,
    /// MAC entries written.
    pub macs: usize,
    /// Time spent compiling.
    pub compile: Duration,
    /// Time from the end of the compile to the last entry written: the
    /// read-back of the maps that outlasted the compile (it runs beside
    /// it), the capacity check and the writes.
    pub write: Duration,
    /// Entries that another program had changed and that this commit put
    /// back: keys of no generation deleted, and entries of the generation
    /// that became idle rewritten to its record.
    pub restored: usize,
}

/// Compiles `rs` for the idle generation, checks it fits next to the
/// active one, reads back what the idle generation holds and makes it
/// exactly the compiled image (every differing entry written, every extra
/// one deleted), records it and switches to it. Nothing packets see
/// changes unless every step before the switch succeeded. Then the
/// generation that became idle is put back to its own record, should
/// another program have changed it. The caller holds [`lock`].
pub fn commit(
    guard: &Guard,
    rs: &RuleSet,
    progress: &mut dyn Progress,
) -> Result<Committed, Failure> {
    thread::scope(|s| {
        // The record's text, made on a second thread while this one
        // compiles and writes (a million CIDRs take seconds to format).
        let json = s.spawn(|| rules_json(rs));
        commit_in(guard, rs, progress, || {
            json.join()
                .unwrap_or_else(|_| Err(Failure::failed("formatting the record failed")))
        })
    })
}

fn commit_in(
    guard: &Guard,
    rs: &RuleSet,
    progress: &mut dyn Progress,
    json: impl FnOnce() -> Result<RulesJson, Failure>,
) -> Result<Committed, Failure> {
    watch(guard);
    let target = 1 - guard.active()?;
    let prev = 1 - target;
    let t0 = Instant::now();
    progress.phase("compiling", 0);
    let resolved = std::cell::RefCell::new(Vec::new());
    let resolve = |name: &str| {
        let i = crate::ifindex(name);
        if let Some(i) = i {
            resolved.borrow_mut().push((name.to_string(), i));
        }
        i
    };
    // The maps are read back on a second thread while this one compiles:
    // neither needs the other (the lock keeps other commits out), and at a
    // million entries each takes seconds.
    let (compiled, compile, held) = thread::scope(|s| {
        let held = s.spawn(|| read_held(guard, [true, true]));
        let img = xdpguard_rules::compile(rs, target, &resolve).map_err(Failure::usage);
        let compile = t0.elapsed();
        let held = held
            .join()
            .unwrap_or_else(|_| Err(Failure::failed("reading the maps back failed")));
        (img, compile, held)
    });
    // A rule set that does not compile is the error to report, whatever
    // the read-back found.
    let mut img = compiled?;
    let mut held = held?;
    alive(guard)?;
    let t1 = t0 + compile;
    img.config.tag = new_tag(&[held.gens[0].config.tag, held.gens[1].config.tag]);
    check_capacity(guard, &img, counts(&held.gens[prev as usize]))?;
    alive(guard)?;
    // Packets that read the generation before the last switch may still
    // be using `target`; they finish within microseconds (RCU).
    thread::sleep(Duration::from_millis(10));
    let mut restored = delete_foreign(guard, &held.foreign)?;
    let have = std::mem::replace(&mut held.gens[target as usize], blank(target));
    write_generation(guard, &img, &have, progress, true)?;
    drop(have);
    let write = t1.elapsed();
    alive(guard)?;
    save_record(guard, &img, &json()?, &resolved.borrow())?;
    // The last look before the switch: a module that went meanwhile got
    // the whole rule set written into maps nobody uses.
    crate::sys::still_opened(guard)?;
    guard.activate(target)?;
    disarm();
    crate::sys::still_opened(guard)?;
    // The generation that was active is idle now: put it back to its
    // record if another program changed it (the next commit writes into
    // it, but until then `verify` compares it with its record).
    match restore_idle(guard, &held.gens[prev as usize]) {
        Ok(n) => restored += n,
        Err(e) => eprintln!(
            "xdpguard: warning: generation {prev} (idle now) could not be put back to its \
             record: {}; the next change rewrites it",
            e.msg()
        ),
    }
    Ok(Committed {
        generation: target,
        v4: img.prefixes[0],
        v6: img.prefixes[1],
        macs: img.macs.len(),
        compile,
        write,
        restored,
    })
}

pub(super) fn map_err(map: MapId) -> impl Fn(io::Error) -> Failure {
    move |e| match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::E2BIG) => Failure::failed(format!(
            "map {} is full (max {} entries): the kernel refused an entry ({e}); \
             the rule set in force is unchanged",
            map.name(),
            map.spec().max_entries
        )),
        Some(libc::EPERM) => Failure::io(map.name(), e),
        _ => Failure::failed(format!("{}: {e}", map.name())),
    }
}

/// What turns `have` (a generation's entries now) into `wanted`: the keys
/// to delete and the entries to write (new or with another value).
#[allow(clippy::type_complexity)]
fn plan<K: Pod, V: Pod>(have: &[(K, V)], wanted: &[(K, V)]) -> (Vec<K>, Vec<(K, V)>) {
    let now: rustc_hash::FxHashMap<&[u8], &[u8]> = have
        .iter()
        .map(|(k, v)| (bytes_of(k), bytes_of(v)))
        .collect();
    let want: HashSet<&[u8]> = wanted.iter().map(|(k, _)| bytes_of(k)).collect();
    let delete = have
        .iter()
        .filter(|(k, _)| !want.contains(bytes_of(k)))
        .map(|(k, _)| *k)
        .collect();
    let write = wanted
        .iter()
        .filter(|(k, v)| now.get(bytes_of(k)) != Some(&bytes_of(v)))
        .copied()
        .collect();
    (delete, write)
}

/// The indices (from 0) at which array contents `have` differ from
/// `want` (all of them if `have` is shorter, e.g. not read).
pub(super) fn array_plan<V: PartialEq>(have: &[V], want: &[V]) -> Vec<usize> {
    (0..want.len())
        .filter(|&i| have.get(i) != Some(&want[i]))
        .collect()
}

/// Deletes the keys that belong to no generation; how many.
pub(super) fn delete_foreign(guard: &Guard, f: &Foreign) -> Result<usize, Failure> {
    let keys4: Vec<Host4Key> = f.host4.iter().map(|(k, _)| *k).collect();
    let keys6: Vec<Host6Key> = f.host6.iter().map(|(k, _)| *k).collect();
    let keysm: Vec<MacKey> = f.mac.iter().map(|(k, _)| *k).collect();
    let keysc: Vec<ClassKey> = f.classes.iter().map(|(k, _)| *k).collect();
    for (map, r) in [
        (MapId::Host4, guard.map(MapId::Host4).delete_batch(&keys4)),
        (MapId::Host6, guard.map(MapId::Host6).delete_batch(&keys6)),
        (MapId::Mac, guard.map(MapId::Mac).delete_batch(&keysm)),
        (MapId::Classes, guard.map(MapId::Classes).delete_batch(&keysc)),
    ] {
        r.map_err(map_err(map))?;
    }
    Ok(keys4.len() + keys6.len() + keysm.len() + keysc.len())
}

/// Makes generation `img.generation` hold exactly `img`, given that it
/// holds `have` now (as [`read_held`] read it): writes every entry that
/// differs, deletes every extra key, writes the config (with the tag)
/// last. `commit_path`: checks that the module is still there between
/// batches and zeroes the generation's per-rule counters. Returns how many
/// entries it wrote or deleted.
pub(super) fn write_generation(
    guard: &Guard,
    img: &Image,
    have: &Image,
    progress: &mut dyn Progress,
    commit_path: bool,
) -> Result<usize, Failure> {
    let g = img.generation;
    let mut n = 0;
    progress.phase("writing tables", 0);

    fn array<V: Pod + PartialEq>(
        guard: &Guard,
        map: MapId,
        base: u32,
        want: &[V],
        have: &[V],
    ) -> Result<usize, Failure> {
        let idx = array_plan(have, want);
        let keys: Vec<u32> = idx.iter().map(|&i| base + i as u32).collect();
        let vals: Vec<V> = idx.iter().map(|&i| want[i]).collect();
        guard
            .map(map)
            .update_array(&keys, &vals)
            .map_err(map_err(map))?;
        Ok(keys.len())
    }
    n += array(
        guard,
        MapId::AddrValues,
        addr_value_index(g, 0),
        &img.addrv,
        &have.addrv,
    )?;
    n += array(guard, MapId::V4Table, v4t_index(g, 0), &img.v4t, &have.v4t)?;
    n += array(guard, MapId::V6Table, v6t_index(g, 0), &img.v6t, &have.v6t)?;
    n += array(
        guard,
        MapId::Proto,
        proto_index(g, 0),
        &img.proto,
        &have.proto,
    )?;
    n += array(
        guard,
        MapId::Ports,
        port_index(g, 0, 0),
        &img.ports,
        &have.ports,
    )?;
    n += array(
        guard,
        MapId::Limits,
        limit_index(g, 0),
        &img.limits,
        &have.limits,
    )?;

    fn replace<K: Pod, V: Pod>(
        guard: &Guard,
        map: MapId,
        have: &[(K, V)],
        entries: &[(K, V)],
        progress: &mut dyn Progress,
        check: bool,
    ) -> Result<usize, Failure> {
        let (old, new) = plan(have, entries);
        if !old.is_empty() {
            progress.phase(&format!("removing from {}", map.name()), old.len() as u64);
            for chunk in old.chunks(1 << 14) {
                if check {
                    alive(guard)?;
                }
                guard.map(map).delete_batch(chunk).map_err(map_err(map))?;
            }
            progress.set(old.len() as u64);
        }
        if new.is_empty() {
            return Ok(old.len());
        }
        let keys: Vec<K> = new.iter().map(|(k, _)| *k).collect();
        let vals: Vec<V> = new.iter().map(|(_, v)| *v).collect();
        progress.phase(&format!("writing {}", map.name()), keys.len() as u64);
        let mut done = 0;
        for (k, v) in keys.chunks(1 << 14).zip(vals.chunks(1 << 14)) {
            // A batch of 16384 takes well under a second, even under TCG.
            if check {
                alive(guard)?;
            }
            guard.map(map).update_batch(k, v).map_err(map_err(map))?;
            done += k.len();
            progress.set(done as u64);
        }
        Ok(old.len() + keys.len())
    }
    n += replace(
        guard,
        MapId::Host4,
        &have.host4,
        &img.host4,
        progress,
        commit_path,
    )?;
    n += replace(
        guard,
        MapId::Host6,
        &have.host6,
        &img.host6,
        progress,
        commit_path,
    )?;
    n += replace(
        guard,
        MapId::Mac,
        &have.macs,
        &img.macs,
        progress,
        commit_path,
    )?;
    n += replace(
        guard,
        MapId::Classes,
        &have.classes,
        &img.classes,
        progress,
        commit_path,
    )?;
    n += replace(
        guard,
        MapId::Ifaces,
        &have.ifaces,
        &img.ifaces,
        progress,
        commit_path,
    )?;

    if commit_path {
        // This generation's per-rule counters start from zero.
        let ids: Vec<u32> = (0..RULES_PER_GENERATION)
            .map(|i| rule_stats_index(g, i))
            .collect();
        guard
            .map(MapId::RuleStats)
            .zero_percpu(&ids, std::mem::size_of::<Counter>())
            .map_err(map_err(MapId::RuleStats))?;
    }
    if img.config != have.config {
        guard
            .map(MapId::Config)
            .update(&g, &img.config)
            .map_err(map_err(MapId::Config))?;
        n += 1;
    }
    Ok(n)
}

/// Puts the idle generation (`found`: what it holds, read before this
/// commit wrote the other one) back to its record: to the image its
/// record compiles to, or, for a generation with a tag but no valid
/// record, to the all-zero generation of a fresh module. Returns how many
/// entries it wrote or deleted (0 when it held its record already).
pub(super) fn restore_idle(guard: &Guard, found: &Image) -> Result<usize, Failure> {
    let g = found.generation;
    let tag = found.config.tag;
    let (expected, ifindexes) = if tag == 0 {
        (fresh_image(g, fresh_config(&found.config)), None)
    } else {
        let sums = read_sums(guard, g, tag).ok();
        if sums.as_ref().is_some_and(|s| s.digest == digest(found)) {
            return Ok(0);
        }
        match expected_image(guard, g, tag, sums.as_ref()) {
            Ok((img, ifx)) => (img, Some(ifx)),
            // A tag nobody recorded: nothing to go back to.
            Err(_) => (fresh_image(g, Config::default()), None),
        }
    };
    let differs = drift(&expected, found);
    if !differs.is_empty() {
        // Packets that read the generation before the switch may still be
        // using it.
        thread::sleep(Duration::from_millis(10));
        write_generation(guard, &expected, found, &mut Quiet, false)?;
    }
    if let Some(ifx) = ifindexes {
        // Now the digest is of what this compiler wrote.
        save_sums(guard, &expected, &ifx)?;
    }
    Ok(differs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_writes_only_what_differs() {
        let have = [(1u32, 10u32), (2, 20), (3, 30)];
        let want = [(2u32, 20u32), (3, 31), (4, 40)];
        let (del, put) = plan(&have, &want);
        assert_eq!(del, vec![1]);
        assert_eq!(put, vec![(3, 31), (4, 40)]);
    }

    #[test]
    fn array_plans_cover_unread_arrays() {
        assert_eq!(array_plan(&[1u64, 2, 3], &[1, 5, 3]), vec![1]);
        assert_eq!(array_plan::<u64>(&[], &[0, 0]), vec![0, 1]);
    }
}
