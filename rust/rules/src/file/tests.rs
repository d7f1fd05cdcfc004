// SPDX-License-Identifier: GPL-2.0

use super::*;

const EXAMPLE: &str = r#"
default = "deny"
malformed = "deny"
fragments = "l3"
syn_limit = "syn"

[interfaces]
eth1 = "allow"

[[limit]]
name = "syn"
pps = 100
burst = 200

[[rule]]
action = "allow"
proto = "tcp"
dport = 22
comment = "ssh"

[[rule]]
action = "deny"
src = "203.0.113.0/24"
proto = "tcp"
dport = "20-23"

[[rule]]
action = "deny"
src = ["198.51.100.0/24", "2001:db8::/32"]
"#;

#[test]
fn example_parses() {
    let rs = RuleSet::from_toml(EXAMPLE).expect("example parses");
    assert!(rs.default_deny);
    assert_eq!(rs.rules.len(), 3);
    assert_eq!(rs.rules[1].dport, Some((20, 23)));
    assert_eq!(rs.syn_limit, Some(0));
    assert_eq!(rs.interfaces, vec![("eth1".to_string(), false)]);
}

#[test]
fn mixed_family_list_is_allowed_on_address_only_rules() {
    // Each entry goes to its own family's trie.
    let rs = RuleSet::from_toml(EXAMPLE).expect("parses");
    assert!(rs.rules[2].is_address_only());
}

#[test]
fn export_round_trips() {
    let rs = RuleSet::from_toml(EXAMPLE).expect("parses");
    let again = RuleSet::from_toml(&rs.to_toml()).expect("export parses");
    assert_eq!(rs, again);
}

fn err(text: &str) -> Error {
    RuleSet::from_toml(text).expect_err("must be refused")
}

#[test]
fn errors_name_the_line_and_the_fix() {
    let e = err("default = \"deny\"\n\n[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.1/8\"\n");
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("did you mean 10.0.0.0/8"), "{e}");

    let e = err("[[rule]]\naction = \"deny\"\ndport = 22\n");
    assert!(e.message.contains("need proto"), "{e}");

    let e = err("[[rule]]\naction = \"deny\"\nproto = \"tcp\"\ndport = \"30-20\"\n");
    assert!(e.message.contains("backwards"), "{e}");

    let e = err("[[rule]]\naction = \"limit\"\nsrc = \"10.0.0.0/8\"\n");
    assert!(e.message.contains("needs limit"), "{e}");

    let e = err("[[rule]]\naction = \"deny\"\nsrc_mac = \"zz:00:00:00:00:00\"\n");
    assert!(e.message.contains("not a MAC"), "{e}");

    let e = err("[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.0/8\"\ndst = \"2001:db8::/32\"\n");
    assert!(e.message.contains("mixes IPv4 and IPv6"), "{e}");

    let e = err("deafult = \"deny\"\n");
    assert_eq!(e.line, Some(1), "{e}");
    assert!(e.message.contains("unknown field"), "{e}");
}

/// Line and message of the error `text` gets, after a valid rule 1.
fn line_in_rule_2(text: &str) -> (Option<usize>, String) {
    let file = format!("[[rule]]\naction = \"allow\"\nproto = \"tcp\"\n\n[[rule]]\n{text}");
    let e = err(&file);
    (e.line.map(|l| l - 5), e.message)
}

#[test]
fn errors_name_the_line_of_the_offending_key() {
    // (rule 2's text, line within it: 0 is `[[rule]]`, 1 its first key).
    let cases: &[(&str, usize, &str)] = &[
        (
            "action = \"deny\"\nproto = \"tcp\"\ndport = \"30-20\"\n",
            3,
            "rule 2: dport = \"30-20\": the range is backwards",
        ),
        (
            "action = \"deny\"\nproto = \"tcp\"\n\ncomment = \"x\"\nsport = 70000\n",
            5,
            "rule 2: sport = 70000: ports are 0 to 65535",
        ),
        (
            "comment = \"c\"\naction = \"block\"\n",
            2,
            "rule 2: action = \"block\"",
        ),
        (
            "action = \"deny\"\nproto = \"tcpp\"\n",
            2,
            "rule 2: proto = \"tcpp\"",
        ),
        (
            "action = \"deny\"\nsrc = \"10.0.0.1/8\"\n",
            2,
            "rule 2: src: \"10.0.0.1/8\" has host bits set",
        ),
        ("action = \"deny\"\ndst = []\n", 2, "rule 2: dst = []"),
        (
            "action = \"deny\"\nsrc_mac = \"02:00:5e:10:00:01\"\ndst_mac = \"zz\"\n",
            3,
            "rule 2: \"zz\" is not a MAC",
        ),
        (
            "action = \"limit\"\nlimit = \"nope\"\n",
            2,
            "rule 2: no limit named \"nope\"",
        ),
        (
            "action = \"deny\"\nlimit = \"syn\"\n",
            2,
            "rule 2: limit = ... only goes with",
        ),
        // An entry of a list that spans lines: that entry's line.
        (
            "action = \"deny\"\nsrc = [\n  \"192.0.2.0/24\",\n  \"10.0.0.1/8\",\n]\n",
            4,
            "rule 2: src: \"10.0.0.1/8\"",
        ),
        // Keys that do not fit together: the key the error is about.
        (
            "action = \"deny\"\nsrc = \"10.0.0.0/8\"\nproto = \"tcp\"\ndst = \"2001:db8::/32\"\n",
            4,
            "rule 2: mixes IPv4 and IPv6",
        ),
        (
            "action = \"deny\"\nproto = \"icmp\"\ndport = 22\n",
            3,
            "rule 2: sport/dport need proto",
        ),
        (
            "action = \"deny\"\nproto = \"udp\"\nicmp_type = 8\n",
            3,
            "rule 2: icmp_type needs proto",
        ),
        (
            "action = \"deny\"\nsrc = \"2001:db8::/32\"\nproto = \"icmp\"\n",
            3,
            "rule 2: proto and address family disagree",
        ),
        (
            "action = \"deny\"\nproto = \"tcp\"\nsrc = [\"10.0.0.0/8\", \"10.1.0.0/16\"]\n",
            3,
            "rule 2: address lists are only allowed",
        ),
        // toml's own errors carry the value's span too.
        (
            "action = \"deny\"\nproto = \"icmp\"\nicmp_type = 300\n",
            3,
            "invalid value: integer `300`",
        ),
        (
            "action = \"deny\"\n\nbogus = 1\n",
            3,
            "unknown field `bogus`",
        ),
        // A missing key: the [[rule]] line.
        (
            "action = \"limit\"\nsrc = \"10.0.0.0/8\"\n",
            0,
            "rule 2: action = \"limit\" needs limit = \"NAME\"",
        ),
        (
            "action = \"deny\"\ndport = 22\n",
            0,
            "rule 2: sport/dport need proto",
        ),
        (
            "action = \"deny\"\nicmp_type = 8\n",
            0,
            "rule 2: icmp_type needs proto",
        ),
        (
            "action = \"deny\"\nproto = \"icmp\"\nicmp_code = 0\n",
            0,
            "rule 2: icmp_code needs icmp_type",
        ),
        ("proto = \"tcp\"\n", 0, "missing field `action`"),
    ];
    for (text, line, msg) in cases {
        let (l, m) = line_in_rule_2(text);
        assert_eq!(l, Some(*line), "{text:?}: {m}");
        assert!(m.starts_with(msg), "{text:?}: {m}");
    }
}

