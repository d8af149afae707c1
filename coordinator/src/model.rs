//! What the flow handles: workloads, learning state, reports.

use std::path::PathBuf;

use sbom::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{Digest, InstanceId, ReportId};

/// Kubernetes identity of a container, from the CRI labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct K8sIdentity {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name in the pod.
    pub container: String,
    /// Pod UID.
    pub pod_uid: String,
}

/// A running container, as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Container id (runtime).
    pub id: String,
    /// Its init process, on the host.
    pub pid: u32,
    /// Its cgroup v2 id: the key the kernel side attributes events by.
    pub cgroup_id: u64,
    /// Image reference.
    pub image: String,
    /// Image digest (manifest): the key of its SBOM.
    pub digest: Digest,
    /// Kubernetes identity, when the runtime labels say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<K8sIdentity>,
    /// Where the runtime keeps the image's own layers, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<ImageLayers>,
    /// The workload that owns its pod (cluster mode): a Deployment, StatefulSet, DaemonSet,
    /// Job, CronJob, or the pod itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<WorkloadRef>,
}

/// A Kubernetes workload, as owner references name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadRef {
    /// `apps/v1`, `batch/v1` or `v1`.
    pub api_version: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicaSet` (one no
    /// Deployment owns) or `Pod`.
    pub kind: String,
    /// Its name (in the pod's namespace).
    pub name: String,
    /// Its UID, for owner references.
    pub uid: String,
}

/// The image's layers as the runtime holds them on the node: the committed snapshot the
/// container's writable one was made from. A read-only view of it is the image itself,
/// without the container's writes or volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayers {
    /// containerd namespace.
    pub namespace: String,
    /// Snapshotter (`overlayfs`, …).
    pub snapshotter: String,
    /// The committed snapshot of the image's top layer (its chain id).
    pub parent: String,
}

impl Workload {
    /// The instance SBOM' is kept under: `namespace/kind/name/container@digest` of the
    /// owning workload in Kubernetes, so that every replica of a Deployment is one instance
    /// (a pod whose owner is not known yet counts as its own workload, kind `Pod`); the
    /// container id outside Kubernetes.
    pub fn instance(&self) -> InstanceId {
        match (&self.k8s, &self.owner) {
            (Some(k), Some(o)) => {
                format!("{}/{}/{}/{}@{}", k.namespace, o.kind, o.name, k.container, self.digest).into()
            }
            (Some(k), None) => format!("{}/Pod/{}/{}@{}", k.namespace, k.pod, k.container, self.digest).into(),
            (None, _) => self.id.as_str().into(),
        }
    }
}

/// What has been learned of one instance so far; persisted every few seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learning {
    /// The workload.
    pub workload: Workload,
    /// When learning began.
    pub started_at: Timestamp,
    /// Paths opened or executed so far.
    #[serde(with = "sbom::path_text::many")]
    pub paths: Vec<PathBuf>,
    /// False once the sniffer lost events for it, cut a path or dropped paths at its cap.
    pub complete: bool,
    /// Why it is incomplete, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// What the probes at vulnerable functions saw, when there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<vuln::reach::Calls>,
}

/// Which kind of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// The image's full SBOM, scanned.
    Image,
    /// One instance: the full scan with relevance from its SBOM'.
    Instance,
}

/// A report, as stored and as submitted (JSON). Its id is the idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Unique id; the backend uses it to drop duplicates.
    pub id: ReportId,
    /// Image or instance.
    pub kind: ReportKind,
    /// Image digest or instance key.
    pub key: String,
    /// When made.
    pub created_at: Timestamp,
    /// Image reference.
    pub image: String,
    /// Image digest.
    pub digest: Digest,
    /// The workload, for instance reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// Packages in the SBOM.
    pub packages: usize,
    /// Packages in SBOM', for instance reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevant_packages: Option<usize>,
    /// The scan.
    pub scan: vuln::ScanReport,
    /// Set when no scan happened (no vulnerability database, or a broken one): why. Such a
    /// report's empty findings mean nothing, never "clean".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_scanned: Option<String>,
}

impl Report {
    /// `image` or `instance`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ReportKind::Image => "image",
            ReportKind::Instance => "instance",
        }
    }
}
