//! The node's vulnerability posture, for metrics: what the latest report of each instance
//! and image running on this node says, counted by severity and reachability.
//!
//! Bounded by what runs: an instance's counts come with its first running container and go
//! with its last, an image's with the last container of it, and at most
//! [`MAX_CONTAINERS`] containers are counted. A handle that locks only inside its own short
//! methods (mini-redis's `Db`): nothing is read, stored or awaited under it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use vuln::reach::State;

use crate::ids::{Digest, InstanceId};
use crate::model::{Report, Workload};

/// Most containers counted at once: far past what a node runs (kubelet's default is 110
/// pods), a bound on the memory and the series should the runtime report more.
pub const MAX_CONTAINERS: usize = 4096;

/// Who an instance is, as metric labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLabels {
    /// Kubernetes namespace (empty outside Kubernetes).
    pub namespace: String,
    /// The owning workload's kind (`Deployment`, …, `Pod`; empty outside Kubernetes).
    pub kind: String,
    /// The owning workload's name; the container id outside Kubernetes.
    pub workload: String,
    /// The container's name in its pod (empty outside Kubernetes).
    pub container: String,
    /// The image digest's first 12 hex digits.
    pub image_digest: String,
}

impl InstanceLabels {
    /// The labels of a workload's instance.
    pub fn of(w: &Workload) -> InstanceLabels {
        let (namespace, kind, workload, container) = match (&w.k8s, &w.owner) {
            (Some(k), Some(o)) => (k.namespace.clone(), o.kind.clone(), o.name.clone(), k.container.clone()),
            (Some(k), None) => (k.namespace.clone(), "Pod".into(), k.pod.clone(), k.container.clone()),
            (None, _) => (String::new(), String::new(), w.id.clone(), String::new()),
        };
        InstanceLabels { namespace, kind, workload, container, image_digest: short_digest(&w.digest) }
    }
}

/// `sha256:0123456789abcdef…` as `0123456789ab`.
pub fn short_digest(d: &Digest) -> String {
    let s = d.as_str();
    s.split_once(':').map_or(s, |(_, hex)| hex).chars().take(12).collect()
}

/// One series of an instance's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    /// `critical`, `high`, `medium`, `low`, `none`, `unknown`.
    pub severity: &'static str,
    /// The reachability state (`called`, `loaded`, `opened`, …, `not_present`).
    pub reachability: &'static str,
    /// Whether the state makes the finding relevant.
    pub relevant: bool,
}

/// What one report says, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Findings per bucket (only buckets with findings).
    pub counts: BTreeMap<Bucket, u64>,
    /// False when the report was not scanned: its counts mean nothing.
    pub scanned: bool,
}

impl Tally {
    /// The counts of a report. An image report has no relevance: its buckets are by
    /// severity, with reachability from the binaries' code alone where it was decided
    /// (`not_present`) and `unknown` elsewhere, relevant unless not present.
    pub fn of(report: &Report) -> Tally {
        let mut counts = BTreeMap::new();
        for f in &report.scan.findings {
            let state = f.state().unwrap_or(match f.relevant {
                Some(true) => State::Opened,
                Some(false) => State::NotOpened,
                None => State::Unknown,
            });
            let bucket = Bucket {
                severity: f.severity.rating.as_str(),
                reachability: state.as_str(),
                relevant: state.relevant(),
            };
            *counts.entry(bucket).or_insert(0) += 1;
        }
        Tally { counts, scanned: report.not_scanned.is_none() }
    }

    /// Findings by severity alone.
    pub fn by_severity(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for (b, n) in &self.counts {
            *out.entry(b.severity).or_insert(0) += n;
        }
        out
    }
}

/// An instance running on the node and what its report says, once it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    /// Its labels.
    pub labels: InstanceLabels,
    /// Its report's counts (none until its SBOM' is scanned).
    pub tally: Option<Tally>,
}

/// An image running on the node and what its report says, once it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// The image reference the runtime gave.
    pub image: String,
    /// The digest's first 12 hex digits.
    pub image_digest: String,
    /// Its report's counts (none until its SBOM is scanned).
    pub tally: Option<Tally>,
}

/// Which reports a newly seen container's instance and image still need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Missing {
    /// The instance has no counts yet.
    pub instance: bool,
    /// The image has no counts yet.
    pub image: bool,
}

#[derive(Default)]
struct Inner {
    containers: HashMap<String, (InstanceId, Digest)>,
    instances: HashMap<InstanceId, InstanceRow>,
    images: HashMap<Digest, ImageRow>,
}

