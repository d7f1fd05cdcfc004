// SPDX-License-Identifier: GPL-2.0

//! Entries that are not what xdpguard wrote, in words.

use rustc_hash::FxHashSet as HashSet;
use xdpguard_abi::*;
use xdpguard_rules::text::{mac_text, proto_name};
use xdpguard_rules::Image;

use super::commit::array_plan;
use super::held::Held;

/// One map entry that is not what xdpguard wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// Its generation (`None`: a key of no generation, or `xdpg_active`).
    pub generation: Option<u32>,
    /// The map.
    pub map: MapId,
    /// The key, in words.
    pub key: String,
    /// The key's bytes in hex, as `bpftool map lookup ... key hex` takes them.
    pub key_hex: String,
    /// What xdpguard wrote (`None`: no such entry).
    pub expected: Option<String>,
    /// What the map holds (`None`: no such entry).
    pub found: Option<String>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: expected {}, found {}",
            self.map.name(),
            self.key,
            self.expected.as_deref().unwrap_or("no entry"),
            self.found.as_deref().unwrap_or("no entry")
        )
    }
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn action_word(a: u8) -> String {
    match a {
        ACTION_NONE => "none".into(),
        ACTION_ALLOW => "allow".into(),
        ACTION_DENY => "deny".into(),
        ACTION_LIMIT => "limit".into(),
        x => format!("{x:#04x} (unknown)"),
    }
}

fn rule_entry_text(e: &RuleEntry) -> String {
    let mut s = format!(
        "rank {:#010x} rule_id {} action {} limit {}",
        e.rank,
        e.rule_id,
        action_word(e.action),
        e.limit
    );
    if e._pad != [0; 1] || e._pad2 != [0; 4] {
        s.push_str(&format!(" pad {} {}", hex(&e._pad), hex(&e._pad2)));
    }
    s
}

fn addr_entry_text(e: &AddrEntry) -> String {
    let mut s = format!("class {}, best {}", e.class, rule_entry_text(&e.best));
    if e._pad != [0; 6] {
        s.push_str(&format!(" pad {}", hex(&e._pad)));
    }
    s
}

/// A class key in words: `generation 1 ipv4 src 3 dport 2` (the fields
/// whose class is not 0), the raw bytes for keys xdpguard does not write.
fn class_key_text(k: &ClassKey) -> String {
    if !k.is_valid() {
        return format!("key {}", hex(bytes_of(k)));
    }
    let family = match k.family {
        FAMILY_V4 => "ipv4",
        FAMILY_V6 => "ipv6",
        _ => "non-ip",
    };
    let mut s = format!("generation {} {family}", k.generation);
    for (name, c) in [
        ("mac_src", k.mac_src),
        ("mac_dst", k.mac_dst),
        ("src", k.src),
        ("dst", k.dst),
        ("proto", k.proto),
        ("sport", k.sport),
        ("dport", k.dport),
        ("icmp", k.icmp),
    ] {
        if c != 0 {
            s.push_str(&format!(" {name} {c}"));
        }
    }
    s
}

fn dir_word(d: u8) -> String {
    match d {
        DIR_SRC => "src".into(),
        DIR_DST => "dst".into(),
        x => format!("direction {x}"),
    }
}

/// A host key in words: `generation 1 src 192.0.2.7` for the keys
/// xdpguard writes, the raw bytes for others.
pub(super) fn host4_key_text(k: &Host4Key) -> String {
    if k.is_valid() {
        host_words(k.generation, k.dir, std::net::Ipv4Addr::from(k.addr).into())
    } else {
        format!("key {}", hex(bytes_of(k)))
    }
}

/// [`host4_key_text`] for IPv6.
pub(super) fn host6_key_text(k: &Host6Key) -> String {
    if k.is_valid() {
        host_words(k.generation, k.dir, std::net::Ipv6Addr::from(k.addr).into())
    } else {
        format!("key {}", hex(bytes_of(k)))
    }
}

fn host_words(generation: u8, dir: u8, ip: std::net::IpAddr) -> String {
    format!("generation {generation} {} {ip}", dir_word(dir))
}

/// An address table cell in words.
fn cell_text(c: &u32) -> String {
    match cell_parts(*c) {
        (CELL_LEAF, v) => format!("leaf value {v}"),
        (CELL_HOSTS, v) => format!("leaf value {v} (hosts below)"),
        (CELL_CHILD, o) => format!("chunk at {o}"),
        (k, p) => format!("{c:#010x} (kind {k} payload {p}: unknown)"),
    }
}

