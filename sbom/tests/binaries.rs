//! Packages compiled into executables, from binaries built here by the real toolchains and
//! checked against the toolchains' own readers (`go version -m`).

use std::path::{Path, PathBuf};
use std::process::Command;

use sbom::Ecosystem;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `go version -m`: (go version, [(module, version)] of deps with replacements applied).
fn go_version_m(binary: &Path) -> (String, Vec<(String, String)>) {
    let text = run(Command::new("go").arg("version").arg("-m").arg(binary));
    let mut lines = text.lines();
    let go = lines.next().unwrap().rsplit(' ').next().unwrap().to_string();
    let mut deps: Vec<(String, String)> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.trim_start().split('\t').collect();
        match f.as_slice() {
            // The main module too, at the version Go prints (`(devel)` built from its tree).
            ["mod" | "dep", p, v, ..] => deps.push((p.to_string(), v.to_string())),
            ["=>", p, v, ..] if *v != "(devel)" => *deps.last_mut().unwrap() = (p.to_string(), v.to_string()),
            _ => {}
        }
    }
    (go, deps)
}

#[test]
fn go_modules_of_a_real_binary_equal_go_version_m() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, lib, root) = (tmp.path().join("app"), tmp.path().join("lib"), tmp.path().join("root"));
    for d in [&src, &lib, &root.join("usr/local/bin")] {
        std::fs::create_dir_all(d).unwrap();
    }
    // A dependency at a version, replaced by a local directory: module mode, no network.
    std::fs::write(lib.join("go.mod"), "module example.com/lib\n\ngo 1.19\n").unwrap();
    std::fs::write(lib.join("lib.go"), "package lib\n\nfunc Hello() string { return \"hello\" }\n").unwrap();
    std::fs::write(
        src.join("go.mod"),
        "module example.com/app\n\ngo 1.19\n\nrequire example.com/lib v1.2.3\n\nreplace example.com/lib => ../lib\n",
    )
    .unwrap();
    std::fs::write(
        src.join("main.go"),
        "package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.Hello()) }\n",
    )
    .unwrap();
    let binary = root.join("usr/local/bin/app");
    run(Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", tmp.path().join("cache"))
        .env("GOPATH", tmp.path().join("gopath")));
    let (go, deps) = go_version_m(&binary);
    assert_eq!(
        deps,
        [("example.com/app".to_string(), "(devel)".to_string()), ("example.com/lib".to_string(), "v1.2.3".to_string())]
    );

    let sbom = sbom::scan(&root).unwrap();
    assert!(sbom.warnings.is_empty(), "{:?}", sbom.warnings);
    let ours: Vec<(String, String)> =
        sbom.packages.iter().filter(|p| p.kind == Ecosystem::Go).map(|p| (p.name.clone(), p.version.clone())).collect();
    let mut expected = deps.clone();
    expected.push(("stdlib".into(), go.trim_start_matches("go").to_string()));
    expected.sort();
    assert_eq!(ours, expected);
    let lib_pkg = sbom.packages.iter().find(|p| p.name == "example.com/lib").unwrap();
    assert_eq!(lib_pkg.purl, "pkg:golang/example.com/lib@v1.2.3");
    assert_eq!(lib_pkg.files, [PathBuf::from("/usr/local/bin/app")]);

    // SBOM': executing the binary makes its modules relevant.
    let r = sbom::rootfs::Root::open(&root).unwrap();
    let index = sbom::index::FileIndex::build(&r, &sbom);
    let opened = [PathBuf::from("/usr/local/bin/app")];
    let runtime = sbom::index::filter(&sbom, &index, opened.iter().map(PathBuf::as_path), true);
    assert_eq!(runtime.packages.len(), 3, "stdlib, the app itself and the library");
}

