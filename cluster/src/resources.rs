//! The custom resources of API group `sniffer.dev`, version `v1alpha1`, generated from
//! these types (`cargo xtask crds` writes their CRDs into deploy/).
//!
//! - [`ImageSbom`] (cluster-scoped): the SBOM of one image digest, whichever node computed it;
//!   also the reservation that makes one node compute it (`spec.phase`, `spec.node`).
//! - [`RuntimeSbom`] (namespaced): SBOM' of one instance (a workload's container on one image
//!   digest), with evidence.
//! - [`VulnerabilityReport`] (namespaced): the scan of one instance, findings marked relevant
//!   or not.
//! - [`ClusterVulnerabilityReport`] (cluster-scoped): the scan of one image.
//!
//! Every object stays well under etcd's limit (about 1.5 MiB): lists are cut at a byte
//! budget with `truncated` set and the counts kept exact (see [`crate::compact`]); the full
//! documents stay on the node (`sniffer sbom`, `sniffer vulns`) and go to the backend.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group.
pub const GROUP: &str = "sniffer.dev";
/// Version.
pub const VERSION: &str = "v1alpha1";

/// Where an image SBOM stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// A node has reserved it and is computing it.
    Computing,
    /// Computed: the packages are in.
    Ready,
}

/// One package of an image SBOM (no per-file ownership: that stays on the node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageEntry {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// Licences, as the package declares them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// Source package (`name version`), where the ecosystem has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The SBOM of one image digest.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "sniffer.dev", version = "v1alpha1", kind = "ImageSbom", plural = "imagesboms")]
#[kube(derive = "PartialEq")]
#[kube(shortname = "isbom")]
#[kube(printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#)]
#[kube(printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".spec.phase"}"#)]
#[kube(printcolumn = r#"{"name":"Packages","type":"integer","jsonPath":".spec.packageCount"}"#)]
#[kube(printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#)]
#[kube(printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct ImageSbomSpec {
    /// Image reference it was first seen as.
    pub image: String,
    /// Manifest digest (`sha256:…`).
    pub digest: String,
    /// Computing (reserved by `node`) or ready.
    pub phase: Phase,
    /// The node that reserved and computed it.
    pub node: String,
    /// When `node` reserved it (RFC 3339): a reservation not ready long after is taken over.
    pub claimed_at: String,
    /// Distribution (`debian 12`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// Packages, in SBOM order, cut at the object's budget.
    #[serde(default)]
    pub packages: Vec<PackageEntry>,
    /// How many packages the SBOM has (exact, even when `packages` is cut).
    #[serde(default)]
    pub package_count: u64,
    /// `packages` was cut to keep the object small.
    #[serde(default)]
    pub truncated: bool,
    /// The scan stopped at a budget or lost part of the image: packages may be missing.
    #[serde(default)]
    pub incomplete: bool,
}

/// The workload an instance belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRefSpec {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicaSet` or `Pod`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// One package the workload used, with the files that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePackageEntry {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// Files of it the workload opened or executed (the first few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// How many files of it were used (exact).
    pub evidence_count: u64,
}

/// SBOM' of one instance: the packages owning files its containers really used.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "sniffer.dev", version = "v1alpha1", kind = "RuntimeSbom", plural = "runtimesboms", namespaced)]
#[kube(derive = "PartialEq")]
#[kube(shortname = "rsbom")]
#[kube(printcolumn = r#"{"name":"Workload","type":"string","jsonPath":".spec.workload.name"}"#)]
#[kube(printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.workload.kind"}"#)]
#[kube(printcolumn = r#"{"name":"Container","type":"string","jsonPath":".spec.container"}"#)]
#[kube(printcolumn = r#"{"name":"Used","type":"integer","jsonPath":".spec.packageCount"}"#)]
#[kube(printcolumn = r#"{"name":"Complete","type":"boolean","jsonPath":".spec.complete"}"#)]
#[kube(printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSbomSpec {
    /// The instance (`namespace/kind/name/container@digest`).
    pub instance: String,
    /// Its workload.
    pub workload: WorkloadRefSpec,
    /// Container name in the pod.
    pub container: String,
    /// Image reference.
    pub image: String,
    /// Image digest.
    pub digest: String,
    /// Packages used, cut at the object's budget.
    #[serde(default)]
    pub packages: Vec<RuntimePackageEntry>,
    /// How many packages were used (exact).
    pub package_count: u64,
    /// Used files no package owns.
    pub unmatched: u64,
    /// False when the sniffer lost events or ownership was approximate.
    pub complete: bool,
    /// Why it may be incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `packages` was cut to keep the object small.
    #[serde(default)]
    pub truncated: bool,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingEntry {
    /// Advisory id (`GHSA-…`, `PYSEC-…`, `CVE-…`).
    pub id: String,
    /// Package name.
    pub package: String,
    /// Installed version.
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// `critical`, `high`, `medium`, `low`, `none` or `unknown`.
    pub severity: String,
    /// Versions that fix it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<String>,
    /// In a package the workload used (instance reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<bool>,
    /// How far its code is known to have run: `called`, `loaded`, `opened`, `unknown`,
    /// `not_called`, `not_loaded`, `not_opened` or `not_present` (it decides `relevant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachability: Option<String>,
    /// Why, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachability_reason: Option<String>,
}

