// SPDX-License-Identifier: GPL-2.0

//! Drop samples of the ring buffer: decoding, JSON (`log --json`) and pcap
//! (`capture`).
//!
//! pcap is written with the `pcap-file` crate: a small, maintained,
//! pure-Rust reader/writer of the classic libpcap format (no libpcap to
//! link), whose reader the tests use to read our files back.

use std::{io::Write, time::Duration};

use pcap_file::{
    pcap::{PcapHeader, PcapPacket, PcapWriter},
    DataLink, Endianness, TsResolution,
};
use serde_json::{json, Value};
use xdpguard_abi::*;

/// The `Sample` at the start of a ring-buffer record, if it is long enough.
pub fn decode(rec: &[u8]) -> Option<Sample> {
    if rec.len() < std::mem::size_of::<Sample>() {
        return None;
    }
    // SAFETY: `rec` holds at least one `Sample`, a plain-data repr(C) type
    // valid for any bytes; read_unaligned copes with any alignment.
    Some(unsafe { std::ptr::read_unaligned(rec.as_ptr() as *const Sample) })
}

/// The captured bytes of a sample.
pub fn frame(s: &Sample) -> &[u8] {
    &s.data[..(s.cap_len as usize).min(SAMPLE_CAPTURE)]
}

/// Interface name of `ifindex`, or `ifN` when it has none (any more).
pub fn ifname(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer has IF_NAMESIZE bytes, as if_indextoname needs;
    // on success it holds a NUL-terminated name.
    unsafe {
        let p = libc::if_indextoname(ifindex, buf.as_mut_ptr());
        if p.is_null() {
            format!("if{ifindex}")
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; both clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// Nanoseconds to add to a `CLOCK_MONOTONIC` time (the samples' clock) to
/// get the wall-clock time (`CLOCK_REALTIME`).
pub fn monotonic_offset_ns() -> i128 {
    now_ns(libc::CLOCK_REALTIME) - now_ns(libc::CLOCK_MONOTONIC)
}

/// Wall-clock time of a sample taken at monotonic `ts_ns`, since the epoch.
pub fn wall_time(ts_ns: u64, offset_ns: i128) -> Duration {
    let t = (ts_ns as i128 + offset_ns).max(0);
    Duration::new((t / 1_000_000_000) as u64, (t % 1_000_000_000) as u32)
}

fn proto_name(p: u8) -> Value {
    match p {
        1 => json!("icmp"),
        6 => json!("tcp"),
        17 => json!("udp"),
        58 => json!("icmpv6"),
        p => json!(p),
    }
}

/// One sample as a JSON object (`xdpguard log --json`).
pub fn to_json(s: &Sample, offset_ns: i128) -> Value {
    let wall = wall_time(s.ts_ns, offset_ns);
    let mut v = json!({
        "time": wall.as_secs_f64(),
        "monotonic": s.ts_ns as f64 / 1e9,
        "ifindex": s.ifindex,
        "ifname": ifname(s.ifindex),
        "verdict": if s.monitor != 0 { "would_drop" } else { "drop" },
        "reason": STAT_NAMES.get(s.reason as usize).copied().unwrap_or("?"),
        "rule": if s.rule_id == u32::MAX { Value::Null } else { json!(s.rule_id % RULES_PER_GENERATION + 1) },
        "len": s.len,
        "cap_len": s.cap_len,
    });
    match xdpguard_rules::model::parse(frame(s)) {
        Some(f) => {
            let mac = |m: [u8; 6]| {
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            };
            v["eth_src"] = json!(mac(f.eth_src));
            v["eth_dst"] = json!(mac(f.eth_dst));
            if let Some((src, dst)) = f.addrs {
                v["src"] = json!(src.to_string());
                v["dst"] = json!(dst.to_string());
                v["proto"] = proto_name(f.proto);
                match (f.proto, f.l4) {
                    (6 | 17, Some((sp, dp))) => {
                        v["sport"] = json!(sp);
                        v["dport"] = json!(dp);
                    }
                    (1 | 58, Some((tc, _))) => {
                        v["icmp_type"] = json!(tc >> 8);
                        v["icmp_code"] = json!(tc & 0xff);
                    }
                    _ => {}
                }
            }
        }
        None => v["malformed"] = json!(true),
    }
    v
}

/// A pcap writer for samples: Ethernet link type, microsecond timestamps
/// (readable by every tcpdump and Wireshark).
pub fn pcap_writer<W: Write>(w: W) -> Result<PcapWriter<W>, String> {
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        // The usual 65535, not the 128 bytes kept: pcap-file's own reader
        // (unlike libpcap) refuses records whose original length exceeds
        // the snap length. Each record still says how much was captured.
        snaplen: 65535,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::native(),
    };
    PcapWriter::with_header(w, header).map_err(|e| e.to_string())
}

/// Writes one sample as a pcap record: the captured bytes, the frame's
/// real length, the wall-clock time.
pub fn write_pcap<W: Write>(
    w: &mut PcapWriter<W>,
    s: &Sample,
    offset_ns: i128,
) -> Result<(), String> {
    let data = frame(s);
    let pkt = PcapPacket::new(
        wall_time(s.ts_ns, offset_ns),
        s.len.max(data.len() as u32),
        data,
    );
    w.write_packet(&pkt).map(|_| ()).map_err(|e| e.to_string())
}

/// One decoded drop sample, as `xdpguard log` prints it.
pub fn describe_sample(rec: &[u8]) -> Option<String> {
    if rec.len() < std::mem::size_of::<Sample>() {
        return None;
    }
    // SAFETY: `rec` holds at least one `Sample`, a plain-data repr(C) type
    // valid for any bytes; read_unaligned copes with any alignment.
    let s: Sample = unsafe { std::ptr::read_unaligned(rec.as_ptr() as *const Sample) };
    let mut ifname = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer has IF_NAMESIZE bytes, as if_indextoname needs.
    let name = unsafe {
        let p = libc::if_indextoname(s.ifindex, ifname.as_mut_ptr());
        if p.is_null() {
            format!("if{}", s.ifindex)
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    let frame = &s.data[..(s.cap_len as usize).min(SAMPLE_CAPTURE)];
    let what = match xdpguard_rules::model::parse(frame) {
        Some(f) => match f.addrs {
            Some((src, dst)) => {
                let proto = match f.proto {
                    6 => "tcp".to_string(),
                    17 => "udp".to_string(),
                    1 => "icmp".to_string(),
                    58 => "icmpv6".to_string(),
                    p => format!("proto {p}"),
                };
                match (f.proto, f.l4) {
                    (6 | 17, Some((sp, dp))) => {
                        format!("{src} port {sp} -> {dst} port {dp} {proto}")
                    }
                    (1 | 58, Some((tc, _))) => {
                        format!("{src} -> {dst} {proto} type {} code {}", tc >> 8, tc & 0xff)
                    }
                    _ => format!("{src} -> {dst} {proto}"),
                }
            }
            None => {
                let m = |m: [u8; 6]| {
                    m.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":")
                };
                format!("{} -> {} non-IP", m(f.eth_src), m(f.eth_dst))
            }
        },
        None => "malformed frame".to_string(),
    };
    let rule = if s.rule_id == u32::MAX {
        String::new()
    } else {
        format!(" rule {}", s.rule_id % RULES_PER_GENERATION + 1)
    };
    let verdict = if s.monitor != 0 { "would drop" } else { "drop" };
    let reason = STAT_NAMES.get(s.reason as usize).copied().unwrap_or("?");
    Some(format!(
        "{:.6} {name} {verdict} ({reason}{rule}) {what} len {}",
        s.ts_ns as f64 / 1e9,
        s.len
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    fn udp_sample() -> Sample {
        // Ethernet + IPv4 192.0.2.3 -> 192.0.2.1 UDP 40000 -> 53.
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 3, 192, 0, 2, 1,
        ]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        let mut data = [0u8; SAMPLE_CAPTURE];
        data[..f.len()].copy_from_slice(&f);
        Sample {
            ts_ns: 5_000_000_123,
            ifindex: 0,
            rule_id: RULES_PER_GENERATION + 1,
            reason: REASON_RULE_DENY,
            len: 300,
            cap_len: f.len() as u32,
            monitor: 0,
            data,
        }
    }

    fn bytes_of(s: &Sample) -> Vec<u8> {
        // SAFETY: `Sample` is plain repr(C) data without implicit padding.
        unsafe {
            std::slice::from_raw_parts(
                s as *const Sample as *const u8,
                std::mem::size_of::<Sample>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decodes_records_and_refuses_short_ones() {
        let s = udp_sample();
        let rec = bytes_of(&s);
        assert_eq!(decode(&rec), Some(s));
        assert_eq!(decode(&rec[..rec.len() - 1]), None);
    }

    #[test]
    fn wall_time_adds_the_offset() {
        assert_eq!(
            wall_time(5_000_000_123, 1_700_000_000_000_000_000),
            Duration::new(1_700_000_005, 123)
        );
        assert_eq!(wall_time(5, -10), Duration::ZERO);
    }

    #[test]
    fn json_names_addresses_ports_reason_and_rule() {
        let v = to_json(&udp_sample(), 0);
        assert_eq!(v["src"], "192.0.2.3");
        assert_eq!(v["dst"], "192.0.2.1");
        assert_eq!(v["proto"], "udp");
        assert_eq!(v["sport"], 40000);
        assert_eq!(v["dport"], 53);
        assert_eq!(v["reason"], "rule_deny");
        assert_eq!(v["rule"], 2);
        assert_eq!(v["verdict"], "drop");
        assert_eq!(v["len"], 300);
        assert_eq!(v["monotonic"], 5.000000123);
    }

    #[test]
    fn pcap_file_has_the_libpcap_layout_and_reads_back() {
        let s = udp_sample();
        let mut w = pcap_writer(Vec::new()).unwrap();
        write_pcap(&mut w, &s, 1_700_000_000_000_000_000).unwrap();
        write_pcap(&mut w, &s, 1_700_000_000_000_000_000).unwrap();
        let buf = w.into_writer();
        // Global header: magic (microseconds), version 2.4, snaplen, DLT_EN10MB.
        assert_eq!(&buf[0..4], &0xa1b2c3d4u32.to_ne_bytes());
        assert_eq!(&buf[4..6], &2u16.to_ne_bytes());
        assert_eq!(&buf[6..8], &4u16.to_ne_bytes());
        assert_eq!(&buf[16..20], &65535u32.to_ne_bytes());
        assert_eq!(&buf[20..24], &1u32.to_ne_bytes());
        // Record header: seconds, microseconds, captured and original length.
        let cap = s.cap_len as usize;
        assert_eq!(&buf[24..28], &1_700_000_005u32.to_ne_bytes());
        assert_eq!(&buf[28..32], &0u32.to_ne_bytes());
        assert_eq!(&buf[32..36], &(cap as u32).to_ne_bytes());
        assert_eq!(&buf[36..40], &300u32.to_ne_bytes());
        assert_eq!(&buf[40..40 + cap], frame(&s));
        assert_eq!(buf.len(), 2 * (24 + 16 + cap) - 24);

        let mut r = PcapReader::new(&buf[..]).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(&p.data[..], frame(&s));
        assert_eq!(p.orig_len, 300);
        assert_eq!(p.timestamp, Duration::new(1_700_000_005, 0));
        assert!(r.next_packet().unwrap().is_ok());
        assert!(r.next_packet().is_none());
    }
}
