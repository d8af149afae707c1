//! Debian packages: `var/lib/dpkg/status` with `info/<pkg>[:<arch>].list` for files, and the
//! `var/lib/dpkg/status.d/` layout of distroless images (one control file per package, its
//! files in `<pkg>.md5sums`).

use crate::catalog::Malformed;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, read_limited};
use crate::model::{Distro, Ecosystem, Package, Source};
use crate::purl;
use crate::rootfs::{EntryKind, Root};

const CATALOGER: &str = "dpkg";
const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_D: &str = "/var/lib/dpkg/status.d";
const INFO: &str = "/var/lib/dpkg/info";
/// A status file of 64 MiB is already far beyond any real system's.
const MAX_STATUS: u64 = 64 << 20;
/// A file list of 16 MiB is far beyond any real package's.
const MAX_LIST: u64 = 16 << 20;

/// One paragraph of a control file, the fields we use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// `Package`
    pub package: String,
    /// `Version`
    pub version: String,
    /// `Architecture`
    pub architecture: Option<String>,
    /// `Source`, split into name and optional version.
    pub source: Option<(String, Option<String>)>,
    /// `Status`
    pub status: Option<String>,
}

impl Stanza {
    /// Installed, as dpkg-query lists it (its status's last word is `installed`).
    pub fn is_installed(&self) -> bool {
        // status.d control files carry no Status: present means installed.
        self.status.as_deref().is_none_or(|s| s.split_whitespace().last() == Some("installed"))
    }
}

/// Parses a deb822 control file into paragraphs. A paragraph without `Package` or `Version`
/// is an error naming its line.
pub fn parse_control(text: &str) -> Result<Vec<Stanza>, Malformed> {
    parse_control_within(text, crate::catalog::MAX_PACKAGES)
}

/// [`parse_control`], refusing more than `max` paragraphs (an error starting `budget:`).
pub fn parse_control_within(text: &str, max: usize) -> Result<Vec<Stanza>, Malformed> {
    let mut out = Vec::new();
    let mut current = Stanza::default();
    let mut started_at = 0;
    let mut any = false;
    let finish = |s: Stanza, line: usize, out: &mut Vec<Stanza>| -> Result<(), Malformed> {
        if s.package.is_empty() || s.version.is_empty() {
            return Err(format!("paragraph at line {line} has no Package or no Version").into());
        }
        if out.len() == max {
            return Err(format!("budget: more than {max} paragraphs (line {line}): not read").into());
        }
        out.push(s);
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if any {
                finish(std::mem::take(&mut current), started_at, &mut out)?;
                any = false;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue; // continuation of a multi-line field we do not use
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {}: not a `Field: value` line", n + 1).into());
        };
        if !any {
            started_at = n + 1;
            any = true;
        }
        let value = value.trim().to_string();
        match key {
            "Package" => current.package = value,
            "Version" => current.version = value,
            "Architecture" => current.architecture = Some(value),
            "Status" => current.status = Some(value),
            "Source" => {
                let mut parts = value.splitn(2, ' ');
                let name = parts.next().unwrap_or_default().to_string();
                let version = parts.next().map(|v| v.trim().trim_start_matches('(').trim_end_matches(')').to_string());
                current.source = Some((name, version));
            }
            _ => {}
        }
    }
    if any {
        finish(current, started_at, &mut out)?;
    }
    Ok(out)
}

/// Catalogs the root's Debian packages into `catalog`.
pub fn catalog(root: &Root, distro: Option<&Distro>, catalog: &mut Catalog) {
    let status = Path::new(STATUS);
    match read_limited(root, status, MAX_STATUS) {
        // One paragraph past the budget parses, so that `add` says which budget was spent.
        Ok(Some(text)) => match parse_control_within(&text, catalog.budgets.packages.saturating_add(1)) {
            Ok(stanzas) => {
                for stanza in stanzas.into_iter().filter(Stanza::is_installed) {
                    let files = list_files(root, &stanza, catalog);
                    if !catalog.add(CATALOGER, status, package(stanza, distro, status, files)) {
                        break;
                    }
                }
            }
            Err(e) if e.is_over_budget() => catalog.over_budget(CATALOGER, status, e),
            Err(e) => catalog.warn(CATALOGER, status, e),
        },
        Ok(None) => {}
        Err(e) => catalog.warn(CATALOGER, status, e),
    }
    status_d(root, distro, catalog);
}

