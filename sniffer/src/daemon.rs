//! `sniffer run`: the node daemon. Loads the programs, aggregates events per container and
//! serves the local API.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::api::{Request, Response, Status};
use crate::cgroup;
use crate::kernel::{self, Kernel};
use crate::loader::LoaderResolver;
use crate::tracker::Container;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Unix socket of the local API.
    pub socket: PathBuf,
    /// How to load the kernel programs.
    pub kernel: kernel::Options,
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
}

/// The sniffer as the coordinator sees it: the shared daemon state.
struct FlowSniffer(Shared);

impl coordinator::flow::Sniffer for FlowSniffer {
    fn watch(&self, cgroup_id: u64) -> Result<(), String> {
        let mut s = lock(&self.0);
        s.kernel.watch(cgroup_id).map_err(|e| e.to_string())?;
        let c = s.containers.entry(cgroup_id).or_insert_with(|| Container::new(cgroup_id.to_string(), cgroup_id));
        c.watching = true;
        Ok(())
    }

    fn unwatch(&self, cgroup_id: u64) {
        let mut s = lock(&self.0);
        let lost = s.kernel.unwatch(cgroup_id).unwrap_or(0);
        if let Some(c) = s.containers.get_mut(&cgroup_id) {
            c.lost = c.lost.max(lost);
            c.watching = false;
        }
    }

    fn observed(&self, cgroup_id: u64) -> (Vec<PathBuf>, bool) {
        let mut s = lock(&self.0);
        let lost = s.kernel.counts_for(cgroup_id).map(|c| c.lost).unwrap_or(0);
        match s.containers.get(&cgroup_id) {
            Some(c) => (c.files().map(|f| PathBuf::from(&f.path)).collect(), c.summary().complete && lost == 0),
            None => (Vec::new(), lost == 0),
        }
    }
}

