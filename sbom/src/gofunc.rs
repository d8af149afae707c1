//! The function table of a Go binary, from `.gopclntab`: the Go linker writes it into every
//! binary, stripped or not (the runtime needs it for stack traces and the garbage collector).
//! It says which functions of which packages a binary holds (so whether a vulnerable symbol
//! is linked at all) and where each starts in the file (where a uprobe goes to see it
//! called).
//!
//! Formats (Go's `debug/gosym` names them by the release that introduced them): 1.2 (Go 1.2
//! to 1.15), 1.16, 1.18 (1.18, 1.19) and 1.20 (1.20 to today's). From 1.16 on, function
//! names live in a table of their own that also holds the names of functions the compiler
//! inlined into others (the inlining tables point into it), so a function inlined
//! everywhere is still seen as present. In the 1.2 format those names are scattered through
//! the table: inlined copies are not seen ([`FuncTable::sees_inlined`] says so).
//!
//! Image content is hostile: the table's size is capped, every count is checked against the
//! bytes there before anything is allocated for it, and names are bounded.

use std::borrow::Cow;
use std::path::Path;

use crate::catalog::binary::{ReadAt, elf_layout};
use crate::rootfs::Root;

/// Largest `.gopclntab` read: the largest real ones (Kubernetes' binaries, the Cloud SDK's)
/// are a few tens of MiB.
pub const MAX_TABLE: u64 = 256 << 20;
/// Most functions (and names) one table may hold: real ones hold up to about 150,000.
pub const MAX_FUNCS: usize = 2_000_000;
/// Longest function name kept, in bytes (generic instantiations run to a few hundred).
pub const MAX_NAME: usize = 16 << 10;

/// The table formats, by the Go release that introduced each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Go 1.2 to 1.15.
    Go12,
    /// Go 1.16 and 1.17.
    Go116,
    /// Go 1.18 and 1.19.
    Go118,
    /// Go 1.20 and later.
    Go120,
}

/// Why a binary's function table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FuncTableError {
    /// Opening or reading the file.
    #[error("reading the binary")]
    Io(#[source] std::io::Error),
    /// Not ELF, or its section tables cannot be read.
    #[error("not an ELF file with a readable section table")]
    NotElf,
    /// No `.gopclntab` section.
    #[error("no .gopclntab section (not a Go binary, or one whose table is not in a section)")]
    NoTable,
    /// The table is over [`MAX_TABLE`].
    #[error("budget: its .gopclntab is {0} bytes, over the {MAX_TABLE}-byte limit")]
    TooLarge(u64),
    /// A magic number no Go release wrote.
    #[error("unknown .gopclntab magic {0:#010x}")]
    UnknownMagic(u32),
    /// A header or entry that points outside the table, or counts past it.
    #[error("malformed .gopclntab: {0}")]
    Malformed(&'static str),
}

/// One function: its name and where its code starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func<'a> {
    /// The name as the table holds it (`net/http.(*Client).Do`).
    pub name: Cow<'a, str>,
    /// Offset of its first instruction in the file; `None` when the table holds only its
    /// name (its copies were inlined into other functions).
    pub offset: Option<u64>,
    /// Its first instruction's virtual address, as linked (`None` likewise).
    pub addr: Option<u64>,
}

/// A name in the arena and its code's file offset (`u64::MAX`: none).
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: u32,
    len: u32,
    addr: u64,
    offset: u64,
}

/// A binary's functions. The names stay in the table's own name region (one allocation),
/// each function costs 24 bytes more: Terraform's AWS provider, 600,000 functions, takes
/// about 60 MiB while it is read, and nothing after.
#[derive(Debug, Clone)]
pub struct FuncTable {
    /// The format read.
    pub format: Format,
    arena: Vec<u8>,
    /// Sorted by name, then by offset.
    funcs: Vec<Entry>,
}

impl FuncTable {
    /// Reads the table of the binary at `path` inside `root`.
    pub fn read(root: &Root, path: &Path) -> Result<FuncTable, FuncTableError> {
        let file = root.open_file(path).map_err(FuncTableError::Io)?;
        FuncTable::parse(&file)
    }

