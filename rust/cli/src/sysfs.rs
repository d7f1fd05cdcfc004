// SPDX-License-Identifier: GPL-2.0

//! What the module publishes in sysfs, as the CLI reads it: the program
//! id (`bpf/prog_id`), the map ids (`bpf/maps`), the attachments
//! (`bpf/links`), its state and parameters.
//!
//! The one reader of each file. Lines are parsed by `xdpguard_abi::sysfs`,
//! which also formats them for the module, so a line changes in one place.

use std::{io, path::Path};

use xdpguard_abi::sysfs::{self as proto, DIR, LINKS, MAPS, MODULE_DIR, PROG_ID};

/// One attached interface (a line of `/sys/module/xdpguard/bpf/links`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface name at attach time.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// XDP mode obtained: `native` or `generic`.
    pub mode: String,
    /// BPF link id.
    pub link_id: u32,
}

/// Parses the `maps` file ("NAME ID" lines, in `MapId` order); lines that
/// do not fit are skipped.
pub fn parse_maps(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter_map(proto::parse_map)
        .map(|(name, id)| (name.to_string(), id))
        .collect()
}

/// Parses the `links` file ("IFNAME IFINDEX MODE LINK_ID" lines); lines
/// that do not fit are skipped.
pub fn parse_links(text: &str) -> Vec<Link> {
    text.lines()
        .filter_map(proto::parse_link)
        .map(|l| Link {
            ifname: l.ifname.to_string(),
            ifindex: l.ifindex,
            mode: l.mode.to_string(),
            link_id: l.link_id,
        })
        .collect()
}

/// The program id in `dir` (the module's `bpf/` directory, or a test's
/// copy): `Ok(None)` when the file holds no number.
pub fn read_prog_id(dir: &Path) -> io::Result<Option<u32>> {
    Ok(proto::parse_prog_id(&std::fs::read_to_string(
        dir.join(PROG_ID),
    )?))
}

/// The maps listed in `dir` (the module's `bpf/` directory, or a test's
/// copy), by name and id.
pub fn read_maps(dir: &Path) -> io::Result<Vec<(String, u32)>> {
    Ok(parse_maps(&std::fs::read_to_string(dir.join(MAPS))?))
}

/// Whether the module publishes its program (its `bpf/prog_id` exists).
pub fn loaded() -> bool {
    Path::new(DIR).join(PROG_ID).exists()
}

/// The loaded module's program id, `None` if not loaded.
pub fn prog_id() -> Option<u32> {
    read_prog_id(Path::new(DIR)).ok().flatten()
}

/// The loaded module's maps by name and id, `None` if not loaded.
pub fn module_maps() -> Option<Vec<(String, u32)>> {
    read_maps(Path::new(DIR)).ok()
}

/// The module's attachments now (none if it is not loaded).
pub fn links() -> Vec<Link> {
    std::fs::read_to_string(Path::new(DIR).join(LINKS))
        .map(|t| parse_links(&t))
        .unwrap_or_default()
}

/// The module's parameters readable in sysfs, by name (sorted).
pub fn parameters() -> Vec<(String, String)> {
    let dir = Path::new(MODULE_DIR).join("parameters");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = std::fs::read_to_string(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                v.trim_end().to_string(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// A one-line sysfs attribute of the module (`initstate`, `version`, ...).
pub fn attr(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(MODULE_DIR).join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_links() {
        let l = parse_links("eth0 2 native 1\nveth1 7 generic 12\nbad line\n");
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[1],
            Link {
                ifname: "veth1".into(),
                ifindex: 7,
                mode: "generic".into(),
                link_id: 12
            }
        );
    }

    #[test]
    fn parses_the_maps_file() {
        assert_eq!(
            parse_maps("xdpg_active 10\nxdpg_stats 11\n\nbroken\n"),
            [
                ("xdpg_active".to_string(), 10),
                ("xdpg_stats".to_string(), 11)
            ]
        );
    }

    #[test]
    fn reads_a_directory_like_the_modules() {
        let dir = std::env::temp_dir().join(format!("xdpguard-sysfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(PROG_ID), "42\n").unwrap();
        std::fs::write(dir.join(MAPS), "xdpg_active 7\n").unwrap();
        assert_eq!(read_prog_id(&dir).unwrap(), Some(42));
        assert_eq!(read_maps(&dir).unwrap(), [("xdpg_active".to_string(), 7)]);
        std::fs::write(dir.join(PROG_ID), "x\n").unwrap();
        assert_eq!(read_prog_id(&dir).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read_maps(&dir).is_err());
    }
}
