// SPDX-License-Identifier: GPL-2.0
//
// Prefixes of the kernel's `union bpf_attr` (UAPI, stable) for the bpf(2)
// commands xdpguard issues from both sides: the module (kern_sys_bpf) and
// userspace (the bpf(2) syscall). Every byte is a named field, so no
// implicit padding reaches the kernel, which rejects non-zero tails. Kept
// free of crate attributes: the module includes this file with `#[path]`.

/// bpf(2) commands (`enum bpf_cmd`).
pub const BPF_MAP_CREATE: u32 = 0;
/// `BPF_MAP_LOOKUP_ELEM`.
pub const BPF_MAP_LOOKUP_ELEM: u32 = 1;
/// `BPF_MAP_UPDATE_ELEM`.
pub const BPF_MAP_UPDATE_ELEM: u32 = 2;
/// `BPF_MAP_DELETE_ELEM`.
pub const BPF_MAP_DELETE_ELEM: u32 = 3;
/// `BPF_MAP_GET_NEXT_KEY`.
pub const BPF_MAP_GET_NEXT_KEY: u32 = 4;
/// `BPF_PROG_LOAD`.
pub const BPF_PROG_LOAD: u32 = 5;
/// `BPF_OBJ_PIN`.
pub const BPF_OBJ_PIN: u32 = 6;
/// `BPF_OBJ_GET`.
pub const BPF_OBJ_GET: u32 = 7;
/// `BPF_PROG_TEST_RUN`.
pub const BPF_PROG_TEST_RUN: u32 = 10;
/// `BPF_PROG_GET_FD_BY_ID`.
pub const BPF_PROG_GET_FD_BY_ID: u32 = 13;
/// `BPF_MAP_GET_FD_BY_ID`.
pub const BPF_MAP_GET_FD_BY_ID: u32 = 14;
/// `BPF_OBJ_GET_INFO_BY_FD`.
pub const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
/// `BPF_MAP_LOOKUP_BATCH`.
pub const BPF_MAP_LOOKUP_BATCH: u32 = 24;
/// `BPF_MAP_UPDATE_BATCH`.
pub const BPF_MAP_UPDATE_BATCH: u32 = 26;
/// `BPF_MAP_DELETE_BATCH`.
pub const BPF_MAP_DELETE_BATCH: u32 = 27;
/// `BPF_LINK_CREATE`.
pub const BPF_LINK_CREATE: u32 = 28;

/// `src_reg` of a `BPF_LD_IMM64` that loads a map by fd.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;

/// `XDP_FLAGS_SKB_MODE` (`if_link.h`): generic XDP.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP in the driver.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

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

/// `union bpf_attr` for the `*_GET_FD_BY_ID` commands.
#[repr(C)]
#[derive(Default)]
pub struct IdAttr {
    /// Object id.
    pub id: u32,
    /// Unused here.
    pub next_id: u32,
    /// `BPF_F_RDONLY` and friends; zero.
    pub open_flags: u32,
}

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
pub struct BatchAttr {
    /// Address of the start token (lookup), or 0.
    pub in_batch: u64,
    /// Address of the next-token output (lookup).
    pub out_batch: u64,
    /// Address of the keys.
    pub keys: u64,
    /// Address of the values.
    pub values: u64,
    /// Elements in, elements done out.
    pub count: u32,
    /// Map.
    pub map_fd: u32,
    /// `BPF_ANY` and friends.
    pub elem_flags: u64,
    /// Zero.
    pub flags: u64,
}