    /// Reads the table of an ELF image.
    pub fn parse<D: ReadAt + ?Sized>(data: &D) -> Result<FuncTable, FuncTableError> {
        let (found, segments, little) =
            elf_layout(data, &[b".gopclntab", b".data.rel.ro.gopclntab", b".text", b".data.rel.ro"])
                .ok_or(FuncTableError::NotElf)?;
        let [pcln, pcln_relro, text, relro] = found;
        let (offset, size) = match pcln.or(pcln_relro) {
            Some((offset, size, _)) => (offset, size),
            // Linked externally (cgo, static PIE), the table has no section of its own: it
            // sits in .data.rel.ro, found by its header as Go's own tools find it.
            None => relro
                .and_then(|(offset, size, _)| in_relro(data, offset, size, little))
                .ok_or(FuncTableError::NoTable)?,
        };
        if size > MAX_TABLE {
            return Err(FuncTableError::TooLarge(size));
        }
        let raw = Raw { data, offset, size, little };
        let parsed = raw.parse(text.map(|(_, size, addr)| (addr, size)))?;
        let arena = parsed.arena;
        let mut funcs: Vec<Entry> = parsed
            .funcs
            .into_iter()
            .map(|(name, len, pc)| {
                let offset = pc.and_then(|pc| file_offset(&segments, pc));
                // An entry outside every segment is no entry.
                let addr = pc.filter(|_| offset.is_some()).unwrap_or(u64::MAX);
                Entry { name, len, addr, offset: offset.unwrap_or(u64::MAX) }
            })
            .collect();
        funcs.extend(parsed.extra.into_iter().take(MAX_FUNCS).map(|(name, len)| Entry {
            name,
            len,
            addr: u64::MAX,
            offset: u64::MAX,
        }));
        let name = |e: &Entry| &arena[e.name as usize..(e.name + e.len) as usize];
        // One name may have several bodies (an assembly function and its ABI wrapper): each
        // is kept. A name from the name region alone is dropped where it has a body.
        funcs.sort_unstable_by(|a, b| name(a).cmp(name(b)).then(a.offset.cmp(&b.offset)));
        funcs.dedup_by(|later, first| {
            name(later) == name(first) && (later.offset == first.offset || later.offset == u64::MAX)
        });
        funcs.shrink_to_fit();
        Ok(FuncTable { format: parsed.format, arena, funcs })
    }

    /// Whether functions inlined into others are seen (their names are in the table).
    pub fn sees_inlined(&self) -> bool {
        self.format != Format::Go12
    }

    /// How many functions (and inlined functions) the table names.
    pub fn len(&self) -> usize {
        self.funcs.len()
    }

    /// Whether it names none.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }

    fn name(&self, e: &Entry) -> &[u8] {
        &self.arena[e.name as usize..(e.name + e.len) as usize]
    }

    fn func(&self, e: &Entry) -> Func<'_> {
        Func {
            name: String::from_utf8_lossy(self.name(e)),
            offset: (e.offset != u64::MAX).then_some(e.offset),
            addr: (e.addr != u64::MAX).then_some(e.addr),
        }
    }

    /// Every function, by name.
    pub fn funcs(&self) -> impl Iterator<Item = Func<'_>> {
        self.funcs.iter().map(|e| self.func(e))
    }

    /// Every function of `package` (its names start with the package path and a dot: one
    /// run of the sorted table).
    pub fn of_package<'s>(&'s self, package: &'s str) -> impl Iterator<Item = Func<'s>> + 's {
        // As the linker writes it: dots in the last path element escaped.
        let last = package.rfind('/').map_or(0, |i| i + 1);
        let prefix = format!("{}{}.", &package[..last], package[last..].replace('.', "%2e"));
        let start = self.funcs.partition_point(|e| self.name(e) < prefix.as_bytes());
        self.funcs[start..]
            .iter()
            .take_while(move |e| self.name(e).starts_with(prefix.as_bytes()))
            .map(|e| self.func(e))
            .filter(move |f| split_name(&f.name).is_some_and(|(p, _)| p == package))
    }

    /// Whether any function of `package` is in the binary.
    pub fn has_package(&self, package: &str) -> bool {
        self.of_package(package).next().is_some()
    }

    /// The functions of `package` that are `symbol` as govulncheck names it (`Parse`,
    /// `Decoder.Decode` for `(*Decoder).Decode`), with its closures and instantiations.
    pub fn find<'s>(&'s self, package: &'s str, symbol: &'s str) -> impl Iterator<Item = Func<'s>> + 's {
        self.of_package(package).filter(move |f| split_name(&f.name).is_some_and(|(_, s)| s == symbol))
    }
}

