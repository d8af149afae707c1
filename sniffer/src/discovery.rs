//! Container discovery through containerd's API on its socket: the tasks running at
//! start-up in every namespace (`k8s.io` included), then task create and exit events.
//!
//! A task is reported at `/tasks/create`, while its init process still waits in `runc
//! init` for the start signal: its cgroup and root exist, it has not run a line of the
//! workload yet, so watching it then misses nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_client::services::v1::snapshots::StatSnapshotRequest;
use containerd_client::services::v1::{
    GetContainerRequest, GetImageRequest, ListNamespacesRequest, ListTasksRequest, SubscribeRequest,
};
use containerd_client::tonic::Request;
use containerd_client::with_namespace;
use coordinator::model::{ImageLayers, K8sIdentity, Workload};
use prost::Message;
use tokio::sync::mpsc;

use crate::cgroup;

/// What discovery tells the daemon.
#[derive(Debug, Clone)]
pub enum Discovered {
    /// A task's cgroup, as soon as it is known: watch it now; its [`Discovered::Started`]
    /// follows once the runtime has described the container.
    Seen {
        /// The cgroup v2 directory.
        dir: PathBuf,
        /// Its id.
        cgroup_id: u64,
    },
    /// A container is about to run (or was running when the daemon started).
    Started(Box<Workload>),
    /// A container's init process exited.
    Exited(String),
    /// A cgroup [`Discovered::Seen`] that is not a workload's after all (a pod sandbox), or
    /// whose container could not be described: stop watching it.
    Dropped(u64),
    /// Every running container has been reported (by id), at start-up or after a
    /// reconnect: one not among them exited unseen.
    Synced(Vec<String>),
}

/// containerd's default socket.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Nothing listens on the socket.
    #[error("containerd is not reachable at {path}: {message}")]
    Unreachable {
        /// The socket.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// An API call failed.
    #[error("containerd {call}")]
    Api {
        /// Which call.
        call: &'static str,
        /// The gRPC status.
        #[source]
        status: Box<containerd_client::tonic::Status>,
    },
}

fn api(call: &'static str) -> impl Fn(containerd_client::tonic::Status) -> DiscoveryError {
    move |status| DiscoveryError::Api { call, status: Box::new(status) }
}

/// Connects, reports running tasks, then follows events until the stream ends.
pub async fn run(socket: &Path, out: mpsc::Sender<Discovered>) -> Result<(), DiscoveryError> {
    if !socket.exists() {
        return Err(DiscoveryError::Unreachable { path: socket.to_path_buf(), message: "no such socket".into() });
    }
    let channel = containerd_client::connect(socket)
        .await
        .map_err(|e| DiscoveryError::Unreachable { path: socket.to_path_buf(), message: e.to_string() })?;
    let client = containerd_client::Client::from(channel);
    // Subscribe first, so nothing that starts while we list is missed. containerd sends
    // the stream's headers only with its first event, so the subscription runs on its own.
    let (etx, mut erx) = mpsc::channel(256);
    let mut events_client = client.events();
    let subscription = tokio::spawn(async move {
        let filters = vec!["topic==\"/tasks/create\"".into(), "topic==\"/tasks/exit\"".into()];
        let mut stream =
            events_client.subscribe(SubscribeRequest { filters }).await.map_err(api("subscribe"))?.into_inner();
        while let Some(envelope) = stream.message().await.map_err(api("events"))? {
            if etx.send(envelope).await.is_err() {
                break;
            }
        }
        Ok::<(), DiscoveryError>(())
    });
    let namespaces = client
        .namespaces()
        .list(ListNamespacesRequest { filter: String::new() })
        .await
        .map_err(api("list namespaces"))?;
    let mut running = Vec::new();
    for ns in namespaces.into_inner().namespaces {
        let tasks =
            client.tasks().list(with_namespace!(ListTasksRequest { filter: String::new() }, ns.name.as_str())).await;
        let tasks = match tasks {
            Ok(t) => t.into_inner().tasks,
            Err(e) => {
                tracing::warn!(namespace = %ns.name, error = %coordinator::chain(&e), "listing tasks");
                continue;
            }
        };
        for t in tasks {
            // 1 = CREATED, 2 = RUNNING, 4 = PAUSED in containerd's task status enum.
            if t.pid != 0 && matches!(t.status, 1 | 2 | 4) {
                running.push(t.id.clone());
                report(&client, &ns.name, &t.id, t.pid, &out).await;
            }
        }
    }
    tracing::info!(socket = %socket.display(), running = running.len(), "containerd connected");
    let _ = out.send(Discovered::Synced(running)).await;
    while let Some(envelope) = erx.recv().await {
        let Some(any) = envelope.event else { continue };
        match envelope.topic.as_str() {
            "/tasks/create" => {
                if let Ok(e) = containerd_client::events::TaskCreate::decode(any.value.as_slice()) {
                    report(&client, &envelope.namespace, &e.container_id, e.pid, &out).await;
                }
            }
            "/tasks/exit" => {
                if let Ok(e) = containerd_client::events::TaskExit::decode(any.value.as_slice())
                    && e.id == e.container_id
                {
                    let _ = out.send(Discovered::Exited(e.container_id)).await;
                }
            }
            _ => {}
        }
    }
    subscription
        .await
        .map_err(|e| DiscoveryError::Unreachable { path: socket.to_path_buf(), message: e.to_string() })??;
    Ok(())
}

