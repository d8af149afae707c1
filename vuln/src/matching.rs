//! Matching subjects against the database with OSV semantics, and grouping the hits into
//! findings: one per vulnerability and package, whatever number of records name it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ecosystem;
use crate::input::{Relevance, Subject};
use crate::osv::{Range, Record};
use crate::reach::{Facts, Reachability, State};
use crate::severity::{self, SeverityInfo};
use crate::store::{Db, DbError, MatchAffected};
use crate::version::{Scheme, Version, VersionError};

/// The package a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingPackage {
    /// Name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// OSV ecosystem it was matched in.
    pub ecosystem: String,
    /// The source package advisories named, when it differs from the name (Debian).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One vulnerability in one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The advisory id chosen to name it.
    pub id: String,
    /// Every other id and alias naming it (CVE, GHSA, PYSEC, …), sorted.
    pub aliases: Vec<String>,
    /// One line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Severity.
    pub severity: SeverityInfo,
    /// The package.
    pub package: FindingPackage,
    /// Versions that fix it (above the installed one), sorted.
    pub fixed: Vec<String>,
    /// With an SBOM': whether the package is in it (its code ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevant: Option<bool>,
    /// With an SBOM': the opened files that put the package in it.
    #[serde(skip_serializing_if = "Vec::is_empty", default, with = "sbom::path_text::many")]
    pub evidence: Vec<PathBuf>,
    /// How far its code is known to have run (it decides `relevant`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reachability: Option<Reachability>,
}

impl Finding {
    /// Its reachability state, when one was decided.
    pub fn state(&self) -> Option<State> {
        self.reachability.as_ref().map(|r| r.state)
    }
}

/// Result of scanning one SBOM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Packages looked up.
    pub packages: usize,
    /// Findings, relevant first, then by severity.
    pub findings: Vec<Finding>,
    /// With an SBOM': false when the sniffer lost events or file ownership was approximate
    /// (relevance may be understated).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "filtered_complete")]
    pub runtime_complete: Option<bool>,
    /// What could not be matched, and why.
    pub warnings: Vec<String>,
}

/// Parsed event boundary: `introduced: "0"` is below every version.
enum Bound {
    Zero,
    At(Version),
}

fn parse_bound(scheme: Scheme, v: &str) -> Result<Bound, VersionError> {
    if v == "0" { Ok(Bound::Zero) } else { scheme.parse(v).map(Bound::At) }
}

fn cmp_bound(installed: &Version, b: &Bound) -> Ordering {
    match b {
        Bound::Zero => Ordering::Greater,
        Bound::At(v) => installed.cmp_same(v),
    }
}

