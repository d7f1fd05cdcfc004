// SPDX-License-Identifier: GPL-2.0

//! Whether both generations hold what xdpguard wrote: `verify`, and the
//! check of `list` and `status`.

use xdpguard_abi::*;
use xdpguard_rules::Image;

use super::drift::{drift, foreign_drift, Drift};
use super::held::{digest, fresh_config, fresh_image, read_held};
use super::state::{read_record, read_sums, record_path, Sums, COMPILER};
use super::Failure;
use crate::Guard;

/// The image generation `g` with `tag` was written with: its record
/// compiled again, with the interface indexes recorded then. Also returns
/// those indexes.
#[allow(clippy::type_complexity)]
pub(super) fn expected_image(
    guard: &Guard,
    g: u32,
    tag: u32,
    sums: Option<&Sums>,
) -> Result<(Image, Vec<(String, u32)>), String> {
    let rec = read_record(guard, &record_path(g), g, tag)?;
    let used = std::cell::RefCell::new(Vec::new());
    let resolve = |name: &str| {
        let i = match sums {
            Some(s) => s.ifindexes.iter().find(|(n, _)| n == name).map(|(_, i)| *i),
            None => crate::ifindex(name),
        };
        if let Some(i) = i {
            used.borrow_mut().push((name.to_string(), i));
        }
        i
    };
    let mut img = xdpguard_rules::compile(&rec.rules, g, &resolve)
        .map_err(|e| format!("{}: {e}", record_path(g).display()))?;
    img.config.tag = tag;
    Ok((img, used.into_inner()))
}

/// How one generation compares with what xdpguard wrote into it.
#[derive(Clone, Debug)]
pub struct GenCheck {
    /// The generation.
    pub generation: u32,
    /// Whether packets use it.
    pub active: bool,
    /// Its tag (0: none, as a freshly loaded module has).
    pub tag: u32,
    /// `fresh` (no tag: checked against what a freshly loaded module
    /// holds), `recorded` (checked against its record) or `unrecorded` (a
    /// tag without a valid record: cannot be checked).
    pub origin: &'static str,
    /// Whether it was compared at all (`false`: only a digest check was
    /// asked for and the record has none).
    pub checked: bool,
    /// The maps whose entries differ.
    pub maps: Vec<&'static str>,
    /// The entries that differ; empty when only digests were compared.
    pub drift: Vec<Drift>,
    /// Why it could not be checked, or a remark on the comparison.
    pub note: Option<String>,
}

impl GenCheck {
    /// Holds exactly what xdpguard wrote (or was not checked).
    pub fn clean(&self) -> bool {
        self.maps.is_empty() && self.drift.is_empty() && self.origin != "unrecorded"
    }
}

fn maps_of(d: &[Drift]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = d.iter().map(|x| x.map.name()).collect();
    v.sort();
    v.dedup();
    v
}

/// Compares generation `found.generation` (all of it read: see
/// [`read_held`]) with what xdpguard wrote into it. With `itemise`, a
/// generation whose digest differs from its record's is compared entry by
/// entry (its record compiled again); without, the digest decides.
pub fn check_generation(guard: &Guard, found: &Image, active: bool, itemise: bool) -> GenCheck {
    let g = found.generation;
    let tag = found.config.tag;
    let mut c = GenCheck {
        generation: g,
        active,
        tag,
        origin: "recorded",
        checked: true,
        maps: Vec::new(),
        drift: Vec::new(),
        note: None,
    };
    if tag == 0 {
        c.origin = "fresh";
        c.drift = drift(&fresh_image(g, fresh_config(&found.config)), found);
        c.maps = maps_of(&c.drift);
        return c;
    }
    let sums = read_sums(guard, g, tag).ok();
    if let Some(s) = &sums {
        let now = digest(found);
        if now == s.digest {
            return c;
        }
        let mut maps: Vec<&'static str> = MAPS
            .iter()
            .map(|m| m.name)
            .filter(|n| now.get(*n) != s.digest.get(*n))
            .collect();
        maps.sort();
        c.maps = maps;
        if s.compiler != COMPILER {
            c.note = Some(format!(
                "recorded by {}; this version may write the same rules differently",
                s.compiler
            ));
        }
        if !itemise {
            return c;
        }
    } else if !itemise {
        c.checked = false;
        c.note = Some(format!(
            "no digest is recorded for tag {tag:08x} (an older xdpguard or another program \
             wrote it)"
        ));
        return c;
    }
    match expected_image(guard, g, tag, sums.as_ref()) {
        Ok((want, _)) => {
            c.drift = drift(&want, found);
            c.maps = maps_of(&c.drift);
        }
        Err(why) => {
            c.origin = "unrecorded";
            c.maps.clear();
            c.note = Some(format!("tag {tag:08x} has no valid record ({why})"));
        }
    }
    c
}

/// What `verify`, `list` and `status` report.
pub struct Verification {
    /// The active generation.
    pub active: u32,
    /// The generations checked (the active one first).
    pub gens: Vec<GenCheck>,
    /// Keys of no generation, and an `xdpg_active` other than 0 or 1.
    pub foreign: Vec<Drift>,
}

