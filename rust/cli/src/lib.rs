// SPDX-License-Identifier: GPL-2.0

//! Userspace access to a loaded xdpguard module: find its maps, write rule-set images, swap generations, read counters.

pub mod bpf;
pub mod ctl;
pub mod pins;
pub mod rates;
pub mod samples;
pub mod sys;
pub mod sysfs;

use std::{collections::HashMap, io, path::Path, thread, time::Duration};

use xdpguard_abi::*;
use xdpguard_rules::Image;

pub use bpf::{Map, Prog};
pub use samples::describe_sample;

/// Where the module publishes the ids of its objects.
pub const SYSFS: &str = "/sys/module/xdpguard/bpf";

/// An error with a sentence for the operator.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn io_err(what: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            Error(format!(
                "{what}: permission denied; run as root (CAP_SYS_ADMIN and CAP_NET_ADMIN are needed)"
            ))
        } else {
            Error(format!("{what}: {e}"))
        }
    }
}

/// The loaded module's program and maps.
pub struct Guard {
    /// Program id.
    pub prog_id: u32,
    maps: HashMap<String, Map>,
}

impl Guard {
    /// Opens the objects of the loaded module.
    pub fn open() -> Result<Guard, Error> {
        Self::open_at(Path::new(SYSFS))
    }

    /// Opens the objects listed under `dir` (the module's sysfs directory).
    pub fn open_at(dir: &Path) -> Result<Guard, Error> {
        let read = |f: &str| std::fs::read_to_string(dir.join(f));
        let prog = read("prog_id").map_err(|_| Error(sys::NOT_LOADED.into()))?;
        let prog_id = prog
            .trim()
            .parse()
            .map_err(|_| Error(format!("{}/prog_id: not a number", dir.display())))?;
        let mut maps = HashMap::new();
        let list = read("maps").map_err(|e| Error(format!("{}/maps: {e}", dir.display())))?;
        for line in list.lines() {
            let mut it = line.split_whitespace();
            let (Some(name), Some(id)) = (it.next(), it.next().and_then(|i| i.parse().ok())) else {
                continue;
            };
            maps.insert(
                name.to_string(),
                Map::from_id(id).map_err(io_err(&format!("map {name} (id {id})")))?,
            );
        }
        for spec in MAPS.iter() {
            if !maps.contains_key(spec.name) {
                return Err(Error(format!(
                    "the loaded module has no map {}: it is an older or newer version than this CLI",
                    spec.name
                )));
            }
        }
        Ok(Guard { prog_id, maps })
    }

