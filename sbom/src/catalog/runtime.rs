//! Language runtimes installed without a package manager: a JDK unpacked from a tarball
//! (`/opt/java/openjdk` in the eclipse-temurin images) is known only by its `release`
//! file, a CPython built from source (the python images' `/usr/local/bin/python3.12`, a
//! vendor's bundled interpreter) only by the version compiled into its binary or
//! `libpython`. Listed as `pkg:generic/oracle/openjdk@…` and `pkg:generic/python@…`, the
//! way Syft names them; no OSV ecosystem covers them, so they are listed, not matched. An
//! interpreter a distribution package owns is that package, not listed again.

use std::path::Path;

use crate::catalog::{Catalog, read_limited};
use crate::model::{Ecosystem, Package};

const CATALOGER: &str = "runtime";
/// Largest `release` file read (a JDK's is about 2 KiB).
const MAX_RELEASE: u64 = 64 << 10;

/// A JDK's `release` file: `KEY="value"` lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JavaRelease {
    /// `JAVA_VERSION` (`17.0.15`).
    pub version: String,
    /// `JAVA_RUNTIME_VERSION` (`17.0.15+6-Debian-1deb12u1`), when given.
    pub runtime_version: Option<String>,
    /// `IMPLEMENTOR` (`Eclipse Adoptium`).
    pub implementor: Option<String>,
}

/// Parses a JDK's `release` file; `None` when it names no `JAVA_VERSION` (other programs
/// ship files named `release` too).
pub fn parse_java_release(text: &str) -> Option<JavaRelease> {
    let mut r = JavaRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim().trim_matches('"').trim();
        let value = (!value.is_empty() && value.len() <= 200).then(|| value.to_string());
        match key.trim() {
            "JAVA_VERSION" => r.version = value.unwrap_or_default(),
            "JAVA_RUNTIME_VERSION" => r.runtime_version = value,
            "IMPLEMENTOR" => r.implementor = value,
            _ => {}
        }
    }
    let version_like = |v: &str| v.starts_with(|c: char| c.is_ascii_digit()) && !v.contains(char::is_whitespace);
    if !version_like(&r.version) {
        return None;
    }
    r.runtime_version = r.runtime_version.filter(|v| version_like(v));
    Some(r)
}

