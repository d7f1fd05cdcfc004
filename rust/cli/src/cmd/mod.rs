// SPDX-License-Identifier: GPL-2.0

//! One module per command (Documentation/cli-rules.rst).

pub mod apply;
pub mod import;
pub mod rules;