#[test]
fn go_toolchain_of_debian_binaries_equals_go_version_m() {
    // Debian's containerd and runc: GOPATH builds, so the toolchain is all they record.
    let root = sbom::rootfs::Root::open(Path::new("/")).unwrap();
    for binary in ["/usr/bin/containerd", "/usr/sbin/runc"] {
        let mut catalog = sbom::catalog::Catalog::default();
        sbom::catalog::binary::catalog_file(&root, Path::new(binary), &mut catalog);
        let (go, _) = go_version_m(Path::new(binary));
        let names: Vec<(&str, &str)> = catalog.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(names, [("stdlib", go.trim_start_matches("go"))], "{binary}");
    }
}

#[test]
fn rust_crates_of_a_cargo_auditable_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, root) = (tmp.path().join("app"), tmp.path().join("root"));
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::fs::write(
        src.join("Cargo.toml"),
        "[package]\nname = \"audited-app\"\nversion = \"0.3.1\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(src.join("src/main.rs"), "fn main() { println!(\"{}\", itoa::Buffer::new().format(42)); }\n")
        .unwrap();
    // itoa is in this workspace's lock file, so the registry cache has it: no network.
    run(Command::new("cargo")
        .args(["auditable", "build", "--release", "--offline", "-q"])
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", tmp.path().join("target")));
    std::fs::copy(tmp.path().join("target/release/audited-app"), root.join("usr/local/bin/audited-app")).unwrap();
    let lock = std::fs::read_to_string(src.join("Cargo.lock")).unwrap();
    let itoa = lock.split("[[package]]").find(|p| p.contains("name = \"itoa\"")).unwrap();
    let itoa_version = itoa.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap().trim_end_matches('"');

    let sbom = sbom::scan(&root).unwrap();
    assert!(sbom.warnings.is_empty(), "{:?}", sbom.warnings);
    let ours: Vec<(&str, &str)> = sbom
        .packages
        .iter()
        .filter(|p| p.kind == Ecosystem::Rust)
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(ours, [("audited-app", "0.3.1"), ("itoa", itoa_version)]);
    assert!(sbom.packages.iter().all(|p| p.files == [PathBuf::from("/usr/local/bin/audited-app")]));
    assert!(sbom.packages.iter().any(|p| p.purl == format!("pkg:cargo/itoa@{itoa_version}")));
}

/// `go version -m`'s build settings of a binary.
fn go_build_settings(binary: &Path) -> Vec<(String, String)> {
    run(Command::new("go").arg("version").arg("-m").arg(binary))
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("build\t"))
        .filter_map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// A main module built from its own tree is `(devel)` to the toolchain; Syft names it from
/// a version linker flag, or from the VCS stamp. Both binaries are built here, and what
/// names them is read back with `go version -m`.
#[test]
fn a_main_module_built_from_source_is_named_from_ldflags_or_vcs_as_go_version_m_shows() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, root) = (tmp.path().join("app"), tmp.path().join("root"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/app\n\ngo 1.19\n").unwrap();
    std::fs::write(
        src.join("main.go"),
        "package main\n\nvar version = \"dev\"\n\nvar (\n\tgitVersion string\n\tgitCommit string\n)\n\n\
         func main() { println(version, gitVersion, gitCommit) }\n",
    )
    .unwrap();
    let go = |args: &[&str], out: &Path| {
        run(Command::new("go")
            .arg("build")
            .args(args)
            .arg("-o")
            .arg(out)
            .current_dir(&src)
            .env("GOPROXY", "off")
            .env("GOCACHE", tmp.path().join("cache"))
            .env("GOPATH", tmp.path().join("gopath")));
    };
    // With a version linker flag (no VCS here yet).
    let flagged = root.join("usr/local/bin/flagged");
    go(&["-buildvcs=false", "-ldflags=-X main.version=1.4.2"], &flagged);
    assert!(go_build_settings(&flagged).iter().any(|(k, v)| k == "-ldflags" && v.contains("main.version=1.4.2")));
    // With the VCS stamp of a real git commit.
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args(args)
            .current_dir(&src)
            .env("GIT_AUTHOR_DATE", "2024-03-05T10:20:30Z")
            .env("GIT_COMMITTER_DATE", "2024-03-05T10:20:30Z"));
    };
    git(&["init", "-q"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "add", "."]);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"]);
    let stamped = root.join("usr/local/bin/stamped");
    go(&["-buildvcs=true"], &stamped);
    let settings = go_build_settings(&stamped);
    let setting = |k: &str| settings.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    let (revision, time) = (setting("vcs.revision"), setting("vcs.time"));
    assert_eq!(time, "2024-03-05T10:20:30Z");

    let sbom = sbom::scan(&root).unwrap();
    let main_of = |binary: &str| {
        let p = sbom
            .packages
            .iter()
            .find(|p| p.name == "example.com/app" && p.files == [PathBuf::from(binary)])
            .unwrap_or_else(|| panic!("no main module for {binary}: {:?}", sbom.packages));
        (p.version.clone(), p.purl.clone())
    };
    assert_eq!(main_of("/usr/local/bin/flagged"), ("v1.4.2".into(), "pkg:golang/example.com/app@v1.4.2".into()));
    let pseudo = format!("v0.0.0-20240305102030-{}", &revision[..12]);
    assert_eq!(main_of("/usr/local/bin/stamped").0, pseudo);
    // Said to be made from a commit; a release is not.
    let flag = |binary: &str| {
        sbom.packages
            .iter()
            .find(|p| p.name == "example.com/app" && p.files == [PathBuf::from(binary)])
            .unwrap()
            .version_from_commit
    };
    assert!(flag("/usr/local/bin/stamped") && !flag("/usr/local/bin/flagged"));

    // As Kubernetes builds: stripped, `-trimpath` (so the build info keeps no `-ldflags`),
    // the version and the commit set with `-X`. The version is the one beside the commit.
    let kube = root.join("usr/local/bin/kube");
    let x = format!("-ldflags=-s -w -X main.gitVersion=v1.2.3 -X main.gitCommit={revision}");
    go(&["-buildvcs=true", "-trimpath", &x], &kube);
    let settings = go_build_settings(&kube);
    assert!(!settings.iter().any(|(k, _)| k == "-ldflags"), "{settings:?}");
    assert!(settings.contains(&("vcs.revision".into(), revision.clone())));
    let sbom = sbom::scan(&root).unwrap();
    let kube =
        sbom.packages.iter().find(|p| p.name == "example.com/app" && p.files == [PathBuf::from("/usr/local/bin/kube")]);
    assert_eq!(kube.map(|p| p.version.as_str()), Some("v1.2.3"), "{:?}", sbom.packages);
}

