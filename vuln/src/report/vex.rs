//! VEX documents: CycloneDX 1.6 (`vulnerabilities[].analysis`) and OpenVEX 0.2.0. A finding
//! whose package is not in SBOM' is `not_affected` because its code is not in the execute
//! path; one whose package is in it carries the opened files as evidence.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Context, NOT_IN_EXECUTE_PATH};
use crate::matching::{Finding, ScanReport};
use crate::reach::{Reachability, State};

fn evidence_text(f: &Finding) -> String {
    let files: Vec<String> = f.evidence.iter().take(20).map(|p| p.display().to_string()).collect();
    let more = f.evidence.len().saturating_sub(files.len());
    let mut s = format!("package in use: the workload opened {}", files.join(", "));
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

fn cvss_method(vector: &str) -> &'static str {
    if vector.starts_with("CVSS:4.0") {
        "CVSSv4"
    } else if vector.starts_with("CVSS:3.1") {
        "CVSSv31"
    } else if vector.starts_with("CVSS:3.0") {
        "CVSSv3"
    } else {
        "CVSSv2"
    }
}

/// CycloneDX 1.6 VEX.
pub fn cyclonedx(report: &ScanReport, ctx: &Context) -> Value {
    let mut components: BTreeMap<&str, Value> = BTreeMap::new();
    let mut vulns = Vec::new();
    for f in &report.findings {
        components.entry(f.package.purl.as_str()).or_insert_with(|| {
            json!({"type": "library", "bom-ref": f.package.purl, "name": f.package.name,
                   "version": f.package.version, "purl": f.package.purl})
        });
        let mut v = json!({
            "bom-ref": format!("{}/{}", f.id, f.package.purl),
            "id": f.id,
            "references": f.aliases.iter().map(|a| json!({"id": a, "source": {"name": source_of(a)}})).collect::<Vec<_>>(),
            "affects": [{"ref": f.package.purl}],
        });
        v["source"] = json!({"name": source_of(&f.id)});
        if let Some(s) = &f.summary {
            v["description"] = json!(s);
        }
        let mut rating = json!({"severity": f.severity.rating.as_str()});
        if let (Some(score), Some(vector)) = (f.severity.score, &f.severity.vector) {
            rating["score"] = json!(score);
            rating["method"] = json!(cvss_method(vector));
            rating["vector"] = json!(vector);
        }
        if let Some(from) = &f.severity.source {
            rating["source"] = json!({"name": format!("{} ({})", source_of(&from.record), from.record),
                                      "url": format!("https://osv.dev/vulnerability/{}", from.record)});
        }
        v["ratings"] = json!([rating]);
        if !f.fixed.is_empty() {
            v["recommendation"] = json!(format!("upgrade {} to {}", f.package.name, f.fixed.join(" or ")));
        }
        v["analysis"] = match &f.reachability {
            Some(r) => cyclonedx_analysis(f, r),
            None => match f.relevant {
                Some(false) => {
                    json!({"state": "not_affected", "justification": "code_not_reachable", "detail": NOT_IN_EXECUTE_PATH})
                }
                Some(true) => json!({"state": "exploitable", "detail": evidence_text(f)}),
                None => json!({"state": "in_triage", "detail": "no runtime data (no SBOM' given)"}),
            },
        };
        vulns.push(v);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid_v4()),
        "version": 1,
        "metadata": {
            "timestamp": sbom::time::Timestamp::now(),
            "tools": {"components": [{"type": "application", "name": "sniffer", "version": env!("CARGO_PKG_VERSION")}]},
            "properties": [{"name": "sniffer:sbom", "value": ctx.sbom},
                           {"name": "sniffer:database", "value": ctx.db}],
        },
        "components": components.into_values().collect::<Vec<_>>(),
        "vulnerabilities": vulns,
    })
}

