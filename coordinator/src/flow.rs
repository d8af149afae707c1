//! The flow itself. The daemon calls [`Coordinator::workload_started`] when discovery sees a
//! container, [`Coordinator::workload_exited`] when it goes, [`Coordinator::learn_stop`] on
//! request, and [`Coordinator::tick`] every second; the coordinator drives the sniffer
//! through the [`Sniffer`] trait.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use sbom::time::Timestamp;

use crate::bus::{Bus, FlowEvent};
use crate::code::{Code, RESUMED, Seed, interrupted, probe_notes};
use crate::ids::{Digest, EndReason, InstanceId, ReportId};
use crate::model::{Learning, Report, ReportKind, Workload};
use crate::posture::Posture;
use crate::store::{Claim, Storage, StorageExt, StoreError, Table};
use crate::submit::OutboxEntry;
use crate::timing::Timings;

/// What the sniffer saw of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Distinct paths it opened or executed.
    pub paths: Vec<PathBuf>,
    /// Why `paths` may be short (events lost, paths cut or dropped at the cap); empty when
    /// it is complete.
    pub incomplete: Vec<String>,
}

/// How far learning of a container has got: when it has not moved, there is nothing new
/// to persist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Distinct paths so far.
    pub paths: usize,
    /// Events lost, paths cut and paths dropped so far, together.
    pub short_by: u64,
}

/// The cause an implementation of [`Sniffer`] or [`ImageViews`] gives.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a cgroup could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("watching cgroup {cgroup_id}")]
pub struct WatchError {
    /// The cgroup.
    pub cgroup_id: u64,
    /// Why.
    #[source]
    pub source: Cause,
}

/// Why no view of an image's layers could be made.
#[derive(Debug, thiserror::Error)]
#[error("a read-only view of the image's layers {parent}")]
pub struct ViewError {
    /// The committed snapshot the view was asked of.
    pub parent: String,
    /// Why.
    #[source]
    pub source: Cause,
}

/// What the flow needs of the sniffer. Implementations answer from their own state and
/// must not call back into the coordinator (see DESIGN.md, "Locks").
pub trait Sniffer: Send + Sync + 'static {
    /// Starts watching a cgroup.
    fn watch(&self, cgroup_id: u64) -> Result<(), WatchError>;
    /// Stops watching it.
    fn unwatch(&self, cgroup_id: u64);
    /// What was seen of it.
    fn observed(&self, cgroup_id: u64) -> Observed;
    /// How far learning has got, cheaply (no path is copied).
    fn progress(&self, cgroup_id: u64) -> Progress;
    /// Probes the entries of these functions of these binaries (paths in the container's
    /// root; a process of it is `pid`) while the cgroup is watched. Never blocks.
    fn probe(&self, cgroup_id: u64, pid: u32, targets: Vec<ProbeTarget>) {
        let _ = (cgroup_id, pid, targets);
    }
    /// What the probes saw of the cgroup, when it had any.
    fn calls(&self, cgroup_id: u64) -> Option<vuln::reach::Calls> {
        let _ = cgroup_id;
        None
    }
}

/// A binary in a container and the functions of it to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Its path in the container's root.
    pub binary: PathBuf,
    /// The functions, as its function table names them (none for a JVM: its class
    /// definition is probed).
    pub functions: Vec<String>,
    /// A JVM's `libjvm.so`, whose class definitions are probed.
    pub jvm: bool,
}

/// A read-only view of an image's own layers, mounted somewhere; dropping it unmounts and
/// releases it.
pub trait ImageView: Send {
    /// Where the image's root can be read.
    fn path(&self) -> &Path;
}

/// Makes image views from the runtime's snapshots (see DESIGN.md: the image SBOM is read
/// from the image, not from a running container that can add or hide files).
pub trait ImageViews: Send + Sync + 'static {
    /// A view of `layers`, or an error saying why none could be made (the container's root
    /// is read instead, and the SBOM says so). Blocking: called on the blocking pool.
    fn open(&self, layers: &crate::model::ImageLayers) -> Result<Box<dyn ImageView>, ViewError>;
}

/// Flow settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The vulnerability database.
    pub vuln_db: PathBuf,
    /// How long an instance is learned.
    pub learning_window: Duration,
    /// How often learning state is persisted.
    pub persist_every: Duration,
    /// Longest an image's SBOM may take; past it the computation is abandoned with a
    /// warning (`SbomFailed`) and the next container of the image tries again.
    pub sbom_timeout: Duration,
    /// What one image's SBOM may cost.
    pub budgets: sbom::Budgets,
}

