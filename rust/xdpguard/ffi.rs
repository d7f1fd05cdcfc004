// SPDX-License-Identifier: GPL-2.0

//! The module's only `unsafe` code: thin, typed wrappers over the kernel's C interfaces.
//!
//! Covered here: the in-kernel BPF syscall (`kern_sys_bpf`) and the references
//! it hands out (maps, programs, links), file descriptors of the current
//! task, the program's file (to make program fds in a worker), netdev
//! lookups, a netdevice notifier on the initial network namespace, the
//! module's ordered workqueue, a user-memory buffer for the verifier log,
//! `charp` module parameters, `.modinfo` entries and the sysfs attribute
//! group `bpf/` on the module's kobject. Everything above this file is safe
//! Rust.

use crate::uapi::{
    obj_name, LinkCreateAttr, MapCreateAttr, MapElemAttr, ProgLoadAttr, BPF_PROG_TYPE_XDP, BPF_XDP,
};
use core::{
    cell::UnsafeCell,
    marker::PhantomPinned,
    ptr::{null_mut, NonNull},
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
};
use kernel::{
    bindings,
    error::{from_err_ptr, Error},
    ffi::{c_char, c_int, c_uint, c_ulong, c_void},
    prelude::*,
    str::CStr,
    sync::Arc,
    types::Opaque,
    uaccess::UserSlice,
    workqueue::Queue,
};

extern "C" {
    // kernel/bpf/syscall.c, EXPORT_SYMBOL_NS(kern_sys_bpf, BPF_INTERNAL).
    fn kern_sys_bpf(cmd: c_int, attr: *mut c_void, size: c_uint) -> c_int;
    // fs/file.c, EXPORT_SYMBOL(close_fd).
    fn close_fd(fd: c_uint) -> c_int;
    // helpers.c: `struct net_device` is opaque in the bindings, and what
    // follows are inline functions or macros in C.
    fn xdpguard_ifindex_by_name(name: *const c_char) -> c_int;
    fn xdpguard_name_by_index(ifindex: c_int, name: *mut u8) -> c_int;
    fn xdpguard_netdevs(out: *mut NetdevEntry, max: c_int) -> c_int;
    // `struct file *`, passed through untouched (its binding is not FFI-safe).
    fn xdpguard_install_file(file: *mut c_void) -> c_int;
    fn xdpguard_alloc_wq() -> *mut bindings::workqueue_struct;
    fn xdpguard_link_detach(link: *mut bindings::bpf_link);
    fn xdpguard_notifier_register(nb: *mut bindings::notifier_block) -> c_int;
    fn xdpguard_notifier_unregister(nb: *mut bindings::notifier_block);
    fn xdpguard_notifier_dev(
        event: c_ulong,
        info: *mut c_void,
        name: *mut u8,
        what: *mut c_int,
    ) -> c_int;
}

// `enum bpf_cmd` (UAPI, stable).
const BPF_MAP_CREATE: c_int = 0;
const BPF_MAP_UPDATE_ELEM: c_int = 2;
const BPF_PROG_LOAD: c_int = 5;
const BPF_LINK_CREATE: c_int = 28;
/// `src_reg` value marking a 64-bit immediate load as "map by fd".
const BPF_PSEUDO_MAP_FD: u8 = 1;

// mmap(2) constants (x86-64 values, UAPI).
const PROT_READ: usize = 0x1;
const PROT_WRITE: usize = 0x2;
const MAP_PRIVATE: usize = 0x02;
const MAP_ANONYMOUS: usize = 0x20;

/// Marks the attribute layouts of `uapi.rs`; only they may be passed to
/// `sys_bpf`.
trait BpfAttr {}
impl BpfAttr for MapCreateAttr {}
impl BpfAttr for ProgLoadAttr {}
impl BpfAttr for LinkCreateAttr {}
impl BpfAttr for MapElemAttr {}

