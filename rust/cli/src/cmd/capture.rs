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
    /// When to stop.
    #[command(flatten)]
    pub bounds: super::log::Bounds,
}

/// Runs `capture`.
pub fn run(a: Args) -> Result<(), Failure> {
    let guard = super::log::open_sampling(&a.bounds)?;
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
    let r = super::log::each_sample(&guard, &a.bounds, |s| {
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
