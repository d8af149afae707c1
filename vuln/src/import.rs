//! Importing OSV records: a directory of JSON files (searched recursively), one JSON file,
//! or a zip as osv.dev publishes per ecosystem (`<Ecosystem>/all.zip`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::store::{DbError, ImportReport, Skipped, Writer};

/// Largest record accepted: anything bigger is skipped as hostile or broken.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// Why an import stopped (a bad record never stops it; it is skipped and reported).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read at all.
    #[error("reading {path}")]
    Io {
        /// The input.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The zip's central directory is unreadable.
    #[error("{path} is not a readable zip")]
    Zip {
        /// The input.
        path: PathBuf,
        /// Why.
        source: zip::result::ZipError,
    },
    /// Entries of the zip share or overlap their compressed data: thousands of names would
    /// inflate the same bytes (a bomb from a broken or compromised mirror).
    #[error("{path}: entries share or overlap their data (a zip bomb): not imported")]
    SharedEntries {
        /// The input.
        path: PathBuf,
    },
    /// The database refused the change.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |e| ImportError::Io { path: path.to_path_buf(), source: e }
}

/// Imports everything at `path` into `writer` (not yet committed).
pub fn import_path(writer: &mut Writer, path: &Path, report: &mut ImportReport) -> Result<(), ImportError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_dir() {
        let mut files = Vec::new();
        collect_json(path, &mut files)?;
        files.sort();
        writer.progress().records(&path.display().to_string(), Some(files.len() as u64));
        for f in files {
            import_file(writer, &f, report)?;
        }
        Ok(())
    } else if path.extension().is_some_and(|e| e == "zip") {
        import_zip(writer, path, report)
    } else {
        import_file(writer, path, report)
    }
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let ty = entry.file_type().map_err(io(dir))?;
        let p = entry.path();
        if ty.is_dir() {
            collect_json(&p, out)?;
        } else if ty.is_file() && p.extension().is_some_and(|e| e == "json" || e == "zip") {
            out.push(p);
        }
    }
    Ok(())
}

fn import_file(writer: &mut Writer, path: &Path, report: &mut ImportReport) -> Result<(), ImportError> {
    if path.extension().is_some_and(|e| e == "zip") {
        return import_zip(writer, path, report);
    }
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    match File::open(path).and_then(|f| f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes)) {
        Ok(n) if n as u64 > MAX_RECORD_BYTES => {
            report.skipped.push(Skipped { source: name, reason: format!("larger than {MAX_RECORD_BYTES} bytes") })
        }
        Ok(_) => writer.put(&bytes, report, &name)?,
        Err(e) => report.skipped.push(Skipped { source: name, reason: e.to_string() }),
    }
    Ok(())
}

/// Imports every `*.json` entry of a zip; a damaged entry is skipped and named.
pub fn import_zip(writer: &mut Writer, path: &Path, report: &mut ImportReport) -> Result<(), ImportError> {
    let file = File::open(path).map_err(io(path))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ImportError::Zip { path: path.to_path_buf(), source: e })?;
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| ImportError::Zip { path: path.to_path_buf(), source: e })?;
        let start = entry.header_start();
        let end = entry.data_start().unwrap_or(start).saturating_add(entry.compressed_size());
        spans.push((start, end.max(start + 1)));
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(ImportError::SharedEntries { path: path.to_path_buf() });
    }
    writer.progress().records(&path.display().to_string(), Some(zip.len() as u64));
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                report.skipped.push(Skipped { source: format!("{}!#{i}", path.display()), reason: e.to_string() });
                continue;
            }
        };
        let entry_name = match entry.name() {
            Ok(n) => n.to_string(),
            Err(e) => {
                report.skipped.push(Skipped { source: format!("{}!#{i}", path.display()), reason: e.to_string() });
                continue;
            }
        };
        let name = format!("{}!{entry_name}", path.display());
        if !entry.is_file() || !entry_name.ends_with(".json") {
            continue;
        }
        if entry.size() > MAX_RECORD_BYTES {
            report.skipped.push(Skipped { source: name, reason: format!("larger than {MAX_RECORD_BYTES} bytes") });
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        // The declared size can lie: read at most the limit.
        match (&mut entry).take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes) {
            Ok(n) if n as u64 > MAX_RECORD_BYTES => {
                report.skipped.push(Skipped { source: name, reason: format!("larger than {MAX_RECORD_BYTES} bytes") })
            }
            Ok(_) => writer.put(&bytes, report, &name)?,
            Err(e) => report.skipped.push(Skipped { source: name, reason: e.to_string() }),
        }
    }
    Ok(())
}
