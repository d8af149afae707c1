//! Catalogers against real package databases on this machine, checked against the package
//! managers' own tools.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sbom::{Ecosystem, Sbom};

use testkit::fixtures::{bookworm_root, dpkg_only_root};

fn set(sbom: &Sbom, kind: Ecosystem) -> BTreeSet<(String, String)> {
    sbom.packages.iter().filter(|p| p.kind == kind).map(|p| (p.name.clone(), p.version.clone())).collect()
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `pip list --path SITE`: (normalised name, version) of each distribution there.
fn pip_list(site: &Path) -> BTreeSet<(String, String)> {
    let listed = stdout(Command::new("python3").args(["-m", "pip", "list", "--format", "json", "--path"]).arg(site));
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    listed
        .iter()
        .map(|p| {
            (sbom::purl::normalize_python(p["name"].as_str().unwrap()), p["version"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn dpkg_packages_equal_dpkg_query_and_files_match_dpkg_s() {
    let root = dpkg_only_root();
    let sbom = sbom::scan(root.path()).unwrap();
    assert!(sbom.warnings.is_empty(), "{:#?}", sbom.warnings);
    let admindir = root.path().join("var/lib/dpkg");
    let listed = stdout(Command::new("dpkg-query").arg(format!("--admindir={}", admindir.display())).args([
        "-W",
        "-f",
        "${Package}\t${Version}\n",
    ]));
    let expected: BTreeSet<(String, String)> =
        listed.lines().filter_map(|l| l.split_once('\t')).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    assert_eq!(set(&sbom, Ecosystem::Deb), expected);
    assert!(expected.len() > 50);

    let distro = sbom.distro.as_ref().expect("os-release read");
    let libc = sbom.packages.iter().find(|p| p.name == "libc6").unwrap();
    assert_eq!(libc.source.as_ref().unwrap().name, "glibc");
    assert!(libc.purl.starts_with(&format!("pkg:deb/{}/libc6@", distro.id)), "{}", libc.purl);
    assert!(libc.purl.contains("upstream=glibc"), "{}", libc.purl);

    // Ownership against dpkg -S, for a sample of files, merged-/usr paths included: dpkg
    // lists /bin/ls, which on this host is /usr/bin/ls through the /bin link.
    let mut sample: Vec<PathBuf> = vec!["/bin/ls".into(), "/lib/x86_64-linux-gnu/libc.so.6".into()];
    for p in sbom.packages.iter().filter(|p| p.kind == Ecosystem::Deb).step_by(40) {
        if let Some(f) = p.files.iter().rev().find(|f| Path::new(f).is_file()) {
            sample.push(f.clone());
        }
    }
    for file in sample {
        let out = stdout(Command::new("dpkg").arg(format!("--admindir={}", admindir.display())).arg("-S").arg(&file));
        let owners: BTreeSet<String> = out
            .lines()
            .filter(|l| !l.starts_with("diversion"))
            .filter_map(|l| l.rsplit_once(": ").map(|(pkgs, _)| pkgs))
            .flat_map(|pkgs| pkgs.split(", ").map(|p| p.split(':').next().unwrap_or(p).to_string()))
            .collect();
        let ours: BTreeSet<String> =
            sbom.packages.iter().filter(|p| p.files.contains(&file)).map(|p| p.name.clone()).collect();
        assert_eq!(ours, owners, "owners of {}", file.display());
    }
}

#[test]
fn python_packages_equal_pip_list() {
    // Real installed distributions: this machine's Python (its site-packages).
    let prefix = stdout(Command::new("python3").args(["-c", "import sys; print(sys.prefix)"]));
    let prefix = PathBuf::from(prefix.trim());
    let site =
        stdout(Command::new("python3").args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]));
    let site = PathBuf::from(site.trim());
    let sbom = sbom::scan(&prefix).unwrap();
    let expected = pip_list(&site);
    let site_inside = Path::new("/").join(site.strip_prefix(&prefix).unwrap());
    let ours: BTreeSet<(String, String)> = sbom
        .packages
        .iter()
        // pip's vendored distributions (from its `_vendor/vendor.txt`) are not in pip's list.
        .filter(|p| p.kind == Ecosystem::Python && p.found_at.starts_with(&site_inside))
        .filter(|p| !p.found_at.ends_with("_vendor/vendor.txt"))
        .map(|p| (sbom::purl::normalize_python(&p.name), p.version.clone()))
        .collect();
    assert_eq!(ours, expected);
    let pip = sbom.packages.iter().find(|p| p.name == "pip").expect("pip itself is installed");
    assert!(pip.files.iter().any(|f| f.ends_with("pip/__init__.py")), "RECORD read: {:?}", &pip.files[..3]);
}

#[test]
fn npm_packages_equal_npm_ls() {
    // npm's own installation: a real node_modules tree with nested packages.
    let npm_dir = PathBuf::from("/usr/lib/node_modules/npm");
    let sbom = sbom::scan(&npm_dir).unwrap();
    let out = Command::new("npm").args(["ls", "--all", "--json"]).current_dir(&npm_dir).output().unwrap();
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    fn walk(node: &serde_json::Value, acc: &mut BTreeSet<(String, String)>) {
        if let Some(deps) = node["dependencies"].as_object() {
            for (name, dep) in deps {
                if let Some(v) = dep["version"].as_str() {
                    acc.insert((name.clone(), v.to_string()));
                }
                walk(dep, acc);
            }
        }
    }
    let mut expected = BTreeSet::new();
    walk(&tree, &mut expected);
    assert!(expected.len() > 50);
    // npm itself: the project at the top of the tree.
    expected.insert((tree["name"].as_str().unwrap().to_string(), tree["version"].as_str().unwrap().to_string()));
    assert_eq!(set(&sbom, Ecosystem::Npm), expected);
}

#[test]
fn hostile_symlinks_never_read_host_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    // Inside the root, /etc/shadow is a harmless status file; outside it is the host's.
    std::fs::write(r.join("etc/shadow"), "Package: inside-root\nStatus: install ok installed\nVersion: 1.0\n").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", r.join("var/lib/dpkg/status")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd", r.join("var/lib/dpkg/info/inside-root.list")).unwrap();
    std::fs::write(r.join("etc/passwd"), "/usr/bin/inside\n").unwrap();
    let sbom = sbom::scan(r).unwrap();
    let names: Vec<&str> = sbom.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["inside-root"]);
    assert_eq!(sbom.packages[0].files, [PathBuf::from("/usr/bin/inside")]);
}

#[test]
fn malformed_database_is_a_warning_naming_it_and_others_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), b"\x00\xff\xfe binary garbage \x01").unwrap();
    let dist = r.join("usr/lib/python3/dist-packages/six-1.16.0.dist-info");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("METADATA"), "Name: six\nVersion: 1.16.0\n").unwrap();
    std::fs::create_dir_all(r.join("app/node_modules/broken")).unwrap();
    std::fs::write(r.join("app/node_modules/broken/package.json"), "{ nope").unwrap();
    let sbom = sbom::scan(r).unwrap();
    assert_eq!(sbom.packages.len(), 1, "{:#?}", sbom.packages);
    assert_eq!(sbom.packages[0].name, "six");
    let paths: Vec<&Path> = sbom.warnings.iter().map(|w| w.path.as_path()).collect();
    assert!(paths.contains(&Path::new("/var/lib/dpkg/status")), "{:#?}", sbom.warnings);
    assert!(paths.contains(&Path::new("/app/node_modules/broken/package.json")), "{:#?}", sbom.warnings);
}

