//! The daemon's shared state, as handles that lock only inside their own short methods
//! (tokio mini-redis's `Db` is the model).
//!
//! Lock rules (DESIGN.md, "Locks"): each lock here is a leaf. While one is held, no other
//! lock is taken, nothing is awaited, no file or socket is touched and no one is woken. The
//! kernel handle's lock spans one map syscall (a non-blocking `bpf(2)` call, microseconds);
//! the tracking lock spans only in-memory work. So no two locks are ever held together and
//! the daemon cannot deadlock, whatever calls what.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use coordinator::flow::{Observed, Progress};

use crate::event::FileEvent;
use crate::kernel::{FileReads, Kernel, KernelError, KernelStats};
use crate::tracker::{ContainerSummary, FileRecord, Limits, Tracker};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves data that is still consistent enough to serve.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The loaded programs and their maps.
#[derive(Clone)]
pub struct KernelHandle {
    kernel: Arc<Mutex<Kernel>>,
    /// Fixed at load: read without the lock.
    attached: Arc<[String]>,
    file_reads: FileReads,
}

impl KernelHandle {
    /// Wraps loaded programs (take their event reader first).
    pub fn new(kernel: Kernel) -> Self {
        let attached = kernel.attached().into();
        let file_reads = kernel.file_reads();
        KernelHandle { kernel: Arc::new(Mutex::new(kernel)), attached, file_reads }
    }

    /// Starts reporting a cgroup.
    pub fn watch(&self, cgroup_id: u64) -> Result<(), KernelError> {
        lock(&self.kernel).watch(cgroup_id)
    }

    /// Stops reporting a cgroup; returns how many of its events were lost.
    pub fn unwatch(&self, cgroup_id: u64) -> Result<u64, KernelError> {
        lock(&self.kernel).unwatch(cgroup_id)
    }

    /// Events of a cgroup the kernel lost (0 when it is not watched).
    pub fn lost(&self, cgroup_id: u64) -> u64 {
        lock(&self.kernel).counts_for(cgroup_id).map(|c| c.lost).unwrap_or(0)
    }

    /// The programs' counters.
    pub fn stats(&self) -> Result<KernelStats, KernelError> {
        lock(&self.kernel).stats()
    }

    /// Programs attached.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// How the programs read opened files.
    pub fn file_reads(&self) -> FileReads {
        self.file_reads
    }
}

/// Every tracked container, and the event counters.
#[derive(Clone)]
pub struct Tracking {
    state: Arc<Mutex<TrackingState>>,
    /// How many batches of the ring buffer have been read and recorded: a container's exit
    /// is handled once a read that began after it is done, so the events its processes sent
    /// last (the reader drains every 50 ms) are in what it learned.
    drained: Arc<tokio::sync::watch::Sender<u64>>,
}

struct TrackingState {
    tracker: Tracker,
    events: u64,
    /// (when, events so far), one sample a second, ten seconds kept.
    samples: VecDeque<(Instant, u64)>,
}

impl Tracking {
    /// Nothing tracked yet.
    pub fn new(limits: Limits) -> Self {
        let state = TrackingState { tracker: Tracker::new(limits), events: 0, samples: VecDeque::new() };
        Tracking { state: Arc::new(Mutex::new(state)), drained: Arc::new(tokio::sync::watch::channel(0).0) }
    }

    /// The reader has read and recorded one more batch.
    pub fn batch_done(&self) {
        self.drained.send_modify(|n| *n += 1);
    }

