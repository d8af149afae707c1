//! Java archives (`.jar`, `.war`, `.ear`, Jenkins' `.jpi`/`.hpi`): Maven coordinates from
//! every `META-INF/maven/<group>/<artifact>/pom.properties` inside, else the manifest's
//! title and version; archives nested inside (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`,
//! shaded jars) are read too, a few levels deep: a stored one in place, a range of its
//! parent, a deflated one in memory or, past [`MAX_NESTED`], as a stream
//! (`java_nested`). Every package found owns the outermost archive: that is the file the
//! JVM opens.

use crate::catalog::Malformed;
use std::collections::BTreeSet;
use std::io::{BufRead, Read, Seek};
use std::path::{Path, PathBuf};

use super::java_nested::{StreamEntry, Window};

use crate::catalog::Catalog;
use crate::model::{Ecosystem, Package};
use crate::purl;
use crate::rootfs::Root;

const CATALOGER: &str = "java";
/// Largest metadata entry (pom.properties, MANIFEST.MF) read.
const MAX_METADATA: u64 = 1 << 20;
/// Largest deflated nested archive inflated into memory (one per level is held at a time);
/// a larger one is read as a stream, a stored one in place whatever its size.
const MAX_NESTED: u64 = 64 << 20;
/// How deep archives inside archives are followed.
const MAX_DEPTH: usize = 3;
/// Largest archive file looked at.
const MAX_ARCHIVE: u64 = 4 << 30;
/// Bytes one archive, with everything inside it, may have us read and inflate.
pub const MAX_WORK: u64 = 1 << 30;
/// Archives inside one archive, at any depth, that are read.
pub const MAX_NESTED_ARCHIVES: usize = 512;
/// Where the end-of-central-directory record must start: within its own 22 bytes and the
/// longest comment of the end of the file.
const EOCD_SEARCH: u64 = 22 + 65_535;

/// What reading one outer archive may still cost.
struct Budget {
    bytes: std::cell::Cell<u64>,
    archives: std::cell::Cell<usize>,
    /// The budgets it started with, for messages.
    work: u64,
    nested: usize,
}

/// Where one level of a walk is: the archive's own name, its path inside the outermost
/// (`!/lib/a.jar!/…`, empty for the outermost) and its depth.
struct Level {
    file_name: String,
    inner: String,
    depth: usize,
}

impl Level {
    /// The archive named `name` inside this one.
    fn inside(&self, name: &str) -> Level {
        Level {
            file_name: name.rsplit('/').next().unwrap_or(name).to_string(),
            inner: format!("{}!/{name}", self.inner),
            depth: self.depth + 1,
        }
    }

    /// ` (in …)` for messages, empty for the outermost.
    fn where_(&self) -> String {
        if self.inner.is_empty() { String::new() } else { format!(" (in {})", self.inner) }
    }
}

/// What every level of one walk shares: the budget, the coordinates found, the problems met.
struct Walk<'b> {
    budget: &'b Budget,
    found: &'b mut Vec<Coordinates>,
    problems: &'b mut Vec<String>,
}

impl Walk<'_> {
    /// Counts one more nested archive against the budget; false (said once) when none is
    /// left.
    fn take_archive(&mut self, where_: &str) -> bool {
        let left = self.budget.archives.get();
        if left == 0 {
            self.problems.push(format!(
                "budget: more than {} archives inside{where_}: the rest are not read",
                self.budget.nested
            ));
            return false;
        }
        self.budget.archives.set(left - 1);
        true
    }
}

