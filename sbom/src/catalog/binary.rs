//! Packages compiled into executables: Go modules from the build info the Go linker embeds
//! (`.go.buildinfo`), and Rust crates from the dependency list cargo-auditable embeds
//! (`.dep-v0`, zlib-compressed JSON). Each package owns the binary it was found in, so it is
//! in SBOM' when that binary was executed.
//!
//! Only the ELF header, the section table, its names and those two sections are read, each
//! with one positioned read: a 100 MB binary costs five reads.

use crate::catalog::Malformed;
use std::os::unix::fs::FileExt;
use std::path::Path;

use object::Endianness;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::model::{Ecosystem, Package};
use crate::purl;
use crate::rootfs::Root;

/// Largest build-info or dependency section read; real ones are a few KiB.
const MAX_SECTION: u64 = 8 << 20;
/// Largest decompressed cargo-auditable list.
const MAX_DEPS_JSON: usize = 8 << 20;
/// Largest section or program header table, or section name table, read.
const MAX_TABLE: u64 = 1 << 20;

/// Bytes at an offset: a file (one `pread`) or a buffer (the fuzz target's).
pub trait ReadAt {
    /// `len` bytes at `offset`, or `None` when they are not all there.
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let mut buf = vec![0; usize::try_from(len).ok()?];
        self.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        self.get(start..start.checked_add(usize::try_from(len).ok()?)?).map(<[u8]>::to_vec)
    }
}

/// Catalogs the executable at `path` (inside the root) when it is ELF with either section.
pub fn catalog_file(root: &Root, path: &Path, catalog: &mut Catalog) {
    let Ok(file) = root.open_file(path) else { return };
    let Ok(meta) = file.metadata() else { return };
    let inode = (std::os::unix::fs::MetadataExt::dev(&meta), std::os::unix::fs::MetadataExt::ino(&meta));
    if let Some(found) = catalog.binaries.get(&inode).cloned() {
        // A hard link of a binary already read: the same packages own this path too.
        catalog.own_too(found, path);
        return;
    }
    let start = catalog.packages.len();
    catalog_elf(&file, path, catalog);
    catalog.binaries.insert(inode, start..catalog.packages.len());
}

/// Catalogs an executable's contents (`path` names it in warnings and packages). Not ELF
/// (a script, data): not ours. A broken ELF is not worth a warning either; the loader
/// would refuse it too. A broken section that names itself is.
pub fn catalog_elf<D: ReadAt + ?Sized>(data: &D, path: &Path, catalog: &mut Catalog) {
    // The largest ELF header (64-bit) is 64 bytes; a 32-bit one is shorter.
    let Some(head) = data.read_at(0, 64).or_else(|| data.read_at(0, 52)) else { return };
    if !head.starts_with(b"\x7fELF") {
        return;
    }
    let found = match head[4] {
        1 => sections::<object::elf::FileHeader32<Endianness>, D>(&head, data),
        2 => sections::<object::elf::FileHeader64<Endianness>, D>(&head, data),
        _ => return,
    };
    let Some(found) = found else { return };
    if let Some(section) = found.go {
        let read = |addr, len| read_virtual(&found.segments, data, addr, len);
        match section.and_then(|bytes| go::parse(&bytes, read)) {
            Ok(mut info) => {
                if let Some(revision) = info.stamp_wanted() {
                    let words = super::go_stamp::Words { size: if head[4] == 2 { 8 } else { 4 }, little: head[5] == 1 };
                    info.stamped = elf_section(data, b".data", super::go_stamp::MAX_DATA)
                        .and_then(|section| super::go_stamp::find(&section, words, &revision, read));
                }
                for p in go::packages(&info, path) {
                    if !catalog.add("go-binary", path, p) {
                        break;
                    }
                }
            }
            Err(e) if e.is_over_budget() => catalog.over_budget("go-binary", path, e),
            Err(e) => catalog.warn("go-binary", path, e),
        }
    }
    if let Some(section) = found.rust {
        match section.and_then(|bytes| rust::parse(&bytes)) {
            Ok(crates) => {
                for p in rust::packages(&crates, path) {
                    if !catalog.add("rust-binary", path, p) {
                        break;
                    }
                }
            }
            Err(e) if e.is_over_budget() => catalog.over_budget("rust-binary", path, e),
            Err(e) => catalog.warn("rust-binary", path, e),
        }
    }
}

