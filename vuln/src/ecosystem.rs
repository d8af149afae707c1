//! OSV ecosystem names: which version scheme each uses, and how its package names compare.

use crate::version::Scheme;

/// The version scheme of an OSV ecosystem (`Debian:12` → dpkg), if we know it.
pub fn scheme_of(ecosystem: &str) -> Option<Scheme> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    Some(match base {
        "Debian" | "Ubuntu" => Scheme::Dpkg,
        "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
        "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" | "openEuler" => Scheme::Rpm,
        "PyPI" => Scheme::Pep440,
        "npm" | "crates.io" => Scheme::Semver,
        "Go" => Scheme::Go,
        "Maven" => Scheme::Maven,
        _ => return None,
    })
}

/// The ecosystem as the index keys it: Ubuntu's `:LTS` / `:Pro` qualifiers dropped, so
/// `Ubuntu:22.04:LTS` and an SBOM's `Ubuntu:22.04` meet.
pub fn normalize_ecosystem(ecosystem: &str) -> &str {
    ecosystem.strip_suffix(":LTS").or_else(|| ecosystem.strip_suffix(":Pro")).unwrap_or(ecosystem)
}

/// A package name as the index keys it: PEP 503 for PyPI, as written elsewhere.
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    match ecosystem {
        "PyPI" => sbom::purl::normalize_python(name),
        // Go module paths are case-sensitive, but SBOMs made by tools that follow the purl
        // spec's text lower-case them: matched without case, both find the record (Go
        // itself refuses two modules differing only in case in one build).
        "Go" => name.to_lowercase(),
        // npm: the same for the few packages named before names had to be lower case.
        "npm" => name.to_lowercase(),
        _ => name.to_string(),
    }
}

/// The index key of a package: `ecosystem NUL name`, both normalised.
pub fn key(ecosystem: &str, name: &str) -> String {
    let eco = normalize_ecosystem(ecosystem);
    format!("{eco}\0{}", normalize_name(eco, name))
}

/// The OSV ecosystem of a distribution release: `Debian:12`, `Ubuntu:22.04`,
/// `Alpine:v3.20`. `distro` is the os-release `ID`, `version` its `VERSION_ID`.
pub fn of_distro(distro: &str, version: &str) -> Option<String> {
    match distro {
        "debian" => Some(format!("Debian:{}", version.split('.').next().unwrap_or(version))),
        "ubuntu" => Some(format!("Ubuntu:{version}")),
        "alpine" => {
            let mut parts = version.split('.');
            let (major, minor) = (parts.next()?, parts.next()?);
            Some(format!("Alpine:v{major}.{minor}"))
        }
        "rocky" => Some(format!("Rocky Linux:{}", version.split('.').next().unwrap_or(version))),
        "almalinux" => Some(format!("AlmaLinux:{}", version.split('.').next().unwrap_or(version))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_releases() {
        assert_eq!(key("PyPI", "Jinja2"), "PyPI\0jinja2");
        assert_eq!(key("Ubuntu:22.04:LTS", "openssl"), key("Ubuntu:22.04", "openssl"));
        assert_eq!(of_distro("debian", "12").as_deref(), Some("Debian:12"));
        assert_eq!(of_distro("alpine", "3.20.3").as_deref(), Some("Alpine:v3.20"));
        assert_eq!(scheme_of("Debian:12"), Some(Scheme::Dpkg));
        assert_eq!(scheme_of("Hackage"), None);
    }
}
