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

use std::{
    fs,
    io::{self, BufReader, BufWriter, Write},
    os::fd::AsRawFd,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use rustc_hash::FxHashSet as HashSet;
use serde::{Deserialize, Serialize};
use xdpguard_abi::*;
use xdpguard_rules::{Action, Fragments, Image, Rule, RuleSet};

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

/// The compiler that wrote a record: the protocol and port arrays of a
/// generation are assumed from its record only if this CLI compiles them
/// (another version might assign rule bits differently).
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
    #[serde(default)]
    compiler: String,
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

/// The rule set without its address-only rules: what the array maps
/// (protocols, ports) are compiled from. Relative order is kept, so the
/// compound rules get the same bits.
fn core_of(rs: &RuleSet) -> RuleSet {
    RuleSet {
        rules: rs
            .rules
            .iter()
            .filter(|r| !r.is_address_only())
            .cloned()
            .collect(),
        ..rs.clone_settings()
    }
}

trait CloneSettings {
    fn clone_settings(&self) -> RuleSet;
}

impl CloneSettings for RuleSet {
    fn clone_settings(&self) -> RuleSet {
        RuleSet {
            default_deny: self.default_deny,
            monitor: self.monitor,
            malformed_deny: self.malformed_deny,
            fragments: self.fragments,
            limits: self.limits.clone(),
            global_limit: self.global_limit,
            syn_limit: self.syn_limit,
            interfaces: self.interfaces.clone(),
            samples: self.samples,
            rules: Vec::new(),
        }
    }
}

/// What the idle generation `g`'s protocol and port arrays hold, if its
/// record says so reliably (tag and map id match, and this compiler wrote
/// it): `(proto, ports)`. `None` makes the next write rewrite them whole.
fn idle_arrays(guard: &Guard, g: u32) -> Option<(Vec<u64>, Vec<u64>)> {
    let cfg: Config = guard.map(MAP_CONFIG).lookup(&g).ok()??;
    if cfg.tag == 0 {
        return None;
    }
    let core = read_record(guard, &core_path(g), g, cfg.tag).ok()?;
    if core.compiler != COMPILER {
        return None;
    }
    let img = xdpguard_rules::compile(&core.rules, g, &crate::ifindex).ok()?;
    Some((img.proto, img.ports))
}

fn core_path(generation: u32) -> PathBuf {
    state_dir().join(format!("gen{generation}.core.json"))
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
    /// Time spent writing the maps.
    pub write: Duration,
}

/// Compiles `rs` for the idle generation, checks it fits next to the
/// active one, writes it, records it and switches to it. Nothing packets
/// see changes unless every step before the switch succeeded. The caller
/// holds [`lock`].
pub fn commit(
    guard: &Guard,
    rs: &RuleSet,
    progress: &mut dyn Progress,
) -> Result<Committed, Failure> {
    let target = 1 - guard.active()?;
    let t0 = Instant::now();
    progress.phase("compiling", 0);
    let mut img = xdpguard_rules::compile(rs, target, &crate::ifindex).map_err(Failure::usage)?;
    let compile = t0.elapsed();
    let old_tag = guard
        .map(MAP_CONFIG)
        .lookup::<u32, Config>(&(1 - target))
        .ok()
        .flatten()
        .map_or(0, |c| c.tag);
    img.config.tag = new_tag(old_tag);
    let t1 = Instant::now();
    // Packets that read the generation before the last switch may still
    // be using `target`; they finish within microseconds (RCU).
    thread::sleep(Duration::from_millis(10));
    let prev = idle_arrays(guard, target);
    write_image(guard, &img, prev.as_ref(), progress)?;
    let write = t1.elapsed();
    if !guard.is_current() {
        // Written into the maps of a module that has gone meanwhile.
        return Err(Failure::new(
            EXIT_NOT_LOADED,
            "the xdpguard module was unloaded or reloaded while the rule set was being \
             written; nothing was applied to the module loaded now: run the command again",
        ));
    }
    save_record(guard, &img, rs)?;
    guard.activate(target)?;
    Ok(Committed {
        generation: target,
        v4: img.v4.len(),
        v6: img.v6.len(),
        macs: img.macs.len(),
        compile,
        write,
    })
}

fn new_tag(avoid: u32) -> u32 {
    loop {
        let t: u32 = rand::random();
        if t != 0 && t != avoid {
            return t;
        }
    }
}

fn save_record(guard: &Guard, img: &Image, rs: &RuleSet) -> Result<(), Failure> {
    save_one(guard, img, rs, &record_path(img.generation))?;
    save_one(guard, img, &core_of(rs), &core_path(img.generation))
}

fn save_one(
    guard: &Guard,
    img: &Image,
    rs: &RuleSet,
    path: &std::path::Path,
) -> Result<(), Failure> {
    let tmp = path.with_extension("json.tmp");
    let rec = RecordOut {
        format: RECORD_FORMAT,
        compiler: COMPILER,
        config_map: guard.map(MAP_CONFIG).id,
        generation: img.generation,
        tag: img.config.tag,
        rules: rs,
    };
    let write = || -> Result<(), String> {
        let file = fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, &rec).map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())?;
        drop(w);
        fs::rename(&tmp, path).map_err(|e| e.to_string())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Failure::failed(format!("{}: {e}", tmp.display()))
    })
}

