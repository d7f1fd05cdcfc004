// SPDX-License-Identifier: GPL-2.0

//! Userspace access to a loaded xdpguard module: find its maps, write rule-set images, swap generations, read counters.

pub mod bpf;
pub mod ctl;
pub mod pins;
pub mod rates;
pub mod samples;
pub mod sys;
pub mod sysfs;

use std::{collections::HashMap, io, path::Path};

use xdpguard_abi::*;

pub use bpf::{Map, Prog};
pub use sys::Failure;

/// Where the module publishes the ids of its objects.
pub const SYSFS: &str = xdpguard_abi::sysfs::DIR;

fn io_err(what: &str) -> impl Fn(io::Error) -> Failure + '_ {
    move |e| Failure::io(what, e)
}

/// The loaded module's program and maps.
pub struct Guard {
    /// Program id.
    pub prog_id: u32,
    maps: HashMap<String, Map>,
}

impl Guard {
    /// Opens the objects of the loaded module.
    pub fn open() -> Result<Guard, Failure> {
        Self::open_at(Path::new(SYSFS))
    }

    /// Opens the objects listed under `dir` (the module's sysfs directory).
    pub fn open_at(dir: &Path) -> Result<Guard, Failure> {
        let prog_id = sysfs::read_prog_id(dir)
            .map_err(|_| Failure::failed(sys::NOT_LOADED))?
            .ok_or_else(|| Failure::failed(format!("{}/prog_id: not a number", dir.display())))?;
        let mut maps = HashMap::new();
        let list = sysfs::read_maps(dir).map_err(|e| {
            let what = format!("{}/maps: {e}", dir.display());
            match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => Failure::Privilege(what),
                _ => Failure::Failed(what),
            }
        })?;
        for (name, id) in list {
            let map = Map::from_id(id).map_err(io_err(&format!("map {name} (id {id})")))?;
            maps.insert(name, map);
        }
        for id in MapId::ALL {
            if !maps.contains_key(id.name()) {
                return Err(Failure::failed(format!(
                    "the loaded module has no map {}: it is an older or newer version than this CLI",
                    id.name()
                )));
            }
        }
        Ok(Guard { prog_id, maps })
    }

    /// Whether the loaded module is still the one this guard was opened on:
    /// false after `rmmod`, or a reload, made its program id go or change.
    pub fn is_current(&self) -> bool {
        sysfs::prog_id() == Some(self.prog_id)
    }

    /// Every map of the module, by name (sorted).
    pub fn maps_by_name(&self) -> Vec<(String, &Map)> {
        let mut v: Vec<(String, &Map)> = self.maps.iter().map(|(n, m)| (n.clone(), m)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Verdict counters per ingress interface (`xdpg_if_stats` and
    /// `xdpg_if_hash`), summed over CPUs: `(ifindex, counters)` of the
    /// interfaces that saw frames, sorted by ifindex.
    pub fn iface_counters(&self) -> Result<Vec<(u32, IfCounters)>, Failure> {
        let sum = |per_cpu: Vec<IfCounters>| {
            per_cpu
                .iter()
                .fold(IfCounters::default(), |a, c| IfCounters {
                    pass: rates::add(a.pass, c.pass),
                    drop: rates::add(a.drop, c.drop),
                })
        };
        let mut out = Vec::new();
        let array = self
            .map(MapId::IfStats)
            .lookup_percpu_range(1, IF_STATS_ARRAY - 1)
            .map_err(io_err(MapId::IfStats.name()))?;
        for (i, per_cpu) in (1..).zip(array) {
            let c = sum(per_cpu);
            if c != IfCounters::default() {
                out.push((i, c));
            }
        }
        let hash = self.map(MapId::IfHash);
        let e = io_err(MapId::IfHash.name());
        for k in hash.keys::<u32>().map_err(&e)? {
            match hash.lookup_percpu(&k) {
                Ok(v) => out.push((k, sum(v))),
                // Deleted between listing and lookup.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
                Err(err) => return Err(e(err)),
            }
        }
        out.sort_by_key(|(k, _)| *k);
        Ok(out)
    }

    /// The map `id`.
    pub fn map(&self, id: MapId) -> &Map {
        &self.maps[id.name()]
    }

    /// The sample ring buffer, for reading dropped-packet samples.
    pub fn samples(&self) -> Result<bpf::RingBuf, Failure> {
        let map = Map::from_id(self.map(MapId::Samples).id).map_err(io_err("xdpg_samples"))?;
        bpf::RingBuf::new(map, SAMPLES_BYTES as usize).map_err(io_err("xdpg_samples (mmap)"))
    }

    /// The program (for test runs).
    pub fn prog(&self) -> Result<Prog, Failure> {
        Prog::from_id(self.prog_id).map_err(io_err("program"))
    }

    /// The generation packets use now.
    pub fn active(&self) -> Result<u32, Failure> {
        let g: Option<u32> = self
            .map(MapId::Active)
            .lookup(&0u32)
            .map_err(io_err("xdpg_active"))?;
        Ok(g.unwrap_or(0) & 1)
    }

    /// Makes `generation` the one packets use. A packet reads it once, so
    /// it sees the old rule set or the new one, never a mix.
    pub fn activate(&self, generation: u32) -> Result<(), Failure> {
        self.map(MapId::Active)
            .update(&0u32, &(generation & 1))
            .map_err(io_err("xdpg_active"))
    }

    /// Per-rule counters of the active rule set, first `n` rules.
    pub fn rule_counters(&self, n: u32) -> Result<Vec<Counter>, Failure> {
        self.generation_rule_counters(self.active()?, n)
    }

    /// Per-rule counters of generation `g`, first `n` rules.
    pub fn generation_rule_counters(&self, g: u32, n: u32) -> Result<Vec<Counter>, Failure> {
        let base = rule_stats_index(g, 0);
        self.counters_range(MapId::RuleStats, base, n.min(RULES_PER_GENERATION))
    }

    /// The verdict and reason totals (`STAT_NAMES` order), summed over
    /// CPUs and folded from the per-outcome slots of `xdpg_stats`.
    pub fn stats(&self) -> Result<Vec<Counter>, Failure> {
        let slots = self.counters(MapId::Stats, STAT_SLOTS)?;
        Ok(fold_stats(&slots).to_vec())
    }

    /// A counter array (`MapId::Stats` or `MapId::RuleStats`) summed over
    /// CPUs, for indices `0..n`.
    pub fn counters(&self, map: MapId, n: u32) -> Result<Vec<Counter>, Failure> {
        self.counters_range(map, 0, n)
    }

    fn counters_range(&self, map: MapId, base: u32, n: u32) -> Result<Vec<Counter>, Failure> {
        let all: Vec<Vec<Counter>> = self
            .map(map)
            .lookup_percpu_range(base, n)
            .map_err(io_err(map.name()))?;
        Ok(all
            .iter()
            .map(|per_cpu| {
                per_cpu.iter().fold(Counter::default(), |a, c| Counter {
                    packets: a.packets + c.packets,
                    bytes: a.bytes + c.bytes,
                })
            })
            .collect())
    }
}

/// ifindex of an interface by name (`if_nametoindex`).
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