/// The Cloud SDK's kubectl binaries (this machine's image carries them) are built from
/// Kubernetes' tree: `(devel)` with a VCS stamp, the version set with `-X` beside the
/// commit. Each is listed at the version it prints itself.
#[test]
fn each_cloud_sdk_kubectl_is_listed_at_the_version_it_prints() {
    let bin = Path::new("/usr/lib/google-cloud-sdk/bin");
    let mut kubectls: Vec<PathBuf> = std::fs::read_dir(bin)
        .unwrap_or_else(|e| panic!("{} is part of this machine's image: {e}", bin.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("kubectl.1."))
        .collect();
    kubectls.sort();
    assert_eq!(kubectls.len(), 7, "{kubectls:?}");
    let tmp = tempfile::tempdir().unwrap();
    // A root of copies, as an image would hold them.
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for k in &kubectls {
        std::fs::copy(k, root.join("bin").join(k.file_name().unwrap())).unwrap();
    }
    let sbom = sbom::scan(&root).unwrap();
    for k in &kubectls {
        let printed = run(Command::new(k).args(["version", "--client", "-o", "json"]));
        let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
        let printed = printed["clientVersion"]["gitVersion"].as_str().unwrap().to_string();
        let inside = PathBuf::from("/bin").join(k.file_name().unwrap());
        let listed = sbom
            .packages
            .iter()
            .find(|p| p.name == "k8s.io/kubernetes" && p.files == [inside.clone()])
            .unwrap_or_else(|| panic!("no k8s.io/kubernetes in {}", inside.display()));
        assert_eq!(listed.version, printed, "{}", k.display());
        assert_eq!(listed.purl, format!("pkg:golang/k8s.io/kubernetes@{printed}"));
    }
}