fn mac_key_text(k: &MacKey) -> String {
    format!(
        "generation {} {} {}",
        k.generation,
        dir_word(k.dir),
        mac_text(&k.mac)
    )
}

fn port_key_text(i: u32) -> String {
    let (g, t, p) = port_index_parts(i);
    let what = match t {
        PORTS_TCP_SRC => format!("tcp sport {p}"),
        PORTS_TCP_DST => format!("tcp dport {p}"),
        PORTS_UDP_SRC => format!("udp sport {p}"),
        PORTS_UDP_DST => format!("udp dport {p}"),
        PORTS_ICMP4 => {
            let (ty, code) = icmp_value_parts(p);
            format!("icmp type {ty} code {code}")
        }
        _ => {
            let (ty, code) = icmp_value_parts(p);
            format!("icmpv6 type {ty} code {code}")
        }
    };
    format!("{i} (generation {g}, {what})")
}

/// The fields of two configs that differ, as `(name, expected, found)`,
/// from their `Debug` forms (`Config { a: 1, b: 2 }`).
fn config_fields(want: &Config, have: &Config) -> Vec<(String, String, String)> {
    let fields = |c: &Config| -> Vec<(String, String)> {
        let s = format!("{c:?}");
        let inner = s
            .trim_start_matches("Config")
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .to_string();
        inner
            .split(", ")
            .filter_map(|f| f.split_once(": "))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let (w, h) = (fields(want), fields(have));
    w.iter()
        .zip(&h)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, b)| {
            let num = |v: &str| {
                v.parse::<u64>()
                    .map(|n| {
                        if a.0 == "tag" {
                            format!("{n:08x}")
                        } else if n > 255 {
                            format!("{n:#x}")
                        } else {
                            n.to_string()
                        }
                    })
                    .unwrap_or_else(|_| v.to_string())
            };
            (a.0.clone(), num(&a.1), num(&b.1))
        })
        .collect()
}

