//! The hostile-image cases inside a real container, scanned by the daemon through
//! `/proc/PID/root`. The container sees the host's processes (here the host's procfs is
//! mounted in it at `/hostproc`, as a `hostPID` pod's `/proc` would show them), so a link
//! into it resolves, for the agent reading through the container's root, to the agent's
//! own `/proc/self`: a package whose RECORD links to `/hostproc/self/environ` once copied
//! the agent's environment, backend token included, into the SBOM. The container also plants a name that is not UTF-8 (once a
//! panic in the daemon), a FIFO as the rpm database (once a hang) and a jar whose name
//! drives a terminal. The daemon must store the SBOM without the token, keep answering,
//! and hold the token neither in its environment nor in any output.

use testkit::{Containerd, daemon_args, receiver};

const PLANT: &str = r#"
import os, time
site = '/usr/lib/python3/dist-packages'
evil = site + '/evil-1.0.dist-info'
os.makedirs(evil, exist_ok=True)
open(evil + '/METADATA', 'w').write('Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n')
os.symlink('/hostproc/self/environ', evil + '/RECORD')
odd = os.fsencode(site) + b'/\xff\xfe/odd-1.0.dist-info'
os.makedirs(odd, exist_ok=True)
open(odd + b'/METADATA', 'w').write('Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n')
os.makedirs('/var/lib/rpm', exist_ok=True)
os.mkfifo('/var/lib/rpm/rpmdb.sqlite')
open('/opt/\x1b]0;pwned\x07.jar', 'w').write('not a zip')
open('/tmp/ready', 'w').close()
time.sleep(3600)
"#;

#[test]
fn a_hostile_container_cannot_read_the_agents_token_or_stop_the_daemon() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let ctd = Containerd::start(&dir.join("containerd"));
    let id = ctd.run_with("evil", &["--mount", "type=bind,src=/proc,dst=/hostproc,options=rbind:ro"], PLANT);
    ctd.wait_file(&id, "/tmp/ready");

    // The daemon starts after: it finds the container running and reads its root.
    let canary = format!("T0KEN{}", std::process::id());
    let (url, _received) = receiver(0);
    let metrics = testkit::free_addr();
    // SAFETY: the test's own environment, set for the child only through the command
    // below would be cleaner, but the harness starts the daemon; no other thread of this
    // test reads the environment.
    // SAFETY: as said above, no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("SNIFFER_BACKEND_TOKEN", &canary) };
    // The container's root is what is read here (`--image-source root`, as without a
    // runtime that can show the image's layers), with its mounts and what it wrote.
    let d = daemon_args(dir, &ctd.socket, &url, &metrics, "daemon.log", 3600, &["--image-source", "root"]);
    // SAFETY: as above.
    unsafe { std::env::remove_var("SNIFFER_BACKEND_TOKEN") };
    let events = d.wait_event("the image SBOM", |e| e["event"] == "sbom_stored" || e["event"] == "sbom_failed");
    let stored = events.iter().find(|e| e["event"] == "sbom_stored").unwrap_or_else(|| panic!("{events:?}"));
    let digest = stored["digest"].as_str().unwrap().to_string();

    // The token is in no output and not in the daemon's environment.
    let environ = std::fs::read(format!("/proc/{}/environ", d.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(&canary), "the token is readable in /proc/PID/environ");
    let sbom = d.cli(&["sbom", &id]);
    assert!(sbom.status.success(), "{}", String::from_utf8_lossy(&sbom.stderr));
    let text = String::from_utf8_lossy(&sbom.stdout);
    assert!(!text.contains(&canary), "the token reached the SBOM");
    let sbom: serde_json::Value = serde_json::from_slice(&sbom.stdout).unwrap();
    let packages = sbom["packages"].as_array().unwrap();
    let evil = packages.iter().find(|p| p["name"] == "evil").expect("evil is listed, without files");
    assert!(evil.get("files").is_none_or(|f| f.as_array().unwrap().is_empty()), "{evil}");
    let odd = packages.iter().find(|p| p["name"] == "odd").expect("the non-UTF-8 path kept the SBOM");
    assert!(odd["found_at"].as_str().unwrap().contains("\\xff\\xfe"), "{odd}");
    let warnings = sbom["warnings"].to_string();
    assert!(warnings.contains("another mount"), "{warnings}");
    assert!(warnings.contains("rpmdb.sqlite"), "{warnings}");
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(!log.contains(&canary), "the token reached the log");

    // The socket is root's alone: mode 0600, and another user is refused.
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            std::os::unix::fs::MetadataExt::uid(&meta)
        ),
        (0o600, 0)
    );
    let nobody = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", testkit::sniffer(), "status", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(
        !nobody.status.success() && String::from_utf8_lossy(&nobody.stderr).contains("ermission denied"),
        "{nobody:?}"
    );

    // Tables stay clean, and the daemon still answers.
    for args in [&["vulns", digest.as_str()][..], &["containers"][..], &["events"][..]] {
        let out = d.cli(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(!shown.contains(['\u{1b}', '\u{7}']) && !shown.contains(&canary), "{args:?}: {shown:?}");
    }
}

