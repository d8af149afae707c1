//! Reading SBOMs to scan: ours (native JSON, and SBOM' as `sniffer` writes it), CycloneDX
//! and SPDX JSON from other tools (Syft). Every package becomes a [`Subject`] through its
//! package URL, so all formats meet in one place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use crate::ecosystem;

/// One package to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Name as the SBOM gives it.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// OSV ecosystem (`PyPI`, `Debian:12`), when known.
    pub ecosystem: Option<String>,
    /// The name advisories use: the source package for Debian, the name otherwise.
    pub match_name: String,
    /// The version advisories compare: the source version for Debian.
    pub match_version: String,
    /// The version is a pseudo-version made from a commit, not a release (our SBOMs say).
    pub from_commit: bool,
}

/// An SBOM read for scanning.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Which format it was: `sniffer`, `sniffer-filtered`, `cyclonedx`, `spdx`.
    pub format: &'static str,
    /// Its packages.
    pub subjects: Vec<Subject>,
    /// What SBOM' says about use, when the input is one.
    pub relevance: Option<Relevance>,
    /// What SBOM' says ran below the file (our own SBOM' only), when probes ran.
    pub calls: Option<sbom::calls::Calls>,
    /// Packages that could not be turned into subjects, and why.
    pub warnings: Vec<String>,
}

/// SBOM': packages the workload used, with the files that show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relevance {
    /// Purl without qualifiers → opened files owned by that package.
    pub evidence: HashMap<String, Vec<PathBuf>>,
    /// False when the sniffer lost events: a package may be missing from SBOM'.
    pub complete: bool,
}

impl Relevance {
    /// The evidence for a subject, if it is in SBOM'.
    pub fn of(&self, subject: &Subject) -> Option<&[PathBuf]> {
        self.evidence.get(&purl_key(&subject.purl)).map(Vec::as_slice)
    }
}

/// Why an SBOM could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Unreadable file.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON, or not a format we know.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The purl without qualifiers and subpath: `pkg:type/ns/name@version`, for joining SBOM
/// and SBOM' made by different tools.
pub fn purl_key(purl: &str) -> String {
    let s = purl.split(['?', '#']).next().unwrap_or(purl);
    s.to_string()
}

/// Reads an SBOM file in any supported format.
pub fn read(path: &Path) -> Result<Input, InputError> {
    let bytes = std::fs::read(path).map_err(|e| InputError::Io { path: path.to_path_buf(), source: e })?;
    let fmt = |message: String| InputError::Format { path: path.to_path_buf(), message };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| fmt(format!("not JSON: {e}")))?;
    parse(&value).map_err(fmt)
}