/// Catalogs the JDK whose `release` file is at `path` (inside the root): it owns its
/// directory, whose libraries and modules the JVM opens.
pub fn catalog_java_release(root: &crate::rootfs::Root, path: &Path, catalog: &mut Catalog) {
    let text = match read_limited(root, path, MAX_RELEASE) {
        Ok(Some(text)) => text,
        Ok(None) => return,
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    let Some(release) = parse_java_release(&text) else { return };
    if owned_by_distribution(catalog, path) {
        return;
    }
    let version = release.runtime_version.unwrap_or(release.version);
    let home = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    catalog.add(
        CATALOGER,
        path,
        Package {
            purl: crate::purl::generic(Some("oracle"), "openjdk", &version),
            name: "openjdk".to_string(),
            version,
            kind: Ecosystem::Runtime,
            source: None,
            licenses: Vec::new(),
            found_at: path.to_path_buf(),
            files: vec![home],
            version_from_commit: false,
        },
    );
}

/// Largest `.rodata` searched for an interpreter's version (CPython's are 2 to 5 MiB).
const MAX_RODATA: u64 = 16 << 20;
/// Most `.rodata` sections of files named like interpreters read per image (a real image
/// has one to four; a developer's machine with pyenv a few dozen).
const MAX_INTERPRETERS: usize = 64;

/// The `(major, minor)` a CPython interpreter or library file name carries: `python3.12`,
/// `python3.12d`, `libpython3.12.so.1.0`, `libpython3.12d.so`; not `python3` (a link) or
/// `libpython3.so` (the stable-ABI stub).
pub fn python_in_name(name: &str) -> Option<(u32, u32)> {
    let (lib, rest) = match name.strip_prefix("libpython") {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix("python")?),
    };
    let (major, rest) = rest.split_once('.')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (minor, rest) = rest.split_at(digits);
    let rest = rest.strip_prefix(['d', 'm', 'u']).unwrap_or(rest);
    let ok = if lib { rest == ".so" || rest.starts_with(".so.") } else { rest.is_empty() };
    if !ok || major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) || minor.is_empty() {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The one version `major.minor.patch[suffix]` ending a C string in `rodata` (CPython's
/// `PY_VERSION`, `3.12.10`; the linker may have merged it into the tail of a longer string,
/// `…on-3.11.7`, so only a digit or a dot may not precede it); `None` when there is none or
/// more than one.
pub fn python_version_in(rodata: &[u8], (major, minor): (u32, u32)) -> Option<String> {
    let prefix = format!("{major}.{minor}.");
    let mut found: Option<&[u8]> = None;
    for start in memchr::memmem::find_iter(rodata, prefix.as_bytes()) {
        if start > 0 && (rodata[start - 1].is_ascii_digit() || rodata[start - 1] == b'.') {
            continue;
        }
        let rest = &rodata[start + prefix.len()..];
        let patch = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let tail = rest[patch..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'+').count();
        if patch == 0 || rest.get(patch + tail) != Some(&0) || tail > 16 {
            continue;
        }
        let version = &rodata[start..start + prefix.len() + patch + tail];
        match found {
            Some(v) if v != version => return None,
            _ => found = Some(version),
        }
    }
    found.map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Catalogs a CPython interpreter or `libpython` at `path` (inside the root) by the version
/// in its `.rodata`, unless a distribution package owns the file.
pub fn catalog_python(root: &crate::rootfs::Root, path: &Path, catalog: &mut Catalog) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else { return };
    let Some(minor) = python_in_name(&name) else { return };
    // Each costs a read of up to 16 MiB and a look through the distribution's file lists:
    // an image with thousands of files named like interpreters gets the first few read.
    if catalog.interpreters >= MAX_INTERPRETERS {
        return catalog.spent_once(crate::catalog::Limit::Interpreters, CATALOGER, path, || {
            format!("budget: more than {MAX_INTERPRETERS} files named like interpreters: the rest are not read")
        });
    }
    let Ok(file) = root.open_file(path) else { return };
    let Some(rodata) = crate::catalog::binary::elf_section(&file, b".rodata", MAX_RODATA) else { return };
    catalog.interpreters += 1;
    let Some(version) = python_version_in(&rodata, minor) else { return };
    if owned_by_distribution(catalog, path) {
        return;
    }
    let purl = crate::purl::generic(None, "python", &version);
    // `libpython3.12.so` and its `.so.1.0` twin: one interpreter, owning both.
    if let Some(i) = catalog.packages.iter().position(|p| p.kind == Ecosystem::Runtime && p.purl == purl) {
        return catalog.own_too(i..i + 1, path);
    }
    catalog.add(
        CATALOGER,
        path,
        Package {
            purl,
            name: "python".to_string(),
            version,
            kind: Ecosystem::Runtime,
            source: None,
            licenses: Vec::new(),
            found_at: path.to_path_buf(),
            files: vec![path.to_path_buf()],
            version_from_commit: false,
        },
    );
}

/// Whether a distribution package (dpkg, rpm, apk: read before the walk) lists `path`:
/// then the runtime is that package, not listed again.
fn owned_by_distribution(catalog: &Catalog, path: &Path) -> bool {
    catalog
        .packages
        .iter()
        .filter(|p| matches!(p.kind, Ecosystem::Deb | Ecosystem::Rpm | Ecosystem::Apk))
        .any(|p| p.files.iter().any(|f| f == path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_release_files() {
        let r = parse_java_release(
            "IMPLEMENTOR=\"Eclipse Adoptium\"\nIMPLEMENTOR_VERSION=\"Temurin-25.0.3+9\"\nJAVA_RUNTIME_VERSION=\"25.0.3+9-LTS\"\nJAVA_VERSION=\"25.0.3\"\n",
        )
        .unwrap();
        assert_eq!(r.version, "25.0.3");
        assert_eq!(r.runtime_version.as_deref(), Some("25.0.3+9-LTS"));
        assert_eq!(r.implementor.as_deref(), Some("Eclipse Adoptium"));
        assert_eq!(parse_java_release("VERSION=1\n"), None);
        assert_eq!(parse_java_release("JAVA_VERSION=\"not a version\"\n"), None);
    }

    #[test]
    fn python_names_and_versions() {
        assert_eq!(python_in_name("python3.12"), Some((3, 12)));
        assert_eq!(python_in_name("libpython3.12.so.1.0"), Some((3, 12)));
        assert_eq!(python_in_name("libpython3.9d.so"), Some((3, 9)));
        for not in ["python3", "libpython3.so", "python3.12-config", "libpython3.12.a", "python", "pythonx.y"] {
            assert_eq!(python_in_name(not), None, "{not}");
        }
        let rodata = b"xx\0python3.12\0%.80s (%.80s)\x003.12.10\0Py_Version\x003.12.10\x003.12\0";
        assert_eq!(python_version_in(rodata, (3, 12)).as_deref(), Some("3.12.10"));
        assert_eq!(python_version_in(b"\x003.12.0rc1\0", (3, 12)).as_deref(), Some("3.12.0rc1"));
        // Two different versions: which is it? Neither is said.
        assert_eq!(python_version_in(b"\x003.12.1\0\x003.12.2\0", (3, 12)), None);
        assert_eq!(python_version_in(b"\x003.11.1\0", (3, 12)), None);
        assert_eq!(python_version_in(b"3.12.1", (3, 12)), None);
        // Merged into the tail of another string (pyenv's builds); never inside a longer
        // number, never followed by more than a suffix.
        assert_eq!(python_version_in(b"versions/3.11.7/lib\0python-3.11.7\0", (3, 11)).as_deref(), Some("3.11.7"));
        assert_eq!(python_version_in(b"\x0013.11.7\0", (3, 11)), None);
        assert_eq!(python_version_in(b"3.11.7/lib\0", (3, 11)), None);
    }
}
