//! Durable state in one redb file under the state directory: SBOMs per image digest, SBOM'
//! per instance, reports, learning state, the submission outbox and its dead letters.
//! Every write is one transaction: a crash never leaves half a record.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The kinds of records kept, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Image digest → `sbom::Sbom`.
    Sbom,
    /// Instance → `sbom::index::FilteredSbom`.
    Prime,
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
    /// Report id → RFC 3339 time it was accepted by the backend.
    Sent,
}

impl Kind {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Kind::Sbom => "sboms",
            Kind::Prime => "primes",
            Kind::Report => "reports",
            Kind::ReportKey => "report_keys",
            Kind::Learning => "learning",
            Kind::Outbox => "outbox",
            Kind::Dead => "dead",
            Kind::Sent => "sent",
        })
    }

    const ALL: [Kind; 8] =
        [Kind::Sbom, Kind::Prime, Kind::Report, Kind::ReportKey, Kind::Learning, Kind::Outbox, Kind::Dead, Kind::Sent];
}

/// A storage failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("state {path}: {message}")]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The storage interface the flow uses; [`Store`] is the embedded default.
pub trait Storage: Send + Sync {
    /// Writes several records at once, atomically.
    fn put_many(&self, items: &[(Kind, &str, serde_json::Value)]) -> Result<(), StoreError>;
    /// Reads one record.
    fn get_raw(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes one record.
    fn delete(&self, kind: Kind, key: &str) -> Result<(), StoreError>;
    /// Every key of a kind.
    fn keys(&self, kind: Kind) -> Result<Vec<String>, StoreError>;
    /// Number of records of a kind.
    fn count(&self, kind: Kind) -> Result<u64, StoreError>;
}

/// Typed helpers over any [`Storage`].
pub trait StorageExt: Storage {
    /// Writes one record.
    fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<(), StoreError> {
        let v = serde_json::to_value(value).map_err(|e| StoreError { path: PathBuf::new(), message: e.to_string() })?;
        self.put_many(&[(kind, key, v)])
    }
    /// Reads one record.
    fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, StoreError> {
        match self.get_raw(kind, key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError { path: PathBuf::new(), message: format!("{kind:?} {key}: {e}") }),
        }
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}

/// redb's page cache for the state file.
const CACHE_BYTES: usize = 8 << 20;

/// The embedded store: one redb file.
pub struct Store {
    path: PathBuf,
    db: redb::Database,
}

impl Store {
    /// Opens (or creates) `dir/state.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("state.db");
        let err = |message: String| StoreError { path: path.clone(), message };
        std::fs::create_dir_all(dir).map_err(|e| err(format!("creating {}: {e}", dir.display())))?;
        // redb caches up to 1 GiB by default, and learning state is rewritten every few
        // seconds: the daemon's RSS would grow with it. Reads here are few and small.
        let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(&path).map_err(|e| err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        for k in Kind::ALL {
            txn.open_table(k.table()).map_err(|e| err(e.to_string()))?;
        }
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(Store { path, db })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError { path: self.path.clone(), message: e.to_string() }
    }
}

impl Storage for Store {
    fn put_many(&self, items: &[(Kind, &str, serde_json::Value)]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        for (kind, key, value) in items {
            let bytes = serde_json::to_vec(value).map_err(|e| self.err(e))?;
            txn.open_table(kind.table()).map_err(|e| self.err(e))?.insert(*key, bytes.as_slice()).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn get_raw(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(kind.table()).map_err(|e| self.err(e))?;
        Ok(table.get(key).map_err(|e| self.err(e))?.map(|v| v.value().to_vec()))
    }

    fn delete(&self, kind: Kind, key: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(kind.table()).map_err(|e| self.err(e))?.remove(key).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    fn keys(&self, kind: Kind) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(kind.table()).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            out.push(row.map_err(|e| self.err(e))?.0.value().to_string());
        }
        Ok(out)
    }

    fn count(&self, kind: Kind) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        txn.open_table(kind.table()).map_err(|e| self.err(e))?.len().map_err(|e| self.err(e))
    }
}
