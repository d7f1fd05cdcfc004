// SPDX-License-Identifier: GPL-2.0

//! The in-kernel BPF syscall and the references it hands out: maps, programs, the program's file and links.
//!
//! Commands go through `kern_sys_bpf` with the `union bpf_attr` prefixes of
//! `uapi.rs`; the fds they return become references at once ([`MapRef`],
//! [`ProgRef`], [`LinkRef`], [`ProgFile`]). [`UserLog`] is the user-memory
//! buffer the verifier writes its log to.
//!
//! C headers: [`include/linux/bpf.h`](srctree/include/linux/bpf.h).

use super::Fd;
use crate::abi::{MapSpec, Pod};
use crate::uapi::{
    obj_name, BpfAttr, LinkCreateAttr, MapElemAttr, ProgLoadAttr, BPF_LINK_CREATE, BPF_MAP_CREATE,
    BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_PROG_TYPE_XDP, BPF_XDP,
};
use core::{
    marker::PhantomData,
    ptr::{null_mut, NonNull},
};
use kernel::{
    bindings,
    error::{from_err_ptr, Error},
    ffi::{c_int, c_uint, c_void},
    prelude::*,
    str::CStr,
    uaccess::UserSlice,
};

extern "C" {
    // kernel/bpf/syscall.c, EXPORT_SYMBOL_NS(kern_sys_bpf, BPF_INTERNAL).
    fn kern_sys_bpf(cmd: c_int, attr: *mut c_void, size: c_uint) -> c_int;
    // helpers.c. `struct file *`, passed through untouched (its binding is
    // not FFI-safe).
    fn xdpguard_install_file(file: *mut c_void) -> c_int;
    fn xdpguard_link_detach(link: *mut bindings::bpf_link);
}

// mmap(2) constants (x86-64 values, UAPI).
const PROT_READ: usize = 0x1;
const PROT_WRITE: usize = 0x2;
const MAP_PRIVATE: usize = 0x02;
const MAP_ANONYMOUS: usize = 0x20;

/// Runs one BPF command in the kernel and returns its non-negative result.
fn sys_bpf<T: BpfAttr>(cmd: u32, attr: &mut T) -> Result<c_int> {
    // SAFETY: `attr` is an exclusively borrowed `repr(C)` prefix of
    // `union bpf_attr` for `cmd` (`BpfAttr`) and its size is passed. The
    // kernel reads its pointers as kernel pointers (the verifier log, a
    // user address by design, excepted: see `UserLog`); all outlive the call.
    let ret = unsafe {
        kern_sys_bpf(
            cmd as c_int,
            (attr as *mut T).cast::<c_void>(),
            core::mem::size_of::<T>() as c_uint,
        )
    };
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(ret)
    }
}

/// Runs a BPF command that returns a new fd.
fn sys_bpf_fd<T: BpfAttr>(cmd: u32, attr: &mut T) -> Result<Fd> {
    let fd = sys_bpf(cmd, attr)?;
    // SAFETY: the commands passed here (`BPF_MAP_CREATE`, `BPF_PROG_LOAD`,
    // `BPF_LINK_CREATE`) return a new fd of `current` on success, which
    // nothing else has seen.
    Ok(unsafe { Fd::from_raw(fd) })
}

/// Creates a BPF map described by `spec`.
pub(crate) fn map_create(spec: &MapSpec) -> Result<Fd> {
    sys_bpf_fd(BPF_MAP_CREATE, &mut spec.create_attr())
}

/// Writes `value` at `key` in the map behind `map`, whose layout `spec`
/// describes (`BPF_ANY`). The sizes of `K` and `V` must be the map's
/// (`EINVAL` otherwise).
pub(crate) fn map_update<K: Pod, V: Pod>(map: &Fd, spec: &MapSpec, key: &K, value: &V) -> Result {
    if core::mem::size_of::<K>() != spec.key_size as usize
        || core::mem::size_of::<V>() != spec.value_size as usize
    {
        return Err(EINVAL);
    }
    let mut attr = MapElemAttr {
        map_fd: map.raw(),
        key: (key as *const K) as u64,
        value: (value as *const V) as u64,
        ..Default::default()
    };
    // `key` and `value` are kernel pointers to plain data of exactly the
    // map's key and value sizes (checked above), borrowed for the call.
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
}

/// A buffer in the loading task's user address space that receives the
/// verifier log (the verifier always writes its log with `copy_to_user`).
///
/// # Invariants
///
/// `addr..addr + len` is an anonymous mapping of the current task's `mm`,
/// created by this value and unmapped by its drop, in the same task.
pub(crate) struct UserLog {
    addr: usize,
    len: usize,
    _not_send: PhantomData<*mut ()>,
}

