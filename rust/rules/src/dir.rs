// SPDX-License-Identifier: GPL-2.0

//! The address tables: prefixes (already resolved, each carrying what its
//! covering prefixes mean) become a multibit trie in an array of cells,
//! one region per generation: a first level indexed by the address's top
//! 16 bits for each direction, then chunks of fixed strides (IPv4 8, 4, 4;
//! IPv6 8 bits each). Every cell is a leaf (an `xdpg_addrv` value index)
//! or a pointer to the next level's chunk (leaf pushing: a chunk starts
//! as copies of the leaf it replaces, and longer prefixes, written later,
//! overwrite their share). Host addresses (/32, /128) are leaves of the
//! last level as long as the chunks on their paths fit, after every
//! shorter prefix of the family; the rest go to a hash, and the leaf above
//! them says so (`CELL_HOSTS`). A lookup therefore reads at most one cell
//! per level and at most one hash entry, however many prefixes there are
//! and however deep they lie.

use rustc_hash::FxHashMap;
use xdpguard_abi::*;

/// Address entries of one generation, interned: value 0 is the empty
/// entry (no prefix covers the address).
pub(crate) struct Values {
    list: Vec<AddrEntry>,
    index: FxHashMap<[u8; 24], u32>,
}

impl Values {
    pub(crate) fn new() -> Values {
        let mut v = Values {
            list: Vec::new(),
            index: FxHashMap::default(),
        };
        v.intern(AddrEntry::default());
        v
    }

    /// The value index of `e`.
    pub(crate) fn intern(&mut self, e: AddrEntry) -> u32 {
        let key: [u8; 24] = bytes_of(&e).try_into().unwrap_or([0; 24]);
        let next = self.list.len() as u32;
        *self.index.entry(key).or_insert_with(|| {
            self.list.push(e);
            next
        })
    }

    /// How many values there are.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The whole `xdpg_addrv` region of a generation.
    pub(crate) fn region(&self) -> Vec<AddrEntry> {
        let mut out = self.list.clone();
        out.resize(ADDR_VALUES as usize, AddrEntry::default());
        out
    }
}

/// One family's table under construction.
pub(crate) struct Table {
    /// Address width in bits (32 or 128).
    width: u32,
    /// Strides after the first level.
    strides: &'static [u32],
    /// Cells of the region (both first levels, then the pool).
    cells: Vec<u32>,
    /// Most cells the region may hold.
    capacity: u32,
    /// Name of the map, for errors.
    map: &'static str,
}

/// Bits of the address covered by the levels up to `level` (0: the first).
fn covered(strides: &[u32], level: usize) -> u32 {
    DIR_L1_BITS + strides[..level].iter().sum::<u32>()
}

impl Table {
    pub(crate) fn v4() -> Table {
        Table::new(32, &V4_STRIDES, V4T_CELLS, "xdpg_v4t")
    }

    pub(crate) fn v6() -> Table {
        Table::new(128, &V6_STRIDES, V6T_CELLS, "xdpg_v6t")
    }

    fn new(width: u32, strides: &'static [u32], capacity: u32, map: &'static str) -> Table {
        Table {
            width,
            strides,
            cells: vec![cell(CELL_LEAF, 0); POOL_START as usize],
            capacity,
            map,
        }
    }

    /// Bits `from..from + n` of `addr` (the address in the low `width`
    /// bits, most significant first).
    fn bits(&self, addr: u128, from: u32, n: u32) -> u32 {
        ((addr >> (self.width - from - n)) & ((1u128 << n) - 1)) as u32
    }

    /// The region offset of the cell of `addr` at `level` on its path,
    /// making the chunks on the way (copies of the leaves they replace).
    fn path(&mut self, dir: u8, addr: u128, level: usize) -> Result<usize, String> {
        let mut at = (l1_offset(dir) + self.bits(addr, 0, DIR_L1_BITS)) as usize;
        for l in 0..level {
            let (kind, payload) = cell_parts(self.cells[at]);
            let base = if kind == CELL_CHILD {
                payload
            } else {
                let base = self.cells.len() as u32;
                let size = 1u32 << self.strides[l];
                if base + size > self.capacity {
                    return Err(format!(
                        "map {} is full: the address table needs more than {} cells \
                         (too many prefixes longer than /{} in distinct ranges)",
                        self.map,
                        self.capacity,
                        covered(self.strides, l)
                    ));
                }
                let leaf = self.cells[at];
                self.cells.extend(std::iter::repeat_n(leaf, size as usize));
                self.cells[at] = cell(CELL_CHILD, base);
                base
            };
            at = (base + self.bits(addr, covered(self.strides, l), self.strides[l])) as usize;
        }
        Ok(at)
    }

    /// Writes prefix `addr/plen` (shorter than the width) with value
    /// `value` over its share of the cells. Prefixes must come in
    /// increasing length.
    pub(crate) fn prefix(
        &mut self,
        dir: u8,
        addr: u128,
        plen: u32,
        value: u32,
    ) -> Result<(), String> {
        let mut level = 0;
        while covered(self.strides, level) < plen {
            level += 1;
        }
        let end = covered(self.strides, level);
        // `addr` is a network address (its bits past `plen` are zero), so
        // its cell is the first of the prefix's share.
        let first = self.path(dir, addr, level)?;
        let span = 1usize << (end - plen);
        for c in &mut self.cells[first..first + span] {
            *c = cell(CELL_LEAF, value);
        }
        Ok(())
    }

