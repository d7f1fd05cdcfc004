// SPDX-License-Identifier: GPL-2.0

//! The module parameters as values: `mode=`, `policy=`, `monitor=` and the names and shell patterns of `ifaces=`.
//!
//! Pure logic over bytes, with no kernel items, so that the host crate
//! `xdpguard-modlogic` includes this file with `#[path]` and tests it. A
//! rejected value is a [`ParamError`], whose `Display` is the message the
//! module prints; the module turns it into `EINVAL` where it reads the
//! parameters or a sysfs write.

use core::fmt;

/// `IFNAMSIZ`: an interface name with its NUL.
pub(crate) const IFNAMSIZ: usize = 16;
/// Longest interface name (`IFNAMSIZ` - 1).
pub(crate) const IFNAME_MAX: usize = IFNAMSIZ - 1;
/// Longest pattern in `ifaces=`.
pub(crate) const PATTERN_MAX: usize = 64;
/// Most entries in `ifaces=`.
pub(crate) const PATTERNS_MAX: usize = 32;

/// Shows bytes as the kernel's `BStr` does: printable ASCII as it is,
/// `\t`, `\n` and `\r` escaped, every other byte as `\xNN`.
#[derive(Clone, Copy)]
pub(crate) struct Shown<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for &b in self.0 {
            match b {
                b'\t' => f.write_str("\\t")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                0x20..=0x7e => f.write_char(b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

/// Why a parameter or a written interface name was refused. `Display`
/// gives the message for dmesg (without its newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamError<'a> {
    /// `mode=` is none of `auto`, `native`, `generic`.
    UnknownMode(&'a [u8]),
    /// `policy=` is neither `allow` nor `deny`.
    UnknownPolicy(&'a [u8]),
    /// `monitor=` is no boolean.
    BadMonitor(&'a [u8]),
    /// An interface name longer than [`IFNAME_MAX`]; `what` says where it
    /// came from (`ifaces=`, `attach`, `detach`).
    NameTooLong {
        /// Where the name came from.
        what: &'static str,
        /// The name.
        name: &'a [u8],
    },
    /// A name the kernel would refuse (`dev_valid_name`).
    InvalidName {
        /// Where the name came from.
        what: &'static str,
        /// The name.
        name: &'a [u8],
    },
    /// A pattern longer than [`PATTERN_MAX`].
    PatternTooLong(&'a [u8]),
    /// A pattern with bytes no interface name has.
    InvalidPattern(&'a [u8]),
    /// A `[` without its `]`.
    UnclosedSet(&'a [u8]),
    /// A set with a range like `[9-0]`.
    BackwardRange {
        /// The whole pattern.
        pattern: &'a [u8],
        /// The set holding the range.
        set: &'a [u8],
    },
    /// The same entry twice in `ifaces=`.
    Duplicate(&'a [u8]),
    /// More than [`PATTERNS_MAX`] entries in `ifaces=`.
    TooMany,
}

impl fmt::Display for ParamError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParamError::UnknownMode(v) => write!(
                f,
                "mode={}: unknown mode; use mode=auto, mode=native or mode=generic",
                Shown(v)
            ),
            ParamError::UnknownPolicy(v) => write!(
                f,
                "policy={}: unknown policy; use policy=allow or policy=deny",
                Shown(v)
            ),
            ParamError::BadMonitor(v) => write!(
                f,
                "monitor={}: use monitor=0 (off) or monitor=1 (count, never drop)",
                Shown(v)
            ),
            ParamError::NameTooLong { what, name } => write!(
                f,
                "{what}: '{}' is longer than {IFNAME_MAX} bytes, the limit for interface names",
                Shown(name)
            ),
            ParamError::InvalidName { what, name } => {
                write!(f, "{what}: '{}' is not a valid interface name", Shown(name))
            }
            ParamError::PatternTooLong(p) => write!(
                f,
                "ifaces=: pattern '{}' is longer than {PATTERN_MAX} bytes; shorten it",
                Shown(p)
            ),
            ParamError::InvalidPattern(p) => write!(
                f,
                "ifaces=: '{}' is not a valid pattern: '/', ':' and blanks cannot occur in interface names",
                Shown(p)
            ),
            ParamError::UnclosedSet(p) => write!(
                f,
                "ifaces=: '{}': '[' without a closing ']'; write a set like veth[0-9]",
                Shown(p)
            ),
            ParamError::BackwardRange { pattern, set } => write!(
                f,
                "ifaces=: '{}': a range in '{}' runs backwards; write it low-high like [0-9]",
                Shown(pattern),
                Shown(set)
            ),
            ParamError::Duplicate(p) => write!(f, "ifaces=: '{}' is listed twice", Shown(p)),
            ParamError::TooMany => write!(
                f,
                "ifaces=: more than {PATTERNS_MAX} entries; use patterns like veth* instead"
            ),
        }
    }
}

/// The `mode=` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Native where the driver can, else generic.
    Auto,
    /// Native (driver) XDP only.
    Native,
    /// Generic (skb) XDP only.
    Generic,
}

impl Mode {
    /// Parses `mode=`; absent or empty is `auto`.
    pub(crate) fn parse(value: Option<&[u8]>) -> Result<Self, ParamError<'_>> {
        match value {
            None | Some(b"") | Some(b"auto") => Ok(Mode::Auto),
            Some(b"native") => Ok(Mode::Native),
            Some(b"generic") => Ok(Mode::Generic),
            Some(other) => Err(ParamError::UnknownMode(other)),
        }
    }

    /// Its word in `mode=` and in `status`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Native => "native",
            Mode::Generic => "generic",
        }
    }
}

/// Parses `policy=`: whether the load-time default policy is deny.
pub(crate) fn parse_policy(value: Option<&[u8]>) -> Result<bool, ParamError<'_>> {
    match value {
        None | Some(b"") | Some(b"allow") => Ok(false),
        Some(b"deny") => Ok(true),
        Some(other) => Err(ParamError::UnknownPolicy(other)),
    }
}

/// Parses `monitor=`.
pub(crate) fn parse_monitor(value: Option<&[u8]>) -> Result<bool, ParamError<'_>> {
    match value {
        None | Some(b"") | Some(b"0") | Some(b"n") | Some(b"N") => Ok(false),
        Some(b"1") | Some(b"y") | Some(b"Y") => Ok(true),
        Some(other) => Err(ParamError::BadMonitor(other)),
    }
}

