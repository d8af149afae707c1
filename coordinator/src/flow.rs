//! The flow itself. The daemon calls [`Coordinator::workload_started`] when discovery sees a
//! container, [`Coordinator::workload_exited`] when it goes, [`Coordinator::learn_stop`] on
//! request, and [`Coordinator::tick`] every second; the coordinator drives the sniffer
//! through the [`Sniffer`] trait.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::bus::{Bus, FlowEvent};
use crate::model::{Learning, Report, ReportKind, Workload};
use crate::store::{Kind, Storage, StorageExt, StoreError};
use crate::submit::OutboxEntry;

/// What the flow needs of the sniffer.
pub trait Sniffer: Send + Sync + 'static {
    /// Starts watching a cgroup.
    fn watch(&self, cgroup_id: u64) -> Result<(), String>;
    /// Stops watching it.
    fn unwatch(&self, cgroup_id: u64);
    /// Distinct paths seen for it, and whether no event was lost.
    fn observed(&self, cgroup_id: u64) -> (Vec<PathBuf>, bool);
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
}

/// Counts for `sniffer status` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStatus {
    /// Image SBOMs stored.
    pub sboms: u64,
    /// SBOM's stored.
    pub primes: u64,
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
    instance: String,
    deadline: Instant,
    started_at: String,
    /// Paths learned before a restart.
    seed: Vec<PathBuf>,
}

/// An image's SBOM and the file index SBOM' is computed with.
type Image = Arc<(sbom::Sbom, sbom::index::FileIndex)>;

