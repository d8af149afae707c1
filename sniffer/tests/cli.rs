//! The `sniffer` binary as a user runs it: `trace`, and the daemon with its CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SNIFFER: &str = env!("CARGO_BIN_EXE_sniffer");

fn sniffer(args: &[&str]) -> Output {
    Command::new(SNIFFER).args(args).output().expect("running sniffer")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn trace_lists_each_file_once_and_exits_with_the_command_status() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::write(base.join("t.txt"), "x").unwrap();
    let list = base.join("list");
    let script = format!("cat {0}/t.txt {0}/t.txt >/dev/null; exit 7", base.display());
    let out =
        Command::new(SNIFFER).args(["trace", "-o"]).arg(&list).args(["--", "/bin/sh", "-c", &script]).output().unwrap();
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    let lines = std::fs::read_to_string(&list).unwrap();
    let wanted = format!("open {}/t.txt", base.display());
    assert_eq!(lines.lines().filter(|l| *l == wanted).count(), 1, "{lines}");
    assert!(lines.lines().any(|l| l == "exec /usr/bin/cat"), "{lines}");

    let out = sniffer(&["trace", "--json", "--", "/bin/cat", base.join("t.txt").to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let objects: Vec<serde_json::Value> =
        stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    let t = objects.iter().find(|o| o["path"] == base.join("t.txt").to_str().unwrap()).expect("t.txt listed");
    assert_eq!(t["kind"], "open");
    assert_eq!(t["comm"], "cat");
    assert!(t["pid"].as_u64().unwrap() > 0);
}

#[test]
fn clear_errors_for_non_root_and_bad_flags() {
    let out = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", SNIFFER, "trace", "--", "/bin/true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("needs root"), "{}", text(&out.stderr));

    let out = sniffer(&["trace", "--ring-bytes", "1000", "--", "/bin/true"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("power of two"), "{}", text(&out.stderr));
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sniffer.sock");
        let child =
            Command::new(SNIFFER).args(["run", "--socket"]).arg(&socket).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() || !Self::ctl(&socket, &["status"]).status.success() {
            assert!(Instant::now() < deadline, "daemon did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon { child, socket, _dir: dir }
    }

    fn ctl(socket: &Path, args: &[&str]) -> Output {
        Command::new(SNIFFER).args(args).arg("--socket").arg(socket).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = Self::ctl(&self.socket, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

#[test]
fn daemon_watches_a_cgroup_and_serves_its_files() {
    let daemon = Daemon::start();
    let cgroup =
        sniffer::cgroup::ScratchCgroup::create(&format!("sniffer-test-daemon-{}", std::process::id())).unwrap();
    let watched = daemon.json(&["watch", cgroup.dir().to_str().unwrap(), "--name", "web"]);
    assert_eq!(watched["name"], "web");
    assert_eq!(watched["cgroup_id"], cgroup.id());

    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let file = std::fs::canonicalize(dir.path()).unwrap().join("served.txt");
    std::fs::write(&file, "x").unwrap();
    let mut cat = Command::new("/bin/cat");
    cat.arg(&file).stdout(Stdio::null());
    let _procs = cgroup.join_on_spawn(&mut cat).unwrap();
    assert!(cat.status().unwrap().success());

    let deadline = Instant::now() + Duration::from_secs(10);
    let files = loop {
        let reply = daemon.json(&["files", "web"]);
        let files = reply["files"].as_array().unwrap().clone();
        if files.iter().any(|f| f["path"] == file.to_str().unwrap()) {
            break files;
        }
        assert!(Instant::now() < deadline, "served.txt never listed: {reply}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let served = files.iter().find(|f| f["path"] == file.to_str().unwrap()).unwrap();
    assert_eq!(served["exe"], "/usr/bin/cat");
    assert_eq!(served["opened"], true);
    assert!(files.iter().any(|f| f["path"] == "/usr/bin/cat" && f["executed"] == true));

    // A file opened only through io_uring is served too.
    let program = dir.path().join("uring-open");
    testkit::uring::build(&program);
    let uring_file = std::fs::canonicalize(dir.path()).unwrap().join("through-io-uring.txt");
    std::fs::write(&uring_file, "y").unwrap();
    let mut open = Command::new(&program);
    open.arg(&uring_file).stdout(Stdio::null());
    let procs = cgroup.join_on_spawn(&mut open).unwrap();
    assert!(open.status().unwrap().success());
    drop(procs);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = daemon.json(&["files", "web"]);
        if reply["files"].as_array().unwrap().iter().any(|f| f["path"] == uring_file.to_str().unwrap()) {
            break;
        }
        assert!(Instant::now() < deadline, "the io_uring open was never listed: {reply}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let status = daemon.json(&["status"]);
    assert!(status["programs"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("sys_exit_openat@")));
    assert!(
        status["programs"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("io_uring_complete@"))
    );
    assert_eq!(status["watched"], 1);
    assert!(status["events"].as_u64().unwrap() >= 3);
    let containers = daemon.json(&["containers"]);
    assert_eq!(containers[0]["complete"], true);

    // Tables by default.
    let table = text(&Daemon::ctl(&daemon.socket, &["files", "web"]).stdout);
    assert!(table.contains("PATH") && table.contains("served.txt"), "{table}");

    // A second daemon on the same socket is refused, naming it.
    let second = Command::new(SNIFFER).args(["run", "--socket"]).arg(&daemon.socket).output().unwrap();
    assert!(!second.status.success());
    assert!(text(&second.stderr).contains("is taken"), "{}", text(&second.stderr));

    // Unknown container: a clear error.
    let out = Daemon::ctl(&daemon.socket, &["files", "nope"]);
    assert!(!out.status.success() && text(&out.stderr).contains("no container \"nope\""));

    let unwatched = daemon.json(&["unwatch", "web"]);
    assert_eq!(unwatched["watching"], false);
    assert_eq!(daemon.json(&["status"])["watched"], 0);
}

#[test]
fn client_without_daemon_says_so() {
    let out = sniffer(&["status", "--socket", "/nonexistent/sniffer.sock"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is `sniffer run` running?"), "{}", text(&out.stderr));
}

#[test]
fn sbom_of_a_directory_lists_packages_with_their_files() {
    let out = sniffer(&["sbom", "--dir", "/usr/lib/node_modules/npm"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = sbom["packages"].as_array().unwrap();
    let semver = packages.iter().find(|p| p["name"] == "semver").expect("npm depends on semver");
    assert_eq!(semver["kind"], "npm");
    assert!(semver["purl"].as_str().unwrap().starts_with("pkg:npm/semver@"));
    assert!(text(&out.stderr).contains("npm"), "summary by kind: {}", text(&out.stderr));

    for (format, key, value) in [("cyclonedx", "specVersion", "1.6"), ("spdx", "spdxVersion", "SPDX-2.3")] {
        let out = sniffer(&["sbom", "--dir", "/usr/lib/node_modules/npm", "--format", format]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc[key], value);
    }

    let out = sniffer(&["sbom", "--dir", "/nonexistent-root"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.matches("/nonexistent-root").count(), 1, "{err}");
}

/// The whole tool chain as a user runs it on the real Debian root: trace a chrooted
/// `import requests`, build SBOM and SBOM', import the real OSV fixtures, scan in every
/// format, and fail a pipeline only on findings in code that ran.
#[test]
fn trace_sbom_prime_and_scan_end_to_end_on_the_debian_root() {
    let root = testkit::fixtures::bookworm_root();
    assert!(root.join("usr/bin/python3").exists(), "{} missing: run `cargo xtask setup`", root.display());
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Paths come out inside the chroot, as the workload saw them.
    let out = Command::new(SNIFFER)
        .args(["trace", "-o", &s(&t("opened.txt")), "--", "chroot", &s(&root)])
        .args(["/usr/bin/env", "PYTHONDONTWRITEBYTECODE=1", "python3", "-c", "import requests"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let opened = std::fs::read_to_string(t("opened.txt")).unwrap();
    assert!(
        opened.lines().any(|l| l.starts_with("open /usr/local/lib/python3.11/dist-packages/requests/")),
        "{opened}"
    );

    let full = t("sbom.json");
    let runtime = t("prime.cdx.json");
    assert!(sniffer(&["sbom", "--dir", &s(&root), "-o", &s(&full)]).status.success());
    let out = sniffer(&[
        "sbom",
        "--dir",
        &s(&root),
        "--opened",
        &s(&t("opened.txt")),
        "--format",
        "cyclonedx",
        "-o",
        &s(&runtime),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&runtime).unwrap()).unwrap();
    let names: Vec<&str> = doc["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for used in ["requests", "urllib3", "idna", "chardet", "certifi", "python3.11-minimal", "libc6"] {
        assert!(names.contains(&used), "{used} not in SBOM' {names:?}");
    }
    for unused in ["Jinja2", "MarkupSafe", "lodash", "minimist"] {
        assert!(!names.contains(&unused), "{unused} in SBOM' {names:?}");
    }

    let db = t("vuln.db");
    let fixtures = testkit::fixtures::osv();
    let out = sniffer(&["db", "import", &s(&fixtures), "--db", &s(&db)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sniffer(&["db", "status", "--db", &s(&db), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["ecosystems"]["PyPI"], 2651);

    let scan = |format: &str, extra: &[&str]| {
        let mut args = vec!["scan", "--sbom", full.to_str().unwrap(), "--filtered", runtime.to_str().unwrap()];
        args.extend(["--db", db.to_str().unwrap(), "--format", format]);
        args.extend(extra);
        sniffer(&args)
    };
    let out = scan("json", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let find = |id: &str| findings.iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("{id} missing"));
    assert_eq!(find("PYSEC-2023-74")["relevant"], true);
    assert!(find("PYSEC-2023-74")["evidence"][0].as_str().unwrap().contains("/requests/"));
    assert_eq!(find("PYSEC-2021-66")["relevant"], false, "jinja2 never ran");
    assert_eq!(find("GHSA-xvch-5gv4-984h")["relevant"], false, "minimist never ran");

    // OpenVEX: not_affected with the execute-path justification for unused packages.
    let vex: serde_json::Value = serde_json::from_slice(&scan("openvex", &[]).stdout).unwrap();
    let st = |cve: &str| {
        vex["statements"].as_array().unwrap().iter().find(|s| s["vulnerability"]["name"] == cve).unwrap().clone()
    };
    assert_eq!(st("CVE-2020-28493")["status"], "not_affected");
    assert_eq!(st("CVE-2020-28493")["justification"], "vulnerable_code_not_in_execute_path");
    assert_eq!(st("CVE-2023-32681")["status"], "affected");
    assert!(st("CVE-2023-32681")["status_notes"].as_str().unwrap().contains("requests/"));

    // CycloneDX VEX validates against the official 1.6 schema.
    let cdx = t("vex.cdx.json");
    assert!(scan("cyclonedx-vex", &["-o", &s(&cdx)]).status.success());
    let validator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/validators/bin/python");
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
                  err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nprint(err or 'valid')\nsys.exit(1 if err else 0)\n";
    let out = Command::new(&validator).args(["-c", script]).arg(&cdx).output().unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    let jinja = doc["vulnerabilities"].as_array().unwrap().iter().find(|v| v["id"] == "PYSEC-2021-66").unwrap();
    assert_eq!(jinja["analysis"]["state"], "not_affected");

    let sarif: serde_json::Value = serde_json::from_slice(&scan("sarif", &[]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), findings.len());

    // --fail-on: the critical minimist finding never ran, so only `high` (urllib3, which
    // ran) fails the pipeline; without SBOM' the critical one counts.
    assert_eq!(scan("table", &["--fail-on", "critical"]).status.code(), Some(0));
    assert_eq!(scan("table", &["--fail-on", "high"]).status.code(), Some(3));
    let out = sniffer(&["scan", "--sbom", &s(&full), "--db", &s(&db), "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(3));
    let table = text(&out.stdout);
    assert!(table.lines().next().unwrap().starts_with("SEVERITY"), "{table}");

    // Wrong input gets an error naming it.
    let out = sniffer(&["scan", "--sbom", &s(&t("opened.txt")), "--db", &s(&db)]);
    assert!(!out.status.success() && text(&out.stderr).contains("opened.txt"), "{}", text(&out.stderr));
    let out = sniffer(&["scan", "--sbom", &s(&full), "--db", &s(&t("none.db"))]);
    assert!(!out.status.success() && text(&out.stderr).contains("none.db"), "{}", text(&out.stderr));
}

/// A fresh node: no vulnerability database, no containerd. The daemon says once, at
/// start-up, what is missing and what fixes it, then retries quietly (it used to log the
/// same warning every 5 seconds for ever).
#[test]
fn first_run_says_once_what_is_missing_and_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sniffer.sock");
    let log = dir.path().join("daemon.log");
    let mut child = Command::new(SNIFFER)
        .args(["run", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--db")
        .arg(dir.path().join("none.db"))
        .arg("--containerd")
        .arg(dir.path().join("no-containerd.sock"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Long enough for three attempts at containerd (0, 5 and 15 s).
    std::thread::sleep(Duration::from_secs(17));
    // Without --metrics nothing listens on the network.
    let listening = Command::new("ss").args(["-ltunpH"]).output().unwrap();
    let mine = format!("pid={},", child.id());
    assert!(!text(&listening.stdout).contains(&mine), "{}", text(&listening.stdout));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("\"WARN\"")).collect();
    let containerd: Vec<&&str> = warnings.iter().filter(|l| l.contains("containerd")).collect();
    assert_eq!(containerd.len(), 1, "{text}");
    assert!(containerd[0].contains("--cgroup-parent") && containerd[0].contains("--containerd"), "{}", containerd[0]);
    let db: Vec<&&str> = warnings.iter().filter(|l| l.contains("vulnerability database")).collect();
    assert_eq!(db.len(), 1, "{text}");
    assert!(db[0].contains("sniffer db update") && db[0].contains("sniffer db import"), "{}", db[0]);
}

/// Cluster mode without what it needs says what is missing, before and after loading.
#[test]
fn cluster_mode_names_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let state = dir.path().join("state");
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        Command::new(SNIFFER)
            .args(["run", "--socket", socket.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--cluster"])
            .args(extra)
            .env_remove("NODE_NAME")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&[], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("NODE_NAME"), "{}", text(&out.stderr));
    let missing = dir.path().join("no-kubeconfig");
    let out = run(&["--node-name", "node-1"], &[("KUBECONFIG", missing.to_str().unwrap())]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cluster mode: connecting to the Kubernetes API"), "{err}");
    assert!(!socket.exists(), "the socket is bound only once everything works");
}
