// SPDX-License-Identifier: GPL-2.0

//! The few bpf(2) commands xdpguard's userspace needs, as safe functions.
//!
//! Command numbers, attr layouts and the info offsets come from
//! `xdpguard_abi::uapi`, the one definition the module uses too; this
//! module only issues them: maps (`map.rs`), programs (`prog.rs`) and the
//! sample ring buffer (`ringbuf.rs`).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

use xdpguard_abi::uapi::{
    map_info, BpfAttr, InfoAttr, ObjAttr, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD, BPF_OBJ_NAME_LEN,
    INFO_BUF,
};

/// Plain-data types that may be copied to and from map memory (the ABI's
/// marker; re-exported for the users of `bpf::Pod`).
pub use xdpguard_abi::Pod;

mod map;
mod prog;
mod ringbuf;

pub use map::Map;
pub use prog::{Prog, ProgInfo, TestRun};
pub use ringbuf::RingBuf;

/// `ENOTSUPP` (524): kernel-internal, returned for map types without a
/// batch operation.
const ENOTSUPP: i32 = 524;

/// Issues bpf(2) command `cmd` with `attr`.
fn sys_bpf<T: BpfAttr>(cmd: u32, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live `repr(C)` prefix of `union bpf_attr` for
    // `cmd` (`BpfAttr`) and its size is passed; pointers inside it point at
    // buffers the callers keep alive for the call, sized as the map/program
    // expects.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            libc::c_long::from(cmd),
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

fn ptr<T>(v: &T) -> u64 {
    v as *const T as u64
}

fn c_name(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `BPF_OBJ_GET_INFO_BY_FD` into a zeroed buffer of `INFO_BUF` bytes
/// (larger than the 6.12 `bpf_prog_info` and `bpf_map_info`; the kernel
/// fills what it knows and leaves pointer fields, which stay zero, alone).
fn obj_info(fd: &OwnedFd) -> io::Result<[u8; INFO_BUF]> {
    // Words, so the kernel gets the buffer 8-byte aligned.
    let mut buf = [0u64; INFO_BUF / 8];
    let mut a = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: INFO_BUF as u32,
        info: buf.as_mut_ptr() as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    let mut out = [0u8; INFO_BUF];
    for (o, w) in out.chunks_exact_mut(8).zip(buf.iter()) {
        o.copy_from_slice(&w.to_ne_bytes());
    }
    Ok(out)
}

/// The `u32` field at byte offset `off` of an info buffer.
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The NUL-padded name field at byte offset `off` of an info buffer.
fn name_at(b: &[u8], off: usize) -> String {
    c_name(&b[off..off + BPF_OBJ_NAME_LEN])
}

/// `path` as a C string for a syscall.
pub(crate) fn path_c(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens the BPF object pinned at `path` (`BPF_OBJ_GET`).
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let c = path_c(path)?;
    let mut a = ObjAttr {
        pathname: c.as_ptr() as u64,
        ..Default::default()
    };
    Ok(owned(sys_bpf(BPF_OBJ_GET, &mut a)?))
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

/// Map info of the map behind `fd`.
pub fn map_info_of(fd: &OwnedFd) -> io::Result<MapInfo> {
    let b = obj_info(fd)?;
    Ok(MapInfo {
        map_type: u32_at(&b, map_info::TYPE),
        id: u32_at(&b, map_info::ID),
        key_size: u32_at(&b, map_info::KEY_SIZE),
        value_size: u32_at(&b, map_info::VALUE_SIZE),
        max_entries: u32_at(&b, map_info::MAX_ENTRIES),
        flags: u32_at(&b, map_info::MAP_FLAGS),
        name: name_at(&b, map_info::NAME),
    })
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
