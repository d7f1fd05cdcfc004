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
/// `BPF_F_NO_PREALLOC`: hash entries allocated as they are added.
pub const BPF_F_NO_PREALLOC: u32 = 1;
/// `BPF_F_MMAPABLE`: an array whose values userspace may mmap(2). The
/// per-generation arrays (rules, address tables and values, protocols,
/// ports, limits) carry it: the CLI reads and writes their megabytes as
/// memory instead of one bpf(2) copy per entry (the program's lookups
/// are the same inlined array lookups).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Rule sets are double-buffered: every rule key or index carries the
/// generation (0 or 1) it belongs to, and `xdpg_active` says which one
/// packets use. A packet reads it once, so it sees one whole rule set.
pub const GENERATIONS: u32 = 2;

/// Entries of `xdpg_classes` per generation: the combinations of field
/// classes under which some compound rule (a rule with more than one
/// address constraint, or with L4 or MAC constraints) matches. A rule
/// set whose compound rules need more is refused by the compiler.
pub const CLASS_COMBOS: u32 = 1 << 16;
/// Most classes of one field (ids 0 to `MAX_CLASSES - 1`; class 0 is the
/// class of the values no compound rule names).
pub const MAX_CLASSES: u32 = 1 << 16;
/// Most groups of compound rules (`Config::group_mask`): the program
/// makes one `xdpg_classes` lookup per group.
pub const MAX_GROUPS: u32 = 8;
/// Size of the limiter table of one generation; limiters are numbered
/// 1 to `MAX_LIMITS - 1` (0 is `LIMIT_NONE`).
pub const MAX_LIMITS: u32 = 512;
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
pub const LIMIT_NONE: u16 = 0;

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

/// Statistics indices as the CLI shows them (`Guard::stats`, `status`):
/// the first two are the verdicts actually returned, the rest reasons;
/// every packet counts in one verdict and one reason. The program counts
/// each packet once, in the slot of its reason and outcome
/// ([`stat_slot`]); [`fold_stats`] derives these totals from the slots.
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
/// Number of statistics ([`STAT_NAMES`]).
pub const STAT_COUNT: u32 = 13;

/// Outcome of a packet in its [`stat_slot`]: passed.
pub const OUTCOME_PASS: u32 = 0;
/// Outcome: dropped.
pub const OUTCOME_DROP: u32 = 1;
/// Outcome: it would have been dropped, but monitor mode passed it.
pub const OUTCOME_MONITOR: u32 = 2;
/// Number of outcomes.
pub const OUTCOMES: u32 = 3;
/// Entries of `xdpg_stats`: one per reason and outcome.
pub const STAT_SLOTS: u32 = STAT_COUNT * OUTCOMES;

/// Index in `xdpg_stats` of the packets of `reason` (`REASON_*`) that had
/// `outcome` (`OUTCOME_*`): one counter update per packet.
#[inline(always)]
pub const fn stat_slot(reason: u32, outcome: u32) -> u32 {
    reason * OUTCOMES + outcome
}

