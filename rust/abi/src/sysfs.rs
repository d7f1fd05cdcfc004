// SPDX-License-Identifier: GPL-2.0
//
// The sysfs protocol of the module: the files of `/sys/module/xdpguard/bpf/`,
// written by the module (formatting, `no_std`, into any `fmt::Write`) and
// read by the CLI (parsing, one line at a time, no allocation). Both sides
// use only this file, so a line changes in one place. Kept free of crate
// attributes: the module includes this file with `#[path]`.

use core::fmt::{self, Display, Write};

/// The module's directory in sysfs.
pub const MODULE_DIR: &str = "/sys/module/xdpguard";
/// The directory of the files below.
pub const DIR: &str = "/sys/module/xdpguard/bpf";

/// The XDP program's id: one line, the number.
pub const PROG_ID: &str = "prog_id";
/// One line per map, in `MapId` order: `NAME ID`.
pub const MAPS: &str = "maps";
/// One line per attached interface: `IFNAME IFINDEX MODE LINK_ID`.
pub const LINKS: &str = "links";
/// The module's state, one `key value...` line per fact ([`StatusLine`]).
pub const STATUS: &str = "status";
/// Write-only: an interface name to attach to.
pub const ATTACH: &str = "attach";
/// Write-only: an interface name to detach from.
pub const DETACH: &str = "detach";

/// The readable files, in the order the module creates them.
pub const SHOW_FILES: [&str; 4] = [PROG_ID, MAPS, LINKS, STATUS];
/// The writable files.
pub const STORE_FILES: [&str; 2] = [ATTACH, DETACH];

/// `prog_id`.
pub fn write_prog_id(w: &mut impl Write, id: u32) -> fmt::Result {
    writeln!(w, "{id}")
}

/// Parses `prog_id`.
pub fn parse_prog_id(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// One line of `maps`.
pub fn write_map(w: &mut impl Write, name: &str, id: u32) -> fmt::Result {
    writeln!(w, "{name} {id}")
}

/// Parses one line of `maps`: the map's name and id.
pub fn parse_map(line: &str) -> Option<(&str, u32)> {
    let mut it = line.split_whitespace();
    Some((it.next()?, it.next()?.parse().ok()?))
}

/// One line of `links`, as the CLI reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link<'a> {
    /// Interface name at attach time.
    pub ifname: &'a str,
    /// Interface index.
    pub ifindex: u32,
    /// XDP mode obtained ([`MODE_NATIVE`] or [`MODE_GENERIC`]).
    pub mode: &'a str,
    /// BPF link id.
    pub link_id: u32,
}

/// Mode word of a native (driver) attachment.
pub const MODE_NATIVE: &str = "native";
/// Mode word of a generic (skb) attachment.
pub const MODE_GENERIC: &str = "generic";

/// One line of `links`.
pub fn write_link(
    w: &mut impl Write,
    ifname: impl Display,
    ifindex: i32,
    mode: &str,
    link_id: u32,
) -> fmt::Result {
    writeln!(w, "{ifname} {ifindex} {mode} {link_id}")
}

/// Parses one line of `links`.
pub fn parse_link(line: &str) -> Option<Link<'_>> {
    let mut it = line.split_whitespace();
    Some(Link {
        ifname: it.next()?,
        ifindex: it.next()?.parse().ok()?,
        mode: it.next()?,
        link_id: it.next()?.parse().ok()?,
    })
}

