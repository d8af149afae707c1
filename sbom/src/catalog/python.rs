//! Python distributions: `*.dist-info` (METADATA, RECORD), `*.egg-info` directories
//! (PKG-INFO, installed-files.txt) and files (distutils), eggs unzipped (`EGG-INFO`) and
//! zipped, and distributions vendored without metadata but pinned in a `vendor.txt` (pip).

use crate::catalog::Malformed;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, read_limited};
use crate::model::{Ecosystem, Package};
use crate::purl;
use crate::rootfs::{EntryKind, Root, normalize};

const CATALOGER: &str = "python";
const MAX_METADATA: u64 = 16 << 20;

/// Name, version and licences from a METADATA / PKG-INFO file (RFC 822 headers).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `Name`
    pub name: String,
    /// `Version`
    pub version: String,
    /// `License-Expression`, `License`, or `License ::` classifiers.
    pub licenses: Vec<String>,
}

/// Parses the header block of METADATA or PKG-INFO.
pub fn parse_metadata(text: &str) -> Result<Metadata, Malformed> {
    let mut m = Metadata::default();
    let mut expression = None;
    let mut license = None;
    let mut classifiers = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (long description) follows
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => m.name = value.to_string(),
            "Version" => m.version = value.to_string(),
            "License-Expression" => expression = Some(value.to_string()),
            "License" if !value.is_empty() && value != "UNKNOWN" && !value.contains('\n') => {
                license = Some(value.to_string())
            }
            "Classifier" => {
                if let Some(l) = value.strip_prefix("License :: ") {
                    classifiers.push(l.rsplit(" :: ").next().unwrap_or(l).to_string());
                }
            }
            _ => {}
        }
    }
    if m.name.is_empty() || m.version.is_empty() {
        return Err("no Name or no Version header".into());
    }
    m.licenses = match (expression, license) {
        (Some(e), _) => vec![e],
        (None, Some(l)) if l.len() <= 200 => vec![l],
        _ => classifiers,
    };
    Ok(m)
}

/// The paths of a RECORD file (CSV: path,hash,size), relative to `base`, made absolute.
pub fn parse_record(text: &str, base: &Path) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let path = if let Some(rest) = line.strip_prefix('"') {
                rest.split_once('"').map(|(p, _)| p.replace("\"\"", "\""))?
            } else {
                line.split(',').next()?.to_string()
            };
            (!path.is_empty()).then(|| normalize(&base.join(path)))
        })
        .collect()
}

/// Catalogs one `*.dist-info` or `*.egg-info` directory (path inside the root).
pub fn catalog_dir(root: &Root, dir: &Path, catalog: &mut Catalog) {
    let dist_info = dir.extension().is_some_and(|e| e == "dist-info");
    let meta_path = dir.join(if dist_info { "METADATA" } else { "PKG-INFO" });
    let Some(metadata) = metadata_at(root, &meta_path, catalog) else { return };
    let site = dir.parent().unwrap_or(Path::new("/"));
    let files = if dist_info {
        let record = dir.join("RECORD");
        match read_limited(root, &record, MAX_METADATA) {
            Ok(Some(text)) => parse_record(&text, site),
            Ok(None) => Vec::new(),
            Err(e) => {
                catalog.warn(CATALOGER, &record, e);
                Vec::new()
            }
        }
    } else {
        let list = dir.join("installed-files.txt");
        match read_limited(root, &list, MAX_METADATA) {
            Ok(Some(text)) => text.lines().filter(|l| !l.is_empty()).map(|l| normalize(&dir.join(l))).collect(),
            _ => Vec::new(),
        }
    };
    add(catalog, meta_path, metadata, files);
}

/// Catalogs an unzipped egg from its `EGG-INFO` directory (path inside the root, below a
/// `*.egg` directory): the egg directory is what it owns, whole.
pub fn catalog_egg_dir(root: &Root, egg_info: &Path, catalog: &mut Catalog) {
    let meta_path = egg_info.join("PKG-INFO");
    let Some(metadata) = metadata_at(root, &meta_path, catalog) else { return };
    let egg = egg_info.parent().unwrap_or(Path::new("/")).to_path_buf();
    add(catalog, meta_path, metadata, vec![egg]);
}

/// Catalogs a `*.egg-info` file: distutils writes the PKG-INFO headers alone, with no list
/// of the files installed, so the package owns none.
pub fn catalog_egg_info_file(root: &Root, path: &Path, catalog: &mut Catalog) {
    if let Some(metadata) = metadata_at(root, path, catalog) {
        add(catalog, path.to_path_buf(), metadata, Vec::new());
    }
}

