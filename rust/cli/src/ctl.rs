// SPDX-License-Identifier: GPL-2.0

//! The active rule set: where the rule verbs read it from, and the one path (compile, check capacity, write the idle generation, record, switch) by which every command changes it.
//!
//! # Where the active rule set comes from
//!
//! The kernel is the authority. Each generation's `Config` carries a
//! `tag`, chosen at random by [`commit`] and written together with the
//! rest of the generation. Next to it, `commit` records the rule set it
//! compiled (with comments, limiter names, interface names: what the maps
//! cannot give back) in `$XDPGUARD_STATE_DIR/genN.json` (default
//! `/run/xdpguard`), with that tag and the id of the module's `xdpg_config`
//! map. [`active`] believes a record only if the tag and map id match what
//! the kernel holds *now* for the active generation. A freshly loaded
//! module has tag 0 and all-zero maps: that is the fresh rule set (allow
//! everything), whatever files lie around, so a module reload can never
//! resurrect old rules. Anything else (tag 0 with rules, or a tag without
//! its record) is reported, never guessed.
//!
//! # Repair
//!
//! A commit does not trust its records for what the maps hold: it reads
//! the maps back and makes the generation it writes exactly the compiled
//! image, so re-applying a file undoes whatever another program (say
//! `bpftool map update`) wrote. It also puts the generation that becomes
//! idle back to its record. [`verify`] compares both generations with the
//! records (by a digest recorded in `genN.sums.json`, then entry by
//! entry), and `list` and `status` check the active one.

use std::{
    fs,
    io::{self, BufReader, BufWriter, Write},
    os::fd::AsRawFd,
    path::PathBuf,
    sync::atomic::{AtomicBool, AtomicU8, Ordering},
    thread,
    time::{Duration, Instant},
};

use rustc_hash::FxHashSet as HashSet;
use serde::{Deserialize, Serialize};
use xdpguard_abi::*;
use xdpguard_rules::text::{mac_text, proto_name};
use xdpguard_rules::{Image, RuleSet};

use crate::{bpf, Guard};

pub use crate::sys::{Failure, EXIT_FAILED, EXIT_NOT_LOADED, EXIT_PRIVILEGE, EXIT_USAGE};

/// Opens the loaded module (exit 3 if it is not loaded, 4 without
/// privilege): the one check every command shares, in [`crate::sys`].
pub fn open() -> Result<Guard, Failure> {
    crate::sys::open_guard()
}

/// Directory of the rule-set records.
pub fn state_dir() -> PathBuf {
    std::env::var_os("XDPGUARD_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/xdpguard"))
}

/// Version of the record format.
const RECORD_FORMAT: u32 = 1;

/// The compiler that wrote a record and its digest: a generation whose
/// digest differs is itemised by compiling its record again, which gives
/// the entries it was written with only if this CLI wrote it (another
/// version might assign rule bits differently).
const COMPILER: &str = concat!("xdpguard ", env!("CARGO_PKG_VERSION"));

#[derive(Serialize)]
struct RecordOut<'a> {
    format: u32,
    compiler: &'a str,
    config_map: u32,
    generation: u32,
    tag: u32,
    rules: &'a RuleSet,
}

#[derive(Deserialize)]
struct Record {
    format: u32,
    /// Id of the module's `xdpg_config` (ids are not reused within a boot).
    config_map: u32,
    generation: u32,
    tag: u32,
    rules: RuleSet,
}

fn record_path(generation: u32) -> PathBuf {
    state_dir().join(format!("gen{generation}.json"))
}

/// What an all-zero generation (a freshly loaded module) means, as a rule
/// set: allow everything, pass malformed frames, no samples.
pub fn fresh_rules() -> RuleSet {
    RuleSet {
        malformed_deny: false,
        samples: 0,
        ..RuleSet::default()
    }
}

/// How the active rule set is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The module holds no rule set yet (fresh load): [`fresh_rules`].
    Fresh,
    /// The record written when it was applied, checked against the tag.
    Recorded,
}

/// The rule set packets see now.
pub struct Active {
    /// The rules.
    pub rules: RuleSet,
    /// Its generation (0 or 1).
    pub generation: u32,
    /// Its tag (0 for a fresh module).
    pub tag: u32,
    /// How it is known.
    pub origin: Origin,
}

/// Reads the active rule set (see the module documentation).
pub fn active(guard: &Guard) -> Result<Active, Failure> {
    let g = guard.active()?;
    let cfg: Config = guard
        .map(MAP_CONFIG)
        .lookup(&g)
        .map_err(|e| Failure::failed(format!("xdpg_config: {e}")))?
        .unwrap_or_default();
    if cfg.tag == 0 {
        let ifaces: Vec<u32> = guard
            .map(MAP_IFACES)
            .keys()
            .map_err(|e| Failure::failed(format!("xdpg_ifaces: {e}")))?;
        // The module writes `initial_config(policy=, monitor=)` at load; an
        // all-zero generation is a module from before those parameters.
        let deny = cfg.default_action == ACTION_DENY;
        let monitor = cfg.monitor != 0;
        let fresh = if cfg == initial_config(deny, monitor) {
            Some(RuleSet {
                default_deny: deny,
                monitor,
                ..RuleSet::default()
            })
        } else if cfg == Config::default() {
            Some(fresh_rules())
        } else {
            None
        };
        if let (Some(rules), false) = (fresh, ifaces.iter().any(|k| k >> 31 == g)) {
            return Ok(Active {
                rules,
                generation: g,
                tag: 0,
                origin: Origin::Fresh,
            });
        }
        return Err(Failure::failed(format!(
            "the active rule set (generation {g}) was written without a tag, by another \
             program or an older xdpguard, so it cannot be read back; \
             apply a rule file first (xdpguard apply FILE)"
        )));
    }
    let rules = read_record(guard, &record_path(g), g, cfg.tag)
        .map(|r| r.rules)
        .map_err(|why| {
            Failure::failed(format!(
                "the active rule set (generation {g}, tag {:08x}) has no valid record: {why}; \
             apply the rule file again (xdpguard apply FILE) to re-establish it",
                cfg.tag
            ))
        })?;
    Ok(Active {
        rules,
        generation: g,
        tag: cfg.tag,
        origin: Origin::Recorded,
    })
}

