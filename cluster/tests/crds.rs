//! The committed CRDs are the ones the types generate: a change to the types without
//! `cargo xtask crds` fails here.

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