/// A reader that spends the budget: past it, reads fail, so no archive (a sparse terabyte,
/// a file of end records for zip to try one by one, entries that all inflate the same
/// bomb) can keep us busy or fill memory.
struct Metered<'a, R> {
    inner: R,
    budget: &'a Budget,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.budget.bytes.get();
        if left == 0 {
            return Err(std::io::Error::other("work budget spent: not read further"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.bytes.set(left - n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Metered<'_, R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Is this file name a Java archive?
pub fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jar", ".war", ".ear", ".jpi", ".hpi"].iter().any(|ext| lower.ends_with(ext))
}

/// One archive's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Coordinates {
    /// Maven groupId, when known.
    pub group: Option<String>,
    /// artifactId, or the manifest's title.
    pub artifact: String,
    /// Version.
    pub version: String,
    /// Licence from the manifest (`Bundle-License`).
    pub license: Option<String>,
    /// Where inside the outermost archive (`!/WEB-INF/lib/x.jar`), empty for itself.
    pub inner: String,
}

/// Catalogs the archive at `path` (inside the root).
pub fn catalog_archive(root: &Root, path: &Path, catalog: &mut Catalog) {
    let file = match root.open_file(path) {
        Ok(f) => f,
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    match file.metadata() {
        Ok(m) if m.len() > MAX_ARCHIVE => {
            return catalog.over_budget(
                CATALOGER,
                path,
                format!("budget: {} bytes, over the {MAX_ARCHIVE}-byte budget for an archive: not read", m.len()),
            );
        }
        Ok(_) => {}
        Err(e) => return catalog.warn(CATALOGER, path, e),
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (work, archives) = (catalog.budgets.archive_work, catalog.budgets.nested_archives);
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_window_within(Window::file(&file, len), name, work, archives, &mut found, &mut problems);
    for p in problems {
        if p.starts_with("budget") {
            catalog.over_budget(CATALOGER, path, p);
        } else {
            catalog.warn(CATALOGER, path, p);
        }
    }
    let mut seen = BTreeSet::new();
    for c in found {
        if !seen.insert((c.group.clone(), c.artifact.clone(), c.version.clone())) {
            continue;
        }
        let name = match &c.group {
            Some(g) => format!("{g}:{}", c.artifact),
            None => c.artifact.clone(),
        };
        let added = catalog.add(
            CATALOGER,
            path,
            Package {
                purl: purl::maven(c.group.as_deref(), &c.artifact, &c.version),
                name,
                version: c.version,
                kind: Ecosystem::Java,
                source: None,
                licenses: c.license.into_iter().collect(),
                found_at: PathBuf::from(format!("{}{}", path.display(), c.inner)),
                files: vec![path.to_path_buf()],
                version_from_commit: false,
            },
        );
        if !added {
            break;
        }
    }
}

/// Reads one archive held in memory: its coordinates, then the archives inside it, within
/// [`MAX_WORK`] bytes read and inflated and [`MAX_NESTED_ARCHIVES`] archives.
pub fn read_archive(bytes: Vec<u8>, file_name: String, found: &mut Vec<Coordinates>, problems: &mut Vec<String>) {
    read_window_within(Window::memory(bytes), file_name, MAX_WORK, MAX_NESTED_ARCHIVES, found, problems);
}

/// [`read_archive`] of a window, within `work` bytes read and inflated and `archives`
/// nested archives.
fn read_window_within(
    window: Window<'_>,
    file_name: String,
    work: u64,
    archives: usize,
    found: &mut Vec<Coordinates>,
    problems: &mut Vec<String>,
) {
    let budget =
        Budget { bytes: std::cell::Cell::new(work), archives: std::cell::Cell::new(archives), work, nested: archives };
    let level = Level { file_name, inner: String::new(), depth: 0 };
    read_level(window, &level, &mut Walk { budget: &budget, found, problems });
}

/// Is there an end-of-central-directory record where one must be, consistent with the
/// file? zip would otherwise search the whole file backwards for one.
fn check_end_record<R: Read + Seek>(reader: &mut R) -> Result<(), Malformed> {
    let len = reader.seek(std::io::SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let start = len.saturating_sub(EOCD_SEARCH);
    reader.seek(std::io::SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut tail = Vec::new();
    reader.by_ref().take(EOCD_SEARCH).read_to_end(&mut tail).map_err(|e| e.to_string())?;
    reader.seek(std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let u16_at = |i: usize| u16::from_le_bytes([tail[i], tail[i + 1]]) as u64;
    let u32_at = |i: usize| u32::from_le_bytes([tail[i], tail[i + 1], tail[i + 2], tail[i + 3]]) as u64;
    let end = (0..tail.len().saturating_sub(21)).rev().find(|&i| tail[i..].starts_with(b"PK\x05\x06"));
    let Some(i) = end else {
        return Err("no end-of-central-directory record in its last 64 KiB: not a zip archive".into());
    };
    let (entries, cd_size, cd_offset) = (u16_at(i + 10), u32_at(i + 12), u32_at(i + 16));
    // Zip64 keeps the real values elsewhere; zip checks those.
    if cd_offset == 0xffff_ffff || cd_size == 0xffff_ffff || entries == 0xffff {
        return Ok(());
    }
    let at = start + i as u64;
    if cd_size > at || entries * 46 > cd_size {
        return Err(format!(
            "its end record is inconsistent ({entries} entries in a {cd_size}-byte directory ending at {at}): not read"
        )
        .into());
    }
    Ok(())
}

/// Refuses an archive whose entries share or overlap their data: the classic bomb, where
/// thousands of names inflate the same compressed bytes.
fn check_entries<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> Result<(), Malformed> {
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| e.to_string())?;
        let start = entry.header_start();
        spans.push((start, entry.data_start().unwrap_or(start).saturating_add(entry.compressed_size())));
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err("entries share or overlap their data (a zip bomb): not read".into());
    }
    Ok(())
}

fn read_level(window: Window<'_>, level: &Level, walk: &mut Walk<'_>) {
    let (budget, where_, inner) = (walk.budget, level.where_(), &level.inner);
    if let Err(e) = check_end_record(&mut window.clone()) {
        return walk.problems.push(format!("not a readable Java archive{where_}: {e}"));
    }
    // Buffered: zip reads the central directory a few bytes at a time, a `pread` each.
    let reader = std::io::BufReader::with_capacity(4 << 10, window.clone());
    let mut zip = match zip::ZipArchive::new(Metered { inner: reader, budget }) {
        Ok(z) => z,
        Err(_) if budget.bytes.get() == 0 => {
            return walk
                .problems
                .push(format!("budget: reading it spent the {}-byte work budget{where_}: not read", budget.work));
        }
        Err(e) => return walk.problems.push(format!("not a readable Java archive{where_}: {e}")),
    };
    if let Err(e) = check_entries(&mut zip) {
        return walk.problems.push(format!("Java archive{where_}: {e}"));
    }
    // A name that does not decode cannot be a pom.properties or the manifest.
    let names: Vec<String> = zip.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let mut poms = 0;
    for name in names.iter().filter(|n| is_pom_properties(n)) {
        match entry_text(&mut zip, name) {
            Ok(text) => {
                if let Some(c) = parse_pom_properties(&text, inner) {
                    walk.found.push(c);
                    poms += 1;
                }
            }
            Err(e) => walk.problems.push(format!("{name}{where_}: {e}")),
        }
    }
    if poms == 0 {
        let manifest = names.iter().find(|n| n.eq_ignore_ascii_case("META-INF/MANIFEST.MF")).cloned();
        let text = match manifest.map(|m| entry_text(&mut zip, &m)) {
            Some(Ok(text)) => Some(text),
            Some(Err(e)) => {
                walk.problems.push(format!("META-INF/MANIFEST.MF{where_}: {e}"));
                None
            }
            None => None,
        };
        if let Some(c) = without_pom(text.as_deref(), &level.file_name, inner) {
            walk.found.push(c);
        }
    }
    if level.depth >= MAX_DEPTH {
        return;
    }
    for name in names.iter().filter(|n| is_archive(n)) {
        if !walk.take_archive(&where_) {
            return;
        }
        let located = zip.by_name(name).map_err(|e| e.to_string()).map(|entry| {
            let start = entry.data_start().unwrap_or(u64::MAX);
            (entry.compression(), start, entry.compressed_size(), entry.size())
        });
        match located {
            Err(e) => walk.problems.push(format!("{name}{where_}: {e}")),
            // Stored (Spring Boot's nested jars): a range of this archive, read in place.
            Ok((zip::CompressionMethod::Stored, start, compressed, size)) if compressed == size => {
                match window.sub(start, size) {
                    Some(sub) => read_level(sub, &level.inside(name), walk),
                    None => walk.problems.push(format!("{name}{where_}: its data lies outside the archive: not read")),
                }
            }
            Ok((_, _, _, size)) if size <= MAX_NESTED => {
                let mut bytes = Vec::new();
                let read = zip
                    .by_name(name)
                    .map_err(|e| e.to_string())
                    .and_then(|entry| entry.take(MAX_NESTED).read_to_end(&mut bytes).map_err(|e| e.to_string()));
                if let Err(e) = read {
                    walk.problems.push(format!("{name}{where_}: {e}"));
                    continue;
                }
                // What was inflated counts against the budget too.
                budget.bytes.set(budget.bytes.get().saturating_sub(bytes.len() as u64));
                read_level(Window::memory(bytes), &level.inside(name), walk);
            }
            // Deflated and large: inflated as it is read, front to back, never held.
            Ok((zip::CompressionMethod::Deflated, start, compressed, _)) => match window.sub(start, compressed) {
                Some(sub) => {
                    let raw = std::io::BufReader::new(Metered { inner: sub, budget });
                    let inflated = Metered { inner: flate2::bufread::DeflateDecoder::new(raw), budget };
                    let mut reader = std::io::BufReader::new(inflated);
                    stream_level(&mut reader, &level.inside(name), walk);
                }
                None => walk.problems.push(format!("{name}{where_}: its data lies outside the archive: not read")),
            },
            Ok((method, _, _, size)) => {
                walk.problems.push(format!("{name}{where_}: {size} bytes compressed with {method}: not read"))
            }
        }
    }
}

/// [`read_level`] of an archive that can only be read front to back (a large deflated
/// nested jar): coordinates from its entries as they come, and the archives inside it,
/// themselves streamed. Only the metadata entries are kept (each at most
/// [`MAX_METADATA`]); the rest is read past, within the work budget.
fn stream_level(reader: &mut dyn BufRead, level: &Level, walk: &mut Walk<'_>) {
    let (budget, where_, inner) = (walk.budget, level.where_(), &level.inner);
    let (mut poms, mut manifest) = (0, None);
    let mut stopped = false;
    let walked = super::java_nested::stream(reader, &mut |entry: StreamEntry<'_>| {
        if stopped {
            return;
        }
        let name = entry.name;
        if is_pom_properties(&name) || name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            let mut bytes = Vec::new();
            match entry.content.take(MAX_METADATA + 1).read_to_end(&mut bytes) {
                Ok(n) if n as u64 > MAX_METADATA => {
                    walk.problems.push(format!("{name}{where_}: larger than {MAX_METADATA} bytes; not read"))
                }
                Ok(_) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if is_pom_properties(&name) {
                        if let Some(c) = parse_pom_properties(&text, inner) {
                            walk.found.push(c);
                            poms += 1;
                        }
                    } else {
                        manifest = Some(text);
                    }
                }
                Err(e) => walk.problems.push(format!("{name}{where_}: {e}")),
            }
        } else if is_archive(&name) && level.depth < MAX_DEPTH {
            if !walk.take_archive(&where_) {
                stopped = true;
                return;
            }
            let mut nested = std::io::BufReader::new(entry.content);
            stream_level(&mut nested, &level.inside(&name), walk);
        }
    });
    if let Err(e) = walked {
        let e = if budget.bytes.get() == 0 {
            format!("budget: the {}-byte work budget is spent", budget.work)
        } else {
            e.to_string()
        };
        walk.problems.push(format!("{e}{where_}"));
    }
    if poms == 0
        && let Some(c) = without_pom(manifest.as_deref(), &level.file_name, inner)
    {
        walk.found.push(c);
    }
}

/// One text entry of a zip archive that is not a Java one (a zipped Python egg's
/// `EGG-INFO/PKG-INFO`), read through the same checks and within the same kind of work
/// budget as a Java archive; `Ok(None)` when the archive has no such entry.
pub(crate) fn zip_entry_text<R: Read + Seek>(
    mut reader: R,
    entry: &str,
    work: u64,
) -> Result<Option<String>, Malformed> {
    check_end_record(&mut reader)?;
    let budget = Budget { bytes: std::cell::Cell::new(work), archives: std::cell::Cell::new(0), work, nested: 0 };
    let mut zip = match zip::ZipArchive::new(Metered { inner: reader, budget: &budget }) {
        Ok(z) => z,
        Err(_) if budget.bytes.get() == 0 => {
            return Err(format!("budget: reading it spent the {work}-byte work budget: not read").into());
        }
        Err(e) => return Err(format!("not a readable zip archive: {e}").into()),
    };
    check_entries(&mut zip)?;
    if zip.index_for_name(entry).is_none() {
        return Ok(None);
    }
    entry_text(&mut zip, entry).map(Some)
}

fn is_pom_properties(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(parts.as_slice(), ["META-INF", "maven", _, _, "pom.properties"])
}

fn entry_text<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str) -> Result<String, Malformed> {
    let entry = zip.by_name(name).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    entry.take(MAX_METADATA + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_METADATA {
        return Err(format!("larger than {MAX_METADATA} bytes; not read").into());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `groupId`, `artifactId`, `version` of a pom.properties (Java properties, `#` comments).
pub fn parse_pom_properties(text: &str, inner: &str) -> Option<Coordinates> {
    let mut group = None;
    let mut artifact = None;
    let mut version = None;
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.starts_with('!')) {
        let Some((k, v)) = line.split_once(['=', ':']) else { continue };
        let v = v.trim().to_string();
        match k.trim() {
            "groupId" => group = Some(v),
            "artifactId" => artifact = Some(v),
            "version" => version = Some(v),
            _ => {}
        }
    }
    Some(Coordinates {
        group,
        artifact: artifact.filter(|a| !a.is_empty())?,
        version: version.filter(|v| !v.is_empty())?,
        license: None,
        inner: inner.to_string(),
    })
}

/// The main section's fields of a manifest (continuation lines start with a space).
fn manifest_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break; // the main section ends at the first blank line
        }
        if let Some(more) = line.strip_prefix(' ') {
            if let Some(last) = fields.last_mut() {
                last.1.push_str(more);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    fields
}

/// Coordinates from a manifest alone (the archive's name unknown).
pub fn parse_manifest(text: &str, inner: &str) -> Option<Coordinates> {
    without_pom(Some(text), "", inner)
}

/// A Maven artifactId or groupId can only be this: a human title (`XZ data compression`)
/// is not one, and no advisory would name it.
fn maven_word(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The groupId a reverse-domain name (an OSGi symbolic name, an automatic module name)
/// gives `artifact` when its last segment is the artifact: the rest of it
/// (`org.tukaani.xz` → `org.tukaani`), or all of it when the rest would be a bare top-level
/// domain (`org.hamcrest` → `org.hamcrest`). Anything else says nothing about the group.
fn group_from(name: &str, artifact: &str) -> Option<String> {
    let (prefix, last) = name.rsplit_once('.')?;
    if last != artifact || !maven_word(name) {
        return None;
    }
    Some(if prefix.contains('.') { prefix.to_string() } else { name.to_string() })
}

/// Coordinates of an archive without Maven metadata (no `pom.properties`), the way Syft
/// finds them, without inventing what cannot be known:
/// - artifactId and version from the file name (`xz-1.9.jar`) when it has that shape;
///   else the OSGi symbolic name, else an `Implementation-Title` that is a Maven word;
///   the version then from `Bundle-Version` or `Implementation-Version`;
/// - groupId from `Implementation-Vendor-Id`, else from the symbolic or automatic module
///   name when it ends with the artifactId; else none: the package URL then has no
///   namespace, which says the group is unknown (Syft repeats the artifactId there).
pub fn without_pom(manifest: Option<&str>, file_name: &str, inner: &str) -> Option<Coordinates> {
    let fields = manifest.map(manifest_fields).unwrap_or_default();
    let get = |k: &str| {
        fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    };
    let symbolic = get("Bundle-SymbolicName").map(|s| s.split(';').next().unwrap_or(&s).trim().to_string());
    let module = get("Automatic-Module-Name");
    let (artifact, version) = match split_file_name(file_name) {
        Some((a, v)) => (a, v),
        None => {
            // A file name without a version (`jrt-fs.jar`, Debian's `commons-io.jar`) is
            // still the artifact's name; else the symbolic name or a title.
            let stem = file_name.rsplit_once('.').map(|(s, _)| s.to_string()).filter(|s| maven_word(s));
            let artifact =
                stem.or_else(|| symbolic.clone()).or_else(|| get("Implementation-Title")).filter(|a| maven_word(a))?;
            (artifact, get("Bundle-Version").or_else(|| get("Implementation-Version"))?)
        }
    };
    let group = get("Implementation-Vendor-Id")
        .filter(|g| maven_word(g))
        .or_else(|| symbolic.iter().chain(module.iter()).find_map(|n| group_from(n, &artifact)));
    Some(Coordinates { group, artifact, version, license: get("Bundle-License"), inner: inner.to_string() })
}

/// Where Debian's Java packages lay out their jars as a Maven repository: links named
/// `<group path>/<artifact>/<version>/<artifact>-<version>.jar` to the jar in
/// `/usr/share/java`.
pub const DEBIAN_MAVEN_REPO: &str = "/usr/share/maven-repo";
/// Most links of the Maven repository remembered (a large image has a few thousand).
const MAX_REPO_LINKS: usize = 20_000;
/// Most path components looked at resolving all of them together (a real one takes a dozen
/// each; chains of long links would otherwise cost millions of calls).
const MAX_REPO_STEPS: usize = 1 << 20;

/// Notes a link of Debian's Maven repository (`path` inside the root): the coordinates its
/// path gives, for the jar it points to. Debian's jars mostly have no `pom.properties`;
/// this is where their group is known. Versions named `debian` are Debian's aliases.
pub fn note_repo_link(root: &Root, path: &Path, catalog: &mut Catalog) {
    let Ok(rest) = path.strip_prefix(DEBIAN_MAVEN_REPO) else { return };
    let parts: Vec<&str> = rest.iter().filter_map(|p| p.to_str()).collect();
    let [group @ .., artifact, version, file] = parts.as_slice() else { return };
    if group.is_empty()
        || *version == "debian"
        || *file != format!("{artifact}-{version}.jar")
        || !group.iter().chain([artifact, version]).all(|w| maven_word(w))
    {
        return;
    }
    if catalog.repo_links.len() >= MAX_REPO_LINKS || catalog.repo_steps >= MAX_REPO_STEPS {
        catalog.spent_once(crate::catalog::Limit::RepoLinks, CATALOGER, path, || {
            format!("budget: more than {MAX_REPO_LINKS} links or {MAX_REPO_STEPS} steps resolving them: the rest are not read")
        });
        return;
    }
    // The link's target inside the root; a link out of it resolves inside it.
    let mut steps = crate::rootfs::MAX_STEPS.min(MAX_REPO_STEPS - catalog.repo_steps);
    let budget = steps;
    let resolved = root.canonicalize_within(path, &mut steps);
    catalog.repo_steps += budget - steps;
    let Ok(target) = resolved else { return };
    catalog.repo_links.insert(target, (group.join("."), artifact.to_string(), version.to_string()));
}

/// After the walk: jars read without a group (no `pom.properties`) that Debian's Maven
/// repository links to take its coordinates. The walk follows no link, so the path it
/// found a jar at is already canonical, as the links' targets are.
pub fn apply_repo_links(catalog: &mut Catalog) {
    if catalog.repo_links.is_empty() {
        return;
    }
    let links = std::mem::take(&mut catalog.repo_links);
    for p in catalog.packages.iter_mut().filter(|p| p.kind == Ecosystem::Java && !p.name.contains(':')) {
        // The archive's own coordinates only, not those of one nested inside it.
        let [jar] = p.files.as_slice() else { continue };
        if p.found_at != *jar {
            continue;
        }
        let Some((group, artifact, version)) = links.get(jar) else { continue };
        p.name = format!("{group}:{artifact}");
        p.purl = purl::maven(Some(group), artifact, version);
        p.version = version.clone();
    }
}

/// `commons-io-2.11.0.jar` -> (`commons-io`, `2.11.0`): the name up to the first `-digit`.
fn split_file_name(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.rsplit_once('.').map(|(s, _)| s).unwrap_or(file_name);
    let split =
        stem.char_indices().find(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?.0;
    Some((stem[..split].to_string(), stem[split + 1..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pom_properties_and_manifests() {
        let c =
            parse_pom_properties("#Generated by Maven\ngroupId=org.slf4j\nartifactId=slf4j-api\nversion=1.7.32\n", "")
                .unwrap();
        assert_eq!(
            (c.group.as_deref(), c.artifact.as_str(), c.version.as_str()),
            (Some("org.slf4j"), "slf4j-api", "1.7.32")
        );
        assert!(parse_pom_properties("groupId=x\n", "").is_none());
        let m = "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.apache.commons.lang3;single\r\n ton:=true\r\nBundle-Version: 3.12.0\r\nBundle-License: https://www.apache.org/licenses/LICENSE-2.0.txt\r\n\r\nName: x\r\nBundle-Version: 9\r\n";
        let c = parse_manifest(m, "").unwrap();
        assert_eq!((c.artifact.as_str(), c.version.as_str()), ("org.apache.commons.lang3", "3.12.0"));
        assert_eq!(c.license.as_deref(), Some("https://www.apache.org/licenses/LICENSE-2.0.txt"));
        assert!(parse_manifest("Manifest-Version: 1.0\n", "").is_none());
        let f = without_pom(None, "commons-io-2.11.0.jar", "").unwrap();
        assert_eq!((f.artifact.as_str(), f.version.as_str()), ("commons-io", "2.11.0"));
        assert!(without_pom(None, "app.jar", "").is_none());
    }

    #[test]
    fn without_maven_metadata_names_come_from_the_file_and_groups_are_not_invented() {
        let coords = |c: Coordinates| (c.group, c.artifact, c.version);
        // libxz-java's jar: a title with spaces, a symbolic name that ends with the artifact.
        let xz = "Implementation-Title: XZ data compression\nImplementation-Version: 1.9\n\
                  Bundle-SymbolicName: org.tukaani.xz\nBundle-Version: 1.9\n";
        assert_eq!(
            coords(without_pom(Some(xz), "xz-1.9.jar", "").unwrap()),
            (Some("org.tukaani".into()), "xz".into(), "1.9".into())
        );
        // The title alone is no artifact id; a file name without a version is.
        let titled = "Implementation-Title: XZ data compression\nImplementation-Version: 1.9\n";
        assert!(without_pom(Some(titled), "", "").is_none());
        assert_eq!(coords(without_pom(Some(titled), "xz.jar", "").unwrap()), (None, "xz".into(), "1.9".into()));
        // libhamcrest-java's: the symbolic name is group and artifact's last segment.
        let hamcrest = "Bundle-SymbolicName: org.hamcrest\nAutomatic-Module-Name: org.hamcrest\nBundle-Version: 2.2\n";
        assert_eq!(
            coords(without_pom(Some(hamcrest), "hamcrest-2.2.jar", "").unwrap()),
            (Some("org.hamcrest".into()), "hamcrest".into(), "2.2".into())
        );
        // Nothing says the group: none.
        assert_eq!(
            coords(without_pom(Some("Manifest-Version: 1.0\n"), "xml-apis-1.4.01.jar", "").unwrap()),
            (None, "xml-apis".into(), "1.4.01".into())
        );
        // A vendor id is taken only if it could be a group id.
        let vendor = "Implementation-Vendor-Id: Sun Microsystems Inc.\n";
        assert_eq!(without_pom(Some(vendor), "activation-1.1.1.jar", "").unwrap().group, None);
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        read_archive(b"PK\x03\x04 not really".to_vec(), "x.jar".into(), &mut found, &mut problems);
        assert!(found.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