#[test]
fn sbom_prime_keeps_owners_of_opened_files_through_merged_usr() {
    // This host is merged-/usr: dpkg lists /bin/ls and /lib/.../libc.so.6, the kernel
    // reports /usr/bin/ls and /usr/lib/.../libc.so.6. The index must join them.
    let root = sbom::rootfs::Root::open(Path::new("/")).unwrap();
    let copy = dpkg_only_root();
    let mut sbom = sbom::scan(copy.path()).unwrap();
    sbom.root = PathBuf::from("/");
    let index = sbom::index::FileIndex::build(&root, &sbom);
    assert!(index.len() > 1000);
    let ls = std::fs::canonicalize("/bin/ls").unwrap();
    let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    assert!(ls.starts_with("/usr"), "merged-/usr host");
    let opened = [ls.clone(), libc.clone(), PathBuf::from("/proc/self/status"), PathBuf::from("/usr/lib")];
    let runtime = sbom::index::filter(&sbom, &index, opened.iter().map(PathBuf::as_path), true);
    let names: Vec<&str> = runtime.packages.iter().map(|p| p.package.name.as_str()).collect();
    assert_eq!(names, ["coreutils", "libc6"]);
    assert_eq!(runtime.packages[0].evidence, [ls]);
    assert_eq!(runtime.packages[1].evidence, [libc]);
    // /proc/self/status is no package's; /usr/lib is a directory, owned by none.
    assert_eq!(runtime.unmatched, 2);
    assert!(runtime.complete && runtime.warnings.is_empty());

    // Without the root (the container is gone): the same owners from the file lists alone,
    // the directory still left out, and SBOM' says it is approximate.
    let listing = sbom::index::FileIndex::from_listing(&sbom);
    let approx = sbom::index::filter(&sbom, &listing, opened.iter().map(PathBuf::as_path), true);
    assert_eq!(approx.packages, runtime.packages);
    assert_eq!(approx.unmatched, 2);
    assert!(!approx.complete);
    assert_eq!(approx.warnings, [sbom::index::WITHOUT_ROOT]);
}

