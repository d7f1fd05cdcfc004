// SPDX-License-Identifier: GPL-2.0

//! Network devices of the initial network namespace: lookups by name and index, a listing, and a netdevice notifier.
//!
//! `struct net_device` is opaque in the 6.12 bindings, so the accessors are
//! C helpers (`helpers.c`) that copy out what xdpguard needs: the ifindex
//! and the name.
//!
//! C headers: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h).

use core::{
    marker::PhantomPinned,
    ptr::null_mut,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_ulong, c_void},
    prelude::*,
    str::CStr,
    types::Opaque,
};

extern "C" {
    // helpers.c.
    fn xdpguard_ifindex_by_name(name: *const c_char) -> c_int;
    fn xdpguard_name_by_index(ifindex: c_int, name: *mut u8) -> c_int;
    fn xdpguard_netdevs(out: *mut NetdevEntry, max: c_int) -> c_int;
    fn xdpguard_notifier_register(nb: *mut bindings::notifier_block) -> c_int;
    fn xdpguard_notifier_unregister(nb: *mut bindings::notifier_block);
    fn xdpguard_notifier_dev(
        event: c_ulong,
        info: *mut c_void,
        name: *mut u8,
        what: *mut c_int,
    ) -> c_int;
}

/// `IFNAMSIZ`: an interface name with its NUL.
pub(crate) const IFNAMSIZ: usize = bindings::IFNAMSIZ as usize;

/// Returns the ifindex of the interface called `name` in the initial network
/// namespace, if there is one. Alternative names are found too.
pub(crate) fn ifindex_by_name(name: &CStr) -> Option<i32> {
    // SAFETY: `name` is NUL-terminated; the helper only reads it, under RCU.
    let ifindex = unsafe { xdpguard_ifindex_by_name(name.as_char_ptr()) };
    (ifindex > 0).then_some(ifindex)
}

/// Returns the name (NUL-padded) of interface `ifindex` of the initial
/// network namespace, if it exists. Takes rtnl: never call with rtnl held.
pub(crate) fn name_by_index(ifindex: i32) -> Option<[u8; IFNAMSIZ]> {
    let mut name = [0u8; IFNAMSIZ];
    // SAFETY: `name` has the IFNAMSIZ bytes the helper writes.
    let ret = unsafe { xdpguard_name_by_index(ifindex, name.as_mut_ptr()) };
    (ret == 0).then_some(name)
}

/// One network device of the initial namespace (`struct xdpguard_netdev`).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct NetdevEntry {
    /// Its ifindex.
    pub(crate) ifindex: c_int,
    /// Its name, NUL-padded.
    pub(crate) name: [u8; IFNAMSIZ],
}

impl NetdevEntry {
    /// An empty entry, for a buffer [`list`] fills.
    pub(crate) const EMPTY: Self = Self {
        ifindex: 0,
        name: [0; IFNAMSIZ],
    };
}

/// Copies the first devices of the initial network namespace into `out`
/// and returns how many there are, which may be more than `out` holds.
/// Takes rtnl: never call with rtnl held.
pub(crate) fn list(out: &mut [NetdevEntry]) -> Result<usize> {
    let max = c_int::try_from(out.len()).map_err(|_| EINVAL)?;
    // SAFETY: `out` holds `max` entries the helper may overwrite; it
    // writes no more than `max`.
    let n = unsafe { xdpguard_netdevs(out.as_mut_ptr(), max) };
    usize::try_from(n).map_err(|_| EINVAL)
}

/// What happened to a network device of the initial namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetdevEvent {
    /// It appeared (created, or moved into the namespace).
    Register,
    /// It is going away: deleted, or (`moved`) moving to another namespace.
    Unregister {
        /// The device stays registered: it changes namespace.
        moved: bool,
    },
    /// It was renamed; the name given is the new one.
    ChangeName,
}

/// Receives the netdevice events of the initial network namespace. Called
/// with rtnl held: it may sleep and take mutexes that are never held while
/// taking rtnl, and must not take rtnl.
pub(crate) trait NetdevHandler: Send + Sync {
    /// `name` is the device's name without NUL.
    fn netdev_event(&self, event: NetdevEvent, ifindex: i32, name: &[u8]);
}

// `enum xdpguard_netdev_event` (helpers.h): the helper decodes the kernel's
// `enum netdev_cmd`, whose values move between kernel versions.
const XDPGUARD_NETDEV_REGISTER: c_int = 1;
const XDPGUARD_NETDEV_UNREGISTER: c_int = 2;
const XDPGUARD_NETDEV_MOVED: c_int = 3;
const XDPGUARD_NETDEV_RENAME: c_int = 4;
/// `NOTIFY_DONE`.
const NOTIFY_DONE: c_int = bindings::NOTIFY_DONE as c_int;

