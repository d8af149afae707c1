//! The embedded vulnerability database: one redb file, indexed by ecosystem and package.
//!
//! Tables: `records` (id → the record's JSON), `index` (ecosystem NUL name → one entry per
//! record naming that package, holding only the ranges and versions of its `affected`
//! entries for it, so matching never parses whole records), `summaries` (id → the record
//! without ranges, version lists and references: what a finding shows), `versions` (index
//! key NUL id NUL version, for every explicitly listed affected version: a lookup instead of
//! reading lists that run to hundreds of versions), `record_meta` (id → ecosystems and withdrawn flag, for status and
//! for replacing a record), and `meta` (schema, update time, sources). Withdrawn records are
//! stored but never indexed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use redb::{MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use sbom::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ecosystem;
use crate::osv::{Affected, Range, Record};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const INDEX: MultimapTableDefinition<&str, &[u8]> = MultimapTableDefinition::new("index");
const RECORD_META: TableDefinition<&str, &[u8]> = TableDefinition::new("record_meta");
const SUMMARIES: TableDefinition<&str, &[u8]> = TableDefinition::new("summaries");
const VERSIONS: TableDefinition<&str, ()> = TableDefinition::new("versions");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Bump when the layout of index entries changes: an older file is refused with a message
/// to rebuild it rather than read wrongly.
/// 4: Go and npm names indexed without case.
const SCHEMA: &str = "4";

/// What can go wrong with the database file.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file does not exist.
    #[error("no vulnerability database at {0}: run `sniffer db import PATH` or `sniffer db update`")]
    Missing(PathBuf),
    /// The file is not a database, or is damaged.
    #[error("vulnerability database {path} is unreadable; rebuild it with `sniffer db import` or `sniffer db update`")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb said.
        source: redb::Error,
    },
    /// Written by another version of this tool.
    #[error("vulnerability database {path} has schema {found:?}, this build reads {SCHEMA:?}: rebuild it")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its schema.
        found: String,
    },
    /// An I/O or storage error while using it.
    #[error("vulnerability database {path}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What redb said.
        source: redb::Error,
    },
    /// A stored value that does not decode.
    #[error("vulnerability database {path}: bad stored value for {key:?}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Its key.
        key: String,
        /// Why.
        message: String,
    },
}

/// One record's entries for one package, as the index holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The record.
    pub id: String,
    /// Its `affected` entries naming this package: what matching reads.
    pub affected: Vec<MatchAffected>,
}

/// The part of an `affected` entry matching reads; its explicit version list is in the
/// `versions` table ([`Db::lists_version`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchAffected {
    /// Version ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
}

fn version_key(index_key: &str, id: &str, version: &str) -> String {
    format!("{index_key}\0{id}\0{version}")
}

/// Every (index key, id, version) a record lists explicitly.
fn listed_versions(record: &Record) -> Vec<String> {
    let mut out = Vec::new();
    for a in &record.affected {
        let Some(p) = &a.package else { continue };
        let key = ecosystem::key(&p.ecosystem, &p.name);
        out.extend(a.versions.iter().map(|v| version_key(&key, &record.id, v)));
    }
    out
}

/// What a finding shows of a record: no ranges, version lists or references, and only the
/// first line of the details.
fn summary_of(record: &Record) -> Record {
    let affected =
        record.affected.iter().map(|a| Affected { ranges: Vec::new(), versions: Vec::new(), ..a.clone() }).collect();
    let details = record.details.as_ref().map(|d| d.lines().next().unwrap_or_default().to_string());
    Record { affected, details, references: Vec::new(), ..record.clone() }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordMeta {
    ecosystems: Vec<String>,
    withdrawn: bool,
    modified: String,
}

/// Where an ecosystem's data came from, for `db status` and conditional updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// URL or path.
    pub location: String,
    /// HTTP ETag of what was fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// HTTP Last-Modified of what was fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// When it was imported.
    pub imported_at: Timestamp,
}

/// What `db status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The file.
    pub path: PathBuf,
    /// Records per ecosystem (a record naming two ecosystems counts in both), withdrawn
    /// ones excluded.
    pub ecosystems: BTreeMap<String, usize>,
    /// All records stored.
    pub records: usize,
    /// Withdrawn records (stored, never matched).
    pub withdrawn: usize,
    /// When the last import or update finished.
    pub updated_at: Option<Timestamp>,
    /// Where each ecosystem came from.
    pub sources: BTreeMap<String, SourceInfo>,
}

