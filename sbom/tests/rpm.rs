//! The rpm cataloger on a real sqlite rpm database: packages built with `rpmbuild` and
//! installed with `rpm --root` (Debian's rpm 4.18, sqlite backend), checked against
//! `rpm -qa` and `rpm -ql` on the same database.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sbom::Ecosystem;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn rpm(root: &Path) -> Command {
    let mut c = Command::new("rpm");
    c.arg("--root").arg(root).args(["--define", "_dbpath /var/lib/rpm"]);
    c
}

/// Builds a noarch package whose files are `files` (path, content).
fn build(top: &Path, name: &str, epoch: Option<u32>, files: &[(&str, &str)]) -> PathBuf {
    let mut install = String::new();
    let mut listed = String::new();
    for (path, content) in files {
        let dir = Path::new(path).parent().unwrap().display().to_string();
        install.push_str(&format!("mkdir -p %{{buildroot}}{dir}\necho '{content}' > %{{buildroot}}{path}\n"));
        listed.push_str(&format!("{path}\n"));
    }
    let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    std::fs::create_dir_all(top).unwrap();
    let spec = top.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!("Name: {name}\nVersion: 1.2\nRelease: 3.fc40\n{epoch}Summary: t\nLicense: MIT and BSD\nBuildArch: noarch\n%description\nt\n%install\n{install}%files\n{listed}"),
    )
    .unwrap();
    run(Command::new("rpmbuild").arg("-bb").arg("--define").arg(format!("_topdir {}", top.display())).arg(&spec));
    top.join(format!("RPMS/noarch/{name}-1.2-3.fc40.noarch.rpm"))
}

#[test]
fn sqlite_rpmdb_equals_rpm_qa_and_rpm_ql() {
    let tmp = tempfile::tempdir().unwrap();
    let (top, root) = (tmp.path().join("top"), tmp.path().join("root"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=fedora\nVERSION_ID=40\n").unwrap();
    let a = build(
        &top,
        "hello-sniffer",
        Some(2),
        &[("/usr/bin/hello-sniffer", "#!/bin/sh"), ("/etc/hello/hello.conf", "x=1")],
    );
    let b = build(&top, "libworld", None, &[("/usr/lib64/libworld.so.1", "not elf")]);
    run(rpm(&root).args(["--nodeps", "--noscripts", "-i"]).arg(&a).arg(&b));

    let sbom = sbom::scan(&root).unwrap();
    assert!(sbom.warnings.is_empty(), "{:?}", sbom.warnings);
    let qa = run(rpm(&root).args(["-qa", "--qf", "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n"]));
    let expected: BTreeSet<(String, String)> =
        qa.lines().filter_map(|l| l.split_once('\t')).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    let ours: BTreeSet<(String, String)> = sbom
        .packages
        .iter()
        .filter(|p| p.kind == Ecosystem::Rpm)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    assert_eq!(ours, expected);
    assert!(ours.contains(&("hello-sniffer".into(), "2:1.2-3.fc40".into())));
    for p in sbom.packages.iter().filter(|p| p.kind == Ecosystem::Rpm) {
        let ql: Vec<PathBuf> = run(rpm(&root).args(["-ql", &p.name])).lines().map(PathBuf::from).collect();
        assert_eq!(p.files, ql, "{}", p.name);
        assert_eq!(p.licenses, ["MIT and BSD"]);
        assert_eq!(
            p.source.as_ref().map(|s| (s.name.as_str(), s.version.as_str())),
            Some((p.name.as_str(), "1.2-3.fc40"))
        );
    }
    let hello = sbom.packages.iter().find(|p| p.name == "hello-sniffer").unwrap();
    assert_eq!(hello.purl, "pkg:rpm/fedora/hello-sniffer@1.2-3.fc40?arch=noarch&distro=fedora-40&epoch=2");
}

#[test]
fn other_rpm_databases_are_named_and_hostile_links_stay_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let bdb = tmp.path().join("bdb");
    std::fs::create_dir_all(bdb.join("var/lib/rpm")).unwrap();
    std::fs::write(bdb.join("var/lib/rpm/Packages"), [0u8; 4096]).unwrap();
    let sbom = sbom::scan(&bdb).unwrap();
    assert_eq!(sbom.warnings.len(), 1);
    assert_eq!(sbom.warnings[0].path, PathBuf::from("/var/lib/rpm/Packages"));
    assert!(sbom.warnings[0].message.contains("unsupported rpm database format (Berkeley DB)"), "{:?}", sbom.warnings);

    // A database that is garbage: a warning naming it.
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(junk.join("var/lib/rpm")).unwrap();
    std::fs::write(junk.join("var/lib/rpm/rpmdb.sqlite"), b"SQLite format 3\0 but not really").unwrap();
    let sbom = sbom::scan(&junk).unwrap();
    assert_eq!(sbom.warnings.len(), 1, "{:?}", sbom.warnings);
    assert_eq!(sbom.warnings[0].path, PathBuf::from("/var/lib/rpm/rpmdb.sqlite"));

    // A link to a host database resolves inside the root, where there is none.
    let host = tempfile::tempdir().unwrap();
    let hostile = tmp.path().join("hostile");
    std::fs::create_dir_all(hostile.join("var/lib/rpm")).unwrap();
    let host_db = host.path().join("rpmdb.sqlite");
    std::fs::write(&host_db, b"host secret").unwrap();
    std::os::unix::fs::symlink(&host_db, hostile.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let sbom = sbom::scan(&hostile).unwrap();
    assert!(sbom.packages.is_empty() && sbom.warnings.is_empty(), "{:?}", sbom.warnings);
}
