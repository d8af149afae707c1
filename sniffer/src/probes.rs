//! The probe manager: uprobes at the entry of vulnerable functions linked into binaries that
//! containers being learned run, and the first call of each per container.
//!
//! A dedicated thread owns the probes (attaching one is `perf_event_open` and a BPF link:
//! system calls that resolve a path and patch pages, never made on the async runtime or
//! under a lock). Everyone else talks to it through a bounded queue, and reads what it
//! found in [`Shared`], whose lock spans memory work only.
//!
//! The binary is opened inside the container's root through the one gate
//! (`sbom::rootfs::Root`, `RESOLVE_IN_ROOT`), its function table read from that very
//! descriptor, and the probe attached through `/proc/self/fd/N` of it: a link in the image
//! cannot point the probe at a host file, and the offset always belongs to the file probed.
//! uprobes are per file, so one probe serves every container running the binary; the
//! kernel program drops calls from unwatched cgroups and repeats (one event per cgroup and
//! probe), and the probe is removed as soon as every container learning it has called it,
//! or has stopped learning.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use sbom::time::Timestamp;
use serde::{Deserialize, Serialize};
use vuln::reach::{Call, Calls, Site};

use crate::event::{CallSeen, ClassSeen};
use crate::uprobe::Uprobe;

/// What a probe sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The entry of a Go function (found in the binary's function table): its first call
    /// per container.
    GoFunction,
    /// HotSpot's `JVM_DefineClassWithSource` (an exported symbol of `libjvm.so`): every
    /// class defined, with its code source.
    ClassDefine,
}

/// The function of `libjvm.so` a class probe goes at.
pub const CLASS_DEFINE: &str = "JVM_DefineClassWithSource";

/// A binary and the functions of it to probe (names as its function table writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What is probed.
    pub kind: ProbeKind,
    /// Its path inside the container's root.
    pub binary: PathBuf,
    /// Functions.
    pub functions: Vec<String>,
}

impl Target {
    /// The class probe of a `libjvm.so`.
    pub fn jvm(libjvm: PathBuf) -> Target {
        Target { kind: ProbeKind::ClassDefine, binary: libjvm, functions: vec![CLASS_DEFINE.to_string()] }
    }
}

/// The probe targets of static facts: every linked vulnerable function with code of its own,
/// grouped by binary.
pub fn targets<'a>(facts: impl Iterator<Item = &'a vuln::reach::GoStatic>) -> Vec<Target> {
    let mut by_binary: std::collections::BTreeMap<PathBuf, std::collections::BTreeSet<String>> = Default::default();
    for f in facts {
        if let vuln::reach::GoStatic::Linked { sites } = f {
            for s in sites.iter().filter(|s| s.offset.is_some()) {
                by_binary.entry(s.binary.clone()).or_default().insert(s.function.clone());
            }
        }
    }
    by_binary
        .into_iter()
        .map(|(binary, f)| Target { kind: ProbeKind::GoFunction, binary, functions: f.into_iter().collect() })
        .collect()
}

/// Bounds on probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLimits {
    /// Probes per binary.
    pub per_binary: usize,
    /// Probes on the node.
    pub total: usize,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        ProbeLimits { per_binary: 64, total: 1024 }
    }
}

/// What `sniffer status` shows of the probes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    /// Probes attached now.
    pub attached: usize,
    /// Probes attached since start.
    pub attached_total: u64,
    /// Attaches that failed since start.
    pub failed: u64,
    /// Bounds.
    pub max_per_binary: usize,
    /// Bounds.
    pub max_total: usize,
    /// Why there are no probes at all, when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// Most requests waiting for the thread.
const QUEUE: usize = 1024;
/// Most binaries one request probes.
const MAX_BINARY_TARGETS: usize = 64;

enum Request {
    Probe {
        cgroup_id: u64,
        pid: u32,
        targets: Vec<Target>,
    },
    /// Probes every watcher of which has called them, or stopped learning.
    Detach(Vec<u64>),
}

/// One probe: where, and the containers still waiting for its first call (a class probe:
/// learning with it).
#[derive(Debug)]
struct ProbeInfo {
    kind: ProbeKind,
    site: Site,
    watchers: HashSet<u64>,
}

/// Per container: the probes in place for it, since when, the calls, what could not be
/// probed.
#[derive(Debug, Default)]
struct PerCgroup {
    since: Option<Timestamp>,
    probes: Vec<u64>,
    calls: Vec<Call>,
    unprobed: Vec<String>,
    /// Classes defined, by code source, and the class probe's coverage.
    classes: Calls,
}