/// By default the image SBOM is read from a read-only view of the image's own layers, as
/// containerd holds them: a container that added a package to its root, or removed one,
/// changes nothing for the other containers of its image. SBOM' is still checked against
/// the container's own root.
#[test]
fn the_image_sbom_comes_from_the_image_not_from_a_container() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let ctd = Containerd::start(&dir.join("containerd"));
    let plant = r#"
import os, shutil, time
site = '/usr/local/lib/python3.11/dist-packages'
os.makedirs(site + '/planted-6.6.6.dist-info', exist_ok=True)
open(site + '/planted-6.6.6.dist-info/METADATA', 'w').write('Metadata-Version: 2.1\nName: planted\nVersion: 6.6.6\n')
for d in os.listdir(site):
    if d.lower().startswith('jinja2-') and d.endswith('.dist-info'):
        shutil.rmtree(site + '/' + d)
open('/tmp/ready', 'w').close()
time.sleep(3600)
"#;
    let id = ctd.run("planter", plant);
    ctd.wait_file(&id, "/tmp/ready");
    let (url, _received) = receiver(0);
    let d = daemon_args(dir, &ctd.socket, &url, &testkit::free_addr(), "daemon.log", 3600, &[]);
    let events = d.wait_event("the image SBOM", |e| e["event"] == "sbom_stored" || e["event"] == "sbom_failed");
    assert!(events.iter().any(|e| e["event"] == "sbom_stored"), "{events:?}");
    let out = d.cli(&["sbom", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(sbom["root"].as_str().unwrap().starts_with("image layers "), "{}", sbom["root"]);
    let names: Vec<&str> = sbom["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"planted"), "a container's own package reached the image SBOM");
    assert!(
        names.iter().any(|n| n.eq_ignore_ascii_case("jinja2")),
        "a package the container removed vanished from the image SBOM"
    );
    // The view is gone again: nothing stays mounted under the state directory.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("sniffer-view"), "{mounts}");
}

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The ordinary rpm case through a real container: an rpm database in the container's
/// root, read by the daemon through `/proc/PID/root`. sqlite was once handed
/// `/proc/self/fd/N`, resolved it to the path as the container sees it and opened that
/// path on the host: the container's own database was never read.
#[test]
fn an_rpm_database_in_a_container_is_read_through_its_root() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    // A real sqlite rpm database: a package built with rpmbuild, installed with rpm.
    let (top, staging) = (dir.join("top"), dir.join("staging"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let spec = top.join("SPECS/hello-sniffer.spec");
    std::fs::write(
        &spec,
        "Name: hello-sniffer\nVersion: 1.2\nRelease: 3.fc40\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n%install\nmkdir -p %{buildroot}/usr/bin\necho x > %{buildroot}/usr/bin/hello-sniffer\n%files\n/usr/bin/hello-sniffer\n",
    )
    .unwrap();
    run(std::process::Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec));
    let package = top.join("RPMS/noarch/hello-sniffer-1.2-3.fc40.noarch.rpm");
    run(std::process::Command::new("rpm")
        .arg("--root")
        .arg(&staging)
        .args(["--define", "_dbpath /var/lib/rpm", "--nodeps", "--noscripts", "-i"])
        .arg(&package));

    let ctd = Containerd::start(&dir.join("containerd"));
    let id = ctd.run("rpm", "import time; open('/tmp/ready', 'w').close(); time.sleep(3600)");
    ctd.wait_file(&id, "/tmp/ready");
    // Into the container's own root, from the host: only there does the database exist.
    let pid = ctd.pid(&id).unwrap();
    let inside = std::path::PathBuf::from(format!("/proc/{pid}/root/var/lib/rpm"));
    std::fs::create_dir_all(&inside).unwrap();
    for entry in std::fs::read_dir(staging.join("var/lib/rpm")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), inside.join(entry.file_name())).unwrap();
    }
    assert!(!std::path::Path::new("/var/lib/rpm/rpmdb.sqlite").exists(), "the host must not hold the same path");

    let (url, _received) = receiver(0);
    let d = daemon_args(dir, &ctd.socket, &url, &testkit::free_addr(), "daemon.log", 3600, &["--image-source", "root"]);
    let events = d.wait_event("the image SBOM", |e| e["event"] == "sbom_stored" || e["event"] == "sbom_failed");
    assert!(events.iter().any(|e| e["event"] == "sbom_stored"), "{events:?}");
    let out = d.cli(&["sbom", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rpm = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "rpm")
        .unwrap_or_else(|| panic!("no rpm package: {}", sbom["warnings"]));
    assert_eq!((rpm["name"].as_str(), rpm["version"].as_str()), (Some("hello-sniffer"), Some("1.2-3.fc40")));
    assert!(rpm["files"].as_array().unwrap().iter().any(|f| f == "/usr/bin/hello-sniffer"), "{rpm}");
}
