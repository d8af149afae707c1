//! `sniffer scan`: an SBOM file against the offline vulnerability database.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::DbArg;

/// What `sniffer scan` was asked.
pub(super) struct ScanArgs {
    pub sbom_path: PathBuf,
    pub runtime: Option<PathBuf>,
    pub db: DbArg,
    pub format: vuln::report::Format,
    pub fail_on: Option<vuln::severity::Rating>,
    pub output: Option<PathBuf>,
    pub root: Option<PathBuf>,
}

pub(super) fn scan(args: ScanArgs) -> anyhow::Result<u8> {
    let ScanArgs { sbom_path, runtime, db, format, fail_on, output, root } = args;
    let input = vuln::input::read(&sbom_path)?;
    let (relevance, calls) = match &runtime {
        Some(path) => {
            let f = vuln::input::read(path)?;
            let relevance = f
                .relevance
                .with_context(|| format!("{}: not an SBOM' (no package carries evidence of use)", path.display()))?;
            (Some(relevance), f.calls)
        }
        None => (input.relevance.clone(), input.calls.clone()),
    };
    let database = vuln::Db::open(&db.path)?;
    let mut facts = vuln::reach::Facts { calls, ..Default::default() };
    let mut warnings = input.warnings;
    if facts.calls.as_ref().is_some_and(|c| c.class_probe.is_some()) {
        // Classes map to the archives our own SBOM found packages in.
        match native(&sbom_path) {
            Ok(doc) => facts.java = vuln::javacode::facts(&doc, facts.calls.as_ref().expect("checked")),
            Err(e) => warnings.push(format!("classes defined are not used: {e:#}")),
        }
    }
    if let Some(root) = &root {
        let outcome = go_facts(&database, &sbom_path, root)?;
        warnings.extend(outcome.warnings);
        facts.go = outcome.facts;
    }
    let mut report = vuln::scan_with(&database, &input.subjects, relevance.as_ref(), &facts)?;
    report.warnings.splice(0..0, warnings);
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

/// Our own SBOM, read again as what it is (packages with where they were found and the
/// files they own).
fn native(sbom_path: &Path) -> anyhow::Result<sbom::Sbom> {
    let text = std::fs::read(sbom_path).with_context(|| format!("reading {}", sbom_path.display()))?;
    serde_json::from_slice(&text).with_context(|| {
        format!("{}: not sniffer's own SBOM (it says where each package was found)", sbom_path.display())
    })
}

/// What the Go binaries under `root` link of the advisories the SBOM's Go modules have.
fn go_facts(db: &vuln::Db, sbom_path: &Path, root: &Path) -> anyhow::Result<vuln::gocode::Outcome> {
    let sbom = native(sbom_path)
        .context("--root needs sniffer's own SBOM (it lists the binaries that hold each Go module)")?;
    let root_fs = sbom::rootfs::Root::open(root).with_context(|| format!("opening the root {}", root.display()))?;
    Ok(vuln::gocode::facts(db, &sbom, &root_fs, vuln::gocode::Limits::default())?)
}
