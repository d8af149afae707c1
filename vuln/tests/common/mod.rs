//! Shared by the integration tests: the real OSV fixtures and the cached Debian root.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// ../shared/fixtures/osv: real PyPA and GitHub advisories.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/osv")
}

/// The Debian bookworm root `cargo xtask setup` builds (`SNIFFER_BOOKWORM_ROOT` overrides).
pub fn bookworm_root() -> PathBuf {
    let root = std::env::var_os("SNIFFER_BOOKWORM_ROOT")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sniffer-fixtures/bookworm"));
    assert!(root.join("var/lib/dpkg/status").is_file(), "{} is missing: run `cargo xtask setup`", root.display());
    root
}

/// A database holding `paths`, in a fresh temporary directory.
pub fn db_of(paths: &[&Path]) -> (tempfile::TempDir, PathBuf, vuln::ImportReport) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vuln.db");
    let mut w = vuln::Writer::open(&db).unwrap();
    let mut report = vuln::ImportReport::default();
    for p in paths {
        vuln::import::import_path(&mut w, p, &mut report).unwrap();
    }
    w.commit().unwrap();
    (dir, db, report)
}

/// Subjects for `name@version` packages of one purl type.
pub fn subjects(ty: &str, packages: &[(&str, &str)]) -> Vec<vuln::input::Subject> {
    packages.iter().map(|(n, v)| vuln::input::subject_of_purl(&format!("pkg:{ty}/{n}@{v}")).unwrap()).collect()
}