impl Verification {
    /// Nothing differs from what xdpguard wrote.
    pub fn clean(&self) -> bool {
        self.foreign.is_empty() && self.gens.iter().all(GenCheck::clean)
    }

    /// Entries known to differ (itemised ones and keys of no generation).
    pub fn entries(&self) -> usize {
        self.foreign.len() + self.gens.iter().map(|g| g.drift.len()).sum::<usize>()
    }
}

/// Compares the active generation (and with `both` the idle one too) with
/// what xdpguard wrote (see [`check_generation`] for `itemise`).
pub fn verify(guard: &Guard, both: bool, itemise: bool) -> Result<Verification, Failure> {
    let a = guard.active()?;
    let held = read_held(guard, [both || a == 0, both || a == 1])?;
    let mut gens = vec![check_generation(
        guard,
        &held.gens[a as usize],
        true,
        itemise,
    )];
    if both {
        gens.push(check_generation(
            guard,
            &held.gens[1 - a as usize],
            false,
            itemise,
        ));
    }
    Ok(Verification {
        active: a,
        gens,
        foreign: foreign_drift(&held),
    })
}

/// The one-line verdict of `list` and `status` on an active generation
/// that is not what xdpguard wrote (`None`: it is), after the entries
/// themselves have been printed by the caller.
pub fn drift_failure(v: &Verification) -> Option<Failure> {
    if v.clean() {
        return None;
    }
    let a = &v.gens[0];
    let what = if a.origin == "unrecorded" {
        format!(
            "generation {} (active) {}",
            a.generation,
            a.note.as_deref().unwrap_or("has no valid record")
        )
    } else {
        let n = v.entries();
        let mut maps: Vec<&str> = a.maps.clone();
        maps.extend(v.foreign.iter().map(|d| d.map.name()));
        maps.sort();
        maps.dedup();
        format!(
            "{}the maps hold what xdpguard did not write ({}, generation {} active)",
            entries_differ(n, " from the record"),
            maps.join(", "),
            v.active
        )
    };
    Some(Failure::failed(format!(
        "{what}; packets see those entries, not the rules listed: `xdpguard verify` shows \
         every one, `xdpguard apply FILE` (or any rule change) writes the rule set again"
    )))
}

/// "N entries differ{tail}: " (nothing for none), the start of a drift message.
pub fn entries_differ(n: usize, tail: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!("1 entry differs{tail}: "),
        _ => format!("{n} entries differ{tail}: "),
    }
}

#[cfg(test)]
mod tests {
    use super::super::capacity::{check_capacity, counts};
    use super::super::commit::{delete_foreign, restore_idle, write_generation};
    use super::super::state::{rules_json, save_record};
    use super::super::Quiet;
    use super::*;
    use crate::ctl::test_sets::*;
    use std::{fs, time::Instant};
    use xdpguard_rules::{Action, Rule};

