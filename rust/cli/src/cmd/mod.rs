// SPDX-License-Identifier: GPL-2.0

//! One module per command (`main.rs` holds only the clap enum and the
//! dispatch).

pub mod capture;
pub mod log;
pub mod pin;
pub mod status;
pub mod top;