/// OpenVEX 0.2.0.
pub fn openvex(report: &ScanReport, ctx: &Context) -> Value {
    let statements: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut s = json!({
                "vulnerability": {"name": super::display_name(f), "aliases": std::iter::once(&f.id).chain(&f.aliases)
                    .filter(|a| a.as_str() != super::display_name(f)).collect::<Vec<_>>()},
                "products": [{"@id": f.package.purl}],
            });
            if let Some(r) = &f.reachability {
                openvex_status(&mut s, f, r);
                return s;
            }
            match f.relevant {
                Some(false) => {
                    s["status"] = json!("not_affected");
                    s["justification"] = json!("vulnerable_code_not_in_execute_path");
                    s["impact_statement"] = json!(NOT_IN_EXECUTE_PATH);
                }
                Some(true) => {
                    s["status"] = json!("affected");
                    s["status_notes"] = json!(evidence_text(f));
                    s["action_statement"] = json!(if f.fixed.is_empty() {
                        "no fixed version known".to_string()
                    } else {
                        format!("upgrade {} to {}", f.package.name, f.fixed.join(" or "))
                    });
                }
                None => {
                    s["status"] = json!("under_investigation");
                    s["status_notes"] = json!("no runtime data (no SBOM' given)");
                }
            }
            s
        })
        .collect();
    json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": format!("urn:uuid:{}", uuid_v4()),
        "author": "sniffer",
        "timestamp": sbom::time::Timestamp::now(),
        "version": 1,
        "tooling": format!("sniffer {} ({})", env!("CARGO_PKG_VERSION"), ctx.sbom),
        "statements": statements,
    })
}

/// What a reachability state and its evidence say, in one text.
fn reach_text(f: &Finding, r: &Reachability) -> String {
    let mut s = format!("{}: {}", r.state.as_str(), r.why);
    if !r.evidence.is_empty() {
        s.push_str(&format!("; {}", r.evidence.join("; ")));
    } else if r.state == State::Opened && !f.evidence.is_empty() {
        s.push_str(&format!("; {}", evidence_text(f)));
    }
    s
}

/// CycloneDX's analysis of a finding whose reachability is known: `code_not_present` when
/// no vulnerable symbol is linked, `code_not_reachable` when it never ran while learned.
fn cyclonedx_analysis(f: &Finding, r: &Reachability) -> Value {
    match r.state {
        State::NotPresent => {
            json!({"state": "not_affected", "justification": "code_not_present", "detail": reach_text(f, r)})
        }
        State::NotCalled | State::NotLoaded | State::NotOpened => {
            json!({"state": "not_affected", "justification": "code_not_reachable", "detail": reach_text(f, r)})
        }
        State::Called | State::Loaded | State::Opened => json!({"state": "exploitable", "detail": reach_text(f, r)}),
        State::Unknown => json!({"state": "in_triage", "detail": reach_text(f, r)}),
    }
}

/// OpenVEX's status of such a finding: `vulnerable_code_not_present` when no vulnerable
/// symbol is linked, `vulnerable_code_not_in_execute_path` when it never ran while learned.
fn openvex_status(s: &mut Value, f: &Finding, r: &Reachability) {
    match r.state {
        State::NotPresent | State::NotCalled | State::NotLoaded | State::NotOpened => {
            s["status"] = json!("not_affected");
            s["justification"] = json!(if r.state == State::NotPresent {
                "vulnerable_code_not_present"
            } else {
                "vulnerable_code_not_in_execute_path"
            });
            s["impact_statement"] = json!(reach_text(f, r));
        }
        State::Called | State::Loaded | State::Opened => {
            s["status"] = json!("affected");
            s["status_notes"] = json!(reach_text(f, r));
            s["action_statement"] = json!(if f.fixed.is_empty() {
                "no fixed version known".to_string()
            } else {
                format!("upgrade {} to {}", f.package.name, f.fixed.join(" or "))
            });
        }
        State::Unknown => {
            s["status"] = json!("under_investigation");
            s["status_notes"] = json!(reach_text(f, r));
        }
    }
}

fn source_of(id: &str) -> &'static str {
    match id.split('-').next().unwrap_or_default() {
        "CVE" => "NVD",
        "GHSA" => "GitHub",
        "PYSEC" => "PyPA",
        "DSA" | "DLA" | "DEBIAN" => "Debian",
        "RUSTSEC" => "RustSec",
        "GO" => "Go",
        _ => "OSV",
    }
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}