fn storage(path: &Path) -> impl Fn(redb::Error) -> DbError + '_ {
    move |e| DbError::Storage { path: path.to_path_buf(), source: e }
}

/// The index keys a record's entries go under, with the entries for each.
fn index_entries(record: &Record) -> BTreeMap<String, IndexEntry> {
    let mut out: BTreeMap<String, IndexEntry> = BTreeMap::new();
    for a in &record.affected {
        let Some(p) = &a.package else { continue };
        out.entry(ecosystem::key(&p.ecosystem, &p.name))
            .or_insert_with(|| IndexEntry { id: record.id.clone(), affected: Vec::new() })
            .affected
            .push(MatchAffected { ranges: a.ranges.clone() });
    }
    out
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("our own types serialise")
}

fn check_schema(path: &Path, found: Option<String>) -> Result<(), DbError> {
    match found {
        Some(s) if s == SCHEMA => Ok(()),
        Some(s) => Err(DbError::Schema { path: path.to_path_buf(), found: s }),
        None => Err(DbError::Schema { path: path.to_path_buf(), found: String::new() }),
    }
}

/// A database opened for reading (scans, status). Cheap to open: nothing is loaded.
pub struct Db {
    path: PathBuf,
    index: redb::ReadOnlyMultimapTable<&'static str, &'static [u8]>,
    records: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    record_meta: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    summaries: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    versions: redb::ReadOnlyTable<&'static str, ()>,
    meta: redb::ReadOnlyTable<&'static str, &'static str>,
}

