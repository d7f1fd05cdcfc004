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

// ---------------------------------------------------------------------
// Address tables: a multibit trie in arrays (DIR-16 then fixed strides),
// one region of cells per generation, the host addresses in hashes.
// ---------------------------------------------------------------------

/// Bits of the address the first level indexes.
pub const DIR_L1_BITS: u32 = 16;
/// Cells of one first-level table (one per direction in each region).
pub const DIR_L1_CELLS: u32 = 1 << DIR_L1_BITS;
/// Strides of the IPv4 levels after the first: chunks of 256 cells for
/// /17–/24, 16 cells for /25–/28 and /29–/31 (a /32 is a host).
pub const V4_STRIDES: [u32; 3] = [8, 4, 4];
/// Strides of the IPv6 levels after the first: chunks of 256 cells, one
/// byte each, for /17–/24 up to /121–/127 (a /128 is a host).
pub const V6_STRIDES: [u32; 14] = [8; 14];
/// Where a region's pool of chunks starts: after the first-level tables
/// of the source (`DIR_SRC`) and the destination (`DIR_DST`).
pub const POOL_START: u32 = 2 * DIR_L1_CELLS;

/// Kind of a cell (its top two bits): a leaf, whose payload is an
/// `xdpg_addrv` value index.
pub const CELL_LEAF: u32 = 0;
/// A leaf under which host addresses exist: look the address up in
/// `xdpg_host4`/`xdpg_host6` first; the payload is the value when it is
/// not there.
pub const CELL_HOSTS: u32 = 1;
/// A pointer: the payload is the region offset of the next level's chunk.
pub const CELL_CHILD: u32 = 2;
/// Bits of a cell below the kind.
pub const CELL_KIND_SHIFT: u32 = 30;
/// Mask of a cell's payload.
pub const CELL_PAYLOAD: u32 = (1 << CELL_KIND_SHIFT) - 1;

/// A cell of `kind` (`CELL_*`) with `payload`.
#[inline(always)]
pub const fn cell(kind: u32, payload: u32) -> u32 {
    kind << CELL_KIND_SHIFT | (payload & CELL_PAYLOAD)
}

/// The kind and payload of a cell.
#[inline(always)]
pub const fn cell_parts(c: u32) -> (u32, u32) {
    (c >> CELL_KIND_SHIFT, c & CELL_PAYLOAD)
}

/// Region offset of the first-level table of direction `dir` (`DIR_*`).
#[inline(always)]
pub const fn l1_offset(dir: u8) -> u32 {
    dir as u32 * DIR_L1_CELLS
}

/// Index in `xdpg_v4t` of cell `offset` of `generation`'s region.
#[inline(always)]
pub const fn v4t_index(generation: u32, offset: u32) -> u32 {
    generation * V4T_CELLS + offset
}

/// Index in `xdpg_v6t` of cell `offset` of `generation`'s region.
#[inline(always)]
pub const fn v6t_index(generation: u32, offset: u32) -> u32 {
    generation * V6T_CELLS + offset
}

/// Index in `xdpg_addrv` of value `value` of `generation`.
#[inline(always)]
pub const fn addr_value_index(generation: u32, value: u32) -> u32 {
    generation * ADDR_VALUES + value
}

/// The generation and value an `xdpg_addrv` index stands for.
pub const fn addr_value_parts(index: u32) -> (u32, u32) {
    (index / ADDR_VALUES, index % ADDR_VALUES)
}

impl Host4Key {
    /// The key of host `addr` (network order) in `generation` and
    /// direction `dir`.
    #[inline(always)]
    pub const fn new(generation: u32, dir: u8, addr: [u8; 4]) -> Self {
        Host4Key {
            generation: generation as u8,
            dir,
            _pad: [0; 2],
            addr,
        }
    }
    /// Whether this key is one the compiler can write.
    pub const fn is_valid(&self) -> bool {
        (self.generation as u32) < GENERATIONS
            && self.dir <= DIR_DST
            && self._pad[0] == 0
            && self._pad[1] == 0
    }
}

impl Host6Key {
    /// The key of host `addr` (network order) in `generation` and
    /// direction `dir`.
    #[inline(always)]
    pub const fn new(generation: u32, dir: u8, addr: [u8; 16]) -> Self {
        Host6Key {
            generation: generation as u8,
            dir,
            _pad: [0; 2],
            addr,
        }
    }
    /// Whether this key is one the compiler can write.
    pub const fn is_valid(&self) -> bool {
        (self.generation as u32) < GENERATIONS
            && self.dir <= DIR_DST
            && self._pad[0] == 0
            && self._pad[1] == 0
    }
}

impl ClassKey {
    /// Whether this key is one the compiler can write.
    pub const fn is_valid(&self) -> bool {
        (self.generation as u32) < GENERATIONS
            && (self.family == FAMILY_V4 || self.family == FAMILY_V6 || self.family == FAMILY_NONIP)
            && (self.group as u32) < MAX_GROUPS
            && self._pad == 0
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
    Config => 48, 4;
    RuleEntry => 16, 4;
    ClassKey => 20, 2;
    Host4Key => 8, 1;
    Host6Key => 20, 1;
    AddrEntry => 24, 4;
    MacKey => 8, 1;
    LimitConfig => 32, 8;
    BucketKey => 20, 2;
    Bucket => 16, 8;
    Counter => 16, 8;
    IfCounters => 32, 8;
    Sample => 160, 8;
}