/// What the thread and everyone else share: memory only.
#[derive(Debug, Default)]
struct Shared {
    probes: HashMap<u64, ProbeInfo>,
    cgroups: HashMap<u64, PerCgroup>,
    status: ProbeStatus,
}

/// Most containers whose probe state is kept (each learning one holds an entry until it
/// ends).
const MAX_CGROUPS: usize = 16_384;
/// Most reasons kept per container.
const MAX_REASONS: usize = 16;

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The handle: cheap to clone.
#[derive(Clone)]
pub struct ProbeManager {
    tx: Option<SyncSender<Request>>,
    shared: Arc<Mutex<Shared>>,
}

impl ProbeManager {
    /// Starts the thread with the loaded call program, or, without one, a manager that
    /// says why for every request.
    pub fn start(program: Result<OwnedFd, String>, limits: ProbeLimits) -> ProbeManager {
        ProbeManager::start_with(program, Err("classes were not asked for".into()), limits)
    }

    /// [`ProbeManager::start`] with the class program too (or why there is none).
    pub fn start_with(
        program: Result<OwnedFd, String>,
        class_program: Result<OwnedFd, String>,
        limits: ProbeLimits,
    ) -> ProbeManager {
        // Either program alone is worth running: Go calls without classes, or classes
        // without Go calls. Said in the status, and per target when it is asked for.
        let unavailable = match (&program, &class_program) {
            (Err(go), Err(java)) => Some(format!("{go}; {java}")),
            _ => None,
        };
        let status = ProbeStatus {
            max_per_binary: limits.per_binary,
            max_total: limits.total,
            unavailable,
            ..Default::default()
        };
        let shared = Arc::new(Mutex::new(Shared { status, ..Default::default() }));
        if lock(&shared).status.unavailable.is_some() {
            return ProbeManager { tx: None, shared };
        }
        let pmu = match crate::uprobe::pmu_type() {
            Ok(t) => t,
            Err(e) => {
                lock(&shared).status.unavailable = Some(format!("no uprobe PMU: {e}"));
                return ProbeManager { tx: None, shared };
            }
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let worker = Worker {
            program: program.map_err(|e| format!("no call program: {e}")),
            class_program: class_program.map_err(|e| format!("no class program: {e}")),
            pmu,
            limits,
            shared: shared.clone(),
            links: HashMap::new(),
            by_key: HashMap::new(),
        };
        let spawned = std::thread::Builder::new().name("probes".into()).spawn(move || worker.run(rx));
        if let Err(e) = spawned {
            lock(&shared).status.unavailable = Some(format!("starting the probe thread: {e}"));
            return ProbeManager { tx: None, shared };
        }
        ProbeManager { tx: Some(tx), shared }
    }

    /// Asks for probes at `targets` for the container `cgroup_id` (a process of it: `pid`).
    /// Never blocks: a full queue is said in the container's reasons.
    pub fn probe(&self, cgroup_id: u64, pid: u32, targets: Vec<Target>) {
        if targets.is_empty() {
            return;
        }
        // The container's entry exists from now until it is released: calls found while
        // its probes are being attached land in it, and a release before the thread gets
        // to the request is seen there.
        {
            let mut s = lock(&self.shared);
            if s.cgroups.len() >= MAX_CGROUPS && !s.cgroups.contains_key(&cgroup_id) {
                return;
            }
            s.cgroups.entry(cgroup_id).or_default();
        }
        let refused = match &self.tx {
            None => lock(&self.shared).status.unavailable.clone().or(Some("no probes".into())),
            Some(tx) => match tx.try_send(Request::Probe { cgroup_id, pid, targets }) {
                Ok(()) => None,
                Err(TrySendError::Full(_)) => Some("the probe queue is full".into()),
                Err(TrySendError::Disconnected(_)) => Some("the probe thread has stopped".into()),
            },
        };
        if let Some(why) = refused
            && let Some(cg) = lock(&self.shared).cgroups.get_mut(&cgroup_id)
        {
            push_reason(&mut cg.unprobed, why);
        }
    }

    /// Records calls the kernel reported: each is the first of its probe by its cgroup.
    /// Probes no container waits on any more are removed.
    pub fn record(&self, seen: &[CallSeen]) {
        if seen.is_empty() {
            return;
        }
        let mut done = Vec::new();
        {
            let mut s = lock(&self.shared);
            for c in seen {
                let Some(probe) = s.probes.get_mut(&c.probe) else { continue };
                if probe.kind != ProbeKind::GoFunction || !probe.watchers.remove(&c.cgroup_id) {
                    continue;
                }
                if probe.watchers.is_empty() {
                    done.push(c.probe);
                }
                let site = probe.site.clone();
                if let Some(cg) = s.cgroups.get_mut(&c.cgroup_id) {
                    cg.calls.push(Call { site, pid: c.tgid, comm: c.comm.clone(), at: Timestamp::now() });
                }
            }
        }
        self.detach(done);
    }

    /// Records classes the kernel reported defined.
    pub fn record_classes(&self, seen: &[ClassSeen]) {
        if seen.is_empty() {
            return;
        }
        let mut s = lock(&self.shared);
        for c in seen {
            if let Some(cg) = s.cgroups.get_mut(&c.cgroup_id)
                && cg.classes.class_probe.is_some()
            {
                cg.classes.define(&c.source, &c.class, c.tgid, &c.comm);
            }
        }
    }

    /// The container stopped learning: its probes no longer wait for it. Returns what it
    /// saw, and forgets it.
    pub fn release(&self, cgroup_id: u64) -> Option<Calls> {
        let mut done = Vec::new();
        let calls = {
            let mut s = lock(&self.shared);
            let cg = s.cgroups.remove(&cgroup_id)?;
            for id in &cg.probes {
                if let Some(p) = s.probes.get_mut(id)
                    && p.watchers.remove(&cgroup_id)
                    && p.watchers.is_empty()
                {
                    done.push(*id);
                }
            }
            calls_of(&s, &cg)
        };
        self.detach(done);
        Some(calls)
    }

    /// What a container's probes saw so far (window not filled in), if it has any.
    pub fn calls(&self, cgroup_id: u64) -> Option<Calls> {
        let s = lock(&self.shared);
        let cg = s.cgroups.get(&cgroup_id)?;
        Some(calls_of(&s, cg))
    }

    /// For `sniffer status`.
    pub fn status(&self) -> ProbeStatus {
        let s = lock(&self.shared);
        ProbeStatus { attached: s.probes.len(), ..s.status.clone() }
    }

    fn detach(&self, ids: Vec<u64>) {
        if let (false, Some(tx)) = (ids.is_empty(), &self.tx) {
            // A full queue leaves the probes in place a while longer: they cost traps,
            // never a wrong answer; the next release retries.
            let _ = tx.try_send(Request::Detach(ids));
        }
    }
}

fn calls_of(s: &Shared, cg: &PerCgroup) -> Calls {
    Calls {
        classes: cg.classes.classes.clone(),
        class_probe: cg.classes.class_probe.clone(),
        probed: {
            // In the order probes were attached (a trace prints the new ones), each once; a
            // probe removed after its call is still one that was in place.
            let mut seen = HashSet::new();
            cg.probes
                .iter()
                .filter_map(|id| s.probes.get(id).filter(|p| p.kind == ProbeKind::GoFunction).map(|p| p.site.clone()))
                .chain(cg.calls.iter().map(|c| c.site.clone()))
                .filter(|site| seen.insert(site.clone()))
                .collect()
        },
        calls: cg.calls.clone(),
        window_seconds: 0,
        since: cg.since,
        unprobed: cg.unprobed.clone(),
    }
}

/// Most processes of a container looked at for a running JVM.
const MAX_PROCS: usize = 4096;
/// Bytes of one process's memory map read.
const MAX_MAPS: u64 = 4 << 20;

/// A process of `pid`'s cgroup that already maps a `libjvm.so`, if any: classes it defined
/// before the class probe was attached were not seen.
fn running_jvm(pid: u32) -> Option<u32> {
    use std::io::Read;
    let dir = crate::cgroup::dir_of_pid(pid).ok()?;
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    procs.lines().take(MAX_PROCS).filter_map(|l| l.trim().parse::<u32>().ok()).find(|p| {
        let mut maps = Vec::new();
        std::fs::File::open(format!("/proc/{p}/maps"))
            .and_then(|f| f.take(MAX_MAPS).read_to_end(&mut maps))
            .is_ok_and(|_| memchr::memmem::find(&maps, b"/libjvm.so").is_some())
    })
}

fn push_reason(reasons: &mut Vec<String>, why: String) {
    if reasons.len() < MAX_REASONS && !reasons.contains(&why) {
        reasons.push(why);
    }
}

/// The thread's own state: the probes themselves.
struct Worker {
    /// The call program, or why there is none.
    program: Result<OwnedFd, String>,
    /// The class program, or why there is none.
    class_program: Result<OwnedFd, String>,
    pmu: u32,
    limits: ProbeLimits,
    shared: Arc<Mutex<Shared>>,
    /// Probe id -> its attachment.
    links: HashMap<u64, Uprobe>,
    /// (device, inode, offset) -> probe id: one probe per place, whatever container asks.
    by_key: HashMap<(u64, u64, u64), u64>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Request>) {
        let mut next_id = 1u64;
        while let Ok(request) = rx.recv() {
            match request {
                Request::Probe { cgroup_id, pid, targets } => self.probe(cgroup_id, pid, &targets, &mut next_id),
                Request::Detach(ids) => self.detach(ids),
            }
        }
    }

