//! What each watched container opened and executed, aggregated from kernel events.
//!
//! Memory is the constraint: a node runs a hundred containers for months, some of them
//! JVMs and Python apps that open tens of thousands of files. Paths are interned once per
//! node ([`PathTable`]); a container keeps, per distinct file, a 4-byte id and a 12-byte
//! record. Every structure here has a bound: files per container (past it, new paths are
//! counted and dropped, and the container is incomplete), processes per container, command
//! names per container, and containers kept after they stopped being watched.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::event::{Access, FileEvent, display_path};
use crate::paths::{PathId, PathTable};

/// Most processes whose executable a container remembers at once.
const MAX_PROCESSES: usize = 16384;
/// Most distinct command names a container remembers (a task's name when its executable is
/// unknown); past it, such files show `?`.
const MAX_COMMS: usize = 1024;

/// One distinct file of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Absolute path inside the container.
    pub path: String,
    /// Opened at least once.
    pub opened: bool,
    /// Executed at least once.
    pub executed: bool,
    /// First seen, milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
    /// The executable of the task that first used it (its exec path when seen, else its
    /// command name).
    pub exe: String,
    /// Events received for it: 1 per kind normally, more when the kernel's LRU forgot it.
    pub events: u64,
    /// Only the leaf side of the path is known.
    pub truncated: bool,
}

/// A summary of a container, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Its name.
    pub name: String,
    /// Its cgroup id.
    pub cgroup_id: u64,
    /// Distinct files seen.
    pub files: usize,
    /// Events received.
    pub events: u64,
    /// Events lost.
    pub lost: u64,
    /// New paths dropped because the container reached its cap of distinct files.
    #[serde(default)]
    pub dropped: u64,
    /// The kernel is reporting it now.
    pub watching: bool,
    /// Paths only partly known.
    pub truncated: usize,
    /// True when nothing was lost or dropped and every path is whole: the file list can be
    /// trusted to hold everything the container used.
    pub complete: bool,
    /// When watching started, ms since the epoch.
    pub since_ms: u64,
}

impl ContainerSummary {
    /// Why the file list may be short, one sentence each; empty when it is complete.
    pub fn incomplete_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.lost > 0 {
            reasons.push(format!("the kernel lost {} events of this container (ring buffer full)", self.lost));
        }
        if self.dropped > 0 {
            reasons.push(format!(
                "{} new paths were dropped: the container reached its cap of {} distinct files",
                self.dropped, self.files
            ));
        }
        if self.truncated > 0 {
            reasons.push(format!("{} paths were too long or deep to be read whole", self.truncated));
        }
        reasons
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The bounds of a [`Tracker`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Distinct files kept per container.
    pub max_paths: usize,
    /// Containers kept, with their files, after they stopped being watched (for `sniffer
    /// files`); the oldest go first.
    pub max_retired: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_paths: 65_536, max_retired: 256 }
    }
}

/// Who used a file first: a path id (an executable held by the same container's files),
/// or, with [`COMM`] set, an index into the container's command names.
type Exe = u32;
const COMM: u32 = 1 << 31;

/// 12 bytes per distinct file of a container (16 with its key).
#[derive(Debug, Clone, Copy)]
struct Rec {
    /// Tenths of a second after the container's `since_ms` (13 years fit).
    first_seen_ds: u32,
    exe: Exe,
    /// Events (low 29 bits, saturating) and the [`OPENED`], [`EXECUTED`] and [`CUT`] flags.
    events: u32,
}

const OPENED: u32 = 1 << 31;
const EXECUTED: u32 = 1 << 30;
const CUT: u32 = 1 << 29;
const EVENTS: u32 = CUT - 1;

impl Rec {
    fn count(&mut self, kind: Access) {
        if self.events & EVENTS < EVENTS {
            self.events += 1;
        }
        self.events |= match kind {
            Access::Open => OPENED,
            Access::Exec => EXECUTED,
        };
    }
}

