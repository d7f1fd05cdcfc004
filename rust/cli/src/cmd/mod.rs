// SPDX-License-Identifier: GPL-2.0

//! One module per command (`main.rs` holds only the clap enum and the
//! dispatch; Documentation/cli.rst).

pub mod apply;
pub mod capture;
pub mod import;
pub mod log;
pub mod pin;
pub mod rules;
pub mod status;
pub mod top;
pub mod verify;
