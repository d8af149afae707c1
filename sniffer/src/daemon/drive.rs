//! Feeds container discovery into the flow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::FlowOptions;
use super::state::{KernelHandle, Tracking};
use crate::discovery::{Discovered, DiscoveryError};

/// First wait before containerd is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Runs discovery and feeds the coordinator. Watching starts in this loop, at once, when a
/// cgroup is `Seen`; the rest of a start runs in its own task, and an exit waits for its
/// start.
pub(super) async fn drive(
    flow: FlowOptions,
    coordinator: Arc<coordinator::flow::Coordinator>,
    kernel: KernelHandle,
    tracking: Tracking,
    identity: Option<cluster::identity::Identity>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let socket = flow.containerd.clone();
    let parent = flow.cgroup_parent.clone();
    tokio::spawn(async move {
        // Said once, with what fixes it; later failures are quiet and further apart.
        let mut said = false;
        let mut delay = RETRY_FIRST;
        loop {
            match crate::discovery::run(&socket, tx.clone()).await {
                Ok(()) => {
                    tracing::warn!("containerd event stream ended; reconnecting");
                    (said, delay) = (false, RETRY_FIRST);
                }
                Err(e @ DiscoveryError::Unreachable { .. }) if parent.is_some() => {
                    let Some(parent) = &parent else { return };
                    tracing::warn!(error = %coordinator::chain(&e), parent = %parent.display(), "containerd not reachable: discovering containers as the child cgroups of the parent");
                    crate::discovery::scan_cgroups(parent, Duration::from_secs(1), tx).await;
                    return;
                }
                Err(e) if !said => {
                    said = true;
                    tracing::warn!(
                        error = %coordinator::chain(&e),
                        "no container is discovered until containerd answers on {} (give its socket with --containerd, or --cgroup-parent DIR to take each child cgroup of DIR as a container; `sniffer watch` adds one by hand); retrying quietly, at most every {} s",
                        socket.display(),
                        RETRY_MAX.as_secs()
                    );
                }
                Err(e) => tracing::debug!(error = %coordinator::chain(&e), "containerd still unreachable"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        }
    });
    let mut starts: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    while let Some(d) = rx.recv().await {
        // Starts that have run their course need no waiting for: keep the map bounded by
        // the containers starting now.
        starts.retain(|_, s| !s.is_finished());
        match d {
            Discovered::Seen { dir, cgroup_id } => {
                if let Err(e) = kernel.watch(cgroup_id) {
                    tracing::warn!(cgroup = %dir.display(), error = %coordinator::chain(&e), "watching");
                }
                // What ran before the watch began: executables and mapped libraries, read
                // from /proc off the runtime.
                let name = dir.display().to_string();
                let present = tokio::task::spawn_blocking(move || crate::catchup::present(&dir, cgroup_id))
                    .await
                    .unwrap_or_default();
                tracking.watch(cgroup_id, Some(&name), &present);
            }
            Discovered::Started(w) => {
                // Its cgroup is watched since its `Seen`; now it has a name.
                tracking.rename(w.cgroup_id, &w.id);
                let c = coordinator.clone();
                let id = w.id.clone();
                let identity = identity.clone();
                starts.insert(
                    id,
                    tokio::spawn(async move {
                        let mut w = *w;
                        // Cluster mode: the workload its pod belongs to (the pod may reach
                        // the reflector a moment after the container starts).
                        if let (Some(identity), Some(k)) = (&identity, &w.k8s) {
                            w.owner = identity.workload(&k.namespace, &k.pod).await;
                        }
                        if let Err(e) = c.workload_started(w).await {
                            tracing::error!(error = %coordinator::chain(&e), "flow");
                        }
                    }),
                );
            }
            Discovered::Exited(id) => {
                let start = starts.remove(&id);
                let c = coordinator.clone();
                let settled = tracking.clone();
                tokio::spawn(async move {
                    if let Some(s) = start {
                        let _ = s.await;
                    }
                    // What its processes did last is still in the ring buffer: read it first.
                    settled.settled(std::time::Duration::from_secs(1)).await;
                    if let Err(e) = c.workload_exited(&id).await {
                        tracing::error!(error = %coordinator::chain(&e), "flow");
                    }
                });
            }
            Discovered::Dropped(cgroup_id) => {
                let _ = kernel.unwatch(cgroup_id);
                tracking.remove(cgroup_id);
            }
            Discovered::Synced(running) => {
                let c = coordinator.clone();
                tokio::spawn(async move {
                    match c.synced(&running).await {
                        Ok(n) if n > 0 => tracing::info!(finished = n, "learning of containers gone unseen finished"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %coordinator::chain(&e), "flow"),
                    }
                });
            }
        }
    }
}