/// Whether `installed` falls in `range`, by the OSV evaluation: events sorted by version,
/// the last one at or below the installed version decides; `limit`s cap the range.
fn in_range(range: &Range, scheme: Scheme, installed: &Version) -> Result<bool, VersionError> {
    #[derive(Clone, Copy, PartialEq)]
    enum K {
        Introduced,
        Fixed,
        LastAffected,
    }
    let mut events: Vec<(K, Bound)> = Vec::new();
    let mut limits = Vec::new();
    for e in &range.events {
        if let Some(v) = &e.introduced {
            events.push((K::Introduced, parse_bound(scheme, v)?));
        } else if let Some(v) = &e.fixed {
            events.push((K::Fixed, parse_bound(scheme, v)?));
        } else if let Some(v) = &e.last_affected {
            events.push((K::LastAffected, parse_bound(scheme, v)?));
        } else if let Some(v) = &e.limit {
            limits.push(parse_bound(scheme, v)?);
        }
    }
    events.sort_by(|a, b| match (&a.1, &b.1) {
        (Bound::Zero, Bound::Zero) => Ordering::Equal,
        (Bound::Zero, _) => Ordering::Less,
        (_, Bound::Zero) => Ordering::Greater,
        (Bound::At(x), Bound::At(y)) => x.cmp_same(y),
    });
    let mut affected = false;
    for (k, b) in &events {
        let ord = cmp_bound(installed, b);
        match k {
            K::Introduced if ord != Ordering::Less => affected = true,
            K::Fixed if ord != Ordering::Less => affected = false,
            K::LastAffected if ord == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    if affected && !limits.is_empty() {
        affected = limits.iter().any(|l| cmp_bound(installed, l) == Ordering::Less);
    }
    Ok(affected)
}

/// Whether one `affected` entry's ranges cover the installed version; if so, the fixed
/// versions above it that they name.
fn check(
    affected: &MatchAffected,
    eco_scheme: Scheme,
    raw: &str,
    installed: &Version,
) -> Result<Option<Vec<String>>, VersionError> {
    let mut hit = false;
    let mut fixed = Vec::new();
    for range in &affected.ranges {
        let scheme = match range.kind.as_str() {
            "ECOSYSTEM" => eco_scheme,
            // SEMVER ranges are SemVer whatever the ecosystem (Go keeps its `v`).
            "SEMVER" if eco_scheme == Scheme::Go => Scheme::Go,
            "SEMVER" => Scheme::Semver,
            _ => continue,
        };
        let installed_here;
        let installed = if scheme == eco_scheme {
            installed
        } else {
            installed_here = scheme.parse(raw)?;
            &installed_here
        };
        if in_range(range, scheme, installed)? {
            hit = true;
            for f in range.events.iter().filter_map(|e| e.fixed.as_deref()) {
                if scheme.parse(f).is_ok_and(|fv| fv.cmp_same(installed) == Ordering::Greater) {
                    fixed.push(f.to_string());
                }
            }
        }
    }
    Ok(hit.then_some(fixed))
}

/// Scans subjects against the database. `relevance` is SBOM' when one is given.
pub fn scan(db: &Db, subjects: &[Subject], relevance: Option<&Relevance>) -> Result<ScanReport, DbError> {
    scan_with(db, subjects, relevance, &Facts::default())
}

/// [`scan`], with what is known below the file (function tables, calls) deciding each
/// finding's reachability.
pub fn scan_with(
    db: &Db,
    subjects: &[Subject],
    relevance: Option<&Relevance>,
    facts: &Facts,
) -> Result<ScanReport, DbError> {
    let mut report = scan_files(db, subjects, relevance)?;
    crate::reach::decide(&mut report, facts);
    Ok(report)
}

fn scan_files(db: &Db, subjects: &[Subject], relevance: Option<&Relevance>) -> Result<ScanReport, DbError> {
    let mut findings = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = BTreeSet::new();
    for s in subjects {
        // The same package listed twice (two SBOM entries) is looked up once.
        if !seen.insert((s.purl.clone(), s.match_name.clone(), s.match_version.clone())) {
            continue;
        }
        let Some(eco) = s.ecosystem.as_deref() else {
            warnings.push(format!("{}: unknown distribution release, not matched", s.purl));
            continue;
        };
        let Some(scheme) = ecosystem::scheme_of(eco) else {
            warnings.push(format!("{}: ecosystem {eco} has no version scheme here, not matched", s.purl));
            continue;
        };
        // Go's word for a module built from its own tree, whose version nothing says.
        if s.match_version == "(devel)" {
            warnings.push(format!("{}: no version known (built from source: (devel)), not matched", s.purl));
            continue;
        }
        let installed = match scheme.parse(&s.match_version) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(format!("{}: {e}", s.purl));
                continue;
            }
        };
        let mut hits: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in db.candidates(eco, &s.match_name)? {
            if db.lists_version(eco, &s.match_name, &entry.id, &s.match_version)? {
                hits.entry(entry.id.clone()).or_default();
            }
            for a in &entry.affected {
                match check(a, scheme, &s.match_version, &installed) {
                    Ok(Some(fixed)) => hits.entry(entry.id.clone()).or_default().extend(fixed),
                    Ok(None) => {}
                    Err(e) => warnings.push(format!("{} in {}: {e}", s.purl, entry.id)),
                }
            }
        }
        let mut records = Vec::new();
        for id in hits.keys() {
            if let Some(r) = db.summary(id)? {
                records.push(r);
            }
        }
        let before = findings.len();
        for group in group_by_alias(&records) {
            let mut fixed: Vec<String> = group.iter().flat_map(|r| hits[&r.id].iter().cloned()).collect();
            fixed.sort_by(|a, b| scheme.compare(a, b).unwrap_or(Ordering::Equal));
            fixed.dedup();
            let severity = severity_of(db, &group)?;
            findings.push(finding(s, eco, &group, fixed, severity, relevance));
        }
        // Matched all the same (it may be as old as it sorts), but never silently.
        let rest_on_it = findings.len() - before;
        if s.from_commit && rest_on_it > 0 {
            warnings.push(format!(
                "{}: version {} is made from a commit (nothing in the binary names a release), and sorts below every \
                 release: {rest_on_it} findings rest on it; check them against that commit",
                s.purl, s.match_version
            ));
        }
    }
    findings.sort_by(order);
    Ok(ScanReport { packages: seen.len(), findings, runtime_complete: relevance.map(|r| r.complete), warnings })
}

