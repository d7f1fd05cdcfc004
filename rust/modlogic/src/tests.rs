// SPDX-License-Identifier: GPL-2.0

//! Tests of the module's parameter parsing and interface matching.

use crate::params::*;

fn pattern(entry: &str) -> Pattern {
    match Pattern::new(entry.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{entry}: {e}"),
    }
}

fn all_patterns(value: &str) -> Result<Vec<Pattern>, ParamError<'_>> {
    patterns(value.as_bytes()).collect()
}

#[test]
fn glob_star_question_and_literal_bytes() {
    assert!(glob_match(b"veth*", b"veth0"));
    assert!(glob_match(b"veth*", b"veth"));
    assert!(!glob_match(b"veth*", b"eth0"));
    assert!(glob_match(b"eth?", b"eth0"));
    assert!(!glob_match(b"eth?", b"eth"));
    assert!(!glob_match(b"eth?", b"eth10"));
    assert!(glob_match(b"*", b""));
    assert!(glob_match(b"", b""));
    assert!(!glob_match(b"", b"a"));
    assert!(glob_match(b"abc**", b"abc"));
    assert!(!glob_match(b"abc", b"abcd"));
    assert!(!glob_match(b"abcd", b"abc"));
}

#[test]
fn glob_backtracks_to_the_last_star() {
    assert!(glob_match(b"*ab", b"aab"));
    assert!(glob_match(b"*a*b", b"xaybzb"));
    assert!(glob_match(b"a*b*c", b"abxbc"));
    assert!(!glob_match(b"a*b*c", b"abxbcd"));
    assert!(glob_match(b"*?", b"x"));
    assert!(!glob_match(b"*?", b""));
    assert!(glob_match(b"v*t*h", b"vxxtyyh"));
    assert!(!glob_match(b"v*t*h", b"vxxtyyhz"));
}

#[test]
fn glob_sets() {
    assert!(glob_match(b"ens[0-9]", b"ens3"));
    assert!(!glob_match(b"ens[0-9]", b"ensa"));
    assert!(!glob_match(b"ens[0-9]", b"ens10"));
    assert!(glob_match(b"ens[0-9]*", b"ens10"));
    assert!(glob_match(b"ens[!0-9]", b"ensa"));
    assert!(!glob_match(b"ens[!0-9]", b"ens3"));
    assert!(!glob_match(b"ens[^0-9]", b"ens3"));
    assert!(glob_match(b"ens[^0-9]", b"ens-"));
    assert!(glob_match(b"br[abc]", b"brb"));
    assert!(!glob_match(b"br[abc]", b"brd"));
    // A `]` first is a member, as is a `-` last.
    assert!(glob_match(b"x[]a]", b"x]"));
    assert!(glob_match(b"x[]a]", b"xa"));
    assert!(!glob_match(b"x[]a]", b"xb"));
    assert!(glob_match(b"x[a-]", b"x-"));
    assert!(glob_match(b"x[a-]", b"xa"));
    assert!(!glob_match(b"x[a-]", b"xb"));
    // No closing `]`: matches nothing.
    assert!(!glob_match(b"[abc", b"a"));
    assert!(!glob_match(b"x[", b"x["));
}

#[test]
fn literal_and_glob_entries() {
    let p = pattern("eth0");
    assert!(p.is_literal());
    assert!(p.matches(b"eth0"));
    assert!(!p.matches(b"eth01"));
    assert_eq!(p.as_bytes(), b"eth0");
    let p = pattern("veth*");
    assert!(!p.is_literal());
    assert!(p.matches(b"veth12"));
    assert!(!p.matches(b"xveth1"));
    assert!(!pattern("ens[0-9]").is_literal());
    assert!(!pattern("eth?").is_literal());
    // The longest name and pattern pass.
    assert!(Pattern::new(&[b'a'; IFNAME_MAX]).is_ok());
    let mut long = vec![b'a'; PATTERN_MAX - 1];
    long.push(b'*');
    assert!(Pattern::new(&long).is_ok());
}