#[test]
fn limit_errors_name_the_line_of_the_offending_key() {
    let at = |text: &str| {
        let e = err(&format!("default = \"deny\"\n\n[[limit]]\n{text}"));
        (e.line.map(|l| l - 3), e.message)
    };
    let cases: &[(&str, usize, &str)] = &[
        (
            "name = \"a\"\npps = 1\nburst = 0\n",
            3,
            "limit \"a\": bursts must be 1",
        ),
        (
            "name = \"a\"\nbps = 10\nburst_bytes = 0\n",
            3,
            "limit \"a\": bursts must be 1",
        ),
        (
            "name = \"a\"\nbps = 8589934592\n",
            2,
            "limit \"a\": bursts must be 1",
        ),
        (
            "name = \"a\"\nbps = 10\nburst_bytes = 8589934592\n",
            3,
            "limit \"a\": bursts must be 1",
        ),
        (
            "name = \"a\"\npps = 1\nprefix6 = 64\nprefix4 = 33\n",
            4,
            "limit \"a\": prefix4 is at most 32",
        ),
        (
            "name = \"a\"\npps = 1\nprefix6 = 129\n",
            3,
            "limit \"a\": prefix4 is at most 32",
        ),
        (
            "name = \"a\"\npps = 0\n",
            2,
            "limit \"a\": set pps, bps or both",
        ),
        (
            "name = \"a\"\npps = 1\n\n[[limit]]\nname = \"a\"\npps = 2\n",
            5,
            "limit \"a\" is defined twice",
        ),
        // Missing: the [[limit]] line.
        (
            "name = \"a\"\nprefix4 = 24\n",
            0,
            "limit \"a\": set pps, bps or both",
        ),
        ("pps = 1\n", 0, "missing field `name`"),
    ];
    for (text, line, msg) in cases {
        let (l, m) = at(text);
        assert_eq!(l, Some(*line), "{text:?}: {m}");
        assert!(m.starts_with(msg), "{text:?}: {m}");
    }
}

#[test]
fn command_line_rules_are_checked_as_file_rules() {
    let spec = RuleSpec {
        action: "deny".into(),
        src: vec!["192.0.2.0/24".into(), "10.0.0.1/8".into()],
        ..RuleSpec::default()
    };
    let e = spec.to_rule(&[]).expect_err("host bits");
    assert_eq!(
        e,
        "src: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
    );
    let spec = RuleSpec {
        action: "deny".into(),
        proto: Some("tcp".into()),
        dport: Some("22".into()),
        icmp_code: Some("300".into()),
        ..RuleSpec::default()
    };
    assert_eq!(
        spec.to_rule(&[]).expect_err("code"),
        "icmp_code = \"300\": use a number 0-255"
    );
}

#[test]
fn thousands_of_compound_rules_and_hundreds_of_limits_are_accepted() {
    let mut text = String::new();
    for l in 0..300 {
        text.push_str(&format!("[[limit]]\nname = \"l{l}\"\npps = 10\n"));
    }
    for p in 0..5000 {
        text.push_str(&format!(
            "[[rule]]\naction = \"limit\"\nlimit = \"l{}\"\nproto = \"tcp\"\ndport = {p}\n",
            p % 300
        ));
    }
    let rs = RuleSet::from_toml(&text).expect("accepted");
    assert_eq!((rs.rules.len(), rs.limits.len()), (5000, 300));
    let img = crate::compile(&rs, 0, &|_| None).expect("compiles");
    assert_eq!(img.config.compound, 5000);
    assert_eq!(img.classes.len(), 2 * 5000);
    assert_eq!(img.limits[300].pps, 10);
}