    /// Makes host `addr` a leaf of value `value` at the last level if the
    /// chunks its path still needs fit in the region; `false`, with
    /// nothing changed, if they do not.
    pub(crate) fn host_leaf(&mut self, dir: u8, addr: u128, value: u32) -> bool {
        let levels = self.strides.len();
        let mut at = (l1_offset(dir) + self.bits(addr, 0, DIR_L1_BITS)) as usize;
        let mut need = 0u32;
        for l in 0..levels {
            let (kind, payload) = cell_parts(self.cells[at]);
            if kind != CELL_CHILD {
                need = self.strides[l..].iter().map(|&s| 1u32 << s).sum();
                break;
            }
            at = (payload + self.bits(addr, covered(self.strides, l), self.strides[l])) as usize;
        }
        if self.cells.len() as u64 + need as u64 > self.capacity as u64 {
            return false;
        }
        match self.path(dir, addr, levels) {
            Ok(at) => {
                self.cells[at] = cell(CELL_LEAF, value);
                true
            }
            Err(_) => false,
        }
    }

    /// Marks the leaf over host `addr` as having hosts under it.
    pub(crate) fn host(&mut self, dir: u8, addr: u128) {
        let mut at = (l1_offset(dir) + self.bits(addr, 0, DIR_L1_BITS)) as usize;
        for l in 0..self.strides.len() {
            let (kind, payload) = cell_parts(self.cells[at]);
            if kind != CELL_CHILD {
                break;
            }
            at = (payload + self.bits(addr, covered(self.strides, l), self.strides[l])) as usize;
        }
        let (_, payload) = cell_parts(self.cells[at]);
        self.cells[at] = cell(CELL_HOSTS, payload);
    }

    /// The whole region (unused cells zero: leaves of value 0).
    pub(crate) fn region(mut self) -> Vec<u32> {
        self.cells.resize(self.capacity as usize, 0);
        self.cells
    }
}

impl crate::Image {
    /// What the program finds for `addr` (IPv4 in the low 32 bits) as the
    /// source (`DIR_SRC`) or destination (`DIR_DST`) of an IPv4 (`v4`) or
    /// IPv6 frame: the same walk over the cells, then the host hash, then
    /// the value. `None`: the tables hold something the program treats as
    /// corrupt (a pointer past the last level, a value out of range).
    pub fn addr_entry(&self, v4: bool, dir: u8, addr: u128) -> Option<AddrEntry> {
        let (cells, strides, width): (&[u32], &[u32], u32) = if v4 {
            (&self.v4t, &V4_STRIDES, 32)
        } else {
            (&self.v6t, &V6_STRIDES, 128)
        };
        let bits = |from: u32, n: u32| ((addr >> (width - from - n)) & ((1u128 << n) - 1)) as u32;
        let mut c = *cells.get((l1_offset(dir) + bits(0, DIR_L1_BITS)) as usize)?;
        let mut from = DIR_L1_BITS;
        for &stride in strides {
            let (kind, payload) = cell_parts(c);
            if kind != CELL_CHILD {
                break;
            }
            c = *cells.get((payload + bits(from, stride)) as usize)?;
            from += stride;
        }
        let (kind, mut value) = cell_parts(c);
        match kind {
            CELL_LEAF => {}
            CELL_HOSTS => {
                let g = self.generation;
                let found = if v4 {
                    let k = Host4Key::new(g, dir, (addr as u32).to_be_bytes());
                    self.host4.iter().find(|(h, _)| *h == k).map(|(_, v)| *v)
                } else {
                    let k = Host6Key::new(g, dir, addr.to_be_bytes());
                    self.host6.iter().find(|(h, _)| *h == k).map(|(_, v)| *v)
                };
                if let Some(v) = found {
                    value = v;
                }
            }
            _ => return None,
        }
        self.addrv.get(value as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_prefixes_overwrite_their_share_at_every_level() {
        let mut t = Table::v4();
        let a = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128;
        t.prefix(DIR_SRC, a("10.0.0.0"), 8, 1).unwrap();
        t.prefix(DIR_SRC, a("10.1.0.0"), 20, 2).unwrap();
        t.prefix(DIR_SRC, a("10.1.2.0"), 26, 3).unwrap();
        t.prefix(DIR_SRC, a("10.1.2.8"), 30, 4).unwrap();
        let cells = t.region();
        let walk = |addr: u128| {
            let img = crate::Image {
                v4t: cells.clone(),
                addrv: (0..8)
                    .map(|i| AddrEntry {
                        class: i,
                        ..Default::default()
                    })
                    .collect(),
                ..crate::Image::empty(0)
            };
            img.addr_entry(true, DIR_SRC, addr).map(|e| e.class)
        };
        assert_eq!(walk(a("10.200.0.1")), Some(1));
        assert_eq!(walk(a("10.1.15.255")), Some(2));
        assert_eq!(walk(a("10.1.16.0")), Some(1));
        assert_eq!(walk(a("10.1.2.63")), Some(3));
        assert_eq!(walk(a("10.1.2.64")), Some(2));
        assert_eq!(walk(a("10.1.2.9")), Some(4));
        assert_eq!(walk(a("10.1.2.12")), Some(3));
        assert_eq!(walk(a("11.0.0.0")), Some(0));
    }
}
