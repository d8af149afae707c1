//! Java archives (`.jar`, `.war`, `.ear`, Jenkins' `.jpi`/`.hpi`): Maven coordinates from
//! every `META-INF/maven/<group>/<artifact>/pom.properties` inside, else the manifest's
//! title and version; archives nested inside (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`,
//! shaded jars) are read too, in memory, a few levels deep. Every package found owns the
//! outermost archive: that is the file the JVM opens.

use std::collections::BTreeSet;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::model::{Kind, Package};
use crate::purl;
use crate::rootfs::Root;

const CATALOGER: &str = "java";
/// Largest metadata entry (pom.properties, MANIFEST.MF) read.
const MAX_METADATA: u64 = 1 << 20;
/// Largest nested archive read into memory.
const MAX_NESTED: u64 = 256 << 20;
/// How deep archives inside archives are followed.
const MAX_DEPTH: usize = 3;

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
    let mut found = Vec::new();
    let mut problems = Vec::new();
    read_archive(file, path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), String::new(), 0, &mut found, &mut problems);
    for p in problems {
        catalog.warn(CATALOGER, path, p);
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
        catalog.packages.push(Package {
            purl: purl::maven(c.group.as_deref(), &c.artifact, &c.version),
            name,
            version: c.version,
            kind: Kind::Java,
            source: None,
            licenses: c.license.into_iter().collect(),
            found_at: PathBuf::from(format!("{}{}", path.display(), c.inner)),
            files: vec![path.to_path_buf()],
        });
    }
}

/// Reads one archive (any `Read + Seek`): its coordinates, then the archives inside it.
pub fn read_archive<R: Read + Seek>(
    reader: R,
    file_name: String,
    inner: String,
    depth: usize,
    found: &mut Vec<Coordinates>,
    problems: &mut Vec<String>,
) {
    let where_ = if inner.is_empty() { String::new() } else { format!(" (in {inner})") };
    let mut zip = match zip::ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => return problems.push(format!("not a readable Java archive{where_}: {e}")),
    };
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let mut poms = 0;
    for name in names.iter().filter(|n| is_pom_properties(n)) {
        match entry_text(&mut zip, name) {
            Ok(text) => {
                if let Some(c) = parse_pom_properties(&text, &inner) {
                    found.push(c);
                    poms += 1;
                }
            }
            Err(e) => problems.push(format!("{name}{where_}: {e}")),
        }
    }
    if poms == 0 {
        let manifest = names.iter().find(|n| n.eq_ignore_ascii_case("META-INF/MANIFEST.MF")).cloned();
        let from_manifest = match manifest.map(|m| entry_text(&mut zip, &m)) {
            Some(Ok(text)) => parse_manifest(&text, &inner),
            Some(Err(e)) => {
                problems.push(format!("META-INF/MANIFEST.MF{where_}: {e}"));
                None
            }
            None => None,
        };
        if let Some(c) = from_manifest.or_else(|| from_file_name(&file_name, &inner)) {
            found.push(c);
        }
    }
    if depth >= MAX_DEPTH {
        return;
    }
    for name in names.iter().filter(|n| is_archive(n)) {
        let mut bytes = Vec::new();
        let read = zip.by_name(name).map_err(|e| e.to_string()).and_then(|entry| {
            if entry.size() > MAX_NESTED {
                return Err(format!("{} bytes; not read", entry.size()));
            }
            entry.take(MAX_NESTED).read_to_end(&mut bytes).map_err(|e| e.to_string())
        });
        if let Err(e) = read {
            problems.push(format!("{name}{where_}: {e}"));
            continue;
        }
        let leaf = name.rsplit('/').next().unwrap_or(name).to_string();
        read_archive(std::io::Cursor::new(bytes), leaf, format!("{inner}!/{name}"), depth + 1, found, problems);
    }
}

fn is_pom_properties(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(parts.as_slice(), ["META-INF", "maven", _, _, "pom.properties"])
}

fn entry_text<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str) -> Result<String, String> {
    let entry = zip.by_name(name).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    entry.take(MAX_METADATA + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_METADATA {
        return Err(format!("larger than {MAX_METADATA} bytes; not read"));
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
    Some(Coordinates { group, artifact: artifact.filter(|a| !a.is_empty())?, version: version.filter(|v| !v.is_empty())?, license: None, inner: inner.to_string() })
}

/// Title and version from a manifest's main section (continuation lines start with a space).
pub fn parse_manifest(text: &str, inner: &str) -> Option<Coordinates> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
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
    let get = |k: &str| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    // OSGi bundles name themselves precisely; Implementation-* is the JAR spec's.
    let artifact = get("Bundle-SymbolicName").map(|s| s.split(';').next().unwrap_or(&s).trim().to_string()).or_else(|| get("Implementation-Title"))?;
    let version = get("Bundle-Version").or_else(|| get("Implementation-Version"))?;
    Some(Coordinates {
        group: get("Implementation-Vendor-Id"),
        artifact,
        version,
        license: get("Bundle-License"),
        inner: inner.to_string(),
    })
}

/// `commons-io-2.11.0.jar` -> (`commons-io`, `2.11.0`): the name up to the first `-digit`.
fn from_file_name(file_name: &str, inner: &str) -> Option<Coordinates> {
    let stem = file_name.rsplit_once('.').map(|(s, _)| s).unwrap_or(file_name);
    let split = stem.char_indices().find(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?.0;
    Some(Coordinates { group: None, artifact: stem[..split].to_string(), version: stem[split + 1..].to_string(), license: None, inner: inner.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pom_properties_and_manifests() {
        let c = parse_pom_properties("#Generated by Maven\ngroupId=org.slf4j\nartifactId=slf4j-api\nversion=1.7.32\n", "").unwrap();
        assert_eq!((c.group.as_deref(), c.artifact.as_str(), c.version.as_str()), (Some("org.slf4j"), "slf4j-api", "1.7.32"));
        assert!(parse_pom_properties("groupId=x\n", "").is_none());
        let m = "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.apache.commons.lang3;single\r\n ton:=true\r\nBundle-Version: 3.12.0\r\nBundle-License: https://www.apache.org/licenses/LICENSE-2.0.txt\r\n\r\nName: x\r\nBundle-Version: 9\r\n";
        let c = parse_manifest(m, "").unwrap();
        assert_eq!((c.artifact.as_str(), c.version.as_str()), ("org.apache.commons.lang3", "3.12.0"));
        assert_eq!(c.license.as_deref(), Some("https://www.apache.org/licenses/LICENSE-2.0.txt"));
        assert!(parse_manifest("Manifest-Version: 1.0\n", "").is_none());
        let f = from_file_name("commons-io-2.11.0.jar", "").unwrap();
        assert_eq!((f.artifact.as_str(), f.version.as_str()), ("commons-io", "2.11.0"));
        assert!(from_file_name("app.jar", "").is_none());
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        read_archive(std::io::Cursor::new(b"PK\x03\x04 not really".to_vec()), "x.jar".into(), String::new(), 0, &mut found, &mut problems);
        assert!(found.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
