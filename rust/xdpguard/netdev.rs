// SPDX-License-Identifier: GPL-2.0

//! Network devices: the notifier's events (devices that appear, are renamed, leave or move away) and the listing of the initial namespace at load time.
//!
//! An interface that appears or is renamed to a name `ifaces=` matches is
//! queued for the worker (`attach.rs`); one that goes away is forgotten,
//! and the link of one that moves to another namespace is detached by the
//! worker, since detaching takes rtnl, which the notifier holds.

use crate::{
    attach::{queue_locked, Op, Origin, Request, Shared, Target},
    ffi::netdev::{self as kdev, NetdevEntry, NetdevEvent, NetdevHandler},
    params::{self, IfName},
};
use kernel::{prelude::*, sync::Arc};

// The names the kernel hands out fit an `IfName`.
const _: () = assert!(kdev::IFNAMSIZ == params::IFNAMSIZ);

/// The handler of the netdevice notifier.
pub(crate) struct Events(pub(crate) Arc<Shared>);

impl NetdevHandler for Events {
    fn netdev_event(&self, event: NetdevEvent, ifindex: i32, name: &[u8]) {
        let shared = &self.0;
        let name = IfName::from_valid(name);
        let mut state = shared.state.lock();
        if state.closing() {
            return;
        }
        let origin = match event {
            NetdevEvent::Register => Origin::Hotplug,
            NetdevEvent::ChangeName => {
                if let Some(a) = state.attachment_mut(ifindex) {
                    // An attachment follows its device, whatever its name.
                    let old = a.name;
                    a.name = name;
                    drop(state);
                    pr_info!(
                        "{}: renamed to {}; stays attached\n",
                        old.shown(),
                        name.shown()
                    );
                    return;
                }
                if let Some(i) = state.inflight.as_mut().filter(|i| i.ifindex == ifindex) {
                    i.name = name;
                    return;
                }
                Origin::Rename
            }
            NetdevEvent::Unregister { moved } => {
                if let Some(i) = state.inflight.as_mut().filter(|i| i.ifindex == ifindex) {
                    i.gone = true;
                }
                let taken = state.take_attachment(|a| a.ifindex == ifindex);
                if let Some(a) = taken {
                    if moved {
                        pr_info!(
                            "{}: moved to another network namespace; detached (link {})\n",
                            a.name.shown(),
                            a.link.id()
                        );
                        // The link stays on the device until detached, which
                        // takes rtnl: the worker does it, before any attach
                        // queued after this (should the device come back).
                        // Should queueing fail, the link's release detaches.
                        let req = Request {
                            op: Op::Release(a),
                            origin: Origin::Hotplug,
                            reply: None,
                        };
                        let _ = queue_locked(shared, &mut state, req);
                    } else {
                        pr_info!(
                            "{}: removed; its link {} is released\n",
                            a.name.shown(),
                            a.link.id()
                        );
                    }
                }
                return;
            }
        };
        // An attach in flight for a device that left meanwhile ends in a
        // detach; one that came back (same ifindex) needs a new attach.
        let busy = state.is_attached(ifindex)
            || state
                .inflight
                .as_ref()
                .is_some_and(|i| i.ifindex == ifindex && !i.gone);
        if busy || !shared.params.matches(name.as_bytes()) {
            return;
        }
        let req = Request {
            op: Op::Attach(Target::Index(ifindex)),
            origin,
            reply: None,
        };
        if let Err(e) = queue_locked(shared, &mut state, req) {
            state.record_failure(name, e, origin);
            drop(state);
            pr_err!("{}: cannot queue its attach: {:?}\n", name.shown(), e);
        }
    }
}

/// Lists the devices of the initial network namespace. Takes rtnl: never
/// call with rtnl held.
pub(crate) fn netdevs() -> Result<KVec<NetdevEntry>> {
    let mut max = 64usize;
    loop {
        let mut out = KVec::from_elem(NetdevEntry::EMPTY, max, GFP_KERNEL)?;
        let n = kdev::list(&mut out)?;
        if n <= max {
            // Keep the first `n` entries: rebuild rather than truncate.
            let mut list = KVec::with_capacity(n, GFP_KERNEL)?;
            list.extend_from_slice(&out[..n], GFP_KERNEL)?;
            return Ok(list);
        }
        // More devices than room: try again with room to spare.
        max = n.checked_mul(2).ok_or(ENOMEM)?;
    }
}