#[derive(Debug, Default)]
struct Container {
    name: String,
    cgroup_id: u64,
    since_ms: u64,
    files: HashMap<PathId, Rec>,
    exe_by_tgid: HashMap<u32, PathId>,
    comms: Vec<Box<str>>,
    lost: u64,
    events: u64,
    dropped: u64,
    truncated: usize,
    watching: bool,
}

impl Container {
    fn comm(&mut self, comm: &str) -> Exe {
        if let Some(i) = self.comms.iter().position(|c| &**c == comm) {
            return COMM | i as u32;
        }
        if self.comms.len() >= MAX_COMMS {
            return COMM | MAX_COMMS as u32;
        }
        self.comms.push(comm.into());
        COMM | (self.comms.len() - 1) as u32
    }

    fn summary(&self) -> ContainerSummary {
        ContainerSummary {
            name: self.name.clone(),
            cgroup_id: self.cgroup_id,
            files: self.files.len(),
            events: self.events,
            lost: self.lost,
            dropped: self.dropped,
            watching: self.watching,
            truncated: self.truncated,
            complete: self.lost == 0 && self.truncated == 0 && self.dropped == 0,
            since_ms: self.since_ms,
        }
    }
}

fn path_of(paths: &PathTable, id: PathId) -> &Path {
    Path::new(OsStr::from_bytes(paths.get(id)))
}

/// Every tracked container and the paths they share.
#[derive(Default)]
pub struct Tracker {
    paths: PathTable,
    containers: std::collections::HashMap<u64, Container>,
    /// Unwatched containers, oldest first.
    retired: VecDeque<u64>,
    limits: Limits,
}

impl Tracker {
    /// An empty tracker with these bounds.
    pub fn new(limits: Limits) -> Self {
        Tracker { limits, ..Default::default() }
    }

    /// Starts tracking a container (or resumes one). A new one is named `name`, or its
    /// cgroup id.
    pub fn watch(&mut self, cgroup_id: u64, name: Option<&str>) -> ContainerSummary {
        self.retired.retain(|&id| id != cgroup_id);
        let c = self.containers.entry(cgroup_id).or_insert_with(|| Container {
            name: name.map_or_else(|| cgroup_id.to_string(), str::to_string),
            cgroup_id,
            since_ms: now_ms(),
            ..Default::default()
        });
        c.watching = true;
        c.summary()
    }

    /// Names a tracked container.
    pub fn rename(&mut self, cgroup_id: u64, name: &str) {
        if let Some(c) = self.containers.get_mut(&cgroup_id) {
            c.name = name.to_string();
        }
    }

    /// Stops watching a container; what it used is kept (within `max_retired`).
    pub fn unwatch(&mut self, cgroup_id: u64, lost: u64) -> Option<ContainerSummary> {
        let c = self.containers.get_mut(&cgroup_id)?;
        c.lost = c.lost.max(lost);
        let summary = c.summary();
        if c.watching {
            c.watching = false;
            c.exe_by_tgid = HashMap::new();
            self.retired.push_back(cgroup_id);
        }
        while self.retired.len() > self.limits.max_retired {
            if let Some(old) = self.retired.pop_front() {
                self.remove(old);
            }
        }
        Some(ContainerSummary { watching: false, ..summary })
    }

    /// Forgets a container and releases its paths.
    pub fn remove(&mut self, cgroup_id: u64) {
        self.retired.retain(|&id| id != cgroup_id);
        if let Some(c) = self.containers.remove(&cgroup_id) {
            for id in c.files.keys() {
                self.paths.release(*id);
            }
        }
    }

    /// Raises a container's count of events the kernel lost.
    pub fn set_lost(&mut self, cgroup_id: u64, lost: u64) {
        if let Some(c) = self.containers.get_mut(&cgroup_id) {
            c.lost = c.lost.max(lost);
        }
    }

