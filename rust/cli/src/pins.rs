// SPDX-License-Identifier: GPL-2.0

//! Map pins under `/sys/fs/bpf/xdpguard/<map name>`: reading them, telling
//! current pins from stale ones, pinning and unpinning.
//!
//! The module cannot pin its own maps (FEASIBILITY.md §5), so `xdpguard
//! pin` does it by id. Pins hold references: after `rmmod` (or a reload,
//! which makes new maps) the pinned maps live on with their old ids. A pin
//! is *stale* when the module is not loaded or its map of that name has
//! another id.

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
};

use crate::bpf::{path_c, Map};

/// Where the maps are pinned.
pub const PIN_DIR: &str = "/sys/fs/bpf/xdpguard";
/// `BPF_FS_MAGIC` (statfs f_type of a BPF file system).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// One pin file's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Pins the module's map of that name.
    Current,
    /// Pins a map the module no longer has (unloaded, reloaded), or a file
    /// that is not a readable BPF map.
    Stale,
    /// The module's map is not pinned.
    Missing,
}

impl State {
    /// Name in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Current => "current",
            State::Stale => "stale",
            State::Missing => "missing",
        }
    }
}

/// One map's pin as `status` and `pin` see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// Map name (the file name under `PIN_DIR`).
    pub name: String,
    /// Id of the pinned map; `None` when nothing is pinned or the pin
    /// cannot be read as a map.
    pub pinned_id: Option<u32>,
    /// Id of the module's map of that name, if the module is loaded and
    /// has one.
    pub module_id: Option<u32>,
    /// The verdict.
    pub state: State,
}

/// Compares the pins (`name`, pinned map id if readable) with the module's
/// maps (`None`: module not loaded). One entry per name in either list,
/// module maps first in their order.
pub fn classify(module: Option<&[(String, u32)]>, pinned: &[(String, Option<u32>)]) -> Vec<Pin> {
    let pins: HashMap<&str, Option<u32>> = pinned.iter().map(|(n, i)| (n.as_str(), *i)).collect();
    let mut out = Vec::new();
    let mods = module.unwrap_or(&[]);
    for (name, id) in mods {
        let (pinned_id, state) = match pins.get(name.as_str()) {
            None => (None, State::Missing),
            Some(Some(p)) if p == id => (Some(*p), State::Current),
            Some(p) => (*p, State::Stale),
        };
        out.push(Pin {
            name: name.clone(),
            pinned_id,
            module_id: Some(*id),
            state,
        });
    }
    let mut extra: Vec<&(String, Option<u32>)> = pinned
        .iter()
        .filter(|(n, _)| !mods.iter().any(|(m, _)| m == n))
        .collect();
    extra.sort();
    for (name, id) in extra {
        out.push(Pin {
            name: name.clone(),
            pinned_id: *id,
            module_id: None,
            state: State::Stale,
        });
    }
    out
}

/// One word for all pins: `absent` (nothing pinned), `current` (every
/// module map pinned, nothing stale), `stale` (some pin is stale) or
/// `partial` (nothing stale, some map not pinned).
pub fn summary(pins: &[Pin]) -> &'static str {
    if pins.iter().any(|p| p.state == State::Stale) {
        "stale"
    } else if pins.iter().all(|p| p.state == State::Missing) {
        "absent"
    } else if pins.iter().any(|p| p.state == State::Missing) {
        "partial"
    } else {
        "current"
    }
}

/// The pin files in `dir` with the id of the map each pins (`None` if it
/// cannot be opened as a map). An absent directory has none.
pub fn read_pins(dir: &Path) -> io::Result<Vec<(String, Option<u32>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let id = match Map::from_pin(&e.path()) {
            Ok(m) => Some(m.id),
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => return Err(err),
            Err(_) => None,
        };
        out.push((name, id));
    }
    out.sort();
    Ok(out)
}

/// The module's maps from its sysfs directory, `None` if not loaded (read
/// by [`crate::sysfs`], the one reader of the file).

/// The pins compared with the loaded module (`module`: its maps, or
/// `None` if it is not loaded).
pub fn inspect(dir: &Path, module: Option<&[(String, u32)]>) -> io::Result<Vec<Pin>> {
    Ok(classify(module, &read_pins(dir)?))
}

/// Makes sure `/sys/fs/bpf` (the parent of `dir`) is a BPF file system,
/// mounting one there if nothing is mounted.
pub fn ensure_bpffs(dir: &Path) -> io::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("/sys/fs/bpf"));
    if fs_magic(parent)? == BPF_FS_MAGIC {
        return Ok(());
    }
    let src = c"bpf";
    let target = path_c(parent)?;
    // SAFETY: all three strings are NUL-terminated and live for the call;
    // no mount data is passed.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn fs_magic(p: &Path) -> io::Result<i64> {
    let c = path_c(p)?;
    // SAFETY: `statfs` is plain data, valid zeroed.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64)
}

