// SPDX-License-Identifier: GPL-2.0

//! The files of `/sys/module/xdpguard/bpf/`: what `prog_id`, `maps`, `links` and `status` show and what `attach` and `detach` do.
//!
//! Every line is written by the sysfs protocol's own writers
//! (`abi::sysfs`), which the CLI's parsers mirror; a file longer than a
//! page is cut after its last whole line that fits.

use crate::{
    abi::MapId,
    attach::{submit, Op, Origin, Shared, Target},
    ffi::sysfs::{Command, Control, ShowFile, SHOW_MAX},
    params::IfName,
    refuse,
    sysfs::{self, StatusWriter},
};
use core::fmt::{self, Display, Write};
use kernel::{error::Error, prelude::*, sync::Arc};

/// The handler of the sysfs files.
pub(crate) struct Files(pub(crate) Arc<Shared>);

impl Control for Files {
    fn show(&self, file: ShowFile, out: &mut KVec<u8>) -> Result<usize> {
        let mut t = Text(core::mem::take(out));
        let r = render(&self.0, file, &mut t);
        *out = t.0;
        r.map_err(|_| ENOMEM)?;
        Ok(whole_lines(out, SHOW_MAX))
    }

    fn store(&self, cmd: Command, input: &[u8]) -> Result {
        let what = match cmd {
            Command::Attach => sysfs::ATTACH,
            Command::Detach => sysfs::DETACH,
        };
        let name = IfName::new(input.trim_ascii(), what).map_err(refuse)?;
        let op = match cmd {
            Command::Attach => Op::Attach(Target::Name(name)),
            Command::Detach => Op::Detach(name),
        };
        submit(&self.0, op, Origin::Sysfs, true)
    }
}

/// Writes the text of `file`.
fn render(shared: &Shared, file: ShowFile, t: &mut Text) -> fmt::Result {
    match file {
        ShowFile::ProgId => sysfs::write_prog_id(t, shared.prog.id()),
        ShowFile::Maps => {
            for (id, map) in MapId::ALL.iter().zip(shared.maps.iter()) {
                sysfs::write_map(t, id.name(), map.id())?;
            }
            Ok(())
        }
        ShowFile::Links => {
            let state = shared.state.lock();
            for a in state.attachments() {
                sysfs::write_link(t, a.name.shown(), a.ifindex, a.mode.name(), a.link.id())?;
            }
            Ok(())
        }
        ShowFile::Status => render_status(shared, t),
    }
}

/// `status`: one `key value...` line per fact.
fn render_status(shared: &Shared, t: &mut Text) -> fmt::Result {
    let mut w = StatusWriter(t);
    let p = &shared.params;
    w.ifaces(p.patterns.iter().map(|pat| pat.shown()))?;
    w.mode(p.mode.name())?;
    w.policy(p.deny)?;
    w.monitor(p.monitor)?;
    w.prog(shared.prog.id(), shared.prog.jited_len())?;
    let state = shared.state.lock();
    for a in state.attachments() {
        w.attached(
            a.name.shown(),
            a.ifindex,
            a.mode.name(),
            a.link.id(),
            a.origin.name(),
        )?;
    }
    if let Some(i) = state.inflight.as_ref() {
        w.attaching(i.name.shown(), i.ifindex)?;
    }
    for req in state.pending() {
        match (&req.op, req.origin) {
            (Op::Attach(Target::Name(n)), o) => w.pending_attach(n.shown(), o.name())?,
            (Op::Attach(Target::Index(i)), o) => w.pending_attach_index(*i, o.name())?,
            (Op::Detach(n), o) => w.pending_detach(n.shown(), o.name())?,
            (Op::Release(a), _) => w.pending_release(a.name.shown(), a.link.id())?,
        }
    }
    for f in state.failures() {
        w.failed(f.name.shown(), ErrorName(f.error), f.origin.name())?;
    }
    Ok(())
}

/// An error by its name (`ENODEV`), as dmesg shows it too.
struct ErrorName(Error);

impl Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// How much of `text` to show in `max` bytes: all of it if it fits, else
/// up to the last whole line that fits (or `max` bytes of a longer line).
fn whole_lines(text: &[u8], max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let cut = &text[..max];
    cut.iter()
        .rposition(|&b| b == b'\n')
        .map_or(cut.len(), |i| i + 1)
}

/// A growable text buffer for the files.
struct Text(KVec<u8>);

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| fmt::Error)
    }
}
