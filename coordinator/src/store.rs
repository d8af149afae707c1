//! Durable state in one redb file under the state directory: SBOMs per image digest, SBOM'
//! per instance, reports, learning state, the submission outbox and its dead letters.
//! Every write is one transaction: a crash never leaves half a record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The tables of the state file, one per kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Image digest → `sbom::Sbom`.
    Sbom,
    /// Instance → `sbom::index::RuntimeSbom` (SBOM').
    RuntimeSbom,
    /// Report id → `model::Report`.
    Report,
    /// `image:<digest>` or `instance:<key>` → report id.
    ReportKey,
    /// Instance → `model::Learning`.
    Learning,
    /// Report id → `submit::OutboxEntry`.
    Outbox,
    /// Report id → `submit::OutboxEntry` given up on.
    Dead,
    /// Report id → when the backend accepted it (`sbom::time::Timestamp`).
    Sent,
    /// Cluster mode: object key → what is still to be written to the API server.
    Publish,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name())
    }

    /// Its name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Table::Sbom => "sboms",
            // SBOM' was called "prime" when the file's tables were named.
            Table::RuntimeSbom => "primes",
            Table::Report => "reports",
            Table::ReportKey => "report_keys",
            Table::Learning => "learning",
            Table::Outbox => "outbox",
            Table::Dead => "dead",
            Table::Sent => "sent",
            Table::Publish => "publish",
        }
    }

    const ALL: [Table; 9] = [
        Table::Sbom,
        Table::RuntimeSbom,
        Table::Report,
        Table::ReportKey,
        Table::Learning,
        Table::Outbox,
        Table::Dead,
        Table::Sent,
        Table::Publish,
    ];
}

/// A storage failure: the message names what failed, `source()` says why.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be made.
    #[error("creating the state directory {}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file could not be opened, read or written.
    #[error("state file {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: redb::Error,
    },
    /// A record could not be encoded, or what was stored could not be decoded.
    #[error("state record {table}/{key}")]
    Record {
        /// Its table.
        table: &'static str,
        /// Its key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The cluster's API server failed or refused (cluster mode).
    #[error("the Kubernetes API: {what}")]
    Cluster {
        /// What was asked.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Store work handed to the blocking pool did not finish.
    #[error("a {what} task on the blocking pool failed")]
    Task {
        /// What it was doing.
        what: &'static str,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl StoreError {
    /// A record of `table` under `key` that could not be encoded or decoded.
    pub fn record(table: Table, key: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
        move |source| StoreError::Record { table: table.name(), key: key.to_string(), source }
    }
}

/// The storage interface the flow uses; [`Store`] is the embedded default.
pub trait Storage: Send + Sync {
    /// Writes several records at once, atomically.
    fn put_many(&self, items: &[(Table, &str, serde_json::Value)]) -> Result<(), StoreError>;
    /// Reads one record.
    fn get_raw(&self, kind: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes one record.
    fn delete(&self, kind: Table, key: &str) -> Result<(), StoreError>;
    /// Every key of a kind.
    fn keys(&self, kind: Table) -> Result<Vec<String>, StoreError>;
    /// Number of records of a kind.
    fn count(&self, kind: Table) -> Result<u64, StoreError>;
    /// Claims the computation of `digest`'s SBOM (image `image`). Blocking: it may wait for
    /// another node's. A store of one node always computes.
    fn claim_image(&self, digest: &crate::ids::Digest, image: &str) -> Result<Claim, StoreError> {
        let _ = (digest, image);
        Ok(Claim::Mine)
    }
    /// Whether SBOM' of `instance` is stored (in a cluster: by any node). Blocking.
    fn has_runtime_sbom(&self, instance: &crate::ids::InstanceId) -> Result<bool, StoreError> {
        Ok(self.get_raw(Table::RuntimeSbom, instance.as_str())?.is_some())
    }
}

/// Who computes an image's SBOM (cluster mode has one SBOM per image cluster-wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This node: it computes the SBOM, stores and scans it, and makes the image report.
    Mine,
    /// Another node has (its SBOM is ready): this node indexes the image for SBOM' only.
    Theirs,
}

/// Typed helpers over any [`Storage`].
pub trait StorageExt: Storage {
    /// Writes one record.
    fn put<T: Serialize>(&self, kind: Table, key: &str, value: &T) -> Result<(), StoreError> {
        let v = serde_json::to_value(value).map_err(StoreError::record(kind, key))?;
        self.put_many(&[(kind, key, v)])
    }
    /// Reads one record.
    fn get<T: DeserializeOwned>(&self, kind: Table, key: &str) -> Result<Option<T>, StoreError> {
        match self.get_raw(kind, key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(StoreError::record(kind, key)),
        }
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}

/// redb's page cache for the state file.
const CACHE_BYTES: usize = 2 << 20;

/// The embedded store: one redb file.
///
/// After an I/O error (a full disk, say) redb refuses every later call until the file is
/// opened again; the store then reopens it at its next use, so the daemon catches up by
/// itself once the disk has room. redb's commits are atomic, so what was stored before the
/// error is still there.
pub struct Store {
    path: PathBuf,
    /// The open database; `None` after an error, until it is reopened. The lock is held
    /// only to clone or swap the handle, never while it is used.
    db: std::sync::RwLock<Option<Arc<redb::Database>>>,
    /// Serialises reopening (redb allows one handle per file and process).
    reopening: std::sync::Mutex<()>,
}

/// How long a reopen waits for the calls still using the old handle.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn open_db(path: &Path) -> Result<redb::Database, redb::Error> {
    // redb caches up to 1 GiB by default, and learning state is rewritten every few
    // seconds: the daemon's RSS would grow with it. Reads here are few and small.
    let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(path)?;
    let txn = db.begin_write()?;
    for k in Table::ALL {
        txn.open_table(k.definition())?;
    }
    txn.commit()?;
    Ok(db)
}

impl Store {
    /// Opens (or creates) `dir/state.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("state.db");
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.to_path_buf(), source })?;
        let db = open_db(&path).map_err(|source| StoreError::File { path: path.clone(), source })?;
        Ok(Store { path, db: std::sync::RwLock::new(Some(Arc::new(db))), reopening: std::sync::Mutex::new(()) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: redb::Error) -> StoreError {
        StoreError::File { path: self.path.clone(), source }
    }

    /// The open database, reopened first if an error closed it.
    fn db(&self) -> Result<Arc<redb::Database>, StoreError> {
        if let Some(db) = self.db.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(db);
        }
        let _one = self.reopening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = self.db.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(db);
        }
        let db = Arc::new(open_db(&self.path).map_err(|e| self.err(e))?);
        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(db.clone());
        tracing::info!(path = %self.path.display(), "state file reopened");
        Ok(db)
    }

    /// A redb call failed: the handle is dropped (once every call still using it is done)
    /// so that the next use reopens the file.
    fn failed(&self, e: redb::Error) -> StoreError {
        let _one = self.reopening.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut old) = old {
            let start = std::time::Instant::now();
            // redb allows one handle per file: wait for the others to let go of it.
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still) if start.elapsed() < REOPEN_WAIT => {
                        old = still;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(still) => {
                        // Still in use: keep it; a later failure tries again.
                        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(still);
                        break;
                    }
                }
            }
        }
        self.err(e)
    }
}

