// SPDX-License-Identifier: GPL-2.0

//! The module's own ordered workqueue, destroyed (after draining) when dropped.
//!
//! `kernel::workqueue` in 6.12 wraps the system queues and `Queue`, but not
//! allocating and destroying one; `alloc_ordered_workqueue()` is a macro,
//! so a C helper calls it.
//!
//! C headers: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, workqueue::Queue};

extern "C" {
    // helpers.c.
    fn xdpguard_alloc_wq() -> *mut bindings::workqueue_struct;
}

/// The module's ordered workqueue: one work item runs at a time. Dropping
/// it waits for queued and running work to finish (`destroy_workqueue`).
///
/// # Invariants
///
/// `self.0` points at a workqueue allocated by this value and not yet
/// destroyed.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues may be used and destroyed from any task.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing work is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates the ordered workqueue `xdpguard`.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: the helper only calls `alloc_ordered_workqueue`.
        let wq = unsafe { xdpguard_alloc_wq() };
        // INVARIANT: a non-null result is a new workqueue we own.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

impl core::ops::Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: by the type invariant the workqueue is valid until `drop`,
        // which needs `&mut self`, so it outlives the returned borrow.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the workqueue is ours and live; this
        // drains it and frees it. Nothing can queue on it any more: it is
        // only reachable through `self`.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}
