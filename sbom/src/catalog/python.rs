//! Python distributions: `*.dist-info` (METADATA, RECORD) and `*.egg-info` (PKG-INFO,
//! installed-files.txt).

use crate::catalog::Malformed;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, read_limited};
use crate::model::{Ecosystem, Package};
use crate::purl;
use crate::rootfs::{Root, normalize};

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
    let metadata = match read_limited(root, &meta_path, MAX_METADATA) {
        Ok(Some(text)) => match parse_metadata(&text) {
            Ok(m) => m,
            Err(e) => return catalog.warn(CATALOGER, &meta_path, e),
        },
        Ok(None) => return,
        Err(e) => return catalog.warn(CATALOGER, &meta_path, e),
    };
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
    let at = meta_path.clone();
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
            found_at: meta_path,
            files,
        },
    );
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