/// The two sections, when present, and the loadable segments (virtual address, size in
/// the file, offset).
struct Found {
    go: Option<Result<Vec<u8>, Malformed>>,
    rust: Option<Result<Vec<u8>, Malformed>>,
    segments: Vec<(u64, u64, u64)>,
}

/// A table of `count` entries of `size` bytes at `offset`, in one read.
fn table<D: ReadAt + ?Sized>(data: &D, offset: u64, count: u64, size: u64) -> Option<Vec<u8>> {
    let len = count.checked_mul(size)?;
    if len > MAX_TABLE {
        return None;
    }
    data.read_at(offset, len)
}

/// Reads the section table and its names; the symbol tables are never touched.
fn sections<H: FileHeader<Endian = Endianness>, D: ReadAt + ?Sized>(head: &[u8], data: &D) -> Option<Found> {
    let wanted: [&[u8]; 2] = [b".go.buildinfo", b".dep-v0"];
    let [go, rust] = locate::<H, D, 2>(head, data, &wanted)?;
    let read = |at: Option<(u64, u64, u64)>, what: &[u8]| {
        let (offset, size, _) = at?;
        let what = String::from_utf8_lossy(what);
        Some(if size > MAX_SECTION {
            Err(format!("section {what} of {size} bytes; not read").into())
        } else {
            data.read_at(offset, size).ok_or_else(|| format!("section {what} lies outside the file").into())
        })
    };
    let (go, rust) = (read(go, wanted[0]), read(rust, wanted[1]));
    if go.is_none() && rust.is_none() {
        return Some(Found { go, rust, segments: Vec::new() });
    }
    Some(Found { go, rust, segments: segments::<H, D>(head, data)? })
}

/// The loadable segments: (virtual address, size in the file, offset).
fn segments<H: FileHeader<Endian = Endianness>, D: ReadAt + ?Sized>(
    head: &[u8],
    data: &D,
) -> Option<Vec<(u64, u64, u64)>> {
    let header = H::parse(head).ok()?;
    let endian = header.endian().ok()?;
    let phentsize = std::mem::size_of::<H::ProgramHeader>() as u64;
    let phdrs =
        table(data, header.e_phoff(endian).into(), header.e_phnum(endian).into(), phentsize).unwrap_or_default();
    let phdrs: &[H::ProgramHeader] = object::pod::slice_from_all_bytes(&phdrs).unwrap_or(&[]);
    Some(
        phdrs
            .iter()
            .filter(|ph| ph.p_type(endian) == object::elf::PT_LOAD)
            .map(|ph| (ph.p_vaddr(endian).into(), ph.p_filesz(endian).into(), ph.p_offset(endian).into()))
            .collect(),
    )
}

/// Where an ELF file's `wanted` sections lie, (offset, size, address), and its loadable
/// segments (address, size in the file, offset): the header, section and program header
/// tables and the section names, nothing else. `None` when it is not ELF or its tables
/// cannot be read.
#[expect(clippy::type_complexity, reason = "a plain tuple per section, named in the doc")]
pub(crate) fn elf_layout<D: ReadAt + ?Sized, const N: usize>(
    data: &D,
    wanted: &[&[u8]; N],
) -> Option<([Option<(u64, u64, u64)>; N], Vec<(u64, u64, u64)>, bool)> {
    let head = data.read_at(0, 64).or_else(|| data.read_at(0, 52))?;
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    let little = head.get(5) == Some(&1);
    match head[4] {
        1 => Some((
            locate::<object::elf::FileHeader32<Endianness>, D, N>(&head, data, wanted)?,
            segments::<object::elf::FileHeader32<Endianness>, D>(&head, data)?,
            little,
        )),
        2 => Some((
            locate::<object::elf::FileHeader64<Endianness>, D, N>(&head, data, wanted)?,
            segments::<object::elf::FileHeader64<Endianness>, D>(&head, data)?,
            little,
        )),
        _ => None,
    }
}

