//! Java archives: the real jars of Debian's libcommons-lang3-java and libslf4j-java (the
//! setup unpacks them), checked against Python's zipfile reading the same pom.properties,
//! and the same jars nested in a web archive and a fat jar.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sbom::Ecosystem;

fn java_root() -> PathBuf {
    let root = testkit::fixtures::java_root();
    assert!(root.join("usr/share/java").is_dir(), "{} missing: run `cargo xtask setup`", root.display());
    root
}

/// (group:artifact, version) of every pom.properties in the regular jars under `dir`, read
/// by Python's zipfile.
fn python_zipfile(dir: &Path) -> BTreeSet<(String, String)> {
    let script = r#"
import os, sys, zipfile
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(d, f)
        if not f.endswith('.jar') or os.path.islink(p):
            continue
        z = zipfile.ZipFile(p)
        for n in z.namelist():
            parts = n.split('/')
            if len(parts) == 5 and parts[:2] == ['META-INF', 'maven'] and parts[4] == 'pom.properties':
                kv = dict(l.split('=', 1) for l in z.read(n).decode().splitlines() if '=' in l and not l.startswith('#'))
                print(kv['groupId'] + ':' + kv['artifactId'] + '\t' + kv['version'])
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Our (group:artifact, version) of the jars that carry a pom.properties.
fn java_set(sbom: &sbom::Sbom) -> BTreeSet<(String, String)> {
    sbom.packages
        .iter()
        .filter(|p| p.kind == Ecosystem::Java && !WITHOUT_POM.iter().any(|j| p.found_at.ends_with(j)))
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

/// The fixture's jars without Maven metadata (libxz-java, libhamcrest-java,
/// libxml-commons-external-java, libatinject-jsr330-api-java, libaopalliance-java,
/// openjdk-17-jre-headless).
const WITHOUT_POM: [&str; 8] = [
    "jrt-fs.jar",
    "atinject-jsr330-api-1.0.jar",
    "aopalliance-1.0.jar",
    "xz-1.9.jar",
    "hamcrest-2.2.jar",
    "hamcrest-integration-1.3.1-SNAPSHOT.jar",
    "xml-apis-1.4.01.jar",
    "xml-apis-ext-1.4.01.jar",
];

/// Jars built without Maven (no pom.properties inside), and the POM Debian's Maven
/// repository (`/usr/share/maven-repo`) has for each, read by Python: (jar path inside the
/// root, group, artifact, version).
fn debian_repo_poms(root: &Path) -> BTreeSet<(PathBuf, String, String, String)> {
    let script = r#"
import os, sys, zipfile, xml.etree.ElementTree as ET
root = sys.argv[1]
repo = os.path.join(root, "usr/share/maven-repo")
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
for d, _, files in os.walk(repo):
    for f in files:
        link = os.path.join(d, f)
        version = os.path.basename(d)
        if not f.endswith(".jar") or not os.path.islink(link) or version == "debian":
            continue
        jar = os.path.realpath(link)
        with zipfile.ZipFile(jar) as z:
            if any(n.startswith("META-INF/maven/") and n.endswith("/pom.properties") for n in z.namelist()):
                continue
        p = ET.parse(link[:-4] + ".pom").getroot()
        get = lambda e, k: e.find("m:" + k, ns).text if e is not None and e.find("m:" + k, ns) is not None else None
        group = get(p, "groupId") or get(p.find("m:parent", ns), "groupId")
        print("/" + os.path.relpath(jar, root), group, get(p, "artifactId"), get(p, "version"), sep="\t")
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (PathBuf::from(f[0]), f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// Jars built without Maven (no pom.properties inside): named from the file and the
/// manifest, then given the coordinates Debian records for them in its Maven repository
/// (`javax.inject:javax.inject:1` for `atinject-jsr330-api-1.0.jar`, whose manifest says
/// no group); each equal to that POM as Python's XML parser reads it. A title is never an
/// artifact id.
#[test]
fn debian_jars_without_maven_metadata_match_their_packages_poms() {
    let root = java_root();
    let sbom = sbom::scan(&root).unwrap();
    let poms = debian_repo_poms(&root);
    assert!(poms.len() >= 5, "{poms:#?}");
    assert!(
        poms.iter().any(|(_, g, a, v)| (g.as_str(), a.as_str(), v.as_str()) == ("javax.inject", "javax.inject", "1"))
    );
    for (jar, group, artifact, version) in &poms {
        let p = sbom
            .packages
            .iter()
            .find(|p| &p.found_at == jar)
            .unwrap_or_else(|| panic!("no package for {}", jar.display()));
        assert_eq!((&p.name, &p.version), (&format!("{group}:{artifact}"), version), "{}", jar.display());
        assert_eq!(p.purl, format!("pkg:maven/{group}/{artifact}@{version}"));
    }
    for p in sbom.packages.iter().filter(|p| p.kind == Ecosystem::Java) {
        assert!(!p.name.contains(' '), "a title is no artifact id: {}", p.name);
    }
}

/// Without Debian's Maven repository, what the jar itself says: the file name, and a group
/// only where the manifest names one; none is made up (the purl then has no namespace).
#[test]
fn jars_without_maven_metadata_or_repository_invent_no_group() {
    let root = tempfile::tempdir().unwrap();
    let java = root.path().join("usr/share/java");
    std::fs::create_dir_all(&java).unwrap();
    for jar in ["xz-1.9.jar", "xml-apis-1.4.01.jar", "atinject-jsr330-api-1.0.jar", "aopalliance-1.0.jar"] {
        std::fs::copy(java_root().join("usr/share/java").join(jar), java.join(jar)).unwrap();
    }
    let sbom = sbom::scan(root.path()).unwrap();
    let purls: BTreeSet<&str> = sbom.packages.iter().map(|p| p.purl.as_str()).collect();
    assert_eq!(
        purls,
        BTreeSet::from([
            // Bundle-SymbolicName org.tukaani.xz: the group is what precedes the artifact.
            "pkg:maven/org.tukaani/xz@1.9",
            "pkg:maven/xml-apis@1.4.01",
            "pkg:maven/atinject-jsr330-api@1.0",
            "pkg:maven/aopalliance@1.0",
        ])
    );
    // The CycloneDX component says the group is unknown.
    let doc = sbom::formats::cyclonedx(&sbom);
    let group_of = |purl: &str| {
        let c = doc["components"].as_array().unwrap().iter().find(|c| c["purl"] == purl).unwrap();
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "sniffer:maven-group")
            .map(|p| p["value"].clone())
    };
    assert_eq!(group_of("pkg:maven/aopalliance@1.0"), Some(sbom::formats::MAVEN_GROUP_UNKNOWN.into()));
    assert_eq!(group_of("pkg:maven/org.tukaani/xz@1.9"), None);
}

#[test]
fn debian_jars_equal_their_pom_properties() {
    let root = java_root();
    let sbom = sbom::scan(&root).unwrap();
    assert!(sbom.warnings.is_empty(), "{:?}", sbom.warnings);
    let expected = python_zipfile(&root);
    assert!(expected.contains(&("org.apache.commons:commons-lang3".into(), "3.12.0".into())), "{expected:?}");
    assert!(expected.len() >= 5);
    assert_eq!(java_set(&sbom), expected);
    let lang3 = sbom.packages.iter().find(|p| p.name == "org.apache.commons:commons-lang3").unwrap();
    assert_eq!(lang3.purl, "pkg:maven/org.apache.commons/commons-lang3@3.12.0");
    // The versioned names are symlinks to this file; the walk follows none, so one package.
    assert_eq!(lang3.files, [PathBuf::from("/usr/share/java/commons-lang3.jar")]);
}

#[test]
fn nested_archives_are_read_and_owned_by_the_outer_one() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("opt/app");
    std::fs::create_dir_all(&app).unwrap();
    let jars = java_root().join("usr/share/java");
    let lang3 = std::fs::read(jars.join("commons-lang3-3.12.0.jar")).unwrap();
    let slf4j = std::fs::read(jars.join("slf4j-api-1.7.32.jar")).unwrap();
    // A fat jar holding slf4j, inside a web archive holding commons-lang3; the web archive
    // itself has a manifest only.
    let zip = |entries: &[(&str, &[u8])]| -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, data) in entries {
            w.start_file(*name, stored).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    };
    let fat = zip(&[("BOOT-INF/lib/slf4j-api-1.7.32.jar", &slf4j)]);
    let war = zip(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nImplementation-Title: shop\r\nImplementation-Version: 2.4.1\r\n\r\n",
        ),
        ("WEB-INF/lib/commons-lang3-3.12.0.jar", &lang3),
        ("WEB-INF/lib/fat.jar", &fat),
    ]);
    std::fs::write(app.join("shop.war"), war).unwrap();
    std::fs::write(app.join("broken.jar"), b"PK\x03\x04 garbage").unwrap();

    let sbom = sbom::scan(tmp.path()).unwrap();
    let expected: BTreeSet<(String, String)> = [
        ("shop", "2.4.1"),
        ("org.apache.commons:commons-lang3", "3.12.0"),
        ("org.slf4j:slf4j-api", "1.7.32"),
        // fat.jar has no metadata and no version in its name: nothing to name it by.
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(java_set(&sbom), expected);
    let slf4j_pkg = sbom.packages.iter().find(|p| p.name == "org.slf4j:slf4j-api").unwrap();
    assert_eq!(
        slf4j_pkg.found_at,
        PathBuf::from("/opt/app/shop.war!/WEB-INF/lib/fat.jar!/BOOT-INF/lib/slf4j-api-1.7.32.jar")
    );
    assert_eq!(slf4j_pkg.files, [PathBuf::from("/opt/app/shop.war")]);
    // The broken archive is a warning naming it; the rest was read.
    assert_eq!(sbom.warnings.len(), 1, "{:?}", sbom.warnings);
    assert_eq!(sbom.warnings[0].path, PathBuf::from("/opt/app/broken.jar"));

    // SBOM': the JVM opening the web archive makes everything in it relevant.
    let r = sbom::rootfs::Root::open(tmp.path()).unwrap();
    let index = sbom::index::FileIndex::build(&r, &sbom);
    let opened = [PathBuf::from("/opt/app/shop.war")];
    let runtime = sbom::index::filter(&sbom, &index, opened.iter().map(PathBuf::as_path), true);
    assert_eq!(runtime.packages.len(), 3);
}

