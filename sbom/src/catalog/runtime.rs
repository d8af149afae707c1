//! Language runtimes installed without a package manager: a JDK unpacked from a tarball
//! (`/opt/java/openjdk` in the eclipse-temurin images) is known only by its `release`
//! file. Listed as `pkg:generic/oracle/openjdk@<runtime version>`, the way Syft names
//! them; no OSV ecosystem covers them, so they are listed, not matched.

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
        },
    );
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
}