impl UserLog {
    /// Maps `len` bytes of anonymous memory in the current task.
    pub(crate) fn new(len: usize) -> Result<Self> {
        // SAFETY: `vm_mmap` with a null file and anonymous private flags only
        // creates a fresh mapping in `current->mm`; during insmod the task
        // has an address space. Errors come back as negative values.
        let addr = unsafe {
            bindings::vm_mmap(
                null_mut(),
                0,
                len as _,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                0,
            )
        };
        if addr as i64 >= -4095 && (addr as i64) < 0 {
            return Err(Error::from_errno(addr as c_int));
        }
        // INVARIANT: the mapping was just created in the current task.
        Ok(Self {
            addr: addr as usize,
            len,
            _not_send: PhantomData,
        })
    }

    /// Copies the whole buffer out of user memory (the log ends at its
    /// first NUL).
    pub(crate) fn read(&self) -> Result<KVec<u8>> {
        let mut buf = KVec::new();
        UserSlice::new(self.addr, self.len).read_all(&mut buf, GFP_KERNEL)?;
        Ok(buf)
    }
}

impl Drop for UserLog {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this range is our own mapping in the
        // current task. Unmapping it can only fail if it is already gone.
        let _ = unsafe { bindings::vm_munmap(self.addr as _, self.len) };
    }
}

/// Loads an XDP program through the verifier and JIT. `insns` holds whole
/// `struct bpf_insn`s with map references already patched to fds.
pub(crate) fn prog_load_xdp(
    insns: &[u8],
    license: &CStr,
    name: &str,
    log: Option<&UserLog>,
) -> Result<Fd> {
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_char_ptr() as u64,
        prog_name: obj_name(name),
        expected_attach_type: BPF_XDP,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = log.len as u32;
        attr.log_buf = log.addr as u64;
    }
    sys_bpf_fd(BPF_PROG_LOAD, &mut attr)
}

/// Attaches the program behind `prog` to interface `ifindex` with a BPF link.
/// `flags` is `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`.
pub(crate) fn xdp_link_create(prog: &Fd, ifindex: i32, flags: u32) -> Result<Fd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.raw(),
        target_ifindex: ifindex as u32,
        attach_type: BPF_XDP,
        flags,
    };
    sys_bpf_fd(BPF_LINK_CREATE, &mut attr)
}

/// One reference on a BPF map, dropped with `bpf_map_put`.
///
/// # Invariants
///
/// `self.0` points at a live `struct bpf_map` on which this value owns one
/// reference.
pub(crate) struct MapRef(NonNull<bindings::bpf_map>);

// SAFETY: a map reference may be used and released from any task: the map
// is refcounted and `bpf_map_put` may be called from process context on any
// CPU.
unsafe impl Send for MapRef {}
// SAFETY: `&MapRef` only reads the immutable map id.
unsafe impl Sync for MapRef {}

impl MapRef {
    /// Takes a reference on the map behind `fd`.
    pub(crate) fn from_fd(fd: &Fd) -> Result<Self> {
        // SAFETY: `bpf_map_get` looks the fd up in the current task's table
        // and returns a new reference or an error pointer.
        let p = from_err_ptr(unsafe { bindings::bpf_map_get(fd.raw()) })?;
        // INVARIANT: `bpf_map_get` succeeded, so `p` is a live map with a
        // reference we now own.
        NonNull::new(p).map(Self).ok_or(EINVAL)
    }

    /// The map's id, as `bpftool map show` lists it.
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: by the type invariant the map is live; `id` is set when the
        // map is created and never changes.
        unsafe { (*self.0.as_ptr()).id }
    }
}

impl Drop for MapRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference, given up here.
        unsafe { bindings::bpf_map_put(self.0.as_ptr()) };
    }
}

/// One reference on a loaded XDP program, dropped with `bpf_prog_put`.
///
/// # Invariants
///
/// `self.0` points at a live `struct bpf_prog` on which this value owns one
/// reference.
pub(crate) struct ProgRef(NonNull<bindings::bpf_prog>);

// SAFETY: as for `MapRef`: refcounted, released from any task.
unsafe impl Send for ProgRef {}
// SAFETY: `&ProgRef` only reads fields fixed at load time.
unsafe impl Sync for ProgRef {}

impl ProgRef {
    /// Takes a reference on the XDP program behind `fd`.
    pub(crate) fn from_fd(fd: &Fd) -> Result<Self> {
        // SAFETY: `bpf_prog_get_type_dev` looks the fd up in the current
        // task's table, checks the type and returns a new reference or an
        // error pointer.
        let p = from_err_ptr(unsafe {
            bindings::bpf_prog_get_type_dev(fd.raw(), BPF_PROG_TYPE_XDP, false)
        })?;
        // INVARIANT: success means a live program and a reference we own.
        NonNull::new(p).map(Self).ok_or(EINVAL)
    }