/// Runs one BPF command in the kernel and returns its non-negative result.
fn sys_bpf<T: BpfAttr>(cmd: c_int, attr: &mut T) -> Result<c_int> {
    // SAFETY: `attr` is an exclusively borrowed `repr(C)` prefix of
    // `union bpf_attr` for `cmd` (`uapi.rs`) and its size is passed. The
    // kernel reads its pointers as kernel pointers (the verifier log, a
    // user address by design, excepted: see `UserLog`); all outlive the call.
    let ret = unsafe {
        kern_sys_bpf(
            cmd,
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

/// A file descriptor in the current task's table, closed on drop.
///
/// `kern_sys_bpf` returns new objects as fds of `current`; xdpguard turns
/// them into references at once and closes the fds before it returns (from
/// `init`, or from the work function in a kworker, whose table is
/// kthreadd's).
///
/// # Invariants
///
/// `self.0` is an open fd of the task that created this value, owned by
/// this value alone; the value is dropped by that same task (it is neither
/// `Send` nor `Sync`).
pub(crate) struct Fd(c_int, core::marker::PhantomData<*mut ()>);

impl Fd {
    fn raw(&self) -> u32 {
        self.0 as u32
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the fd is open in the current task's
        // table and owned by us, so closing it cannot close anything else.
        // Closing an fd we own cannot meaningfully fail; there is nothing to
        // do with an error.
        let _ = unsafe { close_fd(self.0 as c_uint) };
    }
}

/// Creates a BPF map described by `spec`.
pub(crate) fn map_create(spec: &crate::abi::MapSpec) -> Result<Fd> {
    let mut attr = MapCreateAttr {
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.flags,
        map_name: obj_name(spec.name),
        ..Default::default()
    };
    let fd = sys_bpf(BPF_MAP_CREATE, &mut attr)?;
    // INVARIANT: a successful BPF_MAP_CREATE returns a new fd of `current`.
    Ok(Fd(fd, core::marker::PhantomData))
}

/// Writes `value` at `key` in the map behind `map`, whose layout `spec`
/// describes (`BPF_ANY`). The sizes of `K` and `V` must be the map's.
pub(crate) fn map_update<K: Copy, V: Copy>(
    map: &Fd,
    spec: &crate::abi::MapSpec,
    key: &K,
    value: &V,
) -> Result {
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
    // `key` and `value` are kernel pointers to exactly the map's key and
    // value sizes (checked above), borrowed for the call.
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
}

/// Points the 64-bit immediate load at instruction `insn` of `insns` at the
/// map behind `map`, as the verifier expects (`BPF_PSEUDO_MAP_FD`).
pub(crate) fn patch_map_fd(insns: &mut [u8], insn: usize, map: &Fd) -> Result {
    let base = insn.checked_mul(8).ok_or(EINVAL)?;
    let slot = insns.get_mut(base..base + 8).ok_or(EINVAL)?;
    // `struct bpf_insn`: code, dst_reg:4 | src_reg:4, off (2), imm (4).
    slot[1] = (slot[1] & 0x0f) | (BPF_PSEUDO_MAP_FD << 4);
    slot[4..8].copy_from_slice(&map.0.to_le_bytes());
    Ok(())
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
    _not_send: core::marker::PhantomData<*mut ()>,
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
            _not_send: core::marker::PhantomData,
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
    let fd = sys_bpf(BPF_PROG_LOAD, &mut attr)?;
    // INVARIANT: a successful BPF_PROG_LOAD returns a new fd of `current`.
    Ok(Fd(fd, core::marker::PhantomData))
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
    let fd = sys_bpf(BPF_LINK_CREATE, &mut attr)?;
    // INVARIANT: a successful BPF_LINK_CREATE returns a new fd of `current`.
    Ok(Fd(fd, core::marker::PhantomData))
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
        // INVARIANT: `fd` is a new fd of `current` that nothing else owns.
        Ok(Fd(fd, core::marker::PhantomData))
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

/// Returns the ifindex of the interface called `name` in the initial network
/// namespace, if there is one.
pub(crate) fn ifindex_by_name(name: &CStr) -> Option<i32> {
    // SAFETY: `name` is NUL-terminated; the helper only reads it, under RCU.
    let ifindex = unsafe { xdpguard_ifindex_by_name(name.as_char_ptr()) };
    (ifindex > 0).then_some(ifindex)
}

/// `IFNAMSIZ`: an interface name with its NUL.
pub(crate) const IFNAMSIZ: usize = 16;

/// Returns the name (NUL-padded) of interface `ifindex` of the initial
/// network namespace, if it exists. Takes rtnl: never call with rtnl held.
pub(crate) fn name_by_index(ifindex: i32) -> Option<[u8; IFNAMSIZ]> {
    let mut name = [0u8; IFNAMSIZ];
    // SAFETY: `name` has the IFNAMSIZ bytes the helper writes.
    let ret = unsafe { xdpguard_name_by_index(ifindex, name.as_mut_ptr()) };
    (ret == 0).then_some(name)
}

/// One network device of the initial namespace (`struct xdpguard_netdev`).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct NetdevEntry {
    /// Its ifindex.
    pub(crate) ifindex: c_int,
    /// Its name, NUL-padded.
    pub(crate) name: [u8; IFNAMSIZ],
}

/// Lists the devices of the initial network namespace. Takes rtnl: never
/// call with rtnl held.
pub(crate) fn netdevs() -> Result<KVec<NetdevEntry>> {
    let mut max = 64usize;
    loop {
        let mut out = KVec::from_elem(
            NetdevEntry {
                ifindex: 0,
                name: [0; IFNAMSIZ],
            },
            max,
            GFP_KERNEL,
        )?;
        // SAFETY: `out` holds `max` initialised entries the helper may
        // overwrite; it writes no more than `max`.
        let n = unsafe { xdpguard_netdevs(out.as_mut_ptr(), max as c_int) };
        let n = usize::try_from(n).map_err(|_| EINVAL)?;
        if n <= max {
            // Keep the first `n` entries: rebuild rather than truncate.
            let mut list = KVec::with_capacity(n, GFP_KERNEL)?;
            list.extend_from_slice(&out[..n], GFP_KERNEL)?;
            return Ok(list);
        }
        // More devices than room: try again with room to spare.
        max = n.checked_mul(2).ok_or(ENOMEM)?;
    }
}

/// The module's ordered workqueue: one work item runs at a time. Dropping
/// it waits for queued and running work to finish (`destroy_workqueue`).
///
/// # Invariants
///
/// `self.0` points at a workqueue allocated by this value and not yet
/// destroyed.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues may be used and destroyed from any task.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing work is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates the ordered workqueue `xdpguard`.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: the helper only calls `alloc_ordered_workqueue`.
        let wq = unsafe { xdpguard_alloc_wq() };
        // INVARIANT: a non-null result is a new workqueue we own.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

impl core::ops::Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: by the type invariant the workqueue is valid until `drop`,
        // which needs `&mut self`, so it outlives the returned borrow.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the workqueue is ours and live; this
        // drains it and frees it. Nothing can queue on it any more: it is
        // only reachable through `self`.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

/// What happened to a network device of the initial namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetdevEvent {
    /// It appeared (created, or moved into the namespace).
    Register,
    /// It is going away: deleted, or (`moved`) moving to another namespace.
    Unregister {
        /// The device stays registered: it changes namespace.
        moved: bool,
    },
    /// It was renamed; the name given is the new one.
    ChangeName,
}

/// Receives the netdevice events of the initial network namespace. Called
/// with rtnl held: it may sleep and take mutexes that are never held while
/// taking rtnl, and must not take rtnl.
pub(crate) trait NetdevHandler: Send + Sync {
    /// `name` is the device's name without NUL.
    fn netdev_event(&self, event: NetdevEvent, ifindex: i32, name: &[u8]);
}

// `enum xdpguard_netdev_event` (helpers.h): the helper decodes the kernel's
// `enum netdev_cmd`, whose values move between kernel versions.
const XDPGUARD_NETDEV_REGISTER: c_int = 1;
const XDPGUARD_NETDEV_UNREGISTER: c_int = 2;
const XDPGUARD_NETDEV_MOVED: c_int = 3;
const XDPGUARD_NETDEV_RENAME: c_int = 4;
/// `NOTIFY_DONE`.
const NOTIFY_DONE: c_int = 0;

/// The notifier block and its handler, at a fixed address.
#[repr(C)]
struct NotifierInner<T> {
    /// First, so a pointer to it is a pointer to the whole.
    nb: Opaque<bindings::notifier_block>,
    handler: T,
    /// Set while unregistering: the replayed `NETDEV_UNREGISTER`s are not
    /// passed on.
    quiet: AtomicBool,
    _pin: PhantomPinned,
}

// SAFETY: the notifier block is written only by the notifier chain, under
// rtnl, while registered; moving the owning box to another task is fine.
unsafe impl<T: Send> Send for NotifierInner<T> {}
// SAFETY: through `&NotifierInner` only the chain (under rtnl) touches the
// block; the handler is `Sync` and the flag atomic.
unsafe impl<T: Sync> Sync for NotifierInner<T> {}

/// A registered netdevice notifier on the initial network namespace,
/// unregistered on drop. Registration replays `NETDEV_REGISTER` for every
/// device already there; the replay of unregistration is not passed on.
///
/// # Invariants
///
/// `inner.nb` is registered with `register_netdevice_notifier_net` on
/// `init_net` and stays so until `drop`.
pub(crate) struct NetdevNotifier<T: NetdevHandler> {
    inner: Pin<KBox<NotifierInner<T>>>,
}

impl<T: NetdevHandler> NetdevNotifier<T> {
    /// Registers `handler` for the netdevice events of the initial network
    /// namespace. Takes rtnl: never call with rtnl held.
    pub(crate) fn register(handler: T) -> Result<Self> {
        let inner = KBox::pin(
            NotifierInner {
                nb: Opaque::new(bindings::notifier_block {
                    notifier_call: Some(notifier_call::<T>),
                    next: null_mut(),
                    priority: 0,
                }),
                handler,
                quiet: AtomicBool::new(false),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `nb` is pinned in a box that lives until `drop`, which
        // unregisters it first; `notifier_call` matches `notifier_fn_t`.
        kernel::error::to_result(unsafe { xdpguard_notifier_register(inner.nb.get()) })?;
        // INVARIANT: registered just above.
        Ok(Self { inner })
    }
}

impl<T: NetdevHandler> Drop for NetdevNotifier<T> {
    fn drop(&mut self) {
        self.inner.quiet.store(true, Ordering::Release);
        // SAFETY: by the type invariant `nb` is registered. Unregistering
        // takes rtnl, so no call is running when it returns.
        unsafe { xdpguard_notifier_unregister(self.inner.nb.get()) };
    }
}

/// `notifier_call` of [`NetdevNotifier`]: decodes the event and passes it on.
unsafe extern "C" fn notifier_call<T: NetdevHandler>(
    nb: *mut bindings::notifier_block,
    event: c_ulong,
    info: *mut c_void,
) -> c_int {
    // SAFETY: `nb` is the first field of a `repr(C)` `NotifierInner<T>`
    // (the only notifier block registered with this function), which stays
    // pinned and live while registered, and calls only happen then.
    let inner = unsafe { &*nb.cast::<NotifierInner<T>>() };
    if inner.quiet.load(Ordering::Acquire) {
        return NOTIFY_DONE;
    }
    let mut name = [0u8; IFNAMSIZ];
    let mut what: c_int = 0;
    // SAFETY: `info` is the `netdev_notifier_info` of a netdevice notifier
    // call, made with rtnl held; `name` has IFNAMSIZ bytes.
    let ifindex = unsafe { xdpguard_notifier_dev(event, info, name.as_mut_ptr(), &mut what) };
    if ifindex <= 0 {
        return NOTIFY_DONE;
    }
    let event = match what {
        XDPGUARD_NETDEV_REGISTER => NetdevEvent::Register,
        XDPGUARD_NETDEV_UNREGISTER => NetdevEvent::Unregister { moved: false },
        XDPGUARD_NETDEV_MOVED => NetdevEvent::Unregister { moved: true },
        XDPGUARD_NETDEV_RENAME => NetdevEvent::ChangeName,
        _ => return NOTIFY_DONE,
    };
    let len = name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    inner.handler.netdev_event(event, ifindex, &name[..len]);
    NOTIFY_DONE
}

/// Storage of a `charp` module parameter.
///
/// The kernel parses the parameter and stores a pointer to a NUL-terminated
/// copy here before `init` runs, and frees it after the module's exit.
#[repr(transparent)]
pub(crate) struct CharpParam(UnsafeCell<*mut c_char>);

// SAFETY: the kernel writes the pointer only while parsing parameters at
// load time, before `init` and any reader; the parameters are read-only in
// sysfs (mode 0444), so there are no writes afterwards.
unsafe impl Sync for CharpParam {}

impl CharpParam {
    /// An unset parameter.
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(null_mut()))
    }

    /// The value given at load time, if any.
    pub(crate) fn get(&self) -> Option<&CStr> {
        // SAFETY: see the `Sync` impl: no concurrent writer after load.
        let p = unsafe { *self.0.get() };
        // SAFETY: when set, the kernel stored a NUL-terminated string that
        // lives until the module is unloaded, which outlives `&self` uses in
        // `init`.
        (!p.is_null()).then(|| unsafe { CStr::from_char_ptr(p) })
    }

    const fn as_arg(&'static self) -> *mut c_void {
        self.0.get().cast()
    }
}

/// A `struct kernel_param` in the `__param` section, where the module loader
/// finds it.
#[repr(transparent)]
pub(crate) struct KernelParam(bindings::kernel_param);

// SAFETY: the loader only reads it, and every pointer in it points at a
// `'static` value.
unsafe impl Sync for KernelParam {}

impl KernelParam {
    /// A read-only (0444) `charp` parameter called `name` stored in
    /// `storage`, belonging to `module` (null when built in) and parsed by
    /// `ops` (`param_ops_charp`).
    pub(crate) const fn charp(
        name: &'static CStr,
        storage: &'static CharpParam,
        module: *mut bindings::module,
        ops: *const bindings::kernel_param_ops,
    ) -> Self {
        Self(bindings::kernel_param {
            name: name.as_char_ptr(),
            mod_: module,
            ops,
            perm: 0o444,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: storage.as_arg(),
            },
        })
    }
}

/// Declares a read-only `charp` module parameter: its storage, its
/// `__param` entry and its `.modinfo` type and description.
///
/// Rust-for-Linux in 6.12 has no `params` in `module!`; this emits what the
/// C `module_param_named()`/`MODULE_PARM_DESC()` macros emit.
macro_rules! charp_param {
    ($storage:ident, $name:literal, $desc:literal) => {
        pub(crate) static $storage: $crate::ffi::CharpParam = $crate::ffi::CharpParam::new();
        const _: () = {
            #[cfg(MODULE)]
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::ffi::KernelParam = $crate::ffi::KernelParam::charp(
                kernel::c_str!($name),
                &$storage,
                // Only addresses are taken: `__this_module` is defined by
                // modpost for every module, the ops are exported.
                &raw mut kernel::bindings::__this_module,
                &raw const kernel::bindings::param_ops_charp,
            );
            #[cfg(not(MODULE))]
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::ffi::KernelParam = $crate::ffi::KernelParam::charp(
                kernel::c_str!(concat!("xdpguard.", $name)),
                &$storage,
                core::ptr::null_mut(),
                &raw const kernel::bindings::param_ops_charp,
            );
            $crate::ffi::modinfo!(concat!("parmtype=", $name, ":charp"));
            $crate::ffi::modinfo!(concat!("parm=", $name, ":", $desc));
        };
    };
}
pub(crate) use charp_param;

/// Copies `prefix` then `s` then a NUL into an array of exactly that length.
pub(crate) const fn modinfo_bytes<const N: usize>(prefix: &str, s: &str) -> [u8; N] {
    let (p, s) = (prefix.as_bytes(), s.as_bytes());
    let mut out = [0u8; N];
    let mut i = 0;
    while i < p.len() {
        out[i] = p[i];
        i += 1;
    }
    let mut j = 0;
    while j < s.len() {
        out[i + j] = s[j];
        j += 1;
    }
    out
}

/// Emits one `.modinfo` string (`key=value`), prefixed by `xdpguard.` when
/// built in, exactly as the `module!` macro writes its own entries.
macro_rules! modinfo {
    ($s:expr) => {
        const _: () = {
            const S: &str = $s;
            #[cfg(MODULE)]
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static INFO: [u8; S.len() + 1] = $crate::ffi::modinfo_bytes("", S);
            #[cfg(not(MODULE))]
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static INFO: [u8; S.len() + 10] = $crate::ffi::modinfo_bytes("xdpguard.", S);
        };
    };
}
pub(crate) use modinfo;

/// The read-only files of `/sys/module/xdpguard/bpf/`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShowFile {
    /// `prog_id`.
    ProgId,
    /// `maps`.
    Maps,
    /// `links`.
    Links,
    /// `status`.
    Status,
}

