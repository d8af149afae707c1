//! Go function tables (`.gopclntab`) of real binaries: built here by Debian's Go (the 1.18
//! format), checked against Go's own reader (`go tool nm`), and the Go 1.20+ binaries this
//! machine carries; then the same tables made to lie.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sbom::gofunc::{Format, FuncTable, FuncTableError};

fn table(path: &Path) -> FuncTable {
    FuncTable::parse(&std::fs::File::open(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `go tool nm`'s functions (text symbols) of an unstripped binary: name -> address.
fn nm(path: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("go").args(["tool", "nm"]).arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                // Assembly bodies are `name.abi0` to nm, `name` in the function table.
                [addr, "T" | "t", name] => Some((
                    name.strip_suffix(".abi0").unwrap_or(name).to_string(),
                    u64::from_str_radix(addr, 16).unwrap(),
                )),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn a_real_binary_s_functions_are_go_s_own_and_stripping_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = testkit::golang::programs(dir.path());
    let t = table(&p.calls);
    assert_eq!(t.format, Format::Go118, "Debian's Go 1.19 writes the 1.18 format");
    let reference = nm(&p.calls);
    let mut ours: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for f in t.funcs() {
        if let Some(addr) = f.addr {
            ours.entry(f.name.into_owned()).or_default().push(addr);
        }
    }
    // Every function Go's reader lists is ours at the same address (one of its bodies: an
    // assembly function has an ABI wrapper of the same name), and nearly all of ours are
    // its: the symbol table and the function table agree.
    for (name, addr) in &reference {
        let marker = ["runtime.text", "runtime.etext"].contains(&name.as_str());
        if !marker && (name.starts_with("runtime.") || name.starts_with("main.") || name.starts_with("encoding/gob.")) {
            assert!(ours.get(name).is_some_and(|a| a.contains(addr)), "{name} at {addr:#x}: {:x?}", ours.get(name));
        }
    }
    let checked = ours.iter().filter(|(n, a)| reference.get(*n).is_some_and(|r| a.contains(r))).count();
    assert!(checked > 1000 && checked * 100 >= ours.len() * 95, "{checked} of {}", ours.len());
    // The file offset is where the function's code is: the same bytes as at its address.
    let data = std::fs::read(&p.calls).unwrap();
    let decode = t.find("encoding/gob", "Decoder.Decode").find(|f| f.name == "encoding/gob.(*Decoder).Decode").unwrap();
    let offset = decode.offset.unwrap() as usize;
    // A Go function on amd64 starts by checking its stack bound: `cmp rsp, [r14+0x10]`.
    assert_eq!(&data[offset..offset + 4], [0x49, 0x3b, 0x66, 0x10], "{:x?}", &data[offset..offset + 8]);

    let stripped = table(&p.stripped);
    assert!(nm_fails(&p.stripped), "the stripped binary has no symbol table");
    let mine: Vec<(String, Option<u64>)> = t.funcs().map(|f| (f.name.into_owned(), f.offset)).collect();
    let theirs: Vec<(String, Option<u64>)> = stripped.funcs().map(|f| (f.name.into_owned(), f.offset)).collect();
    assert_eq!(mine.len(), theirs.len());
    assert!(theirs.iter().any(|(n, o)| n == "encoding/gob.(*Decoder).Decode" && o.is_some()));

    // The program that links gob but never decodes still holds Decode; the one that does
    // not import gob holds nothing of it.
    assert!(table(&p.links).find("encoding/gob", "Decoder.Decode").any(|f| f.offset.is_some()));
    let nolink = table(&p.nolink);
    assert!(!nolink.has_package("encoding/gob"));
    assert!(nolink.has_package("fmt") && nolink.find("main", "main").next().is_some());
}

fn nm_fails(path: &Path) -> bool {
    let out = Command::new("go").args(["tool", "nm"]).arg(path).output().unwrap();
    !out.status.success() || out.stdout.is_empty()
}

#[test]
fn a_function_inlined_everywhere_is_still_seen_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("inl");
    testkit::golang::build(
        "package main\n\nimport (\n\t\"os\"\n\t\"strings\"\n)\n\nfunc small(s string) int { return len(s)*3 + strings.IndexByte(s, 'a') }\n\nfunc main() { os.Exit(small(os.Args[0]) & 1) }\n",
        &bin,
        &[],
    );
    assert!(!nm(&bin).contains_key("main.small"), "the compiler inlined it: no code of its own");
    let t = table(&bin);
    let small: Vec<_> = t.find("main", "small").collect();
    assert_eq!(small.len(), 1, "named in the table's names");
    assert_eq!(small[0].offset, None, "no code of its own: nothing to probe");
}

/// The Go 1.20+ binaries of this machine's image: the docker CLI (linked externally: its
/// table sits in .data.rel.ro, no section of its own) and the Cloud SDK's kubectl.
#[test]
fn go_1_20_tables_of_this_machine_s_binaries() {
    for (path, main) in [
        ("/usr/local/bin/docker", "main.dockerMain"),
        ("/usr/lib/google-cloud-sdk/bin/kubectl", "main.main"),
        ("/usr/bin/containerd", "main.main"),
    ] {
        let path = Path::new(path);
        assert!(path.exists(), "{} is part of this machine's image", path.display());
        let t = table(path);
        assert!(matches!(t.format, Format::Go118 | Format::Go120), "{}: {:?}", path.display(), t.format);
        assert!(t.len() > 10_000, "{}: {}", path.display(), t.len());
        let m = t.funcs().find(|f| f.name == main).unwrap_or_else(|| panic!("{}: {main}", path.display()));
        let data = std::fs::read(path).unwrap();
        let at = m.offset.unwrap() as usize;
        // `cmp rsp, [r14+16]`, or for a large frame `lea r12, [rsp-N]` first.
        assert!(
            data[at..at + 3] == [0x49, 0x3b, 0x66]
                || data[at..at + 3] == [0x4c, 0x8d, 0x64]
                || data[at..at + 3] == [0x4c, 0x8d, 0xa4],
            "{}: {main} starts with its stack check: {:x?}",
            path.display(),
            &data[at..at + 8]
        );
        // Addresses only grow with the functions' order in the binary, and sit in it.
        let with_code = t.funcs().filter(|f| f.offset.is_some()).count();
        assert!(with_code * 10 > t.len() * 8, "{}: {with_code} of {}", path.display(), t.len());
        assert!(t.funcs().filter_map(|f| f.offset).all(|o| (o as usize) < data.len()));
        assert!(t.has_package("runtime") && t.find("runtime", "goexit").next().is_some());
    }
    assert_eq!(table(Path::new("/usr/local/bin/docker")).format, Format::Go120);
}

/// Where the table sits in a binary: (offset of .gopclntab, its size).
fn pclntab_of(data: &[u8]) -> (usize, usize) {
    // Section headers by hand: 64-bit little-endian.
    let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
    let (entsize, num, strndx) = (
        u16::from_le_bytes(data[0x3a..0x3c].try_into().unwrap()) as usize,
        u16::from_le_bytes(data[0x3c..0x3e].try_into().unwrap()) as usize,
        u16::from_le_bytes(data[0x3e..0x40].try_into().unwrap()) as usize,
    );
    let sh = |i: usize| &data[shoff + i * entsize..shoff + (i + 1) * entsize];
    let field = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap()) as usize;
    let names = field(sh(strndx), 0x18);
    (0..num)
        .find_map(|i| {
            let s = sh(i);
            let name = u32::from_le_bytes(s[0..4].try_into().unwrap()) as usize;
            data[names + name..].starts_with(b".gopclntab\0").then(|| (field(s, 0x18), field(s, 0x20)))
        })
        .unwrap()
}

#[test]
fn a_table_that_lies_is_an_error_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("nolink");
    testkit::golang::build(
        "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Println(len(os.Args)) }\n",
        &bin,
        &[],
    );
    let good = std::fs::read(&bin).unwrap();
    let (at, size) = pclntab_of(&good);
    let word = move |i: usize| at + 8 + i * 8;
    let set = move |data: &mut Vec<u8>, i: usize, v: u64| data[word(i)..word(i) + 8].copy_from_slice(&v.to_le_bytes());
    let start = std::time::Instant::now();
    type Break<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let cases: Vec<(&str, Break<'_>)> = vec![
        ("a million functions", Box::new(move |d| set(d, 0, 1_000_000))),
        ("four billion functions", Box::new(move |d| set(d, 0, u64::MAX))),
        ("names past the end", Box::new(move |d| set(d, 3, 1 << 40))),
        ("names region reversed", Box::new(move |d| set(d, 4, 0))),
        ("function records past the end", Box::new(move |d| set(d, 7, size as u64 - 4))),
        ("an unknown magic", Box::new(move |d| d[at] = 0xf5)),
        ("pointer size 3", Box::new(move |d| d[at + 7] = 3)),
    ];
    for (what, break_it) in cases {
        let mut data = good.clone();
        break_it(&mut data);
        let r = FuncTable::parse(&data[..]);
        assert!(r.is_err(), "{what}: {:?}", r.map(|t| t.len()));
    }
    // Each function record's offset and name offset pointing anywhere: no panic, and every
    // name the table gives comes from its name region.
    let functab = at + u64::from_le_bytes(good[word(7)..word(7) + 8].try_into().unwrap()) as usize;
    for seed in 0..64u64 {
        let mut data = good.clone();
        for i in 0..200 {
            let x = (seed * 7919 + i * 104_729) % 2048;
            data[functab + (x as usize) * 4] ^= (seed as u8).wrapping_mul(31) | 1;
        }
        if let Ok(t) = FuncTable::parse(&data[..]) {
            assert!(t.len() <= 10_000);
        }
    }
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    // A table over the budget is refused before it is read.
    assert!(matches!(
        sbom::gofunc::MAX_TABLE.checked_add(1).map(FuncTableError::TooLarge),
        Some(FuncTableError::TooLarge(_))
    ));
}