/// Per image digest, filled once while a container of it runs. The first container of an
/// image computes it; others of that image wait for it; other images go on in parallel.
type Indexes = HashMap<String, Arc<tokio::sync::OnceCell<Image>>>;

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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Coordinator {
    /// A coordinator over `store`; `outbox` is notified when a report is queued.
    pub fn new(store: Arc<dyn Storage>, bus: Arc<Bus>, sniffer: Arc<dyn Sniffer>, config: Config, outbox: Arc<Notify>) -> Self {
        Coordinator {
            store,
            bus,
            sniffer,
            config,
            outbox,
            active: Mutex::new(HashMap::new()),
            images: Mutex::new(HashMap::new()),
            last_persist: Mutex::new(Instant::now()),
        }
    }

    /// The event bus.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// A container started (or was found running at start-up).
    pub async fn workload_started(&self, w: Workload) -> Result<(), StoreError> {
        if lock(&self.active).contains_key(&w.id) {
            return Ok(());
        }
        let instance = w.instance();
        self.bus.publish(FlowEvent::WorkloadStarted {
            id: w.id.clone(),
            image: w.image.clone(),
            digest: w.digest.clone(),
            instance: instance.clone(),
        });
        let has_prime = self.store.get_raw(Kind::Prime, &instance)?.is_some();
        if !has_prime && let Err(e) = self.sniffer.watch(w.cgroup_id) {
            tracing::warn!(container = %w.id, error = %e, "watching");
        }
        // The image: SBOM once per digest, computed from this container's root while it runs.
        self.image(&w).await?;
        if has_prime {
            self.sniffer.unwatch(w.cgroup_id);
            self.bus.publish(FlowEvent::PrimeReused { instance });
            return Ok(());
        }
        let previous: Option<Learning> = self.store.get(Kind::Learning, &instance)?;
        let (started_at, seed) = match previous {
            Some(l) => (l.started_at, l.paths),
            None => {
                let l = Learning { workload: w.clone(), started_at: now(), paths: Vec::new(), complete: true };
                self.store.put(Kind::Learning, &instance, &l)?;
                (l.started_at, Vec::new())
            }
        };
        let elapsed = chrono::DateTime::parse_from_rfc3339(&started_at)
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default())
            .unwrap_or_default();
        let deadline = Instant::now() + self.config.learning_window.saturating_sub(elapsed);
        self.bus.publish(FlowEvent::LearningStarted { instance: instance.clone() });
        lock(&self.active).insert(w.id.clone(), Active { workload: w, instance, deadline, started_at, seed });
        Ok(())
    }

    /// Ensures the image has an SBOM (and its report) and an index for SBOM'.
    async fn image(&self, w: &Workload) -> Result<(), StoreError> {
        let cell = lock(&self.images).entry(w.digest.clone()).or_default().clone();
        let mut computed_here = false;
        let result = cell
            .get_or_try_init(|| {
                computed_here = true;
                self.compute_image(w)
            })
            .await;
        match result {
            Ok(_) if !computed_here => {
                self.bus.publish(FlowEvent::SbomReused { digest: w.digest.clone() });
                Ok(())
            }
            Ok(_) | Err(ImageError::Failed) => Ok(()),
            Err(ImageError::Store(e)) => Err(e),
        }
    }

    /// The image's SBOM (stored, or computed from this container's root, scanned and
    /// stored) and its file index, built from this container's root.
    async fn compute_image(&self, w: &Workload) -> Result<Image, ImageError> {
        // Pin the container's root with a descriptor: reading through it keeps working after
        // a short-lived container has exited.
        let shown = PathBuf::from(format!("/proc/{}/root", w.pid));
        let pin = match std::fs::File::open(&shown) {
            Ok(f) => f,
            Err(e) => {
                self.bus.publish(FlowEvent::SbomFailed { digest: w.digest.clone(), error: format!("{}: {e}", shown.display()) });
                return Err(ImageError::Failed);
            }
        };
        let root = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pin)));
        let stored: Option<sbom::Sbom> = self.store.get(Kind::Sbom, &w.digest)?;
        let reused = stored.is_some();
        let started = Instant::now();
        let r = root.clone();
        let computed = tokio::task::spawn_blocking(move || -> Result<(sbom::Sbom, sbom::index::FileIndex), String> {
            let sbom = match stored {
                Some(s) => s,
                None => sbom::scan(&r).map(|s| sbom::Sbom { root: shown, ..s }).map_err(|e| e.to_string())?,
            };
            let root = sbom::rootfs::Root::open(&r).map_err(|e| format!("{}: {e}", r.display()))?;
            let index = sbom::index::FileIndex::build(&root, &sbom);
            drop(pin);
            Ok((sbom, index))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let (sbom, index) = match computed {
            Ok(x) => x,
            Err(error) => {
                self.bus.publish(FlowEvent::SbomFailed { digest: w.digest.clone(), error });
                return Err(ImageError::Failed);
            }
        };
        if reused {
            self.bus.publish(FlowEvent::SbomReused { digest: w.digest.clone() });
        } else {
            let packages = sbom.packages.len();
            let millis = started.elapsed().as_millis() as u64;
            let report = self.report(ReportKind::Image, &w.digest, w, &sbom, None).await;
            self.store_report(&report, vec![(Kind::Sbom, w.digest.clone(), serde_json::to_value(&sbom).expect("serialisable"))])?;
            self.bus.publish(FlowEvent::SbomStored { digest: w.digest.clone(), packages, millis });
        }
        Ok(Arc::new((sbom, index)))
    }

    /// The image's SBOM and index, when a container of it has made them.
    fn image_of(&self, digest: &str) -> Option<Image> {
        lock(&self.images).get(digest).and_then(|cell| cell.get().cloned())
    }

    /// Scans and builds a report (a missing or broken database becomes a warning in it).
    async fn report(&self, kind: ReportKind, key: &str, w: &Workload, sbom: &sbom::Sbom, prime: Option<&sbom::index::FilteredSbom>) -> Report {
        let db = self.config.vuln_db.clone();
        let input = vuln::input::of_sbom(sbom);
        let relevance = prime.and_then(|p| vuln::input::of_filtered(p).relevance);
        let mut warnings = input.warnings;
        warnings.extend(prime.iter().flat_map(|p| p.warnings.iter().map(|w| format!("SBOM': {w}"))));
        let scan = tokio::task::spawn_blocking(move || -> Result<vuln::ScanReport, String> {
            let db = vuln::Db::open(&db).map_err(|e| e.to_string())?;
            let mut r = vuln::scan(&db, &input.subjects, relevance.as_ref()).map_err(|e| e.to_string())?;
            r.warnings.splice(0..0, warnings);
            Ok(r)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let scan = scan.unwrap_or_else(|e| vuln::ScanReport {
            packages: sbom.packages.len(),
            findings: Vec::new(),
            filtered_complete: None,
            warnings: vec![format!("not scanned: {e}")],
        });
        Report {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            key: key.to_string(),
            created_at: now(),
            image: w.image.clone(),
            digest: w.digest.clone(),
            workload: (kind == ReportKind::Instance).then(|| w.clone()),
            packages: sbom.packages.len(),
            relevant_packages: prime.map(|p| p.packages.len()),
            scan,
        }
    }

    /// Stores a report with its outbox entry and `extra` records, in one transaction.
    fn store_report(&self, report: &Report, extra: Vec<(Kind, String, serde_json::Value)>) -> Result<(), StoreError> {
        let key_kind = match report.kind {
            ReportKind::Image => "image",
            ReportKind::Instance => "instance",
        };
        let report_key = format!("{key_kind}:{}", report.key);
        let mut items: Vec<(Kind, &str, serde_json::Value)> = vec![
            (Kind::Report, &report.id, serde_json::to_value(report).expect("serialisable")),
            (Kind::ReportKey, &report_key, serde_json::json!(report.id)),
            (Kind::Outbox, &report.id, serde_json::to_value(OutboxEntry::new()).expect("serialisable")),
        ];
        items.extend(extra.iter().map(|(k, key, v)| (*k, key.as_str(), v.clone())));
        self.store.put_many(&items)?;
        self.outbox.notify_one();
        self.bus.publish(FlowEvent::ReportStored {
            id: report.id.clone(),
            kind: key_kind.into(),
            key: report.key.clone(),
            findings: report.scan.findings.len(),
        });
        Ok(())
    }

    /// A container exited: what it learned becomes its SBOM'.
    pub async fn workload_exited(&self, id: &str) -> Result<(), StoreError> {
        self.bus.publish(FlowEvent::WorkloadExited { id: id.to_string() });
        self.finish(id, "exited").await
    }

    /// `sniffer learn stop`: by container id or instance key.
    pub async fn learn_stop(&self, which: &str) -> Result<bool, StoreError> {
        let id = lock(&self.active).iter().find(|(id, a)| *id == which || a.instance == which).map(|(id, _)| id.clone());
        match id {
            Some(id) => self.finish(&id, "stopped").await.map(|_| true),
            None => Ok(false),
        }
    }

    /// Ends learning windows that are over, and persists learning state every few seconds.
    pub async fn tick(&self) -> Result<(), StoreError> {
        let due: Vec<String> =
            lock(&self.active).iter().filter(|(_, a)| a.deadline <= Instant::now()).map(|(id, _)| id.clone()).collect();
        for id in due {
            self.finish(&id, "window").await?;
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
            self.persist()?;
        }
        Ok(())
    }

    fn learned(&self, a: &Active) -> Learning {
        let (seen, complete) = self.sniffer.observed(a.workload.cgroup_id);
        let paths: BTreeSet<PathBuf> = a.seed.iter().cloned().chain(seen).collect();
        Learning { workload: a.workload.clone(), started_at: a.started_at.clone(), paths: paths.into_iter().collect(), complete }
    }

    /// Writes what every instance has learned so far, in one transaction.
    pub fn persist(&self) -> Result<(), StoreError> {
        let learned: Vec<(String, serde_json::Value)> = lock(&self.active)
            .values()
            .map(|a| (a.instance.clone(), serde_json::to_value(self.learned(a)).expect("serialisable")))
            .collect();
        let items: Vec<(Kind, &str, serde_json::Value)> =
            learned.iter().map(|(k, v)| (Kind::Learning, k.as_str(), v.clone())).collect();
        if items.is_empty() { Ok(()) } else { self.store.put_many(&items) }
    }

    async fn finish(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let Some(a) = lock(&self.active).remove(id) else { return Ok(()) };
        let learned = self.learned(&a);
        self.sniffer.unwatch(a.workload.cgroup_id);
        self.bus.publish(FlowEvent::LearningEnded { instance: a.instance.clone(), reason: reason.into(), paths: learned.paths.len() });
        let Some(image) = self.image_of(&a.workload.digest) else {
            // No SBOM could be made for the image: keep what was learned for a later try.
            self.store.put(Kind::Learning, &a.instance, &learned)?;
            return Ok(());
        };
        self.conclude(&a.instance, &learned, &image).await
    }

    /// SBOM' of what an instance learned, scanned, stored and queued; its learning state goes.
    async fn conclude(&self, instance: &str, learned: &Learning, image: &Image) -> Result<(), StoreError> {
        let (sbom, index) = (&image.0, &image.1);
        let prime = sbom::index::filter(sbom, index, learned.paths.iter().map(PathBuf::as_path), learned.complete);
        let report = self.report(ReportKind::Instance, instance, &learned.workload, sbom, Some(&prime)).await;
        let packages = prime.packages.len();
        self.store_report(&report, vec![(Kind::Prime, instance.to_string(), serde_json::to_value(&prime).expect("serialisable"))])?;
        self.store.delete(Kind::Learning, instance)?;
        self.bus.publish(FlowEvent::PrimeStored { instance: instance.to_string(), packages });
        Ok(())
    }

    /// Discovery has listed every running container (`running`, by id): at start-up, and
    /// again after a reconnect. An instance being learned whose container is not among them
    /// exited unseen and is finished now. Learning state stored by an earlier life of the
    /// daemon for a container that is gone is finished too, from the stored SBOM: its root
    /// is gone with it, so file ownership comes from the SBOM's file lists and that SBOM'
    /// is marked incomplete. Returns how many instances were finished.
    pub async fn synced(&self, running: &[String]) -> Result<usize, StoreError> {
        let gone: Vec<String> = lock(&self.active).keys().filter(|id| !running.contains(id)).cloned().collect();
        let mut finished = 0;
        for id in gone {
            self.workload_exited(&id).await?;
            finished += 1;
        }
        let active: Vec<String> = lock(&self.active).values().map(|a| a.instance.clone()).collect();
        let mut listings: HashMap<String, Image> = HashMap::new();
        for instance in self.store.keys(Kind::Learning)? {
            if active.contains(&instance) {
                continue;
            }
            let Some(learned) = self.store.get::<Learning>(Kind::Learning, &instance)? else { continue };
            if running.contains(&learned.workload.id) {
                // Its start is on its way through the flow, which resumes it.
                continue;
            }
            let digest = learned.workload.digest.clone();
            let image = match self.image_of(&digest).or_else(|| listings.get(&digest).cloned()) {
                Some(image) => Some(image),
                None => self.store.get::<sbom::Sbom>(Kind::Sbom, &digest)?.map(|sbom| {
                    let index = sbom::index::FileIndex::from_listing(&sbom);
                    let image = Arc::new((sbom, index));
                    listings.insert(digest.clone(), image.clone());
                    image
                }),
            };
            let Some(image) = image else {
                // Nothing to map its paths with: keep them; an SBOM of the image may come.
                tracing::warn!(%instance, %digest, "a vanished container's image has no stored SBOM: its learning is kept");
                continue;
            };
            self.bus.publish(FlowEvent::LearningEnded { instance: instance.clone(), reason: "vanished".into(), paths: learned.paths.len() });
            self.conclude(&instance, &learned, &image).await?;
            finished += 1;
        }
        Ok(finished)
    }

    /// Instances being learned: (container id, instance).
    pub fn learning(&self) -> Vec<(String, String)> {
        lock(&self.active).iter().map(|(id, a)| (id.clone(), a.instance.clone())).collect()
    }

    /// Counts and dead letters.
    pub fn status(&self) -> Result<FlowStatus, StoreError> {
        Ok(FlowStatus {
            sboms: self.store.count(Kind::Sbom)?,
            primes: self.store.count(Kind::Prime)?,
            reports: self.store.count(Kind::Report)?,
            sent: self.store.count(Kind::Sent)?,
            outbox: self.store.count(Kind::Outbox)?,
            dead_letters: self.store.keys(Kind::Dead)?,
            learning: lock(&self.active).len(),
        })
    }

    /// The stored SBOM of an image digest, instance key or container id, with the
    /// instance's SBOM' when it has one.
    pub fn sbom_for(&self, key: &str) -> Result<Option<(sbom::Sbom, Option<sbom::index::FilteredSbom>)>, StoreError> {
        // A container being learned: its image, and no SBOM' yet.
        let active = lock(&self.active).iter().find(|(id, a)| *id == key || a.instance == key).map(|(_, a)| a.workload.digest.clone());
        if let Some(digest) = active {
            return Ok(self.store.get(Kind::Sbom, &digest)?.map(|s| (s, None)));
        }
        if let Some(sbom) = self.store.get(Kind::Sbom, key)? {
            return Ok(Some((sbom, None)));
        }
        // A finished instance: its report names the image.
        let Some(report) = self.report_for(&format!("instance:{key}"))? else { return Ok(None) };
        let Some(sbom) = self.store.get(Kind::Sbom, &report.digest)? else { return Ok(None) };
        Ok(Some((sbom, self.store.get(Kind::Prime, key)?)))
    }

    /// The report for a container id, instance key or image digest: the instance's when it
    /// has one, else the image's.
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
        let Some(id) = self.store.get::<String>(Kind::ReportKey, key)? else { return Ok(None) };
        self.store.get(Kind::Report, &id)
    }
}
