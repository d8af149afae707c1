//! How the bytes of an archive, and of the archives inside it, are reached without holding
//! a large one whole: a [`Window`] is a range of the outer file (read in place, by offset)
//! or of bytes in memory, so a stored nested jar (Spring Boot stores them) is a window of
//! its parent's window; a deflated one small enough is inflated into memory; a larger
//! deflated one is read as a stream of local entries ([`stream`]), once, front to back.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::catalog::Malformed;

/// Where an archive's bytes are.
#[derive(Debug, Clone)]
enum Backing<'a> {
    /// A file, read by offset (`pread`): its descriptor's position is never used.
    File(&'a File),
    /// Bytes in memory.
    Memory(Arc<[u8]>),
}

/// A range of a file or of bytes, read and sought as a file of its own.
#[derive(Debug, Clone)]
pub(crate) struct Window<'a> {
    backing: Backing<'a>,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    /// The whole of `file`, `len` bytes long.
    pub(crate) fn file(file: &'a File, len: u64) -> Window<'a> {
        Window { backing: Backing::File(file), start: 0, len, pos: 0 }
    }

    /// Bytes in memory.
    pub(crate) fn memory(bytes: Vec<u8>) -> Window<'static> {
        let len = bytes.len() as u64;
        Window { backing: Backing::Memory(bytes.into()), start: 0, len, pos: 0 }
    }

    /// `len` bytes from `start` of this window, when they all lie inside it.
    pub(crate) fn sub(&self, start: u64, len: u64) -> Option<Window<'a>> {
        (start.checked_add(len)? <= self.len).then(|| Window {
            backing: self.backing.clone(),
            start: self.start + start,
            len,
            pos: 0,
        })
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        let at = self.start + self.pos;
        let got = match &self.backing {
            Backing::File(f) => f.read_at(&mut buf[..n], at)?,
            Backing::Memory(bytes) => {
                let from = usize::try_from(at).map_err(std::io::Error::other)?;
                let src = bytes.get(from..from + n).ok_or_else(|| std::io::Error::other("outside the bytes"))?;
                buf[..n].copy_from_slice(src);
                n
            }
        };
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = to.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// One entry of an archive read as a stream.
pub(crate) struct StreamEntry<'r> {
    /// Its name.
    pub name: String,
    /// Its content.
    pub content: &'r mut dyn Read,
}

/// Local file header signature, and those that end the entries.
const LOCAL: &[u8; 4] = b"PK\x03\x04";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const END: &[u8; 4] = b"PK\x05\x06";
const DESCRIPTOR: &[u8; 4] = b"PK\x07\x08";

