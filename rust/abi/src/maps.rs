// SPDX-License-Identifier: GPL-2.0
//
// The maps of the program: their descriptions, capacities, `MapId` and the
// `MAPS` table it indexes, and the drop-sample record of the ring buffer.
// Part of abi.rs (included there), so free of crate attributes.

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

impl MapSpec {
    /// The `BPF_MAP_CREATE` attr that creates this map (the module and
    /// the CLI's tests create maps from the same description).
    pub fn create_attr(&self) -> crate::uapi::MapCreateAttr {
        crate::uapi::MapCreateAttr {
            map_type: self.map_type,
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries: self.max_entries,
            map_flags: self.flags,
            map_name: crate::uapi::obj_name(self.name),
            ..Default::default()
        }
    }
}

/// Cells of one generation's region of `xdpg_v4t` (4 bytes each): the
/// two first-level tables and the pool of chunks.
pub const V4T_CELLS: u32 = 1 << 21;
/// Cells of one generation's region of `xdpg_v6t`.
pub const V6T_CELLS: u32 = 1 << 20;
/// Distinct address entries of one generation (`xdpg_addrv`).
pub const ADDR_VALUES: u32 = 1 << 16;
/// Most IPv4 host addresses (/32, both directions, both generations): a
/// million in the active generation and a million being written beside it.
pub const HOST4_MAX: u32 = 1 << 21;
/// Most IPv6 host addresses (/128), as for IPv4.
pub const HOST6_MAX: u32 = 1 << 21;
/// Most MAC entries (both directions, both generations).
pub const MAC_MAX: u32 = 8192;
/// Most rate-limit buckets (least recently used ones are evicted).
pub const BUCKETS_MAX: u32 = 65536;
/// Most per-interface default policies.
pub const IFACES_MAX: u32 = 256;
/// Interfaces with an ifindex below this count their verdicts in the
/// per-CPU array `xdpg_if_stats` (index = ifindex; the kernel inlines the
/// lookup, so it costs a few instructions).
pub const IF_STATS_ARRAY: u32 = 1024;
/// Most interfaces with a larger ifindex (namespaces and containers
/// created and deleted for a long time) counted in the per-CPU hash
/// `xdpg_if_hash`, whose entry the first frame on such an interface makes.
pub const IF_HASH_MAX: u32 = 1024;

/// Size of the sample ring buffer in bytes.
pub const SAMPLES_BYTES: u32 = 256 * 1024;
/// Bytes of each sampled frame that are kept.
pub const SAMPLE_CAPTURE: usize = 128;

/// One sampled packet (dropped, or dropped but for monitor mode).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when it was seen.
    pub ts_ns: u64,
    /// Interface it arrived on.
    pub ifindex: u32,
    /// Per-rule counter index of the deciding rule, or `u32::MAX`.
    pub rule_id: u32,
    /// `REASON_*`.
    pub reason: u32,
    /// Frame length.
    pub len: u32,
    /// Bytes of `data` that hold the frame's start.
    pub cap_len: u32,
    /// Non-zero: monitor mode let it pass.
    pub monitor: u32,
    /// The frame's first bytes.
    pub data: [u8; SAMPLE_CAPTURE],
}

/// Size of the scratch value (`MapId::Scratch`).
pub const SCRATCH_SIZE: u32 = 128;

/// The maps of the program, in the order the module creates them and
/// lists them in sysfs (`maps`). `MapId::X as usize` indexes [`MAPS`];
/// a compile-time check below makes sure the two agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(usize)]
pub enum MapId {
    /// The active generation (`u32`, one entry).
    Active,
    /// `Config` per generation.
    Config,
    /// The best compound rule per combination of field classes ([`ClassKey`] → [`RuleEntry`]).
    Classes,
    /// IPv4 address table cells ([`v4t_index`], [`cell`]).
    V4Table,
    /// IPv6 address table cells ([`v6t_index`]).
    V6Table,
    /// Address entries the cells and hosts point at ([`addr_value_index`] → [`AddrEntry`]).
    AddrValues,
    /// IPv4 host addresses ([`Host4Key`] → `u32` value).
    Host4,
    /// IPv6 host addresses ([`Host6Key`] → `u32` value).
    Host6,
    /// MAC addresses ([`MacKey`] → compound-rule bits).
    Mac,
    /// Protocol bitmaps ([`proto_index`]).
    Proto,
    /// Port and ICMP bitmaps ([`port_index`]).
    Ports,
    /// `LimitConfig` per generation ([`limit_index`]).
    Limits,
    /// Rate-limit state per source ([`BucketKey`] → [`Bucket`]).
    Buckets,
    /// Per-interface default action overriding `Config::default_action`: key [`iface_key`], value `ACTION_ALLOW` or `ACTION_DENY` (`u32`).
    Ifaces,
    /// Per-CPU counters by reason and outcome ([`stat_slot`]; [`fold_stats`] gives the totals).
    Stats,
    /// Per-CPU per-rule counters ([`rule_stats_index`]).
    RuleStats,
    /// Per-CPU scratch space of the program (its parse results live there, not on the 512-byte BPF stack). Not an interface.
    Scratch,
    /// Ring buffer of [`Sample`]s of dropped packets.
    Samples,
    /// Per-CPU verdict counters per ingress interface with ifindex below `IF_STATS_ARRAY` (array index = ifindex).
    IfStats,
    /// The same for larger ifindexes (per-CPU hash, `u32` ifindex → `IfCounters`).
    IfHash,
}

