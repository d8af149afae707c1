//! Standard SBOM documents: CycloneDX 1.6 JSON and SPDX 2.3 JSON.
//!
//! The native JSON (the [`Sbom`] itself) keeps every file list; these keep identity (name,
//! version, purl, licences, source package) and say where each package was found.

use serde_json::{Value, json};

use crate::model::{Package, Sbom};

const TOOL: &str = "sniffer";
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn bom_ref(i: usize, p: &Package) -> String {
    format!("{}#{i}", p.purl)
}

/// CycloneDX 1.6 JSON.
pub fn cyclonedx(sbom: &Sbom) -> Value {
    let components: Vec<Value> = sbom
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
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
            c
        })
        .collect();
    let mut metadata = json!({
        "timestamp": now(),
        "tools": { "components": [{ "type": "application", "name": TOOL, "version": TOOL_VERSION }] },
        "component": { "type": "container", "bom-ref": "root", "name": sbom.root.display().to_string() },
    });
    if let Some(d) = &sbom.distro {
        metadata["properties"] = json!([{ "name": "sniffer:distro", "value": distro_name(d) }]);
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
    props
}

/// SPDX 2.3 JSON.
pub fn spdx(sbom: &Sbom) -> Value {
    let packages: Vec<Value> = sbom
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
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
            pkg
        })
        .collect();
    let relationships: Vec<Value> = (0..sbom.packages.len())
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
        "creationInfo": { "created": now(), "creators": [format!("Tool: {TOOL}-{TOOL_VERSION}")] },
        "packages": packages,
        "relationships": relationships,
    })
}