/// `union bpf_attr` as `BPF_PROG_TEST_RUN` reads it.
#[repr(C)]
#[derive(Default)]
pub struct TestRunAttr {
    /// Program.
    pub prog_fd: u32,
    /// Out: the program's return value.
    pub retval: u32,
    /// Bytes of `data_in`.
    pub data_size_in: u32,
    /// In: room at `data_out`; out: bytes written.
    pub data_size_out: u32,
    /// Address of the input frame.
    pub data_in: u64,
    /// Address of the output buffer.
    pub data_out: u64,
    /// Runs.
    pub repeat: u32,
    /// Out: mean ns per run.
    pub duration: u32,
    /// Unused (no context).
    pub ctx_size_in: u32,
    /// Unused.
    pub ctx_size_out: u32,
    /// Unused.
    pub ctx_in: u64,
    /// Unused.
    pub ctx_out: u64,
    /// Zero.
    pub flags: u32,
    /// Zero.
    pub cpu: u32,
    /// Zero.
    pub batch_size: u32,
    /// Explicit tail: the kernel rejects non-zero bytes past the last
    /// field, and implicit padding would be uninitialised.
    pub _pad: u32,
}

/// `union bpf_attr` for `BPF_OBJ_PIN` and `BPF_OBJ_GET`.
#[repr(C)]
#[derive(Default)]
pub struct ObjAttr {
    /// Address of the NUL-terminated path.
    pub pathname: u64,
    /// Object to pin (pin only).
    pub bpf_fd: u32,
    /// Zero.
    pub file_flags: u32,
}

/// `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
pub struct InfoAttr {
    /// Object.
    pub bpf_fd: u32,
    /// Bytes at `info`.
    pub info_len: u32,
    /// Address of the `bpf_map_info` / `bpf_prog_info` buffer.
    pub info: u64,
}

/// Byte offsets of the `struct bpf_map_info` fields xdpguard reads.
pub mod map_info {
    /// `type`.
    pub const TYPE: usize = 0;
    /// `id`.
    pub const ID: usize = 4;
    /// `key_size`.
    pub const KEY_SIZE: usize = 8;
    /// `value_size`.
    pub const VALUE_SIZE: usize = 12;
    /// `max_entries`.
    pub const MAX_ENTRIES: usize = 16;
    /// `map_flags`.
    pub const MAP_FLAGS: usize = 20;
    /// `name` (`BPF_OBJ_NAME_LEN` bytes).
    pub const NAME: usize = 24;
}

/// Byte offsets of the `struct bpf_prog_info` fields xdpguard reads.
pub mod prog_info {
    /// `id`.
    pub const ID: usize = 4;
    /// `jited_prog_len`.
    pub const JITED_LEN: usize = 16;
    /// `xlated_prog_len`.
    pub const XLATED_LEN: usize = 20;
    /// `name` (`BPF_OBJ_NAME_LEN` bytes).
    pub const NAME: usize = 64;
    /// `verified_insns`.
    pub const VERIFIED_INSNS: usize = 216;
}

/// Size of the buffer xdpguard gives `BPF_OBJ_GET_INFO_BY_FD`: larger
/// than 6.12's `bpf_prog_info` and `bpf_map_info`.
pub const INFO_BUF: usize = 256;

/// `BPF_RINGBUF_BUSY_BIT`: a ring buffer record's header says it is still
/// being written.
pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; skip it.
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: bytes of a record's header (length and flags,
/// then the page offset); records are padded to 8 bytes.
pub const BPF_RINGBUF_HDR_SZ: usize = 8;

/// Marks the attr layouts above: `repr(C)` with every byte a named field
/// (sizes checked below), so they may be handed to bpf(2) as they are.
///
/// # Safety
///
/// Implementors are a `repr(C)` prefix of `union bpf_attr` for some
/// command, with no implicit padding.
pub unsafe trait BpfAttr {}
// SAFETY: each is a checked `repr(C)` prefix of `union bpf_attr`.
unsafe impl BpfAttr for MapCreateAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for ProgLoadAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for LinkCreateAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for MapElemAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for IdAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for BatchAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for TestRunAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for ObjAttr {}
// SAFETY: as above.
unsafe impl BpfAttr for InfoAttr {}

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
    assert!(core::mem::size_of::<IdAttr>() == 12);
    assert!(core::mem::size_of::<BatchAttr>() == 56);
    assert!(core::mem::size_of::<TestRunAttr>() == 80);
    assert!(core::mem::size_of::<ObjAttr>() == 16);
    assert!(core::mem::size_of::<InfoAttr>() == 16);
};
