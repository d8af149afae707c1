//! Shared by the integration tests.

use std::process::Command;

/// A root holding only this host's dpkg database and os-release, so a scan is quick.
pub fn dpkg_only_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("var/lib")).unwrap();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    let status = Command::new("cp").arg("-a").arg("/var/lib/dpkg").arg(r.join("var/lib/")).status().unwrap();
    assert!(status.success());
    std::fs::copy("/etc/os-release", r.join("etc/os-release")).unwrap();
    dir
}
