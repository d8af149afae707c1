//! CycloneDX and SPDX output, checked by the official validators (`cargo xtask setup`
//! installs them in target/validators).

use std::path::{Path, PathBuf};
use std::process::Command;

fn validators() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/validators/bin");
    assert!(venv.join("pyspdxtools").exists(), "validators missing: run `cargo xtask setup`");
    venv
}

/// A real SBOM with every kind of package: this host's dpkg database, its Python, npm's tree.
fn real_sbom() -> sbom::Sbom {
    let mut sbom = sbom::scan(Path::new("/usr/lib/node_modules/npm")).unwrap();
    let python = sbom::scan(Path::new("/usr/lib/python3/dist-packages")).unwrap();
    let dir = testkit::fixtures::dpkg_only_root();
    let deb = sbom::scan(dir.path()).unwrap();
    sbom.distro = deb.distro;
    sbom.packages.extend(deb.packages);
    sbom.packages.extend(python.packages);
    assert!(sbom.packages.iter().any(|p| p.kind == sbom::Ecosystem::Python));
    sbom
}

/// SBOM' of a workload that ran /bin/ls: coreutils, with that evidence.
fn runtime_of(sbom: &sbom::Sbom) -> sbom::index::RuntimeSbom {
    let coreutils = sbom.packages.iter().find(|p| p.name == "coreutils").unwrap();
    let evidence = vec![PathBuf::from("/bin/ls")];
    let packages = vec![sbom::index::RelevantPackage { package: coreutils.clone(), evidence }];
    sbom::index::RuntimeSbom { packages, unmatched: 0, complete: true, warnings: Vec::new(), calls: None }
}

fn write(value: &serde_json::Value) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(value).unwrap()).unwrap();
    file
}

#[test]
fn cyclonedx_validates_against_the_official_1_6_schema() {
    let sbom = real_sbom();
    let doc = sbom::formats::cyclonedx(&sbom);
    assert_eq!(doc["components"].as_array().unwrap().len(), sbom.packages.len());
    let libc = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == "libc6").unwrap();
    assert!(libc["purl"].as_str().unwrap().starts_with("pkg:deb/"));
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
                  err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nprint(err or 'valid')\nsys.exit(1 if err else 0)\n";
    // The SBOM and SBOM' (components with evidence of use) both validate.
    let runtime = runtime_of(&sbom);
    let runtime = sbom::formats::cyclonedx_runtime(&sbom, &runtime);
    assert_eq!(runtime["components"][0]["evidence"]["occurrences"][0]["location"], "/bin/ls");
    for d in [&doc, &runtime] {
        let file = write(d);
        let out = Command::new(validators().join("python")).args(["-c", script]).arg(file.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The validator does reject a broken document, so this test can fail.
    let mut broken = doc.clone();
    broken["components"][0]["type"] = "nonsense".into();
    let file = write(&broken);
    let out = Command::new(validators().join("python")).args(["-c", script]).arg(file.path()).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn spdx_validates_with_the_official_spdx_tools() {
    let sbom = real_sbom();
    let doc = sbom::formats::spdx(&sbom);
    assert_eq!(doc["packages"].as_array().unwrap().len(), sbom.packages.len());
    let runtime = sbom::formats::spdx_runtime(&sbom, &runtime_of(&sbom));
    assert_eq!(runtime["packages"].as_array().unwrap().len(), 1);
    for d in [&doc, &runtime] {
        let file = write(d);
        let out = Command::new(validators().join("pyspdxtools")).arg("-i").arg(file.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut broken = doc.clone();
    broken["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Nope".into();
    let file = write(&broken);
    let out = Command::new(validators().join("pyspdxtools")).arg("-i").arg(file.path()).output().unwrap();
    assert!(!out.status.success());
}