/// Catalogs a zipped egg (`*.egg`, imported by Python from the zip itself): its
/// `EGG-INFO/PKG-INFO`, read with the Java archives' checks and work budget. The egg file
/// is what it owns.
pub fn catalog_zipped_egg(root: &Root, path: &Path, catalog: &mut Catalog) {
    let file = match root.open_file(path) {
        Ok(f) => f,
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    let text = match crate::catalog::java::zip_entry_text(
        std::io::BufReader::new(file),
        "EGG-INFO/PKG-INFO",
        catalog.budgets.archive_work,
    ) {
        Ok(Some(text)) => text,
        // A zip without egg metadata is some other file named .egg.
        Ok(None) => return,
        Err(e) if e.is_over_budget() => return catalog.over_budget(CATALOGER, path, e),
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    let meta_path = path.join("EGG-INFO/PKG-INFO");
    match parse_metadata(&text) {
        Ok(metadata) => {
            add(catalog, meta_path, metadata, vec![path.to_path_buf()]);
        }
        Err(e) => catalog.warn(CATALOGER, &meta_path, e),
    }
}

/// Largest `vendor.txt` read (pip's is under 1 KiB).
const MAX_VENDOR_LIST: u64 = 64 << 10;

/// Catalogs the distributions a package vendors without their metadata, as pip does: its
/// `_vendor/vendor.txt` pins each (`name==version`), and the code sits beside it as
/// `_vendor/<module>` or `_vendor/<module>.py`. Only pins whose module is there are listed
/// (pip pins setuptools but ships only its `pkg_resources`); each owns its module.
pub fn catalog_vendor_txt(root: &Root, path: &Path, catalog: &mut Catalog) {
    let text = match read_limited(root, path, MAX_VENDOR_LIST) {
        Ok(Some(text)) => text,
        Ok(None) => return,
        Err(e) => return catalog.warn(CATALOGER, path, e),
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    for (name, version) in parse_vendor_list(&text) {
        let module = vendored_module(&name);
        let owned = [dir.join(&module), dir.join(format!("{module}.py"))]
            .into_iter()
            .find(|p| matches!(root.kind(p), Some(EntryKind::Dir | EntryKind::File)));
        let Some(owned) = owned else { continue };
        let metadata = Metadata { name, version, licenses: Vec::new() };
        if !add(catalog, path.to_path_buf(), metadata, vec![owned]) {
            return;
        }
    }
}

/// `name==version` pins of a vendor list; comments, blank lines and anything else skipped.
pub fn parse_vendor_list(text: &str) -> Vec<(String, String)> {
    // PEP 508 names (alphanumeric at both ends), versions of the same characters.
    let word = |w: &str| {
        w.len() <= 200
            && w.starts_with(|c: char| c.is_ascii_alphanumeric())
            && w.ends_with(|c: char| c.is_ascii_alphanumeric())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || "._-+!".contains(c))
    };
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default().trim();
            let (name, version) = line.split_once("==")?;
            let (name, version) = (name.trim(), version.split(';').next().unwrap_or_default().trim());
            (word(name) && word(version)).then(|| (name.to_string(), version.to_string()))
        })
        .collect()
}

/// The import name of a vendored distribution: lower case, `-` as `_` (`CacheControl` is
/// `cachecontrol`, `pyproject-hooks` is `pyproject_hooks`).
fn vendored_module(name: &str) -> String {
    name.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// Reads and parses a METADATA / PKG-INFO file; a problem is a warning and `None`.
fn metadata_at(root: &Root, meta_path: &Path, catalog: &mut Catalog) -> Option<Metadata> {
    match read_limited(root, meta_path, MAX_METADATA) {
        Ok(Some(text)) => match parse_metadata(&text) {
            Ok(m) => Some(m),
            Err(e) => {
                catalog.warn(CATALOGER, meta_path, e);
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            catalog.warn(CATALOGER, meta_path, e);
            None
        }
    }
}

/// Adds one distribution found at `found_at`; false past the package budget.
fn add(catalog: &mut Catalog, found_at: PathBuf, metadata: Metadata, files: Vec<PathBuf>) -> bool {
    let at = found_at.clone();
    catalog.add(
        CATALOGER,
        &at,
        Package {
            purl: purl::pypi(&metadata.name, &metadata.version),
            name: metadata.name,
            version: metadata.version,
            kind: Ecosystem::Python,
            source: None,
            licenses: metadata.licenses,
            found_at,
            files,
            version_from_commit: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_headers_only() {
        let m = parse_metadata(
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\nLicense: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n\nName: not-this\n",
        )
        .unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("requests", "2.25.0"));
        assert_eq!(m.licenses, vec!["Apache 2.0".to_string()]);
        let m = parse_metadata("Name: x\nVersion: 1\nClassifier: License :: OSI Approved :: MIT License\n").unwrap();
        assert_eq!(m.licenses, vec!["MIT License".to_string()]);
        assert!(parse_metadata("Version: 1\n").is_err());
    }

    #[test]
    fn vendor_lists_are_pins_of_names() {
        let pins = parse_vendor_list(
            "CacheControl==0.14.0  # Make sure to update the license in pyproject.toml for this.\n\
             requests==2.32.3\n    certifi==2024.8.30\nsetuptools==70.3.0 ; python_version < '3.12'\n\
             -e git+https://x/y.git#egg=z\nnot a pin\n..==1\n../x==1\nname==\n",
        );
        let names: Vec<(&str, &str)> = pins.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            names,
            [("CacheControl", "0.14.0"), ("requests", "2.32.3"), ("certifi", "2024.8.30"), ("setuptools", "70.3.0")]
        );
        assert_eq!(vendored_module("CacheControl"), "cachecontrol");
        assert_eq!(vendored_module("pyproject-hooks"), "pyproject_hooks");
    }

    #[test]
    fn record_paths_are_absolute_and_normalised() {
        let base = Path::new("/usr/lib/python3/dist-packages");
        let files = parse_record(
            "requests/__init__.py,sha256=abc,123\n\"odd,name.py\",,\n../../../bin/tool,,\nrequests-2.25.0.dist-info/RECORD,,\n",
            base,
        );
        assert_eq!(files[0], Path::new("/usr/lib/python3/dist-packages/requests/__init__.py"));
        assert_eq!(files[1], Path::new("/usr/lib/python3/dist-packages/odd,name.py"));
        assert_eq!(files[2], Path::new("/usr/bin/tool"));
        assert_eq!(files.len(), 4);
    }
}
