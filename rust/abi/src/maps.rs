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

/// Most IPv4 prefixes (both directions, both generations): a million in
/// the active generation and a million being written beside it.
pub const V4_MAX: u32 = 1 << 21;
/// Most IPv6 prefixes (both directions, both generations): a million in
/// the active generation and a million being written beside it.
pub const V6_MAX: u32 = 1 << 21;
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
    /// `RuleEntry` per generation and compound-rule bit ([`rule_index`]).
    Rules,
    /// IPv4 prefixes ([`Lpm4Key`] → [`AddrEntry`]).
    V4,
    /// IPv6 prefixes ([`Lpm6Key`] → [`AddrEntry`]).
    V6,
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
    /// Per-CPU verdict and reason counters (`STAT_*`, `REASON_*`).
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
    pub const COUNT: usize = 17;
    /// Every map, in [`MAPS`] order.
    pub const ALL: [MapId; MapId::COUNT] = [
        MapId::Active,
        MapId::Config,
        MapId::Rules,
        MapId::V4,
        MapId::V6,
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

/// The description of each map, by id.
const fn map_spec(id: MapId) -> MapSpec {
    match id {
        MapId::Active => MapSpec {
            name: "xdpg_active",
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            flags: 0,
        },
        MapId::Config => MapSpec {
            name: "xdpg_config",
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: core::mem::size_of::<Config>() as u32,
            max_entries: GENERATIONS,
            flags: 0,
        },
        MapId::Rules => MapSpec {
            name: "xdpg_rules",
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: core::mem::size_of::<RuleEntry>() as u32,
            max_entries: GENERATIONS * MAX_BIT_RULES,
            flags: 0,
        },
        MapId::V4 => MapSpec {
            name: "xdpg_v4",
            map_type: BPF_MAP_TYPE_LPM_TRIE,
            key_size: core::mem::size_of::<Lpm4Key>() as u32,
            value_size: core::mem::size_of::<AddrEntry>() as u32,
            max_entries: V4_MAX,
            flags: BPF_F_NO_PREALLOC,
        },
        MapId::V6 => MapSpec {
            name: "xdpg_v6",
            map_type: BPF_MAP_TYPE_LPM_TRIE,
            key_size: core::mem::size_of::<Lpm6Key>() as u32,
            value_size: core::mem::size_of::<AddrEntry>() as u32,
            max_entries: V6_MAX,
            flags: BPF_F_NO_PREALLOC,
        },
        MapId::Mac => MapSpec {
            name: "xdpg_mac",
            map_type: BPF_MAP_TYPE_HASH,
            key_size: core::mem::size_of::<MacKey>() as u32,
            value_size: 8,
            max_entries: MAC_MAX,
            flags: 0,
        },
        MapId::Proto => MapSpec {
            name: "xdpg_proto",
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: GENERATIONS * 256,
            flags: 0,
        },
        MapId::Ports => MapSpec {
            name: "xdpg_ports",
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: GENERATIONS * PORT_TABLES * 65536,
            flags: 0,
        },
        MapId::Limits => MapSpec {
            name: "xdpg_limits",
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: core::mem::size_of::<LimitConfig>() as u32,
            max_entries: GENERATIONS * MAX_LIMITS,
            flags: 0,
        },
        MapId::Buckets => MapSpec {
            name: "xdpg_buckets",
            map_type: BPF_MAP_TYPE_LRU_HASH,
            key_size: core::mem::size_of::<BucketKey>() as u32,
            value_size: core::mem::size_of::<Bucket>() as u32,
            max_entries: BUCKETS_MAX,
            flags: 0,
        },
        MapId::Ifaces => MapSpec {
            name: "xdpg_ifaces",
            map_type: BPF_MAP_TYPE_HASH,
            key_size: 4,
            value_size: 4,
            max_entries: IFACES_MAX,
            flags: 0,
        },
        MapId::Stats => MapSpec {
            name: "xdpg_stats",
            map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
            key_size: 4,
            value_size: core::mem::size_of::<Counter>() as u32,
            max_entries: STAT_COUNT,
            flags: 0,
        },
        MapId::RuleStats => MapSpec {
            name: "xdpg_rule_stats",
            map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
            key_size: 4,
            value_size: core::mem::size_of::<Counter>() as u32,
            max_entries: MAX_RULE_IDS,
            flags: 0,
        },
        MapId::Scratch => MapSpec {
            name: "xdpg_scratch",
            map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
            key_size: 4,
            value_size: SCRATCH_SIZE,
            max_entries: 1,
            flags: 0,
        },
        MapId::Samples => MapSpec {
            name: "xdpg_samples",
            map_type: BPF_MAP_TYPE_RINGBUF,
            key_size: 0,
            value_size: 0,
            max_entries: SAMPLES_BYTES,
            flags: 0,
        },
        MapId::IfStats => MapSpec {
            name: "xdpg_if_stats",
            map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
            key_size: 4,
            value_size: core::mem::size_of::<IfCounters>() as u32,
            max_entries: IF_STATS_ARRAY,
            flags: 0,
        },
        MapId::IfHash => MapSpec {
            name: "xdpg_if_hash",
            map_type: BPF_MAP_TYPE_PERCPU_HASH,
            key_size: 4,
            value_size: core::mem::size_of::<IfCounters>() as u32,
            max_entries: IF_HASH_MAX,
            flags: 0,
        },
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
