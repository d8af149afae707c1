//! Which package owns which file, by canonical path inside the root, and the SBOM' filter.
//!
//! Both sides are canonicalised: package databases list paths as packaged (`/bin/ls`,
//! `/lib/x86_64-linux-gnu/libc.so.6`), while on a merged-/usr system `/bin` and `/lib` are
//! links into `/usr`, and the kernel reports the file really opened (`/usr/bin/ls`). So every
//! listed path is resolved inside the image's root, symlinks followed there.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Ecosystem, Package, Sbom};
use crate::rootfs::Root;

/// Canonical path -> index of the owning package in [`Sbom::packages`].
#[derive(Debug, Default)]
pub struct FileIndex {
    files: HashMap<PathBuf, Vec<usize>>,
    /// Packages that own a whole directory (npm): canonical dir -> package.
    dirs: HashMap<PathBuf, usize>,
    /// Why ownership is approximate, when the index was built without the root.
    approximate: Option<String>,
}

/// What an SBOM' built from [`FileIndex::from_listing`] says about itself.
pub const WITHOUT_ROOT: &str = "file ownership from the SBOM's file lists alone (the container's root was gone): \
symlinks inside the image were not resolved, so a used package may be missing";

/// The top-level directories that merged-/usr turns into links to `/usr/<dir>`.
const MERGED_USR: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Components all the resolutions of one index may look at: a real image's files take a
/// few million; an image whose file lists are long chains of long links stops here.
pub const MAX_INDEX_STEPS: usize = 8_000_000;

/// Resolves paths inside a root, remembering resolved directories (most files share them).
struct Canonicalizer<'a> {
    root: &'a Root,
    dirs: HashMap<PathBuf, PathBuf>,
    /// Components still to spend, all paths together.
    steps: usize,
}

impl Canonicalizer<'_> {
    fn resolve(&mut self, path: &Path) -> Option<PathBuf> {
        let mut steps = self.steps.min(crate::rootfs::MAX_STEPS);
        let before = steps;
        let resolved = self.root.canonicalize_within(path, &mut steps).ok();
        self.steps -= before - steps;
        resolved
    }

    fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Some(path.to_path_buf());
        };
        let dir = match self.dirs.get(parent) {
            Some(d) => d.clone(),
            None => {
                let d = self.resolve(parent)?;
                self.dirs.insert(parent.to_path_buf(), d.clone());
                d
            }
        };
        // The leaf may be a symlink itself (libfoo.so.1 -> libfoo.so.1.2.3).
        self.resolve(&dir.join(name))
    }

    fn is_dir(&self, canonical: &Path) -> bool {
        // `canonical` has no symlinks left; looked at through the root's gate all the same.
        self.root.kind(canonical) == Some(crate::rootfs::EntryKind::Dir)
    }
}

impl FileIndex {
    /// Builds the index for an SBOM of `root`. Directories listed by packages (dpkg lists
    /// every parent) are left out: an opened directory says nothing about code used.
    pub fn build(root: &Root, sbom: &Sbom) -> FileIndex {
        let mut canon = Canonicalizer { root, dirs: HashMap::new(), steps: MAX_INDEX_STEPS };
        let mut index = FileIndex::default();
        for (i, package) in sbom.packages.iter().enumerate() {
            for file in &package.files {
                // Past the budget, paths are taken as listed, and SBOM' says so.
                if canon.steps == 0 {
                    index.approximate.get_or_insert_with(|| {
                        format!("resolving the image's file lists took more than {MAX_INDEX_STEPS} steps: ownership of the rest is taken as listed")
                    });
                    index.own(crate::rootfs::normalize(file), i);
                    continue;
                }
                let Some(path) = canon.canonical(file) else {
                    continue;
                };
                if package.kind == Ecosystem::Npm {
                    index.dirs.insert(path, i);
                } else if !canon.is_dir(&path) {
                    index.own(path, i);
                } else if matches!(package.kind, Ecosystem::Python | Ecosystem::Runtime) {
                    // An unzipped egg, a vendored module, a JDK's home: these list no
                    // directories otherwise (dpkg lists every parent, which says nothing).
                    index.dirs.insert(path, i);
                }
            }
        }
        index
    }

