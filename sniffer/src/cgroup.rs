//! cgroup v2 directories: where the unified hierarchy is, ids, and scratch cgroups.
//!
//! `bpf_get_current_cgroup_id()` returns the inode number of the task's cgroup v2 directory,
//! so that is the id used everywhere.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on a pure v2 host,
/// `/sys/fs/cgroup/unified` on a hybrid one.
pub fn unified_root() -> io::Result<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .min_by_key(|p| p.as_os_str().len())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no cgroup2 hierarchy is mounted (see /proc/self/mounts)")
        })
}

/// The cgroup id of a cgroup v2 directory.
pub fn id_of(dir: &Path) -> io::Result<u64> {
    Ok(fs::metadata(dir)?.ino())
}

/// The cgroup v2 directory of a process, from `/proc/PID/cgroup` (`0::/path`).
pub fn dir_of_pid(pid: u32) -> io::Result<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("process {pid} has no cgroup v2 entry")))?;
    Ok(unified_root()?.join(rel.trim_start_matches('/')))
}

/// A cgroup made for one purpose and removed when dropped (if empty by then).
#[derive(Debug)]
pub struct ScratchCgroup {
    dir: PathBuf,
    id: u64,
}

impl ScratchCgroup {
    /// Makes `<unified root>/<name>`.
    pub fn create(name: &str) -> io::Result<Self> {
        let dir = unified_root()?.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("creating cgroup {}: {e}", dir.display()))),
        }
        let id = id_of(&dir)?;
        Ok(ScratchCgroup { dir, id })
    }

    /// Its cgroup id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `command` join this cgroup between fork and exec, so it is watched from its
    /// first instruction. Keep the returned file open until the command is spawned.
    /// (For a `tokio::process::Command`, pass `as_std_mut()`.)
    pub fn join_on_spawn(&self, command: &mut std::process::Command) -> io::Result<fs::File> {
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))
            .map_err(|e| io::Error::new(e.kind(), format!("opening {}/cgroup.procs: {e}", self.dir.display())))?;
        let fd = procs.as_raw_fd();
        // SAFETY: the closure only calls write(2), which is async-signal-safe.
        unsafe { command.pre_exec(move || join_in_child(fd)) };
        Ok(procs)
    }

    /// Moves a process in.
    pub fn add_pid(&self, pid: u32) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }
}

/// For `pre_exec`: moves the calling process into the cgroup whose `cgroup.procs` is open
/// as `fd`. Async-signal-safe: one `write`, no allocation.
fn join_in_child(fd: i32) -> io::Result<()> {
    // SAFETY: writing two bytes from a static buffer to an open fd.
    let n = unsafe { libc::write(fd, b"0\n".as_ptr().cast(), 2) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        // Fails while a process is still inside; the directory is then left for the admin.
        if let Err(e) = fs::remove_dir(&self.dir) {
            tracing::debug!(dir = %self.dir.display(), error = %coordinator::chain(&e), "scratch cgroup left in place");
        }
    }
}
