//! Paths as JSON text, losslessly. A Linux path is bytes; JSON strings are Unicode. A path
//! that is UTF-8 is written as it is (a backslash doubled); any byte that is not valid
//! UTF-8 is written `\xNN`. Reading undoes both, so every path comes back byte for byte,
//! and one file name an image chose to make invalid UTF-8 no longer loses a whole SBOM.
//!
//! Use with `#[serde(with = "crate::path_text")]` (one path) or `path_text::many` (a list).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serializer};

/// The text form of a path.
pub fn encode(path: &Path) -> String {
    let bytes = path.as_os_str().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The path a text form stands for (text that was never encoded reads as itself, but for
/// its `\\` and `\xNN`).
pub fn decode(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x')
                && let Some(hex) = text.get(i + 2..i + 4)
                && let Ok(b) = u8::from_str_radix(hex, 16)
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Serialises one path.
pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(path))
}

/// Deserialises one path.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    String::deserialize(d).map(|t| decode(&t))
}

/// A list of paths.
pub mod many {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Serialises a list of paths.
    pub fn serialize<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(paths.len()))?;
        for p in paths {
            seq.serialize_element(&encode(p))?;
        }
        seq.end()
    }

    /// Deserialises a list of paths.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
        Vec::<String>::deserialize(d).map(|v| v.iter().map(|t| decode(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_comes_back_byte_for_byte() {
        for bytes in
            [&b"/usr/lib/libc.so.6"[..], b"/tmp/a\xffb", b"/back\\slash", b"/lit\\x41eral", b"/\xc3", b"/\x1b[31mred"]
        {
            let path = PathBuf::from(OsString::from_vec(bytes.to_vec()));
            let text = encode(&path);
            assert_eq!(decode(&text), path, "{text}");
            let json = serde_json::to_string(&text).unwrap();
            assert!(json.is_ascii() || std::str::from_utf8(bytes).is_ok(), "{json}");
        }
        assert_eq!(encode(Path::new("/usr/bin/python3")), "/usr/bin/python3");
        assert_eq!(encode(&PathBuf::from(OsString::from_vec(b"/a\xffb".to_vec()))), "/a\\xffb");
    }
}