/// The write-only files of `/sys/module/xdpguard/bpf/`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `attach`.
    Attach,
    /// `detach`.
    Detach,
}

/// What the files of `/sys/module/xdpguard/bpf/` show and do.
pub(crate) trait Control: Send + Sync {
    /// Appends the text of `file` to `out`.
    fn show(&self, file: ShowFile, out: &mut KVec<u8>) -> Result;
    /// Runs the command written to `cmd` (`input` without its NUL).
    fn store(&self, cmd: Command, input: &[u8]) -> Result;
}

/// Number of files in `/sys/module/xdpguard/bpf/`.
const FILES: usize = 6;
/// Their names, indexed as in [`ModuleAttr::new`].
const FILE_NAMES: [&CStr; FILES] = [
    kernel::c_str!("prog_id"),
    kernel::c_str!("maps"),
    kernel::c_str!("links"),
    kernel::c_str!("status"),
    kernel::c_str!("attach"),
    kernel::c_str!("detach"),
];
const SHOW_FILES: [ShowFile; 4] = [
    ShowFile::ProgId,
    ShowFile::Maps,
    ShowFile::Links,
    ShowFile::Status,
];
const COMMANDS: [Command; 2] = [Command::Attach, Command::Detach];

/// The handler behind the files. Set before the sysfs group is created and
/// cleared only after it is removed, so `show` and `store` never see it
/// change. Points at a `KBox<Arc<dyn Control>>`'s contents.
static CONTROL: AtomicPtr<Arc<dyn Control>> = AtomicPtr::new(null_mut());