/// The rule set recorded in `path` for generation `g`, if the record
/// carries `tag` and this module's `xdpg_config` id.
fn read_record(guard: &Guard, path: &std::path::Path, g: u32, tag: u32) -> Result<Record, String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rec: Record = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if rec.format != RECORD_FORMAT
        || rec.tag != tag
        || rec.generation != g
        || rec.config_map != guard.map(MAP_CONFIG).id
    {
        return Err(format!(
            "{} describes tag {:08x} of map {} (written for another module instance or rule set)",
            path.display(),
            rec.tag,
            rec.config_map
        ));
    }
    Ok(rec)
}
/// An exclusive lock on the state directory: one command changes the
/// rule set at a time.
pub struct Lock {
    _file: fs::File,
}

/// Takes the lock (waits for another xdpguard to finish).
pub fn lock() -> Result<Lock, Failure> {
    take_lock("lock", libc::LOCK_EX)
}

/// The sample reader's lock, not waited for: `log` and `capture` consume
/// the ring buffer, and two readers would take each other's samples.
pub fn samples_lock() -> Result<Lock, Failure> {
    take_lock("samples.lock", libc::LOCK_EX | libc::LOCK_NB).map_err(|e| {
        if e.code == EXIT_USAGE {
            Failure::failed(
                "another xdpguard log or capture is reading the samples; \
                 one reader at a time (each sample is delivered once)",
            )
        } else {
            e
        }
    })
}

/// flock(2) `op` on `name` in the state directory. A lock that is taken
/// and not waited for (`LOCK_NB`) fails with `EXIT_USAGE`.
fn take_lock(name: &str, op: libc::c_int) -> Result<Lock, Failure> {
    let dir = state_dir();
    fs::create_dir_all(&dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let path = dir.join(name);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(file.as_raw_fd(), op) };
    if r != 0 {
        let e = io::Error::last_os_error();
        let code = if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            EXIT_USAGE
        } else {
            EXIT_FAILED
        };
        return Err(Failure::new(code, format!("{}: {e}", path.display())));
    }
    Ok(Lock { _file: file })
}

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
    /// IPv4 trie entries written.
    pub v4: usize,
    /// IPv6 trie entries written.
    pub v6: usize,
    /// MAC entries written.
    pub macs: usize,
    /// Time spent compiling.
    pub compile: Duration,
    /// Time spent reading the maps back and writing them.
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
    let mut img = xdpguard_rules::compile(rs, target, &resolve).map_err(Failure::usage)?;
    let compile = t0.elapsed();
    alive(guard)?;
    let t1 = Instant::now();
    progress.phase("reading the maps back", 0);
    let mut held = read_held(guard, [true, true])?;
    img.config.tag = new_tag(&[held.gens[0].config.tag, held.gens[1].config.tag]);
    check_capacity(guard, &img, &held)?;
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
    save_record(guard, &img, rs, &resolved.borrow())?;
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
            e.msg
        ),
    }
    Ok(Committed {
        generation: target,
        v4: img.v4.len(),
        v6: img.v6.len(),
        macs: img.macs.len(),
        compile,
        write,
        restored,
    })
}

fn new_tag(avoid: &[u32]) -> u32 {
    loop {
        let t: u32 = rand::random();
        if t != 0 && !avoid.contains(&t) {
            return t;
        }
    }
}

/// `genN.sums.json`: the digest of what a generation was written with
/// (per map: entries and an order-independent sum), so that a check needs
/// no compile, and the interface indexes its policies were compiled with.
#[derive(Serialize, Deserialize)]
struct Sums {
    format: u32,
    /// The compiler that made the image the digest is of.
    compiler: String,
    config_map: u32,
    generation: u32,
    tag: u32,
    digest: Digest,
    /// Interface names and the ifindex each had when compiled.
    #[serde(default)]
    ifindexes: Vec<(String, u32)>,
}

fn sums_path(generation: u32) -> PathBuf {
    state_dir().join(format!("gen{generation}.sums.json"))
}

/// The digest recorded for generation `g` with `tag` of this module.
fn read_sums(guard: &Guard, g: u32, tag: u32) -> Result<Sums, String> {
    let path = sums_path(g);
    let file = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: Sums = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if s.format != RECORD_FORMAT
        || s.tag != tag
        || s.generation != g
        || s.config_map != guard.map(MAP_CONFIG).id
    {
        return Err(format!("{} describes another rule set", path.display()));
    }
    Ok(s)
}

fn save_sums(guard: &Guard, img: &Image, ifindexes: &[(String, u32)]) -> Result<(), Failure> {
    let s = Sums {
        format: RECORD_FORMAT,
        compiler: COMPILER.to_string(),
        config_map: guard.map(MAP_CONFIG).id,
        generation: img.generation,
        tag: img.config.tag,
        digest: digest(img),
        ifindexes: ifindexes.to_vec(),
    };
    save_json(&s, &sums_path(img.generation))
}

fn save_record(
    guard: &Guard,
    img: &Image,
    rs: &RuleSet,
    ifindexes: &[(String, u32)],
) -> Result<(), Failure> {
    let rec = RecordOut {
        format: RECORD_FORMAT,
        compiler: COMPILER,
        config_map: guard.map(MAP_CONFIG).id,
        generation: img.generation,
        tag: img.config.tag,
        rules: rs,
    };
    // The digest first: a record without it is still checked (by compiling
    // it), a digest without its record is never used.
    save_sums(guard, img, ifindexes)?;
    save_json(&rec, &record_path(img.generation))?;
    // Records of the protocol and port arrays, written by versions that
    // did not read the arrays back.
    let _ = fs::remove_file(state_dir().join(format!("gen{}.core.json", img.generation)));
    Ok(())
}

/// Writes `value` as JSON to `path` atomically (a temporary file renamed).
fn save_json<T: Serialize>(value: &T, path: &std::path::Path) -> Result<(), Failure> {
    let tmp = path.with_extension("json.tmp");
    let write = || -> Result<(), String> {
        let file = fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, value).map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())?;
        drop(w);
        fs::rename(&tmp, path).map_err(|e| e.to_string())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Failure::failed(format!("{}: {e}", tmp.display()))
    })
}

/// "map xdpg_v4 is full: ..." for `map` (index in `MAPS`) of `max` entries.
fn full(map: usize, needed: usize, max: usize, active: usize, why: &str) -> Failure {
    Failure::failed(format!(
        "map {} is full: {needed} entries needed, max {max} ({active} held by the active rule set{why}); \
         nothing changed",
        MAPS[map].name,
    ))
}

fn map_err(map: usize) -> impl Fn(io::Error) -> Failure {
    move |e| match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::E2BIG) => Failure::failed(format!(
            "map {} is full (max {} entries): the kernel refused an entry ({e}); \
             the rule set in force is unchanged",
            MAPS[map].name, MAPS[map].max_entries
        )),
        Some(libc::EPERM) => Failure {
            code: EXIT_PRIVILEGE,
            msg: format!(
                "{}: permission denied; run as root (CAP_SYS_ADMIN and CAP_NET_ADMIN are needed)",
                MAPS[map].name
            ),
        },
        _ => Failure::failed(format!("{}: {e}", MAPS[map].name)),
    }
}

