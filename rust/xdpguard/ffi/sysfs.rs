// SPDX-License-Identifier: GPL-2.0

//! The attribute group `bpf/` on the module's kobject: four read-only files and two write-only ones, served by a [`Control`].
//!
//! The file and directory names are those of the sysfs protocol
//! (`abi::sysfs`); what the files show and do is the [`Control`]'s.
//!
//! C headers: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h),
//! [`include/linux/module.h`](srctree/include/linux/module.h).

use crate::sysfs::{DIR, MODULE_DIR, SHOW_FILES, STORE_FILES};
use core::{
    cell::UnsafeCell,
    ptr::null_mut,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{bindings, error::Error, ffi::c_char, prelude::*, sync::Arc};

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

/// Most bytes a read-only file shows: a page, less the NUL sysfs keeps.
pub(crate) const SHOW_MAX: usize = bindings::PAGE_SIZE - 1;

/// What the files of `/sys/module/xdpguard/bpf/` show and do.
pub(crate) trait Control: Send + Sync {
    /// Writes the text of `file` to `out` and returns how many of its
    /// bytes to show: at most [`SHOW_MAX`], so the handler cuts longer
    /// text where it should end.
    fn show(&self, file: ShowFile, out: &mut KVec<u8>) -> Result<usize>;
    /// Runs the command written to `cmd` (`input` without its NUL).
    fn store(&self, cmd: Command, input: &[u8]) -> Result;
}

/// Number of files in `/sys/module/xdpguard/bpf/`.
const FILES: usize = SHOW_FILES.len() + STORE_FILES.len();
/// The read-only files, in `SHOW_FILES` order.
const SHOWN: [ShowFile; SHOW_FILES.len()] = [
    ShowFile::ProgId,
    ShowFile::Maps,
    ShowFile::Links,
    ShowFile::Status,
];
/// The write-only files, in `STORE_FILES` order.
const COMMANDS: [Command; STORE_FILES.len()] = [Command::Attach, Command::Detach];

/// Room for a file or group name and its NUL.
const NAME_LEN: usize = 16;

/// `name` NUL-padded, as C reads it.
const fn c_name(name: &[u8]) -> [u8; NAME_LEN] {
    assert!(name.len() < NAME_LEN);
    let mut out = [0u8; NAME_LEN];
    let mut i = 0;
    while i < name.len() {
        out[i] = name[i];
        i += 1;
    }
    out
}

/// The group's name: `DIR` below `MODULE_DIR`.
const fn group_name() -> [u8; NAME_LEN] {
    let (dir, parent) = (DIR.as_bytes(), MODULE_DIR.as_bytes());
    assert!(dir.len() > parent.len() + 1 && dir[parent.len()] == b'/');
    let mut i = 0;
    while i < parent.len() {
        assert!(dir[i] == parent[i]);
        i += 1;
    }
    let (_, name) = dir.split_at(parent.len() + 1);
    c_name(name)
}

/// The files' names, indexed as in [`ModuleAttr::new`], then the group's.
const NAMES: &[[u8; NAME_LEN]; FILES + 1] = &[
    c_name(SHOW_FILES[0].as_bytes()),
    c_name(SHOW_FILES[1].as_bytes()),
    c_name(SHOW_FILES[2].as_bytes()),
    c_name(SHOW_FILES[3].as_bytes()),
    c_name(STORE_FILES[0].as_bytes()),
    c_name(STORE_FILES[1].as_bytes()),
    group_name(),
];

/// The handler behind the files. Set before the sysfs group is created and
/// cleared only after it is removed, so `show` and `store` never see it
/// change. Points at a `KBox<Arc<dyn Control>>`'s contents.
static CONTROL: AtomicPtr<Arc<dyn Control>> = AtomicPtr::new(null_mut());

/// A `struct module_attribute` in writable static memory (sysfs and lockdep
/// take its address; the kernel declares these non-const).
///
/// # Invariants
///
/// Its name is a NUL-terminated `'static` string and its callbacks are
/// [`show_file`] or [`store_file`]; nothing writes it after construction.
#[repr(transparent)]
struct ModuleAttr(UnsafeCell<bindings::module_attribute>);

// SAFETY: after registration only sysfs reads it; we never write it.
unsafe impl Sync for ModuleAttr {}

impl ModuleAttr {
    /// The read-only files come first (0444), then the write-only ones
    /// (0200, root only).
    const fn new(index: usize) -> Self {
        // SAFETY: `module_attribute` is plain data (pointers, integers,
        // optional function pointers), for which all zeroes is valid: null
        // pointers and `None`.
        let mut attr: bindings::module_attribute = unsafe { core::mem::zeroed() };
        // INVARIANT: `NAMES` is `'static` and each entry NUL-padded.
        attr.attr.name = NAMES[index].as_ptr().cast::<c_char>();
        if index < SHOW_FILES.len() {
            attr.attr.mode = 0o444;
            attr.show = Some(match index {
                0 => show_file::<0>,
                1 => show_file::<1>,
                2 => show_file::<2>,
                _ => show_file::<3>,
            });
        } else {
            attr.attr.mode = 0o200;
            attr.store = Some(match index - SHOW_FILES.len() {
                0 => store_file::<0>,
                _ => store_file::<1>,
            });
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
///
/// # Invariants
///
/// Every entry but the last points at an attribute of [`ATTRS`]; the last
/// is null.
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
///
/// # Invariants
///
/// It names [`ATTR_LIST`] and is never written after construction.
#[repr(transparent)]
struct Group(UnsafeCell<bindings::attribute_group>);

// SAFETY: read by sysfs only; never written after construction.
unsafe impl Sync for Group {}

static GROUP: Group = Group(UnsafeCell::new(bindings::attribute_group {
    name: NAMES[FILES].as_ptr().cast::<c_char>(),
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

/// `show` of read-only file `I`: copies the first [`SHOW_MAX`] bytes of
/// its text into the sysfs page.
///
/// # Safety
///
/// Called by sysfs only, for a file of [`GROUP`] while it is registered:
/// `buf` is a writable buffer of `PAGE_SIZE` bytes.
unsafe extern "C" fn show_file<const I: usize>(
    _attr: *mut bindings::module_attribute,
    _kobj: *mut bindings::module_kobject,
    buf: *mut c_char,
) -> isize {
    let Some(control) = control() else {
        return 0;
    };
    let mut text = KVec::new();
    let len = match control.show(SHOWN[I], &mut text) {
        Ok(len) => len.min(text.len()).min(SHOW_MAX),
        Err(e) => return e.to_errno() as isize,
    };
    // SAFETY: by the function's safety requirements `buf` has PAGE_SIZE
    // bytes; we copy at most PAGE_SIZE - 1 from a buffer that does not
    // overlap it.
    unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), len) };
    len as isize
}

/// `store` of write-only file `I`: runs its command on what was written.
///
/// # Safety
///
/// Called by sysfs only, for a file of [`GROUP`] while it is registered:
/// `buf` holds `count` readable bytes for the duration of the call.
unsafe extern "C" fn store_file<const I: usize>(
    _attr: *mut bindings::module_attribute,
    _kobj: *mut bindings::module_kobject,
    buf: *const c_char,
    count: usize,
) -> isize {
    let Some(control) = control() else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: by the function's safety requirements there are `count`
    // readable bytes at `buf` (a kernel copy of what was written), valid
    // for the duration of the call.
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
