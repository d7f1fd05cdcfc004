// SPDX-License-Identifier: GPL-2.0

//! The few bpf(2) commands xdpguard's userspace needs, as safe functions.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

const BPF_MAP_LOOKUP_ELEM: i64 = 1;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_MAP_DELETE_ELEM: i64 = 3;
const BPF_MAP_GET_NEXT_KEY: i64 = 4;
const BPF_PROG_TEST_RUN: i64 = 10;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_MAP_GET_FD_BY_ID: i64 = 14;
const BPF_MAP_LOOKUP_BATCH: i64 = 24;
const BPF_MAP_UPDATE_BATCH: i64 = 26;
const BPF_MAP_DELETE_BATCH: i64 = 27;
const BPF_MAP_CREATE: i64 = 0;
const BPF_PROG_LOAD: i64 = 5;
const BPF_OBJ_PIN: i64 = 6;
const BPF_OBJ_GET: i64 = 7;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;

use xdpguard_abi::uapi::{obj_name, MapCreateAttr, ProgLoadAttr, BPF_PROG_TYPE_XDP, BPF_XDP};

#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// Explicit tail: the kernel rejects non-zero bytes past the last
    /// field, and implicit padding would be uninitialised.
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Marks the attribute layouts above. Each has explicit fields for every
/// byte (no implicit padding), checked below.
trait Attr {}
const _: () = {
    assert!(std::mem::size_of::<ElemAttr>() == 32);
    assert!(std::mem::size_of::<IdAttr>() == 12);
    assert!(std::mem::size_of::<BatchAttr>() == 56);
    assert!(std::mem::size_of::<TestRunAttr>() == 80);
    assert!(std::mem::size_of::<ObjAttr>() == 16);
    assert!(std::mem::size_of::<InfoAttr>() == 16);
};
impl Attr for ObjAttr {}
impl Attr for InfoAttr {}
impl Attr for ElemAttr {}
impl Attr for IdAttr {}
impl Attr for BatchAttr {}
impl Attr for TestRunAttr {}
impl Attr for ProgLoadAttr {}
impl Attr for MapCreateAttr {}