    /// Removes the probes no container waits on (another may have started waiting on one
    /// since it was asked). The links are closed after the lock is released.
    fn detach(&mut self, ids: Vec<u64>) {
        let mut gone = Vec::new();
        {
            let mut s = lock(&self.shared);
            for id in ids {
                if s.probes.get(&id).is_some_and(|p| p.watchers.is_empty()) {
                    s.probes.remove(&id);
                    gone.push(id);
                }
            }
        }
        for id in gone {
            self.by_key.retain(|_, v| *v != id);
            drop(self.links.remove(&id));
        }
    }

    fn probe(&mut self, cgroup_id: u64, pid: u32, targets: &[Target], next_id: &mut u64) {
        if !lock(&self.shared).cgroups.contains_key(&cgroup_id) {
            // Released before its turn came.
            return;
        }
        let mut ids = Vec::new();
        let mut reasons = Vec::new();
        let root = match sbom::rootfs::Root::open(Path::new(&format!("/proc/{pid}/root"))) {
            Ok(r) => Some(r),
            Err(e) => {
                reasons.push(format!("the container's root (pid {pid}): {e}"));
                None
            }
        };
        let mut jvms = Vec::new();
        let mut class_gaps = Vec::new();
        for t in targets.iter().take(MAX_BINARY_TARGETS) {
            let Some(root) = &root else {
                if t.kind == ProbeKind::ClassDefine {
                    class_gaps.push(format!("{}: the container's root could not be read", t.binary.display()));
                }
                continue;
            };
            match self.probe_binary(root, t, cgroup_id, next_id) {
                Ok((mut got, why)) => {
                    if t.kind == ProbeKind::ClassDefine {
                        if got.is_empty() {
                            class_gaps.extend(why.iter().cloned());
                        } else {
                            jvms.push(t.binary.clone());
                        }
                    }
                    ids.append(&mut got);
                    reasons.extend(why);
                }
                Err(why) => {
                    let why = format!("{}: {why}", t.binary.display());
                    if t.kind == ProbeKind::ClassDefine {
                        class_gaps.push(why.clone());
                    }
                    reasons.push(why);
                }
            }
        }
        let wants_classes = targets.iter().any(|t| t.kind == ProbeKind::ClassDefine);
        if wants_classes && let Some(jvm) = running_jvm(pid) {
            class_gaps.push(format!("a JVM (pid {jvm}) was running before the class probe was in place"));
        }
        let released = {
            let mut s = lock(&self.shared);
            match s.cgroups.get_mut(&cgroup_id) {
                Some(cg) => {
                    cg.since.get_or_insert_with(Timestamp::now);
                    if wants_classes {
                        let probe = cg.classes.class_probe.get_or_insert_with(Default::default);
                        probe.since.get_or_insert_with(Timestamp::now);
                        probe.jvms.extend(jvms);
                        for g in class_gaps {
                            push_reason(&mut probe.gaps, g);
                        }
                    }
                    cg.probes.extend(ids.iter().copied());
                    for r in reasons {
                        push_reason(&mut cg.unprobed, r);
                    }
                    Vec::new()
                }
                // Released while its probes were attached: they do not wait for it.
                None => ids
                    .into_iter()
                    .filter(|id| {
                        s.probes.get_mut(id).is_some_and(|p| p.watchers.remove(&cgroup_id) && p.watchers.is_empty())
                    })
                    .collect(),
            }
        };
        self.detach(released);
    }