#[test]
fn entries_refused() {
    let name16 = [b'a'; IFNAME_MAX + 1];
    assert_eq!(
        Pattern::new(&name16),
        Err(ParamError::NameTooLong {
            what: "ifaces=",
            name: &name16
        })
    );
    for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\0b"] {
        assert_eq!(
            Pattern::new(bad.as_bytes()),
            Err(ParamError::InvalidName {
                what: "ifaces=",
                name: bad.as_bytes()
            }),
            "{bad:?}"
        );
    }
    let mut long = vec![b'a'; PATTERN_MAX];
    long.push(b'*');
    assert_eq!(Pattern::new(&long), Err(ParamError::PatternTooLong(&long)));
    for bad in ["veth/*", "ve th*", "a:*", "*\n"] {
        assert_eq!(
            Pattern::new(bad.as_bytes()),
            Err(ParamError::InvalidPattern(bad.as_bytes())),
            "{bad:?}"
        );
    }
    assert_eq!(
        Pattern::new(b"veth[0-9"),
        Err(ParamError::UnclosedSet(b"veth[0-9"))
    );
    assert_eq!(Pattern::new(b"x[]"), Err(ParamError::UnclosedSet(b"x[]")));
    assert_eq!(
        Pattern::new(b"ens[9-0]"),
        Err(ParamError::BackwardRange {
            pattern: b"ens[9-0]",
            set: b"[9-0]"
        })
    );
    assert_eq!(
        Pattern::new(b"a[0-9]b[z-a]"),
        Err(ParamError::BackwardRange {
            pattern: b"a[0-9]b[z-a]",
            set: b"[z-a]"
        })
    );
    // Neither a range nor backwards.
    assert!(Pattern::new(b"x[!-a]").is_ok());
    assert!(Pattern::new(b"x[a-]").is_ok());
}

#[test]
fn ifaces_lists() {
    assert_eq!(all_patterns(""), Ok(vec![]));
    assert_eq!(all_patterns(" , ,"), Ok(vec![]));
    let list = all_patterns(" eth0 , veth* ,, ens[0-3]").unwrap_or_default();
    let entries: Vec<&[u8]> = list.iter().map(|p| p.as_bytes()).collect();
    assert_eq!(entries, [&b"eth0"[..], b"veth*", b"ens[0-3]"]);
    assert_eq!(
        all_patterns("eth0,veth*, eth0 "),
        Err(ParamError::Duplicate(b"eth0"))
    );
    // The first bad entry stops the list.
    assert_eq!(
        all_patterns("eth0,a/b,veth[,"),
        Err(ParamError::InvalidName {
            what: "ifaces=",
            name: b"a/b"
        })
    );

    let names: Vec<String> = (0..PATTERNS_MAX).map(|i| format!("e{i}")).collect();
    let full = names.join(",");
    assert_eq!(all_patterns(&full).map(|l| l.len()), Ok(PATTERNS_MAX));
    let over = format!("{full},e{PATTERNS_MAX}");
    assert_eq!(all_patterns(&over), Err(ParamError::TooMany));
    // A repeat is reported as one, even past the limit.
    let over_dup = format!("{full},e0");
    assert_eq!(all_patterns(&over_dup), Err(ParamError::Duplicate(b"e0")));
}

#[test]
fn mode_policy_monitor() {
    for (v, m) in [
        (None, Mode::Auto),
        (Some(&b""[..]), Mode::Auto),
        (Some(b"auto"), Mode::Auto),
        (Some(b"native"), Mode::Native),
        (Some(b"generic"), Mode::Generic),
    ] {
        assert_eq!(Mode::parse(v), Ok(m));
    }
    for bad in [&b"Native"[..], b"drv", b"skb", b" auto"] {
        assert_eq!(Mode::parse(Some(bad)), Err(ParamError::UnknownMode(bad)));
    }
    assert_eq!(
        [Mode::Auto, Mode::Native, Mode::Generic].map(Mode::name),
        ["auto", "native", "generic"]
    );

    assert_eq!(parse_policy(None), Ok(false));
    assert_eq!(parse_policy(Some(b"")), Ok(false));
    assert_eq!(parse_policy(Some(b"allow")), Ok(false));
    assert_eq!(parse_policy(Some(b"deny")), Ok(true));
    for bad in [&b"drop"[..], b"Deny", b"1"] {
        assert_eq!(parse_policy(Some(bad)), Err(ParamError::UnknownPolicy(bad)));
    }

    for off in [None, Some(&b""[..]), Some(b"0"), Some(b"n"), Some(b"N")] {
        assert_eq!(parse_monitor(off), Ok(false));
    }
    for on in [&b"1"[..], b"y", b"Y"] {
        assert_eq!(parse_monitor(Some(on)), Ok(true));
    }
    for bad in [&b"2"[..], b"yes", b"true", b"on"] {
        assert_eq!(parse_monitor(Some(bad)), Err(ParamError::BadMonitor(bad)));
    }
}