/// Runs discovery and feeds the coordinator. Watching starts in this loop, at once, when a
/// cgroup is `Seen`; the rest of a start runs in its own task, and an exit waits for its
/// start.
async fn drive(flow: FlowOptions, coordinator: Arc<coordinator::flow::Coordinator>, state: Shared) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let socket = flow.containerd.clone();
    let parent = flow.cgroup_parent.clone();
    tokio::spawn(async move {
        loop {
            match crate::discovery::run(&socket, tx.clone()).await {
                Ok(()) => tracing::warn!("containerd event stream ended; reconnecting"),
                Err(e @ crate::discovery::DiscoveryError::Unreachable { .. }) if parent.is_some() => {
                    let parent = parent.expect("checked");
                    tracing::warn!(error = %e, parent = %parent.display(), "containerd not reachable: discovering containers as the child cgroups of the parent");
                    crate::discovery::scan_cgroups(&parent, Duration::from_secs(1), tx).await;
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "container discovery: containerd unavailable, retrying in 5 s (give --cgroup-parent to discover by cgroups; `sniffer watch` adds one by hand)"),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let mut starts: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    while let Some(d) = rx.recv().await {
        match d {
            crate::discovery::Discovered::Seen { dir, cgroup_id } => {
                let mut s = lock(&state);
                if let Err(e) = s.kernel.watch(cgroup_id) {
                    tracing::warn!(cgroup = %dir.display(), error = %e, "watching");
                }
                // What ran before the watch began: executables and mapped libraries.
                let present = crate::catchup::present(&dir, cgroup_id);
                let c = s.containers.entry(cgroup_id).or_insert_with(|| Container::new(dir.display().to_string(), cgroup_id));
                c.watching = true;
                for event in &present {
                    c.record(event);
                }
            }
            crate::discovery::Discovered::Started(w) => {
                // Its cgroup is watched since its `Seen`; now it has a name.
                if let Some(c) = lock(&state).containers.get_mut(&w.cgroup_id) {
                    c.name = w.id.clone();
                }
                let c = coordinator.clone();
                let id = w.id.clone();
                starts.insert(id, tokio::spawn(async move {
                    if let Err(e) = c.workload_started(w).await {
                        tracing::error!(error = %e, "flow");
                    }
                }));
            }
            crate::discovery::Discovered::Exited(id) => {
                let start = starts.remove(&id);
                let c = coordinator.clone();
                tokio::spawn(async move {
                    if let Some(s) = start {
                        let _ = s.await;
                    }
                    if let Err(e) = c.workload_exited(&id).await {
                        tracing::error!(error = %e, "flow");
                    }
                });
            }
            crate::discovery::Discovered::Dropped(cgroup_id) => {
                let mut s = lock(&state);
                let _ = s.kernel.unwatch(cgroup_id);
                s.containers.remove(&cgroup_id);
            }
            crate::discovery::Discovered::Synced(running) => {
                let c = coordinator.clone();
                tokio::spawn(async move {
                    match c.synced(&running).await {
                        Ok(n) if n > 0 => tracing::info!(finished = n, "learning of containers gone unseen finished"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "flow"),
                    }
                });
            }
        }
    }
}

/// Shared state: the kernel handle and every container.
struct State {
    kernel: Kernel,
    containers: HashMap<u64, Container>,
    started: Instant,
    events: u64,
    /// (when, events so far), one sample a second, ten seconds kept.
    samples: VecDeque<(Instant, u64)>,
    /// The flow, when it runs.
    coordinator: Option<Arc<coordinator::flow::Coordinator>>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves data that is still consistent enough to serve.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Binds the socket, refusing one another daemon is serving; removes a stale one.
async fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).await.is_ok() {
            bail!("socket {} is taken: another sniffer daemon is running", socket.display());
        }
        std::fs::remove_file(socket).with_context(|| format!("removing stale socket {}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(options: DaemonOptions) -> anyhow::Result<()> {
    let listener = bind(&options.socket).await?;
    let mut kernel = Kernel::load(&options.kernel)?;
    let mut reader = kernel.events()?;
    tracing::info!(programs = ?kernel.attached(), socket = %options.socket.display(), "sniffer daemon started");
    let state: Shared = Arc::new(Mutex::new(State {
        kernel,
        containers: HashMap::new(),
        started: Instant::now(),
        events: 0,
        samples: VecDeque::new(),
        coordinator: None,
    }));
    let mut flow_tasks = Vec::new();
    if let Some(flow) = options.flow.clone() {
        let store: Arc<dyn coordinator::store::Storage> = Arc::new(coordinator::store::Store::open(&flow.state_dir)?);
        let bus = Arc::new(coordinator::bus::Bus::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let c = Arc::new(coordinator::flow::Coordinator::new(
            store.clone(),
            bus.clone(),
            Arc::new(FlowSniffer(state.clone())),
            flow.config.clone(),
            wake.clone(),
        ));
        lock(&state).coordinator = Some(c.clone());
        if let Some(backend) = flow.backend.clone() {
            flow_tasks.push(tokio::spawn(coordinator::submit::run(store, bus, backend, flow.policy, wake)));
        }
        let ticker = c.clone();
        flow_tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = ticker.tick().await {
                    tracing::error!(error = %e, "flow tick");
                }
            }
        }));
        flow_tasks.push(tokio::spawn(drive(flow, c, state.clone())));
    }

    let events_state = state.clone();
    let events_task = tokio::spawn(async move {
        let mut batch = Vec::new();
        let mut loaders = LoaderResolver::new();
        loop {
            if let Err(e) = reader.next_batch(&mut batch).await {
                tracing::error!(error = %e, "reading the ring buffer");
                return;
            }
            loaders.add_loaders(&mut batch);
            let mut s = lock(&events_state);
            s.events += batch.len() as u64;
            for event in batch.drain(..) {
                match s.containers.get_mut(&event.cgroup_id) {
                    Some(container) => {
                        container.record(&event);
                    }
                    None => tracing::debug!(cgroup = event.cgroup_id, path = ?event.path, "event of an unknown cgroup"),
                }
            }
        }
    });

    let tick_state = state.clone();
    let tick_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            refresh(&mut lock(&tick_state));
        }
    });

    if let Some(addr) = options.metrics {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?;
        let metrics_state = state.clone();
        flow_tasks.push(tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let body = metrics(&metrics_state);
                tokio::spawn(async move {
                    // One request per connection: read its head, answer, close.
                    let mut buf = [0u8; 1024];
                    let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                });
            }
        }));
        tracing::info!(%addr, "serving Prometheus metrics");
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting on the API socket")?;
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, state).await {
                        tracing::warn!(error = %e, "API connection");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    events_task.abort();
    tick_task.abort();
    let flow = lock(&state).coordinator.clone();
    if let Some(c) = flow
        && let Err(e) = c.persist()
    {
        tracing::error!(error = %e, "persisting learning state");
    }
    for t in flow_tasks {
        t.abort();
    }
    let _ = std::fs::remove_file(&options.socket);
    tracing::info!("sniffer daemon stopped");
    Ok(())
}

