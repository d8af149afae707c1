//! npm packages: every `node_modules/<name>/package.json` and
//! `node_modules/@scope/<name>/package.json`, nested ones included, and the project they
//! are installed for (a `package.json` beside `node_modules/` or `package-lock.json`, as
//! `npm ls` shows it at the top). A package owns its directory; the deepest one wins, so
//! a project owns its own code and not its dependencies.

use crate::catalog::Malformed;
use std::path::Path;

use serde::Deserialize;

use crate::catalog::{Catalog, read_limited};
use crate::model::{Ecosystem, Package};
use crate::purl;
use crate::rootfs::{EntryKind, Root};

const CATALOGER: &str = "npm";
const MAX_MANIFEST: u64 = 4 << 20;

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
    license: Option<License>,
    licenses: Option<Vec<License>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum License {
    Spdx(String),
    Object { r#type: Option<String> },
}

impl License {
    fn text(self) -> Option<String> {
        match self {
            License::Spdx(s) => Some(s),
            License::Object { r#type } => r#type,
        }
    }
}

/// Is this `package.json` the manifest of an installed package (directly under
/// `node_modules/`, or under `node_modules/@scope/`)?
pub fn is_package_manifest(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let Some(parent) = dir.parent() else {
        return false;
    };
    let parent_name = parent.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    if parent_name == "node_modules" {
        return true;
    }
    parent_name.starts_with('@') && parent.parent().and_then(Path::file_name).is_some_and(|n| n == "node_modules")
}

/// Is this `package.json` the manifest of a project with installed dependencies? Outside
/// any `node_modules/`, beside a `node_modules/` directory or a `package-lock.json`.
/// `sibling` says what a sibling of the manifest is, without following it (the walk looks
/// from the directory's own descriptor, so nothing outside the root is touched).
pub fn is_project_manifest(path: &Path, sibling: impl Fn(&str) -> Option<EntryKind>) -> bool {
    if path.components().any(|c| c.as_os_str() == "node_modules") {
        return false;
    }
    sibling("node_modules") == Some(EntryKind::Dir) || sibling("package-lock.json") == Some(EntryKind::File)
}

/// Catalogs a project's `package.json`; one without a name or version (an unpublished
/// app need not have them) is skipped without a warning.
pub fn catalog_project(root: &Root, manifest: &Path, catalog: &mut Catalog) {
    match read_limited(root, manifest, MAX_MANIFEST) {
        Ok(Some(text)) => {
            if let Ok(parsed) = parse_manifest(&text) {
                push(manifest, parsed, catalog);
            }
        }
        Ok(None) => {}
        Err(e) => catalog.warn(CATALOGER, manifest, e),
    }
}

/// Parses a package.json into (name, version, licences).
pub fn parse_manifest(text: &str) -> Result<(String, String, Vec<String>), Malformed> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| format!("not valid package.json: {e}"))?;
    let (Some(name), Some(version)) = (m.name, m.version) else {
        return Err("no name or no version".into());
    };
    let mut licenses: Vec<String> = m.license.and_then(License::text).into_iter().collect();
    licenses.extend(m.licenses.unwrap_or_default().into_iter().filter_map(License::text));
    Ok((name, version, licenses))
}

/// Catalogs one installed package's `package.json` (path inside the root).
pub fn catalog_manifest(root: &Root, manifest: &Path, catalog: &mut Catalog) {
    let parsed = match read_limited(root, manifest, MAX_MANIFEST) {
        Ok(Some(text)) => match parse_manifest(&text) {
            Ok(parsed) => parsed,
            Err(e) => return catalog.warn(CATALOGER, manifest, e),
        },
        Ok(None) => return,
        Err(e) => return catalog.warn(CATALOGER, manifest, e),
    };
    push(manifest, parsed, catalog);
}

/// The package of a parsed manifest; it owns the manifest's directory.
fn push(manifest: &Path, (name, version, licenses): (String, String, Vec<String>), catalog: &mut Catalog) {
    let dir = manifest.parent().unwrap_or(Path::new("/")).to_path_buf();
    catalog.add(
        CATALOGER,
        manifest,
        Package {
            purl: purl::npm(&name, &version),
            name,
            version,
            kind: Ecosystem::Npm,
            source: None,
            licenses,
            found_at: manifest.to_path_buf(),
            files: vec![dir],
            version_from_commit: false,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_installed_package_manifests() {
        assert!(is_package_manifest(Path::new("/app/node_modules/lodash/package.json")));
        assert!(is_package_manifest(Path::new("/app/node_modules/@babel/core/package.json")));
        assert!(is_package_manifest(Path::new("/app/node_modules/a/node_modules/b/package.json")));
        assert!(!is_package_manifest(Path::new("/app/package.json")));
        assert!(!is_package_manifest(Path::new("/app/node_modules/lodash/fp/package.json")));
    }

    #[test]
    fn parses_manifests_and_rejects_garbage() {
        let (n, v, l) = parse_manifest(r#"{"name":"lodash","version":"4.17.15","license":"MIT"}"#).unwrap();
        assert_eq!((n.as_str(), v.as_str(), l), ("lodash", "4.17.15", vec!["MIT".to_string()]));
        let (_, _, l) = parse_manifest(r#"{"name":"x","version":"1","licenses":[{"type":"BSD"}]}"#).unwrap();
        assert_eq!(l, vec!["BSD".to_string()]);
        assert!(parse_manifest("{not json").is_err());
        assert!(parse_manifest(r#"{"name":"x"}"#).is_err());
    }
}