/// Counts for `sniffer status` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStatus {
    /// Image SBOMs stored.
    pub sboms: u64,
    /// SBOM's stored.
    #[serde(rename = "primes")]
    pub runtime_sboms: u64,
    /// Reports stored.
    pub reports: u64,
    /// Reports the backend accepted.
    pub sent: u64,
    /// Reports waiting to be sent.
    pub outbox: u64,
    /// Reports given up on (listed).
    pub dead_letters: Vec<String>,
    /// Instances being learned now.
    pub learning: usize,
}

struct Active {
    workload: Workload,
    instance: InstanceId,
    deadline: Instant,
    started_at: Timestamp,
    /// What was learned before a restart.
    seed: Arc<Seed>,
    /// Progress when last persisted.
    persisted: Option<Progress>,
    /// Its image's SBOM and file index, when they could be made.
    image: Option<Image>,
    /// Learning has ended (unwatched, announced); storing its result is what remains.
    ending: bool,
}

/// How long after a failed store an ended instance is finished again.
const FINISH_RETRY: Duration = Duration::from_secs(10);

/// An image's SBOM, the file index SBOM' is computed with, and what its Go binaries link.
struct ImageData {
    sbom: sbom::Sbom,
    index: sbom::index::FileIndex,
    code: Code,
}

type Image = Arc<ImageData>;

/// Per image digest, filled once while a container of it runs. The first container of an
/// image computes it; others of that image wait for it; other images go on in parallel.
/// An image leaves the map when no instance of it is being learned (each instance holds
/// its own reference), so the daemon holds file indexes only of images it is learning.
type Indexes = HashMap<Digest, Arc<tokio::sync::OnceCell<Image>>>;

/// The coordinator.
pub struct Coordinator {
    store: Arc<dyn Storage>,
    bus: Arc<Bus>,
    sniffer: Arc<dyn Sniffer>,
    config: Config,
    outbox: Arc<Notify>,
    active: Mutex<HashMap<String, Active>>,
    images: Mutex<Indexes>,
    last_persist: Mutex<Instant>,
    views: Option<Arc<dyn ImageViews>>,
    posture: Posture,
    timings: Timings,
}

/// Why an image has no SBOM and index.
enum ImageError {
    /// It could not be made from this container (published as `SbomFailed`); a later
    /// container of the image tries again.
    Failed,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for ImageError {
    fn from(e: StoreError) -> Self {
        ImageError::Store(e)
    }
}

/// [`Storage::put_many`] of records whose keys are owned.
fn put_owned(store: &dyn Storage, items: Vec<(Table, String, serde_json::Value)>) -> Result<(), StoreError> {
    let (keys, values): (Vec<(Table, String)>, Vec<serde_json::Value>) =
        items.into_iter().map(|(k, key, v)| ((k, key), v)).unzip();
    let items: Vec<(Table, &str, serde_json::Value)> =
        keys.iter().zip(values).map(|((k, key), v)| (*k, key.as_str(), v)).collect();
    store.put_many(&items)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Coordinator {
    /// A coordinator over `store`; `outbox` is notified when a report is queued.
    pub fn new(
        store: Arc<dyn Storage>,
        bus: Arc<Bus>,
        sniffer: Arc<dyn Sniffer>,
        config: Config,
        outbox: Arc<Notify>,
    ) -> Self {
        Coordinator {
            store,
            bus,
            sniffer,
            config,
            outbox,
            active: Mutex::new(HashMap::new()),
            images: Mutex::new(HashMap::new()),
            last_persist: Mutex::new(Instant::now()),
            views: None,
            posture: Posture::default(),
            timings: Timings::default(),
        }
    }

    /// Reads each image's SBOM from a view of its own layers, made by `views`, wherever
    /// the runtime says where they are.
    pub fn with_image_views(mut self, views: Arc<dyn ImageViews>) -> Self {
        self.views = Some(views);
        self
    }

    /// The event bus.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// What the reports of the instances and images running here say (metrics).
    pub fn posture(&self) -> &Posture {
        &self.posture
    }

    /// How long SBOMs, scans and learning took (metrics).
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// Counts the reports of a container's instance and image that are not counted yet
    /// (a restarted daemon, an instance learned before, an image of another container).
    async fn count_reports(&self, w: &Workload) -> Result<(), StoreError> {
        let Some(missing) = self.posture.started(w) else {
            tracing::warn!(
                container = %w.id,
                bound = crate::posture::MAX_CONTAINERS,
                "too many containers to count in the findings metrics: this one is not"
            );
            return Ok(());
        };
        let mut keys = Vec::new();
        if missing.instance {
            keys.push(format!("instance:{}", w.instance()));
        }
        if missing.image {
            keys.push(format!("image:{}", w.digest));
        }
        for key in keys {
            let k = key.clone();
            let report = self
                .stored(move |s| match s.get::<ReportId>(Table::ReportKey, &k)? {
                    Some(id) => s.get::<Report>(Table::Report, id.as_str()),
                    None => Ok(None),
                })
                .await?;
            if let Some(report) = report {
                self.posture.reported(&report);
            }
        }
        Ok(())
    }

    /// Runs store work on the blocking pool: redb reads, and writes with their fsync, never
    /// hold one of the runtime's few workers.
    async fn stored<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|source| StoreError::Task { what: "store", source })?
    }

