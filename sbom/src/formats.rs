//! Standard SBOM documents: CycloneDX 1.6 JSON and SPDX 2.3 JSON.
//!
//! The native JSON (the [`Sbom`] itself) keeps every file list; these keep identity (name,
//! version, purl, licences, source package) and say where each package was found.

use serde_json::{Value, json};

use std::path::PathBuf;

use crate::index::RuntimeSbom;
use crate::model::{Package, Sbom};

/// A package to write, with the opened files that put it in SBOM' when writing one.
type Entry<'a> = (&'a Package, Option<&'a [PathBuf]>);

fn entries(sbom: &Sbom) -> Vec<Entry<'_>> {
    sbom.packages.iter().map(|p| (p, None)).collect()
}

fn runtime_entries(f: &RuntimeSbom) -> Vec<Entry<'_>> {
    f.packages.iter().map(|r| (&r.package, Some(r.evidence.as_slice()))).collect()
}

const TOOL: &str = "sniffer";
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

fn bom_ref(i: usize, p: &Package) -> String {
    format!("{}#{i}", p.purl)
}

/// CycloneDX 1.6 JSON.
pub fn cyclonedx(sbom: &Sbom) -> Value {
    cyclonedx_doc(sbom, &entries(sbom), None)
}

/// CycloneDX 1.6 JSON of SBOM': each component carries the files the workload opened as
/// `evidence.occurrences`; `sniffer:complete` says whether events were lost.
pub fn cyclonedx_runtime(sbom: &Sbom, runtime: &RuntimeSbom) -> Value {
    cyclonedx_doc(sbom, &runtime_entries(runtime), Some(runtime))
}

fn cyclonedx_doc(sbom: &Sbom, packages: &[Entry<'_>], runtime: Option<&RuntimeSbom>) -> Value {
    let components: Vec<Value> = packages
        .iter()
        .enumerate()
        .map(|(i, (p, evidence))| {
            let mut c = json!({
                "type": "library",
                "bom-ref": bom_ref(i, p),
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "properties": properties(p),
            });
            if !p.licenses.is_empty() {
                // Free text as recorded: `name`, not `id` (an SPDX id would have to be valid).
                c["licenses"] = p.licenses.iter().map(|l| json!({ "license": { "name": l } })).collect();
            }
            if let Some(files) = evidence {
                let occurrences: Vec<Value> =
                    files.iter().map(|f| json!({ "location": f.display().to_string() })).collect();
                c["evidence"] = json!({ "occurrences": occurrences });
            }
            c
        })
        .collect();
    let mut metadata = json!({
        "timestamp": crate::time::Timestamp::now(),
        "tools": { "components": [{ "type": "application", "name": TOOL, "version": TOOL_VERSION }] },
        "component": { "type": "container", "bom-ref": "root", "name": sbom.root.display().to_string() },
    });
    let mut props = Vec::new();
    if let Some(d) = &sbom.distro {
        props.push(json!({ "name": "sniffer:distro", "value": distro_name(d) }));
    }
    if let Some(f) = runtime {
        props.push(json!({ "name": "sniffer:complete", "value": f.complete.to_string() }));
        props.push(json!({ "name": "sniffer:unmatched-paths", "value": f.unmatched.to_string() }));
        props.extend(f.warnings.iter().map(|w| json!({ "name": "sniffer:warning", "value": w })));
    }
    if !props.is_empty() {
        metadata["properties"] = json!(props);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": metadata,
        "components": components,
    })
}

fn distro_name(d: &crate::model::Distro) -> String {
    match &d.version_id {
        Some(v) => format!("{}:{v}", d.id),
        None => d.id.clone(),
    }
}

fn properties(p: &Package) -> Vec<Value> {
    let mut props = vec![
        json!({ "name": "sniffer:kind", "value": p.kind.as_str() }),
        json!({ "name": "sniffer:found-at", "value": p.found_at.display().to_string() }),
    ];
    if let Some(s) = &p.source {
        props.push(json!({ "name": "sniffer:source-name", "value": s.name }));
        props.push(json!({ "name": "sniffer:source-version", "value": s.version }));
    }
    // A jar whose group nothing names: said here, rather than a group made up.
    if p.kind == crate::model::Ecosystem::Java && !p.name.contains(':') {
        props.push(json!({ "name": "sniffer:maven-group", "value": MAVEN_GROUP_UNKNOWN }));
    }
    if p.version_from_commit {
        props.push(json!({ "name": "sniffer:version-from-commit", "value": "true" }));
    }
    props
}

/// The `sniffer:maven-group` property of a Java component whose archive names no group.
pub const MAVEN_GROUP_UNKNOWN: &str =
    "unknown: no pom.properties, manifest field or Debian Maven repository entry names it";

/// SPDX 2.3 JSON.
pub fn spdx(sbom: &Sbom) -> Value {
    spdx_doc(sbom, &entries(sbom))
}

/// SPDX 2.3 JSON of SBOM': each package carries the opened files as an annotation whose
/// comment starts with [`SPDX_EVIDENCE`].
pub fn spdx_runtime(sbom: &Sbom, runtime: &RuntimeSbom) -> Value {
    spdx_doc(sbom, &runtime_entries(runtime))
}

/// How SPDX SBOM' annotations start; the rest of the comment is one opened path per line.
pub const SPDX_EVIDENCE: &str = "sniffer evidence: opened by the workload:";

fn spdx_doc(sbom: &Sbom, packages: &[Entry<'_>]) -> Value {
    let created = crate::time::Timestamp::now();
    let packages_json: Vec<Value> = packages
        .iter()
        .enumerate()
        .map(|(i, (p, evidence))| {
            let mut pkg = json!({
                "SPDXID": format!("SPDXRef-Package-{i}"),
                "name": p.name,
                "versionInfo": p.version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "sourceInfo": format!("{} package found at {}", p.kind.as_str(), p.found_at.display()),
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": p.purl,
                }],
            });
            if !p.licenses.is_empty() {
                // Recorded licences are free text, not always valid SPDX expressions.
                pkg["licenseComments"] = json!(format!("as recorded by the package: {}", p.licenses.join("; ")));
            }
            if let Some(files) = evidence {
                let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                pkg["annotations"] = json!([{
                    "annotationType": "OTHER",
                    "annotator": format!("Tool: {TOOL}-{TOOL_VERSION}"),
                    "annotationDate": created,
                    "comment": format!("{SPDX_EVIDENCE}\n{}", list.join("\n")),
                }]);
            }
            pkg
        })
        .collect();
    let relationships: Vec<Value> = (0..packages.len())
        .map(|i| {
            json!({
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": format!("SPDXRef-Package-{i}"),
            })
        })
        .collect();
    let name = sbom.root.display().to_string();
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://sniffer.dev/spdx/{}", uuid::Uuid::new_v4()),
        "creationInfo": { "created": created, "creators": [format!("Tool: {TOOL}-{TOOL_VERSION}")] },
        "packages": packages_json,
        "relationships": relationships,
    })
}