/// One line of `status`. The module writes them in this order: `Ifaces`,
/// `Mode`, `Policy`, `Monitor`, `Prog`, then one per attachment, the
/// attach in flight, each queued request and each kept failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLine<'a> {
    /// `ifaces P,...`: the `ifaces=` patterns, comma-separated.
    Ifaces(&'a str),
    /// `mode M`: the `mode=` parameter.
    Mode(&'a str),
    /// `policy deny|allow`: the load-time default policy.
    Policy(&'a str),
    /// `monitor 0|1`.
    Monitor(bool),
    /// `prog ID jited LEN` or `prog ID interpreted` (`None`).
    Prog(u32, Option<u32>),
    /// `attached NAME ifindex I mode M link L by ORIGIN`.
    Attached {
        /// Interface name.
        name: &'a str,
        /// Its index.
        ifindex: i32,
        /// `native` or `generic`.
        mode: &'a str,
        /// BPF link id.
        link: u32,
        /// What asked for it (`load`, `sysfs`, `hotplug`, ...).
        by: &'a str,
    },
    /// `attaching NAME ifindex I`: the attach in flight.
    Attaching(&'a str, i32),
    /// `pending attach NAME by O`.
    PendingAttach(&'a str, &'a str),
    /// `pending attach ifindex I by O`.
    PendingAttachIndex(i32, &'a str),
    /// `pending detach NAME by O`.
    PendingDetach(&'a str, &'a str),
    /// `pending release NAME link L`.
    PendingRelease(&'a str, u32),
    /// `failed NAME error E by O`.
    Failed(&'a str, &'a str, &'a str),
}

/// Writes `status` lines. Names and errors are anything `Display`s, so
/// the module passes its own byte-string and error types.
pub struct StatusWriter<'w, W: Write>(pub &'w mut W);

impl<W: Write> StatusWriter<'_, W> {
    /// `ifaces P,...`.
    pub fn ifaces<P: Display>(&mut self, patterns: impl Iterator<Item = P>) -> fmt::Result {
        write!(self.0, "ifaces ")?;
        for (i, p) in patterns.enumerate() {
            write!(self.0, "{}{}", if i > 0 { "," } else { "" }, p)?;
        }
        writeln!(self.0)
    }
    /// `mode M`.
    pub fn mode(&mut self, mode: &str) -> fmt::Result {
        writeln!(self.0, "mode {mode}")
    }
    /// `policy deny|allow`.
    pub fn policy(&mut self, deny: bool) -> fmt::Result {
        writeln!(self.0, "policy {}", if deny { "deny" } else { "allow" })
    }
    /// `monitor 0|1`.
    pub fn monitor(&mut self, on: bool) -> fmt::Result {
        writeln!(self.0, "monitor {}", on as u8)
    }
    /// `prog ID jited LEN` or `prog ID interpreted`.
    pub fn prog(&mut self, id: u32, jited_len: Option<u32>) -> fmt::Result {
        match jited_len {
            Some(len) => writeln!(self.0, "prog {id} jited {len}"),
            None => writeln!(self.0, "prog {id} interpreted"),
        }
    }
    /// `attached NAME ifindex I mode M link L by ORIGIN`.
    pub fn attached(
        &mut self,
        name: impl Display,
        ifindex: i32,
        mode: &str,
        link: u32,
        by: &str,
    ) -> fmt::Result {
        writeln!(
            self.0,
            "attached {name} ifindex {ifindex} mode {mode} link {link} by {by}"
        )
    }
    /// `attaching NAME ifindex I`.
    pub fn attaching(&mut self, name: impl Display, ifindex: i32) -> fmt::Result {
        writeln!(self.0, "attaching {name} ifindex {ifindex}")
    }
    /// `pending attach NAME by O`.
    pub fn pending_attach(&mut self, name: impl Display, by: &str) -> fmt::Result {
        writeln!(self.0, "pending attach {name} by {by}")
    }
    /// `pending attach ifindex I by O`.
    pub fn pending_attach_index(&mut self, ifindex: i32, by: &str) -> fmt::Result {
        writeln!(self.0, "pending attach ifindex {ifindex} by {by}")
    }
    /// `pending detach NAME by O`.
    pub fn pending_detach(&mut self, name: impl Display, by: &str) -> fmt::Result {
        writeln!(self.0, "pending detach {name} by {by}")
    }
    /// `pending release NAME link L`.
    pub fn pending_release(&mut self, name: impl Display, link: u32) -> fmt::Result {
        writeln!(self.0, "pending release {name} link {link}")
    }
    /// `failed NAME error E by O`.
    pub fn failed(&mut self, name: impl Display, error: impl Display, by: &str) -> fmt::Result {
        writeln!(self.0, "failed {name} error {error} by {by}")
    }
}

/// Parses one line of `status`.
pub fn parse_status(line: &str) -> Option<StatusLine<'_>> {
    let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
    let mut it = rest.split_whitespace();
    let mut next = || it.next();
    Some(match key {
        "ifaces" => StatusLine::Ifaces(rest.trim_end()),
        "mode" => StatusLine::Mode(next()?),
        "policy" => StatusLine::Policy(next()?),
        "monitor" => StatusLine::Monitor(next()? == "1"),
        "prog" => {
            let id = next()?.parse().ok()?;
            match next()? {
                "jited" => StatusLine::Prog(id, Some(next()?.parse().ok()?)),
                "interpreted" => StatusLine::Prog(id, None),
                _ => return None,
            }
        }
        "attached" => {
            let name = next()?;
            let (_, ifindex, _, mode, _, link, _, by) =
                (next()?, next()?, next()?, next()?, next()?, next()?, next()?, next()?);
            StatusLine::Attached {
                name,
                ifindex: ifindex.parse().ok()?,
                mode,
                link: link.parse().ok()?,
                by,
            }
        }
        "attaching" => {
            let name = next()?;
            next()?;
            StatusLine::Attaching(name, next()?.parse().ok()?)
        }
        "pending" => match next()? {
            "attach" => match next()? {
                "ifindex" => {
                    let i = next()?.parse().ok()?;
                    next()?;
                    StatusLine::PendingAttachIndex(i, next()?)
                }
                name => {
                    next()?;
                    StatusLine::PendingAttach(name, next()?)
                }
            },
            "detach" => {
                let name = next()?;
                next()?;
                StatusLine::PendingDetach(name, next()?)
            }
            "release" => {
                let name = next()?;
                next()?;
                StatusLine::PendingRelease(name, next()?.parse().ok()?)
            }
            _ => return None,
        },
        "failed" => {
            let name = next()?;
            next()?;
            let error = next()?;
            next()?;
            StatusLine::Failed(name, error, next()?)
        }
        _ => return None,
    })
}