/// The notifier block and its handler, at a fixed address.
///
/// # Invariants
///
/// `nb.notifier_call` is [`notifier_call::<T>`], and while `nb` is
/// registered this value stays pinned where it is.
#[repr(C)]
struct NotifierInner<T> {
    /// First, so a pointer to it is a pointer to the whole.
    nb: Opaque<bindings::notifier_block>,
    handler: T,
    /// Set while unregistering: the replayed `NETDEV_UNREGISTER`s are not
    /// passed on.
    quiet: AtomicBool,
    _pin: PhantomPinned,
}

// SAFETY: the notifier block is written only by the notifier chain, under
// rtnl, while registered; moving the owning box to another task is fine.
unsafe impl<T: Send> Send for NotifierInner<T> {}
// SAFETY: through `&NotifierInner` only the chain (under rtnl) touches the
// block; the handler is `Sync` and the flag atomic.
unsafe impl<T: Sync> Sync for NotifierInner<T> {}

/// A registered netdevice notifier on the initial network namespace,
/// unregistered on drop. Registration replays `NETDEV_REGISTER` for every
/// device already there; the replay of unregistration is not passed on.
///
/// # Invariants
///
/// `inner.nb` is registered with `register_netdevice_notifier_net` on
/// `init_net` and stays so until `drop`.
pub(crate) struct NetdevNotifier<T: NetdevHandler> {
    inner: Pin<KBox<NotifierInner<T>>>,
}

impl<T: NetdevHandler> NetdevNotifier<T> {
    /// Registers `handler` for the netdevice events of the initial network
    /// namespace. Takes rtnl: never call with rtnl held.
    pub(crate) fn register(handler: T) -> Result<Self> {
        // INVARIANT: `notifier_call::<T>` is the callback, and the box pins
        // the whole.
        let inner = KBox::pin(
            NotifierInner {
                nb: Opaque::new(bindings::notifier_block {
                    notifier_call: Some(notifier_call::<T>),
                    next: null_mut(),
                    priority: 0,
                }),
                handler,
                quiet: AtomicBool::new(false),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `nb` is pinned in a box that lives until `drop`, which
        // unregisters it first; `notifier_call` matches `notifier_fn_t`.
        kernel::error::to_result(unsafe { xdpguard_notifier_register(inner.nb.get()) })?;
        // INVARIANT: registered just above.
        Ok(Self { inner })
    }
}

impl<T: NetdevHandler> Drop for NetdevNotifier<T> {
    fn drop(&mut self) {
        self.inner.quiet.store(true, Ordering::Release);
        // SAFETY: by the type invariant `nb` is registered. Unregistering
        // takes rtnl, so no call is running when it returns.
        unsafe { xdpguard_notifier_unregister(self.inner.nb.get()) };
    }
}

/// `notifier_call` of [`NetdevNotifier`]: decodes the event and passes it on.
///
/// # Safety
///
/// Called by the netdevice notifier chain only, with rtnl held: `nb` is the
/// `nb` field of a live, registered `NotifierInner<T>` (the only notifier
/// blocks with this callback), and `info` the chain's
/// `netdev_notifier_info` for `event`.
unsafe extern "C" fn notifier_call<T: NetdevHandler>(
    nb: *mut bindings::notifier_block,
    event: c_ulong,
    info: *mut c_void,
) -> c_int {
    // SAFETY: by the function's safety requirements `nb` is the first field
    // of a `repr(C)` `NotifierInner<T>`, which stays pinned and live while
    // registered, and calls only happen then.
    let inner = unsafe { &*nb.cast::<NotifierInner<T>>() };
    if inner.quiet.load(Ordering::Acquire) {
        return NOTIFY_DONE;
    }
    let mut name = [0u8; IFNAMSIZ];
    let mut what: c_int = 0;
    // SAFETY: `info` is the `netdev_notifier_info` of a netdevice notifier
    // call, made with rtnl held; `name` has IFNAMSIZ bytes.
    let ifindex = unsafe { xdpguard_notifier_dev(event, info, name.as_mut_ptr(), &mut what) };
    if ifindex <= 0 {
        return NOTIFY_DONE;
    }
    let event = match what {
        XDPGUARD_NETDEV_REGISTER => NetdevEvent::Register,
        XDPGUARD_NETDEV_UNREGISTER => NetdevEvent::Unregister { moved: false },
        XDPGUARD_NETDEV_MOVED => NetdevEvent::Unregister { moved: true },
        XDPGUARD_NETDEV_RENAME => NetdevEvent::ChangeName,
        _ => return NOTIFY_DONE,
    };
    let len = name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    inner.handler.netdev_event(event, ifindex, &name[..len]);
    NOTIFY_DONE
}
