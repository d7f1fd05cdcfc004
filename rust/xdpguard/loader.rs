// SPDX-License-Identifier: GPL-2.0

//! The loader: creates the program's maps, writes the load-time configuration, relocates the embedded program against the maps and loads it.
//!
//! The program comes from `rust/skel` as instructions and a list of map
//! relocations (`skel_generated.rs`). Each relocated instruction becomes a
//! `BPF_PSEUDO_MAP_FD` load of its map's fd, and the verifier and JIT take
//! the result. When the verifier refuses it, the program is loaded again
//! with the verifier log on and the end of the log, which says why, goes
//! to dmesg.

use crate::{
    abi::{self, MapId},
    ffi::{
        bpf::{self, MapRef, ProgRef, UserLog},
        Fd,
    },
    skel, uapi, Params,
};
use kernel::{
    prelude::*,
    str::BStr,
    time::{ktime_ms_delta, Ktime},
};

/// Size of the user buffer the verifier writes its log to on a rejection.
const VERIFIER_LOG_SIZE: usize = 256 * 1024;
/// How many lines of the verifier log go to dmesg (the end holds the reason).
const VERIFIER_LOG_LINES: usize = 40;
/// Size of one `struct bpf_insn`.
const INSN_SIZE: usize = 8;

/// The loaded program and its maps.
pub(crate) struct Loaded {
    /// The program's fd in the loading task; closed when `init` returns.
    pub(crate) fd: Fd,
    /// The program.
    pub(crate) prog: ProgRef,
    /// The maps, in `MapId` order.
    pub(crate) maps: KVec<MapRef>,
    /// Milliseconds spent creating the maps.
    pub(crate) maps_ms: i64,
    /// Milliseconds the verifier and JIT took.
    pub(crate) load_ms: i64,
}

/// Creates the maps of `abi::MAPS`, writes the load-time configuration,
/// relocates the embedded program against the maps and loads it through
/// the verifier and JIT.
pub(crate) fn load_program(params: &Params) -> Result<Loaded> {
    let t0 = Ktime::ktime_get();
    let mut map_fds = KVec::with_capacity(MapId::COUNT, GFP_KERNEL)?;
    for id in MapId::ALL {
        let fd = bpf::map_create(id.spec())
            .inspect_err(|e| pr_err!("cannot create map {}: {:?}\n", id.name(), e))?;
        map_fds.push(fd, GFP_KERNEL)?;
    }

    // Generation 0 is active in a fresh `xdpg_active`; the program never
    // sees anything but this configuration until a rule set is applied.
    let config = abi::initial_config(params.deny, params.monitor);
    // `xdpg_config` is indexed by generation.
    let generation: u32 = 0;
    let config_map = map_fds.get(MapId::Config as usize).ok_or(EINVAL)?;
    bpf::map_update(config_map, MapId::Config.spec(), &generation, &config)
        .inspect_err(|e| pr_err!("cannot write the initial configuration: {:?}\n", e))?;

    let mut insns = KVec::with_capacity(skel::INSNS.len(), GFP_KERNEL)?;
    insns.extend_from_slice(&skel::INSNS, GFP_KERNEL)?;
    for &(insn, map) in skel::MAP_RELOCS.iter() {
        let fd = map_fds.get(map as usize).ok_or(EINVAL)?;
        patch_map_fd(&mut insns, insn as usize, fd)?;
    }

    let t1 = Ktime::ktime_get();
    let fd = match bpf::prog_load_xdp(&insns, skel::LICENSE, abi::PROG_NAME, None) {
        Ok(fd) => fd,
        Err(e) => {
            pr_err!("the kernel rejected the XDP program: {:?}\n", e);
            report_verifier_log(&insns);
            return Err(e);
        }
    };
    let prog = ProgRef::from_fd(&fd)?;
    let mut maps = KVec::with_capacity(map_fds.len(), GFP_KERNEL)?;
    for map_fd in map_fds.iter() {
        maps.push(MapRef::from_fd(map_fd)?, GFP_KERNEL)?;
    }
    let t2 = Ktime::ktime_get();
    // The map fds close here; the program and our references keep the maps.
    Ok(Loaded {
        fd,
        prog,
        maps,
        maps_ms: ktime_ms_delta(t1, t0),
        load_ms: ktime_ms_delta(t2, t1),
    })
}

/// Points the 64-bit immediate load at instruction `insn` of `insns` at the
/// map behind `map`, as the verifier expects (`BPF_PSEUDO_MAP_FD`).
fn patch_map_fd(insns: &mut [u8], insn: usize, map: &Fd) -> Result {
    let base = insn.checked_mul(INSN_SIZE).ok_or(EINVAL)?;
    let slot = insns.get_mut(base..base + INSN_SIZE).ok_or(EINVAL)?;
    // `struct bpf_insn`: code, dst_reg:4 | src_reg:4, off (2), imm (4).
    slot[1] = (slot[1] & 0x0f) | (uapi::BPF_PSEUDO_MAP_FD << 4);
    slot[4..8].copy_from_slice(&map.as_raw().to_le_bytes());
    Ok(())
}

/// Loads the program again with the verifier log on and prints its end,
/// where the verifier says why it refused.
fn report_verifier_log(insns: &[u8]) {
    let log = match UserLog::new(VERIFIER_LOG_SIZE) {
        Ok(log) => log,
        Err(e) => {
            pr_err!("no verifier log: cannot map a log buffer: {:?}\n", e);
            return;
        }
    };
    // The load is expected to fail again; what matters is the log it writes.
    let _ = bpf::prog_load_xdp(insns, skel::LICENSE, abi::PROG_NAME, Some(&log));
    let text = match log.read() {
        Ok(text) => text,
        Err(e) => {
            pr_err!("no verifier log: cannot read it: {:?}\n", e);
            return;
        }
    };
    for line in last_lines(&text, VERIFIER_LOG_LINES) {
        pr_err!("verifier: {}\n", BStr::from_bytes(line));
    }
}

/// The last `n` non-empty lines of a log that ends at its first NUL.
fn last_lines(log: &[u8], n: usize) -> impl Iterator<Item = &[u8]> {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let lines = log[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let skip = lines.clone().count().saturating_sub(n);
    lines.skip(skip)
}