    /// An index from the SBOM's file lists alone, for when the root is gone (a container
    /// that exited while the daemon was down). Without the root nothing can be resolved, so
    /// each listed path is taken as written and, under `/bin`, `/sbin` and `/lib*`, also
    /// at its merged-/usr place; a listed path that is the parent of another listed path is
    /// a directory and left out. SBOM' made with it is marked incomplete ([`WITHOUT_ROOT`]).
    pub fn from_listing(sbom: &Sbom) -> FileIndex {
        let parents: std::collections::HashSet<&Path> =
            sbom.packages.iter().flat_map(|p| p.files.iter()).filter_map(|f| f.parent()).collect();
        let mut index = FileIndex { approximate: Some(WITHOUT_ROOT.to_string()), ..FileIndex::default() };
        for (i, package) in sbom.packages.iter().enumerate() {
            for file in &package.files {
                let file = crate::rootfs::normalize(file);
                if package.kind == Ecosystem::Npm
                    || package.kind == Ecosystem::Runtime
                    || package.kind == Ecosystem::Python && is_python_dir(&file)
                {
                    index.dirs.insert(file, i);
                    continue;
                }
                if parents.contains(file.as_path()) {
                    continue;
                }
                let merged = merged_usr(&file);
                index.own(file, i);
                if let Some(merged) = merged {
                    index.own(merged, i);
                }
            }
        }
        index
    }

    /// Records package `i` as an owner of the file `path`.
    fn own(&mut self, path: PathBuf, i: usize) {
        let owners = self.files.entry(path).or_default();
        if !owners.contains(&i) {
            owners.push(i);
        }
    }

    /// The packages owning a canonical path: those listing it (a file listed by several
    /// packages has several), and the package of the deepest directory above it (nested
    /// node_modules win; pip's vendored urllib3 owns files pip's RECORD lists too).
    pub fn owners(&self, path: &Path) -> Vec<usize> {
        let mut owners = self.files.get(path).cloned().unwrap_or_default();
        if let Some(&i) = path.ancestors().find_map(|dir| self.dirs.get(dir))
            && !owners.contains(&i)
        {
            owners.push(i);
        }
        owners
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

/// Without the root: whether a path a Python package lists is a directory it owns whole
/// (an unzipped egg, a vendored module), which RECORD files never are.
fn is_python_dir(path: &Path) -> bool {
    // A listed file without an extension (`bin/pip`) lands here too: owning it as a
    // directory still owns it, since a path's own entry is looked up first.
    path.extension().is_none_or(|e| e == "egg")
}

/// `/lib/x` -> `/usr/lib/x`, for the directories merged-/usr links.
fn merged_usr(path: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix("/").ok()?;
    let top = rest.components().next()?.as_os_str().to_str()?;
    MERGED_USR.contains(&top).then(|| Path::new("/usr").join(rest))
}

/// A package of SBOM' and why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelevantPackage {
    /// The package.
    pub package: Package,
    /// The opened or executed paths it owns.
    #[serde(with = "crate::path_text::many")]
    pub evidence: Vec<PathBuf>,
}

/// SBOM': the packages owning at least one file the workload used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeSbom {
    /// Packages, in the SBOM's order.
    pub packages: Vec<RelevantPackage>,
    /// Opened paths that no package owns (the workload's own files, data, /proc, …).
    pub unmatched: usize,
    /// False when the sniffer lost events or cut paths, or ownership was approximate:
    /// packages may be missing.
    pub complete: bool,
    /// Why it is incomplete, beyond lost events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Below the file: the vulnerable functions probed and the calls seen, when probes ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<crate::calls::Calls>,
}

/// Keeps the packages that own at least one of `opened` (canonical paths, as the kernel
/// reports them).
pub fn filter<'a>(
    sbom: &Sbom,
    index: &FileIndex,
    opened: impl IntoIterator<Item = &'a Path>,
    complete: bool,
) -> RuntimeSbom {
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
    RuntimeSbom {
        packages: evidence
            .into_iter()
            .map(|(i, evidence)| RelevantPackage { package: sbom.packages[i].clone(), evidence })
            .collect(),
        unmatched,
        complete: complete && index.approximate.is_none(),
        warnings: index.approximate.iter().cloned().collect(),
        calls: None,
    }
}