    /// A container started (or was found running at start-up).
    pub async fn workload_started(&self, w: Workload) -> Result<(), StoreError> {
        if lock(&self.active).contains_key(&w.id) {
            return Ok(());
        }
        // Metrics only: a store that fails here must not cost the container its learning.
        if let Err(e) = self.count_reports(&w).await {
            tracing::warn!(container = %w.id, error = %crate::chain(&e), "reading stored reports for metrics");
        }
        let instance = w.instance();
        self.bus.publish(FlowEvent::WorkloadStarted {
            id: w.id.clone(),
            image: w.image.clone(),
            digest: w.digest.clone(),
            instance: instance.clone(),
        });
        // Another replica of the workload is being learned on this node: it learns for both
        // (asked first: no store or cluster lookup for it).
        let twin = lock(&self.active).values().any(|a| a.instance == instance);
        if twin {
            self.sniffer.unwatch(w.cgroup_id);
            self.bus.publish(FlowEvent::ReplicaNotSniffed { id: w.id.clone(), instance });
            return Ok(());
        }
        let key = instance.clone();
        let digest = w.digest.clone();
        let (has_runtime_sbom, has_sbom) = self
            .stored(move |s| Ok((s.has_runtime_sbom(&key)?, s.get_raw(Table::Sbom, digest.as_str())?.is_some())))
            .await?;
        if has_runtime_sbom {
            // "Has SBOM'" -> stop sniffing (discovery watched its cgroup at once). The image
            // needs its SBOM, not a file index.
            self.sniffer.unwatch(w.cgroup_id);
            if !has_sbom {
                self.image(&w).await?;
                self.release_image(&w.digest);
            }
            self.bus.publish(FlowEvent::RuntimeSbomReused { instance });
            return Ok(());
        }
        if let Err(e) = self.sniffer.watch(w.cgroup_id) {
            tracing::warn!(container = %w.id, error = %crate::chain(&e), "watching");
        }
        // The image: SBOM once per digest, computed from this container's root while it runs.
        // A store that fails (a full disk) must not cost the container its learning: it is
        // learned all the same, and its image is tried again when learning ends.
        let image = match self.image(&w).await {
            Ok(image) => image,
            Err(e) => {
                tracing::error!(error = %crate::chain(&e), digest = %w.digest, "storing the image SBOM failed; it is tried again when learning ends");
                None
            }
        };
        // As soon as the image's code is known: the vulnerable functions its binaries link.
        if let Some(image) = &image {
            self.sniffer.probe(w.cgroup_id, w.pid, image.code.targets());
        }
        let (key, workload) = (instance.clone(), w.clone());
        let (started_at, seed) = self
            .stored(move |s| match s.get::<Learning>(Table::Learning, key.as_str())? {
                Some(l) => Ok((l.started_at, Seed { paths: l.paths, resumed: true, calls: l.calls })),
                None => {
                    let l = Learning {
                        workload,
                        started_at: Timestamp::now(),
                        paths: Vec::new(),
                        complete: true,
                        incomplete: Vec::new(),
                        calls: None,
                    };
                    s.put(Table::Learning, key.as_str(), &l)?;
                    Ok((l.started_at, Seed::default()))
                }
            })
            .await?;
        let deadline = Instant::now() + self.config.learning_window.saturating_sub(started_at.elapsed());
        self.bus.publish(FlowEvent::LearningStarted { instance: instance.clone() });
        let active = Active {
            workload: w.clone(),
            instance,
            deadline,
            started_at,
            seed: Arc::new(seed),
            persisted: None,
            image,
            ending: false,
        };
        lock(&self.active).insert(w.id, active);
        Ok(())
    }

