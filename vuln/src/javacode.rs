//! Which Maven packages had classes defined while an instance was learned: each class a JVM
//! defined comes with its code source (the jar, the jar inside a fat jar, or the directory
//! it came from), mapped here to the archive the SBOM found the package in (its
//! `found_at`: `/app/x.jar`, or `/app.jar!/BOOT-INF/lib/x.jar` for a nested one).
//!
//! Never "not loaded" without evidence: a code source that cannot be mapped, an application
//! CDS archive or AOT cache mapped (classes taken from it are never defined), a JVM that
//! was not probed or started before its probe, or classes defined without a code source that
//! are not the JVM's own generated ones: each leaves every Maven package at file level, and
//! says why.

use std::collections::{BTreeSet, HashMap};

use sbom::calls::{Calls, Defined};
use sbom::codesource::{Origin, origin};

/// Names the JVM gives classes it generates itself (reflection accessors, proxies, lambda
/// forms), which are defined without a code source and belong to no package.
fn generated(class: &str) -> bool {
    ["jdk/internal/reflect/Generated", "com/sun/proxy/", "jdk/proxy", "java/lang/invoke/"]
        .iter()
        .any(|p| class.starts_with(p))
        || class.contains("$Proxy")
        || class.contains("$$Lambda")
}

/// What the class probe says of one Maven package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JavaFact {
    /// Classes were defined from its archive: these (lines for the evidence).
    Loaded(Vec<String>),
    /// Its archive was seen, and no class was defined from it.
    NotLoaded,
}

/// The class probe's answer for an instance.
#[derive(Debug, Clone, Default)]
pub struct JavaOutcome {
    /// Per Maven package (purl without qualifiers).
    pub facts: HashMap<String, JavaFact>,
    /// Why no package is said not loaded, when that is so.
    pub fallback: Option<String>,
}

/// The class probe's answer: `calls` from the instance (its opened paths noted, see
/// [`Calls::note_opened`]) and the SBOM's Maven packages.
pub fn facts(sbom: &sbom::Sbom, calls: &Calls) -> JavaOutcome {
    let Some(probe) = &calls.class_probe else { return JavaOutcome::default() };
    let mut gaps: Vec<String> = probe.gaps.clone();
    let mut by_key: HashMap<String, Vec<&Defined>> = HashMap::new();
    for d in &calls.classes {
        match origin(&d.source) {
            Origin::Archive { key, .. } => {
                let known = sbom.packages.iter().any(|p| p.found_at.to_string_lossy() == key);
                // A path no package was found at, and not opened as is, may be another
                // name of a package's archive (a link): not mapped.
                if !known && !d.opened {
                    gaps.push(format!("classes came from {}, which maps to no archive the SBOM knows", d.source));
                }
                by_key.entry(key).or_default().push(d);
            }
            Origin::Directory | Origin::Jdk => {}
            Origin::None => {
                if let Some(c) = d.first.iter().find(|c| !generated(c)) {
                    gaps.push(format!("classes were defined without a code source ({c}, …)"));
                }
            }
            Origin::Unknown => gaps.push(format!("a code source that cannot be mapped: {}", d.source)),
        }
    }
    let mut out = JavaOutcome { fallback: gaps.first().cloned(), ..Default::default() };
    let mut seen = BTreeSet::new();
    for p in sbom.packages.iter().filter(|p| p.kind == sbom::Ecosystem::Java) {
        let purl = crate::input::purl_key(&p.purl);
        let key = p.found_at.to_string_lossy().into_owned();
        let loaded: Vec<String> = by_key
            .get(&key)
            .into_iter()
            .flatten()
            .flat_map(|d| {
                d.first
                    .iter()
                    .take(3)
                    .map(move |c| format!("class {c} defined from {} by pid {} ({})", d.source, d.pid, d.comm))
            })
            .collect();
        if !loaded.is_empty() {
            out.facts.insert(purl.clone(), JavaFact::Loaded(loaded));
            seen.insert(purl);
        } else if out.fallback.is_none() && !seen.contains(&purl) {
            out.facts.entry(purl).or_insert(JavaFact::NotLoaded);
        }
    }
    out
}
