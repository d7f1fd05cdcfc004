// SPDX-License-Identifier: GPL-2.0

//! BPF maps: open by id or pin, look up, update, delete and walk, one
//! entry at a time or in batches; arrays made with `BPF_F_MMAPABLE` are
//! read and written as mapped memory.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
};

use xdpguard_abi::uapi::{
    BatchAttr, IdAttr, MapElemAttr, ObjAttr, BPF_MAP_CREATE, BPF_MAP_DELETE_BATCH,
    BPF_MAP_DELETE_ELEM, BPF_MAP_GET_FD_BY_ID, BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_BATCH,
    BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_BATCH, BPF_MAP_UPDATE_ELEM, BPF_OBJ_PIN,
};
use xdpguard_abi::{BPF_F_MMAPABLE, BPF_MAP_TYPE_ARRAY};

use super::{
    map_info_of, obj_get, owned, path_c, possible_cpus, ptr, sys_bpf, MapInfo, Pod, ENOTSUPP,
};

/// Entries per `BPF_MAP_*_BATCH` call.
const BATCH: usize = 1 << 16;
/// [`BATCH`] as the kernel's count type.
const BATCH_U32: u32 = BATCH as u32;

/// Whether `e` says the map type has no batch update or delete.
fn no_batch(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOTSUPP) | Some(libc::EOPNOTSUPP))
}

/// Whether `e` says the map type has no batch lookup (older kernels say
/// `EINVAL` for some types).
fn no_batch_lookup(e: &io::Error) -> bool {
    no_batch(e) || e.raw_os_error() == Some(libc::EINVAL)
}

/// The kernel's spacing of `size`-byte values: per CPU in per-CPU
/// values, per element in an mmapped array; each is padded to 8.
fn value_stride(size: usize) -> usize {
    size.div_ceil(8) * 8
}

/// Bytes per CPU of a per-CPU map value.
fn percpu_stride<V>() -> usize {
    value_stride(std::mem::size_of::<V>())
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
    pub(super) fd: OwnedFd,
    /// The id it was opened by.
    pub id: u32,
}

impl Map {
    /// Creates a map as `spec` describes (the module creates the real
    /// ones; tests without the module make their own).
    pub fn create(spec: &xdpguard_abi::MapSpec) -> io::Result<Map> {
        let mut a = spec.create_attr();
        let fd = owned(sys_bpf(BPF_MAP_CREATE, &mut a)?);
        let id = map_info_of(&fd)?.id;
        Ok(Map { fd, id })
    }