fn bytes_of<K: bpf::Pod>(k: &K) -> &[u8] {
    // SAFETY: `Pod` types are plain data without uninitialised padding.
    unsafe { std::slice::from_raw_parts(k as *const K as *const u8, std::mem::size_of::<K>()) }
}

/// What turns `have` (a generation's entries now) into `wanted`: the keys
/// to delete and the entries to write (new or with another value).
#[allow(clippy::type_complexity)]
fn plan<K: bpf::Pod, V: bpf::Pod>(have: &[(K, V)], wanted: &[(K, V)]) -> (Vec<K>, Vec<(K, V)>) {
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
fn array_plan<V: PartialEq>(have: &[V], want: &[V]) -> Vec<usize> {
    (0..want.len())
        .filter(|&i| have.get(i) != Some(&want[i]))
        .collect()
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
fn max_entries(guard: &Guard, map: usize) -> usize {
    guard
        .map(map)
        .info()
        .map(|i| i.max_entries)
        .unwrap_or(MAPS[map].max_entries) as usize
}

/// Fails with "map ... is full" unless `img` fits in the keyed maps next
/// to the other generation's entries (keys of no generation do not count:
/// the commit deletes them first).
fn check_capacity(guard: &Guard, img: &Image, held: &Held) -> Result<(), Failure> {
    let other = &held.gens[1 - img.generation as usize];
    for (map, need, active) in [
        (MAP_V4, img.v4.len(), other.v4.len()),
        (MAP_V6, img.v6.len(), other.v6.len()),
        (MAP_MAC, img.macs.len(), other.macs.len()),
        (MAP_IFACES, img.ifaces.len(), other.ifaces.len()),
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

/// Deletes the keys that belong to no generation; how many.
fn delete_foreign(guard: &Guard, f: &Foreign) -> Result<usize, Failure> {
    let keys4: Vec<Lpm4Key> = f.v4.iter().map(|(k, _)| *k).collect();
    let keys6: Vec<Lpm6Key> = f.v6.iter().map(|(k, _)| *k).collect();
    let keysm: Vec<MacKey> = f.mac.iter().map(|(k, _)| *k).collect();
    for (map, r) in [
        (MAP_V4, guard.map(MAP_V4).delete_batch(&keys4)),
        (MAP_V6, guard.map(MAP_V6).delete_batch(&keys6)),
        (MAP_MAC, guard.map(MAP_MAC).delete_batch(&keysm)),
    ] {
        r.map_err(map_err(map))?;
    }
    Ok(keys4.len() + keys6.len() + keysm.len())
}

/// Makes generation `img.generation` hold exactly `img`, given that it
/// holds `have` now (as [`read_held`] read it): writes every entry that
/// differs, deletes every extra key, writes the config (with the tag)
/// last. `commit_path`: checks that the module is still there between
/// batches and zeroes the generation's per-rule counters. Returns how many
/// entries it wrote or deleted.
fn write_generation(
    guard: &Guard,
    img: &Image,
    have: &Image,
    progress: &mut dyn Progress,
    commit_path: bool,
) -> Result<usize, Failure> {
    let g = img.generation;
    let mut n = 0;
    progress.phase("writing tables", 0);

    fn array<V: bpf::Pod + PartialEq>(
        guard: &Guard,
        map: usize,
        base: u32,
        want: &[V],
        have: &[V],
    ) -> Result<usize, Failure> {
        let idx = array_plan(have, want);
        let keys: Vec<u32> = idx.iter().map(|&i| base + i as u32).collect();
        let vals: Vec<V> = idx.iter().map(|&i| want[i]).collect();
        guard
            .map(map)
            .update_batch(&keys, &vals)
            .map_err(map_err(map))?;
        Ok(keys.len())
    }
    n += array(guard, MAP_RULES, g * MAX_BIT_RULES, &img.rules, &have.rules)?;
    n += array(guard, MAP_PROTO, g * 256, &img.proto, &have.proto)?;
    n += array(
        guard,
        MAP_PORTS,
        g * PORT_TABLES * 65536,
        &img.ports,
        &have.ports,
    )?;
    n += array(guard, MAP_LIMITS, g * MAX_LIMITS, &img.limits, &have.limits)?;

    fn replace<K: bpf::Pod, V: bpf::Pod>(
        guard: &Guard,
        map: usize,
        have: &[(K, V)],
        entries: &[(K, V)],
        progress: &mut dyn Progress,
        check: bool,
    ) -> Result<usize, Failure> {
        let (old, new) = plan(have, entries);
        if !old.is_empty() {
            progress.phase(
                &format!("removing from {}", MAPS[map].name),
                old.len() as u64,
            );
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
        progress.phase(&format!("writing {}", MAPS[map].name), keys.len() as u64);
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
    n += replace(guard, MAP_V4, &have.v4, &img.v4, progress, commit_path)?;
    n += replace(guard, MAP_V6, &have.v6, &img.v6, progress, commit_path)?;
    n += replace(guard, MAP_MAC, &have.macs, &img.macs, progress, commit_path)?;
    n += replace(
        guard,
        MAP_IFACES,
        &have.ifaces,
        &img.ifaces,
        progress,
        commit_path,
    )?;

    if commit_path {
        // This generation's per-rule counters start from zero.
        let ids: Vec<u32> = (0..RULES_PER_GENERATION)
            .map(|i| g * RULES_PER_GENERATION + i)
            .collect();
        guard
            .map(MAP_RULE_STATS)
            .zero_percpu(&ids, std::mem::size_of::<Counter>())
            .map_err(map_err(MAP_RULE_STATS))?;
    }
    if img.config != have.config {
        guard
            .map(MAP_CONFIG)
            .update(&g, &img.config)
            .map_err(map_err(MAP_CONFIG))?;
        n += 1;
    }
    Ok(n)
}

/// Puts the idle generation (`found`: what it holds, read before this
/// commit wrote the other one) back to its record: to the image its
/// record compiles to, or, for a generation with a tag but no valid
/// record, to the all-zero generation of a fresh module. Returns how many
/// entries it wrote or deleted (0 when it held its record already).
fn restore_idle(guard: &Guard, found: &Image) -> Result<usize, Failure> {
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

// ---------------------------------------------------------------------
// What the maps hold, and whether it is what xdpguard wrote.
// ---------------------------------------------------------------------

/// The generation a trie key belongs to: its generation byte, if that is 0
/// or 1 and the key is long enough to include it (`prefixlen` >= 8).
/// `None`: a key of no generation (lookups of both generations can match
/// a shorter one); only another program writes such keys, and every
/// commit deletes them.
pub fn trie_owner(prefixlen: u32, generation_byte: u8) -> Option<u32> {
    (prefixlen >= 8 && generation_byte < 2).then_some(generation_byte as u32)
}

fn mac_owner(k: &MacKey) -> Option<u32> {
    (k.generation < 2).then_some(k.generation as u32)
}

/// An image with nothing in it, not even the arrays (which [`read_held`]
/// fills for the generations it reads them for).
fn blank(g: u32) -> Image {
    Image {
        generation: g,
        config: Config::default(),
        rules: Vec::new(),
        v4: Vec::new(),
        v6: Vec::new(),
        macs: Vec::new(),
        proto: Vec::new(),
        ports: Vec::new(),
        limits: Vec::new(),
        ifaces: Vec::new(),
    }
}

/// What generation `g` of a freshly loaded module holds, with `config`:
/// all-zero arrays and no keys.
pub fn fresh_image(g: u32, config: Config) -> Image {
    Image {
        config,
        rules: vec![RuleEntry::default(); MAX_BIT_RULES as usize],
        proto: vec![0; 256],
        ports: vec![0; (PORT_TABLES * 65536) as usize],
        limits: vec![LimitConfig::default(); MAX_LIMITS as usize],
        ..blank(g)
    }
}

/// The config a generation without a tag should have, given the one it
/// has: all zeroes, or what the module writes at load for its `policy=`
/// and `monitor=` ([`initial_config`]).
fn fresh_config(found: &Config) -> Config {
    if *found == Config::default() {
        *found
    } else {
        initial_config(found.default_action == ACTION_DENY, found.monitor != 0)
    }
}

/// Entries of the keyed maps that belong to no generation.
#[derive(Default)]
pub struct Foreign {
    v4: Vec<(Lpm4Key, AddrEntry)>,
    v6: Vec<(Lpm6Key, AddrEntry)>,
    mac: Vec<(MacKey, u64)>,
}

/// What the rule maps hold now.
pub struct Held {
    /// `xdpg_active[0]` as stored (the program knows only 0 and 1).
    pub active_raw: u32,
    /// Each generation's entries. The keyed maps are always read whole;
    /// the arrays (config, rules, protocols, ports, limits) only for the
    /// generations asked for, else they are empty.
    pub gens: [Image; 2],
    /// Keys of no generation.
    pub foreign: Foreign,
}

/// Reads the rule maps: the keyed ones whole (in batches), the arrays of
/// the generations `arrays` selects.
pub fn read_held(guard: &Guard, arrays: [bool; 2]) -> Result<Held, Failure> {
    let active_raw: u32 = guard
        .map(MAP_ACTIVE)
        .lookup(&0u32)
        .map_err(map_err(MAP_ACTIVE))?
        .unwrap_or(0);
    let mut gens = [blank(0), blank(1)];
    for (g, img) in gens.iter_mut().enumerate() {
        if !arrays[g] {
            continue;
        }
        let g = g as u32;
        img.config = guard
            .map(MAP_CONFIG)
            .lookup(&g)
            .map_err(map_err(MAP_CONFIG))?
            .unwrap_or_default();
        img.rules = guard
            .map(MAP_RULES)
            .lookup_range(g * MAX_BIT_RULES, MAX_BIT_RULES)
            .map_err(map_err(MAP_RULES))?;
        img.proto = guard
            .map(MAP_PROTO)
            .lookup_range(g * 256, 256)
            .map_err(map_err(MAP_PROTO))?;
        img.ports = guard
            .map(MAP_PORTS)
            .lookup_range(g * PORT_TABLES * 65536, PORT_TABLES * 65536)
            .map_err(map_err(MAP_PORTS))?;
        img.limits = guard
            .map(MAP_LIMITS)
            .lookup_range(g * MAX_LIMITS, MAX_LIMITS)
            .map_err(map_err(MAP_LIMITS))?;
    }
    let mut foreign = Foreign::default();
    for (k, v) in guard
        .map(MAP_V4)
        .entries::<Lpm4Key, AddrEntry>()
        .map_err(map_err(MAP_V4))?
    {
        match trie_owner(k.prefixlen, k.data[0]) {
            Some(g) => gens[g as usize].v4.push((k, v)),
            None => foreign.v4.push((k, v)),
        }
    }
    for (k, v) in guard
        .map(MAP_V6)
        .entries::<Lpm6Key, AddrEntry>()
        .map_err(map_err(MAP_V6))?
    {
        match trie_owner(k.prefixlen, k.data[0]) {
            Some(g) => gens[g as usize].v6.push((k, v)),
            None => foreign.v6.push((k, v)),
        }
    }
    for (k, v) in guard
        .map(MAP_MAC)
        .entries::<MacKey, u64>()
        .map_err(map_err(MAP_MAC))?
    {
        match mac_owner(&k) {
            Some(g) => gens[g as usize].macs.push((k, v)),
            None => foreign.mac.push((k, v)),
        }
    }
    for (k, v) in guard
        .map(MAP_IFACES)
        .entries::<u32, u32>()
        .map_err(map_err(MAP_IFACES))?
    {
        gens[(k >> 31) as usize].ifaces.push((k, v));
    }
    Ok(Held {
        active_raw,
        gens,
        foreign,
    })
}

/// Entries and an order-independent 128-bit sum of one map's entries of
/// one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSum {
    /// Entries summed (array entries: the non-zero ones).
    pub entries: u64,
    /// Two independent wrapping sums of a 64-bit hash of each entry.
    pub sum: [u64; 2],
}

/// [`MapSum`] per map name.
pub type Digest = std::collections::BTreeMap<String, MapSum>;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn entry_hash(seed: u64, key: &[u8], value: &[u8]) -> u64 {
    let mut h = mix64(seed ^ ((key.len() as u64) << 32 | value.len() as u64));
    for part in [key, value] {
        for c in part.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = mix64(h ^ u64::from_le_bytes(w)).wrapping_add(seed);
        }
    }
    h
}

impl MapSum {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.entries += 1;
        self.sum[0] = self.sum[0].wrapping_add(entry_hash(0x9e37_79b9_7f4a_7c15, key, value));
        self.sum[1] = self.sum[1].wrapping_add(entry_hash(0xc2b2_ae3d_27d4_eb4f, key, value));
    }
}

/// The digest of a generation's image: every map's entries of it (array
/// entries that are not zero, by index), summed so that order does not
/// matter. Any changed, added or removed entry changes it.
pub fn digest(img: &Image) -> Digest {
    let g = img.generation;
    let mut d = Digest::new();
    fn array<V: bpf::Pod + Default + PartialEq>(d: &mut Digest, map: usize, base: u32, v: &[V]) {
        let s = d.entry(MAPS[map].name.to_string()).or_default();
        for (i, x) in v.iter().enumerate() {
            if *x != V::default() {
                s.add(&(base + i as u32).to_ne_bytes(), bytes_of(x));
            }
        }
    }
    fn keyed<K: bpf::Pod, V: bpf::Pod>(d: &mut Digest, map: usize, v: &[(K, V)]) {
        let s = d.entry(MAPS[map].name.to_string()).or_default();
        for (k, x) in v {
            s.add(bytes_of(k), bytes_of(x));
        }
    }
    d.entry(MAPS[MAP_CONFIG].name.to_string())
        .or_default()
        .add(&g.to_ne_bytes(), bytes_of(&img.config));
    array(&mut d, MAP_RULES, g * MAX_BIT_RULES, &img.rules);
    array(&mut d, MAP_PROTO, g * 256, &img.proto);
    array(&mut d, MAP_PORTS, g * PORT_TABLES * 65536, &img.ports);
    array(&mut d, MAP_LIMITS, g * MAX_LIMITS, &img.limits);
    keyed(&mut d, MAP_V4, &img.v4);
    keyed(&mut d, MAP_V6, &img.v6);
    keyed(&mut d, MAP_MAC, &img.macs);
    keyed(&mut d, MAP_IFACES, &img.ifaces);
    d
}

/// One map entry that is not what xdpguard wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// Its generation (`None`: a key of no generation, or `xdpg_active`).
    pub generation: Option<u32>,
    /// Index in `MAPS`.
    pub map: usize,
    /// The key, in words.
    pub key: String,
    /// The key's bytes in hex, as `bpftool map lookup ... key hex` takes them.
    pub key_hex: String,
    /// What xdpguard wrote (`None`: no such entry).
    pub expected: Option<String>,
    /// What the map holds (`None`: no such entry).
    pub found: Option<String>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: expected {}, found {}",
            MAPS[self.map].name,
            self.key,
            self.expected.as_deref().unwrap_or("no entry"),
            self.found.as_deref().unwrap_or("no entry")
        )
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn action_word(a: u8) -> String {
    match a {
        ACTION_NONE => "none".into(),
        ACTION_ALLOW => "allow".into(),
        ACTION_DENY => "deny".into(),
        ACTION_LIMIT => "limit".into(),
        x => format!("{x:#04x} (unknown)"),
    }
}

fn rule_entry_text(e: &RuleEntry) -> String {
    let mut s = format!(
        "rank {:#010x} rule_id {} action {} limit {}",
        e.rank,
        e.rule_id,
        action_word(e.action),
        e.limit
    );
    if e._pad != [0; 6] {
        s.push_str(&format!(" pad {}", hex(&e._pad)));
    }
    s
}

fn addr_entry_text(e: &AddrEntry) -> String {
    format!("bits {:#x}, best {}", e.bits, rule_entry_text(&e.best))
}

fn dir_word(d: u8) -> String {
    match d {
        DIR_SRC => "src".into(),
        DIR_DST => "dst".into(),
        x => format!("direction {x}"),
    }
}

/// A trie key in words: `generation 1 src 192.0.2.0/24` for the keys
/// xdpguard writes, the raw prefix length and bytes for others.
fn trie_key_text(prefixlen: u32, data: &[u8]) -> String {
    let addr_len = data.len() - 4;
    let max = 16 + addr_len as u32 * 8;
    if (16..=max).contains(&prefixlen) && data[0] < 2 && data[1] < 2 {
        let a = &data[2..2 + addr_len];
        let ip: std::net::IpAddr = if addr_len == 4 {
            std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).into()
        } else {
            let mut b = [0u8; 16];
            b.copy_from_slice(a);
            std::net::Ipv6Addr::from(b).into()
        };
        format!(
            "generation {} {} {ip}/{}",
            data[0],
            dir_word(data[1]),
            prefixlen - 16
        )
    } else {
        format!("prefixlen {prefixlen} data {}", hex(data))
    }
}

fn port_key_text(i: u32) -> String {
    let g = i / (PORT_TABLES * 65536);
    let t = (i / 65536) % PORT_TABLES;
    let p = i % 65536;
    let what = match t {
        PORTS_TCP_SRC => format!("tcp sport {p}"),
        PORTS_TCP_DST => format!("tcp dport {p}"),
        PORTS_UDP_SRC => format!("udp sport {p}"),
        PORTS_UDP_DST => format!("udp dport {p}"),
        PORTS_ICMP4 => format!("icmp type {} code {}", p >> 8, p & 255),
        _ => format!("icmpv6 type {} code {}", p >> 8, p & 255),
    };
    format!("{i} (generation {g}, {what})")
}

/// The fields of two configs that differ, as `(name, expected, found)`,
/// from their `Debug` forms (`Config { a: 1, b: 2 }`).
fn config_fields(want: &Config, have: &Config) -> Vec<(String, String, String)> {
    let fields = |c: &Config| -> Vec<(String, String)> {
        let s = format!("{c:?}");
        let inner = s
            .trim_start_matches("Config")
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .to_string();
        inner
            .split(", ")
            .filter_map(|f| f.split_once(": "))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let (w, h) = (fields(want), fields(have));
    w.iter()
        .zip(&h)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, b)| {
            let num = |v: &str| {
                v.parse::<u64>()
                    .map(|n| {
                        if a.0 == "tag" {
                            format!("{n:08x}")
                        } else if n > 255 {
                            format!("{n:#x}")
                        } else {
                            n.to_string()
                        }
                    })
                    .unwrap_or_else(|_| v.to_string())
            };
            (a.0.clone(), num(&a.1), num(&b.1))
        })
        .collect()
}

/// Every entry in which `found` (what generation `expected.generation`
/// holds) differs from `expected` (what xdpguard wrote into it): arrays
/// index by index, keyed maps key by key (missing and extra keys too).
pub fn drift(expected: &Image, found: &Image) -> Vec<Drift> {
    let g = expected.generation;
    let mut out = Vec::new();
    let gen = Some(g);
    if expected.config != found.config {
        for (name, e, f) in config_fields(&expected.config, &found.config) {
            out.push(Drift {
                generation: gen,
                map: MAP_CONFIG,
                key: format!("{g} field {name}"),
                key_hex: hex(&g.to_ne_bytes()),
                expected: Some(e),
                found: Some(f),
            });
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn array<V: PartialEq + Default>(
        out: &mut Vec<Drift>,
        g: u32,
        map: usize,
        base: u32,
        want: &[V],
        have: &[V],
        key: impl Fn(u32) -> String,
        text: impl Fn(&V) -> String,
    ) {
        let zero = V::default();
        for i in array_plan(have, want) {
            let k = base + i as u32;
            out.push(Drift {
                generation: Some(g),
                map,
                key: key(k),
                key_hex: hex(&k.to_ne_bytes()),
                expected: Some(text(&want[i])),
                found: Some(text(have.get(i).unwrap_or(&zero))),
            });
        }
    }
    array(
        &mut out,
        g,
        MAP_RULES,
        g * MAX_BIT_RULES,
        &expected.rules,
        &found.rules,
        |k| format!("{k} (generation {g}, bit {})", k % MAX_BIT_RULES),
        rule_entry_text,
    );
    array(
        &mut out,
        g,
        MAP_PROTO,
        g * 256,
        &expected.proto,
        &found.proto,
        |k| {
            format!(
                "{k} (generation {g}, proto {})",
                proto_name((k % 256) as u8)
            )
        },
        |v| format!("{v:#x}"),
    );
    array(
        &mut out,
        g,
        MAP_PORTS,
        g * PORT_TABLES * 65536,
        &expected.ports,
        &found.ports,
        port_key_text,
        |v| format!("{v:#x}"),
    );
    array(
        &mut out,
        g,
        MAP_LIMITS,
        g * MAX_LIMITS,
        &expected.limits,
        &found.limits,
        |k| format!("{k} (generation {g}, limiter {})", k % MAX_LIMITS),
        |l: &LimitConfig| {
            format!(
                "pps {} burst {} bps {} burst_bytes {} prefix4 {} prefix6 {} id {:#06x}",
                l.pps, l.burst_packets, l.bps, l.burst_bytes, l.prefix4, l.prefix6, l.id
            )
        },
    );
    fn keyed<K: bpf::Pod, V: bpf::Pod + PartialEq>(
        out: &mut Vec<Drift>,
        g: u32,
        map: usize,
        want: &[(K, V)],
        have: &[(K, V)],
        key: impl Fn(&K) -> String,
        text: impl Fn(&V) -> String,
    ) {
        let now: rustc_hash::FxHashMap<&[u8], &V> =
            have.iter().map(|(k, v)| (bytes_of(k), v)).collect();
        let wanted: HashSet<&[u8]> = want.iter().map(|(k, _)| bytes_of(k)).collect();
        for (k, v) in want {
            match now.get(bytes_of(k)) {
                Some(h) if *h == v => {}
                h => out.push(Drift {
                    generation: Some(g),
                    map,
                    key: key(k),
                    key_hex: hex(bytes_of(k)),
                    expected: Some(text(v)),
                    found: h.map(|h| text(h)),
                }),
            }
        }
        for (k, v) in have.iter().filter(|(k, _)| !wanted.contains(bytes_of(k))) {
            out.push(Drift {
                generation: Some(g),
                map,
                key: key(k),
                key_hex: hex(bytes_of(k)),
                expected: None,
                found: Some(text(v)),
            });
        }
    }
    keyed(
        &mut out,
        g,
        MAP_V4,
        &expected.v4,
        &found.v4,
        |k| trie_key_text(k.prefixlen, &k.data),
        addr_entry_text,
    );
    keyed(
        &mut out,
        g,
        MAP_V6,
        &expected.v6,
        &found.v6,
        |k| trie_key_text(k.prefixlen, &k.data),
        addr_entry_text,
    );
    keyed(
        &mut out,
        g,
        MAP_MAC,
        &expected.macs,
        &found.macs,
        |k| {
            format!(
                "generation {} {} {}",
                k.generation,
                dir_word(k.dir),
                mac_text(&k.mac)
            )
        },
        |v| format!("{v:#x}"),
    );
    keyed(
        &mut out,
        g,
        MAP_IFACES,
        &expected.ifaces,
        &found.ifaces,
        |k| {
            format!(
                "{k:#x} (generation {}, ifindex {})",
                k >> 31,
                k & 0x7fff_ffff
            )
        },
        |v| action_word((*v).min(255) as u8),
    );
    out
}

/// The entries of no generation, as drift (none of them was written by
/// xdpguard), and an `xdpg_active` the program does not understand.
fn foreign_drift(held: &Held) -> Vec<Drift> {
    let mut out = Vec::new();
    if held.active_raw > 1 {
        out.push(Drift {
            generation: None,
            map: MAP_ACTIVE,
            key: "0".into(),
            key_hex: hex(&0u32.to_ne_bytes()),
            expected: Some("0 or 1".into()),
            found: Some(held.active_raw.to_string()),
        });
    }
    let f = &held.foreign;
    for (k, v) in &f.v4 {
        out.push(Drift {
            generation: None,
            map: MAP_V4,
            key: trie_key_text(k.prefixlen, &k.data),
            key_hex: hex(bytes_of(k)),
            expected: None,
            found: Some(addr_entry_text(v)),
        });
    }
    for (k, v) in &f.v6 {
        out.push(Drift {
            generation: None,
            map: MAP_V6,
            key: trie_key_text(k.prefixlen, &k.data),
            key_hex: hex(bytes_of(k)),
            expected: None,
            found: Some(addr_entry_text(v)),
        });
    }
    for (k, v) in &f.mac {
        out.push(Drift {
            generation: None,
            map: MAP_MAC,
            key: format!(
                "generation {} {} {}",
                k.generation,
                dir_word(k.dir),
                mac_text(&k.mac)
            ),
            key_hex: hex(bytes_of(k)),
            expected: None,
            found: Some(format!("{v:#x}")),
        });
    }
    out
}

/// The image generation `g` with `tag` was written with: its record
/// compiled again, with the interface indexes recorded then. Also returns
/// those indexes.
#[allow(clippy::type_complexity)]
fn expected_image(
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
    let mut v: Vec<&'static str> = d.iter().map(|x| MAPS[x.map].name).collect();
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
        maps.extend(v.foreign.iter().map(|d| MAPS[d.map].name));
        maps.sort();
        maps.dedup();
        format!(
            "{}the maps hold what xdpguard did not write ({}, generation {} active)",
            entries_differ(n as usize, " from the record"),
            maps.join(", "),
            v.active
        )
    };
    Some(Failure::failed(format!(
        "{what}; packets see those entries, not the rules listed: `xdpguard verify` shows \
         every one, `xdpguard apply FILE` (or any rule change) writes the rule set again"
    )))
}

// ---------------------------------------------------------------------
// Noticing that the module went away while a command works.
// ---------------------------------------------------------------------

/// How often the watchdog looks at sysfs.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How long it leaves the command to notice by itself (at its next
/// [`alive`]) before it ends the process.
const WATCH_GRACE: Duration = Duration::from_millis(700);

struct Watchdog {
    started: AtomicBool,
    armed: AtomicBool,
    /// 0: loaded; 1: unloaded; 2: reloaded.
    gone: AtomicU8,
}

static WATCHDOG: Watchdog = Watchdog {
    started: AtomicBool::new(false),
    armed: AtomicBool::new(false),
    gone: AtomicU8::new(0),
};

fn gone_failure(state: u8) -> Failure {
    match state {
        1 => Failure::not_loaded(),
        _ => Failure::new(EXIT_NOT_LOADED, crate::sys::RELOADED),
    }
}

/// Watches, until [`disarm`], that the module `guard` was opened on stays
/// loaded: a thread compares the program and map ids in sysfs with
/// `guard`'s ten times a second. A command holding map fds keeps the maps
/// alive after `rmmod`, so without this a long write would "succeed" into
/// maps nobody uses. The command notices at its next [`alive`] (between
/// write batches, and before the switch); should it be busy elsewhere
/// (compiling, reading a list, waiting for the lock) for 0.7 s more, the
/// thread prints the message and ends the process with exit 3 itself:
/// nothing was switched, so nothing is lost.
pub fn watch(guard: &Guard) {
    WATCHDOG.armed.store(true, Ordering::SeqCst);
    if WATCHDOG.started.swap(true, Ordering::SeqCst) {
        return;
    }
    let prog = guard.prog_id;
    let maps: Vec<(String, u32)> = guard
        .maps_by_name()
        .into_iter()
        .map(|(n, m)| (n, m.id))
        .collect();
    let spawned = thread::Builder::new()
        .name("xdpguard-watch".into())
        .spawn(move || loop {
            thread::sleep(WATCH_EVERY);
            if !WATCHDOG.armed.load(Ordering::SeqCst) {
                continue;
            }
            // `initstate` first: the core's attribute says `going` as soon
            // as rmmod begins, while reading the module's own attributes
            // (its program id) may wait for its exit to finish (9 s under
            // TCG, measured).
            let live =
                fs::read_to_string(std::path::Path::new(crate::sys::MODULE_DIR).join("initstate"))
                    .is_ok_and(|s| s.trim() == "live");
            let now = if live { crate::sys::published() } else { None };
            let state = match crate::sys::compare_opened(prog, &maps, &now) {
                crate::sys::Opened::Current => continue,
                crate::sys::Opened::Unloaded => 1,
                crate::sys::Opened::Reloaded => 2,
            };
            WATCHDOG.gone.store(state, Ordering::SeqCst);
            thread::sleep(WATCH_GRACE);
            if !WATCHDOG.armed.load(Ordering::SeqCst) {
                return;
            }
            let f = gone_failure(state);
            if io::IsTerminal::is_terminal(&io::stderr()) {
                // Over a progress bar.
                eprint!("\r\x1b[2K");
            }
            eprintln!("xdpguard: {}", f.msg);
            std::process::exit(f.code as i32);
        });
    if spawned.is_err() {
        // No thread: `alive` looks at sysfs itself.
        WATCHDOG.started.store(false, Ordering::SeqCst);
    }
}

/// Stops [`watch`]ing: the command has switched (or changes nothing more).
pub fn disarm() {
    WATCHDOG.armed.store(false, Ordering::SeqCst);
}

/// Exit 3 if the module `guard` was opened on has gone (or was replaced):
/// what the watchdog saw, or, without one, what sysfs says now.
pub fn alive(guard: &Guard) -> Result<(), Failure> {
    match WATCHDOG.gone.load(Ordering::SeqCst) {
        0 if WATCHDOG.started.load(Ordering::SeqCst) => Ok(()),
        0 => crate::sys::still_opened(guard),
        s => Err(gone_failure(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpguard_rules::{Action, Rule};

    fn rs(text: &str) -> RuleSet {
        RuleSet::from_toml(text).expect("parses")
    }

    const BASE: &str = r#"
default = "deny"
[[rule]]
action = "allow"
proto = "tcp"
dport = 22
[[rule]]
action = "deny"
src = "10.0.0.0/8"
[[rule]]
action = "deny"
src = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
"#;

    #[test]
    fn plan_writes_only_what_differs() {
        let have = [(1u32, 10u32), (2, 20), (3, 30)];
        let want = [(2u32, 20u32), (3, 31), (4, 40)];
        let (del, put) = plan(&have, &want);
        assert_eq!(del, vec![1]);
        assert_eq!(put, vec![(3, 31), (4, 40)]);
    }

    fn image(text: &str, g: u32) -> Image {
        xdpguard_rules::compile(&rs(text), g, &|_| None).expect("compiles")
    }

    #[test]
    fn a_generation_holding_its_image_has_no_drift_and_the_same_digest() {
        let want = image(BASE, 1);
        let mut found = want.clone();
        // Read back in another order (a trie walk is not the compiler's).
        found.v4.reverse();
        assert_eq!(drift(&want, &found), vec![]);
        assert_eq!(digest(&want), digest(&found));
    }

    #[test]
    fn every_kind_of_out_of_band_write_is_drift_and_changes_the_digest() {
        let want = image(BASE, 1);
        let base = digest(&want);
        // A port table entry cleared (tcp dport 22 of generation 1).
        let mut f = want.clone();
        let i = (PORTS_TCP_DST * 65536 + 22) as usize;
        assert_ne!(f.ports[i], 0);
        f.ports[i] = 0;
        let d = drift(&want, &f);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].map, MAP_PORTS);
        assert_eq!(
            d[0].key,
            format!("{} (generation 1, tcp dport 22)", (6 + 1) * 65536 + 22)
        );
        assert_eq!(
            (d[0].expected.as_deref(), d[0].found.as_deref()),
            (Some("0x1"), Some("0x0"))
        );
        assert_ne!(digest(&f), base);
        // A garbage action byte in a trie entry.
        let mut f = want.clone();
        f.v4[0].1.best.action = 0x7f;
        let d = drift(&want, &f);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].map, MAP_V4);
        assert!(
            d[0].found
                .as_deref()
                .unwrap()
                .contains("action 0x7f (unknown)"),
            "{d:?}"
        );
        assert!(d[0].key.starts_with("generation 1 src "), "{d:?}");
        assert_ne!(digest(&f), base);
        // An extra key, and a missing one.
        let mut f = want.clone();
        let mut k = f.v4[0].0;
        k.data[5] ^= 1;
        k.prefixlen = 48;
        f.v4.push((k, AddrEntry::default()));
        let gone = f.v4.remove(0);
        let d = drift(&want, &f);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d
            .iter()
            .any(|x| x.found.is_none() && x.key == trie_key_text(gone.0.prefixlen, &gone.0.data)));
        assert!(d.iter().any(|x| x.expected.is_none()));
        // A rank, a limiter index and a config field.
        let mut f = want.clone();
        f.rules[0].rank ^= 1;
        f.limits[3].pps = 9;
        f.config.default_action = ACTION_ALLOW;
        let d = drift(&want, &f);
        assert_eq!(
            d.iter().map(|x| x.map).collect::<Vec<_>>(),
            vec![MAP_CONFIG, MAP_RULES, MAP_LIMITS],
            "{d:?}"
        );
        assert_eq!(d[0].key, "1 field default_action");
        assert_eq!(
            (d[0].expected.as_deref(), d[0].found.as_deref()),
            (Some("2"), Some("1"))
        );
    }

    #[test]
    fn keys_of_no_generation_are_told_apart() {
        assert_eq!(trie_owner(16 + 24, 1), Some(1));
        assert_eq!(trie_owner(8, 0), Some(0));
        // Shorter than the generation byte: lookups of both match it.
        assert_eq!(trie_owner(7, 0), None);
        assert_eq!(trie_owner(0, 1), None);
        assert_eq!(trie_owner(40, 2), None);
        assert_eq!(
            trie_key_text(40, &[1, 0, 198, 51, 100, 0, 0, 0]),
            "generation 1 src 198.51.100.0/24"
        );
        assert_eq!(
            trie_key_text(4, &[1, 0, 198, 51, 100, 0, 0, 0]),
            "prefixlen 4 data 01 00 c6 33 64 00 00 00"
        );
    }

    #[test]
    fn a_fresh_generation_is_checked_against_zeroes() {
        let zero = fresh_image(1, Config::default());
        assert_eq!(
            drift(&fresh_image(1, fresh_config(&zero.config)), &zero),
            vec![]
        );
        let init = fresh_image(0, initial_config(true, false));
        assert_eq!(fresh_config(&init.config), init.config);
        let mut f = init.clone();
        f.ports[5] = 1;
        assert_eq!(drift(&init, &f).len(), 1);
    }

    #[test]
    fn the_map_full_message_names_the_map_its_size_and_the_need() {
        let f = full(
            MAP_IFACES,
            130,
            256,
            130,
            "; both generations must fit while the new set is written",
        );
        assert_eq!(f.code, EXIT_FAILED);
        assert_eq!(
            f.msg,
            "map xdpg_ifaces is full: 130 entries needed, max 256 (130 held by the active rule \
             set; both generations must fit while the new set is written); nothing changed"
        );
        // A million prefixes per generation fit beside a million.
        assert!(MAPS[MAP_V4].max_entries as usize >= 2_000_000);
        assert!(MAPS[MAP_V6].max_entries as usize >= 2_000_000);
    }

    /// With bpf(2) (root), against maps made as the module makes them:
    /// both generations written, then changed behind xdpguard's back
    /// (a port entry, a trie action byte, an extra key, a key of no
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
            save_record(&guard, &img, &set, &[]).expect("record");
        }
        eprintln!(
            "{n} prefixes: both generations written in {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        let e = guard
            .map(MAP_V4)
            .entries::<Lpm4Key, AddrEntry>()
            .expect("entries");
        let te = t.elapsed();
        let t = Instant::now();
        let k = guard.map(MAP_V4).keys::<Lpm4Key>().expect("keys");
        eprintln!(
            "xdpg_v4: {} entries read in {te:?}, {} keys walked in {:?}",
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
        let port = (PORTS_TCP_DST + PORT_TABLES) * 65536 + 5555;
        guard.map(MAP_PORTS).update(&port, &0u64).expect("port");
        let (k, mut v) = held.gens[1].v4[0];
        v.best.action = 0x7f;
        guard.map(MAP_V4).update(&k, &v).expect("trie");
        let mut extra = held.gens[0].v4[0].0;
        extra.data[2] = 10;
        guard
            .map(MAP_V4)
            .update(&extra, &AddrEntry::default())
            .expect("extra");
        let nowhere = Lpm4Key {
            prefixlen: 4,
            data: [0; 8],
        };
        guard
            .map(MAP_V4)
            .update(&nowhere, &AddrEntry::default())
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
        assert_eq!(c1.maps, vec!["xdpg_ports", "xdpg_v4"]);
        assert!(c1.drift.iter().any(|d| d.key.ends_with("tcp dport 5555)")
            && d.expected.as_deref() == Some("0x1")
            && d.found.as_deref() == Some("0x0")));
        assert_eq!(c0.drift.len(), 1, "{:?}", c0.drift);
        assert_eq!(c0.drift[0].expected, None);
        let f = foreign_drift(&held);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key, "prefixlen 4 data 00 00 00 00 00 00 00 00");

        // What a commit to generation 0 (1 active) does, but the switch.
        let t = Instant::now();
        let mut img = xdpguard_rules::compile(&set, 0, &|_| None).expect("compile");
        img.config.tag = 0x200;
        assert_eq!(delete_foreign(&guard, &held.foreign).expect("foreign"), 1);
        let written =
            write_generation(&guard, &img, &held.gens[0], &mut Quiet, false).expect("write");
        save_record(&guard, &img, &set, &[]).expect("record");
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
            check_capacity(&guard, &img, &held).expect("room");
            delete_foreign(&guard, &held.foreign).expect("foreign");
            write_generation(&guard, &img, &held.gens[1], &mut Quiet, false).expect("write");
            let w = t.elapsed();
            save_record(&guard, &img, &set, &[]).expect("record");
            assert_eq!(restore_idle(&guard, &held.gens[0]).expect("restore"), 0);
            eprintln!(
                "re-apply of {n} next to {n}: read+write {w:?}, with record and the idle \
                 generation's check {:?}",
                t.elapsed()
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn array_plans_cover_unread_arrays() {
        assert_eq!(array_plan(&[1u64, 2, 3], &[1, 5, 3]), vec![1]);
        assert_eq!(array_plan::<u64>(&[], &[0, 0]), vec![0, 1]);
    }
}

/// "N entries differ{tail}: " (nothing for none), the start of a drift message.
pub fn entries_differ(n: usize, tail: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!("1 entry differs{tail}: "),
        _ => format!("{n} entries differ{tail}: "),
    }
}