/// The statistics ([`STAT_NAMES`] order) that the `xdpg_stats` slots
/// (summed over CPUs, [`STAT_SLOTS`] of them, in index order) add up to:
/// each reason is the sum of its outcomes, pass the passed and monitored
/// packets, drop the dropped ones, monitor the monitored ones.
pub fn fold_stats(slots: &[Counter]) -> [Counter; STAT_COUNT as usize] {
    let mut out = [Counter::default(); STAT_COUNT as usize];
    let mut add = |i: u32, c: &Counter| {
        let o = &mut out[i as usize];
        o.packets = o.packets.wrapping_add(c.packets);
        o.bytes = o.bytes.wrapping_add(c.bytes);
    };
    for (i, c) in slots.iter().enumerate().take(STAT_SLOTS as usize) {
        let (reason, outcome) = (i as u32 / OUTCOMES, i as u32 % OUTCOMES);
        add(reason, c);
        match outcome {
            OUTCOME_DROP => add(STAT_DROP, c),
            OUTCOME_MONITOR => {
                add(STAT_PASS, c);
                add(REASON_MONITOR, c);
            }
            _ => add(STAT_PASS, c),
        }
    }
    out
}
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
/// Compound rules are classified by field classes: each field lookup
/// (address entry, MAC, protocol, port, ICMP table) yields the id of the
/// value's class, the set of compound rules that accept the value, and
/// `xdpg_classes` maps the frame's combination of classes to the best
/// compound rule of their intersection. Class 0 of a field is the class
/// of the values no rule names (the rules that do not constrain it);
/// `empty_default` says where that class is empty, so that a frame in it
/// matches no compound rule and no further lookup is made.
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
    /// Drop samples per second per CPU into `xdpg_samples` (0: none).
    pub sample_rate: u16,
    /// Limiter applied per source to every packet that would pass
    /// (`LIMIT_NONE` for none).
    pub global_limit: u16,
    /// Limiter applied per source to TCP SYNs without ACK that would pass.
    pub syn_limit: u16,
    /// Number of groups of compound rules (`group_mask`, `group_need`).
    pub groups: u8,
    /// Reserved, zero.
    pub _pad: u8,
    /// Number of compound rules (0: `xdpg_classes` is not consulted).
    pub compound: u32,
    /// The field lookups some compound rule needs (`FIELD_*` bits of the
    /// MAC, protocol, port and ICMP fields; the address tables are
    /// searched whenever `tries` says they hold entries).
    pub lookups: u32,
    /// `FIELD_*` bits of the fields whose class 0 is empty: every
    /// compound rule constrains the field (`FIELD_NONIP`: no compound
    /// rule matches a frame that is not IP).
    pub empty_default: u32,
    /// Which lookup tables have entries in this generation (`TRIE_*`
    /// bits and [`TABLE_IFACES`]); the program skips lookups in empty ones.
    pub tries: u32,
    /// Identity of the rule set in this generation, chosen by `xdpguard`
    /// when it writes one (0: none, as in a freshly loaded module). The
    /// program does not read it; the CLI uses it to check that its record
    /// of the rule set matches what the kernel holds.
    pub tag: u32,
    /// The `ClassKey` fields (`KEY_*` bits) each group's keys hold.
    pub group_mask: [u8; MAX_GROUPS as usize],
    /// The `KEY_*` fields every rule of the group constrains: class 0 in
    /// one of them means the group has no match.
    pub group_need: [u8; MAX_GROUPS as usize],
}

/// `Config::group_mask`/`group_need`: `ClassKey::mac_src`.
pub const KEY_MAC_SRC: u8 = 1 << 0;
/// `ClassKey::mac_dst`.
pub const KEY_MAC_DST: u8 = 1 << 1;
/// `ClassKey::src`.
pub const KEY_SRC: u8 = 1 << 2;
/// `ClassKey::dst`.
pub const KEY_DST: u8 = 1 << 3;
/// `ClassKey::proto`.
pub const KEY_PROTO: u8 = 1 << 4;
/// `ClassKey::sport`.
pub const KEY_SPORT: u8 = 1 << 5;
/// `ClassKey::dport`.
pub const KEY_DPORT: u8 = 1 << 6;
/// `ClassKey::icmp`.
pub const KEY_ICMP: u8 = 1 << 7;

/// `Config::lookups`/`empty_default`: the source MAC.
pub const FIELD_MAC_SRC: u32 = 1 << 0;
/// The destination MAC.
pub const FIELD_MAC_DST: u32 = 1 << 1;
/// The IPv4 source address.
pub const FIELD_SRC4: u32 = 1 << 2;
/// The IPv4 destination address.
pub const FIELD_DST4: u32 = 1 << 3;
/// The IPv6 source address.
pub const FIELD_SRC6: u32 = 1 << 4;
/// The IPv6 destination address.
pub const FIELD_DST6: u32 = 1 << 5;
/// The IP protocol.
pub const FIELD_PROTO: u32 = 1 << 6;
/// The TCP or UDP source port.
pub const FIELD_SPORT: u32 = 1 << 7;
/// The TCP or UDP destination port.
pub const FIELD_DPORT: u32 = 1 << 8;
/// The ICMP or ICMPv6 type and code.
pub const FIELD_ICMP: u32 = 1 << 9;
/// `empty_default` only: frames that are not IP.
pub const FIELD_NONIP: u32 = 1 << 10;

/// `ClassKey::family` of a frame that is not IP.
pub const FAMILY_NONIP: u8 = 0;

