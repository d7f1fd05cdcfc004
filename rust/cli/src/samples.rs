// SPDX-License-Identifier: GPL-2.0

//! Drop samples of the ring buffer: decoding, JSON (`log --json`) and pcap
//! (`capture`).
//!
//! pcap is written with the `pcap-file` crate: a small, maintained,
//! pure-Rust reader/writer of the classic libpcap format (no libpcap to
//! link), whose reader the tests use to read our files back.

use std::{io::Write, net::IpAddr, time::Duration};

use pcap_file::{
    pcap::{PcapHeader, PcapPacket, PcapWriter},
    DataLink, Endianness, TsResolution,
};
use serde_json::{json, Value};
use xdpguard_abi::*;
use xdpguard_rules::text::{mac_text, proto_name};

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

/// The L4 header of a sampled IP frame, as the views show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    /// TCP or UDP source and destination port.
    Ports(u16, u16),
    /// ICMP or ICMPv6 type and code.
    Icmp(u8, u8),
    /// Another protocol, or a header the capture does not show.
    Other,
}

/// The IP part of a sampled frame.
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l4: L4,
}

/// What a sample's captured bytes show (`None` in [`Decoded`]: a frame
/// malformed at L2/L3).
struct Frame {
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    ip: Option<Ip>,
}

/// One sample decoded once, for both views: the line of `xdpguard log`
/// ([`describe_sample`]) and the object of `xdpguard log --json`
/// ([`to_json`]).
struct Decoded {
    ifname: String,
    would_drop: bool,
    reason: &'static str,
    /// Rule number (1-based position in its rule set), if a rule dropped it.
    rule: Option<u32>,
    frame: Option<Frame>,
}

impl Decoded {
    fn new(s: &Sample) -> Self {
        let frame = xdpguard_rules::model::parse(frame(s)).map(|f| Frame {
            eth_src: f.eth_src,
            eth_dst: f.eth_dst,
            ip: f.addrs.map(|(src, dst)| Ip {
                src,
                dst,
                proto: f.proto,
                l4: match (f.proto, f.l4) {
                    (6 | 17, Some((sp, dp))) => L4::Ports(sp, dp),
                    (1 | 58, Some((tc, _))) => {
                        let (t, c) = icmp_value_parts(tc);
                        L4::Icmp(t, c)
                    }
                    _ => L4::Other,
                },
            }),
        });
        Decoded {
            ifname: ifname(s.ifindex),
            would_drop: s.monitor != 0,
            reason: STAT_NAMES.get(s.reason as usize).copied().unwrap_or("?"),
            rule: (s.rule_id != u32::MAX).then(|| rule_stats_parts(s.rule_id).1 + 1),
            frame,
        }
    }
}

/// The name the views give protocol `p`, for those they name (the others
/// are shown by number).
fn l4_name(p: u8) -> Option<String> {
    matches!(p, 1 | 6 | 17 | 58).then(|| proto_name(p))
}

/// One sample as a JSON object (`xdpguard log --json`).
pub fn to_json(s: &Sample, offset_ns: i128) -> Value {
    let d = Decoded::new(s);
    let wall = wall_time(s.ts_ns, offset_ns);
    let mut v = json!({
        "time": wall.as_secs_f64(),
        "monotonic": s.ts_ns as f64 / 1e9,
        "ifindex": s.ifindex,
        "ifname": d.ifname,
        "verdict": if d.would_drop { "would_drop" } else { "drop" },
        "reason": d.reason,
        "rule": d.rule,
        "len": s.len,
        "cap_len": s.cap_len,
    });
    let Some(f) = &d.frame else {
        v["malformed"] = json!(true);
        return v;
    };
    v["eth_src"] = json!(mac_text(&f.eth_src));
    v["eth_dst"] = json!(mac_text(&f.eth_dst));
    if let Some(ip) = &f.ip {
        v["src"] = json!(ip.src.to_string());
        v["dst"] = json!(ip.dst.to_string());
        v["proto"] = l4_name(ip.proto).map_or(json!(ip.proto), |n| json!(n));
        match ip.l4 {
            L4::Ports(sp, dp) => {
                v["sport"] = json!(sp);
                v["dport"] = json!(dp);
            }
            L4::Icmp(t, c) => {
                v["icmp_type"] = json!(t);
                v["icmp_code"] = json!(c);
            }
            L4::Other => {}
        }
    }
    v
}

