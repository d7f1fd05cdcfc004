// SPDX-License-Identifier: GPL-2.0

//! Drop samples: the start of dropped frames, rate-limited per CPU, into
//! the ring buffer `xdpg_samples` for `xdpguard` to read.

use aya_ebpf::{helpers::bpf_ktime_get_ns, helpers::gen::bpf_xdp_load_bytes, programs::XdpContext};
use xdpguard_abi::*;

use crate::{ingress_ifindex, Decision, Facts, SAMPLES};

/// Tokens after `elapsed` ns at `rate` per second, capped at `full` (the
/// sampling budget). The product `elapsed * rate` is only formed below the
/// fill time, where it is below `full`, so it cannot overflow.
#[inline(always)]
fn refill(tokens: u64, elapsed: u64, rate: u64, full: u64) -> u64 {
    // `checked_div`, not `/`: at opt-level 0 a division keeps its call to
    // the divide-by-zero panic, which BPF cannot make.
    let fill = match full.checked_div(rate) {
        Some(fill) => fill,
        None => return full,
    };
    if elapsed >= fill {
        return full;
    }
    let t = tokens + elapsed * rate;
    if t > full {
        full
    } else {
        t
    }
}

/// Puts the start of a dropped frame into the sample ring buffer, at most
/// `cfg.sample_rate` per second on this CPU.
#[inline(always)]
pub(crate) fn sample(ctx: &XdpContext, cfg: &Config, f: &mut Facts, d: &Decision, len: u64) {
    if cfg.sample_rate == 0 {
        return;
    }
    const NS: u64 = 1_000_000_000;
    // SAFETY: `bpf_ktime_get_ns` takes no arguments and has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let rate = cfg.sample_rate as u64;
    let t = refill(
        f.sample_tokens,
        now.saturating_sub(f.sample_last_ns),
        rate,
        rate * NS,
    );
    f.sample_last_ns = now;
    if t < NS {
        f.sample_tokens = t;
        return;
    }
    f.sample_tokens = t - NS;
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
        (*s).ifindex = ingress_ifindex(ctx);
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