/// Most aliases of one vulnerability looked up for a rating (real records name two or three).
const MAX_ALIAS_LOOKUPS: usize = 8;

/// The group's own rating; where it has none, the rating of the records it names as aliases
/// that the database holds without their matching (a PyPA record's GitHub advisory, say).
fn severity_of(db: &Db, group: &[&Record]) -> Result<SeverityInfo, DbError> {
    let own = severity::of_records(group.iter().copied());
    if own.rating != severity::Rating::Unknown {
        return Ok(own);
    }
    let known: BTreeSet<&str> = group.iter().map(|r| r.id.as_str()).collect();
    let wanted: BTreeSet<&str> =
        group.iter().flat_map(|r| r.aliases.iter().map(String::as_str)).filter(|a| !known.contains(a)).collect();
    let mut aliases = Vec::new();
    for id in wanted.into_iter().take(MAX_ALIAS_LOOKUPS) {
        // A withdrawn advisory no longer stands behind its rating.
        if let Some(r) = db.summary(id)?.filter(|r| r.withdrawn.is_none()) {
            aliases.push(r);
        }
    }
    Ok(severity::of_records_and_aliases(group.iter().copied(), aliases.iter()))
}

/// Records naming the same vulnerability (sharing an id or alias) grouped together.
fn group_by_alias(records: &[Record]) -> Vec<Vec<&Record>> {
    let mut groups: Vec<(BTreeSet<&str>, Vec<&Record>)> = Vec::new();
    for r in records {
        let ids: BTreeSet<&str> = r.ids().collect();
        let mut merged = (ids, vec![r]);
        let mut i = 0;
        while i < groups.len() {
            if groups[i].0.intersection(&merged.0).next().is_some() {
                let (ids, rs) = groups.swap_remove(i);
                merged.0.extend(ids);
                merged.1.extend(rs);
            } else {
                i += 1;
            }
        }
        groups.push(merged);
    }
    groups.into_iter().map(|(_, rs)| rs).collect()
}

fn finding(
    s: &Subject,
    eco: &str,
    group: &[&Record],
    fixed: Vec<String>,
    severity: SeverityInfo,
    relevance: Option<&Relevance>,
) -> Finding {
    let id = group.iter().map(|r| r.id.as_str()).min().unwrap_or_default().to_string();
    let aliases: BTreeSet<String> =
        group.iter().flat_map(|r| r.ids()).filter(|i| *i != id).map(str::to_string).collect();
    let summary = group.iter().find_map(|r| r.summary.clone()).or_else(|| {
        group.iter().find_map(|r| r.details.as_deref()).map(|d| {
            let line = d.lines().next().unwrap_or_default();
            if line.chars().count() > 160 {
                format!("{}…", line.chars().take(160).collect::<String>())
            } else {
                line.to_string()
            }
        })
    });
    let evidence = relevance.and_then(|r| r.of(s)).map(<[PathBuf]>::to_vec);
    Finding {
        id,
        aliases: aliases.into_iter().collect(),
        summary,
        severity,
        package: FindingPackage {
            name: s.name.clone(),
            version: s.version.clone(),
            purl: s.purl.clone(),
            ecosystem: eco.to_string(),
            source: (s.match_name != s.name).then(|| s.match_name.clone()),
        },
        fixed,
        relevant: relevance.map(|_| evidence.is_some()),
        evidence: evidence.unwrap_or_default(),
        reachability: None,
    }
}

/// Relevant first (called and loaded before opened), then most severe, then by package and
/// id.
pub(crate) fn order(a: &Finding, b: &Finding) -> Ordering {
    b.relevant
        .cmp(&a.relevant)
        .then_with(|| a.state().map_or(u8::MAX, State::rank).cmp(&b.state().map_or(u8::MAX, State::rank)))
        .then(b.severity.rating.cmp(&a.severity.rating))
        .then_with(|| b.severity.score.partial_cmp(&a.severity.score).unwrap_or(Ordering::Equal))
        .then_with(|| a.package.name.cmp(&b.package.name))
        .then_with(|| a.id.cmp(&b.id))
}
