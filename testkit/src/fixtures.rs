//! Where the fixtures are: the real OSV records beside the project (`../shared/fixtures`),
//! and what `cargo xtask setup` builds once per machine under [`CACHE`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `cargo xtask setup` keeps the roots and images it builds.
pub const CACHE: &str = "/var/cache/sniffer-fixtures";

/// `../shared/fixtures/osv`: real PyPA and GitHub advisories.
pub fn osv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/osv")
}

/// The real Debian bookworm root (debootstrap with python3, pip packages in
/// /usr/local/lib/python3.11/dist-packages, an npm project in /srv/app);
/// `SNIFFER_BOOKWORM_ROOT` overrides where it is.
pub fn bookworm_root() -> PathBuf {
    let root = std::env::var_os("SNIFFER_BOOKWORM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(CACHE).join("bookworm"));
    assert!(root.join("var/lib/dpkg/status").is_file(), "{} is missing: run `cargo xtask setup`", root.display());
    root
}

/// The bookworm root as an OCI image archive (`IMAGE` once imported).
pub fn bookworm_oci() -> PathBuf {
    cached("bookworm.oci.tar")
}

/// A second image of the same root, with another digest (for runs of two images).
pub fn bookworm2_oci() -> PathBuf {
    cached("bookworm2.oci.tar")
}

/// A root of real jars from Debian's Java packages.
pub fn java_root() -> PathBuf {
    cached("java")
}

/// A root whose `usr/local/lib/python3/site-packages` holds pip, setuptools and wheel as
/// pip installs them (their vendored distributions, pkg_resources' test eggs).
pub fn python_root() -> PathBuf {
    cached("python")
}

fn cached(name: &str) -> PathBuf {
    let path = Path::new(CACHE).join(name);
    assert!(path.exists(), "{} is missing: run `cargo xtask setup`", path.display());
    path
}

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

/// A GitHub advisory copied into `vuln/tests/data/github` (see the README there).
pub fn github_advisory(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vuln/tests/data/github").join(format!("{id}.json"))
}