/// The Prometheus text exposition of the daemon's counters.
fn metrics(state: &Shared) -> String {
    let s = lock(state);
    let lost = s.kernel.stats().map(|k| k.lost).unwrap_or(0);
    let mut rows: Vec<(&str, &str, &str, u64)> = vec![
        ("sniffer_events_total", "counter", "File events received from the kernel.", s.events),
        ("sniffer_lost_events_total", "counter", "Events lost because the ring buffer was full.", lost),
        ("sniffer_watched_containers", "gauge", "Containers being sniffed.", s.containers.values().filter(|c| c.watching).count() as u64),
    ];
    if let Some(f) = s.coordinator.as_ref().and_then(|c| c.status().ok()) {
        rows.extend([
            ("sniffer_learning_instances", "gauge", "Instances being learned.", f.learning as u64),
            ("sniffer_sboms", "gauge", "Image SBOMs stored.", f.sboms),
            ("sniffer_reports_stored", "gauge", "Reports stored.", f.reports),
            ("sniffer_reports_sent_total", "counter", "Reports the backend accepted.", f.sent),
            ("sniffer_outbox_depth", "gauge", "Reports waiting to be sent.", f.outbox),
            ("sniffer_dead_letters", "gauge", "Reports given up on.", f.dead_letters.len() as u64),
        ]);
    }
    drop(s);
    rows.iter().map(|(name, kind, help, v)| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n")).collect()
}

/// Once a second: rate samples and per-container losses from the kernel.
fn refresh(s: &mut State) {
    let now = Instant::now();
    let events = s.events;
    s.samples.push_back((now, events));
    while s.samples.len() > 11 {
        s.samples.pop_front();
    }
    let State { kernel, containers, .. } = s;
    for container in containers.values_mut().filter(|c| c.watching) {
        if let Ok(counts) = kernel.counts_for(container.cgroup_id) {
            container.lost = container.lost.max(counts.lost);
        }
    }
}

fn events_per_s(s: &State) -> f64 {
    match (s.samples.front(), s.samples.back()) {
        (Some(&(t0, e0)), Some(&(t1, e1))) if t1 > t0 => (e1 - e0) as f64 / (t1 - t0).as_secs_f64(),
        _ => 0.0,
    }
}

fn find<'a>(s: &'a mut State, key: &str) -> Option<&'a mut Container> {
    let by_id = key.parse::<u64>().ok();
    s.containers.values_mut().find(|c| c.name == key || Some(c.cgroup_id) == by_id)
}

async fn serve(stream: UnixStream, state: Shared) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::LearnStop { container }) => learn_stop(&state, &container).await,
        Ok(request) => handle(&state, request),
        Err(e) => Response::Error { message: format!("malformed request: {e}") },
    };
    let mut reply = serde_json::to_vec(&response)?;
    reply.push(b'\n');
    write.write_all(&reply).await?;
    Ok(())
}

