//! ELF facts about executables: the program interpreter (dynamic loader).

use std::io::Read;
use std::path::{Path, PathBuf};

use object::Endianness;
use object::elf::PT_INTERP;
use object::read::elf::{FileHeader, ProgramHeader};

use crate::rootfs::Root;

/// Bytes of an executable read to find its program headers: they sit right after the ELF
/// header in every linker's output.
const HEAD: u64 = 64 * 1024;

/// The `PT_INTERP` of the executable at `exe` inside `root`: the loader the kernel maps for
/// it at exec, resolved inside the root. `None` for static executables, scripts, and files
/// that are not ELF.
pub fn interpreter(root: &Root, exe: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut head = Vec::new();
    root.open_file(exe)?.take(HEAD).read_to_end(&mut head)?;
    let Some(interp) = interp_of(&head) else {
        return Ok(None);
    };
    Ok(Some(root.canonicalize(&interp)?))
}

/// Largest ELF file whose dynamic symbols are looked up (HotSpot's `libjvm.so` is about
/// 20 MiB).
pub const MAX_DYNAMIC: u64 = 512 << 20;

/// The file offset of the exported (dynamic) function `name` of a 64-bit ELF file: where a
/// uprobe goes. Only the headers, the dynamic symbol table and its strings are read.
pub fn exported_function(file: &std::fs::File, name: &str) -> Result<u64, String> {
    use object::read::elf::ElfFile64;
    use object::{Object, ObjectSection, ObjectSymbol};
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size > MAX_DYNAMIC {
        return Err(format!("budget: {size} bytes, over the {MAX_DYNAMIC}-byte limit for a library"));
    }
    let cache = object::ReadCache::new(file);
    let elf = ElfFile64::<Endianness, _>::parse(&cache).map_err(|e| format!("not a 64-bit ELF file: {e}"))?;
    let symbol = elf
        .dynamic_symbols()
        .take(1 << 20)
        .find(|s| s.name_bytes().is_ok_and(|n| n == name.as_bytes()) && s.is_definition())
        .ok_or_else(|| format!("exports no {name}"))?;
    let section = symbol
        .section_index()
        .and_then(|i| elf.section_by_index(i).ok())
        .ok_or_else(|| format!("{name} is in no section"))?;
    let (start, _) = section.file_range().ok_or_else(|| format!("{name}'s section has no bytes in the file"))?;
    let offset = symbol.address().checked_sub(section.address()).and_then(|d| d.checked_add(start));
    offset.ok_or_else(|| format!("{name} lies outside its section"))
}

/// The `PT_INTERP` of an ELF image's first bytes, as written (not resolved).
pub fn interp_of(data: &[u8]) -> Option<PathBuf> {
    match data.get(4)? {
        1 => interp_in::<object::elf::FileHeader32<Endianness>>(data),
        2 => interp_in::<object::elf::FileHeader64<Endianness>>(data),
        _ => None,
    }
}

fn interp_in<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<PathBuf> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let headers = header.program_headers(endian, data).ok()?;
    let ph = headers.iter().find(|ph| ph.p_type(endian) == PT_INTERP)?;
    let bytes = ph.interpreter(endian, data).ok()??;
    let text = std::str::from_utf8(bytes).ok()?;
    Some(PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_loader_of_a_dynamic_executable() {
        let root = Root::open(Path::new("/")).unwrap();
        let loader = interpreter(&root, Path::new("/bin/sh")).unwrap().expect("sh is dynamic");
        assert!(loader.to_string_lossy().contains("ld-linux"), "{loader:?}");
        // Resolved: /lib64/ld-linux-x86-64.so.2 is a symlink on Debian.
        assert_eq!(loader, std::fs::canonicalize(&loader).unwrap());
    }

    #[test]
    fn scripts_and_garbage_have_none() {
        assert_eq!(interp_of(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(interp_of(b"\x7fELF\x02\x01\x01 truncated"), None);
        assert_eq!(interp_of(&[]), None);
    }
}
