// SPDX-License-Identifier: GPL-2.0

//! The records of the rule sets applied (`genN.json`, `genN.sums.json`
//! under the state directory), their tags, the active rule set read back
//! from them, and the locks of the state directory.

use std::{
    fs,
    io::{self, BufReader, BufWriter, Write},
    os::fd::AsRawFd,
    path::PathBuf,
};

use serde::{Deserialize, Serialize};
use xdpguard_abi::*;
use xdpguard_rules::{Image, RuleSet};

use super::held::{digest, Digest};
use super::{Failure, EXIT_FAILED, EXIT_USAGE};
use crate::Guard;

/// Directory of the rule-set records.
pub fn state_dir() -> PathBuf {
    std::env::var_os("XDPGUARD_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/xdpguard"))
}

/// Version of the record format.
pub(super) const RECORD_FORMAT: u32 = 1;

/// The compiler that wrote a record and its digest: a generation whose
/// digest differs is itemised by compiling its record again, which gives
/// the entries it was written with only if this CLI wrote it (another
/// version might assign rule bits differently).
pub(super) const COMPILER: &str = concat!("xdpguard ", env!("CARGO_PKG_VERSION"));

/// A record's fields but the rules, which [`save_record`] gets as JSON
/// already (see [`rules_json`]).
#[derive(Serialize)]
struct RecordHead<'a> {
    format: u32,
    compiler: &'a str,
    config_map: u32,
    generation: u32,
    tag: u32,
}

/// A rule set as the JSON of its record. [`commit`](super::commit) makes
/// it on a second thread while it compiles and writes the maps: for a
/// million-entry list it takes as long as the write.
pub struct RulesJson(Vec<u8>);

/// `rs` as the rules of a record.
pub fn rules_json(rs: &RuleSet) -> Result<RulesJson, Failure> {
    serde_json::to_vec(rs)
        .map(RulesJson)
        .map_err(|e| Failure::failed(format!("the rule set as JSON: {e}")))
}

#[derive(Deserialize)]
pub(super) struct Record {
    pub(super) format: u32,
    /// Id of the module's `xdpg_config` (ids are not reused within a boot).
    pub(super) config_map: u32,
    pub(super) generation: u32,
    pub(super) tag: u32,
    pub(super) rules: RuleSet,
}

pub(super) fn record_path(generation: u32) -> PathBuf {
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
        .map(MapId::Config)
        .lookup(&g)
        .map_err(|e| Failure::failed(format!("xdpg_config: {e}")))?
        .unwrap_or_default();
    if cfg.tag == 0 {
        let ifaces: Vec<u32> = guard
            .map(MapId::Ifaces)
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
        if let (Some(rules), false) = (fresh, ifaces.iter().any(|&k| iface_key_parts(k).1 == g)) {
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
pub(super) fn read_record(
    guard: &Guard,
    path: &std::path::Path,
    g: u32,
    tag: u32,
) -> Result<Record, String> {
    // Read whole and parsed from memory: `from_reader` takes twice as long.
    let text = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rec: Record =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    drop(text);
    if rec.format != RECORD_FORMAT
        || rec.tag != tag
        || rec.generation != g
        || rec.config_map != guard.map(MapId::Config).id
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

pub(super) fn new_tag(avoid: &[u32]) -> u32 {
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
pub(super) struct Sums {
    pub(super) format: u32,
    /// The compiler that made the image the digest is of.
    pub(super) compiler: String,
    pub(super) config_map: u32,
    pub(super) generation: u32,
    pub(super) tag: u32,
    pub(super) digest: Digest,
    /// Interface names and the ifindex each had when compiled.
    #[serde(default)]
    pub(super) ifindexes: Vec<(String, u32)>,
    /// IPv4 and IPv6 prefixes the address tables hold (they do not
    /// say it themselves).
    #[serde(default)]
    pub(super) prefixes: [usize; 2],
}

pub(super) fn sums_path(generation: u32) -> PathBuf {
    state_dir().join(format!("gen{generation}.sums.json"))
}

/// The digest recorded for generation `g` with `tag` of this module.
pub(super) fn read_sums(guard: &Guard, g: u32, tag: u32) -> Result<Sums, String> {
    let path = sums_path(g);
    let file = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: Sums = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if s.format != RECORD_FORMAT
        || s.tag != tag
        || s.generation != g
        || s.config_map != guard.map(MapId::Config).id
    {
        return Err(format!("{} describes another rule set", path.display()));
    }
    Ok(s)
}

/// The IPv4 and IPv6 prefixes generation `g` (with config tag `tag`)
/// was written with, by its record; `None` without a valid record.
pub fn recorded_prefixes(guard: &Guard, g: u32, tag: u32) -> Option<[usize; 2]> {
    read_sums(guard, g, tag).ok().map(|s| s.prefixes)
}

pub(super) fn save_sums(
    guard: &Guard,
    img: &Image,
    ifindexes: &[(String, u32)],
) -> Result<(), Failure> {
    let s = Sums {
        format: RECORD_FORMAT,
        compiler: COMPILER.to_string(),
        config_map: guard.map(MapId::Config).id,
        generation: img.generation,
        tag: img.config.tag,
        digest: digest(img),
        ifindexes: ifindexes.to_vec(),
        prefixes: img.prefixes,
    };
    save_json(&s, &sums_path(img.generation))
}

pub(super) fn save_record(
    guard: &Guard,
    img: &Image,
    rules: &RulesJson,
    ifindexes: &[(String, u32)],
) -> Result<(), Failure> {
    let head = RecordHead {
        format: RECORD_FORMAT,
        compiler: COMPILER,
        config_map: guard.map(MapId::Config).id,
        generation: img.generation,
        tag: img.config.tag,
    };
    let head = serde_json::to_vec(&head).map_err(|e| Failure::failed(e.to_string()))?;
    // The digest first: a record without it is still checked (by compiling
    // it), a digest without its record is never used.
    save_sums(guard, img, ifindexes)?;
    // `{"format":...,"tag":N` + `,"rules":` + the rules + `}`.
    save_with(&record_path(img.generation), |w| {
        w.write_all(&head[..head.len() - 1])?;
        w.write_all(b",\"rules\":")?;
        w.write_all(&rules.0)?;
        w.write_all(b"}")
    })?;
    // Records of the protocol and port arrays, written by versions that
    // did not read the arrays back.
    let _ = fs::remove_file(state_dir().join(format!("gen{}.core.json", img.generation)));
    Ok(())
}

/// Writes `value` as JSON to `path` atomically (a temporary file renamed).
pub(super) fn save_json<T: Serialize>(value: &T, path: &std::path::Path) -> Result<(), Failure> {
    save_with(path, |w| serde_json::to_writer(w, value).map_err(io::Error::from))
}

/// Writes the file `path` by `body` atomically (a temporary file renamed).
fn save_with(
    path: &std::path::Path,
    body: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> Result<(), Failure> {
    let tmp = path.with_extension("json.tmp");
    let write = || -> Result<(), String> {
        let file = fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut w = BufWriter::new(file);
        body(&mut w).map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())?;
        drop(w);
        fs::rename(&tmp, path).map_err(|e| e.to_string())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Failure::failed(format!("{}: {e}", tmp.display()))
    })
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
        if e.code() == EXIT_USAGE {
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
