//! Hostile roots: every byte under a root is chosen by an attacker, and `sniffer sbom
//! --dir` reads it as root. Each case builds a root that once made the agent read host
//! data, hang, run out of memory or write raw control characters, plants a canary outside
//! the root (a host file, a host directory's entry, the agent's own environment), and runs
//! the scan under a 60-second timeout and a 1 GiB address-space limit. The scan must
//! finish within both, say what it refused, and show the canary nowhere.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(60);
const MEMORY_LIMIT: &str = "--as=1073741824";

struct Case {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    canary: String,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let canary = format!("CANARY{nanos:x}");
        std::fs::write(
            outside.join("secret"),
            format!("Package: {canary}\nVersion: 1\nStatus: install ok installed\n\n"),
        )
        .unwrap();
        Case { _dir: dir, root, outside, canary }
    }

    fn file(&self, path: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    fn dir(&self, path: &str) -> PathBuf {
        let p = self.root.join(path);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn node(&self, path: &str, kind: &str, major: u32, minor: u32) {
        let p =
            self.dir(Path::new(path).parent().unwrap().to_str().unwrap()).join(Path::new(path).file_name().unwrap());
        let mut cmd = Command::new("mknod");
        cmd.arg(&p).arg(kind);
        if kind != "p" {
            cmd.arg(major.to_string()).arg(minor.to_string());
        }
        assert!(cmd.status().unwrap().success(), "mknod {}", p.display());
    }

    /// `sniffer sbom --dir ROOT` under the limits, through `wrap` (a command prefix) and
    /// with `env`; asserts it finished in time and showed the canary nowhere.
    fn scan_with(&self, wrap: &[&str], env: &[(&str, &str)]) -> Scan {
        self.scan_args(wrap, env, &[])
    }

    /// [`Case::scan_with`] with more arguments for `sniffer sbom`.
    fn scan_args(&self, wrap: &[&str], env: &[(&str, &str)], args: &[&str]) -> Scan {
        let start = Instant::now();
        let mut cmd = Command::new(wrap.first().copied().unwrap_or("prlimit"));
        if !wrap.is_empty() {
            cmd.args(&wrap[1..]).arg("prlimit");
        }
        cmd.args([MEMORY_LIMIT, "--", "timeout", "-s", "KILL"]).arg(TIME_LIMIT.as_secs().to_string());
        cmd.args([testkit::sniffer(), "sbom", "--dir"]).arg(&self.root).args(args).envs(env.iter().copied());
        let out = cmd.output().unwrap();
        let took = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "scan failed or was killed after {took:?} ({}): {stderr}", out.status);
        assert!(took < TIME_LIMIT, "took {took:?}");
        for (what, text) in [("SBOM", &stdout), ("standard error", &stderr)] {
            assert!(!text.contains(&self.canary), "the canary reached the {what}: {text}");
            assert!(!text.contains(['\u{1b}', '\u{7}', '\u{9b}']), "raw control characters in the {what}: {text:?}");
        }
        let sbom: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        Scan { sbom, stderr, took }
    }

    fn scan(&self) -> Scan {
        self.scan_with(&[], &[])
    }
}

struct Scan {
    sbom: serde_json::Value,
    stderr: String,
    took: Duration,
}