impl MapId {
    /// Number of maps.
    pub const COUNT: usize = 20;
    /// Every map, in [`MAPS`] order.
    pub const ALL: [MapId; MapId::COUNT] = [
        MapId::Active,
        MapId::Config,
        MapId::Classes,
        MapId::V4Table,
        MapId::V6Table,
        MapId::AddrValues,
        MapId::Host4,
        MapId::Host6,
        MapId::Mac,
        MapId::Proto,
        MapId::Ports,
        MapId::Limits,
        MapId::Buckets,
        MapId::Ifaces,
        MapId::Stats,
        MapId::RuleStats,
        MapId::Scratch,
        MapId::Samples,
        MapId::IfStats,
        MapId::IfHash,
    ];

    /// Its description.
    pub const fn spec(self) -> &'static MapSpec {
        &MAPS[self as usize]
    }

    /// Its name (`bpftool map show`, sysfs, pin file names).
    pub const fn name(self) -> &'static str {
        MAPS[self as usize].name
    }

    /// The map of that name, if it is one of the program's.
    pub fn from_name(name: &str) -> Option<MapId> {
        MapId::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Size of a key or value type.
const fn size<T>() -> u32 {
    core::mem::size_of::<T>() as u32
}

/// A map description (`MapSpec`'s fields in order).
const fn spec(
    name: &'static str,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
) -> MapSpec {
    MapSpec {
        name,
        map_type,
        key_size,
        value_size,
        max_entries,
        flags,
    }
}

/// The description of each map, by id: one row a map, name, type, key
/// size, value size, entries and flags.
#[rustfmt::skip]
const fn map_spec(id: MapId) -> MapSpec {
    match id {
        MapId::Active => spec("xdpg_active", BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0),
        MapId::Config => spec("xdpg_config", BPF_MAP_TYPE_ARRAY, 4, size::<Config>(), GENERATIONS, 0),
        MapId::Classes => spec("xdpg_classes", BPF_MAP_TYPE_HASH, size::<ClassKey>(), size::<RuleEntry>(), GENERATIONS * CLASS_COMBOS, BPF_F_NO_PREALLOC),
        MapId::V4Table => spec("xdpg_v4t", BPF_MAP_TYPE_ARRAY, 4, 4, GENERATIONS * V4T_CELLS, BPF_F_MMAPABLE),
        MapId::V6Table => spec("xdpg_v6t", BPF_MAP_TYPE_ARRAY, 4, 4, GENERATIONS * V6T_CELLS, BPF_F_MMAPABLE),
        MapId::AddrValues => spec("xdpg_addrv", BPF_MAP_TYPE_ARRAY, 4, size::<AddrEntry>(), GENERATIONS * ADDR_VALUES, BPF_F_MMAPABLE),
        MapId::Host4 => spec("xdpg_host4", BPF_MAP_TYPE_HASH, size::<Host4Key>(), 4, HOST4_MAX, BPF_F_NO_PREALLOC),
        MapId::Host6 => spec("xdpg_host6", BPF_MAP_TYPE_HASH, size::<Host6Key>(), 4, HOST6_MAX, BPF_F_NO_PREALLOC),
        MapId::Mac => spec("xdpg_mac", BPF_MAP_TYPE_HASH, size::<MacKey>(), 2, MAC_MAX, 0),
        MapId::Proto => spec("xdpg_proto", BPF_MAP_TYPE_ARRAY, 4, 2, GENERATIONS * PROTOS_PER_GENERATION, BPF_F_MMAPABLE),
        MapId::Ports => spec("xdpg_ports", BPF_MAP_TYPE_ARRAY, 4, 2, GENERATIONS * PORTS_PER_GENERATION, BPF_F_MMAPABLE),
        MapId::Limits => spec("xdpg_limits", BPF_MAP_TYPE_ARRAY, 4, size::<LimitConfig>(), GENERATIONS * MAX_LIMITS, BPF_F_MMAPABLE),
        MapId::Buckets => spec("xdpg_buckets", BPF_MAP_TYPE_LRU_HASH, size::<BucketKey>(), size::<Bucket>(), BUCKETS_MAX, 0),
        MapId::Ifaces => spec("xdpg_ifaces", BPF_MAP_TYPE_HASH, 4, 4, IFACES_MAX, 0),
        MapId::Stats => spec("xdpg_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, size::<Counter>(), STAT_SLOTS, 0),
        MapId::RuleStats => spec("xdpg_rule_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, size::<Counter>(), MAX_RULE_IDS, 0),
        MapId::Scratch => spec("xdpg_scratch", BPF_MAP_TYPE_PERCPU_ARRAY, 4, SCRATCH_SIZE, 1, 0),
        MapId::Samples => spec("xdpg_samples", BPF_MAP_TYPE_RINGBUF, 0, 0, SAMPLES_BYTES, 0),
        MapId::IfStats => spec("xdpg_if_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, size::<IfCounters>(), IF_STATS_ARRAY, 0),
        MapId::IfHash => spec("xdpg_if_hash", BPF_MAP_TYPE_PERCPU_HASH, 4, size::<IfCounters>(), IF_HASH_MAX, 0),
    }
}

/// Every map of the program, indexed by [`MapId`]. The XDP program declares
/// the same maps (names are literals there, as aya's `#[map]` wants);
/// `xdpguard-skel` fails the build if the compiled program's map
/// definitions differ from this table.
pub const MAPS: [MapSpec; MapId::COUNT] = {
    let mut out = [map_spec(MapId::Active); MapId::COUNT];
    let mut i = 0;
    while i < MapId::COUNT {
        out[i] = map_spec(MapId::ALL[i]);
        i += 1;
    }
    out
};

const _: () = {
    let mut i = 0;
    while i < MapId::COUNT {
        assert!(MapId::ALL[i] as usize == i);
        assert!(MAPS[i].name.len() < 16);
        i += 1;
    }
};