/// "map xdpg_v4 is full: ..." for `map` (index in `MAPS`).
fn full(map: usize, needed: usize, active: usize, why: &str) -> Failure {
    Failure::failed(format!(
        "map {} is full: {needed} entries needed, max {} ({active} held by the active rule set{why}); \
         nothing changed",
        MAPS[map].name, MAPS[map].max_entries,
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

/// The entries of one keyed map that `mine` selects (one generation's),
/// and the count of the others.
#[allow(clippy::type_complexity)]
fn split_entries<K: bpf::Pod + Default, V: bpf::Pod + Default>(
    guard: &Guard,
    map: usize,
    mine: impl Fn(&K) -> bool,
) -> Result<(Vec<(K, V)>, usize), Failure> {
    let all: Vec<(K, V)> = guard.map(map).entries().map_err(map_err(map))?;
    let total = all.len();
    let mine: Vec<(K, V)> = all.into_iter().filter(|(k, _)| mine(k)).collect();
    let others = total - mine.len();
    Ok((mine, others))
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

/// What `commit` checks before writing anything, for `--dry-run`: `rs`
/// compiles for the idle generation and fits next to the active one.
pub fn check(guard: &Guard, rs: &RuleSet) -> Result<(), Failure> {
    let target = 1 - guard.active()?;
    let img = xdpguard_rules::compile(rs, target, &crate::ifindex).map_err(Failure::usage)?;
    check_capacity(guard, &img).map(|_| ())
}

/// Entries of `img`'s generation already in the keyed maps, for
/// `write_image` to replace: IPv4, IPv6, MAC and interface keys.
struct Mine {
    v4: Vec<(Lpm4Key, AddrEntry)>,
    v6: Vec<(Lpm6Key, AddrEntry)>,
    mac: Vec<(MacKey, u64)>,
    ifaces: Vec<(u32, u32)>,
}

/// Fails with "map ... is full" unless `img` fits in the keyed maps next
/// to the other generation's entries.
fn check_capacity(guard: &Guard, img: &Image) -> Result<Mine, Failure> {
    let g = img.generation;
    let (v4_mine, v4_other) =
        split_entries::<_, AddrEntry>(guard, MAP_V4, |k: &Lpm4Key| k.data[0] as u32 == g)?;
    let (v6_mine, v6_other) =
        split_entries::<_, AddrEntry>(guard, MAP_V6, |k: &Lpm6Key| k.data[0] as u32 == g)?;
    let (mac_mine, mac_other) =
        split_entries::<_, u64>(guard, MAP_MAC, |k: &MacKey| k.generation as u32 == g)?;
    let (if_mine, if_other) = split_entries::<_, u32>(guard, MAP_IFACES, |k: &u32| k >> 31 == g)?;
    for (map, need, other) in [
        (MAP_V4, img.v4.len(), v4_other),
        (MAP_V6, img.v6.len(), v6_other),
        (MAP_MAC, img.macs.len(), mac_other),
        (MAP_IFACES, img.ifaces.len(), if_other),
    ] {
        let max = MAPS[map].max_entries as usize;
        if need > max {
            return Err(full(map, need, other, ""));
        }
        if need + other > max {
            return Err(full(
                map,
                need,
                other,
                "; both generations must fit while the new set is written",
            ));
        }
    }
    Ok(Mine {
        v4: v4_mine,
        v6: v6_mine,
        mac: mac_mine,
        ifaces: if_mine,
    })
}

/// Writes `img` into its (idle) generation, after checking that every
/// keyed map has room for it next to the active generation.
/// `prev`, if known, is what the generation's protocol and port arrays
/// hold now: only entries that differ are written.
pub fn write_image(
    guard: &Guard,
    img: &Image,
    prev: Option<&(Vec<u64>, Vec<u64>)>,
    progress: &mut dyn Progress,
) -> Result<(), Failure> {
    let g = img.generation;
    progress.phase("checking capacity", 0);
    let mine = check_capacity(guard, img)?;
    progress.phase("writing tables", 0);
    guard
        .map(MAP_CONFIG)
        .update(&g, &img.config)
        .map_err(map_err(MAP_CONFIG))?;
    crate::write_array(guard.map(MAP_RULES), g * MAX_BIT_RULES, &img.rules, None)
        .map_err(map_err(MAP_RULES))?;
    crate::write_array(
        guard.map(MAP_PROTO),
        g * 256,
        &img.proto,
        prev.map(|p| &p.0[..]),
    )
    .map_err(map_err(MAP_PROTO))?;
    crate::write_array(
        guard.map(MAP_PORTS),
        g * PORT_TABLES * 65536,
        &img.ports,
        prev.map(|p| &p.1[..]),
    )
    .map_err(map_err(MAP_PORTS))?;
    crate::write_array(guard.map(MAP_LIMITS), g * MAX_LIMITS, &img.limits, None)
        .map_err(map_err(MAP_LIMITS))?;

    fn replace<K: bpf::Pod, V: bpf::Pod>(
        guard: &Guard,
        map: usize,
        have: Vec<(K, V)>,
        entries: &[(K, V)],
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let (old, new) = plan(&have, entries);
        drop(have);
        if !old.is_empty() {
            progress.phase(
                &format!("removing from {}", MAPS[map].name),
                old.len() as u64,
            );
            guard.map(map).delete_batch(&old).map_err(map_err(map))?;
            progress.set(old.len() as u64);
        }
        if new.is_empty() {
            return Ok(());
        }
        let keys: Vec<K> = new.iter().map(|(k, _)| *k).collect();
        let vals: Vec<V> = new.iter().map(|(_, v)| *v).collect();
        drop(new);
        progress.phase(&format!("writing {}", MAPS[map].name), keys.len() as u64);
        guard
            .map(map)
            .update_batch_progress(&keys, &vals, 1 << 14, &mut |d| progress.set(d as u64))
            .map_err(map_err(map))
    }
    replace(guard, MAP_V4, mine.v4, &img.v4, progress)?;
    replace(guard, MAP_V6, mine.v6, &img.v6, progress)?;
    replace(guard, MAP_MAC, mine.mac, &img.macs, progress)?;
    replace(guard, MAP_IFACES, mine.ifaces, &img.ifaces, progress)?;

    // This generation's per-rule counters start from zero.
    let ids: Vec<u32> = (0..RULES_PER_GENERATION)
        .map(|i| g * RULES_PER_GENERATION + i)
        .collect();
    guard
        .map(MAP_RULE_STATS)
        .zero_percpu(&ids, std::mem::size_of::<Counter>())
        .map_err(map_err(MAP_RULE_STATS))?;
    Ok(())
}

// ---------------------------------------------------------------------
// Describing rules and rule sets, and the difference between two sets.
// ---------------------------------------------------------------------

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Protocol name (or number).
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn ports_text((lo, hi): (u16, u16)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

/// Most addresses of a list shown in one line.
const LIST_SHOWN: usize = 4;

fn nets_text(v: &[ipnet::IpNet]) -> String {
    if v.len() <= LIST_SHOWN {
        v.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        format!(
            "[{} addresses: {}, ...]",
            v.len(),
            v[..LIST_SHOWN - 1]
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The action word of a rule (`limit NAME` for limit rules).
pub fn action_text(rs: &RuleSet, r: &Rule) -> String {
    match r.action() {
        Action::Allow => "allow".into(),
        Action::Deny => "deny".into(),
        Action::Limit(i) => format!(
            "limit {}",
            rs.limits.get(*i).map_or("?", |l| l.name.as_str())
        ),
    }
}

/// What a rule matches, in the words of `xdpguard add` (`any` if nothing).
pub fn match_text(r: &Rule) -> String {
    let mut w: Vec<String> = Vec::new();
    if !r.src.is_empty() {
        w.push(format!("src {}", nets_text(&r.src)));
    }
    if !r.dst.is_empty() {
        w.push(format!("dst {}", nets_text(&r.dst)));
    }
    if let Some(p) = r.proto {
        w.push(format!("proto {}", proto_name(p)));
    }
    if let Some(p) = r.sport {
        w.push(format!("sport {}", ports_text(p)));
    }
    if let Some(p) = r.dport {
        w.push(format!("dport {}", ports_text(p)));
    }
    if let Some(t) = r.icmp_type {
        w.push(format!("icmp-type {t}"));
    }
    if let Some(c) = r.icmp_code {
        w.push(format!("icmp-code {c}"));
    }
    if let Some(m) = &r.src_mac {
        w.push(format!("src-mac {}", mac_text(m)));
    }
    if let Some(m) = &r.dst_mac {
        w.push(format!("dst-mac {}", mac_text(m)));
    }
    if w.is_empty() {
        "any".into()
    } else {
        w.join(" ")
    }
}

/// One line for a rule: action, match, comment.
pub fn rule_text(rs: &RuleSet, r: &Rule) -> String {
    let mut s = format!("{} {}", action_text(rs, r), match_text(r));
    if let Some(c) = &r.comment {
        s.push_str(&format!("  # {c}"));
    }
    s
}

fn pol(deny: bool) -> &'static str {
    if deny {
        "deny"
    } else {
        "allow"
    }
}

/// The settings of a rule set that are not rules, as `(name, value)`
/// pairs in the words of `xdpguard set`.
pub fn settings(rs: &RuleSet) -> Vec<(String, String)> {
    let mut v = vec![
        ("default".to_string(), pol(rs.default_deny).to_string()),
        (
            "monitor".into(),
            if rs.monitor { "on" } else { "off" }.into(),
        ),
        ("malformed".into(), pol(rs.malformed_deny).into()),
        (
            "fragments".into(),
            match rs.fragments {
                Fragments::L3Only => "l3",
                Fragments::Drop => "drop",
                Fragments::Pass => "pass",
            }
            .into(),
        ),
        ("samples".into(), rs.samples.to_string()),
        (
            "syn-limit".into(),
            rs.syn_limit
                .and_then(|i| rs.limits.get(i))
                .map_or("none".into(), |l| l.name.clone()),
        ),
        (
            "global-limit".into(),
            rs.global_limit
                .and_then(|i| rs.limits.get(i))
                .map_or("none".into(), |l| l.name.clone()),
        ),
    ];
    for (name, deny) in &rs.interfaces {
        v.push((format!("interface {name}"), pol(*deny).into()));
    }
    v
}

/// One line for a limiter, in the words of `xdpguard limiter add`.
pub fn limit_text(l: &xdpguard_rules::Limit) -> String {
    let mut s = l.name.clone();
    if l.pps > 0 {
        s.push_str(&format!(" --pps {} --burst {}", l.pps, l.burst));
    }
    if l.bps > 0 {
        s.push_str(&format!(" --bps {} --burst-bytes {}", l.bps, l.burst_bytes));
    }
    s.push_str(&format!(" --prefix4 {} --prefix6 {}", l.prefix4, l.prefix6));
    s
}

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
    fn plan_writes_only_what_differs() {
        let have = [(1u32, 10u32), (2, 20), (3, 30)];
        let want = [(2u32, 20u32), (3, 31), (4, 40)];
        let (del, put) = plan(&have, &want);
        assert_eq!(del, vec![1]);
        assert_eq!(put, vec![(3, 31), (4, 40)]);
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

    #[test]
    fn texts_read_like_the_add_command() {
        let s = rs(BASE);
        assert_eq!(rule_text(&s, &s.rules[0]), "allow proto tcp dport 22");
        assert_eq!(rule_text(&s, &s.rules[1]), "deny src 10.0.0.0/8");
        let long: Vec<String> = (1..=10).map(|i| format!("\"192.0.2.{i}\"")).collect();
        let s = rs(&format!(
            "[[rule]]\naction = \"deny\"\nsrc = [{}]\n",
            long.join(",")
        ));
        assert_eq!(
            match_text(&s.rules[0]),
            "src [10 addresses: 192.0.2.1/32, 192.0.2.2/32, 192.0.2.3/32, ...]"
        );
    }
}
