// SPDX-License-Identifier: GPL-2.0

//! Builds the kernel module's program skeleton from the compiled BPF ELF.
//!
//! The module must not parse ELF in the kernel, so this host tool reads the
//! program section, its map relocations and the license, checks every map
//! definition against `xdpguard_abi::MAPS`, and writes a Rust file of plain
//! data (instruction bytes and `(instruction, map)` relocation pairs) that the
//! module includes.
//!
//! Usage: `xdpguard-skel PROGRAM.elf OUTPUT.rs`

use std::{fmt::Write as _, process::ExitCode};

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};
use xdpguard_abi::{MapSpec, MAPS};

/// ELF section aya's `#[xdp]` places the program in.
const PROG_SECTION: &str = "xdp";
/// ELF section of legacy `struct bpf_map_def` map definitions.
const MAPS_SECTION: &str = "maps";
/// Opcode of the two-slot 64-bit immediate load that references a map.
const BPF_LD_IMM64: u8 = 0x18;
/// Size of one BPF instruction.
const INSN_SIZE: usize = 8;

/// What the module needs to load the program.
#[derive(Debug, PartialEq, Eq)]
struct Skeleton {
    insns: Vec<u8>,
    /// (instruction index, index into `MAPS`), sorted by instruction.
    relocs: Vec<(u32, u32)>,
    license: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, elf, out] = args.as_slice() else {
        eprintln!("usage: xdpguard-skel PROGRAM.elf OUTPUT.rs");
        return ExitCode::from(2);
    };
    let result = std::fs::read(elf)
        .map_err(|e| format!("{elf}: {e}"))
        .and_then(|data| extract(&data).map_err(|e| format!("{elf}: {e}")))
        .and_then(|skel| {
            std::fs::write(out, render(&skel, elf)).map_err(|e| format!("{out}: {e}"))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpguard-skel: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the program, its relocations and its license out of a BPF ELF.
fn extract(data: &[u8]) -> Result<Skeleton, String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF object: {e}"))?;
    if file.architecture() != object::Architecture::Bpf || !file.is_little_endian() {
        return Err("not a little-endian BPF object".into());
    }
    let prog = file
        .section_by_name(PROG_SECTION)
        .ok_or_else(|| format!("no `{PROG_SECTION}` section: is this the XDP program?"))?;
    let insns = prog.data().map_err(|e| e.to_string())?.to_vec();
    if insns.is_empty() || insns.len() % INSN_SIZE != 0 {
        return Err(format!(
            "section `{PROG_SECTION}` is {} bytes, not whole instructions",
            insns.len()
        ));
    }
    // Code outside the program section (compiler-builtins' mem functions in
    // `.text`) is fine as long as nothing calls it: every relocation of the
    // program must name a map, which the loop below enforces. Global
    // variables would need data-section maps, which the skeleton does not
    // carry.
    for s in file.sections() {
        let name = s.name().unwrap_or("");
        let data_kind = matches!(
            s.kind(),
            object::SectionKind::Data
                | object::SectionKind::ReadOnlyData
                | object::SectionKind::UninitializedData
        );
        if data_kind && ![MAPS_SECTION, "license"].contains(&name) && s.size() > 0 {
            return Err(format!(
                "unexpected data section `{name}`: global variables are not supported"
            ));
        }
    }
    let maps_section = file.section_by_name(MAPS_SECTION);
    let maps_data = match &maps_section {
        Some(s) => s.data().map_err(|e| e.to_string())?,
        None => &[],
    };

    let mut relocs = Vec::new();
    let mut seen = vec![false; MAPS.len()];
    for (offset, reloc) in prog.relocations() {
        let RelocationTarget::Symbol(sym_index) = reloc.target() else {
            return Err(format!("relocation at {offset:#x} has no symbol"));
        };
        let sym = file.symbol_by_index(sym_index).map_err(|e| e.to_string())?;
        let name = sym.name().map_err(|e| e.to_string())?;
        if maps_section.as_ref().map(|s| s.index()) != sym.section_index() {
            return Err(format!(
                "relocation at {offset:#x} to `{name}`, which is not a map"
            ));
        }
        let index = MAPS
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| format!("map `{name}` is not in xdpguard_abi::MAPS"))?;
        check_map_def(&MAPS[index], maps_data, sym.address() as usize)?;
        let off = offset as usize;
        if off % INSN_SIZE != 0 || insns.get(off) != Some(&BPF_LD_IMM64) {
            return Err(format!(
                "relocation to `{name}` at {offset:#x} is not on a 64-bit load"
            ));
        }
        relocs.push(((off / INSN_SIZE) as u32, index as u32));
        seen[index] = true;
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!(
            "map `{}` of xdpguard_abi::MAPS is never used by the program",
            MAPS[i].name
        ));
    }
    relocs.sort_unstable();

    let license = file
        .section_by_name("license")
        .and_then(|s| s.data().ok())
        .map(|d| String::from_utf8_lossy(d.split(|b| *b == 0).next().unwrap_or(&[])).into_owned())
        .filter(|l| !l.is_empty())
        .ok_or("no `license` section")?;
    Ok(Skeleton {
        insns,
        relocs,
        license,
    })
}