/// A `struct module_attribute` in writable static memory (sysfs and lockdep
/// take its address; the kernel declares these non-const).
#[repr(transparent)]
struct ModuleAttr(UnsafeCell<bindings::module_attribute>);

// SAFETY: after registration only sysfs reads it; we never write it.
unsafe impl Sync for ModuleAttr {}

impl ModuleAttr {
    /// Files 0..4 are read-only (0444), 4..6 write-only for root (0200).
    const fn new(index: usize) -> Self {
        // SAFETY: `module_attribute` is plain data (pointers, integers,
        // optional function pointers), for which all zeroes is valid: null
        // pointers and `None`.
        let mut attr: bindings::module_attribute = unsafe { core::mem::zeroed() };
        attr.attr.name = FILE_NAMES[index].as_char_ptr();
        match index {
            0..=3 => {
                attr.attr.mode = 0o444;
                attr.show = Some(match index {
                    0 => show_file::<0>,
                    1 => show_file::<1>,
                    2 => show_file::<2>,
                    _ => show_file::<3>,
                });
            }
            _ => {
                attr.attr.mode = 0o200;
                attr.store = Some(match index {
                    4 => store_file::<0>,
                    _ => store_file::<1>,
                });
            }
        }
        Self(UnsafeCell::new(attr))
    }
}