    /// Whether the loaded module is still the one this guard was opened on:
    /// false after `rmmod`, or a reload, made its program id go or change.
    pub fn is_current(&self) -> bool {
        std::fs::read_to_string(Path::new(SYSFS).join("prog_id"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(self.prog_id)
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
    pub fn iface_counters(&self) -> Result<Vec<(u32, IfCounters)>, Error> {
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
            .map(MAP_IF_STATS)
            .lookup_percpu_range(1, IF_STATS_ARRAY - 1)
            .map_err(io_err(MAPS[MAP_IF_STATS].name))?;
        for (i, per_cpu) in (1..).zip(array) {
            let c = sum(per_cpu);
            if c != IfCounters::default() {
                out.push((i, c));
            }
        }
        let hash = self.map(MAP_IF_HASH);
        let e = io_err(MAPS[MAP_IF_HASH].name);
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

    /// The map at `index` of `abi::MAPS`.
    pub fn map(&self, index: usize) -> &Map {
        &self.maps[MAPS[index].name]
    }

    /// The sample ring buffer, for reading dropped-packet samples.
    pub fn samples(&self) -> Result<bpf::RingBuf, Error> {
        let map = Map::from_id(self.map(MAP_SAMPLES).id).map_err(io_err("xdpg_samples"))?;
        bpf::RingBuf::new(map, SAMPLES_BYTES as usize).map_err(io_err("xdpg_samples (mmap)"))
    }

    /// The program (for test runs).
    pub fn prog(&self) -> Result<Prog, Error> {
        Prog::from_id(self.prog_id).map_err(io_err("program"))
    }

    /// The generation packets use now.
    pub fn active(&self) -> Result<u32, Error> {
        let g: Option<u32> = self
            .map(MAP_ACTIVE)
            .lookup(&0u32)
            .map_err(io_err("xdpg_active"))?;
        Ok(g.unwrap_or(0) & 1)
    }

    /// Writes `img` into its generation. `prev` is what that generation
    /// held, if known; only differing array entries are then written.
    pub fn write(&self, img: &Image, prev: Option<&Image>) -> Result<(), Error> {
        let g = img.generation;
        let e = |m: usize| io_err(MAPS[m].name);
        self.map(MAP_CONFIG)
            .update(&g, &img.config)
            .map_err(e(MAP_CONFIG))?;
        write_array(
            self.map(MAP_RULES),
            g * MAX_BIT_RULES,
            &img.rules,
            prev.map(|p| &p.rules[..]),
        )
        .map_err(e(MAP_RULES))?;
        write_array(
            self.map(MAP_PROTO),
            g * 256,
            &img.proto,
            prev.map(|p| &p.proto[..]),
        )
        .map_err(e(MAP_PROTO))?;
        write_array(
            self.map(MAP_PORTS),
            g * PORT_TABLES * 65536,
            &img.ports,
            prev.map(|p| &p.ports[..]),
        )
        .map_err(e(MAP_PORTS))?;
        write_array(
            self.map(MAP_LIMITS),
            g * MAX_LIMITS,
            &img.limits,
            prev.map(|p| &p.limits[..]),
        )
        .map_err(e(MAP_LIMITS))?;
        replace_keys(self.map(MAP_V4), &img.v4, |k: &Lpm4Key| {
            k.data[0] as u32 == g
        })
        .map_err(e(MAP_V4))?;
        replace_keys(self.map(MAP_V6), &img.v6, |k: &Lpm6Key| {
            k.data[0] as u32 == g
        })
        .map_err(e(MAP_V6))?;
        replace_keys(self.map(MAP_MAC), &img.macs, |k: &MacKey| {
            k.generation as u32 == g
        })
        .map_err(e(MAP_MAC))?;
        replace_keys(self.map(MAP_IFACES), &img.ifaces, |k: &u32| k >> 31 == g)
            .map_err(e(MAP_IFACES))?;
        // This generation's per-rule counters start from zero.
        let ids: Vec<u32> = (0..RULES_PER_GENERATION)
            .map(|i| g * RULES_PER_GENERATION + i)
            .collect();
        self.map(MAP_RULE_STATS)
            .zero_percpu(&ids, std::mem::size_of::<Counter>())
            .map_err(e(MAP_RULE_STATS))?;
        Ok(())
    }

    /// Makes `generation` the one packets use. A packet reads it once, so
    /// it sees the old rule set or the new one, never a mix.
    pub fn activate(&self, generation: u32) -> Result<(), Error> {
        self.map(MAP_ACTIVE)
            .update(&0u32, &(generation & 1))
            .map_err(io_err("xdpg_active"))
    }

    /// Compiles `rs` for the inactive generation, writes it and switches to
    /// it. Returns the image applied (its `generation` is now active).
    pub fn apply(&self, rs: &xdpguard_rules::RuleSet) -> Result<Image, Error> {
        let target = 1 - self.active()?;
        let img = xdpguard_rules::compile(rs, target, &ifindex).map_err(Error)?;
        // Packets that read the generation before the last switch may still
        // be using `target`; they finish within microseconds (RCU), long
        // before this.
        thread::sleep(Duration::from_millis(10));
        self.write(&img, None)?;
        self.activate(target)?;
        Ok(img)
    }

    /// Per-rule counters of the active rule set, first `n` rules.
    pub fn rule_counters(&self, n: u32) -> Result<Vec<Counter>, Error> {
        self.generation_rule_counters(self.active()?, n)
    }

    /// Per-rule counters of generation `g`, first `n` rules.
    pub fn generation_rule_counters(&self, g: u32, n: u32) -> Result<Vec<Counter>, Error> {
        let base = g * RULES_PER_GENERATION;
        self.counters_range(MAP_RULE_STATS, base, n.min(RULES_PER_GENERATION))
    }

    /// A counter array (`MAP_STATS` or `MAP_RULE_STATS`) summed over CPUs,
    /// for indices `0..n`.
    pub fn counters(&self, map: usize, n: u32) -> Result<Vec<Counter>, Error> {
        self.counters_range(map, 0, n)
    }

    fn counters_range(&self, map: usize, base: u32, n: u32) -> Result<Vec<Counter>, Error> {
        let all: Vec<Vec<Counter>> = self
            .map(map)
            .lookup_percpu_range(base, n)
            .map_err(io_err(MAPS[map].name))?;
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

fn bytes_of<K: bpf::Pod>(k: &K) -> &[u8] {
    // SAFETY: `Pod` types are plain data without uninitialised padding, so
    // viewing one as bytes is sound.
    unsafe { std::slice::from_raw_parts(k as *const K as *const u8, std::mem::size_of::<K>()) }
}

pub(crate) fn write_array<V: bpf::Pod + PartialEq>(
    map: &Map,
    base: u32,
    values: &[V],
    prev: Option<&[V]>,
) -> io::Result<()> {
    let (mut keys, mut vals) = (Vec::new(), Vec::new());
    for (i, v) in values.iter().enumerate() {
        if prev.is_some_and(|p| p.get(i) == Some(v)) {
            continue;
        }
        keys.push(base + i as u32);
        vals.push(*v);
    }
    map.update_batch(&keys, &vals)
}

/// Makes the keys of one generation (those `mine` selects) exactly `entries`.
fn replace_keys<K, V>(map: &Map, entries: &[(K, V)], mine: impl Fn(&K) -> bool) -> io::Result<()>
where
    K: bpf::Pod + Default + PartialEq,
    V: bpf::Pod,
{
    let wanted: std::collections::HashSet<Vec<u8>> =
        entries.iter().map(|(k, _)| bytes_of(k).to_vec()).collect();
    for k in map.keys::<K>()?.into_iter().filter(|k| mine(k)) {
        if !wanted.contains(bytes_of(&k)) {
            map.delete(&k)?;
        }
    }
    let keys: Vec<K> = entries.iter().map(|(k, _)| *k).collect();
    let vals: Vec<V> = entries.iter().map(|(_, v)| *v).collect();
    map.update_batch(&keys, &vals)
}
