// SPDX-License-Identifier: GPL-2.0

//! BPF programs: open by id, info, the `XDP_PASS` baseline, test runs.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
};

use xdpguard_abi::uapi::{
    obj_name, prog_info, IdAttr, ProgLoadAttr, TestRunAttr, BPF_PROG_GET_FD_BY_ID, BPF_PROG_LOAD,
    BPF_PROG_TEST_RUN, BPF_PROG_TYPE_XDP, BPF_XDP,
};

use super::{name_at, obj_info, owned, sys_bpf, u32_at};

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
            id: u32_at(&b, prog_info::ID),
            jited_len: u32_at(&b, prog_info::JITED_LEN),
            xlated_len: u32_at(&b, prog_info::XLATED_LEN),
            name: name_at(&b, prog_info::NAME),
            verified_insns: u32_at(&b, prog_info::VERIFIED_INSNS),
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
