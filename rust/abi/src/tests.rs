// SPDX-License-Identifier: GPL-2.0

//! Round trips of the encodings and of the sysfs lines.

use super::*;

#[test]
fn map_ids_index_the_table() {
    for (i, id) in MapId::ALL.into_iter().enumerate() {
        assert_eq!(id as usize, i);
        assert_eq!(MapId::from_name(id.name()), Some(id));
    }
    assert_eq!(MapId::V4.name(), "xdpg_v4");
    assert_eq!(MapId::IfHash.name(), "xdpg_if_hash");
    assert_eq!(MapId::from_name("nope"), None);
}

#[test]
fn indexes_round_trip() {
    for g in 0..GENERATIONS {
        for t in 0..PORT_TABLES {
            for v in [0u16, 22, 65535] {
                let i = port_index(g, t, v);
                assert!(i < MAPS[MapId::Ports as usize].max_entries);
                assert_eq!(port_index_parts(i), (g, t, v));
                assert_eq!(
                    i as usize,
                    (g * PORTS_PER_GENERATION) as usize + port_offset(t, v)
                );
            }
        }
        for n in [0, 1, RULES_PER_GENERATION - 1] {
            assert_eq!(rule_stats_parts(rule_stats_index(g, n)), (g, n));
        }
        for ifindex in [1, 7, IFACE_IFINDEX_MAX] {
            assert_eq!(iface_key_parts(iface_key(ifindex, g)), (ifindex, g));
        }
        assert!(rule_index(g, MAX_BIT_RULES - 1) < MAPS[MapId::Rules as usize].max_entries);
        assert!(limit_index(g, MAX_LIMITS - 1) < MAPS[MapId::Limits as usize].max_entries);
        assert!(proto_index(g, 255) < MAPS[MapId::Proto as usize].max_entries);
    }
    assert_eq!(port_index(1, PORTS_TCP_DST, 22), (6 + 1) * 65536 + 22);
    assert_eq!(iface_key(5, 1), 5 | 1 << 31);
    assert_eq!(icmp_value(8, 1), 0x0801);
    assert_eq!(icmp_value_parts(icmp_value(8, 1)), (8, 1));
}

#[test]
fn trie_keys_round_trip() {
    let k = Lpm4Key::new(1, DIR_DST, [10, 1, 2, 0], 24);
    assert_eq!(k.prefixlen, 40);
    assert_eq!(k.data, [1, 1, 10, 1, 2, 0, 0, 0]);
    assert_eq!(
        (k.generation(), k.dir(), k.addr(), k.addr_bits()),
        (1, DIR_DST, [10, 1, 2, 0], Some(24))
    );
    assert!(k.is_valid());
    assert!(!Lpm4Key { prefixlen: 49, ..k }.is_valid());
    assert!(!Lpm4Key { prefixlen: 8, ..k }.is_valid());
    let a: [u8; 16] = core::array::from_fn(|i| i as u8);
    let k = Lpm6Key::new(0, DIR_SRC, &a, 64);
    assert_eq!(
        (k.generation(), k.dir(), k.addr(), k.addr_bits()),
        (0, DIR_SRC, a, Some(64))
    );
    assert!(k.is_valid());
    assert!(!Lpm6Key {
        data: lpm6_data(2, 0, &a),
        ..k
    }
    .is_valid());
}

