// SPDX-License-Identifier: GPL-2.0
//
// The one definition of xdpguard's BPF ABI: program name, maps, their keys and
// values, actions, reasons and flags. Used by the XDP program (aya-ebpf), the
// kernel module (through `#[path]`, so keep this file free of crate attributes
// and dependencies) and userspace (rule compiler, reference model, CLI).
// All values are `#[repr(C)]` with explicit padding so that the byte layout
// is the same on every side. Addresses and ports are in network byte order
// inside keys; see Documentation/design.rst for the whole picture.

/// Name of the XDP program as `bpftool prog show` lists it.
pub const PROG_NAME: &str = "xdpguard";

/// `BPF_MAP_TYPE_HASH`.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PERCPU_HASH`.
pub const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_LPM_TRIE`.
pub const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const BPF_MAP_TYPE_RINGBUF: u32 = 27;
/// `BPF_F_NO_PREALLOC`, required for LPM tries.
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// Rule sets are double-buffered: every rule key or index carries the
/// generation (0 or 1) it belongs to, and `xdpg_active` says which one
/// packets use. A packet reads it once, so it sees one whole rule set.
pub const GENERATIONS: u32 = 2;

/// Most compound rules (rules with more than one address constraint, or
/// with L4 or MAC constraints) in one generation: one bit each in a `u64`.
pub const MAX_BIT_RULES: u32 = 64;
/// Size of the limiter table of one generation; limiters are numbered
/// 1 to `MAX_LIMITS - 1` (0 is `LIMIT_NONE`).
pub const MAX_LIMITS: u32 = 16;
/// Size of the per-rule counter array. Each generation has its own half:
/// rule `n` (0-based position in the rule set) of generation `g` counts at
/// `g * RULES_PER_GENERATION + n`, and apply zeroes the new half before it
/// switches, so counters start at the swap.
pub const MAX_RULE_IDS: u32 = 16384;
/// Most rules in one rule set.
pub const RULES_PER_GENERATION: u32 = MAX_RULE_IDS / GENERATIONS;
/// Most IPv6 extension headers the program walks before giving up
/// (the packet then counts as malformed).
pub const MAX_EXT_HDRS: u32 = 6;
/// Most VLAN tags (802.1Q / 802.1ad) the program skips.
pub const MAX_VLAN_TAGS: u32 = 2;

/// Action of a rule, of the default policy, or of the malformed policy.
/// `ACTION_NONE` in an address entry means "no address-only rule here".
pub const ACTION_NONE: u8 = 0;
/// Pass the packet (stops evaluation).
pub const ACTION_ALLOW: u8 = 1;
/// Drop the packet.
pub const ACTION_DENY: u8 = 2;
/// Pass the packet if the rule's rate limiter has tokens for its source,
/// else drop it (reason `REASON_RATE_LIMIT`).
pub const ACTION_LIMIT: u8 = 3;

/// Non-first fragments: evaluate with no L4 header (rules that need ports,
/// protocol-specific fields or ICMP types cannot match); the default.
pub const FRAG_L3_ONLY: u8 = 0;
/// Non-first fragments are dropped.
pub const FRAG_DROP: u8 = 1;
/// Non-first fragments pass without evaluation.
pub const FRAG_PASS: u8 = 2;

/// No limiter (in `RuleEntry::limit`, `AddrEntry::limit`, `Config` limits).
/// Limiter 0 is never configured, so an all-zero map means "no limits".
pub const LIMIT_NONE: u8 = 0;

/// Direction byte of address and MAC keys: the source field.
pub const DIR_SRC: u8 = 0;
/// Direction byte of address and MAC keys: the destination field.
pub const DIR_DST: u8 = 1;

/// Port and ICMP tables in `xdpg_ports`, each 65536 entries per generation.
pub const PORTS_TCP_SRC: u32 = 0;
/// TCP destination ports.
pub const PORTS_TCP_DST: u32 = 1;
/// UDP source ports.
pub const PORTS_UDP_SRC: u32 = 2;
/// UDP destination ports.
pub const PORTS_UDP_DST: u32 = 3;
/// ICMP (IPv4), indexed by `type << 8 | code`.
pub const PORTS_ICMP4: u32 = 4;
/// ICMPv6, indexed by `type << 8 | code`.
pub const PORTS_ICMP6: u32 = 5;
/// Number of port/ICMP tables.
pub const PORT_TABLES: u32 = 6;

/// Statistics indices in `xdpg_stats`. The first two are the verdicts
/// actually returned; the rest are reasons. Every packet bumps one verdict
/// and one reason.
pub const STAT_PASS: u32 = 0;
/// Verdict: dropped.
pub const STAT_DROP: u32 = 1;
/// Reason: an allow (or limit, within its rate) rule matched.
pub const REASON_RULE_ALLOW: u32 = 2;
/// Reason: a deny rule matched.
pub const REASON_RULE_DENY: u32 = 3;
/// Reason: no rule matched; default policy allow.
pub const REASON_DEFAULT_ALLOW: u32 = 4;
/// Reason: no rule matched; default policy deny.
pub const REASON_DEFAULT_DENY: u32 = 5;
/// Reason: link-essential traffic (ARP, neighbour/router discovery, MLD,
/// DHCP replies) passed because no rule named it.
pub const REASON_ESSENTIAL: u32 = 6;
/// Reason: a per-source rate limit (of a limit rule or the global limit)
/// ran out.
pub const REASON_RATE_LIMIT: u32 = 7;
/// Reason: the SYN-flood guard's per-source rate ran out.
pub const REASON_SYN_FLOOD: u32 = 8;
/// Reason: malformed or truncated headers, malformed policy applied.
pub const REASON_MALFORMED: u32 = 9;
/// Reason: a non-first fragment under `FRAG_DROP` or `FRAG_PASS`.
pub const REASON_FRAGMENT: u32 = 10;
/// Reason: monitor mode turned a drop into a pass. Counted in addition to
/// the reason that would have dropped.
pub const REASON_MONITOR: u32 = 11;
/// Reason: a map held a value the program does not understand (an
/// unknown action, policy or generation, a limit rule without a
/// configured limiter); the frame is dropped, never passed.
pub const REASON_CORRUPT: u32 = 12;
/// Number of entries in `xdpg_stats`.
pub const STAT_COUNT: u32 = 13;
/// Names of the `xdpg_stats` entries, by index.
pub const STAT_NAMES: [&str; STAT_COUNT as usize] = [
    "pass",
    "drop",
    "rule_allow",
    "rule_deny",
    "default_allow",
    "default_deny",
    "essential",
    "rate_limit",
    "syn_flood",
    "malformed",
    "fragment",
    "monitor",
    "corrupt",
];

/// Per-generation configuration, `xdpg_config[generation]`. All zeroes
/// (a freshly loaded module) means: allow everything, pass malformed
/// packets, no limits.
///
/// The `wild_*` bitmaps hold the compound rules that do *not* constrain a
/// field (so match any value of it); a field lookup's result is ORed with
/// them. A rule with an IPv6 address is in neither IPv4 bitmap, and the
/// other way round.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `ACTION_DENY` to drop packets no rule matches; anything else allows.
    pub default_action: u8,
    /// Non-zero: monitor (dry-run) mode, nothing is dropped.
    pub monitor: u8,
    /// `ACTION_DENY` to drop malformed packets; anything else passes them.
    pub malformed_action: u8,
    /// `FRAG_*` policy for non-first fragments.
    pub frag_policy: u8,
    /// Limiter applied per source to every packet that would pass
    /// (`LIMIT_NONE` for none).
    pub global_limit: u8,
    /// Limiter applied per source to TCP SYNs without ACK that would pass.
    pub syn_limit: u8,
    /// Drop samples per second per CPU into `xdpg_samples` (0: none).
    pub sample_rate: u16,
    /// Compound rules without a source MAC constraint.
    pub wild_mac_src: u64,
    /// Compound rules without a destination MAC constraint.
    pub wild_mac_dst: u64,
    /// Compound rules that can match IPv4 and have no source address.
    pub wild_src4: u64,
    /// Compound rules that can match IPv4 and have no destination address.
    pub wild_dst4: u64,
    /// Compound rules that can match IPv6 and have no source address.
    pub wild_src6: u64,
    /// Compound rules that can match IPv6 and have no destination address.
    pub wild_dst6: u64,
    /// Compound rules without a protocol constraint.
    pub wild_proto: u64,
    /// Compound rules without a source port constraint.
    pub wild_sport: u64,
    /// Compound rules without a destination port constraint.
    pub wild_dport: u64,
    /// Compound rules without an ICMP type/code constraint.
    pub wild_icmp: u64,
    /// Compound rules that can match non-IP frames (MAC constraints only).
    pub nonip: u64,
    /// All compound rules. A field whose `wild_*` set equals it constrains
    /// no rule, so the program skips its lookup.
    pub all: u64,
    /// Which tries have entries in this generation (`TRIE_*` bits); the
    /// program skips lookups in empty ones.
    pub tries: u32,
    /// Identity of the rule set in this generation, chosen by `xdpguard`
    /// when it writes one (0: none, as in a freshly loaded module). The
    /// program does not read it; the CLI uses it to check that its record
    /// of the rule set matches what the kernel holds.
    pub tag: u32,
}

/// Drop samples per second per CPU of a rule set that does not say
/// (`RuleSet::default().samples` in `rust/rules`; a test checks they agree).
pub const DEFAULT_SAMPLE_RATE: u16 = 10;

/// The configuration the module writes into generation 0 at load time for
/// its `policy=` and `monitor=` parameters: exactly what `xdpguard apply`
/// writes for a rule file with no rules and only `default` and `monitor`
/// set (a test of the rule compiler checks this). Malformed frames are
/// dropped, as the rule language's default `malformed = "deny"` says.
pub fn initial_config(default_deny: bool, monitor: bool) -> Config {
    Config {
        default_action: if default_deny {
            ACTION_DENY
        } else {
            ACTION_ALLOW
        },
        monitor: monitor as u8,
        // The rule language drops malformed frames unless told otherwise.
        malformed_action: ACTION_DENY,
        frag_policy: FRAG_L3_ONLY,
        global_limit: LIMIT_NONE,
        syn_limit: LIMIT_NONE,
        sample_rate: DEFAULT_SAMPLE_RATE,
        ..Config::default()
    }
}

/// `Config::tries`: IPv4 source entries exist.
pub const TRIE_SRC4: u32 = 1;
/// `Config::tries`: IPv4 destination entries exist.
pub const TRIE_DST4: u32 = 2;
/// `Config::tries`: IPv6 source entries exist.
pub const TRIE_SRC6: u32 = 4;
/// `Config::tries`: IPv6 destination entries exist.
pub const TRIE_DST6: u32 = 8;

/// What a rule match means: a compound rule,
/// `xdpg_rules[generation * MAX_BIT_RULES + bit]` (bits are assigned in rank
/// order, so the lowest set bit is the best match), or the best
/// address-only rule of a trie entry (`AddrEntry::best`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleEntry {
    /// Precedence: lower wins (see `rank`).
    pub rank: u32,
    /// Index into `xdpg_rule_stats`.
    pub rule_id: u32,
    /// `ACTION_*`.
    pub action: u8,
    /// Limiter index for `ACTION_LIMIT`, else `LIMIT_NONE`.
    pub limit: u8,
    /// Reserved, zero.
    pub _pad: [u8; 6],
}

/// Key of `xdpg_v4`: `data = [generation, direction, address(4), 0, 0]`,
/// `prefixlen = 16 + address prefix length`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lpm4Key {
    /// Significant bits of `data`.
    pub prefixlen: u32,
    /// Generation, direction, address, padding.
    pub data: [u8; 8],
}

/// Key of `xdpg_v6`: `data = [generation, direction, address(16), 0, 0]`,
/// `prefixlen = 16 + address prefix length`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lpm6Key {
    /// Significant bits of `data`.
    pub prefixlen: u32,
    /// Generation, direction, address, padding.
    pub data: [u8; 20],
}

/// Value of the address tries: what the longest matching prefix of an
/// address means, with everything inherited from shorter prefixes already
/// folded in by the rule compiler.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrEntry {
    /// Compound rules whose address constraint for this direction covers
    /// this prefix.
    pub bits: u64,
    /// The best address-only rule covering this prefix (`action` is
    /// `ACTION_NONE` if there is none).
    pub best: RuleEntry,
}

/// Key of `xdpg_mac`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct MacKey {
    /// Generation.
    pub generation: u8,
    /// `DIR_SRC` or `DIR_DST`.
    pub dir: u8,
    /// The MAC address.
    pub mac: [u8; 6],
}

/// A rate limiter, `xdpg_limits[generation * MAX_LIMITS + index]`: token
/// buckets per source address (masked to the prefix lengths).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitConfig {
    /// Packets per second (0: no packet limit).
    pub pps: u32,
    /// Packet burst (bucket size).
    pub burst_packets: u32,
    /// Bytes per second (0: no byte limit).
    pub bps: u64,
    /// Byte burst (bucket size).
    pub burst_bytes: u64,
    /// Sources are grouped by this IPv4 prefix length (32: per address).
    pub prefix4: u8,
    /// Sources are grouped by this IPv6 prefix length (128: per address).
    pub prefix6: u8,
    /// Stable identity of the limiter across rule-set swaps, so buckets
    /// survive an apply that keeps the limiter.
    pub id: u16,
    /// Reserved, zero.
    pub _pad: [u8; 4],
}

/// Key of `xdpg_buckets`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketKey {
    /// `LimitConfig::id`.
    pub limit_id: u16,
    /// 4 or 6.
    pub family: u8,
    /// Reserved, zero.
    pub _pad: u8,
    /// Source address masked to the limiter's prefix, zero-padded.
    pub addr: [u8; 16],
}

/// Value of `xdpg_buckets`: the state of a source's packet and byte
/// limits as GCRA theoretical arrival times (`bpf_ktime_get_ns()` clock).
/// A frame conforms when the time after charging it, less now, is within
/// the burst tolerance; each field is updated with one atomic
/// compare-and-exchange, so CPUs sharing a bucket never lose an update.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Theoretical arrival time of the next packet, in ns.
    pub packet_tat: u64,
    /// Theoretical arrival time of the next byte budget, in ns.
    pub byte_tat: u64,
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

/// Value of `xdpg_if_stats` and `xdpg_if_hash` (per CPU, keyed by the
/// ingress ifindex, `u32`): the verdicts returned on that interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCounters {
    /// Frames passed (`XDP_PASS`, including monitor mode's would-drops).
    pub pass: Counter,
    /// Frames dropped (`XDP_DROP`).
    pub drop: Counter,
}

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

/// Precedence of a rule match; lower wins. Computed by the rule compiler,
/// stored in the maps, compared by the program.
///
/// Most specific first: a MAC constraint outweighs any address, a longer
/// address prefix (source plus destination bits) outweighs any L4
/// constraint, and L4 constraints count 0 (none), 1 (protocol), 2 (port
/// range or ICMP type) or 3 (single port or ICMP type and code). At equal
/// specificity allow beats limit beats deny; then the earlier rule wins.
pub const fn rank(macs: u32, prefix_bits: u32, l4: u32, action: u8, order: u32) -> u32 {
    let specificity = macs * 1024 + prefix_bits * 4 + l4;
    let action_order = match action {
        ACTION_ALLOW => 0,
        ACTION_LIMIT => 1,
        _ => 2,
    };
    ((4095 - specificity) << 20) | (action_order << 18) | (order & 0x3ffff)
}

/// Rank that loses to every rule (the default policy's).
pub const RANK_NONE: u32 = u32::MAX;

// ---------------------------------------------------------------------
// Key and index encodings. Every side (program, module, compiler, model,
// CLI) builds and takes apart keys with these and nothing else.
// ---------------------------------------------------------------------

/// Entries of one port or ICMP table (`PORTS_*`) in one generation.
pub const PORT_TABLE_SIZE: u32 = 65536;
/// Entries of `xdpg_ports` per generation: every table.
pub const PORTS_PER_GENERATION: u32 = PORT_TABLES * PORT_TABLE_SIZE;
/// Entries of `xdpg_proto` per generation: one per IP protocol number.
pub const PROTOS_PER_GENERATION: u32 = 256;

/// Index in `xdpg_ports` of `value` (a port, or [`icmp_value`]) in table
/// `table` (`PORTS_*`) of `generation`.
#[inline(always)]
pub const fn port_index(generation: u32, table: u32, value: u16) -> u32 {
    (generation * PORT_TABLES + table) * PORT_TABLE_SIZE + value as u32
}

/// Offset of `value` in table `table` (`PORTS_*`) within one generation's
/// [`PORTS_PER_GENERATION`] entries of `xdpg_ports`: how the rule
/// compiler's image holds a generation's tables. `port_index(g, t, v)` is
/// `g * PORTS_PER_GENERATION + port_offset(t, v)`.
#[inline(always)]
pub const fn port_offset(table: u32, value: u16) -> usize {
    (table * PORT_TABLE_SIZE + value as u32) as usize
}

/// The generation, table and value a `xdpg_ports` index stands for.
pub const fn port_index_parts(index: u32) -> (u32, u32, u16) {
    (
        index / PORTS_PER_GENERATION,
        (index / PORT_TABLE_SIZE) % PORT_TABLES,
        (index % PORT_TABLE_SIZE) as u16,
    )
}

/// Index of an ICMP or ICMPv6 type and code in the `PORTS_ICMP*` tables.
#[inline(always)]
pub const fn icmp_value(icmp_type: u8, code: u8) -> u16 {
    (icmp_type as u16) << 8 | code as u16
}

/// The ICMP type and code an [`icmp_value`] stands for.
pub const fn icmp_value_parts(value: u16) -> (u8, u8) {
    ((value >> 8) as u8, value as u8)
}

/// Index in `xdpg_proto` of IP protocol `proto` in `generation`.
#[inline(always)]
pub const fn proto_index(generation: u32, proto: u8) -> u32 {
    generation * PROTOS_PER_GENERATION + proto as u32
}

/// Index in `xdpg_rules` of compound-rule bit `bit` of `generation`.
#[inline(always)]
pub const fn rule_index(generation: u32, bit: u32) -> u32 {
    generation * MAX_BIT_RULES + bit
}

/// Index in `xdpg_limits` of limiter `limiter` of `generation`.
#[inline(always)]
pub const fn limit_index(generation: u32, limiter: u32) -> u32 {
    generation * MAX_LIMITS + limiter
}

/// Index in `xdpg_rule_stats` of rule `n` (0-based position in the rule
/// set) of `generation`.
#[inline(always)]
pub const fn rule_stats_index(generation: u32, n: u32) -> u32 {
    generation * RULES_PER_GENERATION + n
}

/// The generation and rule position a `xdpg_rule_stats` index stands for.
pub const fn rule_stats_parts(index: u32) -> (u32, u32) {
    (index / RULES_PER_GENERATION, index % RULES_PER_GENERATION)
}

/// Bit of an `xdpg_ifaces` key that holds the generation.
const IFACE_GENERATION_SHIFT: u32 = 31;
/// Largest ifindex an `xdpg_ifaces` key can hold.
pub const IFACE_IFINDEX_MAX: u32 = (1 << IFACE_GENERATION_SHIFT) - 1;

/// Key of `xdpg_ifaces` for interface `ifindex` (at most
/// [`IFACE_IFINDEX_MAX`]) in `generation`.
#[inline(always)]
pub const fn iface_key(ifindex: u32, generation: u32) -> u32 {
    (ifindex & IFACE_IFINDEX_MAX) | generation << IFACE_GENERATION_SHIFT
}

/// The ifindex and generation of an `xdpg_ifaces` key.
pub const fn iface_key_parts(key: u32) -> (u32, u32) {
    (key & IFACE_IFINDEX_MAX, key >> IFACE_GENERATION_SHIFT)
}

/// Bits of a trie key before the address: the generation and direction
/// bytes.
pub const LPM_HEADER_BITS: u32 = 16;

/// `Lpm4Key::data` of an address (network order) in `generation` and
/// direction `dir` (`DIR_*`).
#[inline(always)]
pub const fn lpm4_data(generation: u32, dir: u8, addr: [u8; 4]) -> [u8; 8] {
    [generation as u8, dir, addr[0], addr[1], addr[2], addr[3], 0, 0]
}

/// `Lpm6Key::data` of an address (network order) in `generation` and
/// direction `dir` (`DIR_*`).
#[inline(always)]
pub const fn lpm6_data(generation: u32, dir: u8, addr: &[u8; 16]) -> [u8; 20] {
    let mut d = [0u8; 20];
    d[0] = generation as u8;
    d[1] = dir;
    let mut i = 0;
    while i < 16 {
        d[2 + i] = addr[i];
        i += 1;
    }
    d
}

/// `prefixlen` of a trie key for an address prefix of `bits` bits.
#[inline(always)]
pub const fn lpm_prefixlen(bits: u32) -> u32 {
    LPM_HEADER_BITS + bits
}

impl Lpm4Key {
    /// The key of `addr/bits` in `generation` and direction `dir`.
    pub const fn new(generation: u32, dir: u8, addr: [u8; 4], bits: u32) -> Self {
        Lpm4Key {
            prefixlen: lpm_prefixlen(bits),
            data: lpm4_data(generation, dir, addr),
        }
    }
    /// Generation byte.
    pub const fn generation(&self) -> u8 {
        self.data[0]
    }
    /// Direction byte (`DIR_*`).
    pub const fn dir(&self) -> u8 {
        self.data[1]
    }
    /// The address, network order.
    pub const fn addr(&self) -> [u8; 4] {
        [self.data[2], self.data[3], self.data[4], self.data[5]]
    }
    /// Prefix length of the address, if `prefixlen` covers the header.
    pub const fn addr_bits(&self) -> Option<u32> {
        self.prefixlen.checked_sub(LPM_HEADER_BITS)
    }
    /// Whether this key is one the compiler can write: header covered,
    /// prefix at most 32 bits, generation and direction in range.
    pub const fn is_valid(&self) -> bool {
        matches!(self.addr_bits(), Some(b) if b <= 32)
            && (self.generation() as u32) < GENERATIONS
            && self.dir() <= DIR_DST
    }
}

impl Lpm6Key {
    /// The key of `addr/bits` in `generation` and direction `dir`.
    pub const fn new(generation: u32, dir: u8, addr: &[u8; 16], bits: u32) -> Self {
        Lpm6Key {
            prefixlen: lpm_prefixlen(bits),
            data: lpm6_data(generation, dir, addr),
        }
    }
    /// Generation byte.
    pub const fn generation(&self) -> u8 {
        self.data[0]
    }
    /// Direction byte (`DIR_*`).
    pub const fn dir(&self) -> u8 {
        self.data[1]
    }
    /// The address, network order.
    pub const fn addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            a[i] = self.data[2 + i];
            i += 1;
        }
        a
    }
    /// Prefix length of the address, if `prefixlen` covers the header.
    pub const fn addr_bits(&self) -> Option<u32> {
        self.prefixlen.checked_sub(LPM_HEADER_BITS)
    }
    /// Whether this key is one the compiler can write: header covered,
    /// prefix at most 128 bits, generation and direction in range.
    pub const fn is_valid(&self) -> bool {
        matches!(self.addr_bits(), Some(b) if b <= 128)
            && (self.generation() as u32) < GENERATIONS
            && self.dir() <= DIR_DST
    }
}

impl MacKey {
    /// The key of `mac` in `generation` and direction `dir` (`DIR_*`).
    #[inline(always)]
    pub const fn new(generation: u32, dir: u8, mac: [u8; 6]) -> Self {
        MacKey {
            generation: generation as u8,
            dir,
            mac,
        }
    }
}

/// `BucketKey::family` of an IPv4 source.
pub const FAMILY_V4: u8 = 4;
/// `BucketKey::family` of an IPv6 source.
pub const FAMILY_V6: u8 = 6;

impl BucketKey {
    /// The bucket of limiter `limit_id` for a source of `family`
    /// (`FAMILY_*`) already masked to the limiter's prefix (IPv4 in the
    /// first four bytes, the rest zero).
    #[inline(always)]
    pub const fn new(limit_id: u16, family: u8, addr: [u8; 16]) -> Self {
        BucketKey {
            limit_id,
            family,
            _pad: 0,
            addr,
        }
    }
}

// ---------------------------------------------------------------------
// Plain data: what may be copied byte for byte to and from map memory.
// ---------------------------------------------------------------------

/// Plain-data types that may be copied to and from map memory.
///
/// # Safety
///
/// Implementors are `repr(C)` (or primitive), have no padding the kernel
/// could misread (every byte is a named field), and are valid for every
/// bit pattern.
pub unsafe trait Pod: Copy + 'static {}

/// The bytes of a plain-data value, as the kernel copies them.
pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding and every byte is initialised; the
    // slice covers exactly the value and borrows it.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

// SAFETY: primitives are plain data.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: arrays of bytes are plain data.
unsafe impl<const N: usize> Pod for [u8; N] {}

/// Declares the ABI types plain data and checks their size and alignment,
/// so a field added without its padding fails the build.
macro_rules! pod {
    ($($t:ty => $size:expr, $align:expr;)*) => {
        $(
            // SAFETY: repr(C), integer and byte-array fields only, every
            // byte a named field: the size assert below proves there is no
            // implicit padding.
            unsafe impl Pod for $t {}
        )*
        const _: () = {
            $(
                assert!(core::mem::size_of::<$t>() == $size);
                assert!(core::mem::align_of::<$t>() == $align);
            )*
        };
    };
}

pod! {
    Config => 112, 8;
    RuleEntry => 16, 4;
    Lpm4Key => 12, 4;
    Lpm6Key => 24, 4;
    AddrEntry => 24, 8;
    MacKey => 8, 1;
    LimitConfig => 32, 8;
    BucketKey => 20, 2;
    Bucket => 16, 8;
    Counter => 16, 8;
    IfCounters => 32, 8;
    Sample => 160, 8;
}

// TRANSITION (issue 14): the old hand-numbered indices, now derived from
// `MapId`. Removed once every user takes a `MapId`.
#[allow(missing_docs)]
mod transition {
    use super::MapId;
    pub const MAP_ACTIVE: usize = MapId::Active as usize;
    pub const MAP_CONFIG: usize = MapId::Config as usize;
    pub const MAP_RULES: usize = MapId::Rules as usize;
    pub const MAP_V4: usize = MapId::V4 as usize;
    pub const MAP_V6: usize = MapId::V6 as usize;
    pub const MAP_MAC: usize = MapId::Mac as usize;
    pub const MAP_PROTO: usize = MapId::Proto as usize;
    pub const MAP_PORTS: usize = MapId::Ports as usize;
    pub const MAP_LIMITS: usize = MapId::Limits as usize;
    pub const MAP_BUCKETS: usize = MapId::Buckets as usize;
    pub const MAP_IFACES: usize = MapId::Ifaces as usize;
    pub const MAP_STATS: usize = MapId::Stats as usize;
    pub const MAP_RULE_STATS: usize = MapId::RuleStats as usize;
    pub const MAP_SCRATCH: usize = MapId::Scratch as usize;
    pub const MAP_SAMPLES: usize = MapId::Samples as usize;
    pub const MAP_IF_STATS: usize = MapId::IfStats as usize;
    pub const MAP_IF_HASH: usize = MapId::IfHash as usize;
}
pub use transition::*;