#[test]
fn debian_bookworm_root_equals_dpkg_query_pip_list_and_npm_ls() {
    let root = bookworm_root();
    let sbom = sbom::scan(&root).unwrap();
    assert!(sbom.warnings.is_empty(), "{:#?}", sbom.warnings);
    let distro = sbom.distro.as_ref().unwrap();
    assert_eq!((distro.id.as_str(), distro.version_id.as_deref()), ("debian", Some("12")));

    let admindir = root.join("var/lib/dpkg");
    let listed = stdout(Command::new("dpkg-query").arg(format!("--admindir={}", admindir.display())).args([
        "-W",
        "-f",
        "${Package}\t${Version}\n",
    ]));
    let expected: BTreeSet<(String, String)> =
        listed.lines().filter_map(|l| l.split_once('\t')).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    assert_eq!(set(&sbom, Ecosystem::Deb), expected);
    assert!(expected.iter().any(|(n, _)| n == "python3.11"));

    let site = root.join("usr/local/lib/python3.11/dist-packages");
    let expected = pip_list(&site);
    let ours: BTreeSet<(String, String)> = sbom
        .packages
        .iter()
        .filter(|p| p.kind == Ecosystem::Python && p.found_at.starts_with("/usr/local"))
        .map(|p| (sbom::purl::normalize_python(&p.name), p.version.clone()))
        .collect();
    assert_eq!(ours, expected);
    assert!(expected.contains(&("requests".into(), "2.25.0".into())));

    let out = Command::new("npm").args(["ls", "--all", "--json"]).current_dir(root.join("srv/app")).output().unwrap();
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut expected: BTreeSet<(String, String)> = tree["dependencies"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, d)| (n.clone(), d["version"].as_str().unwrap().to_string()))
        .collect();
    expected.insert(("app".into(), "1.0.0".into()));
    assert_eq!(tree["name"], "app");
    assert_eq!(set(&sbom, Ecosystem::Npm), expected);

    // Ownership in the root against dpkg -S, merged-/usr paths included.
    for file in ["/bin/ls", "/usr/bin/python3.11", "/lib/x86_64-linux-gnu/libc.so.6"] {
        let out = stdout(Command::new("dpkg").arg(format!("--admindir={}", admindir.display())).args(["-S", file]));
        let owner = out.lines().next().and_then(|l| l.split(':').next()).unwrap().to_string();
        let ours: Vec<&str> = sbom
            .packages
            .iter()
            .filter(|p| p.files.iter().any(|f| f == Path::new(file)))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(ours, [owner.as_str()], "owner of {file}");
    }

    // SBOM' from what `import requests` opens: requests and urllib3 are in, jinja2 is not.
    let r = sbom::rootfs::Root::open(&root).unwrap();
    let index = sbom::index::FileIndex::build(&r, &sbom);
    let opened: Vec<PathBuf> = [
        "/usr/local/lib/python3.11/dist-packages/requests/__init__.py",
        "/usr/local/lib/python3.11/dist-packages/urllib3/__init__.py",
        "/usr/bin/python3.11",
        "/srv/app/node_modules/lodash/lodash.js",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let runtime = sbom::index::filter(&sbom, &index, opened.iter().map(PathBuf::as_path), true);
    let names: BTreeSet<&str> = runtime.packages.iter().map(|p| p.package.name.as_str()).collect();
    // python3-minimal owns the /usr/bin/python3 link to the interpreter that ran, so it is in.
    assert_eq!(names, BTreeSet::from(["requests", "urllib3", "python3.11-minimal", "python3-minimal", "lodash"]));
}