static ATTRS: [ModuleAttr; FILES] = [
    ModuleAttr::new(0),
    ModuleAttr::new(1),
    ModuleAttr::new(2),
    ModuleAttr::new(3),
    ModuleAttr::new(4),
    ModuleAttr::new(5),
];

/// Null-terminated array of attribute pointers, as `attribute_group` wants.
#[repr(transparent)]
struct AttrList([*mut bindings::attribute; FILES + 1]);

// SAFETY: read-only after construction; it points at `'static` attributes.
unsafe impl Sync for AttrList {}

static ATTR_LIST: AttrList = AttrList([
    // `module_attribute` starts with its `attribute`, so the cast is the
    // C idiom `&attr.attr`.
    ATTRS[0].0.get().cast(),
    ATTRS[1].0.get().cast(),
    ATTRS[2].0.get().cast(),
    ATTRS[3].0.get().cast(),
    ATTRS[4].0.get().cast(),
    ATTRS[5].0.get().cast(),
    null_mut(),
]);

/// The `attribute_group` named `bpf` under the module's kobject.
#[repr(transparent)]
struct Group(UnsafeCell<bindings::attribute_group>);

// SAFETY: read by sysfs only; never written after construction.
unsafe impl Sync for Group {}

static GROUP: Group = Group(UnsafeCell::new(bindings::attribute_group {
    name: kernel::c_str!("bpf").as_char_ptr(),
    is_visible: None,
    is_bin_visible: None,
    attrs: ATTR_LIST.0.as_ptr().cast_mut(),
    bin_attrs: null_mut(),
}));

