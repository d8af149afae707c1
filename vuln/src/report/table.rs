//! The human table: relevant findings first, then by severity.

use std::fmt::Write;

use crate::matching::ScanReport;

pub fn render(report: &ScanReport) -> String {
    let runtime = report.runtime_complete.is_some();
    let reach = report.findings.iter().any(|f| f.reachability.is_some());
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED", "ALIASES", "SUMMARY"];
    if reach {
        header.insert(0, "REACHABILITY");
    }
    if runtime {
        header.insert(0, "RELEVANT");
    }
    for f in &report.findings {
        let mut row = vec![
            match f.severity.score {
                Some(s) => format!("{} {s:.1}", f.severity.rating.as_str()),
                None => f.severity.rating.as_str().to_string(),
            },
            f.id.clone(),
            f.package.name.clone(),
            f.package.version.clone(),
            if f.fixed.is_empty() { "-".into() } else { f.fixed.join(", ") },
            if f.aliases.is_empty() { "-".into() } else { f.aliases.join(", ") },
            f.summary.as_deref().map(|s| s.chars().take(60).collect()).unwrap_or_default(),
        ];
        if reach {
            row.insert(0, f.state().map_or("-", crate::reach::State::as_str).to_string());
        }
        if let Some(r) = f.relevant {
            row.insert(0, if r { "yes".into() } else { "no".into() });
        }
        // Names and versions come from images, summaries from a mirror: neither may drive
        // the terminal.
        rows.push(row.iter().map(|c| sbom::text::clean(c).into_owned()).collect());
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let last = cells.len() - 1;
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                let _ = write!(out, "{c}");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(&mut out, &header.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    for r in &rows {
        line(&mut out, r);
    }
    let relevant = report.findings.iter().filter(|f| f.relevant == Some(true)).count();
    let count = |s: crate::reach::State| report.findings.iter().filter(|f| f.state() == Some(s)).count();
    let _ = write!(out, "\n{} findings in {} packages", report.findings.len(), report.packages);
    if runtime {
        let _ = write!(out, "; {relevant} in packages the workload used");
        let (called, not_called) = (count(crate::reach::State::Called), count(crate::reach::State::NotCalled));
        if called + not_called > 0 {
            let _ = write!(out, " ({called} with a vulnerable function called, {not_called} linked and never called)");
        }
        if report.runtime_complete == Some(false) {
            out.push_str(
                " (SBOM' incomplete: events were lost or file ownership was approximate; relevance may be understated)",
            );
        }
    }
    let absent = count(crate::reach::State::NotPresent);
    if absent > 0 {
        let _ = write!(out, "; {absent} whose vulnerable code is not in the binary");
    }
    out.push('\n');
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {}", sbom::text::clean(w));
    }
    out.push_str(&ran(report));
    out.push('\n');
    out
}

/// The table's last line: how many findings are in code that ran (called, loaded or
/// opened), or that no SBOM' says so.
pub fn ran(report: &ScanReport) -> String {
    let total = report.findings.len();
    if report.runtime_complete.is_none() {
        return format!("{total} findings; which are in code that ran is not known without an SBOM'");
    }
    let ran = report.findings.iter().filter(|f| f.state().is_some_and(|s| s.ran())).count();
    format!("{ran} of {total} findings are in code that ran")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(states: &[Option<&str>], runtime: bool) -> ScanReport {
        let findings: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                let mut f = serde_json::json!({
                    "id": "X", "aliases": [], "severity": {"rating": "high"}, "fixed": [],
                    "package": {"name": "p", "version": "1", "purl": "pkg:pypi/p@1", "ecosystem": "PyPI"},
                });
                if let Some(s) = s {
                    f["reachability"] = serde_json::json!({"state": s, "why": ""});
                }
                f
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "packages": 1, "findings": findings, "warnings": [],
            "filtered_complete": if runtime { serde_json::json!(true) } else { serde_json::Value::Null },
        }))
        .unwrap()
    }

    #[test]
    fn the_table_ends_with_how_many_findings_are_in_code_that_ran() {
        let r = report(&[Some("called"), Some("opened"), Some("unknown"), Some("not_opened")], true);
        assert_eq!(render(&r).lines().last().unwrap(), "2 of 4 findings are in code that ran");
        let r = report(&[None, None], false);
        assert_eq!(
            render(&r).lines().last().unwrap(),
            "2 findings; which are in code that ran is not known without an SBOM'"
        );
    }
}