    /// The program's id, as `bpftool prog show` lists it.
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: by the type invariant the program is live; a loaded
        // program always has its `aux`, whose `id` is fixed after load.
        unsafe { (*(*self.0.as_ptr()).aux).id }
    }

    /// Size of the JIT image in bytes, or `None` when the program is
    /// interpreted.
    pub(crate) fn jited_len(&self) -> Option<u32> {
        // SAFETY: by the type invariant the program is live; `jited` and
        // `jited_len` are fixed once the program is loaded.
        let p = unsafe { &*self.0.as_ptr() };
        (p.jited() != 0).then_some(p.jited_len)
    }

    /// Instructions the verifier processed (walked, over all paths) to
    /// accept the program: its cost of loading.
    pub(crate) fn verified_insns(&self) -> u32 {
        // SAFETY: by the type invariant the program is live, and a loaded
        // program's `aux` is set and fixed; `verified_insns` is written
        // once, by the verifier, before the program fd existed.
        unsafe { (*(*self.0.as_ptr()).aux).verified_insns }
    }
}

impl Drop for ProgRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference, given up here.
        unsafe { bindings::bpf_prog_put(self.0.as_ptr()) };
    }
}

/// A reference on the program's file (what a program fd points at), so that
/// tasks other than the loading one can get a program fd to create links.
///
/// # Invariants
///
/// `self.0` points at a live `struct file` of a BPF program on which this
/// value owns one reference.
pub(crate) struct ProgFile(NonNull<bindings::file>);

// SAFETY: a file reference may be used and released (`fput`) from any task
// in process context.
unsafe impl Send for ProgFile {}
// SAFETY: `&ProgFile` only installs new references to the file.
unsafe impl Sync for ProgFile {}

impl ProgFile {
    /// Takes a reference on the file behind the program fd `fd`.
    pub(crate) fn from_fd(fd: &Fd) -> Result<Self> {
        // SAFETY: `fget` looks the fd up in the current task's table and
        // returns a new reference or null.
        let f = unsafe { bindings::fget(fd.raw()) };
        // INVARIANT: `fd` is a program fd (it came from `BPF_PROG_LOAD`) and
        // `fget` gave us a reference on its file.
        NonNull::new(f).map(Self).ok_or(EBADF)
    }

    /// Installs a new fd of the program in the current task's table; it is
    /// closed when the returned value drops, in this same task.
    pub(crate) fn install(&self) -> Result<Fd> {
        // SAFETY: the file is live (type invariant); the helper reserves an
        // fd of `current` and installs a new reference to the file in it.
        let fd = unsafe { xdpguard_install_file(self.0.as_ptr().cast()) };
        if fd < 0 {
            return Err(Error::from_errno(fd));
        }
        // SAFETY: `fd` is a new fd of `current` that nothing else owns.
        Ok(unsafe { Fd::from_raw(fd) })
    }
}

impl Drop for ProgFile {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference, given up here.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// One reference on a BPF link. Dropping the last reference detaches the
/// program from its interface (the kernel does it from a workqueue).
///
/// # Invariants
///
/// `self.0` points at a live `struct bpf_link` on which this value owns one
/// reference.
pub(crate) struct LinkRef(NonNull<bindings::bpf_link>);

// SAFETY: as for `MapRef`: refcounted, and `bpf_link_put` defers the
// release to a workqueue, so it may be called from any task.
unsafe impl Send for LinkRef {}
// SAFETY: `&LinkRef` only reads the immutable link id.
unsafe impl Sync for LinkRef {}

impl LinkRef {
    /// Takes a reference on the link behind `fd`.
    pub(crate) fn from_fd(fd: &Fd) -> Result<Self> {
        // SAFETY: `bpf_link_get_from_fd` looks the fd up in the current
        // task's table and returns a new reference or an error pointer.
        let p = from_err_ptr(unsafe { bindings::bpf_link_get_from_fd(fd.raw()) })?;
        // INVARIANT: success means a live link and a reference we own.
        NonNull::new(p).map(Self).ok_or(EINVAL)
    }

    /// Detaches the link from its device now, not when the last reference
    /// goes (`bpf_link_put` defers that to a workqueue, and an attach to
    /// the same device before it runs fails with `EBUSY`). Takes rtnl:
    /// never call with rtnl held.
    pub(crate) fn detach(&self) {
        // SAFETY: by the type invariant the link is live; the helper calls
        // its `ops->detach`, which takes rtnl, not held by our callers.
        unsafe { xdpguard_link_detach(self.0.as_ptr()) };
    }

    /// The link's id, as `bpftool link show` lists it.
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: by the type invariant the link is live; its id is fixed
        // when the link is settled, before its fd exists.
        unsafe { (*self.0.as_ptr()).id }
    }
}

impl Drop for LinkRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference, given up here.
        unsafe { bindings::bpf_link_put(self.0.as_ptr()) };
    }
}
