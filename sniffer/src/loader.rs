//! The dynamic loader of each executed binary.
//!
//! The kernel opens an executable's ELF interpreter (`ld-linux-x86-64.so.2`) itself, inside
//! `load_elf_binary`, not through a syscall, and without kprobes or fentry (refused on the
//! kernels this runs on) no tracepoint sees that open. The interpreter is fixed by the
//! binary's `PT_INTERP`, and an exec that succeeded has loaded it, so on each exec event we
//! read `PT_INTERP` from the executed file inside the task's own root and report the loader
//! as executed too, marked with the binary it was derived from.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sbom::rootfs::Root;

use crate::event::{Access, FileEvent};

/// Most (mount namespace, executable) pairs remembered.
const MAX_CACHED: usize = 4096;

/// Finds and caches loaders per (mount namespace, executable).
#[derive(Debug, Default)]
pub struct LoaderResolver {
    own_mnt_ns: u64,
    cache: HashMap<(u64, PathBuf), Option<PathBuf>>,
}

impl LoaderResolver {
    /// A resolver for this process.
    pub fn new() -> Self {
        let own_mnt_ns = std::fs::metadata("/proc/self/ns/mnt").map(|m| m.ino()).unwrap_or(0);
        LoaderResolver { own_mnt_ns, cache: HashMap::new() }
    }

    /// After each exec event in `events`, inserts one for its loader (if it has one).
    pub fn add_loaders(&mut self, events: &mut Vec<FileEvent>) {
        if !events.iter().any(|e| e.kind == Access::Exec && e.loader_of.is_none()) {
            return;
        }
        let mut out = Vec::with_capacity(events.len() + 4);
        for event in events.drain(..) {
            let loader = (event.kind == Access::Exec && event.loader_of.is_none() && !event.truncated)
                .then(|| self.loader(&event))
                .flatten();
            // Copies only for the rare exec that has a loader.
            let loader_event = loader.map(|path| FileEvent {
                path,
                loader_of: Some(event.path.clone()),
                truncated: false,
                ..event.clone()
            });
            out.push(event);
            out.extend(loader_event);
        }
        *events = out;
    }

    fn loader(&mut self, event: &FileEvent) -> Option<PathBuf> {
        let key = (event.mnt_ns, event.path.clone());
        if let Some(known) = self.cache.get(&key) {
            return known.clone();
        }
        let root = self.root_of(event)?;
        let found = match sbom::elf::interpreter(&root, &event.path) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(exe = %event.path.display(), error = %coordinator::chain(&e), "cannot read the executable's loader");
                return None;
            }
        };
        // Executables per mount namespace come and go with containers: bound the cache
        // rather than let it grow for the daemon's life.
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(key, found.clone());
        found
    }

    /// The task's root: `/proc/PID/root` while it lives; ours when it shares our mount
    /// namespace (a short-lived process already gone).
    fn root_of(&self, event: &FileEvent) -> Option<Root> {
        let proc_root = PathBuf::from(format!("/proc/{}/root", event.tgid));
        match Root::open(&proc_root) {
            Ok(root) => Some(root),
            Err(_) if event.mnt_ns == self.own_mnt_ns => Root::open(Path::new("/")).ok(),
            Err(e) => {
                tracing::debug!(pid = event.tgid, error = %coordinator::chain(&e), "process gone; its loader is unknown");
                None
            }
        }
    }
}
