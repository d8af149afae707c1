//! The coordinator's `Storage` in cluster mode. The node's own state file stays the truth
//! for this node (learning state, file indexes, the submission outbox, and every SBOM and
//! report, for `sniffer sbom` and `sniffer vulns`). What the cluster should see is turned
//! into objects in the same transaction that stores it, kept in the state file's `publish`
//! table, and written to the API server by [`publish`] with server-side apply, retried with
//! backoff: nothing is lost while the API server is down, and a restart resumes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coordinator::ids::{Digest, InstanceId};
use coordinator::model::{Report, ReportKind, Workload};
use coordinator::store::{Claim, Storage, StorageExt, StoreError, Table};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client, Resource};
use sbom::time::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::claim::Claimer;
use crate::limit::RateLimit;
use crate::resources::{
    ClusterVulnerabilityReport, ClusterVulnerabilityReportSpec, ImageSbom, RuntimeSbom, VulnerabilityReport,
    VulnerabilityReportSpec,
};
use crate::{compact, names};

/// One object waiting to be written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// What it is.
    pub object: Object,
    /// Tries so far.
    pub attempts: u32,
    /// Not before (Unix milliseconds).
    pub next_ms: i64,
    /// Why the last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// An object to apply, by kind (stored as `{"ImageSbom": {...}}`: the object itself carries
/// `kind` too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Object {
    /// An image SBOM (cluster-scoped).
    ImageSbom(Box<ImageSbom>),
    /// An instance's SBOM'.
    RuntimeSbom(Box<RuntimeSbom>),
    /// An instance's scan.
    VulnerabilityReport(Box<VulnerabilityReport>),
    /// An image's scan (cluster-scoped).
    ClusterVulnerabilityReport(Box<ClusterVulnerabilityReport>),
}

impl Object {
    /// `Kind/namespace/name`: its key in the queue (a newer version replaces an older one).
    pub fn key(&self) -> String {
        let meta = match self {
            Object::ImageSbom(o) => o.meta(),
            Object::RuntimeSbom(o) => o.meta(),
            Object::VulnerabilityReport(o) => o.meta(),
            Object::ClusterVulnerabilityReport(o) => o.meta(),
        };
        format!(
            "{}/{}/{}",
            self.kind(),
            meta.namespace.as_deref().unwrap_or("-"),
            meta.name.as_deref().unwrap_or_default()
        )
    }

    /// Its kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ImageSbom(_) => "ImageSbom",
            Object::RuntimeSbom(_) => "RuntimeSbom",
            Object::VulnerabilityReport(_) => "VulnerabilityReport",
            Object::ClusterVulnerabilityReport(_) => "ClusterVulnerabilityReport",
        }
    }
}

/// Owner references of an instance's objects: its workload, so deleting the workload
/// deletes them.
fn owner_references(w: &Workload) -> Option<Vec<OwnerReference>> {
    let o = w.owner.as_ref()?;
    (!o.uid.is_empty()).then(|| {
        vec![OwnerReference {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
            controller: Some(false),
            block_owner_deletion: Some(false),
        }]
    })
}

/// The metadata of an instance's objects; `None` outside Kubernetes.
fn instance_meta(w: &Workload, instance: &InstanceId) -> Option<ObjectMeta> {
    let k = w.k8s.as_ref()?;
    let workload = compact::workload_of(w);
    Some(ObjectMeta {
        name: Some(names::instance_object_name(&workload.kind, &workload.name, &k.container, instance)),
        namespace: Some(k.namespace.clone()),
        labels: Some(names::instance_labels(&k.namespace, &workload.kind, &workload.name, &k.container, &w.digest)),
        owner_references: owner_references(w),
        ..ObjectMeta::default()
    })
}

