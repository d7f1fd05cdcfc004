// SPDX-License-Identifier: GPL-2.0
//
// Key and index encodings: every side (program, module, compiler, model,
// CLI) builds and takes apart keys with these and nothing else; and `Pod`,
// the marker of what may be copied to and from map memory. Part of abi.rs
// (included there), so free of crate attributes.

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