/// The posture handle.
pub struct Posture {
    inner: Mutex<Inner>,
    bound: usize,
}

impl Default for Posture {
    fn default() -> Self {
        Posture::with_bound(MAX_CONTAINERS)
    }
}

impl Posture {
    /// A posture counting at most `bound` containers.
    pub fn with_bound(bound: usize) -> Posture {
        Posture { inner: Mutex::default(), bound }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A container of `w` runs: its instance and image are counted while it does. Says
    /// which of their reports are not counted yet; `None` when [`MAX_CONTAINERS`] are
    /// counted already (it is not).
    pub fn started(&self, w: &Workload) -> Option<Missing> {
        let instance = w.instance();
        let mut inner = self.lock();
        if inner.containers.len() >= self.bound && !inner.containers.contains_key(&w.id) {
            return None;
        }
        inner.containers.insert(w.id.clone(), (instance.clone(), w.digest.clone()));
        let i = inner
            .instances
            .entry(instance)
            .or_insert_with(|| InstanceRow { labels: InstanceLabels::of(w), tally: None });
        let instance_missing = i.tally.is_none();
        let m = inner.images.entry(w.digest.clone()).or_insert_with(|| ImageRow {
            image: w.image.clone(),
            image_digest: short_digest(&w.digest),
            tally: None,
        });
        Some(Missing { instance: instance_missing, image: m.tally.is_none() })
    }

    /// A report was stored (or read back): it replaces the counts of its instance or image,
    /// when one runs here.
    pub fn reported(&self, report: &Report) {
        let tally = Tally::of(report);
        let mut inner = self.lock();
        match report.kind {
            crate::model::ReportKind::Instance => {
                if let Some(row) = inner.instances.get_mut(&InstanceId::from(report.key.as_str())) {
                    row.tally = Some(tally);
                }
            }
            crate::model::ReportKind::Image => {
                if let Some(row) = inner.images.get_mut(&report.digest) {
                    row.tally = Some(tally);
                }
            }
        }
    }

    /// A container exited: its instance and image go when it was their last.
    pub fn exited(&self, id: &str) {
        let mut inner = self.lock();
        if let Some((instance, digest)) = inner.containers.remove(id) {
            inner.forget(&instance, &digest);
        }
    }

    /// Only `running` containers run: every other goes.
    pub fn retain(&self, running: &[String]) {
        let mut inner = self.lock();
        let gone: Vec<String> = inner.containers.keys().filter(|id| !running.contains(id)).cloned().collect();
        for id in gone {
            if let Some((instance, digest)) = inner.containers.remove(&id) {
                inner.forget(&instance, &digest);
            }
        }
    }

    /// Every instance and image running, sorted by labels (a stable exposition).
    pub fn snapshot(&self) -> (Vec<InstanceRow>, Vec<ImageRow>) {
        let inner = self.lock();
        let mut instances: Vec<InstanceRow> = inner.instances.values().cloned().collect();
        let mut images: Vec<ImageRow> = inner.images.values().cloned().collect();
        drop(inner);
        instances.sort_by(|a, b| {
            let key = |l: &InstanceLabels| (l.namespace.clone(), l.workload.clone(), l.container.clone());
            key(&a.labels).cmp(&key(&b.labels)).then(a.labels.image_digest.cmp(&b.labels.image_digest))
        });
        images.sort_by(|a, b| (&a.image, &a.image_digest).cmp(&(&b.image, &b.image_digest)));
        (instances, images)
    }
}

impl Inner {
    fn forget(&mut self, instance: &InstanceId, digest: &Digest) {
        if !self.containers.values().any(|(i, _)| i == instance) {
            self.instances.remove(instance);
        }
        if !self.containers.values().any(|(_, d)| d == digest) {
            self.images.remove(digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReportId;
    use crate::model::{K8sIdentity, ReportKind, WorkloadRef};
    use sbom::time::Timestamp;
    use vuln::matching::{Finding, FindingPackage};
    use vuln::reach::Reachability;
    use vuln::severity::{Rating, SeverityInfo};

    fn workload(id: &str, pod: &str) -> Workload {
        Workload {
            id: id.into(),
            pid: 1,
            cgroup_id: 1,
            image: "registry.example/app:1".into(),
            digest: Digest::from("sha256:0123456789abcdef0123"),
            k8s: Some(K8sIdentity {
                namespace: "shop".into(),
                pod: pod.into(),
                container: "app".into(),
                pod_uid: "u".into(),
            }),
            layers: None,
            owner: Some(WorkloadRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "web".into(),
                uid: "d".into(),
            }),
        }
    }

    fn finding(rating: Rating, state: Option<State>) -> Finding {
        Finding {
            id: "X".into(),
            aliases: vec![],
            summary: None,
            severity: SeverityInfo { rating, ..Default::default() },
            package: FindingPackage {
                name: "p".into(),
                version: "1".into(),
                purl: "pkg:deb/debian/p@1".into(),
                ecosystem: "Debian".into(),
                source: None,
            },
            fixed: vec![],
            relevant: state.map(State::relevant),
            evidence: vec![],
            reachability: state.map(|state| Reachability {
                state,
                why: String::new(),
                evidence: vec![],
                window_seconds: None,
            }),
        }
    }

    fn report(kind: ReportKind, key: &str, findings: Vec<Finding>) -> Report {
        Report {
            id: ReportId::from("r"),
            kind,
            key: key.into(),
            created_at: Timestamp::now(),
            image: "registry.example/app:1".into(),
            digest: Digest::from("sha256:0123456789abcdef0123"),
            workload: None,
            packages: 1,
            relevant_packages: None,
            scan: vuln::ScanReport { packages: 1, findings, runtime_complete: None, warnings: vec![] },
            not_scanned: None,
        }
    }

    #[test]
    fn counts_live_while_a_container_of_the_instance_runs() {
        let p = Posture::default();
        let (a, b) = (workload("c1", "web-1"), workload("c2", "web-2"));
        assert_eq!(p.started(&a), Some(Missing { instance: true, image: true }));
        // A second replica is the same instance.
        assert_eq!(p.started(&b), Some(Missing { instance: true, image: true }));
        let instance = a.instance();
        p.reported(&report(
            ReportKind::Instance,
            instance.as_str(),
            vec![
                finding(Rating::Critical, Some(State::Called)),
                finding(Rating::Critical, Some(State::Called)),
                finding(Rating::High, Some(State::NotPresent)),
            ],
        ));
        p.reported(&report(ReportKind::Image, "sha256:0123456789abcdef0123", vec![finding(Rating::High, None)]));
        let (instances, images) = p.snapshot();
        assert_eq!(instances.len(), 1);
        let row = &instances[0];
        assert_eq!(
            row.labels,
            InstanceLabels {
                namespace: "shop".into(),
                kind: "Deployment".into(),
                workload: "web".into(),
                container: "app".into(),
                image_digest: "0123456789ab".into()
            }
        );
        let tally = row.tally.as_ref().unwrap();
        assert_eq!(tally.counts[&Bucket { severity: "critical", reachability: "called", relevant: true }], 2);
        assert_eq!(tally.counts[&Bucket { severity: "high", reachability: "not_present", relevant: false }], 1);
        assert_eq!(images[0].tally.as_ref().unwrap().by_severity()["high"], 1);
        assert_eq!(p.started(&a), Some(Missing::default()));
        // The first replica goes: the instance stays with the second; then it goes too.
        p.exited("c1");
        assert_eq!(p.snapshot().0.len(), 1);
        p.retain(&[]);
        let (instances, images) = p.snapshot();
        assert!(instances.is_empty() && images.is_empty());
        // A report of an instance not running here is not counted (nothing to bound it).
        p.reported(&report(ReportKind::Instance, instance.as_str(), vec![]));
        assert!(p.snapshot().0.is_empty());
    }

    #[test]
    fn containers_past_the_bound_are_not_counted() {
        let p = Posture::with_bound(2);
        assert!(p.started(&workload("c1", "web-1")).is_some());
        let mut other = workload("c2", "api-1");
        other.owner.as_mut().unwrap().name = "api".into();
        assert!(p.started(&other).is_some());
        let mut third = workload("c3", "db-1");
        third.owner.as_mut().unwrap().name = "db".into();
        assert_eq!(p.started(&third), None);
        assert_eq!(p.snapshot().0.len(), 2);
        // One already counted is still answered; one gone makes room.
        assert!(p.started(&other).is_some());
        p.exited("c2");
        assert!(p.started(&third).is_some());
        let workloads: Vec<String> = p.snapshot().0.into_iter().map(|r| r.labels.workload).collect();
        assert_eq!(workloads, ["db", "web"]);
    }

    #[test]
    fn an_unscanned_report_says_so() {
        let p = Posture::default();
        let w = workload("c1", "web-1");
        p.started(&w);
        let mut r = report(ReportKind::Instance, w.instance().as_str(), vec![]);
        r.not_scanned = Some("no database".into());
        p.reported(&r);
        assert!(!p.snapshot().0[0].tally.as_ref().unwrap().scanned);
    }
}
