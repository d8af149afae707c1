//! What a container's processes already hold when watching starts. Discovery learns of a
//! container from the runtime, a few milliseconds to a few hundred after it started; an
//! exec or open in between is never traced. The executable and the shared libraries a
//! process mapped are still in `/proc/PID/exe` and `/proc/PID/maps`, so they are taken
//! from there once, at watch time. Files opened and closed before that stay unseen.
//!
//! Paths in those files are printed from the reader's root; for a process in another mount
//! namespace (a container) whose files the host cannot reach, the kernel prints them from
//! that namespace's root, which is what we want. A process chrooted in the host's namespace
//! shows host paths, so its root (`/proc/PID/root`) is taken off the front.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::event::{Access, FileEvent};

/// runc's own process, before it execs the workload: its files are the runtime's.
const RUNTIME_COMMS: &[&str] = &["runc:[2:INIT]", "runc:[1:CHILD]", "runc:[0:PARENT]", "runc"];

/// Executables and mapped files of every process in the cgroup directory `dir`, as events
/// of the cgroup `cgroup_id`.
pub fn present(dir: &Path, cgroup_id: u64) -> Vec<FileEvent> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    procs.lines().filter_map(|l| l.trim().parse().ok()).flat_map(|pid| of_process(pid, cgroup_id)).collect()
}

fn of_process(pid: u32, cgroup_id: u64) -> Vec<FileEvent> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let comm = std::fs::read_to_string(proc.join("comm")).unwrap_or_default().trim_end().to_string();
    if comm.is_empty() || RUNTIME_COMMS.contains(&comm.as_str()) {
        return Vec::new();
    }
    let root = std::fs::read_link(proc.join("root")).unwrap_or_else(|_| PathBuf::from("/"));
    let inside = |shown: &Path| -> Option<PathBuf> {
        let text = shown.to_str()?;
        // A file replaced or removed since it was mapped names nothing that is there now.
        if text.ends_with(" (deleted)") || !text.starts_with('/') {
            return None;
        }
        if root == Path::new("/") {
            return Some(shown.to_path_buf());
        }
        // Outside its root (mapped before a chroot): not a file of the container.
        shown.strip_prefix(&root).ok().map(|rest| Path::new("/").join(rest))
    };
    let event = |kind, path| FileEvent {
        cgroup_id,
        mnt_ns: 0,
        pid,
        tgid: pid,
        comm: comm.clone(),
        kind,
        path,
        truncated: false,
        loader_of: None,
    };
    let mut out = Vec::new();
    let exe = std::fs::read_link(proc.join("exe")).ok().and_then(|e| inside(&e));
    if let Some(exe) = &exe {
        out.push(event(Access::Exec, exe.clone()));
    }
    let maps = std::fs::read_to_string(proc.join("maps")).unwrap_or_default();
    let mapped: BTreeSet<PathBuf> = maps
        .lines()
        // address perms offset dev inode path: the path is the sixth field, may hold spaces.
        .filter_map(|l| l.splitn(6, ' ').nth(5).map(str::trim_start))
        .filter_map(|p| inside(Path::new(p)))
        .filter(|p| Some(p) != exe.as_ref())
        .collect();
    out.extend(mapped.into_iter().map(|p| event(Access::Open, p)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_shows_its_executable_and_libraries() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let exe = std::fs::canonicalize("/bin/sleep").unwrap();
        // Until the child has exec'd sleep (before, it is a copy of this process) and the
        // loader has mapped libc.
        let mut events = Vec::new();
        for _ in 0..200 {
            events = of_process(child.id(), 7);
            if events.iter().any(|e| e.kind == Access::Exec && e.path == exe && e.comm == "sleep")
                && events.iter().any(|e| e.path.to_string_lossy().contains("libc.so"))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(events.iter().any(|e| e.kind == Access::Exec && e.path == exe), "{events:?}");
        assert!(
            events.iter().any(|e| e.kind == Access::Open && e.path.to_string_lossy().contains("libc.so")),
            "{events:?}"
        );
        assert!(events.iter().all(|e| e.cgroup_id == 7 && e.comm == "sleep"));
    }
}
