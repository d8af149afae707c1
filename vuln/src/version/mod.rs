//! Version schemes: how each ecosystem orders its versions. OSV ranges are evaluated with
//! the scheme of the affected package's ecosystem (ECOSYSTEM ranges) or SemVer (SEMVER).

mod apk;
pub use rpm::vercmp as rpm_vercmp;
mod maven;
mod rpm;

use std::cmp::Ordering;

/// An ordering of version strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`), via the `debversion` crate.
    Dpkg,
    /// Alpine (`apk version -t`).
    Apk,
    /// Red Hat family (`rpmvercmp` on epoch:version-release).
    Rpm,
    /// Python (PEP 440), via the `pep440_rs` crate.
    Pep440,
    /// Semantic Versioning 2.0 (npm, crates.io), via the `semver` crate; a leading `v` or
    /// `=` is tolerated, as npm does.
    Semver,
    /// Go modules: SemVer with a `v` prefix; pseudo-versions are SemVer pre-releases and
    /// `+incompatible` is build metadata, so both order correctly.
    Go,
    /// Maven (`ComparableVersion`).
    Maven,
}

/// A version string that does not parse in its scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{version:?} is not a valid {scheme:?} version: {reason}")]
pub struct VersionError {
    /// The scheme.
    pub scheme: Scheme,
    /// The string.
    pub version: String,
    /// Why.
    pub reason: String,
}

/// A parsed version; compare only versions of the same scheme.
#[derive(Debug, Clone)]
pub enum Version {
    /// Debian.
    Dpkg(debversion::Version),
    /// Alpine.
    Apk(apk::ApkVersion),
    /// RPM.
    Rpm(rpm::Evr),
    /// PEP 440.
    Pep440(pep440_rs::Version),
    /// SemVer and Go.
    Semver(semver::Version),
    /// Maven.
    Maven(maven::MavenVersion),
}

impl Scheme {
    /// Parses `s` in this scheme.
    pub fn parse(self, s: &str) -> Result<Version, VersionError> {
        let err = |reason: String| VersionError { scheme: self, version: s.to_string(), reason };
        let s = s.trim();
        match self {
            Scheme::Dpkg => s.parse::<debversion::Version>().map(Version::Dpkg).map_err(|e| err(format!("{e:?}"))),
            Scheme::Apk => apk::ApkVersion::parse(s).map(Version::Apk).map_err(err),
            Scheme::Rpm => rpm::Evr::parse(s).map(Version::Rpm).map_err(err),
            Scheme::Pep440 => s.parse::<pep440_rs::Version>().map(Version::Pep440).map_err(|e| err(e.to_string())),
            Scheme::Semver | Scheme::Go => {
                let bare = s.trim_start_matches(['v', '=']);
                semver::Version::parse(bare).map(Version::Semver).map_err(|e| err(e.to_string()))
            }
            Scheme::Maven => Ok(Version::Maven(maven::MavenVersion::parse(s))),
        }
    }

    /// Compares two version strings in this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(self.parse(a)?.cmp_same(&self.parse(b)?))
    }
}

impl Version {
    /// Orders two versions of one scheme; versions of different schemes compare equal
    /// (callers never mix them: both sides are parsed with the same `Scheme`).
    pub fn cmp_same(&self, other: &Version) -> Ordering {
        match (self, other) {
            (Version::Dpkg(a), Version::Dpkg(b)) => a.cmp(b),
            (Version::Apk(a), Version::Apk(b)) => a.cmp(b),
            (Version::Rpm(a), Version::Rpm(b)) => a.cmp(b),
            (Version::Pep440(a), Version::Pep440(b)) => a.cmp(b),
            (Version::Semver(a), Version::Semver(b)) => a.cmp_precedence(b),
            (Version::Maven(a), Version::Maven(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}
