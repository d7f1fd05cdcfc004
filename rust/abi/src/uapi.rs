// SPDX-License-Identifier: GPL-2.0
//
// Prefixes of the kernel's `union bpf_attr` (UAPI, stable) for the bpf(2)
// commands xdpguard issues from both sides: the module (kern_sys_bpf) and
// userspace (the bpf(2) syscall). Every byte is a named field, so no
// implicit padding reaches the kernel, which rejects non-zero tails. Kept
// free of crate attributes: the module includes this file with `#[path]`.

/// `BPF_OBJ_NAME_LEN`: object names, including the NUL.
pub const BPF_OBJ_NAME_LEN: usize = 16;
/// `BPF_PROG_TYPE_XDP`.
pub const BPF_PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP` attach type.
pub const BPF_XDP: u32 = 37;

/// `union bpf_attr` as `BPF_MAP_CREATE` reads it, up to `map_name`.
#[repr(C)]
#[derive(Default)]
pub struct MapCreateAttr {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// Inner map (map-in-map); unused.
    pub inner_map_fd: u32,
    /// NUMA node with `BPF_F_NUMA_NODE`; unused.
    pub numa_node: u32,
    /// Name, NUL-padded.
    pub map_name: [u8; BPF_OBJ_NAME_LEN],
}

/// `union bpf_attr` as `BPF_PROG_LOAD` reads it, up to
/// `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
pub struct ProgLoadAttr {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Number of instructions.
    pub insn_cnt: u32,
    /// Address of the instructions.
    pub insns: u64,
    /// Address of the NUL-terminated license.
    pub license: u64,
    /// Verifier log level (0: none).
    pub log_level: u32,
    /// Size of the log buffer.
    pub log_size: u32,
    /// Address of the log buffer (always a user address).
    pub log_buf: u64,
    /// Unused.
    pub kern_version: u32,
    /// `BPF_F_*` program flags.
    pub prog_flags: u32,
    /// Name, NUL-padded.
    pub prog_name: [u8; BPF_OBJ_NAME_LEN],
    /// Offload device; unused.
    pub prog_ifindex: u32,
    /// `BPF_XDP` for XDP programs attached by link.
    pub expected_attach_type: u32,
}

/// `union bpf_attr` as `BPF_LINK_CREATE` reads it for XDP.
#[repr(C)]
#[derive(Default)]
pub struct LinkCreateAttr {
    /// Program to attach.
    pub prog_fd: u32,
    /// Interface to attach to.
    pub target_ifindex: u32,
    /// `BPF_XDP`.
    pub attach_type: u32,
    /// `XDP_FLAGS_*` mode.
    pub flags: u32,
}

/// `union bpf_attr` as `BPF_MAP_UPDATE_ELEM` reads it.
#[repr(C)]
#[derive(Default)]
pub struct MapElemAttr {
    /// Map to update.
    pub map_fd: u32,
    /// Padding before the 64-bit fields, zero.
    pub _pad: u32,
    /// Address of the key.
    pub key: u64,
    /// Address of the value.
    pub value: u64,
    /// `BPF_ANY`, `BPF_NOEXIST` or `BPF_EXIST`.
    pub flags: u64,
}

/// Copies `name` into a NUL-padded BPF object name, truncating at 15 bytes.
pub fn obj_name(name: &str) -> [u8; BPF_OBJ_NAME_LEN] {
    let mut out = [0u8; BPF_OBJ_NAME_LEN];
    for (o, b) in out.iter_mut().zip(name.bytes().take(BPF_OBJ_NAME_LEN - 1)) {
        *o = b;
    }
    out
}

const _: () = {
    assert!(core::mem::size_of::<MapCreateAttr>() == 44);
    assert!(core::mem::size_of::<ProgLoadAttr>() == 72);
    assert!(core::mem::size_of::<LinkCreateAttr>() == 16);
    assert!(core::mem::size_of::<MapElemAttr>() == 32);
};