/// Where each of the `wanted` sections lies, (offset, size, address), from the section table
/// and its names (two reads); `None` when the table cannot be read.
fn locate<H: FileHeader<Endian = Endianness>, D: ReadAt + ?Sized, const N: usize>(
    head: &[u8],
    data: &D,
    wanted: &[&[u8]; N],
) -> Option<[Option<(u64, u64, u64)>; N]> {
    let header = H::parse(head).ok()?;
    let endian = header.endian().ok()?;
    let shentsize = u64::from(header.e_shentsize(endian));
    if shentsize != std::mem::size_of::<H::SectionHeader>() as u64 {
        return None;
    }
    let shdrs = table(data, header.e_shoff(endian).into(), header.e_shnum(endian).into(), shentsize)?;
    let shdrs: &[H::SectionHeader] = object::pod::slice_from_all_bytes(&shdrs).ok()?;
    let strtab = shdrs.get(usize::from(header.e_shstrndx(endian)))?;
    let names = table(data, strtab.sh_offset(endian).into(), 1, strtab.sh_size(endian).into())?;
    Some(wanted.map(|name| {
        let section = shdrs.iter().find(|s| {
            let start = s.sh_name(endian) as usize;
            names.get(start..).and_then(|n| n.split(|&b| b == 0).next()) == Some(name)
        })?;
        Some((section.sh_offset(endian).into(), section.sh_size(endian).into(), section.sh_addr(endian).into()))
    }))
}

/// One named section of an ELF file (`.rodata`, say), when it has one of at most `max`
/// bytes: the header and section table read as for the build info, nothing else.
pub(crate) fn elf_section<D: ReadAt + ?Sized>(data: &D, wanted: &[u8], max: u64) -> Option<Vec<u8>> {
    let head = data.read_at(0, 64).or_else(|| data.read_at(0, 52))?;
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    let [at] = match head[4] {
        1 => locate::<object::elf::FileHeader32<Endianness>, D, 1>(&head, data, &[wanted])?,
        2 => locate::<object::elf::FileHeader64<Endianness>, D, 1>(&head, data, &[wanted])?,
        _ => return None,
    };
    let (offset, size, _) = at?;
    (size <= max).then(|| data.read_at(offset, size)).flatten()
}

/// `len` bytes at virtual address `addr`, from the segment that maps it (pre-1.18 Go build
/// info holds pointers).
fn read_virtual<D: ReadAt + ?Sized>(segments: &[(u64, u64, u64)], data: &D, addr: u64, len: u64) -> Option<Vec<u8>> {
    if len > MAX_SECTION {
        return None;
    }
    let end = addr.checked_add(len)?;
    let &(vaddr, _, offset) = segments.iter().find(|(v, size, _)| addr >= *v && end <= v.saturating_add(*size))?;
    data.read_at(offset.checked_add(addr - vaddr)?, len)
}

/// A package compiled into `binary`: found there, and owning it.
fn compiled_into(binary: &Path, kind: Ecosystem, name: &str, version: &str, purl: String) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        kind,
        purl,
        source: None,
        licenses: Vec::new(),
        found_at: binary.to_path_buf(),
        files: vec![binary.to_path_buf()],
        version_from_commit: false,
    }
}

/// Go build info.
pub mod go {
    use super::*;

    const MAGIC: &[u8] = b"\xff Go buildinf:";
    /// The pseudo-version `go mod` writes for a requirement that only a replacement
    /// satisfies: no commit, no time.
    const ZERO_PSEUDO_VERSION: &str = "v0.0.0-00010101000000-000000000000";