/// A function name split as govulncheck does: its package path and its symbol, with
/// generic instantiations (`[...]`) removed, a pointer receiver written as the type
/// (`(*T).M` is `T.M`), and closures, method values and wrappers named after the function
/// they belong to (`F.func1`, `T.M-fm`, `F.gowrap1`). `None` for a name with no package.
pub fn split_name(name: &str) -> Option<(String, String)> {
    // Type arguments may hold dots and slashes of their own: drop them first.
    let mut plain = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let after_slash = plain.rfind('/').map_or(0, |i| i + 1);
    let dot = after_slash + plain[after_slash..].find('.')?;
    let (package, rest) = (&plain[..dot], &plain[dot + 1..]);
    if package.is_empty() || rest.is_empty() {
        return None;
    }
    // The linker writes `.` in the path's last element, and a few other bytes, as `%xx`.
    let package = String::from_utf8_lossy(&crate::text::percent_decode(package)).into_owned();
    let rest = rest.strip_suffix("-fm").unwrap_or(rest);
    let mut parts: Vec<&str> = rest.split('.').collect();
    // A closure's name is its function's followed by `funcN` (nested: `.N`), a `go` or
    // `defer` statement's wrapper `gowrapN`/`deferwrapN`, a range-over-func body `-rangeN`.
    while parts.len() > 1 {
        let last = parts[parts.len() - 1];
        let generated = ["func", "gowrap", "deferwrap"]
            .iter()
            .any(|p| last.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
            || last.bytes().all(|b| b.is_ascii_digit())
            || last.contains("-range");
        if !generated {
            break;
        }
        parts.pop();
    }
    if let Some(first) = parts.first_mut() {
        *first = first.trim_start_matches("(*").trim_start_matches('(').trim_end_matches(')');
    }
    let mut symbol = parts.join(".");
    if let Some(i) = symbol.find("-range") {
        symbol.truncate(i);
    }
    Some((package, symbol))
}

/// Where in `.data.rel.ro` (at `offset`, `size` bytes) a 1.18 or 1.20 table starts, by its
/// header (magic, zero padding, instruction size 1 to 4, pointer size 8, tables in order
/// inside the section); (offset, bytes to the section's end).
fn in_relro<D: ReadAt + ?Sized>(data: &D, offset: u64, size: u64, little: bool) -> Option<(u64, u64)> {
    if size > MAX_TABLE {
        return None;
    }
    let bytes = data.read_at(offset, size)?;
    let magics: [[u8; 4]; 2] = if little {
        [MAGIC_118.to_le_bytes(), MAGIC_120.to_le_bytes()]
    } else {
        [MAGIC_118.to_be_bytes(), MAGIC_120.to_be_bytes()]
    };
    (0..bytes.len().saturating_sub(72)).step_by(8).find_map(|at| {
        let head = bytes.get(at..at + 8)?;
        if !magics.iter().any(|m| head[..4] == *m)
            || head[4..6] != [0, 0]
            || !matches!(head[6], 1 | 2 | 4)
            || head[7] != 8
        {
            return None;
        }
        let rest = (size - at as u64) as usize;
        let words: Option<Vec<u64>> =
            (0..8).map(|i| word_at(&mut &bytes[..], (at + 8 + i * 8) as u64, 8, little)).collect();
        let w = words?;
        // nfunc, nfiles, text start, then five offsets that only grow, inside the section.
        let ordered = w[3] >= 72 && w[3..8].windows(2).all(|p| p[0] <= p[1]) && (w[7] as usize) < rest;
        (w[0] > 0 && ordered).then_some((offset + at as u64, size - at as u64))
    })
}

/// The file offset of virtual address `pc`, from the loadable segment that maps it.
fn file_offset(segments: &[(u64, u64, u64)], pc: u64) -> Option<u64> {
    let &(vaddr, _, offset) = segments.iter().find(|(v, size, _)| pc >= *v && pc < v.saturating_add(*size))?;
    offset.checked_add(pc - vaddr)
}

/// What a table gave: its names' arena, functions (name offset and length in it, entry
/// address), and the other names the name region holds (inlined functions).
struct Parsed {
    format: Format,
    arena: Vec<u8>,
    funcs: Vec<(u32, u32, Option<u64>)>,
    extra: Vec<(u32, u32)>,
}

/// The section, read in ranges.
struct Raw<'a, D: ?Sized> {
    data: &'a D,
    offset: u64,
    size: u64,
    little: bool,
}