/// Every entry in which `found` (what generation `expected.generation`
/// holds) differs from `expected` (what xdpguard wrote into it): arrays
/// index by index, keyed maps key by key (missing and extra keys too).
pub fn drift(expected: &Image, found: &Image) -> Vec<Drift> {
    let g = expected.generation;
    let mut out = Vec::new();
    let gen = Some(g);
    if expected.config != found.config {
        for (name, e, f) in config_fields(&expected.config, &found.config) {
            out.push(Drift {
                generation: gen,
                map: MapId::Config,
                key: format!("{g} field {name}"),
                key_hex: hex(&g.to_ne_bytes()),
                expected: Some(e),
                found: Some(f),
            });
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn array<V: PartialEq + Default>(
        out: &mut Vec<Drift>,
        g: u32,
        map: MapId,
        base: u32,
        want: &[V],
        have: &[V],
        key: impl Fn(u32) -> String,
        text: impl Fn(&V) -> String,
    ) {
        let zero = V::default();
        for i in array_plan(have, want) {
            let k = base + i as u32;
            out.push(Drift {
                generation: Some(g),
                map,
                key: key(k),
                key_hex: hex(&k.to_ne_bytes()),
                expected: Some(text(&want[i])),
                found: Some(text(have.get(i).unwrap_or(&zero))),
            });
        }
    }
    array(
        &mut out,
        g,
        MapId::V4Table,
        v4t_index(g, 0),
        &expected.v4t,
        &found.v4t,
        |k| format!("{k} (generation {g}, cell {})", k % V4T_CELLS),
        cell_text,
    );
    array(
        &mut out,
        g,
        MapId::V6Table,
        v6t_index(g, 0),
        &expected.v6t,
        &found.v6t,
        |k| format!("{k} (generation {g}, cell {})", k % V6T_CELLS),
        cell_text,
    );
    array(
        &mut out,
        g,
        MapId::AddrValues,
        addr_value_index(g, 0),
        &expected.addrv,
        &found.addrv,
        |k| format!("{k} (generation {g}, value {})", addr_value_parts(k).1),
        addr_entry_text,
    );
    array(
        &mut out,
        g,
        MapId::Proto,
        proto_index(g, 0),
        &expected.proto,
        &found.proto,
        |k| {
            format!(
                "{k} (generation {g}, proto {})",
                proto_name((k % PROTOS_PER_GENERATION) as u8)
            )
        },
        |v| format!("class {v}"),
    );
    array(
        &mut out,
        g,
        MapId::Ports,
        port_index(g, 0, 0),
        &expected.ports,
        &found.ports,
        port_key_text,
        |v| format!("class {v}"),
    );
    array(
        &mut out,
        g,
        MapId::Limits,
        limit_index(g, 0),
        &expected.limits,
        &found.limits,
        |k| format!("{k} (generation {g}, limiter {})", k % MAX_LIMITS),
        |l: &LimitConfig| {
            format!(
                "pps {} burst {} bps {} burst_bytes {} prefix4 {} prefix6 {} id {:#06x}",
                l.pps, l.burst_packets, l.bps, l.burst_bytes, l.prefix4, l.prefix6, l.id
            )
        },
    );
    fn keyed<K: Pod, V: Pod + PartialEq>(
        out: &mut Vec<Drift>,
        g: u32,
        map: MapId,
        want: &[(K, V)],
        have: &[(K, V)],
        key: impl Fn(&K) -> String,
        text: impl Fn(&V) -> String,
    ) {
        let now: rustc_hash::FxHashMap<&[u8], &V> =
            have.iter().map(|(k, v)| (bytes_of(k), v)).collect();
        let wanted: HashSet<&[u8]> = want.iter().map(|(k, _)| bytes_of(k)).collect();
        for (k, v) in want {
            match now.get(bytes_of(k)) {
                Some(h) if *h == v => {}
                h => out.push(Drift {
                    generation: Some(g),
                    map,
                    key: key(k),
                    key_hex: hex(bytes_of(k)),
                    expected: Some(text(v)),
                    found: h.map(|h| text(h)),
                }),
            }
        }
        for (k, v) in have.iter().filter(|(k, _)| !wanted.contains(bytes_of(k))) {
            out.push(Drift {
                generation: Some(g),
                map,
                key: key(k),
                key_hex: hex(bytes_of(k)),
                expected: None,
                found: Some(text(v)),
            });
        }
    }
    keyed(
        &mut out,
        g,
        MapId::Host4,
        &expected.host4,
        &found.host4,
        host4_key_text,
        |v| format!("value {v}"),
    );
    keyed(
        &mut out,
        g,
        MapId::Host6,
        &expected.host6,
        &found.host6,
        host6_key_text,
        |v| format!("value {v}"),
    );
    keyed(
        &mut out,
        g,
        MapId::Classes,
        &expected.classes,
        &found.classes,
        class_key_text,
        rule_entry_text,
    );
    keyed(
        &mut out,
        g,
        MapId::Mac,
        &expected.macs,
        &found.macs,
        mac_key_text,
        |v| format!("class {v}"),
    );
    keyed(
        &mut out,
        g,
        MapId::Ifaces,
        &expected.ifaces,
        &found.ifaces,
        |&k| {
            let (ifindex, generation) = iface_key_parts(k);
            format!("{k:#x} (generation {generation}, ifindex {ifindex})")
        },
        |v| action_word((*v).min(255) as u8),
    );
    out
}

/// The entries of no generation, as drift (none of them was written by
/// xdpguard), and an `xdpg_active` the program does not understand.
pub(super) fn foreign_drift(held: &Held) -> Vec<Drift> {
    let mut out = Vec::new();
    if held.active_raw > 1 {
        out.push(Drift {
            generation: None,
            map: MapId::Active,
            key: "0".into(),
            key_hex: hex(&0u32.to_ne_bytes()),
            expected: Some("0 or 1".into()),
            found: Some(held.active_raw.to_string()),
        });
    }
    /// Entries of no generation: none was written by xdpguard.
    fn extra<K: Pod, V>(
        out: &mut Vec<Drift>,
        map: MapId,
        entries: &[(K, V)],
        key: impl Fn(&K) -> String,
        text: impl Fn(&V) -> String,
    ) {
        out.extend(entries.iter().map(|(k, v)| Drift {
            generation: None,
            map,
            key: key(k),
            key_hex: hex(bytes_of(k)),
            expected: None,
            found: Some(text(v)),
        }));
    }
    let f = &held.foreign;
    extra(&mut out, MapId::Host4, &f.host4, host4_key_text, |v| {
        format!("value {v}")
    });
    extra(&mut out, MapId::Host6, &f.host6, host6_key_text, |v| {
        format!("value {v}")
    });
    extra(&mut out, MapId::Mac, &f.mac, mac_key_text, |v| {
        format!("class {v}")
    });
    extra(&mut out, MapId::Classes, &f.classes, class_key_text, rule_entry_text);
    out
}

#[cfg(test)]
mod tests {
    use super::super::held::{digest, fresh_config, fresh_image};
    use super::*;
    use crate::ctl::test_sets::*;

    #[test]
    fn a_generation_holding_its_image_has_no_drift_and_the_same_digest() {
        let want = image(BASE, 1);
        let mut found = want.clone();
        // Read back in another order (a hash walk is not the compiler's).
        found.host4.reverse();
        found.macs.reverse();
        assert_eq!(drift(&want, &found), vec![]);
        assert_eq!(digest(&want), digest(&found));
    }

    #[test]
    fn every_kind_of_out_of_band_write_is_drift_and_changes_the_digest() {
        let want = image(BASE, 1);
        let base = digest(&want);
        // A port table entry cleared (tcp dport 22 of generation 1).
        let mut f = want.clone();
        let i = port_index(0, PORTS_TCP_DST, 22) as usize;
        assert_ne!(f.ports[i], 0);
        f.ports[i] = 0;
        let d = drift(&want, &f);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].map, MapId::Ports);
        assert_eq!(
            d[0].key,
            format!(
                "{} (generation 1, tcp dport 22)",
                port_index(1, PORTS_TCP_DST, 22)
            )
        );
        assert_eq!(
            (d[0].expected.as_deref(), d[0].found.as_deref()),
            (Some("class 1"), Some("class 0"))
        );
        assert_ne!(digest(&f), base);
        // A garbage action byte in an address entry.
        let mut f = want.clone();
        let v = (1..f.addrv.len())
            .find(|&i| f.addrv[i].best.action != ACTION_NONE)
            .expect("an address rule");
        f.addrv[v].best.action = 0x7f;
        let d = drift(&want, &f);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].map, MapId::AddrValues);
        assert!(
            d[0].found
                .as_deref()
                .unwrap()
                .contains("action 0x7f (unknown)"),
            "{d:?}"
        );
        assert_eq!(
            d[0].key,
            format!(
                "{} (generation 1, value {v})",
                addr_value_index(1, v as u32)
            )
        );
        assert_ne!(digest(&f), base);
        // A cell pointing elsewhere.
        let mut f = want.clone();
        let c = f.v4t.iter().position(|&c| c != 0).expect("a cell");
        f.v4t[c] ^= 1;
        let d = drift(&want, &f);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].map, MapId::V4Table);
        assert_ne!(digest(&f), base);
        // An extra host key, and a missing one (a small set's hosts are
        // table leaves: give the expected image a hash entry).
        let mut want = want.clone();
        want.host4
            .push((Host4Key::new(1, DIR_SRC, [203, 0, 113, 9]), 0));
        let mut f = want.clone();
        let k = f.host4[0].0;
        let mut a = k.addr;
        a[3] ^= 1;
        let k = Host4Key::new(k.generation as u32, k.dir, a);
        f.host4.push((k, 0));
        let gone = f.host4.remove(0);
        let d = drift(&want, &f);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d
            .iter()
            .any(|x| x.found.is_none() && x.key == host4_key_text(&gone.0)));
        assert!(d.iter().any(|x| x.expected.is_none()));
        // A rank, a limiter index and a config field.
        let mut f = want.clone();
        f.classes[0].1.rank ^= 1;
        f.limits[3].pps = 9;
        f.config.default_action = ACTION_ALLOW;
        let d = drift(&want, &f);
        assert_eq!(
            d.iter().map(|x| x.map).collect::<Vec<_>>(),
            vec![MapId::Config, MapId::Limits, MapId::Classes],
            "{d:?}"
        );
        assert_eq!(d[0].key, "1 field default_action");
        assert_eq!(
            (d[0].expected.as_deref(), d[0].found.as_deref()),
            (Some("2"), Some("1"))
        );
    }

    #[test]
    fn keys_of_no_generation_are_told_apart() {
        assert_eq!(
            host4_key_text(&Host4Key::new(1, DIR_SRC, [198, 51, 100, 7])),
            "generation 1 src 198.51.100.7"
        );
        assert_eq!(
            host4_key_text(&Host4Key::new(2, DIR_SRC, [198, 51, 100, 7])),
            "key 02 00 00 00 c6 33 64 07"
        );
        assert_eq!(cell_text(&cell(CELL_CHILD, 131072)), "chunk at 131072");
        assert_eq!(
            cell_text(&cell(CELL_HOSTS, 3)),
            "leaf value 3 (hosts below)"
        );
    }

    #[test]
    fn a_fresh_generation_is_checked_against_zeroes() {
        let zero = fresh_image(1, Config::default());
        assert_eq!(
            drift(&fresh_image(1, fresh_config(&zero.config)), &zero),
            vec![]
        );
        let init = fresh_image(0, initial_config(true, false));
        assert_eq!(fresh_config(&init.config), init.config);
        let mut f = init.clone();
        f.ports[5] = 1;
        assert_eq!(drift(&init, &f).len(), 1);
    }
}