impl Scan {
    fn names(&self) -> Vec<String> {
        self.sbom["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    }

    fn warned(&self, path: &str, words: &str) {
        let found = self.sbom["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["path"].as_str().unwrap().ends_with(path) && w["message"].as_str().unwrap().contains(words));
        assert!(found, "no warning on {path} saying {words:?}: {}", self.sbom["warnings"]);
    }
}

const STATUS_X: &str = "Package: x\nVersion: 1\nStatus: install ok installed\nArchitecture: all\n\n";

#[test]
fn device_nodes_and_fifos_are_never_read() {
    // The host's own disk as the dpkg database: its blocks would be parsed into the SBOM.
    let disk = Case::new();
    let (major, minor) = {
        let out = Command::new("stat").args(["-c", "%D", "/var/tmp"]).output().unwrap();
        let dev = u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap();
        (dev >> 8, dev & 0xff)
    };
    disk.node("var/lib/dpkg/status", "b", major, minor);
    let scan = disk.scan();
    scan.warned("/var/lib/dpkg/status", "not a regular file");

    // /dev/zero as a file list, FIFOs as the rpm database and as a jar: not opened, no hang.
    let c = Case::new();
    c.file("var/lib/dpkg/status", STATUS_X);
    c.node("var/lib/dpkg/info/x.list", "c", 1, 5);
    c.node("var/lib/rpm/rpmdb.sqlite", "p", 0, 0);
    c.node("opt/app.jar", "p", 0, 0);
    let scan = c.scan();
    assert_eq!(scan.names(), ["x"]);
    scan.warned("/var/lib/dpkg/info/x.list", "not a regular file");
    scan.warned("/var/lib/rpm/rpmdb.sqlite", "not a regular file");
    // The walk never hands a FIFO to a cataloger at all.
}

#[test]
fn symlinks_to_host_paths_resolve_inside_the_root() {
    let c = Case::new();
    // A host directory whose entry is named after the canary, as status.d.
    std::fs::create_dir_all(c.outside.join("status.d")).unwrap();
    std::fs::write(c.outside.join("status.d").join(&c.canary), STATUS_X.replace("x", &c.canary)).unwrap();
    c.dir("var/lib/dpkg");
    symlink(c.outside.join("status.d"), c.root.join("var/lib/dpkg/status.d")).unwrap();
    // The host's file as the rpm database and as the dpkg status, by absolute and by
    // relative links.
    c.dir("usr/lib/sysimage/rpm");
    symlink(c.outside.join("secret"), c.root.join("usr/lib/sysimage/rpm/rpmdb.sqlite")).unwrap();
    symlink(
        format!("../../../../../../../../..{}", c.outside.join("secret").display()),
        c.root.join("var/lib/dpkg/status"),
    )
    .unwrap();
    let scan = c.scan();
    assert!(scan.names().is_empty(), "{:?}", scan.names());
}

/// The container case: the root's `/proc` is a real procfs (mounted here in a private
/// mount namespace, as a runtime mounts one in every container), and in it
/// `/proc/self/environ` is the *agent's* environment, token included. A package's RECORD
/// and METADATA that are links into it must not be read.
#[test]
fn a_procfs_inside_the_root_is_never_read() {
    let c = Case::new();
    c.dir("proc");
    let site = "usr/lib/python3/dist-packages";
    c.file(&format!("{site}/ok-1.0.dist-info/METADATA"), "Metadata-Version: 2.1\nName: ok\nVersion: 1.0\n");
    let evil = c.dir(&format!("{site}/evil-1.0.dist-info"));
    symlink("/proc/self/environ", evil.join("RECORD")).unwrap();
    c.file(&format!("{site}/evil-1.0.dist-info/METADATA"), "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n");
    let stolen = c.dir(&format!("{site}/stolen-1.0.dist-info"));
    symlink("../../../../../proc/self/environ", stolen.join("METADATA")).unwrap();
    let root = c.root.to_str().unwrap().to_string();
    let mount = format!("mount -t proc proc {root}/proc && exec \"$@\"");
    let token = c.canary.clone();
    let scan = c.scan_with(
        &["unshare", "-m", "--propagation", "private", "sh", "-c", &mount, "sh"],
        &[("SNIFFER_BACKEND_TOKEN", &token)],
    );
    let mut names = scan.names();
    names.sort();
    assert_eq!(names, ["evil", "ok"]);
    scan.warned("evil-1.0.dist-info/RECORD", "another mount");
    scan.warned("stolen-1.0.dist-info/METADATA", "another mount");
}

#[test]
fn a_name_that_is_not_utf8_does_not_lose_the_sbom() {
    let c = Case::new();
    let site = c.dir("usr/lib/python3/dist-packages");
    let odd = site.join(std::ffi::OsStr::from_bytes(b"\xff\xfe"));
    std::fs::create_dir_all(odd.join("odd-1.0.dist-info")).unwrap();
    std::fs::write(odd.join("odd-1.0.dist-info/METADATA"), "Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n").unwrap();
    c.file(
        "usr/lib/python3/dist-packages/fine-2.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: fine\nVersion: 2.0\n",
    );
    let scan = c.scan();
    let mut names = scan.names();
    names.sort();
    assert_eq!(names, ["fine", "odd"]);
    let odd = scan.sbom["packages"].as_array().unwrap().iter().find(|p| p["name"] == "odd").unwrap();
    assert_eq!(odd["found_at"], "/usr/lib/python3/dist-packages/\\xff\\xfe/odd-1.0.dist-info/METADATA");
}

#[test]
fn control_characters_from_names_never_reach_the_terminal() {
    let c = Case::new();
    c.file("opt/\u{1b}]0;pwned\u{7}\u{1b}[2J.jar", "not a zip");
    c.file(
        "var/lib/dpkg/status",
        "Package: \u{1b}[31mred\nVersion: 1\nStatus: install ok installed\n\nbroken line \u{9b}2J\n",
    );
    let scan = c.scan();
    assert!(scan.stderr.contains("\\u{1b}]0;pwned\\u{7}"), "{}", scan.stderr);
}

#[test]
fn archives_finish_within_their_budgets() {
    let c = Case::new();
    // A sparse terabyte named like a jar, and sparse 3 GiB (within the size budget) that
    // zip would search backwards, all of it, for a directory record.
    let huge = c.file("opt/huge.jar", "");
    assert!(Command::new("truncate").args(["-s", "1T"]).arg(&huge).status().unwrap().success());
    let sparse = c.file("opt/sparse.jar", "");
    assert!(Command::new("truncate").args(["-s", "3G"]).arg(&sparse).status().unwrap().success());
    // 4 MiB of end-of-central-directory records, each one a candidate zip would try.
    let record: Vec<u8> = [
        0x06054b50u32.to_le_bytes().as_slice(),
        &[0, 0, 0, 0, 1, 0, 1, 0],
        &46u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &[0, 0],
    ]
    .concat();
    c.file("opt/ends.jar", record.repeat((4 << 20) / record.len()));
    // 4,000 names of nested jars sharing one local entry: the same 16 MiB of zeros each.
    testkit::archive::shared_entry_zip(
        &c.dir("opt").join("bomb.jar"),
        4000,
        |i| format!("lib/e{i}.jar"),
        "a.jar",
        0,
        16 << 20,
    );
    let scan = c.scan();
    scan.warned("/opt/huge.jar", "budget for an archive");
    scan.warned("/opt/sparse.jar", "no end-of-central-directory record");
    scan.warned("/opt/bomb.jar", "share or overlap");
    // zip 2 tried each candidate record until the work budget ran out; zip 9 refuses the
    // archive at the first one whose directory is not there. Either way it is not read.
    scan.warned("/opt/ends.jar", "not a readable Java archive");
    assert_eq!(scan.sbom["incomplete"], true);
    println!("archives scanned in {:?}", scan.took);
}

/// Nested jars past the 64 MiB held in memory: a stored one (as Spring Boot stores them)
/// is read in place, a range of the outer file; a deflated one is inflated as a stream,
/// with a jar stored inside it; a deflated bomb stops at the work budget. All within the
/// suite's time and memory limits.
#[test]
fn nested_jars_past_64_mib_are_read_in_place_or_streamed_within_the_budgets() {
    let c = Case::new();
    let app = c.dir("opt").join("app.jar");
    let bomb = c.dir("opt").join("bomb.jar");
    let script = r#"
import sys, zipfile
app, bomb, work = sys.argv[1], sys.argv[2], sys.argv[3]
MiB = 1 << 20
def pom(z, artifact, version):
    z.writestr(f"META-INF/maven/org.example/{artifact}/pom.properties",
               f"groupId=org.example\nartifactId={artifact}\nversion={version}\n")
def filler(z, name, mib, method):
    info = zipfile.ZipInfo(name)
    info.compress_type = method
    with z.open(info, "w", force_zip64=True) as f:
        for _ in range(mib):
            f.write(b"\0" * MiB)
# 250 MiB, stored.
with zipfile.ZipFile(f"{work}/big-stored.jar", "w") as z:
    pom(z, "big-stored", "1.0")
    filler(z, "data/filler.bin", 250, zipfile.ZIP_STORED)
# 100 MiB once inflated, holding a small stored jar.
with zipfile.ZipFile(f"{work}/tiny.jar", "w") as z:
    pom(z, "tiny", "3.0")
with zipfile.ZipFile(f"{work}/big-deflated.jar", "w") as z:
    pom(z, "big-deflated", "2.0")
    filler(z, "data/filler.bin", 100, zipfile.ZIP_STORED)
    z.write(f"{work}/tiny.jar", "lib/tiny-3.0.jar", compress_type=zipfile.ZIP_STORED)
with zipfile.ZipFile(app, "w") as z:
    z.write(f"{work}/big-stored.jar", "BOOT-INF/lib/big-stored-1.0.jar", compress_type=zipfile.ZIP_STORED)
    z.write(f"{work}/big-deflated.jar", "BOOT-INF/lib/big-deflated-2.0.jar", compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
# A nested jar of 1 GiB of zeros, deflated to a few MiB.
with zipfile.ZipFile(f"{work}/zeros.jar", "w") as z:
    filler(z, "zeros.bin", 1024, zipfile.ZIP_STORED)
with zipfile.ZipFile(bomb, "w") as z:
    z.write(f"{work}/zeros.jar", "lib/zeros.jar", compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
"#;
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let made = Command::new("python3").args(["-c", script]).arg(&app).arg(&bomb).arg(work.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    drop(work);
    // The bomb against a work budget of 128 MiB (the default is 1 GiB).
    let scan = c.scan_args(&[], &[], &["--max-archive-bytes", "134217728"]);
    let packages: Vec<(String, String, String)> = scan.sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("version"), s("found_at"))
        })
        .collect();
    for (name, version, at) in [
        ("org.example:big-stored", "1.0", "/opt/app.jar!/BOOT-INF/lib/big-stored-1.0.jar"),
        ("org.example:big-deflated", "2.0", "/opt/app.jar!/BOOT-INF/lib/big-deflated-2.0.jar"),
        ("org.example:tiny", "3.0", "/opt/app.jar!/BOOT-INF/lib/big-deflated-2.0.jar!/lib/tiny-3.0.jar"),
    ] {
        assert!(
            packages.contains(&(name.to_string(), version.to_string(), at.to_string())),
            "{name} {version} at {at} not in {packages:?}"
        );
    }
    let on_app: Vec<&serde_json::Value> =
        scan.sbom["warnings"].as_array().unwrap().iter().filter(|w| w["path"] == "/opt/app.jar").collect();
    assert!(on_app.is_empty(), "{on_app:?}");
    scan.warned("/opt/bomb.jar", "work budget");
    println!("nested jars scanned in {:?}", scan.took);
}

#[test]
fn package_databases_finish_within_their_budgets() {
    // 1.2 million dpkg paragraphs (62 MiB, within the size limit).
    let c = Case::new();
    c.file("var/lib/dpkg/status", "Package: p\nVersion: 1\nStatus: install ok installed\n\n".repeat(1_200_000));
    // One apk package owning 12 million files (50 MiB).
    c.file("lib/apk/db/installed", format!("P:x\nV:1\nF:d\n{}", "R:f\n".repeat(12_000_000)));
    let scan = c.scan();
    scan.warned("/var/lib/dpkg/status", "budget");
    scan.warned("/lib/apk/db/installed", "budget");
    assert_eq!(scan.sbom["incomplete"], true);
    println!("databases scanned in {:?}", scan.took);
}

/// The budgets are the operator's to set: with room for one package, one is listed, the
/// SBOM says it is incomplete, and the warning names the budget.
#[test]
fn budgets_are_configurable() {
    let c = Case::new();
    c.file("var/lib/dpkg/status", format!("{STATUS_X}Package: y\nVersion: 2\nStatus: install ok installed\n\n"));
    let scan = c.scan_args(&[], &[], &["--max-packages", "1"]);
    assert_eq!(scan.names(), ["x"]);
    assert_eq!(scan.sbom["incomplete"], true);
    scan.warned("/var/lib/dpkg/status", "more than 1 packages");
    let all = c.scan();
    assert_eq!(all.names().len(), 2);
    assert!(all.sbom.get("incomplete").is_none());
}

/// File lists whose paths are long chains of links with long targets: the file index
/// used to resolve each again and again. It stops at its budget, takes the rest as
/// listed, and SBOM' says its ownership is approximate.
#[test]
fn chains_of_links_in_file_lists_finish_within_the_index_budget() {
    let c = Case::new();
    let dir = c.dir("c");
    // link0 -> a/../a/../…/link1 (800 pairs), …, link39 -> real
    let detour = "a/../".repeat(800);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    for i in 0..40 {
        let next = if i == 39 { "real".to_string() } else { format!("link{}", i + 1) };
        symlink(format!("{detour}{next}"), dir.join(format!("link{i}"))).unwrap();
    }
    c.file("c/real", "x");
    c.file("var/lib/dpkg/status", STATUS_X);
    c.file("var/lib/dpkg/info/x.list", "/c/link0\n".repeat(20_000));
    let opened = c.outside.join("opened");
    std::fs::write(&opened, "/c/real\n").unwrap();
    let scan = c.scan_args(&[], &[], &["--opened", opened.to_str().unwrap()]);
    assert_eq!(scan.sbom["complete"], false, "{}", scan.sbom);
    assert!(scan.sbom["warnings"].to_string().contains("steps"), "{}", scan.sbom["warnings"]);
    println!("chains resolved in {:?}", scan.took);
}

/// The Python readers added for eggs and vendored distributions: a zipped egg that is a
/// bomb or a sparse file, an `EGG-INFO` and a `vendor.txt` that are FIFOs or links out of
/// the root, pins naming paths outside `_vendor`, and control characters in names.
#[test]
fn eggs_and_vendor_lists_stay_inside_the_root_and_their_budgets() {
    let c = Case::new();
    let site = "usr/lib/python3/site-packages";
    testkit::archive::shared_entry_zip(
        &c.dir(site).join("bomb-1.0.egg"),
        4000,
        |i| format!("EGG-INFO/e{i}"),
        "EGG-INFO/PKG-INFO",
        0,
        16 << 20,
    );
    let sparse = c.file(&format!("{site}/sparse-1.0.egg"), "");
    assert!(Command::new("truncate").args(["-s", "3G"]).arg(&sparse).status().unwrap().success());
    // An unzipped egg whose metadata is a link to the canary, another's a FIFO.
    c.dir(&format!("{site}/linked-1.0.egg/EGG-INFO"));
    symlink(c.outside.join("secret"), c.root.join(format!("{site}/linked-1.0.egg/EGG-INFO/PKG-INFO"))).unwrap();
    c.node(&format!("{site}/fifo-1.0.egg/EGG-INFO/PKG-INFO"), "p", 0, 0);
    // vendor.txt as a link out of the root, as a FIFO, and pins naming paths outside it.
    c.dir(&format!("{site}/a/_vendor"));
    symlink(c.outside.join("secret"), c.root.join(format!("{site}/a/_vendor/vendor.txt"))).unwrap();
    c.node(&format!("{site}/b/_vendor/vendor.txt"), "p", 0, 0);
    c.file(
        &format!("{site}/c/_vendor/vendor.txt"),
        "../../../../outside==1\n/etc==2\nok==1.0\n..==3\nbell\u{7}\u{1b}[31m==4\nesc==\u{1b}[2J\n",
    );
    c.dir(&format!("{site}/c/_vendor/ok"));
    c.dir(&format!("{site}/c/_vendor/__"));
    // The pins' names as directories next to the root, where a join would lead.
    std::fs::create_dir_all(c.outside.join("etc")).unwrap();
    // A distutils egg-info file full of control characters.
    c.file(&format!("{site}/x.egg-info"), "Name: x\u{1b}]0;owned\u{7}\nVersion: 1\u{9b}2\n");
    let scan = c.scan();
    scan.warned(&format!("{site}/bomb-1.0.egg"), "share or overlap");
    scan.warned(&format!("{site}/sparse-1.0.egg"), "no end-of-central-directory record");
    let mut names = scan.names();
    names.sort();
    // Only the pin whose module is inside `_vendor` and whose name is a name; the
    // egg-info's name and version, control characters and all, stay data in the JSON.
    assert_eq!(names, ["ok", "x\u{1b}]0;owned\u{7}"], "{}", scan.sbom);
}

/// Debian's Maven repository read for jar coordinates: links out of the root, in a loop,
/// and named with control characters give no coordinates and read nothing outside.
#[test]
fn maven_repository_links_stay_inside_the_root() {
    let c = Case::new();
    let repo = "usr/share/maven-repo";
    c.dir(&format!("{repo}/org/x/a/1"));
    c.dir(&format!("{repo}/org/x/b/1"));
    c.dir(&format!("{repo}/org/x/c\u{1b}[2J/1"));
    // A jar outside the root, and the link to it.
    std::fs::copy(testkit::fixtures::java_root().join("usr/share/java/aopalliance-1.0.jar"), c.outside.join("a-1.jar"))
        .unwrap();
    symlink(c.outside.join("a-1.jar"), c.root.join(format!("{repo}/org/x/a/1/a-1.jar"))).unwrap();
    // Two links pointing at each other.
    symlink("b-1.jar.loop", c.root.join(format!("{repo}/org/x/b/1/b-1.jar"))).unwrap();
    symlink("b-1.jar", c.root.join(format!("{repo}/org/x/b/1/b-1.jar.loop"))).unwrap();
    symlink("/usr/share/java/c.jar", c.root.join(format!("{repo}/org/x/c\u{1b}[2J/1/c\u{1b}[2J-1.jar"))).unwrap();
    c.file("usr/share/java/c.jar", "not a zip");
    // 25,000 links, each a chain of 30 links: resolved within one budget for them all.
    let chain = c.dir("usr/share/chain");
    for i in 0..30 {
        symlink(format!("../chain/l{}", i + 1), chain.join(format!("l{i}"))).unwrap();
    }
    for i in 0..25_000 {
        let dir = c.dir(&format!("{repo}/org/y/m{i}/1"));
        symlink("/usr/share/chain/l0", dir.join(format!("m{i}-1.jar"))).unwrap();
    }
    let scan = c.scan();
    // Nothing listed: the jar outside was not read, the loop and the bad name went nowhere.
    assert_eq!(scan.names(), Vec::<String>::new(), "{}", scan.sbom);
    scan.warned("/usr/share/java/c.jar", "not a readable Java archive");
    scan.warned("-1.jar", "links or");
    println!("repository links scanned in {:?}", scan.took);
}

/// Files named like interpreters are read for the version compiled into them: thousands of
/// them (each an ELF whose `.rodata` is 16 MiB, the most read, or claims 64 MiB, refused)
/// are read a few at a time, within the budget, and the rest skipped with a warning.
#[test]
fn files_named_like_interpreters_are_read_within_a_budget() {
    let c = Case::new();
    // A minimal 64-bit ELF: a header and a section table whose `.rodata` is a sparse
    // 64 MiB at the end of the file, holding one version string.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1;
    let names = b"\0.rodata\0.shstrtab\0";
    let names_at = 64u64;
    let rodata_at = 4096u64;
    let rodata_len = 16u64 << 20;
    let shoff = 256u64;
    elf.extend_from_slice(names);
    elf.resize(shoff as usize, 0);
    let section = |name: u32, offset: u64, size: u64| {
        let mut s = vec![0u8; 64];
        s[..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&1u32.to_le_bytes());
        s[24..32].copy_from_slice(&offset.to_le_bytes());
        s[32..40].copy_from_slice(&size.to_le_bytes());
        s
    };
    elf.extend(vec![0u8; 64]);
    elf.extend(section(1, rodata_at, rodata_len));
    elf.extend(section(9, names_at, names.len() as u64));
    elf[40..48].copy_from_slice(&shoff.to_le_bytes()); // e_shoff
    elf[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    elf[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    elf[62..64].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    elf.resize(rodata_at as usize, 0);
    elf.extend_from_slice(b"\x003.12.7\x00");
    for i in 0..2000 {
        let p = c.file(&format!("opt/p{i}/python3.12"), &elf);
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(rodata_at + rodata_len).unwrap();
    }
    let mut claims = elf.clone();
    claims[shoff as usize + 64 + 32..shoff as usize + 64 + 40].copy_from_slice(&(64u64 << 20).to_le_bytes());
    c.file("opt/big/libpython3.12.so", &claims);
    let scan = c.scan();
    assert!(scan.names().iter().all(|n| n == "python"), "{:?}", scan.names());
    assert_eq!(scan.names().len(), 1, "one interpreter, owning the copies read");
    scan.warned("3.12", "more than 64 files named like interpreters");
    assert_eq!(scan.sbom["incomplete"], true);
    println!("interpreters scanned in {:?}", scan.took);
}
