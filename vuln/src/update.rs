//! `db update`: fetch `<mirror>/<Ecosystem>/all.zip` for each ecosystem over HTTP(S),
//! conditionally (ETag, Last-Modified), check the MD5 the server offers (`x-goog-hash`, as
//! osv.dev's bucket sends, or `Content-MD5`), and swap in a new database file only once
//! every download and import succeeded. A failed or interrupted update leaves the old file
//! in use, untouched.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::import::{ImportError, import_zip};
use crate::store::{Db, DbError, ImportReport, SourceInfo, Writer};

/// osv.dev's public export bucket.
pub const DEFAULT_MIRROR: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// What to fetch, and where the database lives.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Base URL; `<base>/<Ecosystem>/all.zip` is fetched.
    pub mirror: String,
    /// Ecosystems, as osv.dev names them (`PyPI`, `npm`, `Debian`, `Alpine`).
    pub ecosystems: Vec<String>,
    /// The database file.
    pub db: PathBuf,
    /// Per-request timeout (connect and whole transfer).
    pub timeout: Duration,
    /// Told of bytes downloaded and records imported.
    pub progress: std::sync::Arc<dyn crate::progress::Progress>,
}

/// What happened to one ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fetch {
    /// The server said 304: the stored data is current.
    Unchanged,
    /// Downloaded and imported.
    Updated {
        /// Bytes downloaded.
        bytes: u64,
    },
}

/// How an update went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UpdateReport {
    /// Per ecosystem.
    pub ecosystems: BTreeMap<String, Fetch>,
    /// The import of what was downloaded.
    pub import: ImportReport,
    /// Whether a new database file was swapped in.
    pub swapped: bool,
}

/// Why an update failed (the old database stays in use).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The request failed or the transfer broke off.
    #[error("fetching {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The download does not match the checksum the server gave.
    #[error("{url}: MD5 mismatch (server {expected}, received {actual}): download corrupt")]
    Checksum {
        /// The URL.
        url: String,
        /// From the server.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// Local files.
    #[error("writing {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The import of a download failed (boxed: it is the largest cause, and every result of
    /// an update would carry its size).
    #[error(transparent)]
    Import(Box<ImportError>),
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<ImportError> for UpdateError {
    fn from(error: ImportError) -> Self {
        UpdateError::Import(Box::new(error))
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> UpdateError + '_ {
    move |e| UpdateError::Io { path: path.to_path_buf(), source: e }
}

/// Removes the temporary files of an update however it ends.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn url_for(mirror: &str, ecosystem: &str) -> String {
    format!("{}/{}/all.zip", mirror.trim_end_matches('/'), ecosystem.replace(' ', "%20"))
}

/// The MD5 a response announces, base64 as both headers carry it.
fn announced_md5(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    for v in resp.headers().get_all("x-goog-hash") {
        for part in v.to_str().unwrap_or_default().split(',') {
            if let Some(m) = part.trim().strip_prefix("md5=") {
                return Some(m.to_string());
            }
        }
    }
    resp.headers().get("content-md5").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Fetches and imports; see the module documentation.
pub fn update(opts: &UpdateOptions) -> Result<UpdateReport, UpdateError> {
    let sources = if opts.db.exists() { Db::open(&opts.db)?.sources()? } else { BTreeMap::new() };
    let dir = opts.db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("sniffer/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent: ureq::Agent = config.into();
    let mut cleanup = Cleanup(Vec::new());
    let mut report = UpdateReport::default();
    let mut downloads = Vec::new();
    for eco in &opts.ecosystems {
        let url = url_for(&opts.mirror, eco);
        let http = |message: String| UpdateError::Http { url: url.clone(), message };
        let mut req = agent.get(&url);
        if let Some(prev) = sources.get(eco) {
            if let Some(etag) = &prev.etag {
                req = req.header("If-None-Match", etag);
            }
            if let Some(lm) = &prev.last_modified {
                req = req.header("If-Modified-Since", lm);
            }
        }
        let mut resp = req.call().map_err(|e| http(e.to_string()))?;
        match resp.status().as_u16() {
            304 => {
                report.ecosystems.insert(eco.clone(), Fetch::Unchanged);
                continue;
            }
            200 => {}
            code => return Err(http(format!("HTTP {code}"))),
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (etag, last_modified) = (header("etag"), header("last-modified"));
        let expected_md5 = announced_md5(&resp);
        let part = dir.join(format!(".{}.{}.zip.part", file_name(&opts.db), eco.replace(['/', ' '], "_")));
        cleanup.0.push(part.clone());
        let mut out = std::fs::File::create(&part).map_err(io(&part))?;
        let mut hasher = Md5::new();
        let length = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        opts.progress.download(eco, length);
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        loop {
            // A connection closed before Content-Length is reached is an error here.
            let n = reader.read(&mut buf).map_err(|e| http(format!("transfer broke off after {bytes} bytes: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(&part))?;
            bytes += n as u64;
            opts.progress.bytes(n as u64);
        }
        out.sync_all().map_err(io(&part))?;
        let actual = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
        if let Some(expected) = expected_md5
            && expected != actual
        {
            return Err(UpdateError::Checksum { url, expected, actual });
        }
        downloads.push((eco.clone(), url, part, etag, last_modified, bytes));
    }
    if downloads.is_empty() {
        return Ok(report);
    }

    // Build the new file beside the old one, then rename over it: readers see the old
    // database or the new one, never a mix.
    let new = dir.join(format!(".{}.new", file_name(&opts.db)));
    cleanup.0.push(new.clone());
    let _ = std::fs::remove_file(&new);
    if opts.db.exists() {
        std::fs::copy(&opts.db, &new).map_err(io(&new))?;
    }
    {
        let mut writer = Writer::open(&new)?;
        writer.set_progress(opts.progress.clone());
        let now = sbom::time::Timestamp::now();
        for (eco, url, part, etag, last_modified, bytes) in &downloads {
            import_zip(&mut writer, part, &mut report.import)?;
            writer.set_source(
                eco,
                SourceInfo {
                    location: url.clone(),
                    etag: etag.clone(),
                    last_modified: last_modified.clone(),
                    imported_at: now,
                },
            )?;
            report.ecosystems.insert(eco.clone(), Fetch::Updated { bytes: *bytes });
        }
        writer.commit()?;
    }
    std::fs::File::open(&new).and_then(|f| f.sync_all()).map_err(io(&new))?;
    std::fs::rename(&new, &opts.db).map_err(io(&opts.db))?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir))?;
    report.swapped = true;
    Ok(report)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "vuln.db".into())
}