/// The objects a batch of records stored by the coordinator stands for. `claimed` says
/// which image SBOMs this node computed for the cluster (image, time of the reservation).
pub fn objects_of(
    items: &[(Table, &str, serde_json::Value)],
    claimed: &HashMap<String, (String, Timestamp)>,
    node: &str,
) -> Vec<Object> {
    let mut out = Vec::new();
    // An instance's SBOM' is stored with its report, in one batch: the report names the
    // workload.
    let report: Option<Report> =
        items.iter().find(|(t, _, _)| *t == Table::Report).and_then(|(_, _, v)| serde_json::from_value(v.clone()).ok());
    for (table, key, value) in items {
        match table {
            Table::Sbom => {
                let Some((image, at)) = claimed.get(*key) else { continue };
                let Ok(sbom) = serde_json::from_value::<sbom::Sbom>(value.clone()) else { continue };
                let digest = Digest::from(*key);
                out.push(Object::ImageSbom(Box::new(ImageSbom {
                    metadata: ObjectMeta {
                        name: Some(names::image_object_name(&digest)),
                        labels: Some(names::image_labels(&digest)),
                        ..ObjectMeta::default()
                    },
                    spec: compact::image_sbom(&sbom, image, key, node, &at.to_string()),
                })));
            }
            Table::RuntimeSbom => {
                let Some(w) = report.as_ref().and_then(|r| r.workload.as_ref()) else { continue };
                let Ok(runtime) = serde_json::from_value::<sbom::index::RuntimeSbom>(value.clone()) else { continue };
                let instance = InstanceId::from(*key);
                let Some(metadata) = instance_meta(w, &instance) else { continue };
                out.push(Object::RuntimeSbom(Box::new(RuntimeSbom {
                    metadata,
                    spec: compact::runtime_sbom(&runtime, w, key),
                })));
            }
            Table::Report => {
                let Some(r) = &report else { continue };
                match (r.kind, &r.workload) {
                    (ReportKind::Image, _) if claimed.contains_key(r.digest.as_str()) => {
                        out.push(Object::ClusterVulnerabilityReport(Box::new(ClusterVulnerabilityReport {
                            metadata: ObjectMeta {
                                name: Some(names::image_object_name(&r.digest)),
                                labels: Some(names::image_labels(&r.digest)),
                                ..ObjectMeta::default()
                            },
                            spec: ClusterVulnerabilityReportSpec { report: compact::report_body(r) },
                        })));
                    }
                    (ReportKind::Instance, Some(w)) => {
                        let instance = InstanceId::from(r.key.as_str());
                        let Some(metadata) = instance_meta(w, &instance) else { continue };
                        let workload = compact::workload_of(w);
                        let container = w.k8s.as_ref().map(|k| k.container.clone()).unwrap_or_default();
                        out.push(Object::VulnerabilityReport(Box::new(VulnerabilityReport {
                            metadata,
                            spec: VulnerabilityReportSpec {
                                instance: r.key.clone(),
                                workload,
                                container,
                                report: compact::report_body(r),
                            },
                        })));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

/// Longest a container start waits for the API server to say whether an instance has SBOM'.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The state file, plus the cluster.
pub struct ClusterStorage {
    local: Arc<dyn Storage>,
    client: Client,
    runtime: tokio::runtime::Handle,
    node: String,
    claimer: Claimer,
    /// Image SBOMs this node reserved: digest -> (image, when).
    claimed: Mutex<HashMap<String, (String, Timestamp)>>,
    /// Told when objects are queued.
    queued: Arc<Notify>,
}

impl ClusterStorage {
    /// `local` as before, and the cluster through `client`, as node `node`. Blocking calls
    /// (the `Storage` methods, on the blocking pool) reach the API server through `runtime`.
    pub fn new(
        local: Arc<dyn Storage>,
        client: Client,
        runtime: tokio::runtime::Handle,
        node: &str,
        takeover_after: Duration,
    ) -> Self {
        let claimer = Claimer::new(Api::all(client.clone()), node, takeover_after);
        ClusterStorage {
            local,
            client,
            runtime,
            node: node.to_string(),
            claimer,
            claimed: Mutex::new(HashMap::new()),
            queued: Arc::new(Notify::new()),
        }
    }

    /// Notified when objects are queued (for [`publish`]).
    pub fn queued(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    fn claimed(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Timestamp)>> {
        self.claimed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn cluster_error(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Cluster { what: what.into(), source: Box::new(e) }
}

impl Storage for ClusterStorage {
    fn put_many(&self, items: &[(Table, &str, serde_json::Value)]) -> Result<(), StoreError> {
        // Most writes are learning state (every few seconds, thousands of paths each):
        // nothing for the cluster, so nothing copied.
        if !items.iter().any(|(t, _, _)| matches!(t, Table::Sbom | Table::RuntimeSbom | Table::Report)) {
            return self.local.put_many(items);
        }
        let claimed = self.claimed().clone();
        let objects = objects_of(items, &claimed, &self.node);
        if objects.is_empty() {
            return self.local.put_many(items);
        }
        let mut pending: Vec<(String, serde_json::Value)> = Vec::with_capacity(objects.len());
        for object in objects {
            let key = object.key();
            let entry = Pending { object, attempts: 0, next_ms: 0, last_error: None };
            let value = serde_json::to_value(&entry).map_err(StoreError::record(Table::Publish, &key))?;
            pending.push((key, value));
        }
        let mut all: Vec<(Table, &str, serde_json::Value)> = items.to_vec();
        all.extend(pending.iter().map(|(k, v)| (Table::Publish, k.as_str(), v.clone())));
        self.local.put_many(&all)?;
        self.queued.notify_one();
        Ok(())
    }

    fn get_raw(&self, kind: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.local.get_raw(kind, key)
    }

    fn delete(&self, kind: Table, key: &str) -> Result<(), StoreError> {
        self.local.delete(kind, key)
    }

    fn keys(&self, kind: Table) -> Result<Vec<String>, StoreError> {
        self.local.keys(kind)
    }

    fn count(&self, kind: Table) -> Result<u64, StoreError> {
        self.local.count(kind)
    }

    /// The reservation; an API server that cannot be reached does not stop the flow: this
    /// node computes the SBOM and its objects wait in the queue.
    fn claim_image(&self, digest: &Digest, image: &str) -> Result<Claim, StoreError> {
        match self.runtime.block_on(self.claimer.claim(digest, image)) {
            Ok((claim, at)) => {
                if claim == Claim::Mine {
                    self.claimed().insert(digest.to_string(), (image.to_string(), at));
                }
                Ok(claim)
            }
            Err(e) => {
                tracing::warn!(%digest, error = %coordinator::chain(&e), "reserving the image SBOM failed: computing it here");
                self.claimed().insert(digest.to_string(), (image.to_string(), Timestamp::now()));
                Ok(Claim::Mine)
            }
        }
    }

    /// Here, or stored by another node as a RuntimeSbom object. An API server that does not
    /// answer (within [`LOOKUP_TIMEOUT`]) counts as "not stored": the instance is learned
    /// here rather than not at all.
    fn has_runtime_sbom(&self, instance: &InstanceId) -> Result<bool, StoreError> {
        if self.local.get_raw(Table::RuntimeSbom, instance.as_str())?.is_some() {
            return Ok(true);
        }
        let Some((namespace, kind, name, container)) = names::parse_instance(instance) else { return Ok(false) };
        let object = names::instance_object_name(kind, name, container, instance);
        let api: Api<RuntimeSbom> = Api::namespaced(self.client.clone(), namespace);
        let found = self.runtime.block_on(async { tokio::time::timeout(LOOKUP_TIMEOUT, api.get_opt(&object)).await });
        match found {
            Ok(Ok(found)) => Ok(found.is_some()),
            Ok(Err(e)) => {
                let e = cluster_error(format!("reading RuntimeSbom {namespace}/{object}"), e);
                tracing::warn!(%instance, error = %coordinator::chain(&e), "learning the instance here");
                Ok(false)
            }
            Err(_) => {
                tracing::warn!(%instance, "the API server did not answer in time: learning the instance here");
                Ok(false)
            }
        }
    }
}

/// How a failed write is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Soon, backing off: the API server is busy, down or unreachable (429, 5xx, no
    /// connection), or the object changed meanwhile (409).
    Backoff,
    /// Much later: this agent may not write it (401, 403); RBAC may be fixed.
    Later,
    /// Never: the object is refused as it is (400, 404 for a namespace gone, 422).
    Never,
}

/// How to retry after `e`.
pub fn retry_of(e: &kube::Error) -> Retry {
    match e {
        kube::Error::Api(s) => match s.code {
            401 | 403 => Retry::Later,
            400 | 404 | 405 | 413 | 415 | 422 => Retry::Never,
            _ => Retry::Backoff,
        },
        _ => Retry::Backoff,
    }
}

/// The delay before try `attempts + 1`, before its jitter (see [`publish_once`]).
pub fn delay(retry: Retry, attempts: u32) -> Duration {
    match retry {
        Retry::Backoff => Duration::from_secs(1 << attempts.min(8)).min(Duration::from_secs(300)),
        Retry::Later | Retry::Never => Duration::from_secs(600),
    }
}

/// Writes one object (server-side apply, this agent's field manager, forced: the agent owns
/// these objects' fields).
pub async fn apply(client: &Client, object: &Object) -> Result<(), kube::Error> {
    let params = PatchParams::apply(crate::FIELD_MANAGER).force();
    let name = |m: &ObjectMeta| m.name.clone().unwrap_or_default();
    let ns = |m: &ObjectMeta| m.namespace.clone().unwrap_or_default();
    match object {
        Object::ImageSbom(o) => {
            Api::<ImageSbom>::all(client.clone()).patch(&name(&o.metadata), &params, &Patch::Apply(o)).await?;
        }
        Object::ClusterVulnerabilityReport(o) => {
            Api::<ClusterVulnerabilityReport>::all(client.clone())
                .patch(&name(&o.metadata), &params, &Patch::Apply(o))
                .await?;
        }
        Object::RuntimeSbom(o) => {
            Api::<RuntimeSbom>::namespaced(client.clone(), &ns(&o.metadata))
                .patch(&name(&o.metadata), &params, &Patch::Apply(o))
                .await?;
        }
        Object::VulnerabilityReport(o) => {
            Api::<VulnerabilityReport>::namespaced(client.clone(), &ns(&o.metadata))
                .patch(&name(&o.metadata), &params, &Patch::Apply(o))
                .await?;
        }
    }
    Ok(())
}

/// One pass over the queue: every due object applied, each within `limit`; returns when
/// the next is due. A failed object is retried after its [`delay`] and as much again at
/// most, at random: nodes that failed together (an API server restarting) do not come
/// back together.
pub async fn publish_once(
    local: &Arc<dyn Storage>,
    client: &Client,
    limit: &RateLimit,
) -> Result<Duration, StoreError> {
    let store = local.clone();
    let due: Vec<(String, Pending)> = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let mut out = Vec::new();
        for key in store.keys(Table::Publish)? {
            if let Some(p) = store.get::<Pending>(Table::Publish, &key)? {
                out.push((key, p));
            }
        }
        Ok(out)
    })
    .await
    .map_err(|source| StoreError::Task { what: "publish queue", source })??;
    let mut next = Duration::from_secs(600);
    let now = Timestamp::now().unix_millis();
    for (key, mut pending) in due {
        if pending.next_ms > now {
            next = next.min(Duration::from_millis(u64::try_from(pending.next_ms - now).unwrap_or(0)));
            continue;
        }
        limit.acquire().await;
        let result = apply(client, &pending.object).await;
        let store = local.clone();
        let applied = pending.object.clone();
        let outcome = match result {
            Ok(()) => {
                tracing::debug!(object = %key, "applied");
                None
            }
            Err(e) => {
                let retry = retry_of(&e);
                let why = coordinator::chain(&e);
                if retry == Retry::Never {
                    tracing::error!(object = %key, error = %why, "the API server refused the object: dropped");
                    None
                } else {
                    tracing::warn!(object = %key, error = %why, attempts = pending.attempts + 1, "writing the object failed; retried");
                    let wait = crate::limit::jittered(delay(retry, pending.attempts) / 2);
                    pending.attempts += 1;
                    pending.next_ms =
                        Timestamp::now().unix_millis() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                    pending.last_error = Some(why);
                    next = next.min(wait);
                    Some(pending)
                }
            }
        };
        // A newer version of the object queued meanwhile stays, untouched.
        tokio::task::spawn_blocking(move || match store.get::<Pending>(Table::Publish, &key)? {
            Some(current) if current.object != applied => Ok(()),
            _ => match outcome {
                None => store.delete(Table::Publish, &key),
                Some(p) => store.put(Table::Publish, &key, &p),
            },
        })
        .await
        .map_err(|source| StoreError::Task { what: "publish queue", source })??;
    }
    Ok(next)
}

/// Runs the queue for ever: a pass, then sleep until the next object is due or `queued`
/// says a new one is waiting.
pub async fn publish(local: Arc<dyn Storage>, client: Client, queued: Arc<Notify>, limit: RateLimit) {
    loop {
        let wait = match publish_once(&local, &client, &limit).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %coordinator::chain(&e), "publish queue");
                crate::limit::jittered(Duration::from_secs(3))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = queued.notified() => {}
        }
    }
}
