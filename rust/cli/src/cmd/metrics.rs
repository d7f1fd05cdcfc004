// SPDX-License-Identifier: GPL-2.0

//! `xdpguard metrics`: the counters and the state of the module in
//! Prometheus' text format (0.0.4), for node_exporter's textfile collector
//! (Documentation/cli.rst, "Metrics").
//!
//! Only what is cheap to read: the counter arrays, the program's info, the
//! active configuration, the record's prefix counts and the maps' limits.
//! No key walk and no check against the record (`status`, `verify` do
//! those), so a scrape costs the same beside a million CIDRs as beside one.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use xdpguard_abi::*;
use xdpguard_user::{ctl, sys, sys::Failure, sysfs, Guard};

/// Options of `metrics`.
#[derive(clap::Args)]
pub struct Args {
    /// Write the metrics to FILE (replaced atomically: written beside it,
    /// then renamed, as node_exporter's textfile collector needs) instead
    /// of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Outcome label of each `OUTCOME_*`, by value.
const OUTCOME_NAMES: [&str; OUTCOMES as usize] = ["pass", "drop", "monitor"];

/// The reasons the program counts under (the `xdpg_stats` rows it
/// writes): every `STAT_NAMES` entry but the sums `pass`, `drop` and
/// `monitor`, which are outcomes here.
fn counted_reasons() -> impl Iterator<Item = u32> {
    (0..STAT_COUNT).filter(|&r| !matches!(r, STAT_PASS | STAT_DROP | REASON_MONITOR))
}

/// Metric construction cannot fail for the fixed, valid names used here;
/// a failure is a bug, reported as one.
fn bug(e: prometheus::Error) -> Failure {
    Failure::failed(format!("metrics: {e}"))
}

struct Metrics {
    registry: Registry,
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            registry: Registry::new(),
        }
    }

    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, Failure> {
        let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(bug)?;
        self.registry.register(Box::new(c.clone())).map_err(bug)?;
        Ok(c)
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, Failure> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(bug)?;
        self.registry.register(Box::new(g.clone())).map_err(bug)?;
        Ok(g)
    }

    fn gauge(&self, name: &str, help: &str, v: i64) -> Result<(), Failure> {
        let g = IntGauge::new(name, help).map_err(bug)?;
        g.set(v);
        self.registry.register(Box::new(g)).map_err(bug)
    }

    fn text(&self) -> Result<String, Failure> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(bug)?;
        String::from_utf8(out).map_err(|e| Failure::failed(format!("metrics: {e}")))
    }
}

/// The metrics of the loaded module.
fn gather(m: &Metrics, guard: &Guard) -> Result<(), Failure> {
    let err = |what: &'static str| move |e: std::io::Error| Failure::from(format!("{what}: {e}"));

    let slots = guard.counters(MapId::Stats, STAT_SLOTS)?;
    let packets = m.counter(
        "xdpguard_packets_total",
        "Packets the XDP program classified, by reason and outcome (monitor: would have been dropped, passed by monitor mode).",
        &["reason", "outcome"],
    )?;
    let bytes = m.counter(
        "xdpguard_bytes_total",
        "Bytes of the packets in xdpguard_packets_total, by reason and outcome.",
        &["reason", "outcome"],
    )?;
    for reason in counted_reasons() {
        for (outcome, name) in OUTCOME_NAMES.iter().enumerate() {
            let c = slots
                .get(stat_slot(reason, outcome as u32) as usize)
                .copied()
                .unwrap_or_default();
            let labels = [STAT_NAMES[reason as usize], *name];
            packets.with_label_values(&labels).inc_by(c.packets);
            bytes.with_label_values(&labels).inc_by(c.bytes);
        }
    }

    let ifc = guard.iface_counters()?;
    let if_packets = m.counter(
        "xdpguard_interface_packets_total",
        "Packets by interface the program is attached to and verdict.",
        &["interface", "verdict"],
    )?;
    let if_bytes = m.counter(
        "xdpguard_interface_bytes_total",
        "Bytes by interface the program is attached to and verdict.",
        &["interface", "verdict"],
    )?;
    let attached = m.gauges(
        "xdpguard_interface_attached",
        "1 for each interface the program is attached to, with its XDP mode and ifindex.",
        &["interface", "ifindex", "mode"],
    )?;
    for l in sysfs::links() {
        let c = ifc
            .iter()
            .find(|(i, _)| *i == l.ifindex)
            .map(|(_, c)| *c)
            .unwrap_or_default();
        for (verdict, c) in [("pass", c.pass), ("drop", c.drop)] {
            let labels = [l.ifname.as_str(), verdict];
            if_packets.with_label_values(&labels).inc_by(c.packets);
            if_bytes.with_label_values(&labels).inc_by(c.bytes);
        }
        attached
            .with_label_values(&[&l.ifname, &l.ifindex.to_string(), &l.mode])
            .set(1);
    }

    let prog = guard.prog()?.info().map_err(err("program info"))?;
    m.gauges(
        "xdpguard_program_info",
        "1, labelled with the XDP program's id and the module's version.",
        &["prog_id", "version"],
    )?
    .with_label_values(&[
        &prog.id.to_string(),
        &sysfs::attr("version").unwrap_or_default(),
    ])
    .set(1);
    m.gauge(
        "xdpguard_program_verified_insns",
        "Instructions the verifier processed when the program was loaded.",
        prog.verified_insns.into(),
    )?;
    m.gauge(
        "xdpguard_program_jited_bytes",
        "Bytes of the JIT-compiled program (0: not JIT-compiled).",
        prog.jited_len.into(),
    )?;

    let g = guard.active()?;
    let cfg: Config = guard
        .map(MapId::Config)
        .lookup(&g)
        .map_err(err("xdpg_config"))?
        .unwrap_or_default();
    m.gauge(
        "xdpguard_ruleset_generation",
        "The generation (0 or 1) packets are classified by.",
        g.into(),
    )?;
    m.gauge(
        "xdpguard_ruleset_default_deny",
        "1 if the active rule set's default policy is deny, 0 if allow.",
        (cfg.default_action == ACTION_DENY).into(),
    )?;
    m.gauge(
        "xdpguard_ruleset_monitor",
        "1 if monitor mode is on (drops are counted but passed).",
        (cfg.monitor != 0).into(),
    )?;
    m.gauge(
        "xdpguard_ruleset_compound_rules",
        "Compound rules (with a port, protocol or MAC) in the active rule set.",
        cfg.compound.into(),
    )?;
    if let Some([v4, v6]) = ctl::recorded_prefixes(guard, g, cfg.tag) {
        let p = m.gauges(
            "xdpguard_ruleset_prefixes",
            "Address prefixes (hosts included) in the active rule set, by family, from xdpguard's record of it.",
            &["family"],
        )?;
        p.with_label_values(&["ipv4"]).set(v4 as i64);
        p.with_label_values(&["ipv6"]).set(v6 as i64);
    }
    let max = m.gauges(
        "xdpguard_map_max_entries",
        "The capacity of each of the module's maps.",
        &["map"],
    )?;
    for (name, map) in guard.maps_by_name() {
        let info = map.info().map_err(|e| Failure::from(format!("{name}: {e}")))?;
        max.with_label_values(&[&name]).set(info.max_entries.into());
    }
    Ok(())
}

