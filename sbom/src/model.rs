//! What an SBOM holds: packages, the distribution, and what could not be read.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The ecosystem a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// A Debian package (dpkg).
    Deb,
    /// A Python distribution (dist-info or egg-info).
    Python,
    /// An npm package (node_modules).
    Npm,
    /// An RPM package (rpmdb).
    Rpm,
    /// An Alpine package (apk).
    Apk,
    /// A Go module compiled into a binary (its build info), or the Go standard library.
    Go,
    /// A Java archive (Maven coordinates, or the manifest's).
    Java,
    /// A Rust crate compiled into a binary (cargo-auditable).
    Rust,
    /// A language runtime installed without a package manager (a JDK from a tarball):
    /// listed, not matched (no OSV ecosystem covers it).
    Runtime,
}

impl Ecosystem {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Apk => "apk",
            Ecosystem::Go => "go",
            Ecosystem::Java => "java",
            Ecosystem::Rust => "rust",
            Ecosystem::Runtime => "runtime",
        }
    }
}

/// The source package a binary package was built from (Debian advisories name these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Source package name.
    pub name: String,
    /// Source package version.
    pub version: String,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Name as its ecosystem spells it.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Ecosystem.
    pub kind: Ecosystem,
    /// Package URL (purl spec).
    pub purl: String,
    /// Source package, where the ecosystem has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Licences as recorded by the package.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub licenses: Vec<String>,
    /// Where it was found: the database or metadata file, inside the root.
    #[serde(with = "crate::path_text")]
    pub found_at: PathBuf,
    /// Files it owns, absolute inside the root, as its metadata lists them.
    #[serde(skip_serializing_if = "Vec::is_empty", default, with = "crate::path_text::many")]
    pub files: Vec<PathBuf>,
    /// The version is a pseudo-version made from a commit (a Go binary's VCS stamp), not a
    /// release anything in the package names: it sorts below every release.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub version_from_commit: bool,
}

/// A problem reading part of the root; that cataloger skipped it, the others carried on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The cataloger.
    pub cataloger: String,
    /// The file, inside the root.
    #[serde(with = "crate::path_text")]
    pub path: PathBuf,
    /// What was wrong.
    pub message: String,
}

/// The distribution, from os-release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` (debian, ubuntu, alpine, …).
    pub id: String,
    /// `VERSION_ID` (12, 22.04, 3.20.1, …).
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// The SBOM of one root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// The root it was computed from, on the host.
    #[serde(with = "crate::path_text")]
    pub root: PathBuf,
    /// Its distribution, when it says.
    pub distro: Option<Distro>,
    /// Every package found, sorted by kind, name, version.
    pub packages: Vec<Package>,
    /// What could not be read.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// A budget was spent (packages, files owned, archive work): packages may be missing;
    /// the warnings say which.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}
