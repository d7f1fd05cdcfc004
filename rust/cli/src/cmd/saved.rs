// SPDX-License-Identifier: GPL-2.0

//! `save` and `restore`: the active rule set to /etc/xdpguard/rules.toml
//! and back, for boot (xdpguard.service runs `restore --wait 30`; the
//! rules xdpguard keeps in /run are gone at reboot).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xdpguard_user::ctl::{self, Failure};
use xdpguard_user::sys;

/// Where `save` writes and `restore` reads by default.
pub const SAVED: &str = "/etc/xdpguard/rules.toml";

/// `xdpguard save`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  xdpguard save    # then at boot: xdpguard restore (xdpguard.service)")]
pub struct Save {
    /// The file to write (replaced atomically; its directory is created).
    #[arg(long, value_name = "FILE", default_value = SAVED)]
    pub file: PathBuf,
}

/// `xdpguard restore`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  xdpguard restore\n  xdpguard restore --wait 30    # at boot, as the module loads")]
pub struct Restore {
    /// The rule file to apply.
    #[arg(long, value_name = "FILE", default_value = SAVED)]
    pub file: PathBuf,
    /// First wait up to this many seconds for the module to finish loading.
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<f64>,
}

/// Waits up to `wait` seconds (none: not at all) for the module; exit 3
/// if it is not there by then.
pub fn wait_for_module(wait: Option<f64>) -> Result<(), Failure> {
    let Some(w) = wait else { return Ok(()) };
    if !(0.0..=86400.0).contains(&w) {
        return Err(Failure::new(
            sys::EXIT_USAGE,
            "--wait must be a number of seconds from 0 to 86400",
        ));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(w);
    while !sys::module_live() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if sys::module_live() {
        Ok(())
    } else {
        Err(Failure::new(
            sys::EXIT_NOT_LOADED,
            format!("{} (waited {w} s)", sys::NOT_LOADED),
        ))
    }
}

/// Runs `xdpguard save`.
pub fn save(s: Save) -> Result<(), Failure> {
    let guard = ctl::open()?;
    let active = ctl::active(&guard)?;
    let text = format!(
        "# The xdpguard rule set saved by `xdpguard save`; `xdpguard restore`\n\
         # (xdpguard.service, at boot) applies it.\n{}",
        active.rules.to_toml()
    );
    if let Some(dir) = s.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    }
    super::metrics::write_atomically(&s.file, &text)?;
    println!(
        "{}: saved {} rules; xdpguard restore applies them",
        s.file.display(),
        active.rules.rules.len()
    );
    Ok(())
}

/// Runs `xdpguard restore`: checks the file (exit 2, before waiting), waits
/// for the module if asked, then applies it as `apply` does.
pub fn restore(r: Restore) -> Result<(), Failure> {
    let file = path_str(&r.file)?;
    let rs = super::apply::checked(&file)?;
    wait_for_module(r.wait)?;
    super::apply::commit_file(&file, &rs)
}

fn path_str(p: &Path) -> Result<String, Failure> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::usage(format!("{}: not a UTF-8 path", p.display())))
}