/// Writes `text` to `path` by a file beside it and a rename, so that a
/// reader sees the old file or the new one, never part of one.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), Failure> {
    let name = path
        .file_name()
        .ok_or_else(|| Failure::usage(format!("{}: not a file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let failed = |e: std::io::Error| Failure::failed(format!("{}: {e}", path.display()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(failed)
}

/// Runs `metrics`. Without the module it still writes `xdpguard_up 0`
/// (a scrape should see the module gone), then fails as other commands do.
pub fn run(a: Args) -> Result<(), Failure> {
    let up = |m: &Metrics, v: bool| {
        m.gauge(
            "xdpguard_up",
            "1 if the xdpguard module is loaded and its objects could be read, else 0.",
            v.into(),
        )
    };
    let outcome = if sysfs::loaded() {
        sys::open_guard().and_then(|guard| {
            let m = Metrics::new();
            up(&m, true)?;
            gather(&m, &guard)?;
            Ok(m)
        })
    } else {
        Err(Failure::not_loaded())
    };
    // A module that cannot be read gives `xdpguard_up 0` and nothing else
    // (no half-filled families).
    let text = match &outcome {
        Ok(m) => m.text()?,
        Err(_) => {
            let down = Metrics::new();
            up(&down, false)?;
            down.text()?
        }
    };
    match &a.output {
        Some(p) => write_atomically(p, &text)?,
        None => print!("{text}"),
    }
    outcome.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_rows_the_program_writes() {
        let names: Vec<&str> = counted_reasons().map(|r| STAT_NAMES[r as usize]).collect();
        assert!(!names.contains(&"pass") && !names.contains(&"drop") && !names.contains(&"monitor"));
        assert!(names.contains(&"rule_deny") && names.contains(&"default_allow"));
        assert_eq!(names.len(), STAT_COUNT as usize - 3);
    }

    #[test]
    fn text_format_is_prometheus_0_0_4() {
        let m = Metrics::new();
        let c = m
            .counter("xdpguard_packets_total", "Packets.", &["reason", "outcome"])
            .unwrap();
        c.with_label_values(&["rule_deny", "drop"]).inc_by(7);
        m.gauge("xdpguard_up", "Up.", 1).unwrap();
        let t = m.text().unwrap();
        assert!(t.contains("# TYPE xdpguard_packets_total counter\n"), "{t}");
        assert!(
            t.contains("xdpguard_packets_total{outcome=\"drop\",reason=\"rule_deny\"} 7\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE xdpguard_up gauge\nxdpguard_up 1\n"), "{t}");
        // OpenMetrics' terminator, which the textfile collector refuses.
        assert!(!t.contains("# EOF"), "{t}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("xdpguard-metrics-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("xdpguard.prom");
        write_atomically(&p, "a 1\n").unwrap();
        write_atomically(&p, "a 2\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a 2\n");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(write_atomically(&dir.join("no/such/dir.prom"), "x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
