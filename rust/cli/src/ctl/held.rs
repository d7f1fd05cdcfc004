// SPDX-License-Identifier: GPL-2.0

//! What the rule maps hold, generation by generation, and the digest of
//! a generation's entries.

use serde::{Deserialize, Serialize};
use xdpguard_abi::*;
use xdpguard_rules::Image;

use super::commit::map_err;
use super::Failure;
use crate::Guard;

fn class_owner(k: &ClassKey) -> Option<u32> {
    k.is_valid().then_some(k.generation as u32)
}

fn mac_owner(k: &MacKey) -> Option<u32> {
    (k.generation < 2).then_some(k.generation as u32)
}

/// The generation a host key belongs to; `None`: a key of no generation
/// (or with reserved bytes set), which only another program writes and
/// every commit deletes.
fn host4_owner(k: &Host4Key) -> Option<u32> {
    k.is_valid().then_some(k.generation as u32)
}

fn host6_owner(k: &Host6Key) -> Option<u32> {
    k.is_valid().then_some(k.generation as u32)
}

/// An image with nothing in it, not even the arrays (which [`read_held`]
/// fills for the generations it reads them for).
pub(super) fn blank(g: u32) -> Image {
    Image {
        generation: g,
        config: Config::default(),
        classes: Vec::new(),
        v4t: Vec::new(),
        v6t: Vec::new(),
        addrv: Vec::new(),
        host4: Vec::new(),
        host6: Vec::new(),
        prefixes: [0; 2],
        macs: Vec::new(),
        proto: Vec::new(),
        ports: Vec::new(),
        limits: Vec::new(),
        ifaces: Vec::new(),
    }
}

/// What generation `g` of a freshly loaded module holds, with `config`:
/// all-zero arrays and no keys.
pub fn fresh_image(g: u32, config: Config) -> Image {
    Image {
        config,
        ..Image::empty(g)
    }
}

/// The config a generation without a tag should have, given the one it
/// has: all zeroes, or what the module writes at load for its `policy=`
/// and `monitor=` ([`initial_config`]).
pub(super) fn fresh_config(found: &Config) -> Config {
    if *found == Config::default() {
        *found
    } else {
        initial_config(found.default_action == ACTION_DENY, found.monitor != 0)
    }
}

/// Entries of the keyed maps that belong to no generation.
#[derive(Default)]
pub struct Foreign {
    pub(super) host4: Vec<(Host4Key, u32)>,
    pub(super) host6: Vec<(Host6Key, u32)>,
    pub(super) mac: Vec<(MacKey, u16)>,
    pub(super) classes: Vec<(ClassKey, RuleEntry)>,
}

/// What the rule maps hold now.
pub struct Held {
    /// `xdpg_active[0]` as stored (the program knows only 0 and 1).
    pub active_raw: u32,
    /// Each generation's entries. The keyed maps are always read whole;
    /// the arrays (config, address tables and values, protocols,
    /// ports, limits) only for the
    /// generations asked for, else they are empty.
    pub gens: [Image; 2],
    /// Keys of no generation.
    pub foreign: Foreign,
}

