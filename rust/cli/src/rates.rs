// SPDX-License-Identifier: GPL-2.0

//! Rates from two counter snapshots, as `xdpguard top` shows them.

use xdpguard_abi::Counter;

/// Sum of two counters.
pub fn add(a: Counter, b: Counter) -> Counter {
    Counter {
        packets: a.packets.wrapping_add(b.packets),
        bytes: a.bytes.wrapping_add(b.bytes),
    }
}

/// Packets and bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rate {
    /// Packets per second.
    pub pps: f64,
    /// Bytes per second.
    pub bps: f64,
}

/// The rate between snapshot `prev` and `now`, `secs` apart. A counter that
/// went backwards was reset (module reloaded, entry re-created): its growth
/// since the reset is `now` itself.
pub fn rate(prev: Counter, now: Counter, secs: f64) -> Rate {
    if secs <= 0.0 {
        return Rate::default();
    }
    let d = |a: u64, b: u64| if b >= a { b - a } else { b };
    Rate {
        pps: d(prev.packets, now.packets) as f64 / secs,
        bps: d(prev.bytes, now.bytes) as f64 / secs,
    }
}

/// A rate in human units: `12`, `1.5k`, `3.2M`, `1.1G`.
pub fn human(v: f64) -> String {
    let (v, unit) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        return format!("{v:.0}");
    };
    format!("{v:.1}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(packets: u64, bytes: u64) -> Counter {
        Counter { packets, bytes }
    }

    #[test]
    fn rate_is_growth_over_time() {
        let r = rate(c(100, 10_000), c(300, 30_000), 2.0);
        assert_eq!(
            r,
            Rate {
                pps: 100.0,
                bps: 10_000.0
            }
        );
        assert_eq!(rate(c(5, 5), c(5, 5), 1.0), Rate::default());
    }

    #[test]
    fn reset_counters_count_from_zero() {
        let r = rate(c(1000, 1000), c(10, 640), 1.0);
        assert_eq!(
            r,
            Rate {
                pps: 10.0,
                bps: 640.0
            }
        );
    }

    #[test]
    fn no_time_no_rate() {
        assert_eq!(rate(c(0, 0), c(10, 10), 0.0), Rate::default());
    }

    #[test]
    fn human_units() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(999.4), "999");
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(3_200_000.0), "3.2M");
        assert_eq!(human(1.1e9), "1.1G");
    }

    #[test]
    fn add_sums_fields() {
        assert_eq!(add(c(1, 2), c(3, 4)), c(4, 6));
    }
}
