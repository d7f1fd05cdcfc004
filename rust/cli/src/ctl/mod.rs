// SPDX-License-Identifier: GPL-2.0

//! The active rule set: where the rule verbs read it from, and the one path (compile, check capacity, write the idle generation, record, switch) by which every command changes it.
//!
//! # Where the active rule set comes from
//!
//! The kernel is the authority. Each generation's `Config` carries a
//! `tag`, chosen at random by [`commit`] and written together with the
//! rest of the generation. Next to it, `commit` records the rule set it
//! compiled (with comments, limiter names, interface names: what the maps
//! cannot give back) in `$XDPGUARD_STATE_DIR/genN.json` (default
//! `/run/xdpguard`), with that tag and the id of the module's `xdpg_config`
//! map. [`active`] believes a record only if the tag and map id match what
//! the kernel holds *now* for the active generation. A freshly loaded
//! module has tag 0 and all-zero maps: that is the fresh rule set (allow
//! everything), whatever files lie around, so a module reload can never
//! resurrect old rules. Anything else (tag 0 with rules, or a tag without
//! its record) is reported, never guessed.
//!
//! # Repair
//!
//! A commit does not trust its records for what the maps hold: it reads
//! the maps back and makes the generation it writes exactly the compiled
//! image, so re-applying a file undoes whatever another program (say
//! `bpftool map update`) wrote. It also puts the generation that becomes
//! idle back to its record. [`verify`] compares both generations with the
//! records (by a digest recorded in `genN.sums.json`, then entry by
//! entry), and `list` and `status` check the active one.
//!
//! # Where it lives
//!
//! `state.rs`: the records, tags and locks, and the active rule set read
//! back from them. `commit.rs`: the commit. `capacity.rs`: whether a rule
//! set fits. `held.rs`: what the maps hold, and its digest. `drift.rs`:
//! the entries that differ, in words. `verify.rs`: `verify` and the check
//! of `list` and `status`. `watch.rs`: noticing that the module went away.

mod capacity;
mod commit;
mod drift;
mod held;
mod state;
mod verify;
mod watch;

pub use capacity::check;
pub use commit::{commit, Committed, Progress, Quiet};
pub use drift::Drift;
pub use held::{digest, fresh_image, read_held, Digest, Foreign, Held, MapSum};
pub use state::{
    active, fresh_rules, lock, recorded_prefixes, samples_lock, state_dir, Active, Lock, Origin,
};
pub use verify::{check_generation, drift_failure, entries_differ, verify, GenCheck, Verification};
pub use watch::{alive, disarm, watch};

pub use crate::sys::{Failure, EXIT_FAILED, EXIT_NOT_LOADED, EXIT_PRIVILEGE, EXIT_USAGE};

use crate::Guard;

/// Opens the loaded module (exit 3 if it is not loaded, 4 without
/// privilege): the one check every command shares, in [`crate::sys`].
pub fn open() -> Result<Guard, Failure> {
    crate::sys::open_guard()
}

/// Rule sets the tests of these modules share.
#[cfg(test)]
mod test_sets {
    use xdpguard_rules::{Image, RuleSet};

    pub fn rs(text: &str) -> RuleSet {
        RuleSet::from_toml(text).expect("parses")
    }

    pub use xdpguard_rules::TEST_RULES as BASE;

    pub fn image(text: &str, g: u32) -> Image {
        xdpguard_rules::compile(&rs(text), g, &|_| None).expect("compiles")
    }
}