/// Parses an SBOM already read as JSON.
pub fn parse(value: &serde_json::Value) -> Result<Input, String> {
    let mut input = Input::default();
    if value.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX") {
        input.format = "cyclonedx";
        let mut relevance = Relevance { evidence: HashMap::new(), complete: true };
        fn walk(components: &serde_json::Value, out: &mut Vec<(String, Vec<PathBuf>)>) {
            for c in components.as_array().into_iter().flatten() {
                if let Some(p) = c.get("purl").and_then(|p| p.as_str()) {
                    let evidence = c
                        .pointer("/evidence/occurrences")
                        .and_then(|o| o.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o.get("location").and_then(|l| l.as_str()).map(PathBuf::from))
                        .collect();
                    out.push((p.to_string(), evidence));
                }
                if let Some(nested) = c.get("components") {
                    walk(nested, out);
                }
            }
        }
        let mut found = Vec::new();
        walk(value.get("components").unwrap_or(&serde_json::Value::Null), &mut found);
        // SBOM' as we write it says whether it is complete; other tools' SBOMs with
        // evidence are taken as SBOM' too.
        let complete_prop = value
            .pointer("/metadata/properties")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "sniffer:complete")
            .map(|p| p["value"] != "false");
        let is_runtime = complete_prop.is_some() || found.iter().any(|(_, e)| !e.is_empty());
        for (purl, evidence) in found {
            if is_runtime {
                relevance.evidence.insert(purl_key(&purl), evidence);
            }
            push_purl(&mut input, &purl, None);
        }
        if is_runtime {
            relevance.complete = complete_prop.unwrap_or(true);
            input.relevance = Some(relevance);
        }
    } else if value.get("spdxVersion").is_some() {
        input.format = "spdx";
        let mut relevance = Relevance { evidence: HashMap::new(), complete: true };
        for p in value.get("packages").and_then(|p| p.as_array()).into_iter().flatten() {
            let evidence = p.get("annotations").and_then(|a| a.as_array()).into_iter().flatten().find_map(|a| {
                let comment = a.get("comment")?.as_str()?;
                let list = comment.strip_prefix(sbom::formats::SPDX_EVIDENCE)?;
                Some(list.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect::<Vec<_>>())
            });
            let purl = p
                .get("externalRefs")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
                .find(|r| r["referenceType"] == "purl")
                .and_then(|r| r["referenceLocator"].as_str());
            match purl {
                Some(purl) => {
                    if let Some(e) = evidence {
                        relevance.evidence.insert(purl_key(purl), e);
                    }
                    push_purl(&mut input, purl, None)
                }
                None => {
                    let name = p.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                    // The document's own root package and files have no purl: not a warning.
                    if p.get("versionInfo").is_some() {
                        input.warnings.push(format!("package {name}: no purl, not matched"));
                    }
                }
            }
        }
        if !relevance.evidence.is_empty() {
            input.relevance = Some(relevance);
        }
    } else if let Some(packages) = value.get("packages").and_then(|p| p.as_array()) {
        if packages.first().is_some_and(|p| p.get("package").is_some()) || value.get("unmatched").is_some() {
            let runtime: sbom::index::RuntimeSbom =
                serde_json::from_value(value.clone()).map_err(|e| format!("not an SBOM' document: {e}"))?;
            input = of_runtime(&runtime);
        } else {
            let doc: sbom::Sbom =
                serde_json::from_value(value.clone()).map_err(|e| format!("not an SBOM document: {e}"))?;
            input = of_sbom(&doc);
        }
    } else {
        return Err("not an SBOM: expected CycloneDX, SPDX or sniffer JSON".into());
    }
    Ok(input)
}

/// Our SBOM, without a JSON round trip.
pub fn of_sbom(doc: &sbom::Sbom) -> Input {
    let mut input = Input { format: "sniffer", ..Default::default() };
    for p in &doc.packages {
        push_purl(&mut input, &p.purl, Some(p));
    }
    input
}

/// Our SBOM', without a JSON round trip: its packages, and their evidence as relevance.
pub fn of_runtime(runtime: &sbom::index::RuntimeSbom) -> Input {
    let mut input = Input { format: "sniffer-filtered", ..Default::default() };
    let mut relevance = Relevance { evidence: HashMap::new(), complete: runtime.complete };
    for p in &runtime.packages {
        relevance.evidence.insert(purl_key(&p.package.purl), p.evidence.clone());
        push_purl(&mut input, &p.package.purl, Some(&p.package));
    }
    input.relevance = Some(relevance);
    input.calls = runtime.calls.clone();
    input
}

fn push_purl(input: &mut Input, purl: &str, package: Option<&sbom::Package>) {
    match subject_of_purl(purl) {
        Ok(mut s) => {
            // Our own SBOMs carry the source package even when the purl does not say it.
            if let Some(src) = package.and_then(|p| p.source.as_ref())
                && s.ecosystem.as_deref().is_some_and(|e| e.starts_with("Debian") || e.starts_with("Ubuntu"))
            {
                s.match_name = src.name.clone();
                s.match_version = src.version.clone();
            }
            s.from_commit = package.is_some_and(|p| p.version_from_commit);
            input.subjects.push(s)
        }
        Err(e) => input.warnings.push(format!("{purl}: {e}")),
    }
}