/// Bytes at offsets of one region: a slice in memory, or a window over the file.
trait Source {
    /// `n` bytes at `at`, or `None` past the region's end.
    fn get(&mut self, at: u64, n: usize) -> Option<&[u8]>;
}

impl Source for &[u8] {
    fn get(&mut self, at: u64, n: usize) -> Option<&[u8]> {
        let at = usize::try_from(at).ok()?;
        <[u8]>::get(self, at..at.checked_add(n)?)
    }
}

/// How much of a region a [`Window`] holds at once.
const WINDOW: u64 = 1 << 20;

/// A region of the file read through a moving window: the function records are read in
/// the order they are laid out, so the region is read once, a window at a time, and never
/// held whole.
struct Window<'a, D: ?Sized> {
    data: &'a D,
    /// The region's offset in the file and its length.
    start: u64,
    len: u64,
    /// Where in the region `buf` starts.
    at: u64,
    buf: Vec<u8>,
}

impl<D: ReadAt + ?Sized> Source for Window<'_, D> {
    fn get(&mut self, at: u64, n: usize) -> Option<&[u8]> {
        let end = at.checked_add(n as u64)?;
        if end > self.len {
            return None;
        }
        if at < self.at || end > self.at + self.buf.len() as u64 {
            let len = WINDOW.max(n as u64).min(self.len - at);
            self.buf = self.data.read_at(self.start + at, len)?;
            self.at = at;
        }
        let from = (at - self.at) as usize;
        self.buf.get(from..from + n)
    }
}

fn u32_at(src: &mut impl Source, at: u64, little: bool) -> Option<u32> {
    let b: [u8; 4] = src.get(at, 4)?.try_into().ok()?;
    Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
}

