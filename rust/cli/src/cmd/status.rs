// SPDX-License-Identifier: GPL-2.0

//! `xdpguard status`: module, interfaces, program, maps, pins, rule set and
//! counters in one view (or one JSON object).

use std::path::Path;

use serde_json::{json, Map as JMap, Value};
use xdpguard_abi::*;
use xdpguard_user::{
    ctl,
    pins::{self, PIN_DIR},
    sys,
    sys::Failure,
    sysfs, Guard,
};

/// Options of `status`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Keys counted per map at most (more are reported as `entries_capped`).
const COUNT_CAP: usize = 100_000;

fn map_type_name(t: u32) -> &'static str {
    match t {
        BPF_MAP_TYPE_HASH => "hash",
        BPF_MAP_TYPE_ARRAY => "array",
        BPF_MAP_TYPE_PERCPU_HASH => "percpu_hash",
        BPF_MAP_TYPE_PERCPU_ARRAY => "percpu_array",
        BPF_MAP_TYPE_LRU_HASH => "lru_hash",
        BPF_MAP_TYPE_LPM_TRIE => "lpm_trie",
        BPF_MAP_TYPE_RINGBUF => "ringbuf",
        _ => "other",
    }
}

fn action_name(a: u8) -> &'static str {
    if a == ACTION_DENY {
        "deny"
    } else {
        "allow"
    }
}

fn counter(c: &Counter) -> Value {
    json!({"packets": c.packets, "bytes": c.bytes})
}

fn pins_json(module: Option<&[(String, u32)]>) -> Value {
    match pins::inspect(Path::new(PIN_DIR), module) {
        Ok(p) => json!({
            "dir": PIN_DIR,
            "state": pins::summary(&p),
            "maps": p.iter().filter(|p| p.state != pins::State::Missing || module.is_some()).map(|p| json!({
                "name": p.name, "state": p.state.as_str(),
                "pinned_id": p.pinned_id, "module_id": p.module_id,
            })).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"dir": PIN_DIR, "state": "unreadable", "error": e.to_string()}),
    }
}

fn module_json(loaded: bool) -> Value {
    let params: JMap<String, Value> = sysfs::parameters()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    json!({
        "loaded": loaded,
        "state": sysfs::attr("initstate"),
        "version": sysfs::attr("version"),
        "srcversion": sysfs::attr("srcversion"),
        "parameters": params,
    })
}