/// Key of `xdpg_classes`: a frame's class in each field of a group's
/// `group_mask` (0 in the others) in one generation, address family and
/// group. The value is the best compound rule of the group (`RuleEntry`)
/// accepting every value of every class; a missing key means none does.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassKey {
    /// Generation.
    pub generation: u8,
    /// `FAMILY_V4`, `FAMILY_V6` or `FAMILY_NONIP`.
    pub family: u8,
    /// Source MAC class.
    pub mac_src: u16,
    /// Destination MAC class.
    pub mac_dst: u16,
    /// Source address class (of the family's table).
    pub src: u16,
    /// Destination address class.
    pub dst: u16,
    /// Protocol class.
    pub proto: u16,
    /// Source port class (TCP and UDP).
    pub sport: u16,
    /// Destination port class.
    pub dport: u16,
    /// ICMP type and code class (ICMP and ICMPv6).
    pub icmp: u16,
    /// Group (below `Config::groups`).
    pub group: u8,
    /// Reserved, zero.
    pub _pad: u8,
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
        empty_default: 0,
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
/// `Config::tries`: per-interface default policies exist (`xdpg_ifaces`).
pub const TABLE_IFACES: u32 = 16;

/// What a rule match means: the best compound rule of a combination of
/// field classes (a value of `xdpg_classes`), or the best address-only
/// rule of an address entry (`AddrEntry::best`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleEntry {
    /// Precedence: lower wins (see `rank`).
    pub rank: u32,
    /// Index into `xdpg_rule_stats`.
    pub rule_id: u32,
    /// `ACTION_*`.
    pub action: u8,
    /// Reserved, zero.
    pub _pad: [u8; 1],
    /// Limiter index for `ACTION_LIMIT`, else `LIMIT_NONE`.
    pub limit: u16,
    /// Reserved, zero.
    pub _pad2: [u8; 4],
}

/// Key of `xdpg_host4`: an IPv4 host address (a /32 of the rule set) of
/// one generation and direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host4Key {
    /// Generation.
    pub generation: u8,
    /// `DIR_SRC` or `DIR_DST`.
    pub dir: u8,
    /// Reserved, zero.
    pub _pad: [u8; 2],
    /// The address, network order.
    pub addr: [u8; 4],
}

/// Key of `xdpg_host6`: an IPv6 host address (a /128 of the rule set).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host6Key {
    /// Generation.
    pub generation: u8,
    /// `DIR_SRC` or `DIR_DST`.
    pub dir: u8,
    /// Reserved, zero.
    pub _pad: [u8; 2],
    /// The address, network order.
    pub addr: [u8; 16],
}

/// Value of `xdpg_addrv`: what the longest matching prefix of an address
/// means, with everything inherited from shorter prefixes already folded
/// in by the rule compiler. Value 0 of each generation is all zero: no
/// prefix covers the address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrEntry {
    /// Class of the prefix's addresses in the compound rules' constraints
    /// on this direction and family: the rules whose constraint covers the
    /// prefix, with those that have none (`CLASS_NONE`: no rule).
    pub class: u16,
    /// Reserved, zero.
    pub _pad: [u8; 6],
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

/// `ACTION_*` code of no action: what [`rank_action`] gives for a rank
/// `rank` cannot make.
pub const ACTION_INVALID: u8 = 0xff;

/// The `ACTION_*` code a rank was made with ([`ACTION_INVALID`] for one
/// `rank` cannot make), without a branch. The program reads a compound
/// rule's action and rule this way, from the one number it keeps of the
/// best match.
#[inline(always)]
pub const fn rank_action(rank: u32) -> u8 {
    const BY_ORDER: u32 = ACTION_ALLOW as u32
        | (ACTION_LIMIT as u32) << 8
        | (ACTION_DENY as u32) << 16
        | (ACTION_INVALID as u32) << 24;
    (BY_ORDER >> (((rank >> 18) & 3) * 8)) as u8
}

/// The rule order (position in the rule set) a rank was made with.
#[inline(always)]
pub const fn rank_order(rank: u32) -> u32 {
    rank & 0x3ffff
}

/// Rank that loses to every rule (the default policy's).
pub const RANK_NONE: u32 = u32::MAX;

// The maps and their table (maps.rs), the key encodings and `Pod`
// (keys.rs): parts of this file, included so that the module's `#[path]`
// and the crate see one ABI.
include!("maps.rs");
include!("keys.rs");