    /// Probes the functions of one binary; the probe ids, and why some are not probed.
    fn probe_binary(
        &mut self,
        root: &sbom::rootfs::Root,
        target: &Target,
        cgroup_id: u64,
        next_id: &mut u64,
    ) -> Result<(Vec<u64>, Vec<String>), String> {
        let file = root.open_file(&target.binary).map_err(|e| e.to_string())?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        let program = match target.kind {
            ProbeKind::GoFunction => &self.program,
            ProbeKind::ClassDefine => &self.class_program,
        };
        let program = match program {
            Ok(p) => p.try_clone().map_err(|e| e.to_string())?,
            Err(why) => return Err(why.clone()),
        };
        // The offsets come from this very descriptor: the file probed is the file read.
        let table = match target.kind {
            ProbeKind::GoFunction => {
                Some(sbom::gofunc::FuncTable::parse(&file).map_err(|e| format!("no usable function table: {e}"))?)
            }
            ProbeKind::ClassDefine => None,
        };
        let resolve = |function: &str| -> Result<Vec<u64>, String> {
            match &table {
                Some(t) => Ok(t.funcs().filter(|f| f.name == function).filter_map(|f| f.offset).collect()),
                None => sbom::elf::exported_function(&file, function)
                    .map(|o| vec![o])
                    .map_err(|e| format!("not a HotSpot JVM: {e}")),
            }
        };
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_fd().as_raw_fd()));
        let (mut ids, mut why) = (Vec::new(), Vec::new());
        let mut here = 0;
        for function in &target.functions {
            let offsets = match resolve(function) {
                Ok(o) => o,
                Err(e) => {
                    why.push(format!("{function} in {}: {e}", target.binary.display()));
                    continue;
                }
            };
            if offsets.is_empty() {
                why.push(format!("{function} in {}: no code of its own to probe (inlined)", target.binary.display()));
            }
            for offset in offsets {
                let key = (meta.dev(), meta.ino(), offset);
                let site = Site { binary: target.binary.clone(), function: function.clone(), offset: Some(offset) };
                if let Some(&id) = self.by_key.get(&key) {
                    let mut s = lock(&self.shared);
                    if let Some(p) = s.probes.get_mut(&id) {
                        p.watchers.insert(cgroup_id);
                        ids.push(id);
                        continue;
                    }
                }
                let attached = lock(&self.shared).probes.len();
                if here >= self.limits.per_binary || attached >= self.limits.total {
                    why.push(format!(
                        "{function} in {}: over the probe limit ({} per binary, {} per node)",
                        target.binary.display(),
                        self.limits.per_binary,
                        self.limits.total
                    ));
                    continue;
                }
                let id = *next_id;
                *next_id += 1;
                match Uprobe::attach(program.as_fd(), self.pmu, &path, offset, id) {
                    Ok(link) => {
                        here += 1;
                        self.links.insert(id, link);
                        self.by_key.insert(key, id);
                        let mut s = lock(&self.shared);
                        s.probes
                            .insert(id, ProbeInfo { kind: target.kind, site, watchers: HashSet::from([cgroup_id]) });
                        s.status.attached_total += 1;
                        ids.push(id);
                    }
                    Err(e) => {
                        lock(&self.shared).status.failed += 1;
                        why.push(format!("{function} in {}: attaching a uprobe: {e}", target.binary.display()));
                    }
                }
            }
        }
        Ok((ids, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the programs (a kernel without uprobes, say): every request is answered with
    /// the reason, which the container's calls carry, and nothing is attached.
    #[test]
    fn without_programs_every_request_says_why() {
        let m = ProbeManager::start_with(
            Err("no kprobe programs".into()),
            Err("no kprobe programs".into()),
            ProbeLimits::default(),
        );
        let status = m.status();
        assert_eq!(status.attached, 0);
        assert!(status.unavailable.as_deref().is_some_and(|w| w.contains("no kprobe programs")), "{status:?}");
        m.probe(7, 1, vec![Target::jvm("/usr/lib/jvm/x/lib/server/libjvm.so".into())]);
        let calls = m.calls(7).expect("the container is known");
        assert!(calls.probed.is_empty() && calls.class_probe.is_none());
        assert!(calls.unprobed.iter().any(|w| w.contains("no kprobe programs")), "{calls:?}");
        assert!(m.release(7).is_some());
        assert!(m.calls(7).is_none(), "released: forgotten");
    }

    /// Calls and classes of a container nobody asked probes for are dropped, and a bounded
    /// number of containers is kept.
    #[test]
    fn state_is_bounded() {
        let m = ProbeManager::start_with(Err("off".into()), Err("off".into()), ProbeLimits::default());
        m.record(&[CallSeen { cgroup_id: 9, pid: 1, tgid: 1, comm: "x".into(), probe: 3 }]);
        m.record_classes(&[ClassSeen {
            cgroup_id: 9,
            tgid: 1,
            comm: "java".into(),
            class: "A".into(),
            source: "file:/a.jar".into(),
        }]);
        assert!(m.calls(9).is_none());
        for id in 0..(MAX_CGROUPS as u64 + 10) {
            m.probe(id, 1, vec![Target::jvm("/x/libjvm.so".into())]);
        }
        assert_eq!(lock(&m.shared).cgroups.len(), MAX_CGROUPS);
    }
}
