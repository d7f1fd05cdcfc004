// SPDX-License-Identifier: GPL-2.0

//! Exit codes, privilege and module checks shared by the commands.
//!
//! Exit codes (Documentation/cli.rst): 0 success, 1 operation failed,
//! 2 bad usage or input, 3 module not loaded, 4 insufficient privilege.

use std::path::Path;

use crate::sysfs;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The operation failed (kernel or map error).
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or invalid input; nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// The xdpguard module is not loaded.
pub const EXIT_NOT_LOADED: u8 = 3;
/// Not root, or CAP_SYS_ADMIN / CAP_NET_ADMIN missing.
pub const EXIT_PRIVILEGE: u8 = 4;

/// What the operator reads when the module is not loaded.
pub const NOT_LOADED: &str = "xdpguard module is not loaded; load it with: \
     modprobe xdpguard ifaces=... (or insmod xdpguard.ko ...)";

/// `CAP_NET_ADMIN` (capability bit).
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN` (capability bit).
pub const CAP_SYS_ADMIN: u32 = 21;

/// A command's failure: the sentence printed after `xdpguard: `. The
/// variant, and nothing else, decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not a failure: ends a loop early (a reader that went away), exit 0
    /// and nothing printed.
    Done,
    /// Exit 1: the operation failed.
    Failed(String),
    /// Exit 2: bad input; nothing was changed.
    Usage(String),
    /// Exit 3: the module is not loaded (or was reloaded).
    NotLoaded(String),
    /// Exit 4: not root, or a capability missing.
    Privilege(String),
}

impl Failure {
    /// A failure with exit code `code` (`EXIT_*`).
    pub fn new(code: u8, msg: impl Into<String>) -> Failure {
        let msg = msg.into();
        match code {
            EXIT_OK => Failure::Done,
            EXIT_USAGE => Failure::Usage(msg),
            EXIT_NOT_LOADED => Failure::NotLoaded(msg),
            EXIT_PRIVILEGE => Failure::Privilege(msg),
            _ => Failure::Failed(msg),
        }
    }

    /// Exit 1: the operation failed.
    pub fn failed(msg: impl Into<String>) -> Failure {
        Failure::Failed(msg.into())
    }

    /// Exit 2: bad input; nothing was changed.
    pub fn usage(msg: impl Into<String>) -> Failure {
        Failure::Usage(msg.into())
    }

    /// The module is not loaded (exit 3).
    pub fn not_loaded() -> Failure {
        Failure::NotLoaded(NOT_LOADED.into())
    }

    /// The module was reloaded under the command (exit 3).
    pub fn reloaded() -> Failure {
        Failure::NotLoaded(RELOADED.into())
    }

    /// An I/O error of `what`: EPERM says to run as root and EACCES is a
    /// privilege failure too (exit 4); any other error exit 1.
    pub fn io(what: &str, e: std::io::Error) -> Failure {
        match e.raw_os_error() {
            Some(libc::EPERM) => Failure::Privilege(format!(
                "{what}: permission denied; run as root (CAP_SYS_ADMIN and CAP_NET_ADMIN are needed)"
            )),
            Some(libc::EACCES) => Failure::Privilege(format!("{what}: {e}")),
            _ => Failure::Failed(format!("{what}: {e}")),
        }
    }

    /// The exit code (`EXIT_*`).
    pub fn code(&self) -> u8 {
        match self {
            Failure::Done => EXIT_OK,
            Failure::Failed(_) => EXIT_FAILED,
            Failure::Usage(_) => EXIT_USAGE,
            Failure::NotLoaded(_) => EXIT_NOT_LOADED,
            Failure::Privilege(_) => EXIT_PRIVILEGE,
        }
    }

    /// The sentence for the operator (empty for [`Failure::Done`]).
    pub fn msg(&self) -> &str {
        match self {
            Failure::Done => "",
            Failure::Failed(m)
            | Failure::Usage(m)
            | Failure::NotLoaded(m)
            | Failure::Privilege(m) => m,
        }
    }

    /// The same failure (same exit code) with its message prefixed by `what: `.
    pub fn context(self, what: &str) -> Failure {
        match self {
            Failure::Done => Failure::Done,
            f => Failure::new(f.code(), format!("{what}: {}", f.msg())),
        }
    }
}

impl From<String> for Failure {
    fn from(msg: String) -> Failure {
        Failure::Failed(msg)
    }
}

impl From<&str> for Failure {
    fn from(msg: &str) -> Failure {
        Failure::Failed(msg.into())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.msg())
    }
}

impl std::error::Error for Failure {}

/// The `CapEff:` mask of a `/proc/PID/status` text.
pub fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The capabilities of `needed` missing from the mask `eff`, by name.
pub fn missing_caps(eff: u64, needed: &[u32]) -> Vec<&'static str> {
    needed
        .iter()
        .filter(|&&c| eff & (1u64 << c) == 0)
        .map(|&c| match c {
            CAP_NET_ADMIN => "CAP_NET_ADMIN",
            CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
            _ => "?",
        })
        .collect()
}

/// The privilege failure for the `missing` capabilities, one line.
pub fn privilege_failure(missing: &[&str]) -> Failure {
    Failure::Privilege(format!(
        "insufficient privilege: needs CAP_SYS_ADMIN and CAP_NET_ADMIN \
         (missing {}); run as root",
        missing.join(", ")
    ))
}

/// Checks that this process has CAP_SYS_ADMIN and CAP_NET_ADMIN (exit 4
/// otherwise).
pub fn require_privilege() -> Result<(), Failure> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Failure::failed(format!("/proc/self/status: {e}")))?;
    let eff = cap_eff(&status).unwrap_or(0);
    let missing = missing_caps(eff, &[CAP_SYS_ADMIN, CAP_NET_ADMIN]);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(privilege_failure(&missing))
    }
}

/// Whether the module is loaded and has finished initialising (its
/// `initstate` is `live` and its `bpf/` directory exists).
pub fn module_live() -> bool {
    sysfs::attr("initstate").as_deref() == Some("live") && sysfs::loaded()
}

/// Whether the module a command opened is still the one loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Loaded and live, with the program and maps the command holds.
    Current,
    /// Unloaded, or being unloaded (`initstate` is not `live`).
    Unloaded,
    /// Another instance is loaded now: its program or a map has another id.
    Reloaded,
}

/// What the module publishes now: program id and maps by name and id, or
/// `None` when it is not loaded (or not live).
pub type Published = Option<(u32, Vec<(String, u32)>)>;

/// Compares what a command opened (`prog_id`, `maps` by name and id) with
/// what the module publishes `now`.
pub fn compare_opened(prog_id: u32, maps: &[(String, u32)], now: &Published) -> Opened {
    let Some((now_prog, now_maps)) = now else {
        return Opened::Unloaded;
    };
    let same_maps = maps
        .iter()
        .all(|(name, id)| now_maps.iter().any(|(n, i)| n == name && i == id));
    if *now_prog == prog_id && same_maps {
        Opened::Current
    } else {
        Opened::Reloaded
    }
}

/// What `/sys/module/xdpguard` publishes now (`None`: not loaded, or not
/// live: still loading or being unloaded).
pub fn published() -> Published {
    // First too: a module being removed says so in `initstate` at once,
    // while a read of its own attributes may wait until the removal ends.
    if !module_live() {
        return None;
    }
    let prog = sysfs::prog_id()?;
    let maps = sysfs::module_maps()?;
    // Read last: `live` after the ids means they were the live module's.
    module_live().then_some((prog, maps))
}

/// Whether the module `guard` was opened on is still the one loaded: it is
/// live, and its program id and the ids of all of `guard`'s maps are
/// those in sysfs now. Reads three sysfs files; cheap enough to call every
/// few hundred milliseconds. A command that holds map fds keeps the maps
/// alive after `rmmod` (a ring buffer then just stays empty), so it
/// must ask this to notice.
pub fn opened_state(guard: &crate::Guard) -> Opened {
    let maps: Vec<(String, u32)> = guard
        .maps_by_name()
        .into_iter()
        .map(|(n, m)| (n, m.id))
        .collect();
    compare_opened(guard.prog_id, &maps, &published())
}

/// Whether a module is loading (`initstate` is `coming`).
pub fn module_coming() -> bool {
    sysfs::attr("initstate").as_deref() == Some("coming")
}

/// `Ok` while the module `guard` was opened on is loaded ([`opened_state`]);
/// exit 3 otherwise: the not-loaded message after `rmmod`, a reload
/// message after a reload (or while another module is loading).
pub fn still_opened(guard: &crate::Guard) -> Result<(), Failure> {
    match opened_state(guard) {
        Opened::Current => Ok(()),
        Opened::Unloaded if !module_coming() => Err(Failure::not_loaded()),
        Opened::Unloaded | Opened::Reloaded => Err(Failure::reloaded()),
    }
}

/// What the operator reads when the module was reloaded under a command.
pub const RELOADED: &str = "the xdpguard module was reloaded: its program and maps are \
     not the ones this command opened; run the command again";

/// Checks the module is loaded (exit 3), then privilege (exit 4).
pub fn require_module() -> Result<(), Failure> {
    if !sysfs::loaded() {
        return Err(Failure::not_loaded());
    }
    require_privilege()
}

/// Opens the loaded module's objects after the module and privilege checks.
pub fn open_guard() -> Result<crate::Guard, Failure> {
    require_module()?;
    crate::Guard::open().map_err(|e| {
        if !Path::new(crate::SYSFS).exists() {
            // Unloaded between the check and the open.
            Failure::not_loaded()
        } else {
            e
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capeff_parses_and_names_missing_capabilities() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let eff = cap_eff(root).unwrap();
        assert!(missing_caps(eff, &[CAP_SYS_ADMIN, CAP_NET_ADMIN]).is_empty());
        let nobody = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing_caps(cap_eff(nobody).unwrap(), &[CAP_SYS_ADMIN, CAP_NET_ADMIN]),
            ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
        );
        // CAP_NET_ADMIN alone.
        let net = format!("CapEff:\t{:016x}\n", 1u64 << CAP_NET_ADMIN);
        assert_eq!(
            missing_caps(cap_eff(&net).unwrap(), &[CAP_SYS_ADMIN, CAP_NET_ADMIN]),
            ["CAP_SYS_ADMIN"]
        );
        let f = privilege_failure(&["CAP_SYS_ADMIN"]);
        assert_eq!(f.code(), EXIT_PRIVILEGE);
        assert!(f.msg().contains("CAP_SYS_ADMIN") && f.msg().contains("CAP_NET_ADMIN"));
        assert!(!f.msg().contains('\n'));
    }

    #[test]
    fn a_reload_or_rmmod_is_noticed_by_ids() {
        let maps = vec![
            ("xdpg_samples".to_string(), 7),
            ("xdpg_stats".to_string(), 8),
        ];
        let now = |prog: u32, ids: [u32; 2]| -> Published {
            Some((
                prog,
                vec![
                    ("xdpg_stats".to_string(), ids[1]),
                    ("xdpg_samples".to_string(), ids[0]),
                    ("xdpg_new".to_string(), 99),
                ],
            ))
        };
        assert_eq!(compare_opened(3, &maps, &now(3, [7, 8])), Opened::Current);
        assert_eq!(compare_opened(3, &maps, &None), Opened::Unloaded);
        assert_eq!(compare_opened(3, &maps, &now(4, [7, 8])), Opened::Reloaded);
        // Same program id but another ring buffer: not what was opened.
        assert_eq!(compare_opened(3, &maps, &now(3, [9, 8])), Opened::Reloaded);
        // A map the command holds that the module no longer lists.
        let fewer: Published = Some((3, vec![("xdpg_samples".to_string(), 7)]));
        assert_eq!(compare_opened(3, &maps, &fewer), Opened::Reloaded);
    }

    #[test]
    fn eperm_errors_are_privilege_failures() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let f = Failure::io("map x", eperm);
        assert_eq!(f.code(), EXIT_PRIVILEGE);
        assert_eq!(
            f.msg(),
            "map x: permission denied; run as root (CAP_SYS_ADMIN and CAP_NET_ADMIN are needed)"
        );
        let eacces = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(Failure::io("map x", eacces).code(), EXIT_PRIVILEGE);
        let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(Failure::io("map x", enoent).code(), EXIT_FAILED);
        assert_eq!(Failure::from("boom").code(), EXIT_FAILED);
        assert_eq!(Failure::new(EXIT_USAGE, "x"), Failure::usage("x"));
    }
}
