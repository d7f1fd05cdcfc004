// SPDX-License-Identifier: GPL-2.0

//! `xdpguard generate`: man pages and shell completions from the CLI's own clap definitions.
//!
//! Packagers run it at build time (`make install`, `debian/rules`), so the
//! pages and completions always describe the commands the binary has. The
//! subcommand is hidden from `--help`, the man pages and the completions.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::{Command, Subcommand};
use clap_complete::Shell;

/// What `xdpguard generate` writes.
#[derive(Subcommand)]
pub enum What {
    /// Write xdpguard.8, one xdpguard-COMMAND.8 per command, xdpguard.4
    /// (the module) and xdpguard.toml.5 (the rule file) into DIR.
    Man {
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
    /// Write bash (xdpguard), zsh (_xdpguard) and fish (xdpguard.fish)
    /// completions into DIR.
    Completions {
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
}

/// Writes what `what` names for the command tree `cmd`; prints each file written.
pub fn run(cmd: Command, what: What) -> Result<(), String> {
    let mut cmd = visible(cmd);
    cmd.build();
    match what {
        What::Man { dir } => man(&cmd, &dir),
        What::Completions { dir } => completions(&mut cmd, &dir),
    }
}

/// `cmd` without its hidden subcommands (`generate` itself): clap_complete
/// would offer them.
fn visible(cmd: Command) -> Command {
    let subs: Vec<Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    let mut top = Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().cloned())
        .subcommands(subs)
        .subcommand_required(cmd.is_subcommand_required_set())
        // `help` has no page of its own: every page documents --help.
        .disable_help_subcommand(true);
    if let Some(v) = cmd.get_version() {
        top = top.version(v.to_string());
    }
    if let Some(a) = cmd.get_about() {
        top = top.about(a.clone());
    }
    if let Some(a) = cmd.get_long_about() {
        top = top.long_about(a.clone());
    }
    if let Some(a) = cmd.get_after_help() {
        top = top.after_help(a.clone());
    }
    top
}

fn create(dir: &Path, name: &str) -> Result<(PathBuf, BufWriter<File>), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, BufWriter::new(file)))
}

fn finish(path: &Path, mut out: BufWriter<File>) -> Result<(), String> {
    out.flush()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

/// Renders the page of `cmd` in section 8 (the CLI is in /usr/sbin):
/// clap_mangen's sections, then EXIT STATUS, FILES and SEE ALSO before
/// VERSION, in the order man-pages(7) gives.
fn command_page(cmd: Command, page: &str, source: &str) -> Result<Vec<u8>, std::io::Error> {
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_subs = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let has_after = cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some();
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .date(crate::manpages::page_date())
        .manual("xdpguard manual")
        .source(source.to_string());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if has_args {
        man.render_options_section(&mut out)?;
    }
    if has_subs {
        man.render_subcommands_section(&mut out)?;
    }
    if has_after {
        man.render_extra_section(&mut out)?;
    }
    out.extend_from_slice(crate::manpages::command_sections(page).as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

fn write_page(dir: &Path, file: &str, text: &[u8]) -> Result<(), String> {
    let (path, mut out) = create(dir, file)?;
    out.write_all(text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    finish(&path, out)
}

fn man(cmd: &Command, dir: &Path) -> Result<(), String> {
    let name = cmd.get_name().to_string();
    let version = cmd
        .get_version()
        .unwrap_or(env!("CARGO_PKG_VERSION"))
        .to_string();
    let source = format!("xdpguard {version}");
    let render = |c: Command, page: &str| {
        command_page(c, page, &source).map_err(|e| format!("{page}.8: {e}"))
    };

    write_page(dir, &format!("{name}.8"), &render(cmd.clone(), &name)?)?;
    for sub in cmd.get_subcommands() {
        // The page of `xdpguard apply` is xdpguard-apply(8), as git and
        // bpftool name theirs; its synopsis keeps the two-word invocation.
        let page = format!("{name}-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(page.clone())
            .bin_name(format!("{name} {}", sub.get_name()))
            .version(version.clone());
        write_page(dir, &format!("{page}.8"), &render(sub, &page)?)?;
    }
    write_page(dir, "xdpguard.4", crate::manpages::module_page(&version).as_bytes())?;
    write_page(dir, "xdpguard.toml.5", crate::manpages::rules_page(&version).as_bytes())?;
    Ok(())
}

fn completions(cmd: &mut Command, dir: &Path) -> Result<(), String> {
    let bin = cmd.get_name().to_string();
    // The names the shells look for in their completion directories.
    for (shell, file) in [
        (Shell::Bash, bin.clone()),
        (Shell::Zsh, format!("_{bin}")),
        (Shell::Fish, format!("{bin}.fish")),
    ] {
        let (path, mut out) = create(dir, &file)?;
        clap_complete::generate(shell, cmd, bin.clone(), &mut out);
        finish(&path, out)?;
    }
    Ok(())
}