/// A word of `width` bytes (4 or 8).
fn word_at(src: &mut impl Source, at: u64, width: usize, little: bool) -> Option<u64> {
    if width == 4 {
        return u32_at(src, at, little).map(u64::from);
    }
    let b: [u8; 8] = src.get(at, 8)?.try_into().ok()?;
    Some(if little { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
}

/// The NUL-terminated name at `at` of the arena: (offset, length), bounded.
fn name_at(arena: &[u8], at: usize) -> Option<(u32, u32)> {
    let tail = arena.get(at..)?;
    let end = memchr::memchr(0, &tail[..tail.len().min(MAX_NAME)])?;
    Some((u32::try_from(at).ok()?, u32::try_from(end).ok()?))
}

const MAGIC_12: u32 = 0xffff_fffb;
const MAGIC_116: u32 = 0xffff_fffa;
const MAGIC_118: u32 = 0xffff_fff0;
const MAGIC_120: u32 = 0xffff_fff1;

/// Largest name region held (it stays in memory with the table).
const MAX_NAMES: u64 = 128 << 20;

impl<D: ReadAt + ?Sized> Raw<'_, D> {
    /// `len` bytes from `start` of the section.
    fn read(&self, start: u64, len: u64) -> Result<Vec<u8>, FuncTableError> {
        let end = start.checked_add(len).ok_or(FuncTableError::Malformed("range overflows"))?;
        if end > self.size {
            return Err(FuncTableError::Malformed("a region lies past the section's end"));
        }
        self.data
            .read_at(self.offset + start, len)
            .ok_or(FuncTableError::Malformed("the section lies outside the file"))
    }

    fn parse(&self, text: Option<(u64, u64)>) -> Result<Parsed, FuncTableError> {
        use FuncTableError::Malformed;
        let little = self.little;
        let head = self.read(0, self.size.min(8 + 8 * 8))?;
        let mut h: &[u8] = &head;
        let magic = u32_at(&mut h, 0, little).ok_or(Malformed("shorter than its header"))?;
        let (quantum, ptr) = (head.get(6).copied().unwrap_or(0), head.get(7).copied().unwrap_or(0));
        if head.get(4..6) != Some(&[0, 0]) || !matches!(quantum, 1 | 2 | 4) || !matches!(ptr, 4 | 8) {
            return Err(Malformed("bad header (padding, instruction size or pointer size)"));
        }
        let ptr = usize::from(ptr);
        let mut word = |i: usize| word_at(&mut h, (8 + i * ptr) as u64, ptr, little).ok_or(Malformed("short header"));
        let format = match magic {
            MAGIC_12 => Format::Go12,
            MAGIC_116 => Format::Go116,
            MAGIC_118 => Format::Go118,
            MAGIC_120 => Format::Go120,
            other => return Err(FuncTableError::UnknownMagic(other)),
        };
        let nfunc = usize::try_from(word(0)?).map_err(|_| Malformed("function count"))?;
        if nfunc > MAX_FUNCS {
            return Err(Malformed("more functions than any real binary holds"));
        }
        if format == Format::Go12 {
            // Names are spread through the whole table, which is the arena.
            if self.size > MAX_NAMES {
                return Err(FuncTableError::TooLarge(self.size));
            }
            let arena = self.read(0, self.size)?;
            let funcs = entries(&mut &arena[..], (8 + ptr) as u64, nfunc, ptr, None, &arena, little)?;
            return Ok(Parsed { format, arena, funcs, extra: Vec::new() });
        }
        // 1.16: nfunc, nfiles, funcnametab, cutab, filetab, pctab, pclntable;
        // 1.18 and 1.20 add the text start before funcnametab.
        let (text_start, first) = match format {
            Format::Go116 => (None, 2),
            _ => (Some(word(2)?), 3),
        };
        let (names_at, cu_at, pcln_at) = (word(first)?, word(first + 1)?, word(first + 4)?);
        if cu_at < names_at || pcln_at > self.size {
            return Err(Malformed("tables out of order or past the section's end"));
        }
        if cu_at - names_at > MAX_NAMES {
            return Err(FuncTableError::TooLarge(cu_at - names_at));
        }
        let arena = self.read(names_at, cu_at - names_at)?;
        let mut pcln =
            Window { data: self.data, start: self.offset + pcln_at, len: self.size - pcln_at, at: 0, buf: Vec::new() };
        // The table's own text start may be unrelocated (PIE): the .text section's address
        // is what Go's own readers use, unless the table's lies inside it.
        let (width, base) = match (text_start, text) {
            (None, _) => (ptr, None),
            (Some(t), Some((addr, size))) if t >= addr && t < addr.saturating_add(size) => (4, Some(t)),
            (Some(_), Some((addr, _))) => (4, Some(addr)),
            (Some(t), None) => (4, Some(t)),
        };
        let funcs = entries(&mut pcln, 0, nfunc, width, base, &arena, little)?;
        let mut extra = Vec::new();
        let mut at = 0;
        while at < arena.len() && extra.len() < MAX_FUNCS {
            let Some(end) = memchr::memchr(0, &arena[at..]) else { break };
            if end > 0 && end <= MAX_NAME {
                extra.push((at as u32, end as u32));
            }
            at += end + 1;
        }
        Ok(Parsed { format, arena, funcs, extra })
    }
}

/// The `nfunc` entries of a function table at `at` of `src`: pairs of words of `width`
/// bytes (an address, or from 1.18 an offset from `base`; then the offset of the function's
/// record in `src`), each record starting with the entry (same width) and its name's offset
/// in `arena`.
fn entries(
    src: &mut impl Source,
    at: u64,
    nfunc: usize,
    width: usize,
    base: Option<u64>,
    arena: &[u8],
    little: bool,
) -> Result<Vec<(u32, u32, Option<u64>)>, FuncTableError> {
    use FuncTableError::Malformed;
    let table = (nfunc as u64).checked_mul(2 * width as u64).ok_or(Malformed("function count"))?;
    // The whole function table must be there before anything is allocated for it.
    if src.get(at, 0).is_none() || src.get(at + table.saturating_sub(1), usize::from(table > 0)).is_none() {
        return Err(Malformed("function count past the table's end"));
    }
    let mut offsets = Vec::with_capacity(nfunc);
    for i in 0..nfunc as u64 {
        let func_at = word_at(src, at + i * 2 * width as u64 + width as u64, width, little)
            .ok_or(Malformed("function table entry"))?;
        offsets.push(func_at);
    }
    let mut out = Vec::with_capacity(nfunc);
    for func_at in offsets {
        let entry = word_at(src, func_at, width, little).ok_or(Malformed("function record past the table's end"))?;
        let name_at =
            u32_at(src, func_at + width as u64, little).ok_or(Malformed("function record past the table's end"))?;
        // A negative name offset (int32) is no name.
        let Some((name, len)) = i32::try_from(name_at).ok().and_then(|n| name_at_arena(arena, n)) else {
            continue;
        };
        let pc = match base {
            Some(base) => base.checked_add(entry),
            None => Some(entry),
        };
        out.push((name, len, pc));
    }
    Ok(out)
}

fn name_at_arena(arena: &[u8], at: i32) -> Option<(u32, u32)> {
    name_at(arena, usize::try_from(at).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_govulncheck_does() {
        let cases = [
            ("net/http.(*Client).Do", ("net/http", "Client.Do")),
            ("encoding/gob.(*Decoder).Decode", ("encoding/gob", "Decoder.Decode")),
            ("go/build/constraint.Parse", ("go/build/constraint", "Parse")),
            ("go/build/constraint.Parse.func1", ("go/build/constraint", "Parse")),
            ("go/build/constraint.(*exprParser).not", ("go/build/constraint", "exprParser.not")),
            ("golang.org/x/net/http2.(*Framer).ReadFrame-fm", ("golang.org/x/net/http2", "Framer.ReadFrame")),
            ("example.com/m.Map[go.shape.string,example.com/x.T]", ("example.com/m", "Map")),
            ("example.com/m.(*List[...]).Push", ("example.com/m", "List.Push")),
            ("main.main.func1.2", ("main", "main")),
            ("main.run.gowrap1", ("main", "run")),
            // The linker escapes dots in a path's last element.
            ("gopkg.in/yaml%2ev3.Unmarshal", ("gopkg.in/yaml.v3", "Unmarshal")),
        ];
        for (name, (p, s)) in cases {
            assert_eq!(split_name(name), Some((p.to_string(), s.to_string())), "{name}");
        }
        assert_eq!(split_name("noPackage"), None);
        assert_eq!(split_name(""), None);
    }

    fn u64s(out: &mut Vec<u8>, words: &[u64]) {
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// A 1.16 table (no Go here writes one): header, name region with an inlined
    /// function's name, function table, records.
    #[test]
    fn the_1_16_format() {
        let names = b"main.main\0pkg.(*T).M\0inl.F\0";
        let (names_at, header) = (64u64, 64usize);
        let cu = names_at + names.len() as u64;
        let mut t = vec![0xfa, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        u64s(&mut t, &[2, 0, names_at, cu, cu, cu, cu]);
        assert_eq!(t.len(), header);
        t.extend_from_slice(names);
        // functab: (entry, record offset) twice and the end pc; records: entry, name offset.
        u64s(&mut t, &[0x401000, 40, 0x401100, 56, 0x401200]);
        u64s(&mut t, &[0x401000, 0]);
        u64s(&mut t, &[0x401100, 10]);
        let raw = Raw { data: &t[..], offset: 0, size: t.len() as u64, little: true };
        let parsed = raw.parse(None).unwrap();
        assert_eq!(parsed.format, Format::Go116);
        let got: Vec<(&[u8], Option<u64>)> =
            parsed.funcs.iter().map(|&(n, l, pc)| (&parsed.arena[n as usize..(n + l) as usize], pc)).collect();
        assert_eq!(got, [(&b"main.main"[..], Some(0x401000)), (&b"pkg.(*T).M"[..], Some(0x401100))]);
        assert_eq!(parsed.extra.len(), 3, "every name of the region, the inlined one too");
    }

    /// A 1.2 table: names anywhere in it, inlined functions not seen.
    #[test]
    fn the_1_2_format() {
        let mut t = vec![0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        u64s(&mut t, &[1]);
        // functab at 16: (entry, record at 40), end pc; the record at 40, its name at 52.
        u64s(&mut t, &[0x401000, 40, 0x401100]);
        u64s(&mut t, &[0x401000]);
        t.extend_from_slice(&52u32.to_le_bytes());
        t.extend_from_slice(b"net/http.Get\0");
        let raw = Raw { data: &t[..], offset: 0, size: t.len() as u64, little: true };
        let parsed = raw.parse(None).unwrap();
        assert_eq!(parsed.format, Format::Go12);
        let &(n, l, pc) = &parsed.funcs[0];
        assert_eq!((&parsed.arena[n as usize..(n + l) as usize], pc), (&b"net/http.Get"[..], Some(0x401000)));
        assert!(parsed.extra.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(FuncTable::parse(&b"not an elf"[..]), Err(FuncTableError::NotElf)));
        assert!(FuncTable::parse(&b"\x7fELF\x02\x01\x01"[..]).is_err());
    }
}