/// `info/<pkg>:<arch>.list` for Multi-Arch: same packages, `info/<pkg>.list` otherwise.
fn list_files(root: &Root, stanza: &Stanza, catalog: &mut Catalog) -> Vec<PathBuf> {
    let mut names = Vec::new();
    if let Some(arch) = &stanza.architecture {
        names.push(format!("{}:{arch}.list", stanza.package));
    }
    names.push(format!("{}.list", stanza.package));
    for name in names {
        let path = Path::new(INFO).join(name);
        match read_limited(root, &path, MAX_LIST) {
            Ok(Some(text)) => return text.lines().filter(|l| l.starts_with('/')).map(PathBuf::from).collect(),
            Ok(None) => continue,
            Err(e) => {
                catalog.warn(CATALOGER, &path, e);
                return Vec::new();
            }
        }
    }
    Vec::new()
}

/// Distroless: `status.d/<name>` control files, files from `status.d/<name>.md5sums`.
fn status_d(root: &Root, distro: Option<&Distro>, catalog: &mut Catalog) {
    let dir = Path::new(STATUS_D);
    // Listed through a descriptor opened inside the root: a `status.d` that is a symlink to
    // a host directory resolves inside the root instead.
    let entries = match root.list_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => return catalog.warn(CATALOGER, dir, e),
    };
    let mut names: Vec<String> = entries
        .into_iter()
        .filter(|(_, kind)| *kind == EntryKind::File)
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".md5sums"))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let stanzas = match read_limited(root, &path, MAX_LIST).map(|t| t.map(|t| parse_control(&t))) {
            Ok(Some(Ok(stanzas))) => stanzas,
            Ok(Some(Err(e))) => {
                catalog.warn(CATALOGER, &path, e);
                continue;
            }
            Ok(None) => continue,
            Err(e) => {
                catalog.warn(CATALOGER, &path, e);
                continue;
            }
        };
        let sums = dir.join(format!("{name}.md5sums"));
        let files: Vec<PathBuf> = match read_limited(root, &sums, MAX_LIST) {
            Ok(Some(text)) => text
                .lines()
                .filter_map(|l| l.split_once(char::is_whitespace).map(|(_, p)| p.trim()))
                .map(|p| Path::new("/").join(p))
                .collect(),
            _ => Vec::new(),
        };
        for stanza in stanzas {
            catalog.add(CATALOGER, &path, package(stanza, distro, &path, files.clone()));
        }
    }
}

fn package(stanza: Stanza, distro: Option<&Distro>, found_at: &Path, files: Vec<PathBuf>) -> Package {
    let source = stanza
        .source
        .clone()
        .map(|(name, version)| Source { name, version: version.unwrap_or_else(|| stanza.version.clone()) });
    Package {
        purl: purl::deb(distro, &stanza.package, &stanza.version, stanza.architecture.as_deref(), source.as_ref()),
        name: stanza.package,
        version: stanza.version,
        kind: Ecosystem::Deb,
        source,
        licenses: Vec::new(),
        found_at: found_at.to_path_buf(),
        files,
        version_from_commit: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs_and_sources() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u7\nDescription: GNU C Library\n multi-line\n\nPackage: bsdutils\nStatus: install ok installed\nSource: util-linux (2.38.1-5)\nVersion: 1:2.38.1-5+deb12u1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n";
        let stanzas = parse_control(text).unwrap();
        assert_eq!(stanzas.len(), 3);
        assert_eq!(stanzas[0].source, Some(("glibc".into(), None)));
        assert_eq!(stanzas[1].source, Some(("util-linux".into(), Some("2.38.1-5".into()))));
        assert!(stanzas[1].is_installed());
        assert!(!stanzas[2].is_installed());
    }

    #[test]
    fn malformed_status_is_an_error_naming_the_line() {
        let err = parse_control("Package: a\nVersion: 1\n\nthis is not a field\n").unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
        let err = parse_control("Package: a\n\nPackage: b\nVersion: 2\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
