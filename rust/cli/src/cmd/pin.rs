// SPDX-License-Identifier: GPL-2.0

//! `xdpguard pin` and `xdpguard unpin`: the module's maps as files under
//! `/sys/fs/bpf/xdpguard/`.

use std::path::Path;

use xdpguard_user::{
    pins::{self, PIN_DIR},
    sys::{self, Failure},
    sysfs,
};

/// Options of `pin`.
#[derive(clap::Args)]
pub struct PinArgs {
    /// First wait up to this many seconds for the module to finish loading
    /// (for the udev rule, which runs as the module appears).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<f64>,
}

fn io_fail(what: &str, e: std::io::Error) -> Failure {
    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        sys::privilege_failure(&["CAP_SYS_ADMIN"])
    } else {
        Failure::from(format!("{what}: {e}"))
    }
}

/// Runs `pin`.
pub fn pin(a: PinArgs) -> Result<(), Failure> {
    super::saved::wait_for_module(a.wait)?;
    let guard = sys::open_guard()?;
    // One command at a time changes the pins (udev and an operator may
    // both run `pin` as the module loads).
    let _lock = xdpguard_user::ctl::lock()?;
    let dir = Path::new(PIN_DIR);
    let out = pins::pin_all(dir, &guard.maps_by_name()).map_err(|e| io_fail(PIN_DIR, e))?;
    let total = out.pinned.len() + out.replaced.len() + out.kept.len();
    let mut what = Vec::new();
    if !out.pinned.is_empty() {
        what.push(format!("{} new", out.pinned.len()));
    }
    if !out.kept.is_empty() {
        what.push(format!("{} already current", out.kept.len()));
    }
    if !out.replaced.is_empty() {
        what.push(format!(
            "{} stale pins replaced (module reloaded)",
            out.replaced.len()
        ));
    }
    if !out.removed.is_empty() {
        what.push(format!(
            "{} stale pins removed ({})",
            out.removed.len(),
            out.removed.join(", ")
        ));
    }
    println!("pinned {total} maps under {PIN_DIR} ({})", what.join(", "));
    Ok(())
}

/// Runs `unpin`.
pub fn unpin() -> Result<(), Failure> {
    sys::require_privilege()?;
    let _lock = xdpguard_user::ctl::lock()?;
    let dir = Path::new(PIN_DIR);
    let module = sysfs::module_maps();
    let state = pins::inspect(dir, module.as_deref())
        .map(|p| pins::summary(&p))
        .unwrap_or("unreadable");
    let n = pins::unpin_all(dir).map_err(|e| io_fail(PIN_DIR, e))?;
    if n == 0 && state == "absent" {
        println!("nothing pinned under {PIN_DIR}");
    } else {
        println!("removed {n} pins ({state}) and {PIN_DIR}");
    }
    Ok(())
}