    /// Folds one event in. Returns true when the path is new to its container; false for a
    /// repeat, a path dropped at the cap, or a container not tracked.
    pub fn record(&mut self, event: &FileEvent) -> bool {
        let Some(c) = self.containers.get_mut(&event.cgroup_id) else {
            tracing::debug!(cgroup = event.cgroup_id, path = ?event.path, "event of an unknown cgroup");
            return false;
        };
        c.events += 1;
        let bytes = event.path.as_os_str().as_bytes();
        let known = self.paths.lookup(bytes).filter(|id| c.files.contains_key(id));
        let process_exec = event.kind == Access::Exec && event.loader_of.is_none();
        let id = match known {
            Some(id) => id,
            None if c.files.len() >= self.limits.max_paths => {
                c.dropped += 1;
                if process_exec {
                    c.exe_by_tgid.remove(&event.tgid);
                }
                return false;
            }
            None => self.paths.intern(bytes),
        };
        // A loader's exec (derived from its binary's PT_INTERP) does not change what runs.
        if process_exec {
            // Process exits are not traced: bound the map rather than let it grow forever
            // (forgotten processes fall back to their command name).
            if c.exe_by_tgid.len() >= MAX_PROCESSES {
                c.exe_by_tgid.clear();
            }
            c.exe_by_tgid.insert(event.tgid, id);
        }
        let rec = match c.files.get_mut(&id) {
            Some(rec) => rec,
            None => {
                let exe = match c.exe_by_tgid.get(&event.tgid) {
                    Some(&exe) => exe.index(),
                    None => c.comm(&event.comm),
                };
                if event.truncated {
                    c.truncated += 1;
                }
                let since = now_ms().saturating_sub(c.since_ms) / 100;
                let rec = Rec {
                    first_seen_ds: u32::try_from(since).unwrap_or(u32::MAX),
                    exe,
                    events: if event.truncated { CUT } else { 0 },
                };
                c.files.entry(id).or_insert(rec)
            }
        };
        rec.count(event.kind);
        known.is_none()
    }

    /// The cgroup id of a container, by name or cgroup id.
    pub fn find(&self, key: &str) -> Option<u64> {
        let by_id = key.parse::<u64>().ok();
        self.containers.values().find(|c| c.name == key || Some(c.cgroup_id) == by_id).map(|c| c.cgroup_id)
    }