/// Gathers everything `status` shows, and the check of the active
/// generation against xdpguard's record (by digest).
fn gather(guard: &Guard) -> Result<(Value, ctl::Verification), Failure> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| Failure::from(format!("{what}: {e}"))
    };
    let prog = guard.prog()?.info().map_err(err("program info"))?;

    // Maps: info by fd, entries counted where a key walk is cheap.
    let module_maps = sysfs::module_maps().unwrap_or_default();
    let mut maps = Vec::new();
    for (name, map) in guard.maps_by_name() {
        let info = map.info().map_err(err(&name))?;
        let (entries, capped) = match info.map_type {
            BPF_MAP_TYPE_HASH
            | BPF_MAP_TYPE_PERCPU_HASH
            | BPF_MAP_TYPE_LRU_HASH
            | BPF_MAP_TYPE_LPM_TRIE => {
                let (n, capped) = count_keys(map, info.key_size as usize).map_err(err(&name))?;
                (json!(n), capped)
            }
            BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY => (json!(info.max_entries), false),
            _ => (Value::Null, false),
        };
        maps.push(json!({
            "name": name, "id": map.id, "type": map_type_name(info.map_type),
            "key_size": info.key_size, "value_size": info.value_size,
            "max_entries": info.max_entries, "entries": entries, "entries_capped": capped,
        }));
    }

    // The active rule set.
    let g = guard.active()?;
    let cfg: Config = guard
        .map(MapId::Config)
        .lookup(&g)
        .map_err(err("xdpg_config"))?
        .unwrap_or_default();
    let gb = g as u8;
    // The address tables do not count their prefixes; the record does.
    let (v4, v6) = match ctl::recorded_prefixes(guard, g, cfg.tag) {
        Some([v4, v6]) => (json!(v4), json!(v6)),
        None => (Value::Null, Value::Null),
    };
    let (macs, _) = per_gen(guard, MapId::Mac, |k: &MacKey| k.generation == gb)?;
    let (ifpol, _) = per_gen(guard, MapId::Ifaces, |k: &u32| iface_key_parts(*k).1 == g)?;
    let (combos, _) = per_gen(guard, MapId::Classes, |k: &ClassKey| k.generation == gb)?;
    let limits: Vec<LimitConfig> = guard
        .map(MapId::Limits)
        .lookup_range(limit_index(g, 0), MAX_LIMITS)
        .map_err(err("xdpg_limits"))?;
    let limiters = limits
        .iter()
        .skip(1)
        .filter(|l| l.pps != 0 || l.bps != 0)
        .count();
    let ruleset = json!({
        "generation": g,
        "default_policy": action_name(cfg.default_action),
        "monitor": cfg.monitor != 0,
        "malformed": if cfg.malformed_action == ACTION_DENY { "deny" } else { "pass" },
        "fragments": match cfg.frag_policy { FRAG_DROP => "drop", FRAG_PASS => "pass", _ => "l3-only" },
        "samples_per_second": cfg.sample_rate,
        "compound_rules": cfg.compound,
        "compound_groups": cfg.groups,
        "class_combinations": combos,
        "ipv4_prefixes": v4, "ipv6_prefixes": v6,
        "macs": macs, "interface_policies": ifpol, "limiters": limiters,
    });

    // Interfaces with their verdict counters.
    let ifc = guard.iface_counters()?;
    let interfaces: Vec<Value> = sysfs::links()
        .into_iter()
        .map(|l| {
            let c = ifc
                .iter()
                .find(|(i, _)| *i == l.ifindex)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            json!({
                "name": l.ifname, "ifindex": l.ifindex, "mode": l.mode, "link_id": l.link_id,
                "pass": counter(&c.pass), "drop": counter(&c.drop),
            })
        })
        .collect();

    // Whether the active generation holds what xdpguard wrote: a digest
    // of it against the recorded one (entries: `xdpguard verify`).
    let check = ctl::verify(guard, false, false)?;
    let a = &check.gens[0];
    let drift = json!({
        "generation": a.generation,
        "checked": a.checked,
        "clean": check.clean(),
        "origin": a.origin,
        "maps": a.maps,
        "entries": check.entries(),
        "foreign": check.foreign.len(),
        "note": a.note,
    });

    let stats = guard.stats()?;
    let counters: JMap<String, Value> = STAT_NAMES
        .iter()
        .zip(&stats)
        .map(|(n, c)| (n.to_string(), counter(c)))
        .collect();

    Ok((
        json!({
            "module": module_json(true),
            "interfaces": interfaces,
            "program": {
                "id": prog.id, "name": prog.name, "jited": prog.jited_len > 0,
                "jited_bytes": prog.jited_len, "xlated_bytes": prog.xlated_len,
                "verified_insns": prog.verified_insns,
            },
            "maps": maps,
            "pins": pins_json(Some(&module_maps)),
            "ruleset": ruleset,
            "drift": drift,
            "counters": counters,
        }),
        check,
    ))
}

/// How many keys `map` (keys of `key_size` bytes) has, counting at most
/// `COUNT_CAP`; the flag says whether it has more.
fn count_keys(map: &xdpguard_user::Map, key_size: usize) -> std::io::Result<(usize, bool)> {
    macro_rules! by_size {
        ($($n:literal)*) => {
            match key_size {
                $($n => map.keys_upto::<[u8; $n]>(COUNT_CAP).map(|(k, c)| (k.len(), c)),)*
                _ => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
            }
        };
    }
    by_size!(4 8 12 20 24)
}

/// How many keys of map `m` belong to the generation `mine` selects,
/// counting at most `COUNT_CAP` keys; the flag says whether it has more.
fn per_gen<K: Pod + Default>(
    guard: &Guard,
    m: MapId,
    mine: impl Fn(&K) -> bool,
) -> Result<(usize, bool), Failure> {
    let (keys, capped) = guard
        .map(m)
        .keys_upto::<K>(COUNT_CAP)
        .map_err(|e| Failure::from(format!("{}: {e}", m.name())))?;
    Ok((keys.iter().filter(|k| mine(k)).count(), capped))
}