#[test]
fn bytes_of_is_the_value() {
    let k = iface_key(3, 1);
    assert_eq!(bytes_of(&k), &k.to_ne_bytes());
    assert_eq!(
        bytes_of(&MacKey::new(1, DIR_SRC, [1, 2, 3, 4, 5, 6])),
        &[1, 0, 1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn sysfs_lines_round_trip() {
    use sysfs::*;
    let mut s = String::new();
    write_prog_id(&mut s, 42).unwrap();
    assert_eq!(parse_prog_id(&s), Some(42));
    s.clear();
    write_map(&mut s, "xdpg_v4", 7).unwrap();
    assert_eq!(s, "xdpg_v4 7\n");
    assert_eq!(parse_map(&s), Some(("xdpg_v4", 7)));
    s.clear();
    write_link(&mut s, "veth0", 3, MODE_NATIVE, 9).unwrap();
    assert_eq!(s, "veth0 3 native 9\n");
    assert_eq!(
        parse_link(&s),
        Some(Link {
            ifname: "veth0",
            ifindex: 3,
            mode: "native",
            link_id: 9
        })
    );
    assert_eq!(parse_link("veth0 3 native"), None);

    s.clear();
    let mut w = StatusWriter(&mut s);
    w.ifaces(["eth0", "veth*"].into_iter()).unwrap();
    w.mode("auto").unwrap();
    w.policy(true).unwrap();
    w.monitor(false).unwrap();
    w.prog(5, Some(1234)).unwrap();
    w.prog(5, None).unwrap();
    w.attached("eth0", 2, MODE_GENERIC, 11, "load").unwrap();
    w.attaching("eth1", 4).unwrap();
    w.pending_attach("eth2", "sysfs").unwrap();
    w.pending_attach_index(8, "hotplug").unwrap();
    w.pending_detach("eth3", "sysfs").unwrap();
    w.pending_release("eth4", 12).unwrap();
    w.failed("eth5", "EBUSY", "sysfs").unwrap();
    let lines: Vec<_> = s.lines().map(|l| parse_status(l).expect(l)).collect();
    assert_eq!(
        lines,
        [
            StatusLine::Ifaces("eth0,veth*"),
            StatusLine::Mode("auto"),
            StatusLine::Policy("deny"),
            StatusLine::Monitor(false),
            StatusLine::Prog(5, Some(1234)),
            StatusLine::Prog(5, None),
            StatusLine::Attached {
                name: "eth0",
                ifindex: 2,
                mode: "generic",
                link: 11,
                by: "load"
            },
            StatusLine::Attaching("eth1", 4),
            StatusLine::PendingAttach("eth2", "sysfs"),
            StatusLine::PendingAttachIndex(8, "hotplug"),
            StatusLine::PendingDetach("eth3", "sysfs"),
            StatusLine::PendingRelease("eth4", 12),
            StatusLine::Failed("eth5", "EBUSY", "sysfs"),
        ]
    );
    assert_eq!(s.lines().next(), Some("ifaces eth0,veth*"));
    assert_eq!(parse_status("ifaces "), Some(StatusLine::Ifaces("")));
}

#[test]
fn map_create_attr_from_spec() {
    let spec = MapId::V4.spec();
    let a = spec.create_attr();
    assert_eq!(
        (
            a.map_type,
            a.key_size,
            a.value_size,
            a.max_entries,
            a.map_flags
        ),
        (
            BPF_MAP_TYPE_LPM_TRIE,
            core::mem::size_of::<Lpm4Key>() as u32,
            core::mem::size_of::<AddrEntry>() as u32,
            V4_MAX,
            BPF_F_NO_PREALLOC
        )
    );
    assert_eq!(&a.map_name[..8], b"xdpg_v4\0");
    assert_eq!((a.inner_map_fd, a.numa_node), (0, 0));
}

#[test]
fn stat_slots_fold_into_verdicts_and_reasons() {
    let mut slots = vec![Counter::default(); STAT_SLOTS as usize];
    let c = |n| Counter {
        packets: n,
        bytes: n * 100,
    };
    slots[stat_slot(REASON_RULE_ALLOW, OUTCOME_PASS) as usize] = c(1);
    slots[stat_slot(REASON_RULE_DENY, OUTCOME_DROP) as usize] = c(2);
    slots[stat_slot(REASON_DEFAULT_DENY, OUTCOME_MONITOR) as usize] = c(4);
    let s = fold_stats(&slots);
    assert_eq!(s[STAT_PASS as usize], c(5));
    assert_eq!(s[STAT_DROP as usize], c(2));
    assert_eq!(s[REASON_MONITOR as usize], c(4));
    assert_eq!(s[REASON_RULE_ALLOW as usize], c(1));
    assert_eq!(s[REASON_RULE_DENY as usize], c(2));
    assert_eq!(s[REASON_DEFAULT_DENY as usize], c(4));
    assert_eq!(s[REASON_MALFORMED as usize], c(0));
    assert_eq!(MapId::Stats.spec().max_entries, STAT_SLOTS);
}
