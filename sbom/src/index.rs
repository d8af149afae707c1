//! Which package owns which file, by canonical path inside the root, and the SBOM' filter.
//!
//! Both sides are canonicalised: package databases list paths as packaged (`/bin/ls`,
//! `/lib/x86_64-linux-gnu/libc.so.6`), while on a merged-/usr system `/bin` and `/lib` are
//! links into `/usr`, and the kernel reports the file really opened (`/usr/bin/ls`). So every
//! listed path is resolved inside the image's root, symlinks followed there.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Kind, Package, Sbom};
use crate::rootfs::Root;

/// Canonical path -> index of the owning package in [`Sbom::packages`].
#[derive(Debug, Default)]
pub struct FileIndex {
    files: HashMap<PathBuf, Vec<usize>>,
    /// Packages that own a whole directory (npm): canonical dir -> package.
    dirs: HashMap<PathBuf, usize>,
}

/// Resolves paths inside a root, remembering resolved directories (most files share them).
struct Canonicalizer<'a> {
    root: &'a Root,
    dirs: HashMap<PathBuf, PathBuf>,
}

impl Canonicalizer<'_> {
    fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Some(path.to_path_buf());
        };
        let dir = match self.dirs.get(parent) {
            Some(d) => d.clone(),
            None => {
                let d = self.root.canonicalize(parent).ok()?;
                self.dirs.insert(parent.to_path_buf(), d.clone());
                d
            }
        };
        // The leaf may be a symlink itself (libfoo.so.1 -> libfoo.so.1.2.3).
        self.root.canonicalize(&dir.join(name)).ok()
    }

    fn is_dir(&self, canonical: &Path) -> bool {
        let inside = canonical.strip_prefix("/").unwrap_or(canonical);
        // `canonical` has no symlinks left, so this stays inside the root.
        std::fs::symlink_metadata(self.root.path().join(inside)).is_ok_and(|m| m.is_dir())
    }
}

impl FileIndex {
    /// Builds the index for an SBOM of `root`. Directories listed by packages (dpkg lists
    /// every parent) are left out: an opened directory says nothing about code used.
    pub fn build(root: &Root, sbom: &Sbom) -> FileIndex {
        let mut canon = Canonicalizer { root, dirs: HashMap::new() };
        let mut index = FileIndex::default();
        for (i, package) in sbom.packages.iter().enumerate() {
            for file in &package.files {
                let Some(path) = canon.canonical(file) else {
                    continue;
                };
                if package.kind == Kind::Npm {
                    index.dirs.insert(path, i);
                } else if !canon.is_dir(&path) {
                    let owners = index.files.entry(path).or_default();
                    if !owners.contains(&i) {
                        owners.push(i);
                    }
                }
            }
        }
        index
    }

    /// The packages owning a canonical path (a file listed by several packages has several).
    pub fn owners(&self, path: &Path) -> Vec<usize> {
        if let Some(owners) = self.files.get(path) {
            return owners.clone();
        }
        // The deepest package directory above the path (nested node_modules win).
        path.ancestors().find_map(|dir| self.dirs.get(dir)).map(|&i| vec![i]).unwrap_or_default()
    }

    /// Canonical paths indexed (files, not counting package directories).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Nothing indexed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }
}

/// A package of SBOM' and why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelevantPackage {
    /// The package.
    pub package: Package,
    /// The opened or executed paths it owns.
    pub evidence: Vec<PathBuf>,
}

/// SBOM': the packages owning at least one file the workload used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilteredSbom {
    /// Packages, in the SBOM's order.
    pub packages: Vec<RelevantPackage>,
    /// Opened paths that no package owns (the workload's own files, data, /proc, …).
    pub unmatched: usize,
    /// False when the sniffer lost events or cut paths: packages may be missing.
    pub complete: bool,
}

/// Keeps the packages that own at least one of `opened` (canonical paths, as the kernel
/// reports them).
pub fn filter<'a>(
    sbom: &Sbom,
    index: &FileIndex,
    opened: impl IntoIterator<Item = &'a Path>,
    complete: bool,
) -> FilteredSbom {
    let mut evidence: BTreeMap<usize, Vec<PathBuf>> = BTreeMap::new();
    let mut unmatched = 0;
    for path in opened {
        let owners = index.owners(path);
        if owners.is_empty() {
            unmatched += 1;
        }
        for i in owners {
            evidence.entry(i).or_default().push(path.to_path_buf());
        }
    }
    FilteredSbom {
        packages: evidence
            .into_iter()
            .map(|(i, evidence)| RelevantPackage { package: sbom.packages[i].clone(), evidence })
            .collect(),
        unmatched,
        complete,
    }
}
