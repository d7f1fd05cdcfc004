// SPDX-License-Identifier: GPL-2.0

//! What the module publishes in sysfs besides map ids: its attachments
//! (`bpf/links`), its state and parameters.

use std::path::Path;

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

/// Parses the `links` file ("IFNAME IFINDEX MODE LINK_ID" lines); lines
/// that do not fit are skipped.
pub fn parse_links(text: &str) -> Vec<Link> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            Some(Link {
                ifname: f[0].to_string(),
                ifindex: f[1].parse().ok()?,
                mode: f[2].to_string(),
                link_id: f[3].parse().ok()?,
            })
        })
        .collect()
}

/// The module's attachments now (none if it is not loaded).
pub fn links() -> Vec<Link> {
    std::fs::read_to_string(Path::new(crate::SYSFS).join("links"))
        .map(|t| parse_links(&t))
        .unwrap_or_default()
}

/// The module's parameters readable in sysfs, by name (sorted).
pub fn parameters() -> Vec<(String, String)> {
    let dir = Path::new(crate::sys::MODULE_DIR).join("parameters");
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
    std::fs::read_to_string(Path::new(crate::sys::MODULE_DIR).join(name))
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
}