    /// What a Go binary says about its build.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct BuildInfo {
        /// Toolchain, `go1.19.8`.
        pub go_version: String,
        /// The main package's path.
        pub path: Option<String>,
        /// The main module (path, version), when built in module mode.
        pub main: Option<(String, String)>,
        /// Dependencies (path, version), with replacements applied.
        pub deps: Vec<(String, String)>,
        /// Build settings (`-ldflags`, `vcs.revision`, `vcs.time`, …), in order.
        pub settings: Vec<(String, String)>,
        /// The version the build stamped with `-X` beside its commit, outside the recorded
        /// flags (`super::go_stamp`), when it was looked for and found.
        pub stamped: Option<String>,
    }

    impl BuildInfo {
        /// The main module's version. The toolchain stamps `(devel)` on a module built
        /// from its own source tree; then, as Syft does, the version is read from a
        /// `-X …version=` (`Version`, `gitVersion`, `buildVersion`, `tag`) linker flag that
        /// holds a semantic version, else made from the VCS stamp as the Go toolchain makes
        /// a pseudo-version (`v0.0.0-<commit time>-<12 characters of the revision>`).
        /// Before the VCS stamp, the version stamped beside the commit ([`Self::stamped`]).
        /// `None` when nothing says.
        pub fn main_version(&self) -> Option<String> {
            let (_, v) = self.main.as_ref()?;
            let setting = |key: &str| self.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            let flagged = || setting("-ldflags").and_then(version_from_ldflags).or_else(|| self.stamped.clone());
            if !v.is_empty() && v != "(devel)" {
                // Go 1.24 stamps `v0.0.0-<time>-<revision>[+dirty]` when no tag is
                // reachable; a version the build sets says more (gcloud's cbt: 1.23.2).
                if v.starts_with("v0.0.0-")
                    && let Some(flagged) = flagged()
                {
                    return Some(flagged);
                }
                return Some(v.clone());
            }
            if let Some(v) = flagged() {
                return Some(v);
            }
            let (revision, time) = (setting("vcs.revision")?, setting("vcs.time")?);
            let stamp: String = time.chars().filter(char::is_ascii_digit).take(14).collect();
            (stamp.len() == 14 && revision.len() >= 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| format!("v0.0.0-{stamp}-{}", &revision[..12]))
        }
    }

    impl BuildInfo {
        /// The commit to look for a stamped version beside, when nothing else would give
        /// the main module a release version: its version is `(devel)` or a `v0.0.0-`
        /// pseudo-version and no recorded linker flag sets one.
        pub fn stamp_wanted(&self) -> Option<String> {
            let (_, v) = self.main.as_ref()?;
            let setting = |key: &str| self.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            let from_commit = v.is_empty() || v == "(devel)" || v.starts_with("v0.0.0-");
            let flagged = setting("-ldflags").and_then(version_from_ldflags).is_some();
            (from_commit && !flagged).then(|| setting("vcs.revision").map(str::to_string)).flatten()
        }

        /// A binary built outside module mode (GOPATH: a `path`, no `mod`), whose linker
        /// flags set a version in a package of the same repository: the module is what the
        /// two package paths share (`github.com/docker/cli/cmd/docker` and
        /// `github.com/docker/cli/cli/version` give `github.com/docker/cli`), at least a
        /// host, an owner and a repository.
        pub fn gopath_main(&self) -> Option<(String, String)> {
            if self.main.is_some() {
                return None;
            }
            let path = self.path.as_deref().filter(|p| *p != "command-line-arguments")?;
            let ldflags = self.settings.iter().find(|(k, _)| k == "-ldflags").map(|(_, v)| v.as_str())?;
            ldflag_versions(ldflags).find_map(|(package, version)| {
                let shared: Vec<&str> =
                    path.split('/').zip(package.split('/')).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
                (shared.len() >= 3 && shared[0].contains('.')).then(|| (shared.join("/"), version))
            })
        }
    }

    /// A semantic version set with `-X path.version=…` (or `Version`, `gitVersion`,
    /// `buildVersion`, `tag`, `gitTag`, `releaseVersion`, `appVersion`) in linker flags,
    /// `v`-prefixed; the first that holds one (`anthoscliVersion=beta` does not).
    pub fn version_from_ldflags(ldflags: &str) -> Option<String> {
        version_from_ldflags_in(ldflags, None)
    }

    /// [`version_from_ldflags`] counting only variables of packages inside `module` when
    /// one is given.
    fn version_from_ldflags_in(ldflags: &str, module: Option<&str>) -> Option<String> {
        ldflag_versions(ldflags)
            .find(|(package, _)| module.is_none_or(|m| package == m || package.starts_with(&format!("{m}/"))))
            .map(|(_, version)| version)
    }

    /// Every (package, `v`-prefixed semantic version) the linker flags set in a version
    /// variable, in order.
    fn ldflag_versions(ldflags: &str) -> impl Iterator<Item = (String, String)> + '_ {
        const KEYS: [&str; 8] = [
            "version",
            "gitversion",
            "buildversion",
            "gitbuildversion",
            "tag",
            "gittag",
            "releaseversion",
            "appversion",
        ];
        // Flags are separated by spaces; quotes around the whole or a value are dropped, and
        // so are the backslashes Go's quoting of the setting puts before inner quotes.
        let words =
            ldflags.split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '\\')).filter(|w| !w.is_empty());
        words.filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            let (package, name) = key.rsplit_once('.')?;
            if !KEYS.contains(&name.to_ascii_lowercase().as_str()) {
                return None;
            }
            let bare = value.strip_prefix('v').unwrap_or(value);
            let mut parts = bare.splitn(3, '.');
            let numeric = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            let (major, minor, rest) = (parts.next(), parts.next(), parts.next());
            let patch_ok = rest.is_some_and(|r| r.bytes().next().is_some_and(|b| b.is_ascii_digit()));
            (numeric(major) && numeric(minor) && patch_ok).then(|| (package.to_string(), format!("v{bare}")))
        })
    }

    /// Parses the `.go.buildinfo` section. `read` reads memory of the binary at a virtual
    /// address, for the pointer-based layout of Go before 1.18.
    pub fn parse(data: &[u8], read: impl Fn(u64, u64) -> Option<Vec<u8>>) -> Result<BuildInfo, Malformed> {
        if data.len() < 32 || !data.starts_with(MAGIC) {
            return Err("no Go build info magic".into());
        }
        let (ptr_size, flags) = (data[14] as usize, data[15]);
        let (version, modinfo) = if flags & 2 != 0 {
            // Go 1.18+: two length-prefixed strings inline, from byte 32.
            let (version, rest) = varint_string(&data[32..]).ok_or("truncated version string")?;
            let (modinfo, _) = varint_string(rest).ok_or("truncated module information")?;
            (version.to_vec(), modinfo.to_vec())
        } else {
            if ptr_size != 4 && ptr_size != 8 {
                return Err(format!("pointer size {ptr_size}").into());
            }
            let big = flags & 1 != 0;
            let word = |b: &[u8]| -> u64 {
                let mut v = 0u64;
                for i in 0..ptr_size {
                    let byte = if big { b[i] } else { b[ptr_size - 1 - i] } as u64;
                    v = (v << 8) | byte;
                }
                v
            };
            if data.len() < 16 + 2 * ptr_size {
                return Err("truncated build info".into());
            }
            // Each pointer names a Go string header (data pointer, length).
            let string_at = |ptr: u64| -> Option<Vec<u8>> {
                let header = read(ptr, 2 * ptr_size as u64)?;
                read(word(&header[..ptr_size]), word(&header[ptr_size..]))
            };
            let version = string_at(word(&data[16..16 + ptr_size])).ok_or("version string not mapped")?;
            let modinfo = string_at(word(&data[16 + ptr_size..16 + 2 * ptr_size])).unwrap_or_default();
            (version, modinfo)
        };
        let go_version = String::from_utf8(version).map_err(|_| "version is not UTF-8")?;
        let mut info = BuildInfo { go_version, ..BuildInfo::default() };
        // The module text sits between two 16-byte sentinels.
        let text = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
            &modinfo[16..modinfo.len() - 16]
        } else {
            &modinfo[..]
        };
        let text = std::str::from_utf8(text).map_err(|_| "module information is not UTF-8")?;
        // `=>` replaces the module on the line before it.
        enum Last {
            None,
            Main,
            Dep,
        }
        let mut last = Last::None;
        // Dependencies built from source (`(devel)`): a linker flag may say their version.
        let mut devel_deps = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["path", p, ..] => info.path = Some(p.to_string()),
                ["mod", p, v, ..] => {
                    info.main = Some((p.to_string(), v.to_string()));
                    last = Last::Main;
                }
                ["dep", p, v, ..] => {
                    if info.deps.len() == crate::catalog::MAX_MODULES {
                        return Err(format!(
                            "budget: more than {} modules listed: not read",
                            crate::catalog::MAX_MODULES
                        )
                        .into());
                    }
                    if *v == "(devel)" {
                        devel_deps.push(info.deps.len());
                    }
                    info.deps.push((p.to_string(), v.to_string()));
                    last = Last::Dep;
                }
                ["build", setting] if info.settings.len() < crate::catalog::MAX_MODULES => {
                    let (k, v) = setting.split_once('=').unwrap_or((setting, ""));
                    info.settings.push((k.to_string(), v.to_string()));
                }
                ["=>", p, v, ..] if !v.is_empty() && *v != "(devel)" => {
                    // Replaced by another module at a version: that is what was built.
                    let replaced = match last {
                        Last::Main => info.main.as_mut(),
                        Last::Dep => info.deps.last_mut(),
                        Last::None => None,
                    };
                    if let Some(m) = replaced {
                        *m = (p.to_string(), v.to_string());
                    }
                }
                // A replacement by a local directory has no version (`(devel)`): the original
                // module and version are the best name for what was built, unless that
                // version is a placeholder (`v0.0.0` in Kubernetes' staging modules, the zero
                // pseudo-version in Terraform's), which would match every advisory: then the
                // version is unknown, `(devel)`.
                ["=>", _, ..] => {
                    let replaced = match last {
                        Last::Main => info.main.as_mut(),
                        Last::Dep => info.deps.last_mut(),
                        Last::None => None,
                    };
                    if let Some(m) = replaced.filter(|m| m.1 == "v0.0.0" || m.1 == ZERO_PSEUDO_VERSION) {
                        m.1 = "(devel)".to_string();
                    }
                }
                _ => {}
            }
        }
        // `go build main.go` in a module's tree (gcloud's anthoscli): the module is a
        // `(devel)` dependency of `command-line-arguments`, and `-X anthoscli/….gitTag=…`
        // sets a variable in one of its packages, which is its version.
        let ldflags = info.settings.iter().find(|(k, _)| k == "-ldflags").map(|(_, v)| v.clone());
        if let Some(ldflags) = ldflags {
            for i in devel_deps {
                let Some(dep) = info.deps.get_mut(i) else { continue };
                if let Some(v) = version_from_ldflags_in(&ldflags, Some(&dep.0)) {
                    dep.1 = v;
                }
            }
        }
        Ok(info)
    }

    fn varint_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
        let mut len = 0u64;
        let mut shift = 0;
        for (i, &b) in data.iter().enumerate().take(10) {
            len |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                let start = i + 1;
                let end = start.checked_add(usize::try_from(len).ok()?)?;
                return Some((data.get(start..end)?, &data[end..]));
            }
            shift += 7;
        }
        None
    }

    /// The packages of one binary: the standard library at the toolchain's version, the
    /// main module (at `(devel)` when nothing says its version), and every dependency.
    pub fn packages(info: &BuildInfo, binary: &Path) -> Vec<Package> {
        let package = |name: &str, version: &str| {
            compiled_into(binary, Ecosystem::Go, name, version, purl::golang(name, version))
        };
        let mut out = Vec::new();
        // `go1.19.8` (or `go1.21.0 X:boringcrypto`): OSV names it `stdlib`, version `1.19.8`.
        if let Some(v) = info.go_version.split_whitespace().next().and_then(|v| v.strip_prefix("go")) {
            out.push(package("stdlib", v));
        }
        if let Some((p, _)) = &info.main {
            // Built from its own tree with nothing saying its version: listed, at `(devel)`
            // (unknown, never matched), as Go itself writes it. A pseudo-version here was
            // made from the VCS stamp (by the toolchain since Go 1.24, or by us): a commit,
            // not a release, and said so.
            let version = info.main_version().unwrap_or_else(|| "(devel)".to_string());
            let mut main = package(p, &version);
            main.version_from_commit = version.starts_with("v0.0.0-");
            out.push(main);
        } else if let Some((module, v)) = info.gopath_main() {
            out.push(package(&module, &v));
        }
        out.extend(info.deps.iter().map(|(p, v)| package(p, v)));
        out
    }
}

