//! The SBOM of a root: every cataloger over one walk of the tree.

use std::path::{Path, PathBuf};

use crate::catalog::{self, Budgets, Catalog};
use crate::distro;
use crate::model::Sbom;
use crate::rootfs::{EntryKind, Root, WalkEntry};

/// Errors that stop a scan (a problem inside the root only makes a warning).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The scan took longer than it was given.
    #[error("the scan of {path} took longer than its {limit:?}: abandoned")]
    TimedOut {
        /// The root.
        path: PathBuf,
        /// The time it was given.
        limit: std::time::Duration,
    },
    /// The root could not be opened.
    #[error("cannot open root {path}")]
    Root {
        /// The root.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// How far a scan has got, for progress on a terminal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Entries of the tree walked so far.
    pub entries: u64,
    /// Packages found so far.
    pub packages: usize,
}

/// How many entries the walk goes between two progress reports.
const PROGRESS_EVERY: u64 = 1024;

/// Computes the SBOM of the root filesystem at `root_path`.
pub fn scan(root_path: &Path) -> Result<Sbom, ScanError> {
    scan_with_progress(root_path, Budgets::default(), &mut |_| {})
}

/// [`scan`] within `budgets`, and given at most `limit` when there is one: past it, the
/// walk stops and the scan is an error (the daemon abandons it and tries again with a
/// later container).
pub fn scan_within(root_path: &Path, budgets: Budgets, limit: Option<std::time::Duration>) -> Result<Sbom, ScanError> {
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    let sbom = scan_until(root_path, budgets, deadline, &mut |_| {})?;
    if let (Some(deadline), Some(limit)) = (deadline, limit)
        && std::time::Instant::now() > deadline
    {
        return Err(ScanError::TimedOut { path: root_path.to_path_buf(), limit });
    }
    Ok(sbom)
}

/// [`scan`] within `budgets`, calling `progress` every thousand or so entries of the walk.
pub fn scan_with_progress(
    root_path: &Path,
    budgets: Budgets,
    progress: &mut dyn FnMut(Progress),
) -> Result<Sbom, ScanError> {
    scan_until(root_path, budgets, None, progress)
}

