//! What ran below the file in one learned instance: the vulnerable functions whose entries
//! were probed, and the first call of each. SBOM' carries it (`sniffer sbom --opened` reads
//! it from `sniffer trace --db` output too), and the scan decides reachability with it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A vulnerable function linked into a binary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Site {
    /// The binary (its path in the image).
    #[serde(with = "crate::path_text")]
    pub binary: PathBuf,
    /// The function as the binary names it (`encoding/gob.(*Decoder).Decode`).
    pub function: String,
    /// Where its code starts in the file; `None` when only inlined copies exist (no probe
    /// can see those called).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// The first call of a vulnerable function seen in an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Which function.
    pub site: Site,
    /// The calling process.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// When.
    pub at: crate::time::Timestamp,
}

/// What ran, below the file, in one learned instance: the vulnerable functions probed and
/// the first call of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    /// Functions whose entry was probed for the whole window (their binary and offset).
    pub probed: Vec<Site>,
    /// First calls.
    pub calls: Vec<Call>,
    /// How long the instance was learned, seconds.
    pub window_seconds: u64,
    /// When its probes were in place (its image's scan may have been ready only after the
    /// container started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<crate::time::Timestamp>,
    /// Why some functions could not be probed (said in the reachability of their findings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unprobed: Vec<String>,
}