/// Checks a legacy `struct bpf_map_def` (seven u32: type, key size, value
/// size, max entries, flags, id, pinning) against the ABI's spec.
fn check_map_def(spec: &MapSpec, maps: &[u8], off: usize) -> Result<(), String> {
    let def = maps
        .get(off..off + 7 * 4)
        .ok_or_else(|| format!("map `{}`: definition outside the maps section", spec.name))?;
    let word =
        |i: usize| u32::from_le_bytes([def[4 * i], def[4 * i + 1], def[4 * i + 2], def[4 * i + 3]]);
    let got = (word(0), word(1), word(2), word(3), word(4));
    let want = (
        spec.map_type,
        spec.key_size,
        spec.value_size,
        spec.max_entries,
        spec.flags,
    );
    if got != want {
        return Err(format!(
            "map `{}`: program has (type, key, value, max, flags) = {got:?}, xdpguard_abi::MAPS has {want:?}",
            spec.name
        ));
    }
    Ok(())
}

/// Renders the skeleton as Rust source for the kernel module.
fn render(skel: &Skeleton, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "// SPDX-License-Identifier: GPL-2.0");
    let _ = writeln!(
        s,
        "// Generated by xdpguard-skel from {source}; do not edit."
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "/// Program instructions, `struct bpf_insn` bytes in target order."
    );
    let _ = writeln!(s, "pub(crate) static INSNS: [u8; {}] = [", skel.insns.len());
    for insn in skel.insns.chunks(INSN_SIZE) {
        let bytes: Vec<String> = insn.iter().map(|b| format!("{b:#04x}")).collect();
        let _ = writeln!(s, "    {},", bytes.join(", "));
    }
    let _ = writeln!(s, "];");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "/// `(instruction index, index into abi::MAPS)` of every map reference."
    );
    let _ = writeln!(
        s,
        "pub(crate) static MAP_RELOCS: [(u32, u32); {}] = [",
        skel.relocs.len()
    );
    for (insn, map) in &skel.relocs {
        let _ = writeln!(s, "    ({insn}, {map}),");
    }
    let _ = writeln!(s, "];");
    let _ = writeln!(s);
    let _ = writeln!(s, "/// License string the program was built with.");
    let _ = writeln!(
        s,
        "pub(crate) static LICENSE: &kernel::str::CStr = kernel::c_str!({:?});",
        skel.license
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_def(words: [u32; 7]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn map_def_matching_the_abi_passes() {
        let m = &MAPS[0];
        let def = map_def([
            m.map_type,
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            0,
            0,
        ]);
        assert_eq!(check_map_def(m, &def, 0), Ok(()));
    }

    #[test]
    fn map_def_with_another_size_is_refused() {
        let m = &MAPS[0];
        let def = map_def([
            m.map_type,
            m.key_size + 1,
            m.value_size,
            m.max_entries,
            m.flags,
            0,
            0,
        ]);
        let err = check_map_def(m, &def, 0).unwrap_err();
        assert!(err.contains(m.name), "{err}");
    }

    #[test]
    fn truncated_map_def_is_refused() {
        assert!(check_map_def(&MAPS[0], &[0; 8], 0).is_err());
    }

    #[test]
    fn non_elf_input_is_refused() {
        assert!(extract(b"not an elf").unwrap_err().contains("not an ELF"));
    }

    #[test]
    fn render_emits_every_instruction_and_relocation() {
        let skel = Skeleton {
            insns: vec![0x18, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            relocs: vec![(0, 2)],
            license: "GPL".into(),
        };
        let out = render(&skel, "x.elf");
        assert!(out.contains("INSNS: [u8; 16]"));
        assert!(out.contains("MAP_RELOCS: [(u32, u32); 1]"));
        assert!(out.contains("(0, 2),"));
        assert!(out.contains("c_str!(\"GPL\")"));
    }

    /// The real program, when it has been built: every map resolves and
    /// every relocation sits on a 64-bit load.
    #[test]
    fn built_program_extracts() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/bpf/bpfel-unknown-none/release/xdpguard-bpf"
        );
        let Ok(data) = std::fs::read(path) else {
            eprintln!("skipping: {path} not built (make bpf)");
            return;
        };
        let skel = extract(&data).expect("the built program extracts");
        assert_eq!(skel.license, "GPL");
        for (insn, _) in &skel.relocs {
            assert_eq!(skel.insns[*insn as usize * INSN_SIZE], BPF_LD_IMM64);
        }
    }
}
