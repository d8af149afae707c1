//! RPM packages from the sqlite rpm database (`rpmdb.sqlite`, Fedora 33+, RHEL 9,
//! openSUSE): each row of its `Packages` table is an rpm header blob, parsed here. The
//! older Berkeley DB (`Packages`) and ndb (`Packages.db`) formats have no well-kept Rust
//! reader; finding one is a warning naming it, not a silent empty list.
//!
//! sqlite never opens a path: given a name (even `/proc/self/fd/N`) it resolves it itself,
//! from the agent's mount namespace, where a container's path names a host file. The
//! database is opened through the root's gate (a regular file inside the root, checked
//! before a byte is read), read into memory up to [`MAX_DB`], and handed to sqlite as bytes
//! (`sqlite3_deserialize`, read-only).

use crate::catalog::Malformed;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::model::{Distro, Ecosystem, Package, Source};
use crate::purl;
use crate::rootfs::Root;

const CATALOGER: &str = "rpm";
/// Where rpm keeps its database, newest layout first.
const DIRS: &[&str] = &["/usr/lib/sysimage/rpm", "/var/lib/rpm"];
/// Largest header blob; rpm itself refuses headers over 256 MiB.
const MAX_BLOB: usize = 256 << 20;
/// Largest rpm database read (a full Fedora workstation's is about 100 MiB).
const MAX_DB: u64 = 512 << 20;