/// One sample as the line `xdpguard log` prints.
pub fn describe_sample(s: &Sample) -> String {
    let d = Decoded::new(s);
    let what = match &d.frame {
        Some(Frame { ip: Some(ip), .. }) => {
            let (src, dst) = (ip.src, ip.dst);
            let proto = l4_name(ip.proto).unwrap_or_else(|| format!("proto {}", ip.proto));
            match ip.l4 {
                L4::Ports(sp, dp) => format!("{src} port {sp} -> {dst} port {dp} {proto}"),
                L4::Icmp(t, c) => format!("{src} -> {dst} {proto} type {t} code {c}"),
                L4::Other => format!("{src} -> {dst} {proto}"),
            }
        }
        Some(f) => format!(
            "{} -> {} non-IP",
            mac_text(&f.eth_src),
            mac_text(&f.eth_dst)
        ),
        None => "malformed frame".to_string(),
    };
    let rule = d.rule.map_or(String::new(), |r| format!(" rule {r}"));
    let verdict = if d.would_drop { "would drop" } else { "drop" };
    format!(
        "{:.6} {} {verdict} ({}{rule}) {what} len {}",
        s.ts_ns as f64 / 1e9,
        d.ifname,
        d.reason,
        s.len
    )
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

    /// A sample of `frame` with `udp_sample`'s metadata.
    fn sample_of(frame: &[u8]) -> Sample {
        let mut s = udp_sample();
        s.data = [0u8; SAMPLE_CAPTURE];
        s.data[..frame.len()].copy_from_slice(frame);
        s.cap_len = frame.len() as u32;
        s
    }

    /// IPv4 192.0.2.3 -> 192.0.2.1 with protocol `proto` and `l4` after it.
    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64]);
        f.extend_from_slice(&[proto, 0, 0, 192, 0, 2, 3, 192, 0, 2, 1]);
        f.extend_from_slice(l4);
        f
    }

    /// Frames of each kind the views tell apart.
    fn kinds() -> Vec<Sample> {
        let mut monitor = udp_sample();
        monitor.monitor = 1;
        monitor.rule_id = u32::MAX;
        monitor.reason = REASON_DEFAULT_DENY;
        let lldp = [1, 0x80, 0xc2, 0, 0, 0xe, 2, 0, 0, 0, 0, 2, 0x88, 0xcc, 0, 0];
        vec![
            udp_sample(),
            monitor,
            sample_of(&ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1])),
            sample_of(&ipv4(47, &[0, 0, 0x08, 0x00])),
            sample_of(&ipv4(
                6,
                &[
                    0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0,
                ],
            )),
            sample_of(&lldp),
            sample_of(&[2, 0, 0, 0]),
        ]
    }

    #[test]
    fn text_and_json_views_of_each_kind_of_frame() {
        // The texts `log` and `log --json` printed before the views shared
        // one decode.
        let text = [
            "5.000000 if0 drop (rule_deny rule 2) 192.0.2.3 port 40000 -> 192.0.2.1 port 53 udp len 300",
            "5.000000 if0 would drop (default_deny) 192.0.2.3 port 40000 -> 192.0.2.1 port 53 udp len 300",
            "5.000000 if0 drop (rule_deny rule 2) 192.0.2.3 -> 192.0.2.1 icmp type 8 code 0 len 300",
            "5.000000 if0 drop (rule_deny rule 2) 192.0.2.3 -> 192.0.2.1 proto 47 len 300",
            "5.000000 if0 drop (rule_deny rule 2) 192.0.2.3 port 40000 -> 192.0.2.1 port 80 tcp len 300",
            "5.000000 if0 drop (rule_deny rule 2) 02:00:00:00:00:02 -> 01:80:c2:00:00:0e non-IP len 300",
            "5.000000 if0 drop (rule_deny rule 2) malformed frame len 300",
        ];
        let json = [
            r#"{"cap_len":42,"dport":53,"dst":"192.0.2.1","eth_dst":"02:00:00:00:00:01","eth_src":"02:00:00:00:00:02","ifindex":0,"ifname":"if0","len":300,"monotonic":5.000000123,"proto":"udp","reason":"rule_deny","rule":2,"sport":40000,"src":"192.0.2.3","time":5.000000123,"verdict":"drop"}"#,
            r#"{"cap_len":42,"dport":53,"dst":"192.0.2.1","eth_dst":"02:00:00:00:00:01","eth_src":"02:00:00:00:00:02","ifindex":0,"ifname":"if0","len":300,"monotonic":5.000000123,"proto":"udp","reason":"default_deny","rule":null,"sport":40000,"src":"192.0.2.3","time":5.000000123,"verdict":"would_drop"}"#,
            r#"{"cap_len":42,"dst":"192.0.2.1","eth_dst":"02:00:00:00:00:01","eth_src":"02:00:00:00:00:02","icmp_code":0,"icmp_type":8,"ifindex":0,"ifname":"if0","len":300,"monotonic":5.000000123,"proto":"icmp","reason":"rule_deny","rule":2,"src":"192.0.2.3","time":5.000000123,"verdict":"drop"}"#,
            r#"{"cap_len":38,"dst":"192.0.2.1","eth_dst":"02:00:00:00:00:01","eth_src":"02:00:00:00:00:02","ifindex":0,"ifname":"if0","len":300,"monotonic":5.000000123,"proto":47,"reason":"rule_deny","rule":2,"src":"192.0.2.3","time":5.000000123,"verdict":"drop"}"#,
            r#"{"cap_len":54,"dport":80,"dst":"192.0.2.1","eth_dst":"02:00:00:00:00:01","eth_src":"02:00:00:00:00:02","ifindex":0,"ifname":"if0","len":300,"monotonic":5.000000123,"proto":"tcp","reason":"rule_deny","rule":2,"sport":40000,"src":"192.0.2.3","time":5.000000123,"verdict":"drop"}"#,
            r#"{"cap_len":16,"eth_dst":"01:80:c2:00:00:0e","eth_src":"02:00:00:00:00:02","ifindex":0,"ifname":"if0","len":300,"monotonic":5.000000123,"reason":"rule_deny","rule":2,"time":5.000000123,"verdict":"drop"}"#,
            r#"{"cap_len":4,"ifindex":0,"ifname":"if0","len":300,"malformed":true,"monotonic":5.000000123,"reason":"rule_deny","rule":2,"time":5.000000123,"verdict":"drop"}"#,
        ];
        for ((s, t), j) in kinds().iter().zip(text).zip(json) {
            assert_eq!(describe_sample(s), t);
            assert_eq!(to_json(s, 0).to_string(), j);
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
