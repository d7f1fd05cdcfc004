// SPDX-License-Identifier: GPL-2.0

//! `xdpguard log`: decoded drop samples as they come, as text or JSON lines.

use std::io::Write;
use std::time::{Duration, Instant};

use xdpguard_abi::{Config, MapId};
use xdpguard_user::{samples, sys::Failure, Guard};

/// When a reader of samples (`log`, `capture`) stops.
#[derive(clap::Args, Clone, Copy)]
pub struct Bounds {
    /// Stop after this many samples.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// Options of `log`.
#[derive(clap::Args)]
pub struct Args {
    /// When to stop.
    #[command(flatten)]
    pub bounds: Bounds,
    /// One JSON object per sample and line.
    #[arg(long)]
    pub json: bool,
}

/// Warns on stderr when the active rule set samples nothing.
fn warn_if_not_sampling(guard: &Guard) {
    let cfg: Option<Config> = guard
        .active()
        .ok()
        .and_then(|g| guard.map(MapId::Config).lookup(&g).ok().flatten());
    if cfg.is_some_and(|c| c.sample_rate == 0) {
        eprintln!(
            "xdpguard: the active rule set samples no drops (samples = 0); \
             set `samples = N` (per second per CPU) in the rule file"
        );
    }
}

/// Checks `--timeout` (exit 2): seconds, 0 or more. Done before the module
/// is looked for, like every check of the input.
fn check_timeout(timeout: Option<f64>) -> Result<(), Failure> {
    match timeout {
        Some(t) if !t.is_finite() || t < 0.0 => Err(Failure::usage(format!(
            "--timeout {t}: give a number of seconds, 0 or more"
        ))),
        _ => Ok(()),
    }
}

/// Checks `bounds`, opens the module and warns if the active rule set
/// samples nothing: how every reader of samples starts.
pub fn open_sampling(bounds: &Bounds) -> Result<Guard, Failure> {
    check_timeout(bounds.timeout)?;
    let guard = xdpguard_user::sys::open_guard()?;
    warn_if_not_sampling(&guard);
    Ok(guard)
}

/// How often a reader checks that the module it opened is still loaded:
/// the ring buffer it holds outlives `rmmod` and then stays empty.
pub const MODULE_CHECK: Duration = Duration::from_millis(400);

/// Polls the sample ring buffer, calling `f` with each sample, until
/// `bounds` (`--count` samples or `--timeout` seconds). Ends with exit 3 when the module
/// is unloaded or reloaded (checked every [`MODULE_CHECK`]), after the
/// samples already in the ring buffer.
pub fn each_sample(
    guard: &Guard,
    bounds: &Bounds,
    mut f: impl FnMut(&xdpguard_abi::Sample) -> Result<(), Failure>,
) -> Result<usize, Failure> {
    let Bounds { count, timeout } = *bounds;
    let _reader = xdpguard_user::ctl::samples_lock()?;
    let mut ring = guard.samples()?;
    let start = Instant::now();
    let mut checked = start;
    let mut seen = 0;
    let mut err = None;
    loop {
        // Samples past --count stay in the ring buffer for the next reader.
        ring.poll_while(|rec| {
            if err.is_some() || count.is_some_and(|c| seen >= c) {
                return false;
            }
            if let Some(s) = samples::decode(rec) {
                match f(&s) {
                    Ok(()) => seen += 1,
                    Err(e) => err = Some(e),
                }
            }
            true
        });
        if let Some(e) = err {
            return Err(e);
        }
        let done = count.is_some_and(|c| seen >= c)
            || timeout.is_some_and(|t| start.elapsed().as_secs_f64() >= t);
        if done {
            return Ok(seen);
        }
        if checked.elapsed() >= MODULE_CHECK {
            xdpguard_user::sys::still_opened(guard)?;
            checked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `log`.
pub fn run(a: Args) -> Result<(), Failure> {
    let guard = open_sampling(&a.bounds)?;
    let offset = samples::monotonic_offset_ns();
    // A reader that went away (`xdpguard log | head`) ends the run quietly:
    // this failure with exit code 0 stops the loop and is not reported.
    let gone = || Failure::new(xdpguard_user::sys::EXIT_OK, "");
    let result = each_sample(&guard, &a.bounds, |s| {
        let text = if a.json {
            samples::to_json(s, offset).to_string()
        } else {
            samples::describe_sample(s)
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|_| out.flush())
            .map_err(|_| gone())
    });
    match result {
        Err(xdpguard_user::sys::Failure::Done) => Ok(()),
        r => r.map(|_| ()),
    }
}