/// A JDK is known by its `release` file (a tarball's JDK has nothing else): listed with the
/// runtime version the JVM itself reports (`java -XshowSettings:properties`, run from the
/// fixture's real Debian JRE), owning its home, whose libraries the JVM opens; its
/// jrt-fs.jar (no pom, no version in its name) named from the file and its manifest.
#[test]
fn a_jdk_is_listed_with_the_version_the_jvm_reports() {
    let root = java_root();
    let home = Path::new("/usr/lib/jvm/java-17-openjdk-amd64");
    let java = root.join(home.strip_prefix("/").unwrap()).join("bin/java");
    let out = Command::new(&java).args(["-XshowSettings:properties", "-version"]).output().unwrap();
    let settings = String::from_utf8_lossy(&out.stderr);
    let property = |key: &str| {
        settings
            .lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix('=').map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("{} printed no {key}: {settings}", java.display()))
    };
    let sbom = sbom::scan(&root).unwrap();
    let jdk = sbom.packages.iter().find(|p| p.kind == Ecosystem::Runtime).expect("the JDK is listed");
    assert_eq!(jdk.version, property("java.runtime.version"));
    assert_eq!(jdk.purl, format!("pkg:generic/oracle/openjdk@{}", jdk.version.replace('+', "%2B")));
    assert_eq!(jdk.files, [home.to_path_buf()]);
    // The java-1.17.0 link to the same home is not a second JDK.
    assert_eq!(sbom.packages.iter().filter(|p| p.kind == Ecosystem::Runtime).count(), 1);
    let jrt = sbom.packages.iter().find(|p| p.found_at == home.join("lib/jrt-fs.jar")).unwrap();
    assert_eq!((jrt.name.as_str(), jrt.version.clone()), ("jrt-fs", property("java.version")));
    // SBOM': the JVM's own library is the JDK's.
    let index = sbom::index::FileIndex::build(&sbom::rootfs::Root::open(&root).unwrap(), &sbom);
    let owners = index.owners(&home.join("lib/server/libjvm.so"));
    assert!(owners.iter().any(|&i| sbom.packages[i].kind == Ecosystem::Runtime), "{owners:?}");
}