/// cargo-auditable's dependency list.
pub mod rust {
    use super::*;

    /// One crate of the list.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    pub struct Crate {
        /// Crate name.
        pub name: String,
        /// Version.
        pub version: String,
        /// `crates.io`, `git`, `local`, `registry`, …
        #[serde(default)]
        pub source: String,
        /// `runtime` (in the binary) or `build` (build scripts and proc macros only).
        #[serde(default)]
        pub kind: Option<String>,
        /// The binary's own crate.
        #[serde(default)]
        pub root: bool,
    }

    #[derive(Deserialize)]
    struct List {
        packages: Vec<Crate>,
    }

    /// Decompresses and parses a `.dep-v0` section.
    pub fn parse(data: &[u8]) -> Result<Vec<Crate>, Malformed> {
        let json = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_DEPS_JSON)
            // Not `{e:?}`: the error carries what was inflated so far, up to the limit.
            .map_err(|e| {
                format!("cargo-auditable data does not decompress ({:?}; limit {MAX_DEPS_JSON} bytes)", e.status)
            })?;
        let list: List =
            serde_json::from_slice(&json).map_err(|e| format!("cargo-auditable data is not valid: {e}"))?;
        if list.packages.len() > crate::catalog::MAX_MODULES {
            return Err(format!(
                "budget: {} crates listed, more than {}: not read",
                list.packages.len(),
                crate::catalog::MAX_MODULES
            )
            .into());
        }
        Ok(list.packages)
    }

    /// The crates compiled into the binary: build-time-only crates are left out, and so are
    /// crates from elsewhere than crates.io (a local or git crate named like a published one
    /// is not that crate), except the binary's own.
    pub fn packages(crates: &[Crate], binary: &Path) -> Vec<Package> {
        crates
            .iter()
            .filter(|c| c.kind.as_deref() != Some("build"))
            .filter(|c| c.root || c.source == "crates.io")
            .map(|c| compiled_into(binary, Ecosystem::Rust, &c.name, &c.version, purl::cargo(&c.name, &c.version)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(version: &str, modinfo: &str) -> Vec<u8> {
        let mut d = b"\xff Go buildinf:\x08\x02".to_vec();
        d.resize(32, 0);
        d.push(version.len() as u8);
        d.extend_from_slice(version.as_bytes());
        let wrapped = format!("0123456789abcdef{modinfo}\n0123456789abcdef");
        d.push((wrapped.len() & 0x7f) as u8 | 0x80);
        d.push((wrapped.len() >> 7) as u8);
        d.extend_from_slice(wrapped.as_bytes());
        d
    }

    #[test]
    fn go_build_info_with_replacements() {
        let text = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
                    dep\tgithub.com/pkg/errors\tv0.9.1\th1:x=\n\
                    dep\tgolang.org/x/text\tv0.3.0\th1:y=\n=>\tgolang.org/x/text\tv0.3.8\th1:z=\n\
                    dep\texample.com/lib\tv1.2.3\t\n=>\t../lib\t\t\n\
                    dep\tk8s.io/api\tv0.0.0\t\n=>\t./staging/src/k8s.io/api\t(devel)\t\n\
                    dep\tx.io/y\tv0.0.0-00010101000000-000000000000\t\n=>\t./y\t(devel)\t\nbuild\tGOOS=linux";
        let info = go::parse(&inline("go1.19.8", text), |_, _| None).unwrap();
        assert_eq!(info.go_version, "go1.19.8");
        assert_eq!(info.main, Some(("example.com/app".into(), "(devel)".into())));
        assert_eq!(
            info.deps,
            [
                ("github.com/pkg/errors".into(), "v0.9.1".into()),
                ("golang.org/x/text".into(), "v0.3.8".into()),
                ("example.com/lib".into(), "v1.2.3".into()),
                // A local replacement of the placeholder v0.0.0: no version is known.
                ("k8s.io/api".into(), "(devel)".into()),
                ("x.io/y".into(), "(devel)".into())
            ]
        );
        let names: Vec<String> = go::packages(&info, Path::new("/app")).into_iter().map(|p| p.purl).collect();
        assert_eq!(names[0], "pkg:golang/stdlib@1.19.8");
        assert_eq!(names.len(), 7, "stdlib, the main module and five deps");
        assert_eq!(names[1], "pkg:golang/example.com/app@%28devel%29");
    }

    #[test]
    fn a_devel_main_module_takes_its_version_from_ldflags_or_the_vcs_stamp() {
        let with = |settings: &str| {
            let text = format!("path\texample.com/app\nmod\texample.com/app\t(devel)\t\n{settings}");
            go::parse(&inline("go1.19.8", &text), |_, _| None).unwrap().main_version()
        };
        assert_eq!(with("build\t-ldflags=\"-s -X main.version=1.2.3\""), Some("v1.2.3".into()));
        assert_eq!(
            with("build\t-ldflags=\"-X example.com/app/internal.Version=v2.0.0-rc.1\""),
            Some("v2.0.0-rc.1".into())
        );
        assert_eq!(with("build\t-ldflags=\"-X 'main.gitVersion=0.4.5+meta'\""), Some("v0.4.5+meta".into()));
        // Not a version, or not a version variable: the VCS stamp, else nothing.
        assert_eq!(with("build\t-ldflags=\"-X main.version=dev -X main.commit=1.2.3\""), None);
        // Built outside module mode (docker's CLI, real flags): the module both package
        // paths share, at the version the flags set.
        let text = "path\tgithub.com/docker/cli/cmd/docker\n\
                    build\t-ldflags=\" -X \\\"github.com/docker/cli/cli/version.GitCommit=e6534b4\\\" -X \\\"github.com/docker/cli/cli/version.Version=28.2.2\\\" -extldflags -static\"";
        let info = go::parse(&inline("go1.24.3", text), |_, _| None).unwrap();
        assert_eq!(info.gopath_main(), Some(("github.com/docker/cli".into(), "v28.2.2".into())));
        // A tagless VCS stamp gives way to the version the build sets (gcloud's cbt).
        let text = "path\tcloud.google.com/go/cbt\nmod\tcloud.google.com/go/cbt\tv0.0.0-20250422202024-9eeb4a7a08b6+dirty\t\n\
                    build\t-ldflags=\"-X \\\"main.version=1.23.2\\\" -X \\\"main.revision=9eeb4a7\\\"\"";
        let info = go::parse(&inline("go1.24.2", text), |_, _| None).unwrap();
        assert_eq!(info.main_version().as_deref(), Some("v1.23.2"));
        // A dependency built from source takes a version only from its own packages' flags.
        let text = "path\tcommand-line-arguments\ndep\tanthoscli\t(devel)\t\ndep\tother\t(devel)\t\n\
                    build\t-ldflags=\"-X anthoscli/pkg/commands/version.gitTag=0.2.56 -X main.version=9.9.9\"";
        let info = go::parse(&inline("go1.24.2", text), |_, _| None).unwrap();
        assert_eq!(info.deps, [("anthoscli".into(), "v0.2.56".into()), ("other".into(), "(devel)".into())]);
        // gcloud's anthoscli: a version word that is not a version, then the tag.
        assert_eq!(
            with(
                "build\t-ldflags=\"-X anthoscli/pkg/commands/version.anthoscliVersion=beta \\t\\t\\t-X anthoscli/pkg/commands/version.gitTag=0.2.56\""
            ),
            Some("v0.2.56".into())
        );
        let vcs = "build\tvcs=git\nbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n\
                   build\tvcs.time=2024-03-05T10:20:30Z\nbuild\tvcs.modified=false";
        assert_eq!(with(vcs), Some("v0.0.0-20240305102030-0123456789ab".into()));
        assert_eq!(with(&format!("build\t-ldflags=\"-X main.version=1.0.0\"\n{vcs}")), Some("v1.0.0".into()));
        assert_eq!(with("build\tvcs.revision=zz\nbuild\tvcs.time=2024"), None);
    }

    #[test]
    fn go_garbage_is_an_error_not_a_panic() {
        assert!(go::parse(b"nothing", |_, _| None).is_err());
        let mut d = inline("go1.19.8", "x");
        d.truncate(40);
        assert!(go::parse(&d, |_, _| None).is_err());
        // Old layout whose pointers map nowhere.
        let mut old = b"\xff Go buildinf:\x08\x00".to_vec();
        old.resize(32, 0xff);
        assert!(go::parse(&old, |_, _| None).is_err());
    }

    #[test]
    fn auditable_list_keeps_runtime_crates_io_and_the_root() {
        let json = br#"{"packages":[
            {"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[1,2,3]},
            {"name":"itoa","version":"1.0.11","source":"crates.io"},
            {"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"},
            {"name":"time","version":"0.1.0","source":"local"}]}"#;
        let data = miniz_oxide::deflate::compress_to_vec_zlib(json, 6);
        let crates = rust::parse(&data).unwrap();
        let purls: Vec<String> = rust::packages(&crates, Path::new("/bin/app")).into_iter().map(|p| p.purl).collect();
        assert_eq!(purls, ["pkg:cargo/app@0.1.0", "pkg:cargo/itoa@1.0.11"]);
        assert!(rust::parse(b"\x78\x9cgarbage").is_err());
    }
}
