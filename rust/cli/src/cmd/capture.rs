// SPDX-License-Identifier: GPL-2.0

//! `xdpguard capture -w FILE`: drop samples written as a pcap file.

use std::io::Write;

use xdpguard_user::{samples, sys::Failure};

/// Options of `capture`.
#[derive(clap::Args)]
pub struct Args {
    /// The pcap file to write (`-`: standard output).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub file: String,
    /// Stop after this many samples.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// Runs `capture`.
pub fn run(a: Args) -> Result<(), Failure> {
    super::log::check_timeout(a.timeout)?;
    let guard = xdpguard_user::sys::open_guard()?;
    super::log::warn_if_not_sampling(&guard);
    let out: Box<dyn Write> = if a.file == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&a.file)
                .map_err(|e| Failure::from(format!("{}: {e}", a.file)))?,
        )
    };
    let mut w = samples::pcap_writer(out).map_err(|e| format!("{}: {e}", a.file))?;
    let offset = samples::monotonic_offset_ns();
    let file = a.file.clone();
    let mut n = 0;
    let r = super::log::each_sample(&guard, a.count, a.timeout, |s| {
        // A file is written unbuffered, a record at a time: an
        // interrupted capture leaves a readable file.
        samples::write_pcap(&mut w, s, offset)
            .map_err(|e| Failure::from(format!("{file}: {e}")))?;
        n += 1;
        Ok(())
    });
    w.into_writer()
        .flush()
        .map_err(|e| format!("{}: {e}", a.file))?;
    // Also when the module went away: the file holds what came before.
    eprintln!("xdpguard: {n} samples written to {}", a.file);
    r.map(|_| ())
}
