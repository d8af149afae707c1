//! Shared by the integration tests of this crate: databases of real records, and subjects.

use std::path::{Path, PathBuf};

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