fn print_text(v: &Value) {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    };
    let m = &v["module"];
    let params: Vec<String> = m["parameters"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    if m["loaded"] == true {
        println!(
            "module:     loaded ({})  {}",
            s(&m["state"]),
            params.join(" ")
        );
    } else {
        println!("module:     not loaded (modprobe xdpguard ifaces=... or insmod xdpguard.ko ...)");
    }
    if let Some(p) = v.get("program") {
        println!(
            "program:    id {}  {}  jited {} bytes  xlated {} bytes  {} insns verified",
            p["id"],
            s(&p["name"]),
            p["jited_bytes"],
            p["xlated_bytes"],
            p["verified_insns"]
        );
    }
    if let Some(ifs) = v.get("interfaces").and_then(Value::as_array) {
        if ifs.is_empty() {
            println!("interfaces: none attached");
        }
        for (i, f) in ifs.iter().enumerate() {
            println!(
                "{:<11} {:<12} ifindex {:<4} {:<8} link {:<4} pass {} pkts  drop {} pkts",
                if i == 0 { "interfaces:" } else { "" },
                s(&f["name"]),
                s(&f["ifindex"]),
                s(&f["mode"]),
                s(&f["link_id"]),
                f["pass"]["packets"],
                f["drop"]["packets"]
            );
        }
    }
    if let Some(r) = v.get("ruleset") {
        println!(
            "rule set:   generation {}  default {}  monitor {}  malformed {}  fragments {}  samples {}/s",
            r["generation"],
            s(&r["default_policy"]),
            if r["monitor"] == true { "on" } else { "off" },
            s(&r["malformed"]),
            s(&r["fragments"]),
            r["samples_per_second"]
        );
        println!(
            "            {} compound rules ({} groups, {} class combinations), {} IPv4 and {} IPv6 prefixes, {} MACs, {} interface policies, {} limiters",
            r["compound_rules"],
            r["compound_groups"],
            r["class_combinations"],
            r["ipv4_prefixes"],
            r["ipv6_prefixes"],
            r["macs"],
            r["interface_policies"],
            r["limiters"]
        );
    }
    if let Some(d) = v.get("drift") {
        let maps: Vec<String> = d["maps"]
            .as_array()
            .map(|m| m.iter().map(s).collect())
            .unwrap_or_default();
        let line = if d["clean"] == true && d["checked"] == true {
            format!(
                "none (generation {} holds what xdpguard wrote)",
                d["generation"]
            )
        } else if d["checked"] == false {
            format!("not checked ({}): run xdpguard verify", s(&d["note"]))
        } else if d["origin"] == "unrecorded" {
            format!("generation {} {}", d["generation"], s(&d["note"]))
        } else {
            let mut parts = Vec::new();
            if !maps.is_empty() {
                parts.push(format!(
                    "{} of generation {} differ from the record",
                    maps.join(", "),
                    d["generation"]
                ));
            }
            if d["foreign"] != 0 {
                parts.push(format!("{} keys of no generation", d["foreign"]));
            }
            format!("{}: run xdpguard verify", parts.join("; "))
        };
        println!("drift:      {line}");
    }
    let p = &v["pins"];
    println!("pins:       {} ({})", s(&p["state"]), s(&p["dir"]));
    if let Some(list) = p["maps"].as_array() {
        for e in list.iter().filter(|e| e["state"] == "stale") {
            println!(
                "            stale: {} (pinned map {}, module's {})",
                s(&e["name"]),
                s(&e["pinned_id"]),
                s(&e["module_id"])
            );
        }
        if p["state"] == "stale" {
            println!("            run `xdpguard pin` to re-pin or `xdpguard unpin` to remove");
        }
    }
    if let Some(maps) = v.get("maps").and_then(Value::as_array) {
        let row = |head: &str, [name, id, kind, entries, max]: [&str; 5]| {
            println!("{head:<11} {name:<16} {id:>6} {kind:<13} {entries:>9} {max:>9}")
        };
        row("maps:", ["name", "id", "type", "entries", "max"]);
        for e in maps {
            let capped = if e["entries_capped"] == true {
                "≥"
            } else {
                ""
            };
            row(
                "",
                [
                    &s(&e["name"]),
                    &s(&e["id"]),
                    &s(&e["type"]),
                    &format!("{capped}{}", s(&e["entries"])),
                    &s(&e["max_entries"]),
                ],
            );
        }
    }
    if let Some(c) = v.get("counters").and_then(Value::as_object) {
        println!("counters:   {:<14} {:>12} {:>14}", "", "packets", "bytes");
        for (n, c) in c {
            println!(
                "            {n:<14} {:>12} {:>14}",
                s(&c["packets"]),
                s(&c["bytes"])
            );
        }
    }
}

/// Runs `status`.
pub fn run(a: Args) -> Result<(), Failure> {
    if !sysfs::loaded() {
        // Not loaded: still say what is pinned (stale pins outlive rmmod).
        let v = json!({"module": module_json(false), "pins": pins_json(None)});
        if a.json {
            println!("{v}");
        } else {
            print_text(&v);
        }
        return Err(Failure::not_loaded());
    }
    let guard = sys::open_guard()?;
    let (v, check) = gather(&guard)?;
    if a.json {
        println!("{v}");
    } else {
        print_text(&v);
    }
    super::rules::report_drift(&check)
}
