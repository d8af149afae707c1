//! What goes into an object, within its size budget. etcd refuses objects over about
//! 1.5 MiB (requests over 3 MiB never reach it); an image of thousands of packages or
//! findings would pass that. Lists are filled in order until [`LIST_BUDGET`] bytes of JSON,
//! the rest dropped with `truncated` set; counts are always exact.

use coordinator::model::{Report, Workload};
use serde::Serialize;

use crate::resources::{
    FindingEntry, ImageSbomSpec, PackageEntry, Phase, ReportBody, RuntimePackageEntry, RuntimeSbomSpec, Summary,
    WorkloadRefSpec,
};

/// Bytes of JSON one object's list may take. With names, labels and the other fields, an
/// object stays under 600 KiB: well under etcd's limit and the API server's.
pub const LIST_BUDGET: usize = 512 * 1024;
/// Files of evidence kept per package.
pub const EVIDENCE_KEPT: usize = 5;
/// Warnings kept, each cut to [`WARNING_CHARS`].
pub const WARNINGS_KEPT: usize = 20;
/// Characters kept of one warning.
pub const WARNING_CHARS: usize = 300;

/// Takes items in order while their JSON fits in `budget` bytes; says whether any were left.
fn within<T: Serialize>(items: impl Iterator<Item = T>, budget: usize) -> (Vec<T>, bool) {
    let mut used = 0;
    let mut kept = Vec::new();
    for item in items {
        // An item that does not encode is not kept (none of these types can fail).
        let size = serde_json::to_vec(&item).map_or(usize::MAX, |b| b.len() + 1);
        if used + size > budget {
            return (kept, true);
        }
        used += size;
        kept.push(item);
    }
    (kept, false)
}

/// The workload of an instance, as its objects name it.
pub fn workload_of(w: &Workload) -> WorkloadRefSpec {
    match (&w.owner, &w.k8s) {
        (Some(o), _) => WorkloadRefSpec { kind: o.kind.clone(), name: o.name.clone() },
        (None, Some(k)) => WorkloadRefSpec { kind: "Pod".into(), name: k.pod.clone() },
        (None, None) => WorkloadRefSpec { kind: "Container".into(), name: w.id.clone() },
    }
}

/// An image SBOM, ready, as computed by `node` (reserved at `claimed_at`).
pub fn image_sbom(sbom: &sbom::Sbom, image: &str, digest: &str, node: &str, claimed_at: &str) -> ImageSbomSpec {
    let entries = sbom.packages.iter().map(|p| PackageEntry {
        name: p.name.clone(),
        version: p.version.clone(),
        purl: p.purl.clone(),
        licenses: p.licenses.clone(),
        source: p.source.as_ref().map(|s| format!("{} {}", s.name, s.version)),
    });
    let (packages, truncated) = within(entries, LIST_BUDGET);
    ImageSbomSpec {
        image: image.to_string(),
        digest: digest.to_string(),
        phase: Phase::Ready,
        node: node.to_string(),
        claimed_at: claimed_at.to_string(),
        distro: sbom
            .distro
            .as_ref()
            .map(|d| format!("{} {}", d.id, d.version_id.as_deref().unwrap_or("")).trim().to_string()),
        packages,
        package_count: sbom.packages.len() as u64,
        truncated,
        incomplete: sbom.incomplete,
    }
}

fn cut(text: &str) -> String {
    sbom::text::bounded(text, WARNING_CHARS)
}

/// SBOM' of an instance of `w`.
pub fn runtime_sbom(runtime: &sbom::index::RuntimeSbom, w: &Workload, instance: &str) -> RuntimeSbomSpec {
    let entries = runtime.packages.iter().map(|r| RuntimePackageEntry {
        name: r.package.name.clone(),
        version: r.package.version.clone(),
        purl: r.package.purl.clone(),
        evidence: r.evidence.iter().take(EVIDENCE_KEPT).map(|p| cut(&sbom::path_text::encode(p))).collect(),
        evidence_count: r.evidence.len() as u64,
    });
    let (packages, truncated) = within(entries, LIST_BUDGET);
    RuntimeSbomSpec {
        instance: instance.to_string(),
        workload: workload_of(w),
        container: w.k8s.as_ref().map_or_else(|| w.id.clone(), |k| k.container.clone()),
        image: w.image.clone(),
        digest: w.digest.to_string(),
        packages,
        package_count: runtime.packages.len() as u64,
        unmatched: runtime.unmatched as u64,
        complete: runtime.complete,
        warnings: runtime.warnings.iter().take(WARNINGS_KEPT).map(|w| cut(w)).collect(),
        truncated,
    }
}

/// Counts by severity and relevance.
pub fn summary(findings: &[vuln::Finding]) -> Summary {
    let mut s = Summary { total: findings.len() as u64, ..Summary::default() };
    for f in findings {
        match f.severity.rating {
            vuln::severity::Rating::Critical => s.critical += 1,
            vuln::severity::Rating::High => s.high += 1,
            vuln::severity::Rating::Medium => s.medium += 1,
            vuln::severity::Rating::Low => s.low += 1,
            vuln::severity::Rating::None | vuln::severity::Rating::Unknown => s.unknown += 1,
        }
        if f.relevant == Some(true) {
            s.relevant += 1;
        }
        match f.state() {
            Some(vuln::reach::State::Called) => s.called += 1,
            Some(vuln::reach::State::NotPresent) => s.not_present += 1,
            _ => {}
        }
    }
    s
}

/// A report's scan (its findings come ordered relevant first, then by severity).
pub fn report_body(report: &Report) -> ReportBody {
    let entries = report.scan.findings.iter().map(|f| FindingEntry {
        id: f.id.clone(),
        package: f.package.name.clone(),
        version: f.package.version.clone(),
        purl: f.package.purl.clone(),
        severity: f.severity.rating.as_str().to_string(),
        fixed: f.fixed.clone(),
        relevant: f.relevant,
        reachability: f.state().map(|s| s.as_str().to_string()),
        reachability_reason: f.reachability.as_ref().map(|r| cut(&r.why)),
    });
    let (findings, truncated) = within(entries, LIST_BUDGET);
    ReportBody {
        image: report.image.clone(),
        digest: report.digest.to_string(),
        report_id: report.id.to_string(),
        packages: report.packages as u64,
        findings,
        truncated,
        not_scanned: report.not_scanned.as_deref().map(cut),
        summary: summary(&report.scan.findings),
    }
}
