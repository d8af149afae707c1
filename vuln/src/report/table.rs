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
    out
}
