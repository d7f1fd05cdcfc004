// SPDX-License-Identifier: GPL-2.0

//! Noticing that the module went away while a command works.

use std::{
    io,
    sync::atomic::{AtomicBool, AtomicU8, Ordering},
    thread,
    time::Duration,
};

use super::Failure;
use crate::Guard;

/// How often the watchdog looks at sysfs.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How long it leaves the command to notice by itself (at its next
/// [`alive`]) before it ends the process.
const WATCH_GRACE: Duration = Duration::from_millis(700);

struct Watchdog {
    started: AtomicBool,
    armed: AtomicBool,
    /// 0: loaded; 1: unloaded; 2: reloaded.
    gone: AtomicU8,
}

static WATCHDOG: Watchdog = Watchdog {
    started: AtomicBool::new(false),
    armed: AtomicBool::new(false),
    gone: AtomicU8::new(0),
};

fn gone_failure(state: u8) -> Failure {
    match state {
        1 => Failure::not_loaded(),
        _ => Failure::reloaded(),
    }
}

/// Watches, until [`disarm`], that the module `guard` was opened on stays
/// loaded: a thread compares the program and map ids in sysfs with
/// `guard`'s ten times a second. A command holding map fds keeps the maps
/// alive after `rmmod`, so without this a long write would "succeed" into
/// maps nobody uses. The command notices at its next [`alive`] (between
/// write batches, and before the switch); should it be busy elsewhere
/// (compiling, reading a list, waiting for the lock) for 0.7 s more, the
/// thread prints the message and ends the process with exit 3 itself:
/// nothing was switched, so nothing is lost.
pub fn watch(guard: &Guard) {
    WATCHDOG.armed.store(true, Ordering::SeqCst);
    if WATCHDOG.started.swap(true, Ordering::SeqCst) {
        return;
    }
    let prog = guard.prog_id;
    let maps: Vec<(String, u32)> = guard
        .maps_by_name()
        .into_iter()
        .map(|(n, m)| (n, m.id))
        .collect();
    let spawned = thread::Builder::new()
        .name("xdpguard-watch".into())
        .spawn(move || loop {
            thread::sleep(WATCH_EVERY);
            if !WATCHDOG.armed.load(Ordering::SeqCst) {
                continue;
            }
            // `initstate` first: the core's attribute says `going` as soon
            // as rmmod begins, while reading the module's own attributes
            // (its program id) may wait for its exit to finish (9 s under
            // TCG, measured).
            let live = crate::sysfs::attr("initstate").as_deref() == Some("live");
            let now = if live { crate::sys::published() } else { None };
            let state = match crate::sys::compare_opened(prog, &maps, &now) {
                crate::sys::Opened::Current => continue,
                crate::sys::Opened::Unloaded => 1,
                crate::sys::Opened::Reloaded => 2,
            };
            WATCHDOG.gone.store(state, Ordering::SeqCst);
            thread::sleep(WATCH_GRACE);
            if !WATCHDOG.armed.load(Ordering::SeqCst) {
                return;
            }
            let f = gone_failure(state);
            if io::IsTerminal::is_terminal(&io::stderr()) {
                // Over a progress bar.
                eprint!("\r\x1b[2K");
            }
            eprintln!("xdpguard: {}", f.msg());
            std::process::exit(f.code() as i32);
        });
    if spawned.is_err() {
        // No thread: `alive` looks at sysfs itself.
        WATCHDOG.started.store(false, Ordering::SeqCst);
    }
}

/// Stops [`watch`]ing: the command has switched (or changes nothing more).
pub fn disarm() {
    WATCHDOG.armed.store(false, Ordering::SeqCst);
}

/// Exit 3 if the module `guard` was opened on has gone (or was replaced):
/// what the watchdog saw, or, without one, what sysfs says now.
pub fn alive(guard: &Guard) -> Result<(), Failure> {
    match WATCHDOG.gone.load(Ordering::SeqCst) {
        0 if WATCHDOG.started.load(Ordering::SeqCst) => Ok(()),
        0 => crate::sys::still_opened(guard),
        s => Err(gone_failure(s)),
    }
}