    /// With bpf(2) (root), against maps made as the module makes them:
    /// both generations written, then changed behind xdpguard's back
    /// (a port entry, a host entry's value, an extra key, a key of no
    /// generation); each change is reported, and what a commit does (the
    /// target written whole, keys of no generation deleted, the other
    /// generation put back) leaves both clean. Prints what reading back
    /// costs: `cargo test -p xdpguard --lib -- --ignored --nocapture
    /// maps_` (`XDPG_N` prefixes per generation, default 100000).
    #[test]
    #[ignore = "needs root and bpf(2)"]
    fn maps_read_back_report_and_repair() {
        let made: Vec<crate::Map> = MAPS
            .iter()
            .map(|s| crate::Map::create(s).expect(s.name))
            .collect();
        let dir = std::env::temp_dir().join(format!("xdpg-maps-{}", std::process::id()));
        fs::create_dir_all(dir.join("state")).expect("tmp");
        fs::write(dir.join("prog_id"), "1\n").expect("prog_id");
        let list: String = MAPS
            .iter()
            .zip(&made)
            .map(|(s, m)| format!("{} {}\n", s.name, m.id))
            .collect();
        fs::write(dir.join("maps"), list).expect("maps");
        std::env::set_var("XDPGUARD_STATE_DIR", dir.join("state"));
        let guard = Guard::open_at(&dir).expect("open");
        let n: u32 = std::env::var("XDPG_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let mut set = rs("[[rule]]\naction = \"deny\"\nproto = \"tcp\"\ndport = 5555\n");
        set.rules.push(Rule {
            action: Some(Action::Deny),
            src: (0..n)
                .map(|i| {
                    ipnet::IpNet::from(std::net::IpAddr::from((0x1400_0000 + i).to_be_bytes()))
                })
                .collect(),
            ..Rule::default()
        });
        let t = Instant::now();
        for g in [0, 1] {
            let held = read_held(&guard, [true, true]).expect("read");
            let mut img = xdpguard_rules::compile(&set, g, &|_| None).expect("compile");
            img.config.tag = 0x100 + g;
            write_generation(&guard, &img, &held.gens[g as usize], &mut Quiet, false)
                .expect("write");
            save_record(&guard, &img, &rules_json(&set).expect("json"), &[]).expect("record");
        }
        eprintln!(
            "{n} prefixes: both generations written in {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        let e = guard
            .map(MapId::Host4)
            .entries::<Host4Key, u32>()
            .expect("entries");
        let te = t.elapsed();
        let t = Instant::now();
        let k = guard.map(MapId::Host4).keys::<Host4Key>().expect("keys");
        eprintln!(
            "xdpg_host4: {} entries read in {te:?}, {} keys walked in {:?}",
            e.len(),
            k.len(),
            t.elapsed()
        );
        drop((e, k));
        let t = Instant::now();
        let held = read_held(&guard, [true, true]).expect("read");
        let read = t.elapsed();
        let t = Instant::now();
        let checks: Vec<GenCheck> = (0..2)
            .map(|g| check_generation(&guard, &held.gens[g], g == 1, true))
            .collect();
        eprintln!(
            "read back (2 x {n} prefixes, all arrays) in {read:?}, both checked by digest in {:?}",
            t.elapsed()
        );
        assert!(checks.iter().all(GenCheck::clean), "{checks:?}");
        assert!(foreign_drift(&held).is_empty());

        // Behind xdpguard's back.
        let port = port_index(1, PORTS_TCP_DST, 5555);
        guard.map(MapId::Ports).update(&port, &0u64).expect("port");
        let (k, v) = held.gens[1].host4[0];
        guard.map(MapId::Host4).update(&k, &(v + 7)).expect("host");
        let first = held.gens[0].host4[0].0;
        let mut a = first.addr;
        a[0] = 10;
        let extra = Host4Key::new(first.generation as u32, first.dir, a);
        guard
            .map(MapId::Host4)
            .update(&extra, &0u32)
            .expect("extra");
        let nowhere = Host4Key::new(2, DIR_SRC, [0; 4]);
        guard
            .map(MapId::Host4)
            .update(&nowhere, &0u32)
            .expect("foreign");
        let held = read_held(&guard, [true, true]).expect("read");
        let t = Instant::now();
        let c1 = check_generation(&guard, &held.gens[1], true, true);
        eprintln!(
            "generation 1 itemised (record compiled again) in {:?}",
            t.elapsed()
        );
        let c0 = check_generation(&guard, &held.gens[0], false, true);
        assert_eq!(c1.drift.len(), 2, "{:?}", c1.drift);
        let mut maps = c1.maps.clone();
        maps.sort();
        assert_eq!(maps, vec!["xdpg_host4", "xdpg_ports"]);
        assert!(c1.drift.iter().any(|d| d.key.ends_with("tcp dport 5555)")
            && d.expected.as_deref() == Some("0x1")
            && d.found.as_deref() == Some("0x0")));
        assert_eq!(c0.drift.len(), 1, "{:?}", c0.drift);
        assert_eq!(c0.drift[0].expected, None);
        let f = foreign_drift(&held);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key, "key 02 00 00 00 00 00 00 00");

        // What a commit to generation 0 (1 active) does, but the switch.
        let t = Instant::now();
        let mut img = xdpguard_rules::compile(&set, 0, &|_| None).expect("compile");
        img.config.tag = 0x200;
        assert_eq!(delete_foreign(&guard, &held.foreign).expect("foreign"), 1);
        let written =
            write_generation(&guard, &img, &held.gens[0], &mut Quiet, false).expect("write");
        save_record(&guard, &img, &rules_json(&set).expect("json"), &[]).expect("record");
        let restored = restore_idle(&guard, &held.gens[1]).expect("restore");
        eprintln!(
            "repaired: {written} entries written into generation 0, {restored} put back in \
             generation 1, in {:?}",
            t.elapsed()
        );
        assert_eq!(written, 2, "the extra key and the new config");
        assert_eq!(restored, 2);
        let held = read_held(&guard, [true, true]).expect("read");
        for g in 0..2 {
            let c = check_generation(&guard, &held.gens[g], g == 0, true);
            assert!(c.clean(), "{c:?}");
        }
        assert!(foreign_drift(&held).is_empty());
        // What a re-apply costs but the compile: read back, capacity,
        // generation 1 written (same rules, new tag), record, generation 0
        // checked (and clean).
        for round in 0..2 {
            let mut img = xdpguard_rules::compile(&set, 1, &|_| None).expect("compile");
            img.config.tag = 0x300 + round;
            let t = Instant::now();
            let held = read_held(&guard, [true, true]).expect("read");
            check_capacity(&guard, &img, counts(&held.gens[0])).expect("room");
            delete_foreign(&guard, &held.foreign).expect("foreign");
            write_generation(&guard, &img, &held.gens[1], &mut Quiet, false).expect("write");
            let w = t.elapsed();
            save_record(&guard, &img, &rules_json(&set).expect("json"), &[]).expect("record");
            assert_eq!(restore_idle(&guard, &held.gens[0]).expect("restore"), 0);
            eprintln!(
                "re-apply of {n} next to {n}: read+write {w:?}, with record and the idle \
                 generation's check {:?}",
                t.elapsed()
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