/// The registered handler, for the duration of a `show` or `store`.
fn control() -> Option<&'static dyn Control> {
    let p = CONTROL.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: `ControlFiles` publishes `p` before creating the group and
    // frees it only after `sysfs_remove_group`, which waits for running
    // `show` and `store` calls, the only callers; so while they run, `p`
    // is live and unchanged. The `'static` does not escape them.
    Some(unsafe { &**p })
}

/// `show` of read-only file `I`: copies its text into the sysfs page, cut
/// after the last whole line that fits.
unsafe extern "C" fn show_file<const I: usize>(
    _attr: *mut bindings::module_attribute,
    _kobj: *mut bindings::module_kobject,
    buf: *mut c_char,
) -> isize {
    let Some(control) = control() else {
        return 0;
    };
    let mut text = KVec::new();
    if let Err(e) = control.show(SHOW_FILES[I], &mut text) {
        return e.to_errno() as isize;
    }
    let mut len = text.len();
    if len > bindings::PAGE_SIZE - 1 {
        let cut = &text[..bindings::PAGE_SIZE - 1];
        len = cut
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(cut.len(), |i| i + 1);
    }
    // SAFETY: sysfs hands `show` a PAGE_SIZE buffer; we copy at most
    // PAGE_SIZE - 1 bytes from a buffer that does not overlap it.
    unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), len) };
    len as isize
}

