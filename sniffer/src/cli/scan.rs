//! `sniffer scan`: an SBOM file against the offline vulnerability database.

use std::path::PathBuf;

use anyhow::Context;

use super::args::DbArg;

pub(super) fn scan(
    sbom_path: PathBuf,
    runtime: Option<PathBuf>,
    db: DbArg,
    format: vuln::report::Format,
    fail_on: Option<vuln::severity::Rating>,
    output: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let input = vuln::input::read(&sbom_path)?;
    let relevance =
        match &runtime {
            Some(path) => {
                let f = vuln::input::read(path)?;
                Some(f.relevance.with_context(|| {
                    format!("{}: not an SBOM' (no package carries evidence of use)", path.display())
                })?)
            }
            None => input.relevance.clone(),
        };
    let database = vuln::Db::open(&db.path)?;
    let mut report = vuln::scan(&database, &input.subjects, relevance.as_ref())?;
    report.warnings.splice(0..0, input.warnings);
    let ctx = vuln::report::Context {
        sbom: sbom_path.display().to_string(),
        runtime: runtime.as_ref().map(|p| p.display().to_string()),
        db: db.path.display().to_string(),
        db_updated_at: database.updated_at().ok().flatten(),
    };
    let text = vuln::report::render(&report, &ctx, format);
    match &output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    let failing = fail_on.map(|threshold| {
        report.findings.iter().filter(|f| f.relevant != Some(false) && f.severity.rating >= threshold).count()
    });
    match failing {
        Some(n) if n > 0 => {
            eprintln!("sniffer: {n} findings at or above {}", fail_on.map(|r| r.as_str()).unwrap_or_default());
            Ok(3)
        }
        _ => Ok(0),
    }
}
