// SPDX-License-Identifier: GPL-2.0

//! The man pages that do not come from clap: the sections every command's
//! page gets (EXIT STATUS, FILES, SEE ALSO), xdpguard(4) for the module
//! and xdpguard.toml(5) for the rule file. Written with `roff`, the crate
//! clap_mangen renders with, so that text is escaped the same way.
//!
//! The text condenses Documentation/admin-guide.rst, cli.rst and
//! rules.rst; each page names the document that has the whole story.

use roff::{bold, italic, roman, Inline, Roff};

fn sh(r: &mut Roff, title: &str) {
    r.control("SH", [title]);
}

fn pp(r: &mut Roff, text: impl Into<Vec<Inline>>) {
    r.control("PP", []);
    r.text(text);
}

fn tp(r: &mut Roff, term: impl Into<Vec<Inline>>, text: impl Into<Vec<Inline>>) {
    r.control("TP", []);
    r.text(term);
    r.text(text);
}

/// Lines shown as they are, indented.
fn example(r: &mut Roff, lines: &str) {
    r.control("PP", []);
    r.control("RS", ["4"]);
    r.control("nf", []);
    for l in lines.lines() {
        r.text([roman(l)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

fn see_also(r: &mut Roff, pages: &[(&str, &str)]) {
    sh(r, "SEE ALSO");
    let mut inl = Vec::new();
    for (i, (name, sec)) in pages.iter().enumerate() {
        if i > 0 {
            inl.push(roman(", "));
        }
        inl.push(bold(*name));
        inl.push(roman(format!("({sec})")));
    }
    r.text(inl);
    pp(
        r,
        [roman(
            "The whole documentation is the source tree's Documentation/ (admin-guide.rst for the \
             module, cli.rst and cli-rules.rst for the commands, rules.rst for the rule file).",
        )],
    );
}

/// EXIT STATUS, FILES and SEE ALSO of the page of `page` (`xdpguard` or
/// `xdpguard-COMMAND`), appended after clap's sections.
pub fn command_sections(page: &str) -> String {
    let mut r = Roff::new();
    sh(&mut r, "EXIT STATUS");
    for (code, meaning) in [
        ("0", "Success."),
        ("1", "The operation failed (a kernel or map error)."),
        (
            "2",
            "Bad usage or invalid input (a bad option, rule file or address); nothing was applied.",
        ),
        (
            "3",
            "The xdpguard module is not loaded (status and metrics still print what they can).",
        ),
        (
            "4",
            "Insufficient privilege: not root, or CAP_SYS_ADMIN or CAP_NET_ADMIN missing.",
        ),
    ] {
        tp(&mut r, [bold(code)], [roman(meaning)]);
    }
    pp(
        &mut r,
        [roman(
            "Errors go to standard error as one line starting with \"xdpguard:\".",
        )],
    );
    sh(&mut r, "FILES");
    for (f, what) in [
        (
            "/sys/module/xdpguard/bpf/",
            "The loaded module's program id, map ids, links and status; the CLI finds the maps here (xdpguard(4)).",
        ),
        (
            "/run/xdpguard/",
            "The record of the active rule set and of each generation's digest, written by every change and read by export, list, verify and status. Gone at reboot.",
        ),
        (
            "/etc/xdpguard/rules.toml",
            "The rule set xdpguard save writes and xdpguard restore applies; xdpguard.service restores it at boot when enabled.",
        ),
        (
            "/sys/fs/bpf/xdpguard/",
            "The maps pinned by xdpguard pin, for bpftool.",
        ),
        (
            "/lib/udev/rules.d/70-xdpguard.rules",
            "Runs xdpguard pin --wait 30 when the module loads.",
        ),
    ] {
        tp(&mut r, [bold(f)], [roman(what)]);
    }
    let mut pages = vec![];
    if page != "xdpguard" {
        pages.push(("xdpguard", "8"));
    }
    pages.extend([("xdpguard", "4"), ("xdpguard.toml", "5"), ("bpftool", "8"), ("ip-link", "8")]);
    see_also(&mut r, &pages);
    r.to_roff()
}

fn title(r: &mut Roff, name: &str, section: &str, version: &str) {
    r.control(
        "TH",
        [
            name.to_uppercase().as_str(),
            section,
            &page_date(),
            &format!("xdpguard {version}"),
            "xdpguard manual",
        ],
    );
}

/// The pages' date, YYYY-MM-DD: of `SOURCE_DATE_EPOCH` when set (Debian's
/// package build sets it from the changelog, so the pages are
/// reproducible), else today. `.TH` needs one: an empty argument is
/// dropped and the source and manual move left.
pub fn page_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d) = civil(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(59), (1970, 3, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_793), (2026, 12, 6));
        assert_eq!(civil(-1), (1969, 12, 31));
    }

    #[test]
    fn pages_have_a_full_title_line() {
        for page in [module_page("1.2.3"), rules_page("1.2.3")] {
            let th = page.lines().find(|l| l.starts_with(".TH ")).unwrap();
            assert!(th.contains("\"xdpguard 1.2.3\" \"xdpguard manual\""), "{th}");
            assert!(!th.contains("  "), "an empty argument: {th}");
        }
    }
}

/// xdpguard(4): the kernel module, its parameters and sysfs files.
pub fn module_page(version: &str) -> String {
    let mut r = Roff::new();
    title(&mut r, "xdpguard", "4", version);
    sh(&mut r, "NAME");
    r.text([roman("xdpguard - XDP firewall kernel module")]);
    sh(&mut r, "SYNOPSIS");
    r.text([
        bold("modprobe xdpguard"),
        roman(" [ifaces="),
        italic("LIST"),
        roman("] [mode=auto|native|generic] [policy=allow|deny] [monitor=0|1]"),
    ]);
    sh(&mut r, "DESCRIPTION");
    r.text([roman(
        "xdpguard is a kernel module written in Rust that loads its XDP program (also Rust) \
         through the kernel's verifier and JIT, creates the program's BPF maps, and attaches \
         the program with BPF links to the interfaces it is told to guard: native XDP where the \
         driver supports it, generic XDP otherwise. It follows interfaces of the initial network \
         namespace that appear, are renamed or leave, and detaches everything on rmmod. Rules are \
         BPF map contents, changed while traffic flows by xdpguard(8).",
    )]);
    sh(&mut r, "PARAMETERS");
    r.text([roman(
        "All are read-only after load and shown in /sys/module/xdpguard/parameters/.",
    )]);
    tp(
        &mut r,
        [bold("ifaces="), italic("LIST")],
        [roman(
            "Interfaces to guard, comma-separated: names (eth0) or shell-style patterns \
             (eth*, veth?, ens[0-9]*). At most 32 entries, a pattern at most 64 bytes. A plain \
             name must exist at load; a pattern may match nothing yet, and matching interfaces \
             are attached as they appear. Empty: nothing is guarded until an interface is \
             written to the attach file.",
        )],
    );
    tp(
        &mut r,
        [bold("mode=auto|native|generic")],
        [roman(
            "auto (default): native XDP where the driver has it, else generic, per interface. \
             native: native or fail. generic: generic XDP on every device.",
        )],
    );
    tp(
        &mut r,
        [bold("policy=allow|deny")],
        [roman(
            "The default policy until the first rule set is applied (default allow). deny drops \
             every frame no rule allows; link-essential frames (ARP, neighbour and router \
             discovery, DHCP replies) still pass. A policy=deny load at boot without a rule set \
             restored blocks remote logins: apply one that allows them.",
        )],
    );
    tp(
        &mut r,
        [bold("monitor=0|1")],
        [roman(
            "1: count the frames that would be dropped and pass them (dry run) until a rule set \
             is applied. Default 0.",
        )],
    );
    pp(
        &mut r,
        [roman(
            "A bad parameter fails the load with EINVAL and one line in the kernel log saying \
             what to fix, for example:",
        )],
    );
    example(
        &mut r,
        "xdpguard: ifaces=: no interface named 'eth9' in the initial network namespace ...\n\
         xdpguard: mode=fast: unknown mode; use mode=auto, mode=native or mode=generic",
    );
    sh(&mut r, "SYSFS");
    for (f, what) in [
        ("/sys/module/xdpguard/bpf/prog_id", "Id of the loaded program (bpftool prog show id N)."),
        ("/sys/module/xdpguard/bpf/maps", "One line per map: name id."),
        (
            "/sys/module/xdpguard/bpf/links",
            "One line per attached interface: ifname ifindex mode link_id.",
        ),
        ("/sys/module/xdpguard/bpf/status", "A summary, one fact per line."),
        (
            "/sys/module/xdpguard/bpf/attach, detach",
            "Write-only (root): write an interface name to attach or detach it without a reload. \
             The write returns when done, or fails with the error (ENODEV, EINVAL, EBUSY, EEXIST, \
             EOPNOTSUPP) and a kernel log line.",
        ),
    ] {
        tp(&mut r, [bold(f)], [roman(what)]);
    }
    sh(&mut r, "FILES");
    tp(
        &mut r,
        [bold("/etc/modprobe.d/xdpguard.conf")],
        [roman("Commented options xdpguard lines: the parameters for modprobe.")],
    );
    tp(
        &mut r,
        [bold("/etc/modules-load.d/xdpguard.conf")],
        [roman("Not installed: a line xdpguard there loads the module at boot.")],
    );
    sh(&mut r, "EXAMPLES");
    example(
        &mut r,
        "modprobe xdpguard ifaces='eth0,veth*' mode=auto\n\
         echo eth1 > /sys/module/xdpguard/bpf/attach\n\
         xdpguard apply rules.toml\n\
         rmmod xdpguard",
    );
    see_also(
        &mut r,
        &[("xdpguard", "8"), ("xdpguard.toml", "5"), ("modprobe", "8"), ("bpftool", "8")],
    );
    r.render()
}

/// xdpguard.toml(5): the rule file.
pub fn rules_page(version: &str) -> String {
    let mut r = Roff::new();
    title(&mut r, "xdpguard.toml", "5", version);
    sh(&mut r, "NAME");
    r.text([roman("xdpguard.toml - xdpguard rule file")]);
    sh(&mut r, "DESCRIPTION");
    r.text([roman(
        "A TOML file that xdpguard apply makes the active rule set at once, or not at all: the \
         whole file is checked first, and an error names the line and the fix. xdpguard check \
         only checks it; xdpguard export writes the active set back in this format.",
    )]);
    sh(&mut r, "SETTINGS");
    for (k, v) in [
        ("default = \"allow\"|\"deny\"", "What happens to a frame no rule matches (default allow)."),
        ("monitor = true|false", "Evaluate and count, never drop (default false)."),
        ("malformed = \"deny\"|\"allow\"", "Frames with malformed or truncated headers (default deny)."),
        (
            "fragments = \"l3\"|\"drop\"|\"pass\"",
            "Non-first fragments: l3 (default) lets address, MAC and protocol rules decide them; \
             drop and pass decide them before any rule.",
        ),
        ("syn_limit = \"NAME\"", "The [[limit]] charged per source for TCP SYNs without ACK."),
        ("global_limit = \"NAME\"", "The [[limit]] charged for every other passing IP frame."),
        ("samples = N", "Dropped-packet samples per second per CPU for xdpguard log (0: off)."),
        (
            "[interfaces]",
            "IFACE = \"allow\"|\"deny\": a per-interface default policy, overriding default.",
        ),
    ] {
        tp(&mut r, [bold(k)], [roman(v)]);
    }
    sh(&mut r, "LIMITS");
    r.text([roman(
        "Each [[limit]] table is a pair of token buckets per source: name (required), pps and \
         burst (packets), bps and burst_bytes (bytes), prefix4 and prefix6 (sources grouped by \
         prefix; defaults 32 and 128). At most 511.",
    )]);
    sh(&mut r, "RULES");
    r.text([roman(
        "Each [[rule]] table is one rule; every field given must match. At most 8192 rules.",
    )]);
    for (k, v) in [
        (
            "action",
            "Required: allow, deny, or limit (pass while the source is within the rule's limit = \"NAME\").",
        ),
        (
            "src, dst",
            "A CIDR, an address, or a list of them (host bits zero). A list longer than one only \
             on a rule with one of src or dst and nothing else; such a list may mix IPv4 and IPv6 \
             and be millions long.",
        ),
        (
            "proto",
            "tcp, udp, icmp, icmpv6, gre, esp, ah, sctp or 0-255, after IPv6 extension headers.",
        ),
        ("sport, dport", "A port or a range \"lo-hi\"; need proto tcp or udp."),
        ("icmp_type, icmp_code", "Need proto icmp or icmpv6; a code needs a type."),
        ("src_mac, dst_mac", "Ethernet addresses, aa:bb:cc:dd:ee:ff."),
        ("comment", "Free text, kept with the rule."),
    ] {
        tp(&mut r, [bold(k)], [roman(v)]);
    }
    sh(&mut r, "PRECEDENCE");
    r.text([roman(
        "When several rules match, the most specific decides: MAC addresses first, then more \
         address prefix bits (src plus dst), then more L4 detail (a port or ICMP type and code, \
         then a range or type, then a bare protocol); at equal specificity allow beats limit \
         beats deny, then the rule written first. No match: a link-essential frame (ARP, \
         neighbour and router discovery, MLD, DHCP client traffic) passes, any other takes its \
         interface's policy, else default. Rules apply to link-essential frames too: a deny \
         whose addresses, protocol, port or MAC match drops them.",
    )]);
    pp(
        &mut r,
        [roman(
            "xdpguard is stateless: with default = \"deny\", replies to the host's own outbound \
             connections match no allow rule and are dropped. Allow the host's peers by address, \
             never by source port.",
        )],
    );
    sh(&mut r, "EXAMPLE");
    example(
        &mut r,
        "default = \"deny\"\n\
         \n\
         [[rule]]\n\
         action = \"allow\"\n\
         proto = \"tcp\"\n\
         dport = 22\n\
         \n\
         [[rule]]\n\
         action = \"deny\"\n\
         src = [\"198.51.100.0/24\", \"2001:db8:bad::/48\"]",
    );
    see_also(&mut r, &[("xdpguard", "8"), ("xdpguard-apply", "8"), ("xdpguard", "4")]);
    r.render()
}
