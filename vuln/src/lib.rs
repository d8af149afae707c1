//! The offline vulnerability database (OSV records in one indexed file), version schemes,
//! matching of an SBOM against it, and reports. Knows nothing of eBPF or Kubernetes.

pub mod ecosystem;
pub mod gocode;
pub mod import;
pub mod javacode;
pub mod osv;
pub mod progress;
pub mod severity;
pub mod store;
pub mod version;

pub use store::{Db, DbError, ImportReport, Writer};
pub mod input;
pub mod matching;
pub mod reach;

pub use matching::{Finding, ScanReport, scan, scan_with};
pub mod report;
pub mod update;

/// Where the node agent keeps its vulnerability database unless told otherwise.
pub const DEFAULT_DB: &str = "/var/lib/sniffer/vuln.db";