/// Findings by severity and relevance: exact, whatever was cut from `findings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Critical.
    pub critical: u64,
    /// High.
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
    /// Rated none or not rated.
    pub unknown: u64,
    /// All findings.
    pub total: u64,
    /// Findings in packages the workload used (instance reports).
    pub relevant: u64,
    /// Findings whose vulnerable function was called (instance reports).
    #[serde(default)]
    pub called: u64,
    /// Findings whose vulnerable code is not in the image at all.
    #[serde(default)]
    pub not_present: u64,
}

/// What both kinds of vulnerability report hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    /// Image reference.
    pub image: String,
    /// Image digest.
    pub digest: String,
    /// The report id the backend got (its idempotency key).
    pub report_id: String,
    /// Packages scanned.
    pub packages: u64,
    /// Findings, relevant and most severe first, cut at the object's budget.
    #[serde(default)]
    pub findings: Vec<FindingEntry>,
    /// `findings` was cut to keep the object small.
    #[serde(default)]
    pub truncated: bool,
    /// Why the scan did not happen, when it did not (then the findings mean nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_scanned: Option<String>,
    /// Counts.
    pub summary: Summary,
}

/// The scan of one instance.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sniffer.dev",
    version = "v1alpha1",
    kind = "VulnerabilityReport",
    plural = "vulnerabilityreports",
    namespaced
)]
#[kube(derive = "PartialEq")]
#[kube(shortname = "vulns")]
#[kube(printcolumn = r#"{"name":"Workload","type":"string","jsonPath":".spec.workload.name"}"#)]
#[kube(printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.workload.kind"}"#)]
#[kube(printcolumn = r#"{"name":"Container","type":"string","jsonPath":".spec.container"}"#)]
#[kube(printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.report.image"}"#)]
#[kube(printcolumn = r#"{"name":"Critical","type":"integer","jsonPath":".spec.report.summary.critical"}"#)]
#[kube(printcolumn = r#"{"name":"High","type":"integer","jsonPath":".spec.report.summary.high"}"#)]
#[kube(printcolumn = r#"{"name":"Relevant","type":"integer","jsonPath":".spec.report.summary.relevant"}"#)]
#[kube(printcolumn = r#"{"name":"Called","type":"integer","jsonPath":".spec.report.summary.called"}"#)]
#[kube(printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct VulnerabilityReportSpec {
    /// The instance.
    pub instance: String,
    /// Its workload.
    pub workload: WorkloadRefSpec,
    /// Container name.
    pub container: String,
    /// The scan.
    pub report: ReportBody,
}

/// The scan of one image (every package, no relevance).
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sniffer.dev",
    version = "v1alpha1",
    kind = "ClusterVulnerabilityReport",
    plural = "clustervulnerabilityreports"
)]
#[kube(derive = "PartialEq")]
#[kube(shortname = "cvulns")]
#[kube(printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.report.image"}"#)]
#[kube(printcolumn = r#"{"name":"Critical","type":"integer","jsonPath":".spec.report.summary.critical"}"#)]
#[kube(printcolumn = r#"{"name":"High","type":"integer","jsonPath":".spec.report.summary.high"}"#)]
#[kube(printcolumn = r#"{"name":"Total","type":"integer","jsonPath":".spec.report.summary.total"}"#)]
#[kube(printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVulnerabilityReportSpec {
    /// The scan.
    pub report: ReportBody,
}

/// The CRDs of every kind here, in a stable order.
pub fn crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![ImageSbom::crd(), RuntimeSbom::crd(), VulnerabilityReport::crd(), ClusterVulnerabilityReport::crd()]
}

/// The CRDs as one multi-document YAML file.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::from("# Generated by `cargo xtask crds` from cluster/src/resources.rs: do not edit.\n");
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