/// What `pin` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PinOutcome {
    /// Maps pinned anew.
    pub pinned: Vec<String>,
    /// Stale pins replaced by the current map.
    pub replaced: Vec<String>,
    /// Stale pins of names the module no longer has, removed.
    pub removed: Vec<String>,
    /// Pins that were already current.
    pub kept: Vec<String>,
}

/// Pins every map of `maps` (name → opened map) under `dir`, replacing
/// stale pins and removing pins of names the module has not; pins that are
/// already current are left alone (idempotent).
pub fn pin_all(dir: &Path, maps: &[(String, &Map)]) -> io::Result<PinOutcome> {
    ensure_bpffs(dir)?;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let module: Vec<(String, u32)> = maps.iter().map(|(n, m)| (n.clone(), m.id)).collect();
    let mut out = PinOutcome::default();
    for p in inspect(dir, Some(&module))? {
        let path: PathBuf = dir.join(&p.name);
        match (p.state, p.module_id) {
            (State::Current, _) => out.kept.push(p.name),
            (State::Missing, _) => {
                pin_one(maps, &p.name, &path)?;
                out.pinned.push(p.name);
            }
            (State::Stale, Some(_)) => {
                std::fs::remove_file(&path)?;
                pin_one(maps, &p.name, &path)?;
                out.replaced.push(p.name);
            }
            (State::Stale, None) => {
                std::fs::remove_file(&path)?;
                out.removed.push(p.name);
            }
        }
    }
    Ok(out)
}

fn pin_one(maps: &[(String, &Map)], name: &str, path: &Path) -> io::Result<()> {
    match maps.iter().find(|(n, _)| n == name) {
        Some((_, m)) => m.pin(path),
        None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

/// Removes `dir` and every pin in it; returns how many pins there were
/// (0 when there was no directory).
pub fn unpin_all(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for e in entries {
        std::fs::remove_file(e?.path())?;
        n += 1;
    }
    std::fs::remove_dir(dir)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sysfs::parse_maps;

    fn module() -> Vec<(String, u32)> {
        parse_maps("xdpg_active 10\nxdpg_stats 11\n\nbroken\n")
    }

    #[test]
    fn nothing_pinned_is_absent() {
        let pins = classify(Some(&module()), &[]);
        assert_eq!(pins.len(), 2);
        assert!(pins.iter().all(|p| p.state == State::Missing));
        assert_eq!(summary(&pins), "absent");
        assert_eq!(summary(&classify(None, &[])), "absent");
    }

    #[test]
    fn same_ids_are_current_and_some_missing_is_partial() {
        let all = [
            ("xdpg_active".to_string(), Some(10)),
            ("xdpg_stats".to_string(), Some(11)),
        ];
        assert_eq!(summary(&classify(Some(&module()), &all)), "current");
        let pins = classify(Some(&module()), &all[..1]);
        assert_eq!(pins[1].state, State::Missing);
        assert_eq!(summary(&pins), "partial");
    }

    #[test]
    fn reloaded_module_makes_pins_stale() {
        // A reload made new maps: ids 20, 21; the pins hold 10, 11.
        let reloaded = parse_maps("xdpg_active 20\nxdpg_stats 21\n");
        let pinned = [
            ("xdpg_active".to_string(), Some(10)),
            ("xdpg_stats".to_string(), Some(21)),
        ];
        let pins = classify(Some(&reloaded), &pinned);
        assert_eq!(pins[0].state, State::Stale);
        assert_eq!(pins[0].pinned_id, Some(10));
        assert_eq!(pins[0].module_id, Some(20));
        assert_eq!(pins[1].state, State::Current);
        assert_eq!(summary(&pins), "stale");
    }

    #[test]
    fn unloaded_module_makes_every_pin_stale() {
        let pinned = [
            ("xdpg_stats".to_string(), Some(11)),
            ("xdpg_active".to_string(), Some(10)),
        ];
        let pins = classify(None, &pinned);
        assert_eq!(pins.len(), 2);
        assert!(pins
            .iter()
            .all(|p| p.state == State::Stale && p.module_id.is_none()));
        assert_eq!(pins[0].name, "xdpg_active");
        assert_eq!(summary(&pins), "stale");
    }

    #[test]
    fn unreadable_or_unknown_pins_are_stale() {
        let pinned = [
            ("xdpg_active".to_string(), None),
            ("xdpg_old_map".to_string(), Some(3)),
            ("xdpg_stats".to_string(), Some(11)),
        ];
        let pins = classify(Some(&module()), &pinned);
        assert_eq!(pins[0].state, State::Stale);
        assert_eq!(pins[2].name, "xdpg_old_map");
        assert_eq!(pins[2].state, State::Stale);
        assert_eq!(summary(&pins), "stale");
    }
}