fn scan_until(
    root_path: &Path,
    budgets: Budgets,
    deadline: Option<std::time::Instant>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Sbom, ScanError> {
    let root = Root::open(root_path).map_err(|source| ScanError::Root { path: root_path.to_path_buf(), source })?;
    let distro = distro::detect(&root);
    let mut catalog = Catalog::with_budgets(budgets);
    catalog::dpkg::catalog(&root, distro.as_ref(), &mut catalog);
    catalog::rpm::catalog(&root, distro.as_ref(), &mut catalog);
    catalog::apk::catalog(&root, distro.as_ref(), &mut catalog);
    walk(&root, &mut catalog, deadline, progress);
    catalog::java::apply_repo_links(&mut catalog);
    let Catalog { mut packages, mut warnings, warnings_dropped, incomplete, .. } = catalog;
    if warnings_dropped > 0 {
        warnings.push(crate::model::Warning {
            cataloger: "scan".into(),
            path: PathBuf::from("/"),
            message: format!("{warnings_dropped} more warnings not kept"),
        });
    }
    packages
        .sort_by(|a, b| (a.kind, &a.name, &a.version, &a.found_at).cmp(&(b.kind, &b.name, &b.version, &b.found_at)));
    Ok(Sbom { root: root_path.to_path_buf(), distro, packages, warnings, incomplete })
}

/// Deepest directory the walk enters (real trees stay far above it: a deeply nested
/// `node_modules` is a few dozen levels).
const MAX_DEPTH: usize = 256;

/// One walk for the catalogers that look everywhere, through [`Root::walk`]: symlinks are
/// never followed, directories are opened from their parent's descriptor (a hostile image
/// cannot steer the walk out of the root, even by renaming while it runs), and every read
/// goes through [`Root`].
fn walk(root: &Root, catalog: &mut Catalog, deadline: Option<std::time::Instant>, progress: &mut dyn FnMut(Progress)) {
    let mut entries = 0u64;
    let mut errors: Vec<(PathBuf, std::io::Error)> = Vec::new();
    root.walk(
        MAX_DEPTH,
        &mut |entry| {
            entries += 1;
            if entries.is_multiple_of(PROGRESS_EVERY) {
                progress(Progress { entries, packages: catalog.packages.len() });
                if deadline.is_some_and(|d| std::time::Instant::now() > d) {
                    return false;
                }
            }
            let name = entry.name.to_string_lossy();
            match entry.kind {
                EntryKind::Dir if name.ends_with(".dist-info") || name.ends_with(".egg-info") => {
                    catalog::python::catalog_dir(root, entry.path, catalog);
                }
                EntryKind::Dir if name == "EGG-INFO" && parent_is(entry.path, |p| p.ends_with(".egg")) => {
                    catalog::python::catalog_egg_dir(root, entry.path, catalog);
                }
                EntryKind::File if name.ends_with(".egg-info") => {
                    catalog::python::catalog_egg_info_file(root, entry.path, catalog);
                }
                EntryKind::File if name.ends_with(".egg") => {
                    catalog::python::catalog_zipped_egg(root, entry.path, catalog)
                }
                EntryKind::File
                    if name == "vendor.txt" && parent_is(entry.path, |p| p == "_vendor" || p == "vendored") =>
                {
                    catalog::python::catalog_vendor_txt(root, entry.path, catalog);
                }
                EntryKind::File if name == "package.json" => {
                    if catalog::npm::is_package_manifest(entry.path) {
                        catalog::npm::catalog_manifest(root, entry.path, catalog);
                    } else if catalog::npm::is_project_manifest(entry.path, |sibling| entry.sibling(sibling)) {
                        catalog::npm::catalog_project(root, entry.path, catalog);
                    }
                }
                EntryKind::Symlink
                    if name.ends_with(".jar") && entry.path.starts_with(catalog::java::DEBIAN_MAVEN_REPO) =>
                {
                    catalog::java::note_repo_link(root, entry.path, catalog);
                }
                EntryKind::File
                    if name == "release"
                        && entry.sibling("bin") == Some(EntryKind::Dir)
                        && entry.sibling("lib") == Some(EntryKind::Dir) =>
                {
                    catalog::runtime::catalog_java_release(root, entry.path, catalog);
                }
                EntryKind::File if catalog::runtime::python_in_name(&name).is_some() => {
                    catalog::runtime::catalog_python(root, entry.path, catalog);
                }
                EntryKind::File if catalog::java::is_archive(&name) => {
                    catalog::java::catalog_archive(root, entry.path, catalog)
                }
                EntryKind::File if is_executable(entry) => catalog::binary::catalog_file(root, entry.path, catalog),
                _ => {}
            }
            true
        },
        &mut |path, e| errors.push((path.to_path_buf(), e)),
    );
    for (path, e) in errors {
        catalog.warn("walk", &path, e);
    }
}

/// Whether the name of the directory holding `path` passes `test`.
fn parent_is(path: &Path, test: impl Fn(&str) -> bool) -> bool {
    path.parent().and_then(Path::file_name).is_some_and(|n| test(&n.to_string_lossy()))
}

/// Extensions of files that are data or source, never a compiled executable. Their mode is
/// not even looked at: a stat per file is most of a scan's cost, and these are most files.
const NOT_BINARY: &[&str] = &[
    "gz",
    "xz",
    "bz2",
    "zst",
    "js",
    "mjs",
    "cjs",
    "ts",
    "json",
    "py",
    "pyc",
    "pyi",
    "pl",
    "pm",
    "rb",
    "sh",
    "mo",
    "po",
    "h",
    "hpp",
    "c",
    "txt",
    "md",
    "rst",
    "html",
    "htm",
    "css",
    "xml",
    "yaml",
    "yml",
    "toml",
    "conf",
    "cfg",
    "ini",
    "list",
    "md5sums",
    "symbols",
    "shlibs",
    "triggers",
    "conffiles",
    "postinst",
    "postrm",
    "preinst",
    "prerm",
    "png",
    "jpg",
    "svg",
    "gif",
    "ico",
    "pem",
    "crt",
    "map",
    "csv",
    "jar",
    "whl",
    "deb",
];

/// A regular file with an execute bit, not named like data: where Go and Rust binaries are.
fn is_executable(entry: &WalkEntry<'_>) -> bool {
    let name = entry.name.as_encoded_bytes();
    if let Some(dot) = name.iter().rposition(|&b| b == b'.')
        && let Ok(ext) = std::str::from_utf8(&name[dot + 1..])
        && NOT_BINARY.contains(&ext)
    {
        return false;
    }
    entry.mode().is_ok_and(|m| m & 0o111 != 0)
}
