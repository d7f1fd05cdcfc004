// SPDX-License-Identifier: GPL-2.0

//! Module parameters (`charp`, read-only) and `.modinfo` entries, as the C macros `module_param_named()` and `MODULE_INFO()` emit them.
//!
//! Rust-for-Linux in 6.12 has no `params` in `module!`: [`charp_param!`]
//! declares the storage, the `__param` entry the module loader reads and
//! the `.modinfo` type and description; [`modinfo!`] adds any other
//! `.modinfo` string.
//!
//! C headers: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h).

use core::{cell::UnsafeCell, ptr::null_mut};
use kernel::{
    bindings,
    ffi::{c_char, c_void},
    str::CStr,
};

/// Storage of a `charp` module parameter.
///
/// The kernel parses the parameter and stores a pointer to a NUL-terminated
/// copy here before `init` runs, and frees it after the module's exit.
///
/// # Invariants
///
/// The pointer is null or points at a NUL-terminated string that lives
/// until the module is unloaded; it is written only by the kernel's
/// parameter parsing, before `init` runs.
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
        // SAFETY: by the type invariant nothing writes the pointer after
        // load, so this read races with nothing.
        let p = unsafe { *self.0.get() };
        // SAFETY: by the type invariant a non-null pointer is a
        // NUL-terminated string that lives until the module is unloaded,
        // which outlives `&self`.
        (!p.is_null()).then(|| unsafe { CStr::from_char_ptr(p) })
    }

    const fn as_arg(&'static self) -> *mut c_void {
        self.0.get().cast()
    }
}

/// A `struct kernel_param` in the `__param` section, where the module loader
/// finds it.
///
/// # Invariants
///
/// Every pointer in it is null or points at a `'static` value of the type
/// the loader expects.
#[repr(transparent)]
pub(crate) struct KernelParam(bindings::kernel_param);

// SAFETY: the loader only reads it, and every pointer in it points at a
// `'static` value.
unsafe impl Sync for KernelParam {}

impl KernelParam {
    /// A read-only (0444) `charp` parameter called `name` stored in
    /// `storage`, belonging to `module` (null when built in) and parsed by
    /// `ops` (`param_ops_charp`).
    ///
    /// # Safety
    ///
    /// `module` must be this module's `__this_module`, or null when built
    /// in, and `ops` must point at `param_ops_charp`.
    pub(crate) const unsafe fn charp(
        name: &'static CStr,
        storage: &'static CharpParam,
        module: *mut bindings::module,
        ops: *const bindings::kernel_param_ops,
    ) -> Self {
        // INVARIANT: `name` and `storage` are `'static`, and so are
        // `module` and `ops` by the safety requirements.
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
        pub(crate) static $storage: $crate::ffi::param::CharpParam =
            $crate::ffi::param::CharpParam::new();
        const _: () = {
            #[cfg(MODULE)]
            #[link_section = "__param"]
            #[used(compiler)]
            // SAFETY: `__this_module` is this module's (modpost defines it
            // for every module) and the ops are `param_ops_charp`; only
            // their addresses are taken.
            static PARAM: $crate::ffi::param::KernelParam = unsafe {
                $crate::ffi::param::KernelParam::charp(
                    kernel::c_str!($name),
                    &$storage,
                    &raw mut kernel::bindings::__this_module,
                    &raw const kernel::bindings::param_ops_charp,
                )
            };
            #[cfg(not(MODULE))]
            #[link_section = "__param"]
            #[used(compiler)]
            // SAFETY: built in, so no module; the ops are `param_ops_charp`.
            static PARAM: $crate::ffi::param::KernelParam = unsafe {
                $crate::ffi::param::KernelParam::charp(
                    kernel::c_str!(concat!("xdpguard.", $name)),
                    &$storage,
                    core::ptr::null_mut(),
                    &raw const kernel::bindings::param_ops_charp,
                )
            };
            $crate::ffi::param::modinfo!(concat!("parmtype=", $name, ":charp"));
            $crate::ffi::param::modinfo!(concat!("parm=", $name, ":", $desc));
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
            static INFO: [u8; S.len() + 1] = $crate::ffi::param::modinfo_bytes("", S);
            #[cfg(not(MODULE))]
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static INFO: [u8; S.len() + 10] = $crate::ffi::param::modinfo_bytes("xdpguard.", S);
        };
    };
}
pub(crate) use modinfo;
