// SPDX-License-Identifier: GPL-2.0

//! Round trips of the encodings and of the sysfs lines.

use super::*;

#[test]
fn map_ids_index_the_table() {
    for (i, id) in MapId::ALL.into_iter().enumerate() {
        assert_eq!(id as usize, i);
        assert_eq!(MapId::from_name(id.name()), Some(id));
    }
    assert_eq!(MapId::V4Table.name(), "xdpg_v4t");
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
        assert!(limit_index(g, MAX_LIMITS - 1) < MAPS[MapId::Limits as usize].max_entries);
        assert!(proto_index(g, 255) < MAPS[MapId::Proto as usize].max_entries);
    }
    assert_eq!(port_index(1, PORTS_TCP_DST, 22), (6 + 1) * 65536 + 22);
    assert_eq!(iface_key(5, 1), 5 | 1 << 31);
    assert_eq!(icmp_value(8, 1), 0x0801);
    assert_eq!(icmp_value_parts(icmp_value(8, 1)), (8, 1));
}

#[test]
fn class_keys_are_checked() {
    let k = ClassKey {
        generation: 1,
        family: FAMILY_V6,
        sport: 0x0102,
        ..Default::default()
    };
    assert!(k.is_valid());
    assert_eq!(&bytes_of(&k)[..2], &[1, FAMILY_V6]);
    assert_eq!(&bytes_of(&k)[12..14], &0x0102u16.to_ne_bytes());
    assert!(!ClassKey { generation: 2, ..k }.is_valid());
    assert!(!ClassKey { family: 5, ..k }.is_valid());
    assert!(!ClassKey { _pad: 1, ..k }.is_valid());
    assert!(ClassKey { family: FAMILY_NONIP, ..k }.is_valid());
}

#[test]
fn address_table_encodings_round_trip() {
    let k = Host4Key::new(1, DIR_DST, [10, 1, 2, 3]);
    assert_eq!(bytes_of(&k), &[1, 1, 0, 0, 10, 1, 2, 3]);
    assert!(k.is_valid());
    assert!(!Host4Key::new(2, DIR_DST, [0; 4]).is_valid());
    assert!(!Host4Key { _pad: [1, 0], ..k }.is_valid());
    let a: [u8; 16] = core::array::from_fn(|i| i as u8);
    let k = Host6Key::new(0, DIR_SRC, a);
    assert_eq!(&bytes_of(&k)[4..], &a);
    assert!(k.is_valid());
    for (kind, payload) in [(CELL_LEAF, 0), (CELL_HOSTS, 7), (CELL_CHILD, CELL_PAYLOAD)] {
        assert_eq!(cell_parts(cell(kind, payload)), (kind, payload));
    }
    // Every pool offset fits a payload; the first levels precede the pool.
    assert!(V4T_CELLS - 1 <= CELL_PAYLOAD && V6T_CELLS - 1 <= CELL_PAYLOAD);
    assert_eq!(l1_offset(DIR_DST) + DIR_L1_CELLS, POOL_START);
    assert_eq!(DIR_L1_BITS + V4_STRIDES.iter().sum::<u32>(), 32);
    assert_eq!(DIR_L1_BITS + V6_STRIDES.iter().sum::<u32>(), 128);
    for g in 0..GENERATIONS {
        assert!(v4t_index(g, V4T_CELLS - 1) < MapId::V4Table.spec().max_entries);
        assert!(v6t_index(g, V6T_CELLS - 1) < MapId::V6Table.spec().max_entries);
        let i = addr_value_index(g, ADDR_VALUES - 1);
        assert!(i < MapId::AddrValues.spec().max_entries);
        assert_eq!(addr_value_parts(i), (g, ADDR_VALUES - 1));
    }
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
    let spec = MapId::Host4.spec();
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
            BPF_MAP_TYPE_HASH,
            core::mem::size_of::<Host4Key>() as u32,
            4,
            HOST4_MAX,
            BPF_F_NO_PREALLOC
        )
    );
    assert_eq!(&a.map_name[..11], b"xdpg_host4\0");
    assert_eq!((a.inner_map_fd, a.numa_node), (0, 0));
}

#[test]
fn ranks_give_back_their_action_and_order() {
    for (action, order) in [(ACTION_ALLOW, 0), (ACTION_LIMIT, 8191), (ACTION_DENY, 77)] {
        let r = rank(1, 56, 3, action, order);
        assert_eq!(rank_action(r), action);
        assert_eq!(rank_order(r), order);
    }
    assert_eq!(rank_action(RANK_NONE), ACTION_INVALID);
}
