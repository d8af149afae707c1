//! Catalogers: each finds one kind of package in a root and never stops the others.

pub mod apk;
pub mod binary;
pub mod dpkg;
pub mod java;
pub mod npm;
pub mod python;
pub mod rpm;

use std::io::Read;
use std::path::Path;

use crate::model::{Package, Warning};
use crate::rootfs::Root;

/// Longest warning message kept, in characters.
pub const MAX_WARNING: usize = 400;
/// Most warnings kept per scan; past it they are counted.
pub const MAX_WARNINGS: usize = 1000;

/// What the catalogers found so far.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Packages found.
    pub packages: Vec<Package>,
    /// Problems met.
    pub warnings: Vec<Warning>,
    /// Warnings past [`MAX_WARNINGS`], not kept.
    pub warnings_dropped: usize,
}

impl Catalog {
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
pub fn read_limited(root: &Root, path: &Path, limit: u64) -> Result<Option<String>, String> {
    let file = match root.open_file(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes; not read"));
    }
    String::from_utf8(bytes).map(Some).map_err(|e| format!("not UTF-8 text at byte {}", e.utf8_error().valid_up_to()))
}