/// Whether `name` is a name the kernel accepts for an interface
/// (`dev_valid_name`), length aside.
pub(crate) fn valid_name_bytes(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name
            .iter()
            .any(|&b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// An interface name, NUL-terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IfName {
    bytes: [u8; IFNAMSIZ],
    len: usize,
}

impl IfName {
    /// Validates a name as the kernel's `dev_valid_name` does; `what` says
    /// where it came from in error messages.
    pub(crate) fn new<'a>(name: &'a [u8], what: &'static str) -> Result<Self, ParamError<'a>> {
        if name.len() > IFNAME_MAX {
            return Err(ParamError::NameTooLong { what, name });
        }
        if !valid_name_bytes(name) {
            return Err(ParamError::InvalidName { what, name });
        }
        Ok(Self::from_valid(name))
    }

    /// A name the kernel gave us (at most `IFNAME_MAX` bytes, cut if longer).
    pub(crate) fn from_valid(name: &[u8]) -> Self {
        let len = name.len().min(IFNAME_MAX);
        let mut bytes = [0u8; IFNAMSIZ];
        bytes[..len].copy_from_slice(&name[..len]);
        Self { bytes, len }
    }

    /// A NUL-padded name from a C buffer.
    pub(crate) fn from_c(buf: &[u8; IFNAMSIZ]) -> Self {
        let len = buf.iter().position(|&b| b == 0).unwrap_or(IFNAME_MAX);
        Self::from_valid(&buf[..len])
    }

    /// The name without its NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The name with its NUL, for C.
    pub(crate) fn as_bytes_with_nul(&self) -> &[u8] {
        &self.bytes[..=self.len]
    }

    /// The name for messages and sysfs.
    pub(crate) fn shown(&self) -> Shown<'_> {
        Shown(self.as_bytes())
    }
}

