//! Alpine packages: `lib/apk/db/installed`, paragraphs of `X:value` lines separated by a
//! blank line. `P` name, `V` version, `A` architecture, `L` licence, `o` origin (the source
//! package, built at the same version), `F` a directory and the `R` lines after it the
//! files in it.

use crate::catalog::Malformed;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, read_limited};
use crate::model::{Distro, Ecosystem, Package, Source};
use crate::purl;
use crate::rootfs::Root;

const CATALOGER: &str = "apk";
const INSTALLED: &str = "/lib/apk/db/installed";
/// Far beyond a real system's database (a full Alpine desktop is a few MiB).
const MAX_INSTALLED: u64 = 64 << 20;

/// One installed package, as the database records it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `P`
    pub name: String,
    /// `V`
    pub version: String,
    /// `A`
    pub arch: Option<String>,
    /// `L`
    pub license: Option<String>,
    /// `o`
    pub origin: Option<String>,
    /// `F` + `R`, absolute.
    pub files: Vec<PathBuf>,
}

/// Parses the installed database. A paragraph without `P` or `V` is an error naming its
/// line.
pub fn parse(text: &str) -> Result<Vec<Entry>, Malformed> {
    parse_within(text, crate::catalog::MAX_PACKAGES, crate::catalog::MAX_FILES)
}

/// [`parse`], refusing more than `max_packages` packages or `max_files` files (an error
/// starting `budget:`).
pub fn parse_within(text: &str, max_packages: usize, max_files: usize) -> Result<Vec<Entry>, Malformed> {
    let mut out = Vec::new();
    let mut current = Entry::default();
    let mut dir = PathBuf::from("/");
    let mut started_at = 1;
    let mut any = false;
    let mut files = 0usize;
    let mut finish = |e: Entry, line: usize| -> Result<(), Malformed> {
        if e.name.is_empty() || e.version.is_empty() {
            return Err(format!("paragraph at line {line} has no P: or no V:").into());
        }
        if out.len() == max_packages {
            return Err(format!("budget: more than {max_packages} packages (line {line}): not read").into());
        }
        out.push(e);
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            if any {
                finish(std::mem::take(&mut current), started_at)?;
                any = false;
            }
            continue;
        }
        if !any {
            started_at = n + 1;
            dir = PathBuf::from("/");
            any = true;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {}: not a `X:value` line", n + 1).into());
        };
        match key {
            "P" => current.name = value.to_string(),
            "V" => current.version = value.to_string(),
            "A" => current.arch = Some(value.to_string()),
            "L" => current.license = Some(value.to_string()),
            "o" => current.origin = Some(value.to_string()),
            "F" => dir = Path::new("/").join(value),
            "R" => {
                files += 1;
                if files > max_files {
                    return Err(format!("budget: more than {max_files} files (line {}): not read", n + 1).into());
                }
                current.files.push(dir.join(value));
            }
            _ => {}
        }
    }
    if any {
        finish(current, started_at)?;
    }
    Ok(out)
}

/// Catalogs the root's apk database, if it has one.
pub fn catalog(root: &Root, distro: Option<&Distro>, catalog: &mut Catalog) {
    let path = Path::new(INSTALLED);
    let entries = match read_limited(root, path, MAX_INSTALLED) {
        Ok(Some(text)) => match parse_within(
            &text,
            catalog.budgets.packages.saturating_add(1),
            catalog.budgets.files.saturating_add(1),
        ) {
            Ok(e) => e,
            Err(e) if e.is_over_budget() => return catalog.over_budget(CATALOGER, path, e),
            Err(e) => return catalog.warn(CATALOGER, path, e),
        },
        Ok(None) => return,
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    for e in entries {
        let added = catalog.add(
            CATALOGER,
            path,
            Package {
                purl: purl::apk(distro, &e.name, &e.version, e.arch.as_deref()),
                source: e.origin.map(|o| Source { name: o, version: e.version.clone() }),
                name: e.name,
                version: e.version,
                kind: Ecosystem::Apk,
                licenses: e.license.into_iter().collect(),
                found_at: path.to_path_buf(),
                files: e.files,
                version_from_commit: false,
            },
        );
        if !added {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two paragraphs as apk-tools writes them (Alpine 3.18's musl and busybox, abridged).
    const INSTALLED_DB: &str = "C:Q1Vj8vSsnX7YAbSnnd5XwnzDXxOkk=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nI:622592\n\
T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo Teräs <timo.teras@iki.fi>\n\
t:1698337000\nc:0d3e4a4b0b3c\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1abc=\n\
R:libc.musl-x86_64.so.1\na:0:0:777\nZ:Q1def=\n\n\
C:Q1xyz=\nP:busybox-binsh\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:sh\nF:usr/share/doc\n\n";

    #[test]
    fn parses_packages_files_and_origins() {
        let e = parse(INSTALLED_DB).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].name.as_str(), e[0].version.as_str(), e[0].arch.as_deref()),
            ("musl", "1.2.4-r2", Some("x86_64"))
        );
        assert_eq!(
            e[0].files,
            [PathBuf::from("/lib/ld-musl-x86_64.so.1"), PathBuf::from("/lib/libc.musl-x86_64.so.1")]
        );
        assert_eq!(e[1].origin.as_deref(), Some("busybox"));
        assert_eq!(e[1].files, [PathBuf::from("/bin/sh")]);
        assert_eq!(e[1].license.as_deref(), Some("GPL-2.0-only"));
    }

    #[test]
    fn an_alpine_root_gets_apk_purls_with_its_release() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib/apk/db")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("lib/apk/db/installed"), INSTALLED_DB).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\n")
            .unwrap();
        let sbom = crate::scan(dir.path()).unwrap();
        assert!(sbom.warnings.is_empty(), "{:?}", sbom.warnings);
        let purls: Vec<&str> = sbom.packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:apk/alpine/busybox-binsh@1.36.1-r5?arch=x86_64&distro=alpine-3.18.4",
                "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4"
            ]
        );
        // Broken: a warning naming the database.
        std::fs::write(dir.path().join("lib/apk/db/installed"), "P:x\n\nV:1\n").unwrap();
        let sbom = crate::scan(dir.path()).unwrap();
        assert_eq!(sbom.warnings[0].path, PathBuf::from(INSTALLED));
    }

    #[test]
    fn malformed_paragraphs_are_errors_naming_the_line() {
        assert!(parse("P:x\n\nV:1\n").unwrap_err().to_string().contains("line 1"));
        assert!(parse("P:x\nV:1\ngarbage\n").unwrap_err().to_string().contains("line 3"));
        assert_eq!(parse("").unwrap(), []);
    }
}
