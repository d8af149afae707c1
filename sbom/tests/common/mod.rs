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

/// The cached real Debian bookworm root that `cargo xtask setup` builds (debootstrap with
/// python3, pip packages in /usr/local/lib/python3.11/dist-packages, an npm project in
/// /srv/app); `SNIFFER_BOOKWORM_ROOT` overrides where it is.
#[allow(dead_code)]
pub fn bookworm_root() -> std::path::PathBuf {
    let root = std::env::var_os("SNIFFER_BOOKWORM_ROOT")
        .map(Into::into)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/cache/sniffer-fixtures/bookworm"));
    assert!(root.join("var/lib/dpkg/status").is_file(), "{} is missing: run `cargo xtask setup`", root.display());
    root
}
