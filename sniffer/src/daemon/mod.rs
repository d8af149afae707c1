//! `sniffer run`: the node daemon. Loads the programs, aggregates events per container,
//! drives the flow and serves the local API and metrics.
//!
//! `state` holds the shared state as handles that lock only inside their own short
//! methods; `service` answers the API; `metrics` renders Prometheus text; `drive` feeds
//! discovery into the flow. Blocking work (the store, `/proc`, files of containers) runs on
//! tokio's blocking pool, never on the runtime's two workers.

mod drive;
mod metrics;
mod service;
pub mod state;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::{UnixListener, UnixStream};

use crate::kernel::{self, Kernel};
use crate::loader::LoaderResolver;
use crate::tracker::Limits;
use state::{FlowSniffer, KernelHandle, Tracking};

pub use service::follow;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Unix socket of the local API.
    pub socket: PathBuf,
    /// How to load the kernel programs.
    pub kernel: kernel::Options,
    /// Bounds of per-container state.
    pub limits: Limits,
    /// The New Workload flow; `None` runs the sniffer alone.
    pub flow: Option<FlowOptions>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
}

/// The flow's settings.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// containerd's API socket.
    pub containerd: PathBuf,
    /// Without containerd, discover containers as the child cgroups of this directory.
    pub cgroup_parent: Option<PathBuf>,
    /// Where state lives (`state.db`).
    pub state_dir: PathBuf,
    /// The flow proper.
    pub config: coordinator::flow::Config,
    /// Where reports go, if anywhere.
    pub backend: Option<coordinator::submit::Backend>,
    /// Retry policy.
    pub policy: coordinator::submit::Policy,
    /// Where image SBOMs are read from.
    pub image_source: ImageSource,
    /// Cluster mode, when on.
    pub cluster: Option<ClusterOptions>,
}

/// Cluster mode's settings.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This node's name.
    pub node: String,
    /// How long another node's image SBOM reservation is waited for.
    pub takeover_after: Duration,
    /// Writes to the API server a second, on average.
    pub qps: f64,
    /// Writes at once.
    pub burst: u32,
}

/// Where an image's SBOM is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageSource {
    /// A read-only view of the image's own layers, from containerd's snapshotter (the
    /// container's root when the runtime cannot make one, said in the SBOM).
    Layers,
    /// The first running container's root (its writes and volumes included).
    Root,
}

/// Everything the daemon's tasks share; cheap to clone.
#[derive(Clone)]
struct Daemon {
    kernel: KernelHandle,
    tracking: Tracking,
    probes: crate::probes::ProbeManager,
    flow: Option<Arc<coordinator::flow::Coordinator>>,
    started: Instant,
}

/// How often freed heap memory is handed back to the system, in seconds.
/// Free heap past which it is handed back: persisting what 110 containers learned frees
/// tens of MiB at once, and glibc keeps what it frees.
const TRIM_ABOVE: usize = 4 << 20;

/// Hands freed heap memory back to the system when more than [`TRIM_ABOVE`] is free
/// (glibc keeps it otherwise, and the RSS a node's memory limit sees would only ever grow,
/// and differ from run to run with the moment of reading). Checked every second: counting
/// free chunks costs microseconds; a trim, a few milliseconds, only after a large free.
fn trim_heap() {
    // SAFETY: mallinfo2 and malloc_trim only walk the allocator's own lists; any thread
    // may call them.
    let free = unsafe { libc::mallinfo2() }.fordblks;
    if free > TRIM_ABOVE {
        // SAFETY: as above.
        unsafe { libc::malloc_trim(0) };
    }
}

/// Limits glibc to two heap arenas: each thread of the blocking pool would otherwise get
/// its own, each keeping what it freed. Call before any thread starts.
pub fn limit_heap_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
}

/// Refuses a socket another daemon is serving.
async fn check_free(socket: &Path) -> anyhow::Result<()> {
    if socket.exists() && UnixStream::connect(socket).await.is_ok() {
        bail!("socket {} is taken: another sniffer daemon is running", socket.display());
    }
    Ok(())
}