/// A subject from a package URL. Qualifiers give what the URL path cannot: `distro` the
/// release (`debian-12`), `upstream` the Debian source package (`name` or `name@version`).
pub fn subject_of_purl(purl: &str) -> Result<Subject, String> {
    let p = PackageUrl::from_str(purl).map_err(|e| format!("not a package URL: {e}"))?;
    let version = p.version().ok_or("no version")?.to_string();
    let q = |k: &str| p.qualifiers().get(k).map(|v| v.to_string());
    let name = p.name().to_string();
    let (ecosystem, full_name) = match p.ty() {
        "deb" | "apk" | "rpm" => {
            let distro = q("distro");
            let ns = p.namespace().unwrap_or_default();
            let eco = distro.as_deref().and_then(|d| {
                // `debian-12`, `ubuntu-22.04`, `alpine-3.20.1`; Syft also writes `debian-bookworm`.
                let (id, ver) = d.split_once('-').unwrap_or((ns, d));
                ecosystem::of_distro(id, ver)
            });
            (eco, name.clone())
        }
        "pypi" => (Some("PyPI".to_string()), name.clone()),
        // The name as written (`@scope/name`): the packageurl crate lower-cases npm names.
        "npm" => (Some("npm".to_string()), path_of(purl, "npm").unwrap_or_else(|| name.clone())),
        // The module path as written: the packageurl crate lower-cases a golang namespace.
        "golang" => (Some("Go".to_string()), path_of(purl, "golang").unwrap_or_else(|| name.clone())),
        "maven" => (
            Some("Maven".to_string()),
            match p.namespace() {
                Some(ns) => format!("{ns}:{name}"),
                None => name.clone(),
            },
        ),
        "cargo" => (Some("crates.io".to_string()), name.clone()),
        other => return Err(format!("package type {other:?} is not matched")),
    };
    // rpm: the epoch is a qualifier in the URL and part of the version compared.
    let version = match q("epoch").filter(|e| p.ty() == "rpm" && e != "0") {
        Some(e) => format!("{e}:{version}"),
        None => version,
    };
    let (mut match_name, mut match_version) = (full_name.clone(), version.clone());
    if p.ty() == "deb"
        && let Some(up) = q("upstream")
    {
        match up.split_once('@') {
            Some((n, v)) => {
                match_name = n.to_string();
                match_version = v.to_string();
            }
            None => match_name = up,
        }
    }
    Ok(Subject {
        name: full_name,
        version,
        purl: purl.to_string(),
        ecosystem,
        match_name,
        match_version,
        from_commit: false,
    })
}

/// The namespace and name of a purl of type `ty` as written, case kept and percent-decoded:
/// `pkg:<ty>/` up to the version, qualifiers or subpath.
fn path_of(purl: &str, ty: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:")?.strip_prefix(ty)?.strip_prefix('/')?;
    let end = rest.find(['@', '?', '#']).unwrap_or(rest.len());
    let bytes = sbom::text::percent_decode(&rest[..end]);
    String::from_utf8(bytes).ok().filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_become_subjects() {
        let s = subject_of_purl("pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12&upstream=glibc")
            .unwrap();
        assert_eq!(s.ecosystem.as_deref(), Some("Debian:12"));
        assert_eq!((s.match_name.as_str(), s.match_version.as_str()), ("glibc", "2.36-9+deb12u10"));
        let s = subject_of_purl("pkg:npm/%40babel/core@7.0.0").unwrap();
        assert_eq!((s.ecosystem.as_deref(), s.match_name.as_str()), (Some("npm"), "@babel/core"));
        let s = subject_of_purl("pkg:apk/alpine/musl@1.2.5-r0?distro=alpine-3.20.3").unwrap();
        assert_eq!(s.ecosystem.as_deref(), Some("Alpine:v3.20"));
        assert!(subject_of_purl("pkg:pypi/requests").is_err());
        let s = subject_of_purl(
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1%2Bb1?distro=debian-12&upstream=zlib1g%401:1.2.13.dfsg-1",
        )
        .unwrap();
        assert_eq!((s.match_name.as_str(), s.match_version.as_str()), ("zlib1g", "1:1.2.13.dfsg-1"));
        let s = subject_of_purl("pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&epoch=1&distro=rhel-9").unwrap();
        assert_eq!(s.match_version, "1:3.0.7-27.el9");
        let s = subject_of_purl("pkg:golang/github.com/ProtonMail/go-crypto@v1.2.0").unwrap();
        assert_eq!(s.name, "github.com/ProtonMail/go-crypto");
        assert_eq!(subject_of_purl("pkg:npm/JSONStream@1.3.5").unwrap().name, "JSONStream");
        assert_eq!(subject_of_purl("pkg:npm/%40Azure/identity@4.2.0").unwrap().name, "@Azure/identity");
        let s = subject_of_purl("pkg:golang/stdlib@1.19.8").unwrap();
        assert_eq!((s.ecosystem.as_deref(), s.match_name.as_str()), (Some("Go"), "stdlib"));
        let s = subject_of_purl("pkg:maven/org.apache.commons/commons-lang3@3.12.0").unwrap();
        assert_eq!(
            (s.ecosystem.as_deref(), s.match_name.as_str()),
            (Some("Maven"), "org.apache.commons:commons-lang3")
        );
    }
}