#[test]
fn messages() {
    let cases: [(ParamError<'_>, &str); 11] = [
        (
            ParamError::UnknownMode(b"drv"),
            "mode=drv: unknown mode; use mode=auto, mode=native or mode=generic",
        ),
        (
            ParamError::UnknownPolicy(b"drop"),
            "policy=drop: unknown policy; use policy=allow or policy=deny",
        ),
        (
            ParamError::BadMonitor(b"yes"),
            "monitor=yes: use monitor=0 (off) or monitor=1 (count, never drop)",
        ),
        (
            ParamError::NameTooLong {
                what: "attach",
                name: b"aaaaaaaaaaaaaaaa",
            },
            "attach: 'aaaaaaaaaaaaaaaa' is longer than 15 bytes, the limit for interface names",
        ),
        (
            ParamError::InvalidName {
                what: "detach",
                name: b"a:b",
            },
            "detach: 'a:b' is not a valid interface name",
        ),
        (
            ParamError::PatternTooLong(b"x*"),
            "ifaces=: pattern 'x*' is longer than 64 bytes; shorten it",
        ),
        (
            ParamError::InvalidPattern(b"a/*"),
            "ifaces=: 'a/*' is not a valid pattern: '/', ':' and blanks cannot occur in interface names",
        ),
        (
            ParamError::UnclosedSet(b"veth[0"),
            "ifaces=: 'veth[0': '[' without a closing ']'; write a set like veth[0-9]",
        ),
        (
            ParamError::BackwardRange {
                pattern: b"ens[9-0]",
                set: b"[9-0]",
            },
            "ifaces=: 'ens[9-0]': a range in '[9-0]' runs backwards; write it low-high like [0-9]",
        ),
        (
            ParamError::Duplicate(b"eth0"),
            "ifaces=: 'eth0' is listed twice",
        ),
        (
            ParamError::TooMany,
            "ifaces=: more than 32 entries; use patterns like veth* instead",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn shown_escapes_like_bstr() {
    assert_eq!(Shown(b"eth0").to_string(), "eth0");
    assert_eq!(
        Shown(b"a\tb\n\rc\x7f\xff ~\x01").to_string(),
        "a\\tb\\n\\rc\\x7f\\xff ~\\x01"
    );
    assert_eq!(
        ParamError::UnknownMode(b"\xc3\xa9").to_string(),
        "mode=\\xc3\\xa9: unknown mode; use mode=auto, mode=native or mode=generic"
    );
}

#[test]
fn interface_names() {
    let n = IfName::new(b"eth0", "attach");
    assert_eq!(
        n.map(|n| n.as_bytes_with_nul().to_vec()),
        Ok(b"eth0\0".to_vec())
    );
    assert_eq!(
        IfName::new(b"", "attach"),
        Err(ParamError::InvalidName {
            what: "attach",
            name: b""
        })
    );
    let mut buf = [0u8; IFNAMSIZ];
    buf[..4].copy_from_slice(b"veth");
    assert_eq!(IfName::from_c(&buf).as_bytes(), b"veth");
    // No NUL: the name is cut at IFNAME_MAX bytes.
    let full = [b'x'; IFNAMSIZ];
    assert_eq!(IfName::from_c(&full).as_bytes(), &full[..IFNAME_MAX]);
    assert_eq!(IfName::from_valid(b"lo").shown().to_string(), "lo");
    assert_eq!(
        IfName::from_valid(b"lo"),
        IfName::from_c(&{
            let mut b = [0u8; IFNAMSIZ];
            b[..2].copy_from_slice(b"lo");
            b
        })
    );
}

#[test]
fn params_match_and_name() {
    let params = Params {
        mode: Mode::Auto,
        deny: false,
        monitor: false,
        patterns: all_patterns("eth0,veth*").unwrap_or_default(),
    };
    assert!(params.matches(b"eth0"));
    assert!(params.matches(b"veth3"));
    assert!(!params.matches(b"eth1"));
    assert!(params.names_literally(b"eth0"));
    assert!(!params.names_literally(b"veth3"));
    assert!(!params.names_literally(b"veth*"));
    let none = Params {
        patterns: Vec::new(),
        ..params
    };
    assert!(!none.matches(b"eth0"));
}