/// Binds the socket, refusing one another daemon is serving; removes a stale one.
async fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    check_free(socket).await?;
    if socket.exists() {
        std::fs::remove_file(socket).with_context(|| format!("removing stale socket {}", socket.display()))?;
    }
    // Only root may talk to the daemon: it can watch any cgroup and shows every container's
    // files. The socket is created 0600 (the umask set around bind leaves no moment where
    // it is open to others), owned by the daemon's user.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(socket);
    nix::sys::stat::umask(old);
    let listener = bound.with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(options: DaemonOptions) -> anyhow::Result<()> {
    // The socket is bound once everything is ready (loading the programs takes about a
    // second, and a client that connected before would wait that long for an answer);
    // another daemon on it is refused first.
    check_free(&options.socket).await?;
    // Root without the capabilities (a container's root, say): each missing one named with
    // its use, before anything is loaded. Not root at all is Kernel::load's to say.
    // SNIFFER_SKIP_CAPABILITY_CHECK=1 is for measuring what breaks without one.
    if nix::unistd::geteuid().is_root() && std::env::var_os("SNIFFER_SKIP_CAPABILITY_CHECK").is_none() {
        let views = options.flow.as_ref().is_some_and(|f| f.image_source == ImageSource::Layers);
        crate::caps::check(&crate::caps::needed(options.flow.is_some(), views))?;
    }
    let mut kernel = Kernel::load(&options.kernel)?;
    let mut reader = kernel.events()?;
    let probes =
        crate::probes::ProbeManager::start_with(kernel.call_program(), kernel.class_program(), options.kernel.probes);
    // Loading parsed the kernel's BTF and the object: megabytes freed, which glibc keeps
    // unless told to give them back.
    trim_heap();
    tracing::info!(programs = ?kernel.attached(), socket = %options.socket.display(), "sniffer daemon started");
    let kernel = KernelHandle::new(kernel);
    let tracking = Tracking::new(options.limits);
    let mut tasks = Vec::new();
    let mut flow = None;
    let mut identity = None;
    if let Some(flow_options) = options.flow.clone() {
        // Said once, at start-up: without a database every report says "not scanned".
        let db = flow_options.config.vuln_db.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || vuln::Db::open(&db).map(drop)).await? {
            tracing::warn!(
                error = %coordinator::chain(&e),
                "no usable vulnerability database at {}: reports are stored marked \"not scanned\" until `sniffer db update` (or `sniffer db import PATH`, offline) makes one",
                flow_options.config.vuln_db.display()
            );
        }
        let state_dir = flow_options.state_dir.clone();
        let mut store: Arc<dyn coordinator::store::Storage> =
            Arc::new(tokio::task::spawn_blocking(move || coordinator::store::Store::open(&state_dir)).await??);
        if let Some(cluster) = &flow_options.cluster {
            let client = kube::Client::try_default().await.context(
                "cluster mode: connecting to the Kubernetes API (in-cluster service account, or KUBECONFIG)",
            )?;
            let (found, watch) = ::cluster::identity::Identity::start(client.clone(), &cluster.node);
            tasks.push(tokio::spawn(watch));
            identity = Some(found);
            let shared = Arc::new(::cluster::store::ClusterStorage::new(
                store.clone(),
                client.clone(),
                tokio::runtime::Handle::current(),
                &cluster.node,
                cluster.takeover_after,
            ));
            tasks.push(tokio::spawn(::cluster::store::publish(
                store.clone(),
                client,
                shared.queued(),
                ::cluster::limit::RateLimit::new(cluster.qps, cluster.burst),
            )));
            tracing::info!(node = %cluster.node, "cluster mode: results are written as sniffer.dev custom resources");
            store = shared;
        }
        let bus = Arc::new(coordinator::bus::Bus::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let sniffer = FlowSniffer { kernel: kernel.clone(), tracking: tracking.clone(), probes: probes.clone() };
        let mut c = coordinator::flow::Coordinator::new(
            store.clone(),
            bus.clone(),
            Arc::new(sniffer),
            flow_options.config.clone(),
            wake.clone(),
        );
        if flow_options.image_source == ImageSource::Layers {
            let (socket, dir) = (flow_options.containerd.clone(), flow_options.state_dir.join("views"));
            // It unmounts what an earlier life left: file system work, off the runtime.
            let views = tokio::task::spawn_blocking(move || {
                crate::image_view::ContainerdViews::new(&socket, &dir, tokio::runtime::Handle::current())
            })
            .await?;
            c = c.with_image_views(Arc::new(views));
        }
        let c = Arc::new(c);
        if let Some(backend) = flow_options.backend.clone() {
            tasks.push(tokio::spawn(coordinator::submit::run(store, bus, backend, flow_options.policy, wake)));
        }
        let ticker = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            // A failing state directory (a full disk) is said once, and again when it
            // works: not once a second.
            let mut failing: Option<String> = None;
            loop {
                tick.tick().await;
                match ticker.tick().await {
                    Err(e) if failing.as_deref() != Some(&coordinator::chain(&e)) => {
                        tracing::error!(error = %coordinator::chain(&e), "storing flow state failed: sniffing and learning go on in memory, and what was learned is stored once the state directory works again");
                        failing = Some(coordinator::chain(&e));
                    }
                    Err(_) => {}
                    Ok(()) => {
                        if failing.take().is_some() {
                            tracing::info!("the state directory works again");
                        }
                    }
                }
            }
        }));
        let (k, t) = (kernel.clone(), tracking.clone());
        tasks.push(tokio::spawn(drive::drive(flow_options, c.clone(), k, t, identity.clone())));
        flow = Some(c);
    }
    let daemon = Daemon { kernel, tracking, probes, flow, started: Instant::now() };
    let listener = bind(&options.socket).await?;

    let events = daemon.tracking.clone();
    let calls = daemon.probes.clone();
    tasks.push(tokio::spawn(async move {
        let mut batch = Vec::new();
        let mut loaders = LoaderResolver::new();
        loop {
            if let Err(e) = reader.next_batch(&mut batch).await {
                tracing::error!(error = %coordinator::chain(&e), "reading the ring buffer");
                return;
            }
            // Loaders are read from executables inside containers: file I/O, off the runtime.
            let resolved = tokio::task::spawn_blocking(move || {
                loaders.add_loaders(&mut batch);
                (loaders, batch)
            })
            .await;
            match resolved {
                Ok((l, b)) => (loaders, batch) = (l, b),
                Err(e) => {
                    tracing::error!(error = %coordinator::chain(&e), "resolving loaders");
                    return;
                }
            }
            events.record(&batch);
            batch.clear();
            calls.record(&reader.take_calls());
            calls.record_classes(&reader.take_classes());
            events.batch_done();
        }
    }));

    let refresh = daemon.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            // Persisting, scans and API answers free large buffers now and then.
            let _ = tokio::task::spawn_blocking(trim_heap).await;
            // Once a second: the rate sample, and per-container losses from the kernel.
            refresh.tracking.sample();
            let lost: Vec<(u64, u64)> =
                refresh.tracking.watched().into_iter().map(|id| (id, refresh.kernel.lost(id))).collect();
            refresh.tracking.set_lost(&lost);
        }
    }));

    if let Some(addr) = options.metrics {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?;
        tasks.push(tokio::spawn(metrics::serve(listener, daemon.clone())));
        tracing::info!(%addr, "serving Prometheus metrics");
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting on the API socket")?;
                let daemon = daemon.clone();
                tokio::spawn(async move {
                    if let Err(e) = service::serve(stream, daemon).await {
                        tracing::warn!(error = %e, "API connection");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    for t in &tasks {
        t.abort();
    }
    if let Some(c) = &daemon.flow
        && let Err(e) = c.persist().await
    {
        tracing::error!(error = %coordinator::chain(&e), "persisting learning state");
    }
    let _ = std::fs::remove_file(&options.socket);
    tracing::info!("sniffer daemon stopped");
    Ok(())
}
