//! SARIF 2.1.0, for code-scanning dashboards: one rule per vulnerability, one result per
//! finding. Findings SBOM' shows never ran are `note`s, marked suppressed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Context, NOT_IN_EXECUTE_PATH};
use crate::matching::ScanReport;
use crate::reach::State;
use crate::severity::Rating;

pub fn sarif(report: &ScanReport, ctx: &Context) -> Value {
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for f in &report.findings {
        rules.entry(f.id.as_str()).or_insert_with(|| {
            let mut r = json!({
                "id": f.id,
                "shortDescription": {"text": f.summary.clone().unwrap_or_else(|| f.id.clone())},
                "helpUri": format!("https://osv.dev/vulnerability/{}", f.id),
            });
            if let Some(score) = f.severity.score {
                r["properties"] = json!({"security-severity": format!("{score:.1}")});
            }
            r
        });
        let level = match (f.relevant, f.severity.rating) {
            (Some(false), _) => "note",
            (_, Rating::Critical | Rating::High) => "error",
            (_, Rating::Medium | Rating::Unknown) => "warning",
            _ => "note",
        };
        let mut text = format!("{} {} is affected by {}", f.package.name, f.package.version, f.id);
        if !f.fixed.is_empty() {
            text.push_str(&format!("; fixed in {}", f.fixed.join(", ")));
        }
        let mut result = json!({
            "ruleId": f.id,
            "level": level,
            "message": {"text": text},
            "locations": [{"logicalLocations": [{"name": f.package.purl, "kind": "package"}]}],
            "properties": {"relevant": f.relevant, "aliases": f.aliases},
        });
        if let Some(r) = &f.reachability {
            result["properties"]["reachability"] = json!(r);
            if let Some(State::NotPresent) = f.state() {
                result["suppressions"] =
                    json!([{"kind": "external", "justification": format!("vulnerable code not present: {}", r.why)}]);
            }
        }
        if f.relevant == Some(false) && f.state() != Some(State::NotPresent) {
            result["suppressions"] = json!([{"kind": "external", "justification": NOT_IN_EXECUTE_PATH}]);
        }
        if f.relevant == Some(true) {
            result["properties"]["evidence"] = json!(f.evidence);
        }
        results.push(result);
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sniffer", "version": env!("CARGO_PKG_VERSION"),
                                 "informationUri": "https://osv.dev", "rules": rules.into_values().collect::<Vec<_>>()}},
            "results": results,
            "properties": {"sbom": ctx.sbom, "database": ctx.db},
        }],
    })
}