/// `store` of write-only file `4 + I`: runs its command on what was written.
unsafe extern "C" fn store_file<const I: usize>(
    _attr: *mut bindings::module_attribute,
    _kobj: *mut bindings::module_kobject,
    buf: *const c_char,
    count: usize,
) -> isize {
    let Some(control) = control() else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: sysfs passes `count` readable bytes at `buf` (a kernel copy of
    // what was written), valid for the duration of the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    match control.store(COMMANDS[I], input) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// The files of `/sys/module/xdpguard/bpf/`, removed on drop.
///
/// # Invariants
///
/// While this value exists, the group is registered on the module's kobject
/// and `CONTROL` points at a live `Arc` boxed by this value.
pub(crate) struct ControlFiles {
    module: &'static ThisModule,
}

impl ControlFiles {
    /// Creates `prog_id`, `maps`, `links`, `status` (read-only) and
    /// `attach`, `detach` (write-only), served by `control`.
    pub(crate) fn register(module: &'static ThisModule, control: Arc<dyn Control>) -> Result<Self> {
        let raw = KBox::into_raw(KBox::new(control, GFP_KERNEL)?);
        if CONTROL
            .compare_exchange(null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: `raw` came from `KBox::into_raw` just above and was
            // not published.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(EBUSY);
        }
        // SAFETY: `module` is this module, live for the whole `init`..`exit`
        // span; its `mkobj.kobj` was added to sysfs before `init` ran. The
        // group and its attributes are `'static`.
        let ret = unsafe {
            bindings::sysfs_create_group(&raw mut (*module.as_ptr()).mkobj.kobj, GROUP.0.get())
        };
        if ret != 0 {
            let raw = CONTROL.swap(null_mut(), Ordering::AcqRel);
            // SAFETY: the group was not created, so no reader can hold
            // `raw`; it came from `KBox::into_raw` above.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: the group is registered and the handler published.
        Ok(Self { module })
    }
}

impl Drop for ControlFiles {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the group is registered on this
        // module's kobject; removal waits for `show` and `store` calls in
        // progress.
        unsafe {
            bindings::sysfs_remove_group(&raw mut (*self.module.as_ptr()).mkobj.kobj, GROUP.0.get())
        };
        let raw = CONTROL.swap(null_mut(), Ordering::AcqRel);
        if !raw.is_null() {
            // SAFETY: no `show` or `store` can run any more (group
            // removed), and `raw` came from `KBox::into_raw` in `register`.
            drop(unsafe { KBox::from_raw(raw) });
        }
    }
}