/// Catalogs the rpm database of the root, if it has one.
pub fn catalog(root: &Root, distro: Option<&Distro>, catalog: &mut Catalog) {
    for dir in DIRS {
        let sqlite = Path::new(dir).join("rpmdb.sqlite");
        match root.open_file(&sqlite) {
            Ok(file) => {
                read_sqlite(root, &file, &sqlite, distro, catalog);
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return catalog.warn(CATALOGER, &sqlite, e),
        }
        for (name, format) in [("Packages", "Berkeley DB"), ("Packages.db", "ndb")] {
            let path = Path::new(dir).join(name);
            if root.open_file(&path).is_ok() {
                return catalog.warn(
                    CATALOGER,
                    &path,
                    format!("unsupported rpm database format ({format}); its packages are not listed"),
                );
            }
        }
    }
}

fn read_sqlite(root: &Root, file: &std::fs::File, path: &Path, distro: Option<&Distro>, catalog: &mut Catalog) {
    let wal = path.with_file_name("rpmdb.sqlite-wal");
    if root.open_file(&wal).and_then(|f| f.metadata()).is_ok_and(|m| m.len() > 0) {
        catalog.warn(CATALOGER, &wal, "write-ahead log not checkpointed: the packages installed last may be missing");
    }
    let size = match file.metadata() {
        Ok(m) if m.len() > MAX_DB => {
            return catalog.warn(CATALOGER, path, format!("larger than {MAX_DB} bytes; not read"));
        }
        Ok(m) => m.len() as usize,
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    let mut bytes = Vec::with_capacity(size);
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_DB), &mut bytes) {
        return catalog.warn(CATALOGER, path, e);
    }
    // rpm keeps its database in WAL mode (header bytes 18 and 19 are 2), which an in-memory
    // database cannot open; as bytes, it reads the same in rollback mode (1).
    if bytes.get(18..20) == Some(&[2, 2]) {
        bytes[18] = 1;
        bytes[19] = 1;
    }
    let blobs = rusqlite::Connection::open_in_memory().and_then(|mut db| {
        db.deserialize_read_exact(rusqlite::MAIN_DB, bytes.as_slice(), bytes.len(), true)?;
        let mut stmt = db.prepare("SELECT hnum, blob FROM Packages")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()
    });
    let blobs = match blobs {
        Ok(b) => b,
        Err(e) => return catalog.warn(CATALOGER, path, format!("not a readable rpm database: {e}")),
    };
    for (hnum, blob) in blobs {
        match Header::parse(&blob).and_then(|h| h.package(distro, path)) {
            Ok(Some(p)) => {
                if !catalog.add(CATALOGER, path, p) {
                    break;
                }
            }
            Ok(None) => {} // gpg-pubkey entries: keys, not software
            Err(e) => catalog.warn(CATALOGER, path, format!("package {hnum}: {e}")),
        }
    }
}

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const LICENSE: u32 = 1014;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;
const DIRINDEXES: u32 = 1116;
const BASENAMES: u32 = 1117;
const DIRNAMES: u32 = 1118;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// An rpm header as stored in the database: index entries, then the data they point into.
pub struct Header<'a> {
    entries: Vec<(u32, u32, usize, usize)>,
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Header<'a> {
    /// Parses a header blob (`il`, `dl`, `il` 16-byte entries, `dl` bytes of data); every
    /// bound is checked.
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, Malformed> {
        if blob.len() > MAX_BLOB {
            return Err(format!("header of {} bytes", blob.len()).into());
        }
        let il = be32(blob, 0).ok_or("truncated header")? as usize;
        let dl = be32(blob, 4).ok_or("truncated header")? as usize;
        let start = il.checked_mul(16).and_then(|n| n.checked_add(8)).ok_or("bad entry count")?;
        let data = start
            .checked_add(dl)
            .and_then(|end| blob.get(start..end))
            .ok_or_else(|| format!("{il} entries and {dl} data bytes do not fit in {} bytes", blob.len()))?;
        let mut entries = Vec::with_capacity(il);
        for i in 0..il {
            let at = 8 + 16 * i;
            let field = |k: usize| be32(blob, at + 4 * k).ok_or("truncated entry");
            entries.push((field(0)?, field(1)?, field(2)? as usize, field(3)? as usize));
        }
        Ok(Header { entries, data })
    }

    fn entry(&self, tag: u32) -> Option<(u32, usize, usize)> {
        self.entries.iter().find(|e| e.0 == tag).map(|&(_, ty, off, count)| (ty, off, count))
    }

    /// `count` NUL-terminated strings from `off`.
    fn strings_at(&self, off: usize, count: usize) -> Result<Vec<String>, Malformed> {
        let mut out = Vec::with_capacity(count.min(1 << 16));
        let mut at = off;
        for _ in 0..count {
            let rest = self.data.get(at..).ok_or("string outside the data")?;
            let len = rest.iter().position(|&b| b == 0).ok_or("unterminated string")?;
            out.push(String::from_utf8_lossy(&rest[..len]).into_owned());
            at += len + 1;
        }
        Ok(out)
    }

    /// A string tag (the first of an i18n table).
    pub fn string(&self, tag: u32) -> Result<Option<String>, Malformed> {
        match self.entry(tag) {
            Some((TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY, off, _)) => Ok(self.strings_at(off, 1)?.pop()),
            Some((ty, ..)) => Err(format!("tag {tag} has type {ty}, not a string").into()),
            None => Ok(None),
        }
    }

    /// A string array tag.
    pub fn strings(&self, tag: u32) -> Result<Vec<String>, Malformed> {
        match self.entry(tag) {
            Some((TYPE_STRING_ARRAY, off, count)) => self.strings_at(off, count),
            Some((ty, ..)) => Err(format!("tag {tag} has type {ty}, not a string array").into()),
            None => Ok(Vec::new()),
        }
    }

    /// An int32 array tag.
    pub fn ints(&self, tag: u32) -> Result<Vec<u32>, Malformed> {
        match self.entry(tag) {
            Some((TYPE_INT32, off, count)) => (0..count)
                .map(|i| be32(self.data, off + 4 * i).ok_or_else(|| format!("tag {tag} outside the data")))
                .collect::<Result<_, String>>()
                .map_err(Malformed::from),
            Some((ty, ..)) => Err(format!("tag {tag} has type {ty}, not int32").into()),
            None => Ok(Vec::new()),
        }
    }

    /// The package this header describes; `None` for rpm's `gpg-pubkey` pseudo-packages.
    pub fn package(&self, distro: Option<&Distro>, db: &Path) -> Result<Option<Package>, Malformed> {
        let name = self.string(NAME)?.ok_or("no name")?;
        if name == "gpg-pubkey" {
            return Ok(None);
        }
        let version = self.string(VERSION)?.ok_or("no version")?;
        let release = self.string(RELEASE)?.ok_or("no release")?;
        let epoch = self.ints(EPOCH)?.first().copied();
        let arch = self.string(ARCH)?;
        let vr = format!("{version}-{release}");
        let evr = match epoch {
            Some(e) if e > 0 => format!("{e}:{vr}"),
            _ => vr.clone(),
        };
        let (dirs, bases, index) = (self.strings(DIRNAMES)?, self.strings(BASENAMES)?, self.ints(DIRINDEXES)?);
        if bases.len() != index.len() {
            return Err(format!("{} file names but {} directory indexes", bases.len(), index.len()).into());
        }
        let files = bases
            .iter()
            .zip(&index)
            .map(|(b, &i)| {
                dirs.get(i as usize).map(|d| PathBuf::from(format!("{d}{b}"))).ok_or("directory index out of range")
            })
            .collect::<Result<Vec<_>, _>>()?;
        // `curl-8.6.0-8.fc40.src.rpm` -> source package `curl`, at the same version-release.
        let source = self.string(SOURCERPM)?.and_then(|s| {
            let stem = s.strip_suffix(".src.rpm").or_else(|| s.strip_suffix(".nosrc.rpm"))?;
            let mut parts = stem.rsplitn(3, '-');
            let (rel, ver, src) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Source { name: src.to_string(), version: format!("{ver}-{rel}") })
        });
        Ok(Some(Package {
            purl: purl::rpm(distro, &name, &vr, epoch, arch.as_deref()),
            name,
            version: evr,
            kind: Ecosystem::Rpm,
            source,
            licenses: self.string(LICENSE)?.into_iter().collect(),
            found_at: db.to_path_buf(),
            files,
            version_from_commit: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob of (tag, type, payload, count) entries.
    fn blob(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, ty, payload, count) in entries {
            while *ty == TYPE_INT32 && data.len() % 4 != 0 {
                data.push(0);
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&count.to_be_bytes());
            data.extend_from_slice(payload);
        }
        let mut b = (entries.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(data);
        b
    }

    #[test]
    fn garbage_and_lies_are_errors_not_panics() {
        assert!(Header::parse(b"").is_err());
        assert!(Header::parse(&[0xff; 8]).is_err());
        // An entry pointing past the data.
        let b = blob(&[(NAME, TYPE_STRING, b"x\0".to_vec(), 1), (VERSION, TYPE_STRING, b"1\0".to_vec(), 1)]);
        let mut lie = b.clone();
        lie[8 + 16 + 8..8 + 16 + 12].copy_from_slice(&1000u32.to_be_bytes());
        let h = Header::parse(&lie).unwrap();
        assert!(h.string(VERSION).is_err());
        // Files whose directory index points nowhere.
        let b = blob(&[
            (NAME, TYPE_STRING, b"x\0".to_vec(), 1),
            (VERSION, TYPE_STRING, b"1\0".to_vec(), 1),
            (RELEASE, TYPE_STRING, b"1\0".to_vec(), 1),
            (DIRNAMES, TYPE_STRING_ARRAY, b"/usr/bin/\0".to_vec(), 1),
            (BASENAMES, TYPE_STRING_ARRAY, b"x\0".to_vec(), 1),
            (DIRINDEXES, TYPE_INT32, 7u32.to_be_bytes().to_vec(), 1),
        ]);
        assert!(Header::parse(&b).unwrap().package(None, Path::new("/db")).is_err());
    }
}