    /// The map's fd as bpf(2) attrs take it.
    fn raw_fd(&self) -> u32 {
        self.fd.as_raw_fd() as u32
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
        let mut a = MapElemAttr {
            map_fd: self.raw_fd(),
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
        let mut a = MapElemAttr {
            map_fd: self.raw_fd(),
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
            map_fd: self.raw_fd(),
            ..Default::default()
        };
        match sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut a) {
            Ok(_) => {}
            // The batch reached the end of the array (a short count is
            // reported below).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if no_batch_lookup(&e) => return Ok(false),
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

    /// Entries `first..first + n` of an array map (not per-CPU): read from
    /// the mapped values of a `BPF_F_MMAPABLE` array, else in
    /// `BPF_MAP_LOOKUP_BATCH` calls of at most 64k entries, else (no batch
    /// lookup in the kernel) one lookup per index.
    pub fn lookup_range<V: Pod + Default>(&self, first: u32, n: u32) -> io::Result<Vec<V>> {
        if let Some(m) = Mapped::of::<V>(self, false)? {
            return m.read(first, n);
        }
        let mut out: Vec<V> = Vec::with_capacity(n as usize);
        let mut keys = vec![0u32; BATCH_U32.min(n) as usize];
        let mut vals = vec![V::default(); BATCH_U32.min(n) as usize];
        while (out.len() as u32) < n {
            let at = first + out.len() as u32;
            let want = (n - out.len() as u32).min(BATCH_U32);
            let got = want as usize;
            // SAFETY: `vals` has room for `min(BATCH, n) >= want` values.
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
        let mut a = MapElemAttr {
            map_fd: self.raw_fd(),
            key: ptr(key),
            value: ptr(value),
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
    }

    /// Deletes `key`; absent keys are not an error.
    pub fn delete<K: Pod>(&self, key: &K) -> io::Result<()> {
        let mut a = MapElemAttr {
            map_fd: self.raw_fd(),
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
            let mut a = MapElemAttr {
                map_fd: self.raw_fd(),
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
        let mut out: Vec<(K, V)> = Vec::new();
        let mut keys = vec![K::default(); BATCH];
        let mut vals = vec![V::default(); BATCH];
        let mut cursor = K::default();
        let mut first = true;
        loop {
            let mut next = K::default();
            let mut a = BatchAttr {
                in_batch: if first { 0 } else { ptr(&cursor) },
                out_batch: &mut next as *mut K as u64,
                keys: keys.as_mut_ptr() as u64,
                values: vals.as_mut_ptr() as u64,
                count: BATCH_U32,
                map_fd: self.raw_fd(),
                ..Default::default()
            };
            let r = sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut a);
            let n = (a.count as usize).min(BATCH);
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
                Err(e) if first && no_batch_lookup(&e) => {
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
        for chunk in keys.chunks(BATCH) {
            let mut a = BatchAttr {
                keys: chunk.as_ptr() as u64,
                count: chunk.len() as u32,
                map_fd: self.raw_fd(),
                ..Default::default()
            };
            match sys_bpf(BPF_MAP_DELETE_BATCH, &mut a) {
                Ok(_) => {}
                Err(e) if no_batch(&e) => {
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
        let mut i = 0;
        while i < keys.len() {
            let end = (i + BATCH).min(keys.len());
            let mut a = BatchAttr {
                keys: keys[i..].as_ptr() as u64,
                values: values[i..].as_ptr() as u64,
                count: (end - i) as u32,
                map_fd: self.raw_fd(),
                ..Default::default()
            };
            match sys_bpf(BPF_MAP_UPDATE_BATCH, &mut a) {
                Ok(_) => i = end,
                Err(e) if no_batch(&e) => {
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

    /// Sets array entries `keys` (indexes) to `values`: stores into the
    /// mapped values of a `BPF_F_MMAPABLE` array (a generation's tables
    /// are megabytes; one bpf(2) copy per cell costs seconds under TCG),
    /// else [`Map::update_batch`].
    pub fn update_array<V: Pod>(&self, keys: &[u32], values: &[V]) -> io::Result<()> {
        assert_eq!(keys.len(), values.len());
        if keys.is_empty() {
            return Ok(());
        }
        match Mapped::of::<V>(self, true)? {
            Some(m) => m.write(keys, values),
            None => self.update_batch(keys, values),
        }
    }

    /// Sets per-CPU array entries `keys` to zero on every CPU
    /// (`value_size` bytes per CPU).
    pub fn zero_percpu(&self, keys: &[u32], value_size: usize) -> io::Result<()> {
        let stride = value_stride(value_size) * possible_cpus()?;
        let zeros = vec![0u8; stride * keys.len()];
        let mut a = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: zeros.as_ptr() as u64,
            count: keys.len() as u32,
            map_fd: self.raw_fd(),
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_BATCH, &mut a).map(|_| ())
    }
}

impl Map {
    /// Opens the map pinned at `path`.
    pub fn from_pin(path: &Path) -> io::Result<Map> {
        let fd = obj_get(path)?;
        let id = map_info_of(&fd)?.id;
        Ok(Map { fd, id })
    }

    /// Pins the map at `path` in a BPF file system (`BPF_OBJ_PIN`).
    pub fn pin(&self, path: &Path) -> io::Result<()> {
        let c = path_c(path)?;
        let mut a = ObjAttr {
            pathname: c.as_ptr() as u64,
            bpf_fd: self.raw_fd(),
            file_flags: 0,
        };
        sys_bpf(BPF_OBJ_PIN, &mut a).map(|_| ())
    }

    /// Type, sizes and name of the map.
    pub fn info(&self) -> io::Result<MapInfo> {
        map_info_of(&self.fd)
    }
}

/// The values of a `BPF_F_MMAPABLE` array map, mapped into this process
/// (`mmap(2)` of the map's fd, `MAP_SHARED`): value `i` is at
/// `i * stride`, the kernel's element size (the value size rounded up to
/// 8). Unmapped on drop.
struct Mapped {
    base: std::ptr::NonNull<u8>,
    bytes: usize,
    stride: usize,
    entries: u32,
}

impl Mapped {
    /// Maps `map`'s values for reading (and writing, with `write`); `None`
    /// when `map` is not an mmapable array. Values of `V` must be the
    /// map's value size.
    fn of<V>(map: &Map, write: bool) -> io::Result<Option<Mapped>> {
        let info = map.info()?;
        if info.map_type != BPF_MAP_TYPE_ARRAY || info.flags & BPF_F_MMAPABLE == 0 {
            return Ok(None);
        }
        if info.value_size as usize != std::mem::size_of::<V>() || info.max_entries == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "map {} has {} values of {} bytes, expected {}-byte values",
                    info.name,
                    info.max_entries,
                    info.value_size,
                    std::mem::size_of::<V>()
                ),
            ));
        }
        let stride = value_stride(info.value_size as usize);
        let bytes = stride * info.max_entries as usize;
        let prot = libc::PROT_READ | if write { libc::PROT_WRITE } else { 0 };
        // SAFETY: a new shared mapping of the map's fd (the kernel checks
        // the length against the array's pages and the fd's mode against
        // `prot`); no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                prot,
                libc::MAP_SHARED,
                map.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Some(Mapped {
            base,
            bytes,
            stride,
            entries: info.max_entries,
        }))
    }

    /// Whether `first..first + n` are entries of the array.
    fn check(&self, first: u32, n: u32) -> io::Result<()> {
        if first.checked_add(n).is_some_and(|end| end <= self.entries) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "entries {first}..{first}+{n} of an array of {}",
                self.entries
            ),
        ))
    }

    /// Values `first..first + n`.
    fn read<V: Pod>(&self, first: u32, n: u32) -> io::Result<Vec<V>> {
        self.check(first, n)?;
        Ok((first..first + n)
            .map(|i| {
                // SAFETY: `i < entries`, so `i * stride + size_of::<V>()`
                // (= value size <= stride) lies inside the mapping; the
                // kernel keeps values 8-byte aligned and `V: Pod` is valid
                // for any bytes. Volatile: the program and other processes
                // share the memory.
                unsafe {
                    std::ptr::read_volatile(
                        self.base.as_ptr().add(i as usize * self.stride).cast::<V>(),
                    )
                }
            })
            .collect())
    }

    /// Stores `values[j]` at index `keys[j]`.
    fn write<V: Pod>(&self, keys: &[u32], values: &[V]) -> io::Result<()> {
        for &k in keys {
            self.check(k, 1)?;
        }
        for (&k, v) in keys.iter().zip(values) {
            // SAFETY: as in `read` (`k` was checked above); the mapping is
            // writable (`of(.., true)`).
            unsafe {
                std::ptr::write_volatile(
                    self.base.as_ptr().add(k as usize * self.stride).cast::<V>(),
                    *v,
                )
            }
        }
        Ok(())
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: `base`/`bytes` are the mapping `of` made, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