/// Reads the rule maps: the keyed ones whole (in batches), the arrays of
/// the generations `arrays` selects.
pub fn read_held(guard: &Guard, arrays: [bool; 2]) -> Result<Held, Failure> {
    let active_raw: u32 = guard
        .map(MapId::Active)
        .lookup(&0u32)
        .map_err(map_err(MapId::Active))?
        .unwrap_or(0);
    let mut gens = [blank(0), blank(1)];
    for (g, img) in gens.iter_mut().enumerate() {
        if !arrays[g] {
            continue;
        }
        let g = g as u32;
        img.config = guard
            .map(MapId::Config)
            .lookup(&g)
            .map_err(map_err(MapId::Config))?
            .unwrap_or_default();
        /// Entries `first..first + n` of the array `map`.
        fn range<V: Pod + Default>(
            guard: &Guard,
            map: MapId,
            first: u32,
            n: u32,
        ) -> Result<Vec<V>, Failure> {
            guard.map(map).lookup_range(first, n).map_err(map_err(map))
        }
        img.v4t = range(guard, MapId::V4Table, v4t_index(g, 0), V4T_CELLS)?;
        img.v6t = range(guard, MapId::V6Table, v6t_index(g, 0), V6T_CELLS)?;
        img.addrv = range(
            guard,
            MapId::AddrValues,
            addr_value_index(g, 0),
            ADDR_VALUES,
        )?;
        img.proto = range(
            guard,
            MapId::Proto,
            proto_index(g, 0),
            PROTOS_PER_GENERATION,
        )?;
        img.ports = range(
            guard,
            MapId::Ports,
            port_index(g, 0, 0),
            PORTS_PER_GENERATION,
        )?;
        img.limits = range(guard, MapId::Limits, limit_index(g, 0), MAX_LIMITS)?;
    }
    /// A keyed map's entries, by generation (`owner`) and of none.
    #[allow(clippy::type_complexity)]
    fn split<K: Pod + Default, V: Pod + Default>(
        guard: &Guard,
        map: MapId,
        owner: impl Fn(&K) -> Option<u32>,
    ) -> Result<([Vec<(K, V)>; 2], Vec<(K, V)>), Failure> {
        let (mut gens, mut none) = ([Vec::new(), Vec::new()], Vec::new());
        for (k, v) in guard.map(map).entries::<K, V>().map_err(map_err(map))? {
            match owner(&k) {
                Some(g) => gens[g as usize].push((k, v)),
                None => none.push((k, v)),
            }
        }
        Ok((gens, none))
    }
    let mut foreign = Foreign::default();
    let ([h4_0, h4_1], h4) = split(guard, MapId::Host4, host4_owner)?;
    let ([h6_0, h6_1], h6) = split(guard, MapId::Host6, host6_owner)?;
    let ([mac_0, mac_1], mac) = split(guard, MapId::Mac, mac_owner)?;
    let ([cl_0, cl_1], cl) = split(guard, MapId::Classes, class_owner)?;
    let ([if_0, if_1], _) = split(guard, MapId::Ifaces, |&k: &u32| Some(iface_key_parts(k).1))?;
    (foreign.host4, foreign.host6, foreign.mac, foreign.classes) = (h4, h6, mac, cl);
    for (img, (h4, h6, macs, classes, ifaces)) in gens.iter_mut().zip([
        (h4_0, h6_0, mac_0, cl_0, if_0),
        (h4_1, h6_1, mac_1, cl_1, if_1),
    ]) {
        (img.host4, img.host6, img.macs, img.classes, img.ifaces) =
            (h4, h6, macs, classes, ifaces);
    }
    Ok(Held {
        active_raw,
        gens,
        foreign,
    })
}

/// Entries and an order-independent 128-bit sum of one map's entries of
/// one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSum {
    /// Entries summed (array entries: the non-zero ones).
    pub entries: u64,
    /// Two independent wrapping sums of a 64-bit hash of each entry.
    pub sum: [u64; 2],
}

/// [`MapSum`] per map name.
pub type Digest = std::collections::BTreeMap<String, MapSum>;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn entry_hash(seed: u64, key: &[u8], value: &[u8]) -> u64 {
    let mut h = mix64(seed ^ ((key.len() as u64) << 32 | value.len() as u64));
    for part in [key, value] {
        for c in part.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = mix64(h ^ u64::from_le_bytes(w)).wrapping_add(seed);
        }
    }
    h
}

impl MapSum {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.entries += 1;
        self.sum[0] = self.sum[0].wrapping_add(entry_hash(0x9e37_79b9_7f4a_7c15, key, value));
        self.sum[1] = self.sum[1].wrapping_add(entry_hash(0xc2b2_ae3d_27d4_eb4f, key, value));
    }
}

/// The digest of a generation's image: every map's entries of it (array
/// entries that are not zero, by index), summed so that order does not
/// matter. Any changed, added or removed entry changes it.
pub fn digest(img: &Image) -> Digest {
    let g = img.generation;
    let mut d = Digest::new();
    fn array<V: Pod + Default + PartialEq>(d: &mut Digest, map: MapId, base: u32, v: &[V]) {
        let s = d.entry(map.name().to_string()).or_default();
        for (i, x) in v.iter().enumerate() {
            if *x != V::default() {
                s.add(&(base + i as u32).to_ne_bytes(), bytes_of(x));
            }
        }
    }
    fn keyed<K: Pod, V: Pod>(d: &mut Digest, map: MapId, v: &[(K, V)]) {
        let s = d.entry(map.name().to_string()).or_default();
        for (k, x) in v {
            s.add(bytes_of(k), bytes_of(x));
        }
    }
    d.entry(MapId::Config.name().to_string())
        .or_default()
        .add(&g.to_ne_bytes(), bytes_of(&img.config));
    array(&mut d, MapId::V4Table, v4t_index(g, 0), &img.v4t);
    array(&mut d, MapId::V6Table, v6t_index(g, 0), &img.v6t);
    array(
        &mut d,
        MapId::AddrValues,
        addr_value_index(g, 0),
        &img.addrv,
    );
    array(&mut d, MapId::Proto, proto_index(g, 0), &img.proto);
    array(&mut d, MapId::Ports, port_index(g, 0, 0), &img.ports);
    array(&mut d, MapId::Limits, limit_index(g, 0), &img.limits);
    keyed(&mut d, MapId::Host4, &img.host4);
    keyed(&mut d, MapId::Host6, &img.host6);
    keyed(&mut d, MapId::Mac, &img.macs);
    keyed(&mut d, MapId::Classes, &img.classes);
    keyed(&mut d, MapId::Ifaces, &img.ifaces);
    d
}