    /// Every container's summary, by name.
    pub fn summaries(&self) -> Vec<ContainerSummary> {
        let mut all: Vec<_> = self.containers.values().map(Container::summary).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One container's summary.
    pub fn summary(&self, cgroup_id: u64) -> Option<ContainerSummary> {
        self.containers.get(&cgroup_id).map(Container::summary)
    }

    /// Containers being watched now.
    pub fn watched(&self) -> Vec<u64> {
        self.containers.values().filter(|c| c.watching).map(|c| c.cgroup_id).collect()
    }

    /// One container's files, by path.
    pub fn files(&self, cgroup_id: u64) -> Option<Vec<FileRecord>> {
        let c = self.containers.get(&cgroup_id)?;
        let mut files: Vec<FileRecord> = c
            .files
            .iter()
            .map(|(&id, r)| FileRecord {
                path: display_path(path_of(&self.paths, id)),
                opened: r.events & OPENED != 0,
                executed: r.events & EXECUTED != 0,
                first_seen_ms: c.since_ms + u64::from(r.first_seen_ds) * 100,
                exe: if r.exe & COMM != 0 {
                    c.comms.get((r.exe & !COMM) as usize).map(|s| s.to_string()).unwrap_or_else(|| "?".into())
                } else {
                    display_path(path_of(&self.paths, PathId::from_index(r.exe)))
                },
                events: u64::from(r.events & EVENTS),
                truncated: r.events & CUT != 0,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Some(files)
    }

    /// The paths a container used, as bytes (a cut path keeps its `…` prefix), and its
    /// summary.
    pub fn observed(&self, cgroup_id: u64) -> Option<(Vec<PathBuf>, ContainerSummary)> {
        let c = self.containers.get(&cgroup_id)?;
        let paths = c.files.keys().map(|&id| path_of(&self.paths, id).to_path_buf()).collect();
        Some((paths, c.summary()))
    }

    /// Distinct paths held for all containers together.
    pub fn distinct_paths(&self) -> usize {
        self.paths.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(cgroup_id: u64, kind: Access, tgid: u32, path: &str) -> FileEvent {
        FileEvent {
            cgroup_id,
            mnt_ns: 2,
            pid: tgid,
            tgid,
            comm: "sh".into(),
            kind,
            path: path.into(),
            truncated: false,
            loader_of: None,
        }
    }

    fn file<'a>(files: &'a [FileRecord], path: &str) -> &'a FileRecord {
        files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} not in {files:?}"))
    }

    #[test]
    fn aggregates_per_path_and_attributes_executables() {
        let mut t = Tracker::default();
        t.watch(1, Some("c1"));
        assert!(t.record(&ev(1, Access::Exec, 5, "/usr/bin/python3.11")));
        let loader =
            FileEvent { loader_of: Some("/usr/bin/python3.11".into()), ..ev(1, Access::Exec, 5, "/usr/lib/ld.so") };
        assert!(t.record(&loader));
        assert!(t.record(&ev(1, Access::Open, 5, "/usr/lib/python3.11/json/__init__.py")));
        assert!(!t.record(&ev(1, Access::Open, 5, "/usr/bin/python3.11")));
        assert!(t.record(&ev(1, Access::Open, 6, "/etc/passwd")));
        let files = t.files(1).unwrap();
        let py = file(&files, "/usr/bin/python3.11");
        assert!(py.opened && py.executed && py.events == 2);
        assert_eq!(file(&files, "/usr/lib/python3.11/json/__init__.py").exe, "/usr/bin/python3.11");
        assert_eq!(file(&files, "/usr/lib/ld.so").exe, "/usr/bin/python3.11");
        assert_eq!(file(&files, "/etc/passwd").exe, "sh");
        let s = t.summary(1).unwrap();
        assert_eq!((s.files, s.events, s.complete), (4, 5, true));
        t.set_lost(1, 1);
        assert!(!t.summary(1).unwrap().complete);
    }

    #[test]
    fn containers_share_paths_and_release_them_when_forgotten() {
        let mut t = Tracker::new(Limits { max_paths: 100, max_retired: 1 });
        for cg in [1, 2, 3] {
            t.watch(cg, None);
            t.record(&ev(cg, Access::Open, 5, "/usr/lib/libc.so.6"));
            t.record(&ev(cg, Access::Open, 5, &format!("/tmp/own-{cg}")));
        }
        assert_eq!(t.distinct_paths(), 4, "libc is held once for three containers");
        t.unwatch(1, 0);
        assert!(t.files(1).is_some(), "an unwatched container is kept");
        t.unwatch(2, 0);
        assert!(t.files(1).is_none(), "past max_retired the oldest goes");
        assert_eq!(t.distinct_paths(), 3);
        t.remove(2);
        t.remove(3);
        assert_eq!(t.distinct_paths(), 0);
        // A re-watched container leaves the retired list.
        t.watch(4, None);
        t.unwatch(4, 0);
        t.watch(4, None);
        t.watch(5, None);
        t.unwatch(5, 0);
        t.watch(6, None);
        t.unwatch(6, 0);
        assert!(t.summary(4).is_some_and(|s| s.watching));
    }

    #[test]
    fn past_the_cap_new_paths_are_counted_dropped_and_the_container_is_incomplete() {
        let mut t = Tracker::new(Limits { max_paths: 3, max_retired: 8 });
        t.watch(1, None);
        for i in 0..10 {
            t.record(&ev(1, Access::Open, 5, &format!("/f{i}")));
        }
        // Known paths still count as seen.
        assert!(!t.record(&ev(1, Access::Open, 5, "/f0")));
        let s = t.summary(1).unwrap();
        assert_eq!((s.files, s.dropped, s.complete), (3, 7, false));
        let reasons = s.incomplete_reasons();
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("7 new paths were dropped") && reasons[0].contains("cap of 3"), "{reasons:?}");
        let (paths, _) = t.observed(1).unwrap();
        assert_eq!(paths.len(), 3);
        // An exec past the cap does not leave a stale executable behind.
        t.record(&ev(1, Access::Exec, 9, "/bin/new"));
        assert_eq!(t.files(1).unwrap().len(), 3);
    }
}