/// Whether `b` makes an `ifaces=` entry a pattern.
fn is_glob_byte(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[')
}

/// Matches the bracket expression at the start of `p` (`[abc]`, `[a-z]`,
/// `[!0-9]` or `[^0-9]`; a `]` first is literal) against `c`. Returns
/// whether it matches and its length, or `None` if it has no closing `]`.
fn class_match(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(p.get(1), Some(b'!') | Some(b'^'));
    if negated {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    loop {
        let b = *p.get(i)?;
        if b == b']' && i > first {
            return Some((matched != negated, i + 1));
        }
        match (p.get(i + 1), p.get(i + 2)) {
            (Some(b'-'), Some(&hi)) if hi != b']' => {
                matched |= b <= c && c <= hi;
                i += 3;
            }
            _ => {
                matched |= b == c;
                i += 1;
            }
        }
    }
}

/// Shell-style matching of `name` against `pattern`: `*` any run of bytes,
/// `?` one byte, `[...]` one byte of a set. Iterative, with one backtrack
/// point (the last `*`), so linear in practice and never recursive.
pub(crate) fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class_match(&pattern[p..], name[n]) {
                Some((true, len)) => Some(len),
                _ => None,
            },
            Some(&b) if b == name[n] => Some(1),
            _ => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                // Let the last `*` swallow one more byte and retry.
                star = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// One entry of `ifaces=`: an interface name or a shell pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    bytes: [u8; PATTERN_MAX],
    len: usize,
    /// No `*`, `?` or `[`: a plain name, which must exist at load time.
    literal: bool,
}

impl Pattern {
    /// Validates one entry of `ifaces=`.
    pub(crate) fn new(entry: &[u8]) -> Result<Self, ParamError<'_>> {
        let literal = !entry.iter().any(|&b| is_glob_byte(b));
        if literal {
            // Same checks and messages as an interface name.
            IfName::new(entry, "ifaces=")?;
        } else {
            if entry.len() > PATTERN_MAX {
                return Err(ParamError::PatternTooLong(entry));
            }
            if !valid_name_bytes(entry) {
                return Err(ParamError::InvalidPattern(entry));
            }
            let mut i = 0;
            while i < entry.len() {
                if entry[i] != b'[' {
                    i += 1;
                    continue;
                }
                let Some((_, len)) = class_match(&entry[i..], 0) else {
                    return Err(ParamError::UnclosedSet(entry));
                };
                let set = &entry[i..i + len];
                if set
                    .windows(3)
                    .any(|w| w[1] == b'-' && w[2] != b']' && w[0] != b'[' && w[0] > w[2])
                {
                    return Err(ParamError::BackwardRange {
                        pattern: entry,
                        set,
                    });
                }
                i += len;
            }
        }
        let mut bytes = [0u8; PATTERN_MAX];
        bytes[..entry.len()].copy_from_slice(entry);
        Ok(Self {
            bytes,
            len: entry.len(),
            literal,
        })
    }

    /// The entry as written.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The entry for messages and sysfs.
    pub(crate) fn shown(&self) -> Shown<'_> {
        Shown(self.as_bytes())
    }

    /// A plain name (no `*`, `?` or `[`), which must exist at load time.
    pub(crate) fn is_literal(&self) -> bool {
        self.literal
    }

    /// Whether the interface called `name` is one this entry asks for.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        if self.literal {
            self.as_bytes() == name
        } else {
            glob_match(self.as_bytes(), name)
        }
    }
}

/// The entries of `ifaces=`: comma-separated names and patterns, blanks
/// around them ignored, empty ones skipped. Each item is the next entry,
/// validated, or why it (or the list) was refused; stop at the first
/// error. Empty input yields nothing: nothing is attached at load time.
pub(crate) fn patterns(value: &[u8]) -> impl Iterator<Item = Result<Pattern, ParamError<'_>>> {
    let entries = move || {
        value
            .split(|&b| b == b',')
            .map(|e| e.trim_ascii())
            .filter(|e| !e.is_empty())
    };
    entries().enumerate().map(move |(n, entry)| {
        let pattern = Pattern::new(entry)?;
        // The earlier entries were all valid (the first error stops the
        // caller), so comparing bytes finds the same pattern twice.
        if entries().take(n).any(|e| e == entry) {
            return Err(ParamError::Duplicate(entry));
        }
        if n == PATTERNS_MAX {
            return Err(ParamError::TooMany);
        }
        Ok(pattern)
    })
}

/// The module parameters, validated. `P` holds the `ifaces=` entries (a
/// kernel vector in the module, a `Vec` in tests).
pub(crate) struct Params<P> {
    /// `mode=`.
    pub(crate) mode: Mode,
    /// `policy=deny`.
    pub(crate) deny: bool,
    /// `monitor=1`.
    pub(crate) monitor: bool,
    /// The entries of `ifaces=`, in order.
    pub(crate) patterns: P,
}

impl<P: core::ops::Deref<Target = [Pattern]>> Params<P> {
    /// Whether an interface called `name` is one `ifaces=` asks for.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        self.patterns.iter().any(|p| p.matches(name))
    }

    /// Whether `ifaces=` names `name` literally (not by a pattern).
    pub(crate) fn names_literally(&self, name: &[u8]) -> bool {
        self.patterns
            .iter()
            .any(|p| p.literal && p.as_bytes() == name)
    }
}