fn handle(state: &Shared, request: Request) -> Response {
    let mut s = lock(state);
    let result = match request {
        Request::Status => status(&mut s),
        Request::Containers => {
            let mut containers: Vec<_> = s.containers.values().map(Container::summary).collect();
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Response::Containers { containers })
        }
        Request::Files { container } => match find(&mut s, &container) {
            Some(c) => Ok(Response::Files { container: c.summary(), files: c.files().cloned().collect() }),
            None => Err(format!("no container {container:?} is watched")),
        },
        Request::Watch { cgroup, name } => watch(&mut s, &cgroup, name),
        Request::Unwatch { container } => unwatch(&mut s, &container),
        Request::Events { after } => match &s.coordinator {
            Some(c) => {
                let all = c.bus().history();
                let next = all.len();
                Ok(Response::Events { events: all.into_iter().skip(after).collect(), next })
            }
            None => Err(FLOW_OFF.into()),
        },
        Request::Sbom { key } => match &s.coordinator {
            Some(c) => match c.sbom_for(&key) {
                Ok(Some((sbom, filtered))) => Ok(Response::Sbom { sbom: Box::new(sbom), filtered: filtered.map(Box::new) }),
                Ok(None) => Err(format!("no SBOM for {key:?} (yet)")),
                Err(e) => Err(e.to_string()),
            },
            None => Err(FLOW_OFF.into()),
        },
        Request::Report { key } => match &s.coordinator {
            Some(c) => match c.find_report(&key) {
                Ok(Some(r)) => Ok(Response::Report(Box::new(r))),
                Ok(None) => Err(format!("no report for {key:?} (yet)")),
                Err(e) => Err(e.to_string()),
            },
            None => Err(FLOW_OFF.into()),
        },
        Request::LearnStop { .. } => unreachable!("served before"),
    };
    result.unwrap_or_else(|message| Response::Error { message })
}

const FLOW_OFF: &str = "the flow is not running in this daemon (started with --no-flow)";

async fn learn_stop(state: &Shared, which: &str) -> Response {
    let c = lock(state).coordinator.clone();
    let Some(c) = c else { return Response::Error { message: FLOW_OFF.into() } };
    match c.learn_stop(which).await {
        Ok(true) => Response::Ok { message: format!("learning of {which} ended; SBOM' stored") },
        Ok(false) => Response::Error { message: format!("{which} is not being learned") },
        Err(e) => Response::Error { message: e.to_string() },
    }
}

fn status(s: &mut State) -> Result<Response, String> {
    Ok(Response::Status(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        programs: s.kernel.attached().to_vec(),
        file_reads: Some(s.kernel.file_reads()),
        uptime_s: s.started.elapsed().as_secs(),
        events: s.events,
        events_per_s: events_per_s(s),
        kernel: s.kernel.stats().map_err(|e| e.to_string())?,
        watched: s.containers.values().filter(|c| c.watching).count(),
        flow: match &s.coordinator {
            Some(c) => Some(c.status().map_err(|e| e.to_string())?),
            None => None,
        },
    }))
}

fn watch(s: &mut State, dir: &Path, name: Option<String>) -> Result<Response, String> {
    let id = cgroup::id_of(dir).map_err(|e| format!("cgroup {}: {e}", dir.display()))?;
    let name = name.unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    s.kernel.watch(id).map_err(|e| e.to_string())?;
    let container = s.containers.entry(id).or_insert_with(|| Container::new(name, id));
    container.watching = true;
    Ok(Response::Container(container.summary()))
}

fn unwatch(s: &mut State, key: &str) -> Result<Response, String> {
    let id = find(s, key).map(|c| c.cgroup_id).ok_or_else(|| format!("no container {key:?} is watched"))?;
    let lost = s.kernel.unwatch(id).map_err(|e| e.to_string())?;
    let container = s.containers.get_mut(&id).expect("found above");
    container.lost = container.lost.max(lost);
    container.watching = false;
    Ok(Response::Container(container.summary()))
}
