// SPDX-License-Identifier: GPL-2.0

//! The ABI shared by the xdpguard XDP program, kernel module and CLI.
//!
//! The definitions live in `abi.rs`, which the kernel module includes with
//! `#[path]` (the kernel build has no Cargo); this file only makes it a crate.

#![cfg_attr(not(test), no_std)]

include!("abi.rs");

/// The files of `/sys/module/xdpguard/bpf/`: formatted by the module,
/// parsed by the CLI.
pub mod sysfs {
    include!("sysfs.rs");
}

/// Prefixes of `union bpf_attr` for the bpf(2) commands xdpguard issues.
pub mod uapi {
    include!("uapi.rs");
}

#[cfg(test)]
mod tests;