/// Reads the entries of a zip archive front to back, from its local headers (a large
/// deflated nested jar cannot be sought in), calling `each` with every entry's content.
/// What `each` leaves unread is read past. Stops at the central directory; an entry that
/// cannot be delimited (stored, with its size only in a trailing descriptor) or is
/// compressed another way ends the walk with a problem.
pub(crate) fn stream(reader: &mut dyn BufRead, each: &mut dyn FnMut(StreamEntry<'_>)) -> Result<(), Malformed> {
    loop {
        let mut sig = [0u8; 4];
        match reader.read_exact(&mut sig) {
            Ok(()) => {}
            // An archive that just ends (the central directory cut off): what was read stands.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.to_string().into()),
        }
        if &sig == CENTRAL || &sig == END {
            return Ok(());
        }
        if &sig != LOCAL {
            return Err("not a local entry where one should start".into());
        }
        let mut h = [0u8; 26];
        reader.read_exact(&mut h).map_err(|e| e.to_string())?;
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (flags, method) = (u16_at(2), u16_at(4));
        let mut compressed = u64::from(u32_at(14));
        let (name_len, extra_len) = (usize::from(u16_at(22)), usize::from(u16_at(24)));
        let mut name = vec![0u8; name_len];
        reader.read_exact(&mut name).map_err(|e| e.to_string())?;
        let mut extra = vec![0u8; extra_len];
        reader.read_exact(&mut extra).map_err(|e| e.to_string())?;
        let zip64 = zip64_sizes(&extra);
        if let Some((_, c)) = zip64
            && compressed == 0xffff_ffff
        {
            compressed = c;
        }
        let name = String::from_utf8_lossy(&name).into_owned();
        let described = flags & 8 != 0;
        match method {
            0 if described && compressed == 0 => {
                return Err(format!("{name}: stored with its size after its data: the rest is not read").into());
            }
            0 => {
                let mut content = reader.take(compressed);
                each(StreamEntry { name, content: &mut content });
                std::io::copy(&mut content, &mut std::io::sink()).map_err(|e| e.to_string())?;
            }
            8 => {
                let mut content = flate2::bufread::DeflateDecoder::new(&mut *reader);
                each(StreamEntry { name, content: &mut content });
                std::io::copy(&mut content, &mut std::io::sink()).map_err(|e| e.to_string())?;
            }
            other => return Err(format!("{name}: compression method {other}: the rest is not read").into()),
        }
        if described {
            // crc, compressed and uncompressed sizes (8 bytes each for zip64), after an
            // optional signature.
            let mut first = [0u8; 4];
            reader.read_exact(&mut first).map_err(|e| e.to_string())?;
            let rest = if zip64.is_some() { 16 } else { 8 } + if &first == DESCRIPTOR { 4 } else { 0 };
            let mut skip = vec![0u8; rest];
            reader.read_exact(&mut skip).map_err(|e| e.to_string())?;
        }
    }
}

/// The zip64 extra field's (uncompressed, compressed) sizes, when it has both.
fn zip64_sizes(extra: &[u8]) -> Option<(u64, u64)> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16::from_le_bytes([extra[at], extra[at + 1]]);
        let len = usize::from(u16::from_le_bytes([extra[at + 2], extra[at + 3]]));
        let body = extra.get(at + 4..at + 4 + len)?;
        if id == 1 && body.len() >= 16 {
            let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap_or([0; 8]));
            return Some((u64_at(0), u64_at(8)));
        }
        at += 4 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes, method) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(*method)).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn windows_read_and_seek_inside_their_range_only() {
        let mut w = Window::memory(b"0123456789".to_vec()).sub(2, 5).unwrap();
        let mut s = String::new();
        w.read_to_string(&mut s).unwrap();
        assert_eq!(s, "23456");
        w.seek(SeekFrom::End(-2)).unwrap();
        s.clear();
        w.read_to_string(&mut s).unwrap();
        assert_eq!(s, "56");
        let inner = w.sub(1, 3).unwrap();
        assert_eq!(inner.start, 3);
        assert!(w.sub(4, 2).is_none() && w.sub(u64::MAX, 2).is_none());
        assert!(w.seek(SeekFrom::Current(-100)).is_err());
    }

    #[test]
    fn a_stream_gives_every_entry_stored_or_deflated() {
        use zip::CompressionMethod::{Deflated, Stored};
        let bytes =
            zip(&[("a.txt", b"alpha", Stored), ("b/c.txt", &b"beta".repeat(1000), Deflated), ("d", b"", Stored)]);
        let mut seen = Vec::new();
        stream(&mut &bytes[..], &mut |e| {
            let mut text = Vec::new();
            e.content.read_to_end(&mut text).unwrap();
            seen.push((e.name, text.len()));
        })
        .unwrap();
        assert_eq!(seen, [("a.txt".into(), 5), ("b/c.txt".into(), 4000), ("d".into(), 0)]);
        // Entries left unread are read past.
        let mut names = Vec::new();
        stream(&mut &bytes[..], &mut |e| names.push(e.name)).unwrap();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        assert!(stream(&mut &b"not a zip at all"[..], &mut |_| {}).is_err());
        assert!(stream(&mut &b""[..], &mut |_| {}).is_ok());
        let mut cut = zip(&[("a.txt", &b"alpha".repeat(100), zip::CompressionMethod::Deflated)]);
        cut.truncate(40);
        assert!(stream(&mut &cut[..], &mut |_| {}).is_err());
    }
}