fn sys_bpf<T: Attr>(cmd: i64, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live `repr(C)` prefix of `union bpf_attr` for
    // `cmd` and its size is passed; pointers inside it point at buffers the
    // callers keep alive for the call, sized as the map/program expects.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this new fd, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Plain-data types that may be copied to and from map memory.
///
/// # Safety
///
/// Implementors are `repr(C)` (or primitive), have no padding the kernel
/// could misread, and are valid for every bit pattern.
pub unsafe trait Pod: Copy + 'static {}
// SAFETY: primitives and arrays of them are plain data.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl<const N: usize> Pod for [u8; N] {}
// SAFETY: the ABI types are repr(C) with explicit padding fields and only
// integer/array fields.
unsafe impl Pod for xdpguard_abi::Config {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::RuleEntry {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::Lpm4Key {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::Lpm6Key {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::AddrEntry {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::MacKey {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::LimitConfig {}
// SAFETY: as above.
unsafe impl Pod for xdpguard_abi::Counter {}
// SAFETY: as above (two `Counter`s).
unsafe impl Pod for xdpguard_abi::IfCounters {}

fn ptr<T>(v: &T) -> u64 {
    v as *const T as u64
}

/// Bytes per CPU of a per-CPU map value: the kernel pads each to 8.
fn percpu_stride<V>() -> usize {
    std::mem::size_of::<V>().div_ceil(8) * 8
}

/// The `cpus` values of one per-CPU entry as the kernel copied them out.
fn percpu_values<V: Pod>(buf: &[u8], cpus: usize) -> Vec<V> {
    buf.chunks_exact(percpu_stride::<V>())
        .take(cpus)
        .map(|c| {
            // SAFETY: each chunk has `percpu_stride::<V>()` >= size_of::<V>()
            // bytes; `V: Pod` is valid for any bytes; read_unaligned copes
            // with the Vec<u8> alignment.
            unsafe { std::ptr::read_unaligned(c.as_ptr() as *const V) }
        })
        .collect()
}

/// A BPF map opened by id.
pub struct Map {
    fd: OwnedFd,
    /// The id it was opened by.
    pub id: u32,
}

impl Map {
    /// Creates a map as `spec` describes (the module creates the real
    /// ones; tests without the module make their own).
    pub fn create(spec: &xdpguard_abi::MapSpec) -> io::Result<Map> {
        let mut a = MapCreateAttr {
            map_type: spec.map_type,
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            map_flags: spec.flags,
            map_name: obj_name(spec.name),
            ..Default::default()
        };
        let fd = owned(sys_bpf(BPF_MAP_CREATE, &mut a)?);
        let id = map_info_of(&fd)?.id;
        Ok(Map { fd, id })
    }

    /// Opens map `id` (needs CAP_SYS_ADMIN).
    pub fn from_id(id: u32) -> io::Result<Map> {
        let mut a = IdAttr {
            id,
            ..Default::default()
        };
        Ok(Map {
            fd: owned(sys_bpf(BPF_MAP_GET_FD_BY_ID, &mut a)?),
            id,
        })
    }

    /// Looks `key` up; `None` if absent.
    pub fn lookup<K: Pod, V: Pod + Default>(&self, key: &K) -> io::Result<Option<V>> {
        let mut v = V::default();
        let mut a = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: ptr(key),
            value: &mut v as *mut V as u64,
            ..Default::default()
        };
        match sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut a) {
            Ok(_) => Ok(Some(v)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Looks up a per-CPU value: one `V` per possible CPU.
    pub fn lookup_percpu<K: Pod, V: Pod + Default>(&self, key: &K) -> io::Result<Vec<V>> {
        let n = possible_cpus()?;
        let stride = percpu_stride::<V>();
        let mut buf = vec![0u8; stride * n];
        let mut a = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: ptr(key),
            value: buf.as_mut_ptr() as u64,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut a)?;
        Ok(percpu_values(&buf, n))
    }

    /// Reads the array entries `first..first + keys.len()` into `values`
    /// with one `BPF_MAP_LOOKUP_BATCH`. `Ok(false)`: the kernel has no
    /// batch lookup for this map (the caller falls back to single lookups);
    /// fewer entries than asked for is an error.
    ///
    /// # Safety
    ///
    /// `values` must have room for `keys.len()` values of this map.
    unsafe fn lookup_batch(
        &self,
        first: u32,
        keys: &mut [u32],
        values: *mut u8,
    ) -> io::Result<bool> {
        let n = keys.len() as u32;
        // The batch starts at the index after `in_batch` (none: at 0).
        let before = first.wrapping_sub(1);
        let mut next = 0u32;
        let mut a = BatchAttr {
            in_batch: if first == 0 { 0 } else { ptr(&before) },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values as u64,
            count: n,
            map_fd: self.fd.as_raw_fd() as u32,
            ..Default::default()
        };
        match sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut a) {
            Ok(_) => {}
            // The batch reached the end of the array (a short count is
            // reported below).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(524) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        let got = (a.count as usize).min(n as usize);
        if got != n as usize || !keys.iter().copied().eq(first..first.saturating_add(n)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("batch lookup of {n} entries from {first} returned {got}"),
            ));
        }
        Ok(true)
    }

    /// Entries `first..first + n` of a per-CPU array, each as one value per
    /// possible CPU, in one `BPF_MAP_LOOKUP_BATCH` instead of one syscall
    /// per index (`top` reads a thousand every interval); falls back to
    /// those lookups where the kernel has no batch lookup for the map.
    pub fn lookup_percpu_range<V: Pod + Default>(
        &self,
        first: u32,
        n: u32,
    ) -> io::Result<Vec<Vec<V>>> {
        let cpus = possible_cpus()?;
        let per_entry = percpu_stride::<V>() * cpus;
        let mut keys = vec![0u32; n as usize];
        let mut buf = vec![0u8; per_entry * n as usize];
        // SAFETY: `buf` has room for `n` values of `per_entry` bytes.
        if unsafe { !self.lookup_batch(first, &mut keys, buf.as_mut_ptr())? } {
            return (first..first.saturating_add(n))
                .map(|i| self.lookup_percpu(&i))
                .collect();
        }
        Ok(buf
            .chunks(per_entry)
            .map(|c| percpu_values(c, cpus))
            .collect())
    }

    /// Entries `first..first + n` of an array map (not per-CPU), in
    /// `BPF_MAP_LOOKUP_BATCH` calls of at most 64k entries; falls back to
    /// one lookup per index where the kernel has no batch lookup.
    pub fn lookup_range<V: Pod + Default>(&self, first: u32, n: u32) -> io::Result<Vec<V>> {
        const CHUNK: u32 = 1 << 16;
        let mut out: Vec<V> = Vec::with_capacity(n as usize);
        let mut keys = vec![0u32; CHUNK.min(n) as usize];
        let mut vals = vec![V::default(); CHUNK.min(n) as usize];
        while (out.len() as u32) < n {
            let at = first + out.len() as u32;
            let want = (n - out.len() as u32).min(CHUNK);
            let got = want as usize;
            // SAFETY: `vals` has room for `CHUNK >= want` values.
            if unsafe { !self.lookup_batch(at, &mut keys[..got], vals.as_mut_ptr().cast())? } {
                if !out.is_empty() {
                    return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
                }
                return (first..first.saturating_add(n))
                    .map(|i| Ok(self.lookup::<u32, V>(&i)?.unwrap_or_default()))
                    .collect();
            }
            out.extend_from_slice(&vals[..got]);
        }
        Ok(out)
    }

    /// Inserts or replaces `key`.
    pub fn update<K: Pod, V: Pod>(&self, key: &K, value: &V) -> io::Result<()> {
        let mut a = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: ptr(key),
            value: ptr(value),
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
    }

    /// Deletes `key`; absent keys are not an error.
    pub fn delete<K: Pod>(&self, key: &K) -> io::Result<()> {
        let mut a = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: ptr(key),
            ..Default::default()
        };
        match sys_bpf(BPF_MAP_DELETE_ELEM, &mut a) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
            _ => Ok(()),
        }
    }

    /// Every key of the map.
    pub fn keys<K: Pod + Default>(&self) -> io::Result<Vec<K>> {
        Ok(self.keys_upto(usize::MAX)?.0)
    }

    /// The map's keys, at most `cap` of them; the flag says whether the
    /// map has more.
    pub fn keys_upto<K: Pod + Default>(&self, cap: usize) -> io::Result<(Vec<K>, bool)> {
        let mut out = Vec::new();
        let mut cur: Option<K> = None;
        loop {
            if out.len() >= cap {
                return Ok((out, true));
            }
            let mut next = K::default();
            let mut a = ElemAttr {
                map_fd: self.fd.as_raw_fd() as u32,
                key: cur.as_ref().map_or(0, ptr),
                value: &mut next as *mut K as u64,
                ..Default::default()
            };
            match sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut a) {
                Ok(_) => {
                    out.push(next);
                    cur = Some(next);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((out, false)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Every entry of the map, read in batches of 64k with
    /// `BPF_MAP_LOOKUP_BATCH` (one syscall per batch instead of two per
    /// entry); falls back to [`Map::keys`] and lookups where the map type
    /// has no batch lookup.
    pub fn entries<K: Pod + Default, V: Pod + Default>(&self) -> io::Result<Vec<(K, V)>> {
        const CHUNK: usize = 1 << 16;
        let mut out: Vec<(K, V)> = Vec::new();
        let mut keys = vec![K::default(); CHUNK];
        let mut vals = vec![V::default(); CHUNK];
        let mut cursor = K::default();
        let mut first = true;
        loop {
            let mut next = K::default();
            let mut a = BatchAttr {
                in_batch: if first { 0 } else { ptr(&cursor) },
                out_batch: &mut next as *mut K as u64,
                keys: keys.as_mut_ptr() as u64,
                values: vals.as_mut_ptr() as u64,
                count: CHUNK as u32,
                map_fd: self.fd.as_raw_fd() as u32,
                ..Default::default()
            };
            let r = sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut a);
            let n = (a.count as usize).min(CHUNK);
            match r {
                Ok(_) => {
                    out.extend(keys[..n].iter().copied().zip(vals[..n].iter().copied()));
                    cursor = next;
                    first = false;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    out.extend(keys[..n].iter().copied().zip(vals[..n].iter().copied()));
                    return Ok(out);
                }
                Err(e)
                    if first
                        && matches!(
                            e.raw_os_error(),
                            Some(524) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                        ) =>
                {
                    let mut out = Vec::new();
                    for k in self.keys::<K>()? {
                        if let Some(v) = self.lookup::<K, V>(&k)? {
                            out.push((k, v));
                        }
                    }
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes many keys in few syscalls (absent keys are an error, as
    /// the kernel reports them; callers delete keys they just listed).
    pub fn delete_batch<K: Pod>(&self, keys: &[K]) -> io::Result<()> {
        const CHUNK: usize = 1 << 16;
        for chunk in keys.chunks(CHUNK) {
            let mut a = BatchAttr {
                keys: chunk.as_ptr() as u64,
                count: chunk.len() as u32,
                map_fd: self.fd.as_raw_fd() as u32,
                ..Default::default()
            };
            match sys_bpf(BPF_MAP_DELETE_BATCH, &mut a) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(524) | Some(libc::EOPNOTSUPP)) => {
                    for k in chunk {
                        self.delete(k)?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Like [`Map::update_batch`], calling `progress(done)` after each
    /// chunk of `chunk` entries.
    pub fn update_batch_progress<K: Pod, V: Pod>(
        &self,
        keys: &[K],
        values: &[V],
        chunk: usize,
        progress: &mut dyn FnMut(usize),
    ) -> io::Result<()> {
        let mut done = 0;
        for (k, v) in keys.chunks(chunk.max(1)).zip(values.chunks(chunk.max(1))) {
            self.update_batch(k, v)?;
            done += k.len();
            progress(done);
        }
        Ok(())
    }

    /// Updates many entries in few syscalls (falls back to one by one where
    /// the map type has no batch support).
    pub fn update_batch<K: Pod, V: Pod>(&self, keys: &[K], values: &[V]) -> io::Result<()> {
        assert_eq!(keys.len(), values.len());
        const CHUNK: usize = 1 << 16;
        let mut i = 0;
        while i < keys.len() {
            let end = (i + CHUNK).min(keys.len());
            let mut a = BatchAttr {
                keys: keys[i..].as_ptr() as u64,
                values: values[i..].as_ptr() as u64,
                count: (end - i) as u32,
                map_fd: self.fd.as_raw_fd() as u32,
                ..Default::default()
            };
            match sys_bpf(BPF_MAP_UPDATE_BATCH, &mut a) {
                Ok(_) => i = end,
                // ENOTSUPP (524, kernel-internal): no batch op for this map type.
                Err(e) if matches!(e.raw_os_error(), Some(524) | Some(libc::EOPNOTSUPP)) => {
                    for j in i..end {
                        self.update(&keys[j], &values[j])?;
                    }
                    i = end;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sets per-CPU array entries `keys` to zero on every CPU
    /// (`value_size` bytes per CPU).
    pub fn zero_percpu(&self, keys: &[u32], value_size: usize) -> io::Result<()> {
        let stride = value_size.div_ceil(8) * 8 * possible_cpus()?;
        let zeros = vec![0u8; stride * keys.len()];
        let mut a = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: zeros.as_ptr() as u64,
            count: keys.len() as u32,
            map_fd: self.fd.as_raw_fd() as u32,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_BATCH, &mut a).map(|_| ())
    }
}

/// What `BPF_OBJ_GET_INFO_BY_FD` says about a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Map id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// Name (at most 15 bytes).
    pub name: String,
}

/// What `BPF_OBJ_GET_INFO_BY_FD` says about a program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgInfo {
    /// Program id.
    pub id: u32,
    /// Bytes of JIT-compiled machine code (0: not JIT-compiled).
    pub jited_len: u32,
    /// Bytes of verified (translated) BPF instructions.
    pub xlated_len: u32,
    /// Name.
    pub name: String,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
}

fn c_name(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `BPF_OBJ_GET_INFO_BY_FD` into a zeroed buffer of 256 bytes (larger than
/// the 6.12 `bpf_prog_info` and `bpf_map_info`; the kernel fills what it
/// knows and leaves pointer fields, which stay zero, alone).
fn obj_info(fd: &OwnedFd) -> io::Result<[u8; 256]> {
    let mut buf = [0u64; 32];
    let mut a = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: 256,
        info: buf.as_mut_ptr() as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    let mut out = [0u8; 256];
    for (i, w) in buf.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    Ok(out)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn path_c(path: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens the BPF object pinned at `path` (`BPF_OBJ_GET`).
pub fn obj_get(path: &std::path::Path) -> io::Result<OwnedFd> {
    let c = path_c(path)?;
    let mut a = ObjAttr {
        pathname: c.as_ptr() as u64,
        ..Default::default()
    };
    Ok(owned(sys_bpf(BPF_OBJ_GET, &mut a)?))
}

/// Map info of the map behind `fd`.
pub fn map_info_of(fd: &OwnedFd) -> io::Result<MapInfo> {
    let b = obj_info(fd)?;
    Ok(MapInfo {
        map_type: u32_at(&b, 0),
        id: u32_at(&b, 4),
        key_size: u32_at(&b, 8),
        value_size: u32_at(&b, 12),
        max_entries: u32_at(&b, 16),
        flags: u32_at(&b, 20),
        name: c_name(&b[24..40]),
    })
}

impl Map {
    /// Opens the map pinned at `path`.
    pub fn from_pin(path: &std::path::Path) -> io::Result<Map> {
        let fd = obj_get(path)?;
        let id = map_info_of(&fd)?.id;
        Ok(Map { fd, id })
    }

    /// Pins the map at `path` in a BPF file system (`BPF_OBJ_PIN`).
    pub fn pin(&self, path: &std::path::Path) -> io::Result<()> {
        let c = path_c(path)?;
        let mut a = ObjAttr {
            pathname: c.as_ptr() as u64,
            bpf_fd: self.fd.as_raw_fd() as u32,
            file_flags: 0,
        };
        sys_bpf(BPF_OBJ_PIN, &mut a).map(|_| ())
    }

    /// Type, sizes and name of the map.
    pub fn info(&self) -> io::Result<MapInfo> {
        map_info_of(&self.fd)
    }
}

/// A BPF program opened by id.
pub struct Prog {
    fd: OwnedFd,
}

/// Result of one `BPF_PROG_TEST_RUN`.
pub struct TestRun {
    /// The program's return value (XDP action).
    pub retval: u32,
    /// Average ns per run, as the kernel measured it.
    pub duration_ns: u32,
}

impl Prog {
    /// Opens program `id` (needs CAP_SYS_ADMIN).
    pub fn from_id(id: u32) -> io::Result<Prog> {
        let mut a = IdAttr {
            id,
            ..Default::default()
        };
        Ok(Prog {
            fd: owned(sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut a)?),
        })
    }

    /// Id, sizes and name of the program.
    pub fn info(&self) -> io::Result<ProgInfo> {
        let b = obj_info(&self.fd)?;
        Ok(ProgInfo {
            id: u32_at(&b, 4),
            jited_len: u32_at(&b, 16),
            xlated_len: u32_at(&b, 20),
            name: c_name(&b[64..80]),
            verified_insns: u32_at(&b, 216),
        })
    }

    /// Loads the smallest XDP program, `return XDP_PASS`: the baseline
    /// benchmarks compare against.
    pub fn load_xdp_pass() -> io::Result<Prog> {
        // r0 = 2 (XDP_PASS); exit.
        let insns: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
        let license = b"GPL\0";
        let mut a = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: 2,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: obj_name("xdp_pass"),
            expected_attach_type: BPF_XDP,
            ..Default::default()
        };
        Ok(Prog {
            fd: owned(sys_bpf(BPF_PROG_LOAD, &mut a)?),
        })
    }

    /// Runs the program `repeat` times on a copy of `frame`.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> io::Result<TestRun> {
        let mut out = vec![0u8; frame.len() + 256];
        let mut a = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: frame.len() as u32,
            data_size_out: out.len() as u32,
            data_in: frame.as_ptr() as u64,
            data_out: out.as_mut_ptr() as u64,
            repeat,
            ..Default::default()
        };
        sys_bpf(BPF_PROG_TEST_RUN, &mut a)?;
        Ok(TestRun {
            retval: a.retval,
            duration_ns: a.duration,
        })
    }
}

/// Number of possible CPUs (per-CPU map values come in this many).
pub fn possible_cpus() -> io::Result<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut n = 0;
    for part in s.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap_or(0) - a.parse::<usize>().unwrap_or(0) + 1,
            None => 1,
        };
    }
    Ok(n.max(1))
}

/// Consumer side of a BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`), by mmap.
///
/// Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position
/// (written by us), page 1 the producer position, then the data area,
/// mapped twice so that records never wrap. Each record has an 8-byte
/// header: length with BUSY (bit 31) and DISCARD (bit 30) flags, then the
/// record, padded to 8 bytes.
pub struct RingBuf {
    _map: Map,
    cons: *mut u64,
    prod: *const u64,
    data: *const u8,
    mask: u64,
    len: usize,
    base: *mut libc::c_void,
    prod_base: *mut libc::c_void,
}

impl RingBuf {
    /// Maps the ring buffer `map` of `size` data bytes.
    pub fn new(map: Map, size: usize) -> io::Result<RingBuf> {
        let page = 4096;
        let fd = map.fd.as_raw_fd();
        // SAFETY: mapping a ring buffer fd as the kernel documents: one
        // writable consumer page at offset 0 and, read-only, the producer
        // page plus twice the data area at offset one page. The results are
        // checked before use and unmapped in Drop.
        let (base, prod_base) = unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let prod = libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                page as i64,
            );
            if prod == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                libc::munmap(base, page);
                return Err(e);
            }
            (base, prod)
        };
        Ok(RingBuf {
            _map: map,
            cons: base as *mut u64,
            prod: prod_base as *const u64,
            // SAFETY: the data area starts one page into the second mapping.
            data: unsafe { (prod_base as *const u8).add(page) },
            mask: size as u64 - 1,
            len: page + 2 * size,
            base,
            prod_base,
        })
    }

    /// Calls `f` with every record available now; returns how many.
    pub fn poll(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        self.poll_while(|r| {
            f(r);
            true
        })
    }

    /// Calls `f` with the records available now until it returns false;
    /// the record it refused stays in the buffer for the next reader.
    /// Returns how many records were consumed.
    pub fn poll_while(&mut self, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        use std::sync::atomic::{AtomicU64, Ordering};
        // SAFETY: both positions are 8-byte aligned words in our mappings,
        // shared with the kernel, so they are accessed atomically.
        let (cons, prod) = unsafe {
            (
                &*(self.cons as *const AtomicU64),
                &*(self.prod as *const AtomicU64),
            )
        };
        let mut pos = cons.load(Ordering::Acquire);
        let end = prod.load(Ordering::Acquire);
        let mut n = 0;
        while pos < end {
            // SAFETY: `pos & mask` is inside the data area, which is mapped
            // twice, so the header and a record of up to the area's size
            // that starts there are readable without wrapping.
            let hdr = unsafe {
                &*(self.data.add((pos & self.mask) as usize) as *const std::sync::atomic::AtomicU32)
            };
            let word = hdr.load(Ordering::Acquire);
            if word & (1 << 31) != 0 {
                break; // still being written
            }
            let len = (word & !(3 << 30)) as usize;
            if word & (1 << 30) == 0 {
                // SAFETY: see above; `len` bytes follow the 8-byte header.
                let rec = unsafe {
                    std::slice::from_raw_parts(self.data.add((pos & self.mask) as usize + 8), len)
                };
                if !f(rec) {
                    break;
                }
                n += 1;
            }
            pos += ((len + 8 + 7) & !7) as u64;
            cons.store(pos, Ordering::Release);
        }
        n
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the two mappings made in `new`.
        unsafe {
            libc::munmap(self.base, 4096);
            libc::munmap(self.prod_base, self.len);
        }
    }
}
