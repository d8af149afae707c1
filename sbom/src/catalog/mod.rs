//! Catalogers: each finds one kind of package in a root and never stops the others.

pub mod apk;
pub mod binary;
pub mod dpkg;
pub mod go_stamp;
pub mod java;
mod java_nested;
pub mod npm;
pub mod python;
pub mod rpm;
pub mod runtime;

use std::io::Read;
use std::path::Path;

use crate::model::{Package, Warning};
use crate::rootfs::Root;

/// Why a package database, manifest or binary's metadata could not be read: the message
/// says what in it is wrong (it becomes the cataloger's warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(String);

impl Malformed {
    /// Whether reading stopped at a budget (its message starts `budget:`), not at bad data.
    pub fn is_over_budget(&self) -> bool {
        self.0.starts_with("budget")
    }
}

impl From<String> for Malformed {
    fn from(reason: String) -> Self {
        Malformed(reason)
    }
}

impl From<&str> for Malformed {
    fn from(reason: &str) -> Self {
        Malformed(reason.to_string())
    }
}

/// Longest warning message kept, in characters.
pub const MAX_WARNING: usize = 400;
/// Most warnings kept per scan; past it they are counted.
pub const MAX_WARNINGS: usize = 1000;

/// Most packages one image may list: real ones hold a few thousand.
pub const MAX_PACKAGES: usize = 100_000;
/// Most files all of an image's packages may own together (a large desktop's dpkg owns
/// about 300,000).
pub const MAX_FILES: usize = 2_000_000;
/// Most modules or crates one binary may list (real ones: a few hundred).
pub const MAX_MODULES: usize = 10_000;

/// What one image may cost to catalog. The defaults are sized from real images (a large
/// desktop's dpkg lists a few thousand packages owning about 300,000 files; Spring Boot
/// jars nest a few hundred archives of a few MiB); `sniffer sbom --dir` and `sniffer run`
/// take each as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Packages listed.
    pub packages: usize,
    /// Files owned, all packages together.
    pub files: usize,
    /// Bytes one Java archive, with everything inside it, may have read and inflated.
    pub archive_work: u64,
    /// Archives read inside one Java archive, at any depth.
    pub nested_archives: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            packages: MAX_PACKAGES,
            files: MAX_FILES,
            archive_work: java::MAX_WORK,
            nested_archives: java::MAX_NESTED_ARCHIVES,
        }
    }
}

/// What the catalogers found so far.
#[derive(Debug, Default)]
pub struct Catalog {
    /// What cataloguing may cost.
    pub budgets: Budgets,
    /// Packages found.
    pub packages: Vec<Package>,
    /// Problems met.
    pub warnings: Vec<Warning>,
    /// Warnings past [`MAX_WARNINGS`], not kept.
    pub warnings_dropped: usize,
    /// A budget was spent: packages or files may be missing.
    pub incomplete: bool,
    /// Files owned so far, all packages together.
    files: usize,
    /// The per-image limits already said to be spent (each is said once).
    spent: Vec<Limit>,
    /// Binaries read, by (device, inode): a hard link is not read again; its packages
    /// own it too.
    pub(crate) binaries: std::collections::HashMap<(u64, u64), std::ops::Range<usize>>,
    /// Jars Debian's Maven repository links to, by canonical path: (group, artifact,
    /// version) (see [`java::note_repo_link`]).
    pub(crate) repo_links: std::collections::HashMap<std::path::PathBuf, (String, String, String)>,
    /// Path components looked at resolving those links.
    pub(crate) repo_steps: usize,
    /// `.rodata` sections of files named like interpreters read so far (see
    /// [`runtime::catalog_python`]).
    pub(crate) interpreters: usize,
}

/// A per-image limit whose spending is said once, naming the file it was met at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Packages listed.
    Packages,
    /// Files owned, all packages together.
    Files,
    /// Links of Debian's Maven repository resolved: past it jars only lack a group, so the
    /// SBOM is not incomplete.
    RepoLinks,
    /// `.rodata` sections of files named like interpreters read.
    Interpreters,
}

impl Catalog {
    /// An empty catalog within `budgets`.
    pub fn with_budgets(budgets: Budgets) -> Catalog {
        Catalog { budgets, ..Catalog::default() }
    }

    /// Adds a package within the package and file budgets; past either, warns once (naming
    /// `path` and the budget), marks the catalog incomplete and returns false.
    pub fn add(&mut self, cataloger: &str, path: &Path, mut package: Package) -> bool {
        let Budgets { packages, files, .. } = self.budgets;
        if self.packages.len() >= packages {
            self.spent_once(Limit::Packages, cataloger, path, || {
                format!("budget: more than {packages} packages in the image: the rest are not listed")
            });
            return false;
        }
        if self.files + package.files.len() > files {
            package.files.truncate(files.saturating_sub(self.files));
            self.files_spent(cataloger, path);
        }
        self.files += package.files.len();
        self.packages.push(package);
        true
    }

    /// The packages at `range` own `path` as well (a hard link of a file they own),
    /// within [`MAX_FILES`].
    pub(crate) fn own_too(&mut self, range: std::ops::Range<usize>, path: &Path) {
        if self.files + range.len() > self.budgets.files {
            return self.files_spent("binary", path);
        }
        self.files += range.len();
        for i in range {
            if let Some(p) = self.packages.get_mut(i) {
                p.files.push(path.to_path_buf());
            }
        }
    }

    /// The file budget is spent: said once, naming `path`.
    fn files_spent(&mut self, cataloger: &str, path: &Path) {
        let files = self.budgets.files;
        self.spent_once(Limit::Files, cataloger, path, || {
            format!("budget: packages own more than {files} files in all: the rest are not listed")
        });
    }

    /// `limit` was spent at `path`: the first time, a warning with `message` (which starts
    /// `budget:`), and, for a limit on what is listed, the SBOM says it is incomplete.
    pub(crate) fn spent_once(&mut self, limit: Limit, cataloger: &str, path: &Path, message: impl FnOnce() -> String) {
        if self.spent.contains(&limit) {
            return;
        }
        self.spent.push(limit);
        if limit == Limit::RepoLinks {
            self.warn(cataloger, path, message());
        } else {
            self.over_budget(cataloger, path, message());
        }
    }

    /// A budget was spent reading `path` (`message` starts with `budget:`): a warning, and
    /// the SBOM says it is incomplete.
    pub fn over_budget(&mut self, cataloger: &str, path: &Path, message: impl ToString) {
        self.incomplete = true;
        self.warn(cataloger, path, message);
    }

    /// Records a problem with a file; the cataloger skips it and carries on.
    /// The message is cut to [`MAX_WARNING`] characters and cleaned of control characters:
    /// parsers' errors may quote the image's bytes.
    pub fn warn(&mut self, cataloger: &str, path: &Path, message: impl ToString) {
        if self.warnings.len() >= MAX_WARNINGS {
            self.warnings_dropped += 1;
            return;
        }
        self.warnings.push(Warning {
            cataloger: cataloger.to_string(),
            path: path.to_path_buf(),
            message: crate::text::bounded(&message.to_string(), MAX_WARNING),
        });
    }
}

/// Reads a text file inside the root. `Ok(None)` when it does not exist; an error when it
/// is larger than `limit` or not UTF-8 (a database that is garbage, not text).
pub(crate) fn read_limited(root: &Root, path: &Path, limit: u64) -> Result<Option<String>, Malformed> {
    let file = match root.open_file(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string().into()),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| Malformed::from(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes; not read").into());
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| format!("not UTF-8 text at byte {}", e.utf8_error().valid_up_to()).into())
}
