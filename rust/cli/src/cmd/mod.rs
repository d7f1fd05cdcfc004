// SPDX-License-Identifier: GPL-2.0

//! One module per command (`main.rs` holds only the clap enum and the
//! dispatch; Documentation/cli.rst).

pub mod apply;
pub mod capture;
pub mod import;
pub mod log;
pub mod metrics;
pub mod pin;
pub mod rules;
pub mod saved;
pub mod status;
pub mod top;
pub mod verify;
/// Every command checks its words and files before it looks for the
/// module: bad input is exit 2 naming what is wrong, loaded module or not
/// (on a host without the module, looking first would give exit 3).
#[cfg(test)]
mod input_before_module {
    use clap::Parser;

    /// The failure of `xdpguard ARGS...`.
    fn fails(args: &[&str]) -> xdpguard_user::sys::Failure {
        let argv = std::iter::once("xdpguard").chain(args.iter().copied());
        let cli = crate::Cli::try_parse_from(argv).expect("clap accepts the words");
        crate::run(cli).expect_err("must fail")
    }

    fn file(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("xdpguard-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("temp file");
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn bad_words_and_files_are_exit_2_naming_them() {
        let bad_rules = file(
            "bad.toml",
            "[[rule]]\naction = \"deny\"\n\nsrc = \"10.0.0.1/8\"\n",
        );
        let no_iface = file(
            "iface.toml",
            "[interfaces]\nxgnosuch0 = \"deny\"\n\n[[rule]]\naction = \"deny\"\nsrc = \"192.0.2.1\"\n",
        );
        let bad_list = file("list.txt", "192.0.2.1\n# ok\n10.0.0.1/8\n");
        let cases: Vec<(Vec<&str>, String)> = vec![
            (
                vec!["add", "dny", "--src", "1.2.3.4"],
                "add: action = \"dny\"".into(),
            ),
            (
                vec!["add", "deny", "--src", "10.0.0.1/8"],
                "did you mean 10.0.0.0/8".into(),
            ),
            (vec!["add", "deny", "--dport", "22"], "need proto".into()),
            (
                vec!["add", "deny", "--proto", "tcp", "--dport", "70000"],
                "70000".into(),
            ),
            (
                vec!["add", "deny", "--src-mac", "zz"],
                "\"zz\" is not a MAC".into(),
            ),
            (
                vec!["add", "allow", "--limit", "syn"],
                "limit = ... only goes with".into(),
            ),
            (
                vec!["add", "deny", "--src", "192.0.2.1", "--at", "0"],
                "--at 0".into(),
            ),
            (vec!["delete", "0"], "no rule 0".into()),
            (vec!["delete", "2", "--src", "192.0.2.1"], "not both".into()),
            (
                vec!["delete", "dny", "--src", "192.0.2.1"],
                "delete: action = \"dny\"".into(),
            ),
            (vec!["set", "default", "maybe"], "set default maybe".into()),
            (
                vec!["set", "monitor", "on", "off"],
                "takes one value".into(),
            ),
            (vec!["set", "samples", "70000"], "set samples 70000".into()),
            (
                vec!["set", "fragments", "some"],
                "set fragments some".into(),
            ),
            (
                vec!["set", "colour", "red"],
                "set colour: unknown setting".into(),
            ),
            (
                vec!["set", "interface", "xgnosuch0", "deny"],
                "\"xgnosuch0\"".into(),
            ),
            (
                vec!["set", "interface", "a-name-of-16-byt", "deny"],
                "1 to 15 bytes".into(),
            ),
            (
                vec!["limiter", "add", "syn"],
                "give --pps and/or --bps".into(),
            ),
            (
                vec!["limiter", "add", "syn", "--pps", "5", "--burst", "0"],
                "bursts must be".into(),
            ),
            (
                vec!["limiter", "add", "syn", "--pps", "5", "--prefix4", "33"],
                "prefix4".into(),
            ),
            (
                vec!["import", "--deny", &bad_list],
                format!("{bad_list}:3: '10.0.0.1/8'"),
            ),
            (
                vec!["import", "--deny", "/nonexistent/list"],
                "/nonexistent/list".into(),
            ),
            (
                vec!["apply", &bad_rules],
                format!("{bad_rules}:4: rule 1: src:"),
            ),
            (
                vec!["apply", "--dry-run", &bad_rules],
                format!("{bad_rules}:4:"),
            ),
            (
                vec!["apply", &no_iface],
                "no interface named \"xgnosuch0\"".into(),
            ),
            (vec!["check", &bad_rules], format!("{bad_rules}:4:")),
            (
                vec!["restore", "--file", &bad_rules, "--wait", "30"],
                format!("{bad_rules}:4: rule 1: src:"),
            ),
            (
                vec!["restore", "--file", "/nonexistent/rules.toml"],
                "/nonexistent/rules.toml".into(),
            ),
            (vec!["restore", "--file", &no_iface], "no interface named \"xgnosuch0\"".into()),
            (vec!["log", "--timeout=-1"], "--timeout -1".into()),
            (vec!["log", "--timeout", "NaN"], "--timeout NaN".into()),
            (
                vec!["capture", "-w", "/dev/null", "--timeout", "inf"],
                "--timeout inf".into(),
            ),
            (vec!["top", "--interval", "0"], "--interval".into()),
            (vec!["pin", "--wait=-1"], "--wait".into()),
        ];
        for (args, want) in &cases {
            let f = fails(args);
            assert_eq!(
                f.code(),
                xdpguard_user::sys::EXIT_USAGE,
                "{args:?}: {}",
                f.msg()
            );
            assert!(
                f.msg().contains(want.as_str()),
                "{args:?}: {:?} lacks {want:?}",
                f.msg()
            );
        }
    }
}
