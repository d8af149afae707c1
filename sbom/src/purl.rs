//! Package URLs (<https://github.com/package-url/purl-spec>).

use packageurl::PackageUrl;

use crate::model::{Distro, Source};

fn render(ty: &'static str, namespace: Option<&str>, name: &str, version: &str, qualifiers: &[(&str, &str)]) -> String {
    let build = || -> Result<String, packageurl::Error> {
        let mut purl = PackageUrl::new(ty, name)?;
        if let Some(ns) = namespace {
            purl.with_namespace(ns)?;
        }
        purl.with_version(version)?;
        for (k, v) in qualifiers {
            purl.add_qualifier(*k, *v)?;
        }
        Ok(purl.to_string())
    };
    // A name the spec's encoder refuses is kept readable rather than dropped.
    build().unwrap_or_else(|_| format!("pkg:{ty}/{name}@{version}"))
}

/// `pkg:deb/debian/curl@7.88.1-10?arch=amd64&distro=debian-12`, with `upstream` naming the
/// source package and its version when either differs.
pub fn deb(distro: Option<&Distro>, name: &str, version: &str, arch: Option<&str>, source: Option<&Source>) -> String {
    // A binNMU (`1.2-3+b1` built from source `1.2-3`) differs in version only: Debian's
    // advisories still name the source version, so it is said too.
    let upstream =
        source.filter(|s| s.name != name || s.version != version).map(|s| format!("{}@{}", s.name, s.version));
    os("deb", "debian", distro, name, version, arch, upstream.as_deref().map(|u| ("upstream", u)))
}

/// A distribution package's URL: the distro's id as namespace (`default` without one),
/// `arch`, `distro` and one more qualifier where the type has one.
fn os(
    ty: &'static str,
    default: &str,
    distro: Option<&Distro>,
    name: &str,
    version: &str,
    arch: Option<&str>,
    extra: Option<(&str, &str)>,
) -> String {
    let namespace = distro.map(|d| d.id.as_str()).unwrap_or(default);
    let distro_q = distro_qualifier(distro);
    let q: Vec<(&str, &str)> =
        [arch.map(|a| ("arch", a)), distro_q.as_deref().map(|d| ("distro", d)), extra].into_iter().flatten().collect();
    render(ty, Some(namespace), name, version, &q)
}

/// `pkg:pypi/requests@2.25.0`: names normalised as PEP 503 says (lower case, `-`).
pub fn pypi(name: &str, version: &str) -> String {
    render("pypi", None, &normalize_python(name), version, &[])
}

/// PEP 503 normalisation: runs of `-`, `_`, `.` become `-`, lower case.
pub fn normalize_python(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// `pkg:npm/%40babel/core@7.0.0` for scoped names, `pkg:npm/lodash@4.17.15` otherwise,
/// case kept: the registry still serves packages named before names had to be lower case
/// (`JSONStream`), and advisories name them as they are.
pub fn npm(name: &str, version: &str) -> String {
    let path = match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, bare)) => format!("{}/{}", percent_encode(&format!("@{scope}")), percent_encode(bare)),
        None => percent_encode(name),
    };
    format!("pkg:npm/{path}@{}", percent_encode(version))
}

/// The `distro` qualifier: `debian-12`, `alpine-3.20.1`, `fedora-40`.
fn distro_qualifier(distro: Option<&Distro>) -> Option<String> {
    distro.map(|d| match &d.version_id {
        Some(v) => format!("{}-{v}", d.id),
        None => d.id.clone(),
    })
}

/// `pkg:rpm/fedora/curl@8.6.0-8.fc40?arch=x86_64&distro=fedora-40`: `version-release`,
/// and the epoch, when there is one, as the `epoch` qualifier (as the purl spec says).
pub fn rpm(
    distro: Option<&Distro>,
    name: &str,
    version_release: &str,
    epoch: Option<u32>,
    arch: Option<&str>,
) -> String {
    let epoch = epoch.filter(|&e| e > 0).map(|e| e.to_string());
    os("rpm", "redhat", distro, name, version_release, arch, epoch.as_deref().map(|e| ("epoch", e)))
}

/// `pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4`.
pub fn apk(distro: Option<&Distro>, name: &str, version: &str, arch: Option<&str>) -> String {
    os("apk", "alpine", distro, name, version, arch, None)
}