    /// Ensures the image has an SBOM (and its report) and an index for SBOM'; `None` when
    /// they could not be made from this container.
    async fn image(&self, w: &Workload) -> Result<Option<Image>, StoreError> {
        let cell = lock(&self.images).entry(w.digest.clone()).or_default().clone();
        let mut computed_here = false;
        let result = cell
            .get_or_try_init(|| {
                computed_here = true;
                self.compute_image(w)
            })
            .await;
        match result {
            Ok(image) => {
                if !computed_here {
                    self.bus.publish(FlowEvent::SbomReused { digest: w.digest.clone() });
                }
                Ok(Some(image.clone()))
            }
            Err(ImageError::Failed) => Ok(None),
            Err(ImageError::Store(e)) => Err(e),
        }
    }

    /// Drops the image's cached SBOM and index unless an instance of it is being learned.
    /// (Two locks, one after the other, never together.)
    fn release_image(&self, digest: &Digest) {
        let in_use = lock(&self.active).values().any(|a| a.workload.digest == *digest);
        if !in_use {
            lock(&self.images).remove(digest);
        }
    }

    /// The image's SBOM (stored, or computed from this container's root, scanned and
    /// stored) and its file index, built from this container's root.
    async fn compute_image(&self, w: &Workload) -> Result<Image, ImageError> {
        let digest = w.digest.clone();
        let stored: Option<sbom::Sbom> = self.stored(move |s| s.get(Table::Sbom, digest.as_str())).await?;
        let reused = stored.is_some();
        // One SBOM per image in a cluster: another node's means this one only indexes the
        // image for SBOM' (the index needs this node's own read of the files).
        let claim = match reused {
            true => Claim::Mine,
            false => {
                let (digest, image) = (w.digest.clone(), w.image.clone());
                self.stored(move |s| s.claim_image(&digest, &image)).await?
            }
        };
        let started = Instant::now();
        let pid = w.pid;
        let (limit, budgets) = (self.config.sbom_timeout, self.config.budgets);
        let (views, layers) = (self.views.clone(), w.layers.clone());
        let db = self.config.vuln_db.clone();
        let computing = tokio::task::spawn_blocking(move || -> Result<ImageData, String> {
            // Pin the container's root with a descriptor: reading through it keeps working
            // after a short-lived container has exited.
            let shown = PathBuf::from(format!("/proc/{pid}/root"));
            let pin = std::fs::File::open(&shown).map_err(|e| format!("{}: {e}", shown.display()))?;
            let r = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pin)));
            let scan = |at: &Path, shown: PathBuf| {
                sbom::scan_within(at, budgets, Some(limit))
                    .map(|s| sbom::Sbom { root: shown, ..s })
                    .map_err(|e| crate::chain(&e))
            };
            let sbom = match stored {
                Some(s) => s,
                None => {
                    // The image's own layers when the runtime says where they are; else
                    // (no runtime, a view refused) this container's root, said so.
                    let view = match (&views, &layers) {
                        (Some(views), Some(layers)) => Some((views.open(layers), &layers.parent)),
                        _ => None,
                    };
                    match view {
                        Some((Ok(view), parent)) => scan(view.path(), PathBuf::from(format!("image layers {parent}")))?,
                        other => {
                            let mut s = scan(&r, shown)?;
                            if let Some((Err(why), _)) = other {
                                s.warnings.push(sbom::model::Warning {
                                    cataloger: "image".into(),
                                    path: PathBuf::from("/"),
                                    message: format!(
                                        "read from a running container's root, not the image's layers ({}): \
                                         its writes and volumes may be in it",
                                        crate::chain(&why)
                                    ),
                                });
                            }
                            s
                        }
                    }
                }
            };
            let root = sbom::rootfs::Root::open(&r).map_err(|e| format!("{}: {e}", r.display()))?;
            let index = sbom::index::FileIndex::build(&root, &sbom);
            let code = Code::read(&db, &sbom, &root);
            drop(pin);
            Ok(ImageData { sbom, index, code })
        });
        // The scan stops itself at the limit; parts of it that cannot (a catalog of the
        // package databases, the file index) are abandoned here a little later. The
        // containers of the image waiting on it go on without an SBOM; the next one retries.
        let computed = match tokio::time::timeout(limit + limit / 10 + Duration::from_secs(1), computing).await {
            Ok(done) => done.unwrap_or_else(|e| Err(e.to_string())),
            Err(_) => Err(format!(
                "computing the SBOM took longer than {limit:?}: abandoned; the next container of the image retries"
            )),
        };
        let data = match computed {
            Ok(x) => x,
            Err(error) => {
                self.bus.publish(FlowEvent::SbomFailed { digest: w.digest.clone(), error });
                return Err(ImageError::Failed);
            }
        };
        let sbom = &data.sbom;
        if reused {
            self.bus.publish(FlowEvent::SbomReused { digest: w.digest.clone() });
        } else if claim == Claim::Theirs {
            // Kept on this node for `sniffer sbom`; the image report is the other node's.
            let record = serde_json::to_value(sbom).map_err(StoreError::record(Table::Sbom, w.digest.as_str()))?;
            let key = w.digest.to_string();
            self.stored(move |s| put_owned(s, vec![(Table::Sbom, key, record)])).await?;
            self.bus.publish(FlowEvent::SbomReused { digest: w.digest.clone() });
        } else {
            let packages = sbom.packages.len();
            let millis = started.elapsed().as_millis() as u64;
            self.timings.sbom.observe(started.elapsed());
            let facts = data.code.facts(None, sbom);
            let report = self.report(ReportKind::Image, w.digest.as_str(), w, sbom, None, facts).await;
            let record = serde_json::to_value(sbom).map_err(StoreError::record(Table::Sbom, w.digest.as_str()))?;
            self.store_report(report, vec![(Table::Sbom, w.digest.to_string(), record)]).await?;
            self.bus.publish(FlowEvent::SbomStored { digest: w.digest.clone(), packages, millis });
        }
        Ok(Arc::new(data))
    }

    /// The image's SBOM and index, when a container of it has made them.
    fn image_of(&self, digest: &Digest) -> Option<Image> {
        lock(&self.images).get(digest).and_then(|cell| cell.get().cloned())
    }

    /// Scans and builds a report (a missing or broken database becomes a warning in it).
    async fn report(
        &self,
        kind: ReportKind,
        key: &str,
        w: &Workload,
        sbom: &sbom::Sbom,
        runtime: Option<&sbom::index::RuntimeSbom>,
        facts: vuln::reach::Facts,
    ) -> Report {
        let db = self.config.vuln_db.clone();
        let input = vuln::input::of_sbom(sbom);
        let relevance = runtime.and_then(|p| vuln::input::of_runtime(p).relevance);
        let mut warnings = input.warnings;
        warnings.extend(runtime.iter().flat_map(|p| p.warnings.iter().map(|w| format!("SBOM': {w}"))));
        let scanning = Instant::now();
        let scan = tokio::task::spawn_blocking(move || -> Result<vuln::ScanReport, String> {
            let db = vuln::Db::open(&db).map_err(|e| crate::chain(&e))?;
            let mut r =
                vuln::scan_with(&db, &input.subjects, relevance.as_ref(), &facts).map_err(|e| crate::chain(&e))?;
            r.warnings.splice(0..0, warnings);
            Ok(r)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if scan.is_ok() {
            let histogram = match kind {
                ReportKind::Image => &self.timings.image_scan,
                ReportKind::Instance => &self.timings.instance_scan,
            };
            histogram.observe(scanning.elapsed());
        }
        let not_scanned = scan.as_ref().err().cloned();
        let scan = scan.unwrap_or_else(|e| vuln::ScanReport {
            packages: sbom.packages.len(),
            findings: Vec::new(),
            runtime_complete: None,
            warnings: vec![format!("not scanned: {e}")],
        });
        Report {
            id: ReportId::from(uuid::Uuid::new_v4().to_string()),
            kind,
            key: key.to_string(),
            created_at: Timestamp::now(),
            image: w.image.clone(),
            digest: w.digest.clone(),
            workload: (kind == ReportKind::Instance).then(|| w.clone()),
            packages: sbom.packages.len(),
            relevant_packages: runtime.map(|p| p.packages.len()),
            scan,
            not_scanned,
        }
    }

    /// Stores a report with its outbox entry and `extra` records, in one transaction, and
    /// `delete` after it.
    async fn store_report(
        &self,
        report: Report,
        extra: Vec<(Table, String, serde_json::Value)>,
    ) -> Result<(), StoreError> {
        let report_key = format!("{}:{}", report.kind_name(), report.key);
        let id = report.id.as_str();
        let mut items: Vec<(Table, String, serde_json::Value)> = vec![
            (Table::Report, id.into(), serde_json::to_value(&report).map_err(StoreError::record(Table::Report, id))?),
            (Table::ReportKey, report_key, serde_json::json!(report.id)),
            (
                Table::Outbox,
                id.into(),
                serde_json::to_value(OutboxEntry::new()).map_err(StoreError::record(Table::Outbox, id))?,
            ),
        ];
        items.extend(extra);
        self.stored(move |s| put_owned(s, items)).await?;
        self.posture.reported(&report);
        self.outbox.notify_one();
        self.bus.publish(FlowEvent::ReportStored {
            id: report.id.clone(),
            kind: report.kind,
            key: report.key.clone(),
            findings: report.scan.findings.len(),
        });
        Ok(())
    }

    /// A container exited: what it learned becomes its SBOM'.
    pub async fn workload_exited(&self, id: &str) -> Result<(), StoreError> {
        self.bus.publish(FlowEvent::WorkloadExited { id: id.to_string() });
        let finished = self.finish(id, EndReason::Exited).await;
        self.posture.exited(id);
        finished
    }

    /// `sniffer learn stop`: by container id or instance key.
    pub async fn learn_stop(&self, which: &str) -> Result<bool, StoreError> {
        let id =
            lock(&self.active).iter().find(|(id, a)| *id == which || a.instance == which).map(|(id, _)| id.clone());
        match id {
            Some(id) => self.finish(&id, EndReason::Stopped).await.map(|_| true),
            None => Ok(false),
        }
    }

    /// Ends learning windows that are over, and persists learning state every few seconds.
    pub async fn tick(&self) -> Result<(), StoreError> {
        let due: Vec<String> =
            lock(&self.active).iter().filter(|(_, a)| a.deadline <= Instant::now()).map(|(id, _)| id.clone()).collect();
        // One instance failing to store does not hold back the others.
        let mut failed = None;
        for id in due {
            if let Err(e) = self.finish(&id, EndReason::Window).await {
                failed = Some(e);
            }
        }
        let persist = {
            let mut last = lock(&self.last_persist);
            let due = last.elapsed() >= self.config.persist_every;
            if due {
                *last = Instant::now();
            }
            due
        };
        if persist {
            self.persist().await?;
        }
        failed.map_or(Ok(()), Err)
    }

    /// What an instance has learned: its seed from before a restart plus what the sniffer
    /// saw. Called without any of the coordinator's locks held.
    fn learned(&self, workload: &Workload, started_at: Timestamp, seed: &Seed) -> Learning {
        let seen = self.sniffer.observed(workload.cgroup_id);
        let mut paths: Vec<PathBuf> = seed.paths.iter().cloned().chain(seen.paths).collect();
        let mut calls = self.sniffer.calls(workload.cgroup_id);
        if seed.resumed {
            let mut merged = calls.or_else(|| seed.calls.clone()).unwrap_or_default();
            if let Some(before) = &seed.calls {
                for c in &before.calls {
                    if !merged.calls.iter().any(|m| m.site == c.site) {
                        merged.calls.push(c.clone());
                    }
                }
            }
            calls = Some(interrupted(merged, RESUMED));
        }
        paths.sort_unstable();
        paths.dedup();
        Learning {
            workload: workload.clone(),
            started_at,
            paths,
            complete: seen.incomplete.is_empty(),
            incomplete: seen.incomplete,
            calls,
        }
    }

    /// Writes what every instance has learned since it was last written, in one
    /// transaction. The `active` lock is held only to copy out what to ask the sniffer
    /// about and to note what was written: never while calling the sniffer or the store.
    pub async fn persist(&self) -> Result<(), StoreError> {
        type Copied = (String, Workload, Timestamp, Arc<Seed>, Option<Progress>);
        let snapshot: Vec<Copied> = lock(&self.active)
            .iter()
            .map(|(id, a)| (id.clone(), a.workload.clone(), a.started_at, a.seed.clone(), a.persisted))
            .collect();
        let mut items: Vec<(Table, String, serde_json::Value)> = Vec::new();
        let mut written: Vec<(String, Progress)> = Vec::new();
        for (id, workload, started_at, seed, persisted) in snapshot {
            let progress = self.sniffer.progress(workload.cgroup_id);
            if persisted == Some(progress) {
                continue;
            }
            let learned = self.learned(&workload, started_at, &seed);
            let instance = workload.instance();
            let value =
                serde_json::to_value(&learned).map_err(StoreError::record(Table::Learning, instance.as_str()))?;
            items.push((Table::Learning, instance.to_string(), value));
            written.push((id, progress));
        }
        if items.is_empty() {
            return Ok(());
        }
        self.stored(move |s| put_owned(s, items)).await?;
        let mut active = lock(&self.active);
        for (id, progress) in written {
            if let Some(a) = active.get_mut(&id) {
                a.persisted = Some(progress);
            }
        }
        Ok(())
    }

    /// Ends an instance's learning: SBOM', scanned and stored. When the store fails (a full
    /// disk), nothing is lost: the instance goes back to the active ones and is finished
    /// again [`FINISH_RETRY`] later.
    async fn finish(&self, id: &str, reason: EndReason) -> Result<(), StoreError> {
        let Some(mut a) = lock(&self.active).remove(id) else { return Ok(()) };
        let learned = self.learned(&a.workload, a.started_at, &a.seed);
        if !a.ending {
            a.ending = true;
            self.sniffer.unwatch(a.workload.cgroup_id);
            self.bus.publish(FlowEvent::LearningEnded {
                instance: a.instance.clone(),
                reason,
                paths: learned.paths.len(),
            });
        }
        let mut image = a.image.clone().or_else(|| self.image_of(&a.workload.digest));
        if image.is_none() {
            // Its SBOM could not be made or stored when it started: try again while its
            // root may still be there.
            image = self.image(&a.workload).await.ok().flatten();
        }
        let done = match &image {
            // Still none: keep what was learned for a later try.
            None => {
                let (instance, learned) = (a.instance.clone(), learned.clone());
                self.stored(move |s| s.put(Table::Learning, instance.as_str(), &learned)).await
            }
            Some(image) => self.conclude(&a.instance, learned, image.clone()).await,
        };
        match done {
            Ok(()) => {
                self.release_image(&a.workload.digest);
                Ok(())
            }
            Err(e) => {
                a.image = image;
                a.deadline = Instant::now() + FINISH_RETRY;
                lock(&self.active).insert(id.to_string(), a);
                Err(e)
            }
        }
    }

    /// SBOM' of what an instance learned, scanned, stored and queued; its learning state goes.
    async fn conclude(&self, instance: &InstanceId, learned: Learning, image: Image) -> Result<(), StoreError> {
        let mapped = image.clone();
        let window = learned.started_at.elapsed().as_secs();
        self.timings.learning.observe(Duration::from_secs(window));
        let mut learned = learned;
        // What the opened paths say of the class probe (a CDS archive, an unprobed JVM).
        if let Some(c) = &mut learned.calls {
            c.note_opened(&learned.paths);
        }
        let calls = learned.calls.clone().map(|c| vuln::reach::Calls { window_seconds: window, ..c });
        let carried = calls.clone();
        let (learned, runtime) = tokio::task::spawn_blocking(move || {
            let (sbom, index) = (&mapped.sbom, &mapped.index);
            let mut runtime =
                sbom::index::filter(sbom, index, learned.paths.iter().map(PathBuf::as_path), learned.complete);
            runtime.warnings.extend(learned.incomplete.iter().cloned());
            runtime.warnings.extend(probe_notes(&mapped.code, learned.calls.as_ref(), window));
            runtime.calls = carried;
            (learned, runtime)
        })
        .await
        .map_err(|source| StoreError::Task { what: "SBOM'", source })?;
        let facts = image.code.facts(calls, &image.sbom);
        let report = self
            .report(ReportKind::Instance, instance.as_str(), &learned.workload, &image.sbom, Some(&runtime), facts)
            .await;
        let packages = runtime.packages.len();
        let record =
            serde_json::to_value(&runtime).map_err(StoreError::record(Table::RuntimeSbom, instance.as_str()))?;
        self.store_report(report, vec![(Table::RuntimeSbom, instance.to_string(), record)]).await?;
        let key = instance.to_string();
        self.stored(move |s| s.delete(Table::Learning, &key)).await?;
        self.bus.publish(FlowEvent::RuntimeSbomStored { instance: instance.clone(), packages });
        Ok(())
    }

    /// Discovery has listed every running container (`running`, by id): at start-up, and
    /// again after a reconnect. An instance being learned whose container is not among them
    /// exited unseen and is finished now. Learning state stored by an earlier life of the
    /// daemon for a container that is gone is finished too, from the stored SBOM: its root
    /// is gone with it, so file ownership comes from the SBOM's file lists and that SBOM'
    /// is marked incomplete. Returns how many instances were finished.
    pub async fn synced(&self, running: &[String]) -> Result<usize, StoreError> {
        self.posture.retain(running);
        let gone: Vec<String> = lock(&self.active).keys().filter(|id| !running.contains(id)).cloned().collect();
        let mut finished = 0;
        for id in gone {
            self.workload_exited(&id).await?;
            finished += 1;
        }
        let active: Vec<InstanceId> = lock(&self.active).values().map(|a| a.instance.clone()).collect();
        let mut listings: HashMap<Digest, Image> = HashMap::new();
        for instance in self.stored(|s| s.keys(Table::Learning)).await? {
            let instance = InstanceId::from(instance);
            if active.contains(&instance) {
                continue;
            }
            let key = instance.clone();
            let Some(learned) = self.stored(move |s| s.get::<Learning>(Table::Learning, key.as_str())).await? else {
                continue;
            };
            if running.contains(&learned.workload.id) {
                // Its start is on its way through the flow, which resumes it.
                continue;
            }
            let digest = learned.workload.digest.clone();
            let image = match self.image_of(&digest).or_else(|| listings.get(&digest).cloned()) {
                Some(image) => Some(image),
                None => {
                    let key = digest.clone();
                    let stored = self.stored(move |s| s.get::<sbom::Sbom>(Table::Sbom, key.as_str())).await?;
                    match stored {
                        Some(sbom) => {
                            let image = tokio::task::spawn_blocking(move || {
                                let index = sbom::index::FileIndex::from_listing(&sbom);
                                // Its root is gone: nothing below the file can be read.
                                let code = Code {
                                    missing: Some("the container is gone: its binaries could not be read".into()),
                                    ..Code::default()
                                };
                                Arc::new(ImageData { sbom, index, code })
                            })
                            .await
                            .map_err(|source| StoreError::Task { what: "file index", source })?;
                            listings.insert(digest.clone(), image.clone());
                            Some(image)
                        }
                        None => None,
                    }
                }
            };
            let Some(image) = image else {
                // Nothing to map its paths with: keep them; an SBOM of the image may come.
                tracing::warn!(%instance, %digest, "a vanished container's image has no stored SBOM: its learning is kept");
                continue;
            };
            self.bus.publish(FlowEvent::LearningEnded {
                instance: instance.clone(),
                reason: EndReason::Vanished,
                paths: learned.paths.len(),
            });
            let mut learned = learned;
            learned.calls = learned.calls.map(|c| interrupted(c, RESUMED));
            self.conclude(&instance, learned, image).await?;
            finished += 1;
        }
        Ok(finished)
    }

    /// Instances being learned: (container id, instance).
    pub fn learning(&self) -> Vec<(String, InstanceId)> {
        lock(&self.active).iter().map(|(id, a)| (id.clone(), a.instance.clone())).collect()
    }

    /// Counts and dead letters. Reads the store: call it off the async runtime.
    pub fn status(&self) -> Result<FlowStatus, StoreError> {
        let learning = lock(&self.active).len();
        Ok(FlowStatus {
            sboms: self.store.count(Table::Sbom)?,
            runtime_sboms: self.store.count(Table::RuntimeSbom)?,
            reports: self.store.count(Table::Report)?,
            sent: self.store.count(Table::Sent)?,
            outbox: self.store.count(Table::Outbox)?,
            dead_letters: self.store.keys(Table::Dead)?,
            learning,
        })
    }

    /// The stored SBOM of an image digest, instance key or container id, with the
    /// instance's SBOM' when it has one. Reads the store: call it off the async runtime.
    pub fn sbom_for(&self, key: &str) -> Result<Option<(sbom::Sbom, Option<sbom::index::RuntimeSbom>)>, StoreError> {
        // A container being learned: its image, and no SBOM' yet.
        let active = lock(&self.active)
            .iter()
            .find(|(id, a)| *id == key || a.instance == key)
            .map(|(_, a)| a.workload.digest.clone());
        if let Some(digest) = active {
            return Ok(self.store.get(Table::Sbom, digest.as_str())?.map(|s| (s, None)));
        }
        if let Some(sbom) = self.store.get(Table::Sbom, key)? {
            return Ok(Some((sbom, None)));
        }
        // A finished instance: its report names the image.
        let Some(report) = self.report_for(&format!("instance:{key}"))? else { return Ok(None) };
        let Some(sbom) = self.store.get(Table::Sbom, report.digest.as_str())? else { return Ok(None) };
        Ok(Some((sbom, self.store.get(Table::RuntimeSbom, key)?)))
    }

    /// The report for a container id, instance key or image digest: the instance's when it
    /// has one, else the image's. Reads the store: call it off the async runtime.
    pub fn find_report(&self, key: &str) -> Result<Option<Report>, StoreError> {
        let mut candidates = vec![format!("instance:{key}"), format!("image:{key}")];
        if let Some((_, instance)) = self.learning().into_iter().find(|(id, _)| id == key) {
            candidates.insert(0, format!("instance:{instance}"));
        }
        for k in candidates {
            if let Some(r) = self.report_for(&k)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The stored report of an image (`image:<digest>`) or instance (`instance:<key>`).
    pub fn report_for(&self, key: &str) -> Result<Option<Report>, StoreError> {
        let Some(id) = self.store.get::<ReportId>(Table::ReportKey, key)? else { return Ok(None) };
        self.store.get(Table::Report, id.as_str())
    }
}