#[test]
fn progress_is_reported_as_the_walk_goes() {
    let root = bookworm_root();
    let mut seen: Vec<sbom::Progress> = Vec::new();
    let sbom = sbom::scan_with_progress(&root, sbom::Budgets::default(), &mut |p| seen.push(p)).unwrap();
    let files = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && ["proc", "sys", "dev"].iter().any(|s| e.file_name() == *s)))
        .count() as u64;
    // One report per 1,024 entries (the walk skips /proc, /sys and /dev), growing.
    assert_eq!(seen.len() as u64, files / 1024, "{} entries", files);
    assert!(seen.windows(2).all(|w| w[0].entries < w[1].entries && w[0].packages <= w[1].packages));
    assert!(seen.last().unwrap().packages <= sbom.packages.len());
}

/// A CPython that no package owns (built from source, bundled by a vendor) is known by the
/// version compiled into it: the real interpreter of the Debian root, copied where dpkg
/// does not list it, is listed at the version it reports itself (run in the root with
/// chroot); in the root, dpkg owns it and it is that package only.
#[test]
fn an_interpreter_no_package_owns_is_listed_at_the_version_it_reports() {
    let bookworm = testkit::fixtures::bookworm_root();
    let reported = stdout(Command::new("chroot").arg(&bookworm).args([
        "/usr/bin/python3.11",
        "-c",
        "import platform; print(platform.python_version())",
    ]));
    let sbom = sbom::scan(&bookworm).unwrap();
    assert!(!sbom.packages.iter().any(|p| p.kind == Ecosystem::Runtime), "dpkg owns /usr/bin/python3.11");

    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("opt/python/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(bookworm.join("usr/bin/python3.11"), bin.join("python3.11")).unwrap();
    let sbom = sbom::scan(root.path()).unwrap();
    let python: Vec<&sbom::Package> = sbom.packages.iter().filter(|p| p.kind == Ecosystem::Runtime).collect();
    assert_eq!(python.len(), 1, "{:#?}", sbom.packages);
    assert_eq!(python[0].version, reported.trim());
    assert_eq!(python[0].purl, format!("pkg:generic/python@{}", reported.trim()));
    assert_eq!(python[0].files, [PathBuf::from("/opt/python/bin/python3.11")]);
}
