// SPDX-License-Identifier: GPL-2.0
//
// The one definition of xdpguard's BPF ABI: program name, maps, their keys and
// values, and counter indices. Used by the XDP program (aya-ebpf), the kernel
// module (through `#[path]`, so keep this file free of crate attributes and
// dependencies) and userspace. All values are `#[repr(C)]` with explicit
// padding so that the byte layout is the same on every side.

/// Name of the XDP program as `bpftool prog show` lists it.
pub const PROG_NAME: &str = "xdpguard";

/// `BPF_MAP_TYPE_HASH` from the kernel UAPI.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_PERCPU_ARRAY` from the kernel UAPI.
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;

/// Key of the IPv4 deny map: a source address in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Key {
    /// The address, most significant byte first.
    pub addr: [u8; 4],
}

/// Key of the IPv6 deny map: a source address in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Key {
    /// The address, most significant byte first.
    pub addr: [u8; 16],
}

/// Value of the deny maps. Any present entry denies; `flags` is reserved (0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenyValue {
    /// Reserved for rule flags; write 0.
    pub flags: u32,
}

/// One per-CPU counter: packets and bytes (frame length at XDP ingress).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted, from the start of the Ethernet header.
    pub bytes: u64,
}

/// Index of the verdict counters in [`MAP_STATS`]: packets passed.
pub const STAT_PASS: u32 = 0;
/// Index of the verdict counters in [`MAP_STATS`]: packets dropped by a rule.
pub const STAT_DROP: u32 = 1;
/// Number of verdict counters.
pub const STAT_COUNT: u32 = 2;
/// Names of the verdict counters, indexed by the `STAT_*` constants.
pub const STAT_NAMES: [&str; STAT_COUNT as usize] = ["pass", "drop"];

/// Description of one BPF map, as the module creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// Map name (at most 15 bytes; `bpftool map show` lists it).
    pub name: &'static str,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub flags: u32,
}

/// Maximum number of IPv4 deny entries.
pub const DENY_V4_MAX: u32 = 65536;
/// Maximum number of IPv6 deny entries.
pub const DENY_V6_MAX: u32 = 65536;

/// Index in [`MAPS`]: IPv4 source deny set.
pub const MAP_DENY_V4: usize = 0;
/// Index in [`MAPS`]: IPv6 source deny set.
pub const MAP_DENY_V6: usize = 1;
/// Index in [`MAPS`]: per-CPU verdict counters.
pub const MAP_STATS: usize = 2;

/// Every map of the program. The XDP program declares the same maps (names are
/// literals there, as aya's `#[map]` wants); `xdpguard-skel` fails the build if
/// the compiled program's map definitions differ from this table.
pub const MAPS: [MapSpec; 3] = [
    MapSpec {
        name: "xdpg_deny_v4",
        map_type: BPF_MAP_TYPE_HASH,
        key_size: core::mem::size_of::<Ipv4Key>() as u32,
        value_size: core::mem::size_of::<DenyValue>() as u32,
        max_entries: DENY_V4_MAX,
        flags: 0,
    },
    MapSpec {
        name: "xdpg_deny_v6",
        map_type: BPF_MAP_TYPE_HASH,
        key_size: core::mem::size_of::<Ipv6Key>() as u32,
        value_size: core::mem::size_of::<DenyValue>() as u32,
        max_entries: DENY_V6_MAX,
        flags: 0,
    },
    MapSpec {
        name: "xdpg_stats",
        map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
        key_size: core::mem::size_of::<u32>() as u32,
        value_size: core::mem::size_of::<Counter>() as u32,
        max_entries: STAT_COUNT,
        flags: 0,
    },
];