    /// Waits until the reader has read the ring buffer through once after this call
    /// (two batches: the one in progress may have begun before), or `limit`.
    pub async fn settled(&self, limit: std::time::Duration) {
        let mut rx = self.drained.subscribe();
        let start = *rx.borrow_and_update();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n >= start + 2)).await;
    }

    /// Tracks a container (see [`Tracker::watch`]), then folds in `present` (what its
    /// processes held before watching began).
    pub fn watch(&self, cgroup_id: u64, name: Option<&str>, present: &[FileEvent]) -> ContainerSummary {
        let mut s = lock(&self.state);
        let before = s.tracker.watch(cgroup_id, name);
        for e in present {
            s.tracker.record(e);
        }
        s.tracker.summary(cgroup_id).unwrap_or(before)
    }

    /// Names a container.
    pub fn rename(&self, cgroup_id: u64, name: &str) {
        lock(&self.state).tracker.rename(cgroup_id, name);
    }

    /// Stops tracking new events of a container; keeps what it used.
    pub fn unwatch(&self, cgroup_id: u64, lost: u64) -> Option<ContainerSummary> {
        lock(&self.state).tracker.unwatch(cgroup_id, lost)
    }

    /// Forgets a container.
    pub fn remove(&self, cgroup_id: u64) {
        lock(&self.state).tracker.remove(cgroup_id);
    }

    /// Folds a batch of events in.
    pub fn record(&self, batch: &[FileEvent]) {
        let mut s = lock(&self.state);
        s.events += batch.len() as u64;
        for e in batch {
            s.tracker.record(e);
        }
    }

    /// Raises the lost-event counts of containers.
    pub fn set_lost(&self, lost: &[(u64, u64)]) {
        let mut s = lock(&self.state);
        for &(cgroup_id, n) in lost {
            s.tracker.set_lost(cgroup_id, n);
        }
    }

    /// Takes this second's rate sample.
    pub fn sample(&self) {
        let mut s = lock(&self.state);
        let events = s.events;
        s.samples.push_back((Instant::now(), events));
        while s.samples.len() > 11 {
            s.samples.pop_front();
        }
    }

    /// Events received, and per second over the last ten seconds.
    pub fn rate(&self) -> (u64, f64) {
        let s = lock(&self.state);
        let per_s = match (s.samples.front(), s.samples.back()) {
            (Some(&(t0, e0)), Some(&(t1, e1))) if t1 > t0 => (e1 - e0) as f64 / (t1 - t0).as_secs_f64(),
            _ => 0.0,
        };
        (s.events, per_s)
    }

    /// Containers being watched.
    pub fn watched(&self) -> Vec<u64> {
        lock(&self.state).tracker.watched()
    }

    /// Every container's summary.
    pub fn summaries(&self) -> Vec<ContainerSummary> {
        lock(&self.state).tracker.summaries()
    }

    /// A container's cgroup id, by name or id.
    pub fn find(&self, key: &str) -> Option<u64> {
        lock(&self.state).tracker.find(key)
    }

    /// A container's summary and files, by name or cgroup id.
    pub fn files(&self, key: &str) -> Option<(ContainerSummary, Vec<FileRecord>)> {
        let s = lock(&self.state);
        let id = s.tracker.find(key)?;
        Some((s.tracker.summary(id)?, s.tracker.files(id)?))
    }

    /// What the flow learns of a container; `lost` is the kernel's count for it.
    pub fn observed(&self, cgroup_id: u64, lost: u64) -> Observed {
        let mut s = lock(&self.state);
        s.tracker.set_lost(cgroup_id, lost);
        match s.tracker.observed(cgroup_id) {
            Some((paths, summary)) => Observed { paths, incomplete: summary.incomplete_reasons() },
            None if lost > 0 => {
                Observed { paths: Vec::new(), incomplete: vec![format!("the kernel lost {lost} events")] }
            }
            None => Observed::default(),
        }
    }

    /// How far a container's learning has got.
    pub fn progress(&self, cgroup_id: u64) -> Progress {
        match lock(&self.state).tracker.summary(cgroup_id) {
            Some(s) => Progress { paths: s.files, short_by: s.lost + s.dropped + s.truncated as u64 },
            None => Progress::default(),
        }
    }

    /// Distinct paths held, all containers together.
    pub fn distinct_paths(&self) -> usize {
        lock(&self.state).tracker.distinct_paths()
    }
}

/// The sniffer as the coordinator sees it: the kernel and the tracking, each locked only
/// inside its own methods, never both at once.
pub struct FlowSniffer {
    /// The kernel programs.
    pub kernel: KernelHandle,
    /// The containers.
    pub tracking: Tracking,
    /// The probes at vulnerable functions.
    pub probes: crate::probes::ProbeManager,
}

impl coordinator::flow::Sniffer for FlowSniffer {
    fn watch(&self, cgroup_id: u64) -> Result<(), coordinator::flow::WatchError> {
        self.kernel.watch(cgroup_id).map_err(|e| coordinator::flow::WatchError { cgroup_id, source: e.into() })?;
        self.tracking.watch(cgroup_id, None, &[]);
        Ok(())
    }

    fn unwatch(&self, cgroup_id: u64) {
        let lost = self.kernel.unwatch(cgroup_id).unwrap_or(0);
        self.tracking.unwatch(cgroup_id, lost);
        self.probes.release(cgroup_id);
    }

    fn probe(&self, cgroup_id: u64, pid: u32, targets: Vec<coordinator::flow::ProbeTarget>) {
        let targets = targets
            .into_iter()
            .map(|t| match t.jvm {
                true => crate::probes::Target::jvm(t.binary),
                false => crate::probes::Target {
                    kind: crate::probes::ProbeKind::GoFunction,
                    binary: t.binary,
                    functions: t.functions,
                },
            })
            .collect();
        self.probes.probe(cgroup_id, pid, targets);
    }

    fn calls(&self, cgroup_id: u64) -> Option<vuln::reach::Calls> {
        self.probes.calls(cgroup_id)
    }

    fn observed(&self, cgroup_id: u64) -> Observed {
        let lost = self.kernel.lost(cgroup_id);
        self.tracking.observed(cgroup_id, lost)
    }

    fn progress(&self, cgroup_id: u64) -> Progress {
        self.tracking.progress(cgroup_id)
    }
}