async fn report(client: &containerd_client::Client, ns: &str, id: &str, pid: u32, out: &mpsc::Sender<Discovered>) {
    // The cgroup first, and watched at once: describing the container takes two calls to
    // containerd, while the workload may already be running.
    let cgroup = cgroup::dir_of_pid(pid).map_err(|e| format!("cgroup of pid {pid}: {e}")).and_then(|dir| {
        cgroup::id_of(&dir).map(|id| (dir.clone(), id)).map_err(|e| format!("cgroup {}: {e}", dir.display()))
    });
    let (dir, cgroup_id) = match cgroup {
        Ok(c) => c,
        Err(e) => return tracing::warn!(container = %id, error = %e, "describing container"),
    };
    let _ = out.send(Discovered::Seen { dir, cgroup_id }).await;
    match workload(client, ns, id, pid, cgroup_id).await {
        Ok(Some(w)) => {
            let _ = out.send(Discovered::Started(Box::new(w))).await;
        }
        Ok(None) => {
            let _ = out.send(Discovered::Dropped(cgroup_id)).await;
        }
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "describing container");
            let _ = out.send(Discovered::Dropped(cgroup_id)).await;
        }
    }
}

/// The workload of a task; `None` for Kubernetes pod sandboxes (the pause container).
async fn workload(
    client: &containerd_client::Client,
    ns: &str,
    id: &str,
    pid: u32,
    cgroup_id: u64,
) -> Result<Option<Workload>, String> {
    let container = client
        .containers()
        .get(with_namespace!(GetContainerRequest { id: id.to_string() }, ns))
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .container
        .ok_or("no container in reply")?;
    let labels: &HashMap<String, String> = &container.labels;
    if labels.get("io.cri-containerd.kind").is_some_and(|k| k == "sandbox") {
        return Ok(None);
    }
    let digest = match client.images().get(with_namespace!(GetImageRequest { name: container.image.clone() }, ns)).await
    {
        Ok(r) => r.into_inner().image.and_then(|i| i.target).map(|t| t.digest).unwrap_or_default(),
        Err(_) => String::new(),
    };
    // An image removed since the container was made still names one root: key it by the
    // container so nothing is shared by mistake.
    let digest = if digest.is_empty() { format!("container:{id}") } else { digest };
    let label = |k: &str| labels.get(k).cloned();
    let k8s = match (
        label("io.kubernetes.pod.namespace"),
        label("io.kubernetes.pod.name"),
        label("io.kubernetes.container.name"),
    ) {
        (Some(namespace), Some(pod), Some(container)) => {
            Some(K8sIdentity { namespace, pod, container, pod_uid: label("io.kubernetes.pod.uid").unwrap_or_default() })
        }
        _ => None,
    };
    // The image's own layers: the parent of the container's writable snapshot.
    let layers = if container.snapshotter.is_empty() || container.snapshot_key.is_empty() {
        None
    } else {
        let stat =
            StatSnapshotRequest { snapshotter: container.snapshotter.clone(), key: container.snapshot_key.clone() };
        match client.snapshots().stat(with_namespace!(stat, ns)).await {
            Ok(r) => r.into_inner().info.map(|i| i.parent).filter(|p| !p.is_empty()).map(|parent| ImageLayers {
                namespace: ns.to_string(),
                snapshotter: container.snapshotter.clone(),
                parent,
            }),
            Err(e) => {
                tracing::debug!(container = %id, error = %coordinator::chain(&e), "the image's snapshot");
                None
            }
        }
    };
    Ok(Some(Workload {
        id: id.to_string(),
        pid,
        cgroup_id,
        image: container.image,
        digest: digest.into(),
        k8s,
        layers,
        owner: None,
    }))
}

/// Discovery without containerd: every child cgroup of `parent` that holds processes is a
/// container, named after its directory; it ends when it is gone or empty. Polled every
/// `every`. The image is unknown, so each container's root gets its own SBOM.
pub async fn scan_cgroups(parent: &Path, every: std::time::Duration, out: mpsc::Sender<Discovered>) {
    let mut known: HashMap<String, u32> = HashMap::new();
    let mut first = true;
    loop {
        let mut seen = HashMap::new();
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let first_pid = std::fs::read_to_string(dir.join("cgroup.procs"))
                .ok()
                .and_then(|procs| procs.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
            let Some(pid) = first_pid else { continue };
            seen.insert(name.clone(), pid);
            if known.contains_key(&name) {
                continue;
            }
            match cgroup::id_of(&dir) {
                Ok(cgroup_id) => {
                    let _ = out.send(Discovered::Seen { dir: dir.clone(), cgroup_id }).await;
                    let w = Workload {
                        id: name.clone(),
                        pid,
                        cgroup_id,
                        image: "unknown (no container runtime)".into(),
                        digest: format!("cgroup:{name}").into(),
                        k8s: None,
                        layers: None,
                        owner: None,
                    };
                    let _ = out.send(Discovered::Started(Box::new(w))).await;
                }
                Err(e) => tracing::warn!(cgroup = %dir.display(), error = %coordinator::chain(&e), "cgroup id"),
            }
        }
        for gone in known.keys().filter(|k| !seen.contains_key(*k)) {
            let _ = out.send(Discovered::Exited(gone.clone())).await;
        }
        if first {
            let _ = out.send(Discovered::Synced(seen.keys().cloned().collect())).await;
            first = false;
        }
        known = seen;
        tokio::time::sleep(every).await;
    }
}
