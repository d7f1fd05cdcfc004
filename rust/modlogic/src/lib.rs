// SPDX-License-Identifier: GPL-2.0

//! The kernel module's pure logic, built for the host so that `cargo test` covers it.
//!
//! The module (`rust/xdpguard/`) has no Cargo; its files that use no kernel
//! items are included here with `#[path]`, as `rust/abi/src/lib.rs` includes
//! `abi.rs`, and tested in `tests.rs`.

#![cfg_attr(not(test), no_std)]

// The items are `pub(crate)` as the module wants them; outside the tests
// nothing here uses them.
#[allow(dead_code)]
#[path = "../../xdpguard/params.rs"]
mod params;

#[cfg(test)]
mod tests;
