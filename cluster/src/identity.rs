//! Which workload a container belongs to. The pods of this node only are watched (field
//! selector `spec.nodeName`) and kept in a reflector, so a container start asks no API
//! server; its pod's controller (a ReplicaSet or a Job) is looked up once and cached, since
//! a ReplicaSet keeps its Deployment and a Job its CronJob for life.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coordinator::model::WorkloadRef;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

/// Most controllers remembered; past it the cache starts again (a node runs far fewer).
const MAX_CACHED: usize = 10_000;
/// How long a container start waits for its pod to reach the reflector.
const POD_WAIT: Duration = Duration::from_secs(10);

/// The controller among `refs`, if any.
fn controller(refs: &[OwnerReference]) -> Option<&OwnerReference> {
    refs.iter().find(|r| r.controller == Some(true))
}

fn to_ref(o: &OwnerReference) -> WorkloadRef {
    WorkloadRef { api_version: o.api_version.clone(), kind: o.kind.clone(), name: o.name.clone(), uid: o.uid.clone() }
}

/// The pod as its own workload (a bare pod).
fn pod_ref(pod: &Pod) -> WorkloadRef {
    WorkloadRef {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.name_any(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// (namespace, kind, name) of a ReplicaSet or Job -> its controller.
type Controllers = HashMap<(String, &'static str, String), Option<OwnerReference>>;

/// Controllers of ReplicaSets and Jobs, looked up once each.
#[derive(Clone)]
pub struct Owners {
    client: Client,
    cache: Arc<Mutex<Controllers>>,
}

impl Owners {
    /// Lookups through `client`.
    pub fn new(client: Client) -> Self {
        Owners { client, cache: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// The controller of `K` `name` in `namespace` (none: it has no controller).
    async fn controller_of<K>(&self, namespace: &str, name: &str) -> Result<Option<OwnerReference>, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + k8s_openapi::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let key = (namespace.to_string(), K::KIND, name.to_string());
        if let Some(hit) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        // Only the metadata: a ReplicaSet's pod template can be large.
        let meta = Api::<K>::namespaced(self.client.clone(), namespace).get_metadata(name).await?;
        let found = controller(meta.metadata.owner_references.as_deref().unwrap_or_default()).cloned();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, found.clone());
        Ok(found)
    }

    /// The workload that owns `pod`: through its ReplicaSet to a Deployment, through its
    /// Job to a CronJob, else its controller (StatefulSet, DaemonSet, …), else the pod. A
    /// failed lookup falls back to the controller found so far, and says so.
    pub async fn workload_of(&self, pod: &Pod) -> WorkloadRef {
        let namespace = pod.namespace().unwrap_or_default();
        let Some(owner) = controller(pod.metadata.owner_references.as_deref().unwrap_or_default()) else {
            return pod_ref(pod);
        };
        let parent = match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("apps/v1", "ReplicaSet") => self.controller_of::<ReplicaSet>(&namespace, &owner.name).await,
            ("batch/v1", "Job") => self.controller_of::<Job>(&namespace, &owner.name).await,
            _ => return to_ref(owner),
        };
        match parent {
            Ok(Some(p)) if matches!(p.kind.as_str(), "Deployment" | "CronJob") => to_ref(&p),
            Ok(_) => to_ref(owner),
            Err(e) => {
                tracing::warn!(kind = %owner.kind, name = %owner.name, %namespace, error = %coordinator::chain(&e),
                    "looking up the owner's controller; the instance is named after the owner");
                to_ref(owner)
            }
        }
    }
}

/// The pods of this node, and their owners.
#[derive(Clone)]
pub struct Identity {
    pods: Store<Pod>,
    owners: Owners,
}

impl Identity {
    /// Watches the pods of `node`; the returned future keeps the reflector up to date (it
    /// relists after a watch expires, backing off on errors) and must be spawned.
    pub fn start(client: Client, node: &str) -> (Identity, impl std::future::Future<Output = ()> + Send + 'static) {
        let api: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let (reader, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher(api, config).default_backoff().modify(|pod: &mut Pod| {
                // Only the metadata is read: the rest would only take memory.
                pod.metadata.managed_fields = None;
                pod.spec = None;
                pod.status = None;
            }),
        );
        let run = async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::warn!(error = %coordinator::chain(&e), "watching this node's pods");
                }
            }
        };
        (Identity { pods: reader, owners: Owners::new(client) }, run)
    }

    /// The workload of pod `namespace/name`, once it is in the reflector (a container can
    /// start before its pod's watch event arrives); `None` if it never comes.
    pub async fn workload(&self, namespace: &str, name: &str) -> Option<WorkloadRef> {
        let key = ObjectRef::new(name).within(namespace);
        let deadline = tokio::time::Instant::now() + POD_WAIT;
        loop {
            if let Some(pod) = self.pods.get(&key) {
                return Some(self.owners.workload_of(&pod).await);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
