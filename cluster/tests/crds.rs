//! The committed CRDs are the ones the types generate: a change to the types without
//! `cargo xtask crds` fails here.

mod common;

#[test]
fn committed_crds_match_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds/sniffer.dev.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    let generated = cluster::resources::crds_yaml().unwrap();
    assert!(committed == generated, "{} is stale: run `cargo xtask crds`", path.display());
    // Four kinds, each with its printer columns and a schema.
    for kind in ["ImageSbom", "RuntimeSbom", "VulnerabilityReport", "ClusterVulnerabilityReport"] {
        assert!(generated.contains(&format!("kind: {kind}\n")), "{kind}");
    }
    assert_eq!(generated.matches("openAPIV3Schema").count(), 4);
}

/// Objects the agent writes, checked against the CRDs' own schemas by the `jsonschema`
/// validator (the API server checks the same `openAPIV3Schema`).
#[test]
fn objects_the_agent_writes_validate_against_the_crd_schemas() {
    let w = common::workload("shop", &coordinator::ids::Digest::from("sha256:ab"));
    let sbom = sbom::scan(&testkit::fixtures::bookworm_root()).unwrap();
    let finding: vuln::Finding = serde_json::from_value(serde_json::json!({
        "id": "GHSA-j8r2-6x86-q33q", "aliases": ["CVE-2023-32681"], "severity": {"rating": "medium", "score": 6.1},
        "package": {"name": "requests", "version": "2.25.0", "purl": "pkg:pypi/requests@2.25.0", "ecosystem": "PyPI"},
        "fixed": ["2.31.0"], "relevant": true, "evidence": ["/usr/lib/python3/dist-packages/requests/__init__.py"],
        "reachability": {"state": "opened", "why": "a file of the package was opened or executed"}
    }))
    .unwrap();
    let called: vuln::Finding = serde_json::from_value(serde_json::json!({
        "id": "GO-2024-3106", "aliases": ["CVE-2024-34156"], "severity": {"rating": "unknown"},
        "package": {"name": "stdlib", "version": "1.19.8", "purl": "pkg:golang/stdlib@1.19.8", "ecosystem": "Go"},
        "fixed": ["1.22.7"], "relevant": true, "evidence": ["/usr/local/bin/app"],
        "reachability": {"state": "called", "why": "a vulnerable function was called", "window_seconds": 30,
                         "evidence": ["encoding/gob.(*Decoder).Decode in /usr/local/bin/app called by pid 7 (app)"]}
    }))
    .unwrap();
    let body = cluster::compact::report_body(&common::instance_report(&w, vec![called.clone()]));
    assert_eq!(body.findings[0].reachability.as_deref(), Some("called"));
    assert_eq!((body.summary.called, body.summary.relevant), (1, 1));
    let mut report = common::instance_report(&w, vec![finding, called]);
    report.not_scanned = Some("example".into());
    let runtime = sbom::index::RuntimeSbom {
        packages: vec![sbom::index::RelevantPackage {
            package: sbom.packages[0].clone(),
            evidence: vec!["/usr/bin/python3.11".into()],
        }],
        unmatched: 2,
        complete: false,
        warnings: vec!["3 events lost".into()],
        calls: None,
    };
    // The objects exactly as the agent queues them: an image this node computed (its SBOM and
    // report), and an instance (its SBOM' and report).
    use coordinator::store::Table;
    let mut image_report = report.clone();
    image_report.kind = coordinator::model::ReportKind::Image;
    image_report.key = "sha256:ab".into();
    image_report.workload = None;
    let claimed = std::collections::HashMap::from([(
        "sha256:ab".to_string(),
        ("web:1".to_string(), sbom::time::Timestamp::parse("2026-11-30T10:00:00Z").unwrap()),
    )]);
    let value = |v: &dyn erased::Ser| v.json();
    let image_batch = [(Table::Report, "r", value(&image_report)), (Table::Sbom, "sha256:ab", value(&sbom))];
    let instance = w.instance();
    let instance_batch =
        [(Table::Report, "r", value(&report)), (Table::RuntimeSbom, instance.as_str(), value(&runtime))];
    let mut objects = cluster::store::objects_of(&image_batch, &claimed, "node-a");
    objects.extend(cluster::store::objects_of(&instance_batch, &claimed, "node-a"));
    let examples: Vec<(&str, serde_json::Value)> = objects
        .iter()
        .map(|o| {
            let queued = serde_json::to_value(o).unwrap();
            (o.kind(), queued[o.kind()].clone())
        })
        .collect();
    let kinds: Vec<&str> = examples.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    let crds = cluster::resources::crds();
    let dir = tempfile::tempdir().unwrap();
    for (kind, object) in examples {
        let crd = crds.iter().find(|c| c.spec.names.kind == kind).unwrap();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap();
        assert_eq!(
            (object["apiVersion"].as_str(), object["kind"].as_str()),
            (Some("sniffer.dev/v1alpha1"), Some(kind))
        );
        // Shown with --nocapture: an example of each object.
        println!("---\n{}", serde_yaml::to_string(&object).unwrap());
        let (s, o) = (dir.path().join("schema.json"), dir.path().join("object.json"));
        std::fs::write(&s, schema.to_string()).unwrap();
        std::fs::write(&o, object.to_string()).unwrap();
        let check = "import json, sys, jsonschema\n\
            schema, obj = (json.load(open(p)) for p in sys.argv[1:3])\n\
            jsonschema.validate(obj, schema)\n\
            bad = dict(obj); bad['spec'] = dict(obj['spec']); bad['spec'].pop(next(iter(schema['properties']['spec']['required'])))\n\
            try:\n    jsonschema.validate(bad, schema)\nexcept jsonschema.ValidationError:\n    sys.exit(0)\n\
            sys.exit('a spec without a required field passed')\n";
        let out = std::process::Command::new(testkit::chart::validator("python3"))
            .args(["-c", check])
            .arg(&s)
            .arg(&o)
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Records as the coordinator stores them.
mod erased {
    /// Anything serialisable, as JSON.
    pub trait Ser {
        fn json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}
