// SPDX-License-Identifier: GPL-2.0

//! Drop samples: the start of dropped frames, rate-limited per CPU, into
//! the ring buffer `xdpg_samples` for `xdpguard` to read.

use aya_ebpf::{helpers::bpf_ktime_get_ns, helpers::gen::bpf_xdp_load_bytes, programs::XdpContext};
use xdpguard_abi::*;

use crate::{Decision, SAMPLES, SCRATCH};

/// Drops after the budget ran out whose clock is read one by one; past
/// them, only every `MISS_STRIDE`th drop is (a flood then reads the clock
/// on a small fraction of its drops).
const MISS_CHECKS: u16 = 64;
/// See `MISS_CHECKS` (a power of two).
const MISS_STRIDE: u32 = 64;
const _: () = assert!(MISS_STRIDE.is_power_of_two());

/// Whether this drop may be sampled: at most `rate` per one-second
/// window of this CPU, windows starting at the first sample after the
/// previous one ended. The clock is read for a sample (its time stamp)
/// and, once the window's budget is spent, for the first `MISS_CHECKS`
/// drops and then every `MISS_STRIDE`th drop of this CPU, to notice the
/// window's end; a drop that is not sampled costs no clock read
/// otherwise. The stride counts every drop since the module loaded, not
/// since the window began, so under a steady flood which drops read the
/// clock depends only on their number (the instruction-count benchmark
/// relies on it). Returns the time to stamp the sample with.
#[inline(always)]
fn take(rate: u16) -> Option<u64> {
    const NS: u64 = 1_000_000_000;
    let b = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: a per-CPU array lookup returns this CPU's value, which no
    // one else touches while this program runs here (XDP runs with
    // preemption off); the budget is integers, valid for any bit pattern.
    let b = unsafe { &mut *b };
    b.drops = b.drops.wrapping_add(1);
    if b.left > 0 {
        b.left -= 1;
        // SAFETY: `bpf_ktime_get_ns` takes no arguments and has no
        // preconditions.
        return Some(unsafe { bpf_ktime_get_ns() });
    }
    if b.checks < MISS_CHECKS {
        b.checks += 1;
    } else if b.drops & (MISS_STRIDE - 1) != 0 {
        return None;
    }
    // SAFETY: as above.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(b.window_ns) < NS && b.window_ns != 0 {
        return None;
    }
    b.window_ns = now;
    b.left = rate - 1;
    b.checks = 0;
    Some(now)
}

/// Puts the start of a dropped frame into the sample ring buffer, at most
/// `cfg.sample_rate` per second on this CPU.
#[inline(always)]
pub(crate) fn sample(ctx: &XdpContext, ifindex: u32, cfg: &Config, d: &Decision, len: u64) {
    if cfg.sample_rate == 0 {
        return;
    }
    let Some(now) = take(cfg.sample_rate) else {
        return;
    };
    let Some(mut entry) = SAMPLES.reserve::<Sample>(0) else {
        return;
    };
    let s = entry.as_mut_ptr();
    let cap = if len > SAMPLE_CAPTURE as u64 {
        SAMPLE_CAPTURE as u64
    } else {
        len
    };
    // The verifier needs 1 <= size <= SAMPLE_CAPTURE from the instructions
    // themselves. A volatile read hides `cap`'s range from LLVM, so no
    // optimisation can fold the mask below into what it knows of `cap`;
    // the mask and the +1 then prove the range to the verifier. For `cap`
    // in 1..=SAMPLE_CAPTURE the result equals `cap`; 0 becomes
    // SAMPLE_CAPTURE, longer than the frame, and the copy fails cleanly.
    // SAFETY: reading a local through a reference to it.
    let cap = unsafe { core::ptr::read_volatile(&cap) };
    let size = (cap.wrapping_sub(1) & (SAMPLE_CAPTURE as u64 - 1)) + 1;
    const _: () = assert!(SAMPLE_CAPTURE.is_power_of_two());
    // SAFETY: `s` points at a reserved, exclusively owned ring-buffer
    // record of `size_of::<Sample>()` bytes; every field is written before
    // it is submitted. `bpf_xdp_load_bytes` copies `size` (at most
    // SAMPLE_CAPTURE) bytes of the frame into `data`, which has that room.
    unsafe {
        (*s).ts_ns = now;
        (*s).ifindex = ifindex;
        (*s).rule_id = d.rule_id;
        (*s).reason = d.reason;
        (*s).len = len as u32;
        (*s).monitor = cfg.monitor as u32;
        (*s).data = [0; SAMPLE_CAPTURE];
        let ok = bpf_xdp_load_bytes(ctx.ctx, 0, (*s).data.as_mut_ptr().cast(), size as u32) == 0;
        (*s).cap_len = if ok { size as u32 } else { 0 };
    }
    entry.submit(0);
}