/// `pkg:golang/github.com/ProtonMail/go-crypto@v1.2.0`: the module path as it is, case
/// and all. The purl spec's text says to lower-case a golang namespace (and the packageurl
/// crate does), but Go module paths are case-sensitive, OSV's Go records name them
/// exactly, and Syft keeps the case too: lower-cased, `ProtonMail` would match nothing.
pub fn golang(module: &str, version: &str) -> String {
    let path: Vec<String> = module.split('/').map(percent_encode).collect();
    format!("pkg:golang/{}@{}", path.join("/"), percent_encode(version))
}

/// Percent-encodes all but the purl spec's unencoded characters (`A-Za-z0-9.-_~`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:generic/oracle/openjdk@17.0.15%2B6`: software no package type covers.
pub fn generic(namespace: Option<&str>, name: &str, version: &str) -> String {
    render("generic", namespace, name, version, &[])
}

/// `pkg:maven/org.apache.commons/commons-lang3@3.12.0`.
pub fn maven(group: Option<&str>, artifact: &str, version: &str) -> String {
    render("maven", group, artifact, version, &[])
}

/// `pkg:cargo/serde@1.0.200`.
pub fn cargo(name: &str, version: &str) -> String {
    render("cargo", None, name, version, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_follow_the_spec() {
        let d = Distro { id: "debian".into(), version_id: Some("12".into()), pretty_name: None };
        let src = Source { name: "glibc".into(), version: "2.36-9".into() };
        assert_eq!(
            deb(Some(&d), "libc6", "2.36-9", Some("amd64"), Some(&src)),
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc%402.36-9"
        );
        let binnmu = Source { name: "zlib1g".into(), version: "1:1.2.13.dfsg-1".into() };
        assert_eq!(
            deb(Some(&d), "zlib1g", "1:1.2.13.dfsg-1+b1", None, Some(&binnmu)),
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1%2Bb1?distro=debian-12&upstream=zlib1g%401:1.2.13.dfsg-1"
        );
        let same = Source { name: "curl".into(), version: "7.88.1-10".into() };
        assert_eq!(
            deb(Some(&d), "curl", "7.88.1-10", None, Some(&same)),
            "pkg:deb/debian/curl@7.88.1-10?distro=debian-12"
        );
        assert_eq!(pypi("Jinja2", "2.11.2"), "pkg:pypi/jinja2@2.11.2");
        assert_eq!(normalize_python("zope.interface__x"), "zope-interface-x");
        assert_eq!(npm("lodash", "4.17.15"), "pkg:npm/lodash@4.17.15");
        assert_eq!(npm("@babel/core", "7.0.0"), "pkg:npm/%40babel/core@7.0.0");
        assert_eq!(npm("JSONStream", "1.3.5"), "pkg:npm/JSONStream@1.3.5");
        let f = Distro { id: "fedora".into(), version_id: Some("40".into()), pretty_name: None };
        assert_eq!(
            rpm(Some(&f), "curl", "8.6.0-8.fc40", None, Some("x86_64")),
            "pkg:rpm/fedora/curl@8.6.0-8.fc40?arch=x86_64&distro=fedora-40"
        );
        assert_eq!(rpm(Some(&f), "x", "1-2", Some(3), None), "pkg:rpm/fedora/x@1-2?distro=fedora-40&epoch=3");
        let a = Distro { id: "alpine".into(), version_id: Some("3.18.4".into()), pretty_name: None };
        assert_eq!(
            apk(Some(&a), "musl", "1.2.4-r2", Some("x86_64")),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4"
        );
        assert_eq!(golang("github.com/pkg/errors", "v0.9.1"), "pkg:golang/github.com/pkg/errors@v0.9.1");
        assert_eq!(golang("stdlib", "1.19.8"), "pkg:golang/stdlib@1.19.8");
        assert_eq!(
            golang("github.com/ProtonMail/go-crypto", "v0.0.0+incompatible"),
            "pkg:golang/github.com/ProtonMail/go-crypto@v0.0.0%2Bincompatible"
        );
        assert_eq!(
            maven(Some("org.apache.commons"), "commons-lang3", "3.12.0"),
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
        );
        assert_eq!(cargo("serde", "1.0.200"), "pkg:cargo/serde@1.0.200");
    }
}
