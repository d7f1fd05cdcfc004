// SPDX-License-Identifier: GPL-2.0

//! `import`: a block (or allow) list of addresses, one per line, into one address-only rule of the active set, in batches.

use std::{
    hash::BuildHasher,
    fs::File,
    io::{self, Read},
    net::IpAddr,
    time::Instant,
};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ipnet::IpNet;
use rustc_hash::FxHashSet as HashSet;
use xdpguard_rules::{Action, Rule};

use xdpguard_user::ctl::{self, Failure};

/// `xdpguard import`.
#[derive(Args, Debug)]
#[command(
    after_help = "The list has one IPv4 or IPv6 address or CIDR per line; `#` and `;` \
    start a comment; blank lines are ignored.\n\n\
    Examples:\n  \
    xdpguard import --deny blocklist.txt\n  \
    curl -s https://example.org/drop.txt | xdpguard import --deny --name drop --replace -\n\n\
    Exit status: 0 imported; 2 a bad line (FILE:LINE: 'value': reason), nothing applied; \
    1 the kernel refused (a map is full), nothing applied; 3 module not loaded."
)]
pub struct Import {
    /// The list; `-` reads standard input.
    pub file: String,
    /// Drop packets from these addresses.
    #[arg(long, required_unless_present = "allow", conflicts_with = "allow")]
    pub deny: bool,
    /// Pass packets from these addresses (over less specific deny rules).
    #[arg(long)]
    pub allow: bool,
    /// Match destination addresses instead of sources.
    #[arg(long)]
    pub dst: bool,
    /// Name of the list (default: the file name). Importing under the same
    /// name again adds to that list; with --replace it replaces it.
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the addresses imported before under this name.
    #[arg(long)]
    pub replace: bool,
    /// Read and check the list, say what would change; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Parses one list entry (comment and blanks already removed): the reason
/// if it is not a valid address or CIDR.
pub fn parse_entry(s: &str) -> Result<IpNet, String> {
    if s.split_whitespace().count() > 1 {
        return Err("one address or CIDR per line".into());
    }
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let plen = match len {
        None => max,
        Some(l) => {
            let n: u32 = l
                .parse()
                .map_err(|_| format!("prefix length \"{l}\" is not a number"))?;
            if n > max as u32 {
                return Err(format!(
                    "prefix length {n} is more than {max} ({})",
                    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
                ));
            }
            n as u8
        }
    };
    let net = IpNet::new(ip, plen).map_err(|e| e.to_string())?;
    if net.trunc() != net {
        return Err(format!("host bits set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

/// The entry of a line, if any (`#` and `;` start comments).
pub fn entry_of(line: &str) -> &str {
    let end = line.find(['#', ';']).unwrap_or(line.len());
    line[..end].trim()
}

/// A parsed list: unique entries in file order.
pub struct List {
    /// The entries.
    pub nets: Vec<IpNet>,
    /// IPv4 entries.
    pub v4: usize,
    /// Lines that repeated an earlier entry.
    pub duplicates: usize,
}

/// Reads a whole list of about `size` bytes (0: unknown); the first bad
/// line fails it as `NAME:LINE: 'value': reason`. The text is read whole,
/// then parsed in two halves on two threads (a million lines take a
/// second and more under TCG), then deduplicated in file order.
pub fn read_list(
    name: &str,
    mut input: impl Read,
    size: u64,
    mut progress: impl FnMut(u64),
) -> Result<List, Failure> {
    let mut text = Vec::with_capacity(size.min(1 << 30) as usize);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let line = text.iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(Failure::usage(format!("{name}:{line}: {e}")));
            }
        };
        text.extend_from_slice(&buf[..n]);
        progress(text.len() as u64);
    }
    drop(buf);
    // The second half starts after the newline nearest the middle.
    let mid = text[text.len() / 2..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| text.len() / 2 + p + 1);
    let (a, b) = text.split_at(mid);
    let b_first = a.iter().filter(|&&c| c == b'\n').count() + 1;
    let (pa, pb) = std::thread::scope(|s| {
        let hb = s.spawn(|| parse_lines(name, b, b_first));
        let pa = parse_lines(name, a, 1);
        (pa, hb.join())
    });
    let mut nets = pa?;
    nets.extend(pb.unwrap_or_else(|_| Err(Failure::failed("parsing the list failed")))?);
    // Repeats, found by two threads: each keeps the entries whose hash
    // has its bit 40 (a bit the set's own indexing does not use).
    let repeats = std::thread::scope(|s| {
        let h = s.spawn(|| repeats(&nets, 1));
        let mut r = repeats(&nets, 0);
        r.extend(h.join().unwrap_or_default());
        r
    });
    let mut keep = vec![true; nets.len()];
    for &i in &repeats {
        keep[i] = false;
    }
    let mut k = keep.iter();
    nets.retain(|_| k.next().copied().unwrap_or(true));
    Ok(List {
        v4: nets.iter().filter(|n| n.addr().is_ipv4()).count(),
        nets,
        duplicates: repeats.len(),
    })
}

/// The positions of the entries of `nets` that repeat an earlier one,
/// among those whose hash's bit 40 is `shard`.
fn repeats(nets: &[IpNet], shard: u64) -> Vec<usize> {
    let hasher = rustc_hash::FxBuildHasher;
    let mut seen: HashSet<IpNet> =
        HashSet::with_capacity_and_hasher(nets.len() / 2 + 1, Default::default());
    let mut out = Vec::new();
    for (i, n) in nets.iter().enumerate() {
        if (hasher.hash_one(n) >> 40) & 1 == shard && !seen.insert(*n) {
            out.push(i);
        }
    }
    out
}

/// The entries of `text`, whose first line is line `first` of the list,
/// in order (repeats included).
fn parse_lines(name: &str, text: &[u8], first: usize) -> Result<Vec<IpNet>, Failure> {
    let mut nets = Vec::with_capacity(text.len() / 12);
    for (k, line) in text.split(|&c| c == b'\n').enumerate() {
        let no = first + k;
        let line = std::str::from_utf8(line).map_err(|_| {
            Failure::usage(format!("{name}:{no}: stream did not contain valid UTF-8"))
        })?;
        let e = entry_of(line);
        if e.is_empty() {
            continue;
        }
        let net =
            parse_entry(e).map_err(|why| Failure::usage(format!("{name}:{no}: '{e}': {why}")))?;
        nets.push(net);
    }
    Ok(nets)
}

/// A progress bar on standard error, drawn only on a terminal.
struct Bar(ProgressBar);

impl ctl::Progress for Bar {
    fn phase(&mut self, name: &str, total: u64) {
        let style = if total == 0 {
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        } else {
            ProgressStyle::with_template("{msg:>20} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        };
        if let Ok(s) = style {
            self.0.set_style(s.progress_chars("=> "));
        }
        self.0.set_message(name.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn set(&mut self, done: u64) {
        self.0.set_position(done);
    }
}

/// Runs `xdpguard import`.
pub fn import(a: Import) -> Result<(), Failure> {
    let pb = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    let r = run(a, &pb);
    // An error message must not land in the middle of the bar.
    pb.finish_and_clear();
    r
}

fn run(a: Import, pb: &ProgressBar) -> Result<(), Failure> {
    let start = Instant::now();
    let shown = if a.file == "-" {
        "stdin"
    } else {
        a.file.as_str()
    };
    let list_name = a.name.clone().unwrap_or_else(|| {
        std::path::Path::new(shown)
            .file_name()
            .map_or(shown.to_string(), |n| n.to_string_lossy().into_owned())
    });
    let mut bar = Bar(pb.clone());
    let (input, size): (Box<dyn Read>, u64) = if a.file == "-" {
        (Box::new(io::stdin().lock()), 0)
    } else {
        let f = File::open(&a.file).map_err(|e| Failure::usage(format!("{}: {e}", a.file)))?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(f), size)
    };
    ctl::Progress::phase(&mut bar, &format!("reading {list_name}"), size);
    let list = read_list(shown, input, size, |b| pb.set_position(b))?;
    let read = start.elapsed();
    // The whole list is checked (exit 2) before the module is looked for.
    let guard = ctl::open()?;
    // A module that goes away while this waits, compiles or writes ends it
    // (exit 3) within a second.
    ctl::watch(&guard);

    let _lock = ctl::lock()?;
    let active = ctl::active(&guard)?;
    let mut rs = active.rules.clone();
    let action = if a.allow { Action::Allow } else { Action::Deny };
    let comment = format!("import {list_name}");
    let dst = a.dst;
    let mine = |r: &Rule| {
        r.is_address_only()
            && r.action.as_ref() == Some(&action)
            && r.src.is_empty() == dst
            && r.comment.as_deref() == Some(comment.as_str())
    };
    let (v4, v6) = (list.v4, list.nets.len() - list.v4);
    let entries = list.nets.len();
    match rs.rules.iter().position(mine) {
        Some(i) => {
            let r = &mut rs.rules[i];
            let target = if dst { &mut r.dst } else { &mut r.src };
            if a.replace {
                *target = list.nets;
            } else {
                let have: HashSet<IpNet> = target.iter().copied().collect();
                target.extend(list.nets.into_iter().filter(|n| !have.contains(n)));
            }
            if target.is_empty() {
                rs.rules.remove(i);
            }
        }
        None if entries > 0 => rs.rules.push(Rule {
            action: Some(action),
            src: if dst { Vec::new() } else { list.nets.clone() },
            dst: if dst { list.nets } else { Vec::new() },
            comment: Some(comment.clone()),
            ..Rule::default()
        }),
        None => {}
    }
    let what = format!(
        "{entries} entries (v4 {v4}, v6 {v6}{})",
        if list.duplicates > 0 {
            format!(", {} duplicate lines skipped", list.duplicates)
        } else {
            String::new()
        }
    );
    if a.dry_run {
        ctl::check(&guard, &rs)?;
        pb.finish_and_clear();
        for c in xdpguard_rules::diff::diff(&active.rules, &rs) {
            println!("{c}");
        }
        println!("{shown}: {what} valid; nothing applied (--dry-run)");
        return Ok(());
    }
    let done = ctl::commit(&guard, &rs, &mut bar)?;
    pb.finish_and_clear();
    let total = start.elapsed();
    println!(
        "imported {what} in {:.2} s (read {:.2}, compile {:.2}, write {:.2}); generation {} active",
        total.as_secs_f64(),
        read.as_secs_f64(),
        done.compile.as_secs_f64(),
        done.write.as_secs_f64(),
        done.generation
    );
    super::apply::restored_note(&done);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_comments() {
        assert_eq!(entry_of("  192.0.2.0/24  # a comment\n"), "192.0.2.0/24");
        assert_eq!(entry_of("192.0.2.1 ; SBL123\n"), "192.0.2.1");
        assert_eq!(entry_of("# only a comment\n"), "");
        assert_eq!(entry_of("\n"), "");
        assert_eq!(
            parse_entry("192.0.2.1").map(|n| n.to_string()),
            Ok("192.0.2.1/32".into())
        );
        assert_eq!(
            parse_entry("2001:db8::/32").map(|n| n.to_string()),
            Ok("2001:db8::/32".into())
        );
    }

    #[test]
    fn bad_entries_say_why() {
        let why = |s: &str| parse_entry(s).expect_err(s);
        assert_eq!(why("10.0.0.1/8"), "host bits set; did you mean 10.0.0.0/8?");
        assert_eq!(
            why("10.0.0.0/33"),
            "prefix length 33 is more than 32 (IPv4)"
        );
        assert_eq!(
            why("2001:db8::/129"),
            "prefix length 129 is more than 128 (IPv6)"
        );
        assert_eq!(why("10.0.0.0/x"), "prefix length \"x\" is not a number");
        assert_eq!(why("300.1.1.1"), "not an IPv4 or IPv6 address");
        assert_eq!(why("example.org"), "not an IPv4 or IPv6 address");
        assert_eq!(why("10.0.0.1 10.0.0.2"), "one address or CIDR per line");
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number_and_value() {
        let text = "# list\n192.0.2.1\n\n198.51.100.0/24 ; ok\n10.0.0.1/8\n";
        let e = read_list("bl.txt", text.as_bytes(), 0, |_| {})
            .err()
            .expect("must fail");
        assert_eq!(e.code(), ctl::EXIT_USAGE);
        assert_eq!(
            e.msg(),
            "bl.txt:5: '10.0.0.1/8': host bits set; did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn duplicates_are_counted_once() {
        let text = "192.0.2.1\n2001:db8::1\n192.0.2.1/32\n";
        let l = read_list("x", text.as_bytes(), 0, |_| {}).expect("valid");
        assert_eq!((l.nets.len(), l.v4, l.duplicates), (2, 1, 1));
    }

    #[test]
    fn a_million_lines_parse_quickly() {
        let mut text = String::with_capacity(20 << 20);
        for i in 0..1_000_000u32 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 | (i << 4));
            text.push_str(&format!("{a}/28\n"));
        }
        let t = Instant::now();
        let l = read_list("m", text.as_bytes(), text.len() as u64, |_| {}).expect("valid");
        assert_eq!(l.nets.len(), 1_000_000);
        // A benchmark figure, not a timed assertion.
        eprintln!("parsed 1e6 lines in {:?}", t.elapsed());
    }
}