impl Db {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        if !path.exists() {
            return Err(DbError::Missing(path.to_path_buf()));
        }
        let corrupt = |e: redb::Error| DbError::Corrupt { path: path.to_path_buf(), source: e };
        let db = redb::ReadOnlyDatabase::open(path).map_err(|e| corrupt(e.into()))?;
        let txn = db.begin_read().map_err(|e| corrupt(e.into()))?;
        let meta = txn.open_table(META).map_err(|e| corrupt(e.into()))?;
        let schema = meta.get("schema").map_err(|e| corrupt(e.into()))?.map(|v| v.value().to_string());
        check_schema(path, schema)?;
        Ok(Db {
            path: path.to_path_buf(),
            index: txn.open_multimap_table(INDEX).map_err(|e| corrupt(e.into()))?,
            records: txn.open_table(RECORDS).map_err(|e| corrupt(e.into()))?,
            record_meta: txn.open_table(RECORD_META).map_err(|e| corrupt(e.into()))?,
            summaries: txn.open_table(SUMMARIES).map_err(|e| corrupt(e.into()))?,
            versions: txn.open_table(VERSIONS).map_err(|e| corrupt(e.into()))?,
            meta,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every non-withdrawn record's entries for a package.
    pub fn candidates(&self, ecosystem: &str, name: &str) -> Result<Vec<IndexEntry>, DbError> {
        let key = ecosystem::key(ecosystem, name);
        let values = self.index.get(key.as_str()).map_err(|e| storage(&self.path)(e.into()))?;
        let mut out = Vec::new();
        for v in values {
            let v = v.map_err(|e| storage(&self.path)(e.into()))?;
            let entry: IndexEntry = serde_json::from_slice(v.value()).map_err(|e| DbError::Decode {
                path: self.path.clone(),
                key: key.replace('\0', "/"),
                message: e.to_string(),
            })?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Whether record `id` lists `version` of a package explicitly as affected.
    pub fn lists_version(&self, ecosystem: &str, name: &str, id: &str, version: &str) -> Result<bool, DbError> {
        let k = version_key(&ecosystem::key(ecosystem, name), id, version);
        Ok(self.versions.get(k.as_str()).map_err(|e| storage(&self.path)(e.into()))?.is_some())
    }

    /// A whole record.
    pub fn record(&self, id: &str) -> Result<Option<Record>, DbError> {
        let Some(v) = self.records.get(id).map_err(|e| storage(&self.path)(e.into()))? else { return Ok(None) };
        let record = Record::parse(v.value()).map_err(|message| DbError::Decode {
            path: self.path.clone(),
            key: id.to_string(),
            message,
        })?;
        Ok(Some(record))
    }

    /// A record as findings show it (see `summaries` above); cheaper than [`Db::record`].
    pub fn summary(&self, id: &str) -> Result<Option<Record>, DbError> {
        let Some(v) = self.summaries.get(id).map_err(|e| storage(&self.path)(e.into()))? else { return Ok(None) };
        let record = serde_json::from_slice(v.value()).map_err(|e| DbError::Decode {
            path: self.path.clone(),
            key: id.to_string(),
            message: e.to_string(),
        })?;
        Ok(Some(record))
    }

    /// Counts, age and sources.
    pub fn status(&self) -> Result<Status, DbError> {
        let mut ecosystems = BTreeMap::new();
        let (mut records, mut withdrawn) = (0, 0);
        for row in self.record_meta.iter().map_err(|e| storage(&self.path)(e.into()))? {
            let (k, v) = row.map_err(|e| storage(&self.path)(e.into()))?;
            let m: RecordMeta = serde_json::from_slice(v.value()).map_err(|e| DbError::Decode {
                path: self.path.clone(),
                key: k.value().to_string(),
                message: e.to_string(),
            })?;
            records += 1;
            if m.withdrawn {
                withdrawn += 1;
                continue;
            }
            for e in m.ecosystems {
                *ecosystems.entry(e).or_insert(0) += 1;
            }
        }
        Ok(Status {
            path: self.path.clone(),
            ecosystems,
            records,
            withdrawn,
            updated_at: self.updated_at()?,
            sources: self.sources()?,
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        Ok(self.meta.get(key).map_err(|e| storage(&self.path)(e.into()))?.map(|v| v.value().to_string()))
    }

    /// When the last import or update finished (unreadable counts as never); cheap, unlike
    /// [`Db::status`].
    pub fn updated_at(&self) -> Result<Option<Timestamp>, DbError> {
        Ok(self.meta("updated_at")?.and_then(|t| Timestamp::parse(&t).ok()))
    }

    /// Where each ecosystem came from; cheap, unlike [`Db::status`].
    pub fn sources(&self) -> Result<BTreeMap<String, SourceInfo>, DbError> {
        Ok(self.meta("sources")?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
    }
}

/// How one import went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImportReport {
    /// Records added or replaced.
    pub imported: usize,
    /// Records already stored with the same content.
    pub unchanged: usize,
    /// Of those imported, withdrawn (stored, not indexed).
    pub withdrawn: usize,
    /// Inputs skipped: file or zip entry, and why.
    pub skipped: Vec<Skipped>,
    /// Ecosystems the records named (base names: `Debian`, not `Debian:12`).
    pub ecosystems: BTreeSet<String>,
}

/// An input that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file, or `zip!entry`.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// A database opened for writing; every change happens in one transaction per `Writer`
/// and is visible to readers only after [`Writer::commit`].
pub struct Writer {
    path: PathBuf,
    txn: redb::WriteTransaction,
    progress: std::sync::Arc<dyn crate::progress::Progress>,
    // Kept alive for the transaction; dropped after it.
    _db: redb::Database,
}

impl Writer {
    /// Opens `path` for writing, creating an empty database if there is none.
    pub fn open(path: &Path) -> Result<Writer, DbError> {
        let fresh = !path.exists();
        let corrupt = |e: redb::Error| DbError::Corrupt { path: path.to_path_buf(), source: e };
        let db = if fresh { redb::Database::create(path) } else { redb::Database::open(path) }
            .map_err(|e| corrupt(e.into()))?;
        let txn = db.begin_write().map_err(|e| corrupt(e.into()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| corrupt(e.into()))?;
            let schema = meta.get("schema").map_err(|e| corrupt(e.into()))?.map(|v| v.value().to_string());
            if fresh || schema.is_none() {
                meta.insert("schema", SCHEMA).map_err(|e| corrupt(e.into()))?;
            } else {
                check_schema(path, schema)?;
            }
            txn.open_table(RECORDS).map_err(|e| corrupt(e.into()))?;
            txn.open_table(RECORD_META).map_err(|e| corrupt(e.into()))?;
            txn.open_table(SUMMARIES).map_err(|e| corrupt(e.into()))?;
            txn.open_table(VERSIONS).map_err(|e| corrupt(e.into()))?;
            txn.open_multimap_table(INDEX).map_err(|e| corrupt(e.into()))?;
        }
        Ok(Writer { path: path.to_path_buf(), txn, progress: std::sync::Arc::new(crate::progress::Silent), _db: db })
    }

    /// Reports each record read to `progress`.
    pub fn set_progress(&mut self, progress: std::sync::Arc<dyn crate::progress::Progress>) {
        self.progress = progress;
    }

    /// Where records read are reported.
    pub fn progress(&self) -> &dyn crate::progress::Progress {
        &*self.progress
    }

    /// Adds or replaces one record given as JSON. Returns whether it changed anything.
    pub fn put(&mut self, bytes: &[u8], report: &mut ImportReport, source: &str) -> Result<(), DbError> {
        self.progress.record();
        let record = match Record::parse(bytes) {
            Ok(r) => r,
            Err(reason) => {
                report.skipped.push(Skipped { source: source.to_string(), reason });
                return Ok(());
            }
        };
        let err = storage(&self.path);
        for a in &record.affected {
            if let Some(p) = &a.package {
                report.ecosystems.insert(p.ecosystem.split(':').next().unwrap_or(&p.ecosystem).to_string());
            }
        }
        let stored = encode(&record);
        let mut records = self.txn.open_table(RECORDS).map_err(|e| err(e.into()))?;
        let old = records.get(record.id.as_str()).map_err(|e| err(e.into()))?.map(|v| v.value().to_vec());
        if old.as_deref() == Some(stored.as_slice()) {
            report.unchanged += 1;
            return Ok(());
        }
        let mut index = self.txn.open_multimap_table(INDEX).map_err(|e| err(e.into()))?;
        let mut versions = self.txn.open_table(VERSIONS).map_err(|e| err(e.into()))?;
        if let Some(old) = old.and_then(|o| Record::parse(&o).ok())
            && old.withdrawn.is_none()
        {
            for (key, entry) in index_entries(&old) {
                index.remove(key.as_str(), encode(&entry).as_slice()).map_err(|e| err(e.into()))?;
            }
            for k in listed_versions(&old) {
                versions.remove(k.as_str()).map_err(|e| err(e.into()))?;
            }
        }
        if record.withdrawn.is_none() {
            for (key, entry) in &index_entries(&record) {
                index.insert(key.as_str(), encode(entry).as_slice()).map_err(|e| err(e.into()))?;
            }
            for k in listed_versions(&record) {
                versions.insert(k.as_str(), ()).map_err(|e| err(e.into()))?;
            }
        } else {
            report.withdrawn += 1;
        }
        let ecosystems: BTreeSet<String> = record
            .affected
            .iter()
            .filter_map(|a| a.package.as_ref())
            .map(|p| ecosystem::normalize_ecosystem(&p.ecosystem).to_string())
            .collect();
        let meta = RecordMeta {
            ecosystems: ecosystems.into_iter().collect(),
            withdrawn: record.withdrawn.is_some(),
            modified: record.modified.clone(),
        };
        self.txn
            .open_table(RECORD_META)
            .map_err(|e| err(e.into()))?
            .insert(record.id.as_str(), encode(&meta).as_slice())
            .map_err(|e| err(e.into()))?;
        self.txn
            .open_table(SUMMARIES)
            .map_err(|e| err(e.into()))?
            .insert(record.id.as_str(), encode(&summary_of(&record)).as_slice())
            .map_err(|e| err(e.into()))?;
        records.insert(record.id.as_str(), stored.as_slice()).map_err(|e| err(e.into()))?;
        report.imported += 1;
        Ok(())
    }

    /// Records where an ecosystem's data came from.
    pub fn set_source(&mut self, ecosystem: &str, info: SourceInfo) -> Result<(), DbError> {
        let err = storage(&self.path);
        let mut meta = self.txn.open_table(META).map_err(|e| err(e.into()))?;
        let mut sources: BTreeMap<String, SourceInfo> = meta
            .get("sources")
            .map_err(|e| err(e.into()))?
            .and_then(|v| serde_json::from_str(v.value()).ok())
            .unwrap_or_default();
        sources.insert(ecosystem.to_string(), info);
        let json = serde_json::to_string(&sources).expect("serialisable");
        meta.insert("sources", json.as_str()).map_err(|e| err(e.into()))?;
        Ok(())
    }

    /// The sources recorded so far (for conditional HTTP requests).
    pub fn sources(&self) -> Result<BTreeMap<String, SourceInfo>, DbError> {
        let err = storage(&self.path);
        let meta = self.txn.open_table(META).map_err(|e| err(e.into()))?;
        Ok(meta
            .get("sources")
            .map_err(|e| err(e.into()))?
            .and_then(|v| serde_json::from_str(v.value()).ok())
            .unwrap_or_default())
    }

    /// Makes every change durable and visible at once.
    pub fn commit(self) -> Result<(), DbError> {
        let err = storage(&self.path);
        {
            let mut meta = self.txn.open_table(META).map_err(|e| err(e.into()))?;
            meta.insert("updated_at", Timestamp::now().to_string().as_str()).map_err(|e| err(e.into()))?;
        }
        self.txn.commit().map_err(|e| err(e.into()))
    }
}
