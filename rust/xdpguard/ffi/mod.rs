// SPDX-License-Identifier: GPL-2.0

//! The module's only `unsafe` code: thin, typed wrappers over the kernel's C interfaces.
//!
//! One file per interface, each shaped like an abstraction of the kernel's
//! `rust/kernel/`: owned or `#[repr(transparent)]` wrappers whose
//! `# Invariants` say what they hold, a `// SAFETY:` comment on every
//! `unsafe` block and a `# Safety` section on every unsafe function, trait
//! and C callback.
//!
//! - [`bpf`]: the in-kernel BPF syscall (`kern_sys_bpf`) and the references
//!   it hands out (maps, programs, the program's file, links), and a
//!   user-memory buffer for the verifier log.
//! - [`netdev`]: interface lookups and listing in the initial network
//!   namespace, and a netdevice notifier on it.
//! - [`param`]: `charp` module parameters and `.modinfo` entries.
//! - [`sysfs`]: the attribute group `bpf/` on the module's kobject.
//! - [`wq`]: the module's ordered workqueue.
//!
//! This file holds [`Fd`], the file descriptors of the current task that
//! `kern_sys_bpf` returns. The C side of what the bindings cannot reach is
//! in `helpers.c`. Everything outside `ffi/` is safe Rust, and the logic
//! (relocation, retries, text) lives there too.

use core::marker::PhantomData;
use kernel::ffi::{c_int, c_uint};

pub(crate) mod bpf;
pub(crate) mod netdev;
pub(crate) mod param;
pub(crate) mod sysfs;
pub(crate) mod wq;

extern "C" {
    // fs/file.c, EXPORT_SYMBOL(close_fd).
    fn close_fd(fd: c_uint) -> c_int;
}

/// A file descriptor in the current task's table, closed on drop.
///
/// `kern_sys_bpf` returns new objects as fds of `current`; xdpguard turns
/// them into references at once and closes the fds before it returns (from
/// `init`, or from the work function in a kworker, whose table is
/// kthreadd's).
///
/// # Invariants
///
/// `self.0` is an open fd of the task that created this value, owned by
/// this value alone; the value is dropped by that same task (it is neither
/// `Send` nor `Sync`).
pub(crate) struct Fd(c_int, PhantomData<*mut ()>);

impl Fd {
    /// Takes ownership of `fd`.
    ///
    /// # Safety
    ///
    /// `fd` must be an open fd of the current task that nothing else owns
    /// (closes, or hands to userspace): a new one a kernel call just
    /// returned.
    pub(crate) unsafe fn from_raw(fd: c_int) -> Self {
        // INVARIANT: by the safety requirements.
        Self(fd, PhantomData)
    }

    /// The fd, as `union bpf_attr` fields take it.
    pub(crate) fn raw(&self) -> u32 {
        self.0 as u32
    }

    /// The fd, as a `BPF_PSEUDO_MAP_FD` instruction's immediate holds it.
    pub(crate) fn as_raw(&self) -> i32 {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the fd is open in the current task's
        // table and owned by us, so closing it cannot close anything else.
        // Closing an fd we own cannot meaningfully fail; there is nothing to
        // do with an error.
        let _ = unsafe { close_fd(self.0 as c_uint) };
    }
}