impl Storage for Store {
    fn put_many(&self, items: &[(Table, &str, serde_json::Value)]) -> Result<(), StoreError> {
        let mut encoded = Vec::with_capacity(items.len());
        for (kind, key, value) in items {
            encoded.push((kind, key, serde_json::to_vec(value).map_err(StoreError::record(*kind, key))?));
        }
        let db = self.db()?;
        let write = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            for (kind, key, bytes) in &encoded {
                txn.open_table(kind.definition())?.insert(**key, bytes.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        };
        let result = write();
        drop(db);
        result.map_err(|e| self.failed(e))
    }

    fn get_raw(&self, kind: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        let read = || -> Result<Option<Vec<u8>>, redb::Error> {
            let txn = db.begin_read()?;
            let table = txn.open_table(kind.definition())?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        };
        let result = read();
        drop(db);
        result.map_err(|e| self.failed(e))
    }

    fn delete(&self, kind: Table, key: &str) -> Result<(), StoreError> {
        let db = self.db()?;
        let write = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(kind.definition())?.remove(key)?;
            txn.commit()?;
            Ok(())
        };
        let result = write();
        drop(db);
        result.map_err(|e| self.failed(e))
    }

    fn keys(&self, kind: Table) -> Result<Vec<String>, StoreError> {
        let db = self.db()?;
        let read = || -> Result<Vec<String>, redb::Error> {
            let txn = db.begin_read()?;
            let table = txn.open_table(kind.definition())?;
            let mut out = Vec::new();
            for row in table.iter()? {
                out.push(row?.0.value().to_string());
            }
            Ok(out)
        };
        let result = read();
        drop(db);
        result.map_err(|e| self.failed(e))
    }

    fn count(&self, kind: Table) -> Result<u64, StoreError> {
        let db = self.db()?;
        let read = || -> Result<u64, redb::Error> { Ok(db.begin_read()?.open_table(kind.definition())?.len()?) };
        let result = read();
        drop(db);
        result.map_err(|e| self.failed(e))
    }
}
