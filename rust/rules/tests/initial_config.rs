// SPDX-License-Identifier: GPL-2.0

//! The module's load-time configuration (`policy=`, `monitor=`) is what `xdpguard apply` writes for the same policy.
//!
//! The module writes `abi::initial_config` into generation 0 when it loads;
//! the compiler must produce the same `Config` for a rule file holding only
//! `default` and `monitor`, or a rule set applied later would change more
//! than the operator wrote.

use xdpguard_abi::{initial_config, DEFAULT_SAMPLE_RATE};
use xdpguard_rules::{compile, RuleSet};

#[test]
fn load_time_config_equals_compiled_empty_rule_set() {
    for deny in [false, true] {
        for monitor in [false, true] {
            let rs = RuleSet {
                default_deny: deny,
                monitor,
                ..RuleSet::default()
            };
            let img = compile(&rs, 0, &|_| None).expect("an empty rule set compiles");
            assert_eq!(
                img.config,
                initial_config(deny, monitor),
                "policy deny={deny} monitor={monitor}"
            );
        }
    }
}

#[test]
fn default_sample_rate_is_the_rule_language_default() {
    assert_eq!(RuleSet::default().samples, DEFAULT_SAMPLE_RATE);
}

#[test]
fn parsed_policy_file_matches_too() {
    let rs = RuleSet::from_toml("default = \"deny\"\nmonitor = true\n").expect("parses");
    let img = compile(&rs, 0, &|_| None).expect("compiles");
    assert_eq!(img.config, initial_config(true, true));
}
