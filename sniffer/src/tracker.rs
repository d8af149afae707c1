//! What each watched container opened and executed, aggregated from kernel events.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::event::{FileEvent, Kind, display_path};

/// Most processes whose executable a container remembers at once.
const MAX_PROCESSES: usize = 16384;

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

/// Everything known of one watched container.
#[derive(Debug, Clone, Default)]
pub struct Container {
    /// Its name (container id, or a name given when it was watched).
    pub name: String,
    /// Its cgroup id.
    pub cgroup_id: u64,
    /// When watching started, ms since the epoch.
    pub since_ms: u64,
    files: BTreeMap<PathBuf, FileRecord>,
    /// Executable path per process, from exec events.
    exe_by_tgid: HashMap<u32, String>,
    /// Events the kernel lost for it (ring buffer full).
    pub lost: u64,
    /// Events received.
    pub events: u64,
    /// The kernel is reporting it now.
    pub watching: bool,
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
    /// The kernel is reporting it now.
    pub watching: bool,
    /// Paths only partly known.
    pub truncated: usize,
    /// True when nothing was lost and every path is whole: the file list can be trusted to
    /// hold everything the container used.
    pub complete: bool,
    /// When watching started, ms since the epoch.
    pub since_ms: u64,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Container {
    /// A container with nothing seen yet.
    pub fn new(name: impl Into<String>, cgroup_id: u64) -> Self {
        Container { name: name.into(), cgroup_id, since_ms: now_ms(), watching: true, ..Default::default() }
    }

    /// Folds one event in. Returns the record when the path is new.
    pub fn record(&mut self, event: &FileEvent) -> Option<&FileRecord> {
        self.events += 1;
        let path_text = display_path(&event.path);
        // A loader's exec (derived from its binary's PT_INTERP) does not change what runs.
        if event.kind == Kind::Exec && event.loader_of.is_none() {
            // Process exits are not traced: bound the map rather than let it grow forever
            // (forgotten processes fall back to their command name).
            if self.exe_by_tgid.len() >= MAX_PROCESSES {
                self.exe_by_tgid.clear();
            }
            self.exe_by_tgid.insert(event.tgid, path_text.clone());
        }
        let exe = self.exe_by_tgid.get(&event.tgid).cloned().unwrap_or_else(|| event.comm.clone());
        let mut fresh = false;
        let record = self.files.entry(event.path.clone()).or_insert_with(|| {
            fresh = true;
            FileRecord {
                path: path_text,
                opened: false,
                executed: false,
                first_seen_ms: now_ms(),
                exe,
                events: 0,
                truncated: event.truncated,
            }
        });
        record.events += 1;
        match event.kind {
            Kind::Open => record.opened = true,
            Kind::Exec => record.executed = true,
        }
        fresh.then_some(&*record)
    }

    /// Every file, by path.
    pub fn files(&self) -> impl Iterator<Item = &FileRecord> {
        self.files.values()
    }

    /// One file.
    pub fn file(&self, path: &Path) -> Option<&FileRecord> {
        self.files.get(path)
    }

    /// Its summary.
    pub fn summary(&self) -> ContainerSummary {
        let truncated = self.files.values().filter(|f| f.truncated).count();
        ContainerSummary {
            name: self.name.clone(),
            cgroup_id: self.cgroup_id,
            files: self.files.len(),
            events: self.events,
            lost: self.lost,
            watching: self.watching,
            truncated,
            complete: self.lost == 0 && truncated == 0,
            since_ms: self.since_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, tgid: u32, path: &str) -> FileEvent {
        FileEvent {
            cgroup_id: 1,
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

    #[test]
    fn aggregates_per_path_and_attributes_executables() {
        let mut c = Container::new("c1", 1);
        assert!(c.record(&ev(Kind::Exec, 5, "/usr/bin/python3.11")).is_some());
        let loader = FileEvent { loader_of: Some("/usr/bin/python3.11".into()), ..ev(Kind::Exec, 5, "/usr/lib/ld.so") };
        assert!(c.record(&loader).is_some());
        assert!(c.record(&ev(Kind::Open, 5, "/usr/lib/python3.11/json/__init__.py")).is_some());
        assert!(c.record(&ev(Kind::Open, 5, "/usr/bin/python3.11")).is_none());
        assert!(c.record(&ev(Kind::Open, 6, "/etc/passwd")).is_some());
        let py = c.file(Path::new("/usr/bin/python3.11")).unwrap();
        assert!(py.opened && py.executed && py.events == 2);
        assert_eq!(c.file(Path::new("/usr/lib/python3.11/json/__init__.py")).unwrap().exe, "/usr/bin/python3.11");
        assert_eq!(c.file(Path::new("/etc/passwd")).unwrap().exe, "sh");
        let s = c.summary();
        assert_eq!((s.files, s.events, s.complete), (4, 5, true));
        c.lost = 1;
        assert!(!c.summary().complete);
    }
}
