//! Shared by this crate's integration tests: a workload of a Deployment and its instance
//! report.

use coordinator::ids::{Digest, ReportId};
use coordinator::model::{K8sIdentity, Report, ReportKind, Workload, WorkloadRef};

/// A container of Deployment `web` in namespace `ns`, on image `digest`.
pub fn workload(ns: &str, digest: &Digest) -> Workload {
    Workload {
        id: "c0ffee".into(),
        pid: 1,
        cgroup_id: 1,
        image: "web:1".into(),
        digest: digest.clone(),
        k8s: Some(K8sIdentity {
            namespace: ns.into(),
            pod: "web-7d9f-abcde".into(),
            container: "app".into(),
            pod_uid: "uid-pod".into(),
        }),
        layers: None,
        owner: Some(WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "uid-web".into(),
        }),
    }
}

/// The instance report of `w`, with `findings`.
pub fn instance_report(w: &Workload, findings: Vec<vuln::Finding>) -> Report {
    Report {
        id: ReportId::from("r-1"),
        kind: ReportKind::Instance,
        key: w.instance().to_string(),
        created_at: sbom::time::Timestamp::now(),
        image: w.image.clone(),
        digest: w.digest.clone(),
        workload: Some(w.clone()),
        packages: 0,
        relevant_packages: Some(0),
        scan: vuln::ScanReport { packages: 0, findings, runtime_complete: Some(true), warnings: Vec::new() },
        not_scanned: None,
    }
}
