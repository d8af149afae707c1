//! The New Workload flow end to end on real containers: a real containerd (temporary root)
//! runs an image made from the cached Debian root, the daemon discovers it, sniffs it with
//! the real eBPF programs, computes SBOM and SBOM', scans them against the real OSV
//! fixtures and submits the reports to a local receiver that is down at first.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use testkit::{Containerd, daemon, receiver, wait_for};

/// Asserts `package` has findings in `scan`, each with `relevant` equal to `expected`.
fn assert_relevance(scan: &serde_json::Value, package: &str, expected: serde_json::Value) {
    let flags: Vec<&serde_json::Value> = scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["package"]["name"].as_str().unwrap().eq_ignore_ascii_case(package))
        .map(|f| &f["relevant"])
        .collect();
    assert!(!flags.is_empty(), "no finding for {package}");
    assert!(flags.iter().all(|r| **r == expected), "{package}: {flags:?}, expected {expected}");
}

#[test]
fn new_workload_flow_on_real_containers() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let ctd = Containerd::start(&dir.join("containerd"));
    let (url, received) = receiver(3);
    let metrics = testkit::free_addr();
    let mut d = daemon(dir, &ctd.socket, &url, &metrics, "daemon1.log");

    // A container imports requests and sleeps.
    let c1 = ctd.run("c1", "import requests, time; time.sleep(600)");
    let events = d.wait_event("SBOM' of c1", |e| e["event"] == "prime_stored" && e["instance"] == c1.as_str());
    let digest = events.iter().find(|e| e["event"] == "sbom_stored").unwrap()["digest"].as_str().unwrap().to_string();
    let image = d.report(&digest);
    assert_relevance(&image, "jinja2", serde_json::Value::Null);
    let instance = d.report(&c1);
    assert_relevance(&instance, "requests", true.into());
    assert_relevance(&instance, "urllib3", true.into());
    assert_relevance(&instance, "jinja2", false.into());
    let requests =
        instance["findings"].as_array().unwrap().iter().find(|f| f["package"]["name"] == "requests").unwrap();
    let evidence = &requests["evidence"];
    assert!(evidence.as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("/requests/")), "{evidence}");

    // SBOM' itself, from the daemon: requests, urllib3 and python3, not jinja2.
    let out = d.cli(&["sbom", &c1, "--filtered"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runtime: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        runtime["packages"].as_array().unwrap().iter().map(|p| p["package"]["name"].as_str().unwrap()).collect();
    for used in ["requests", "urllib3", "python3.11-minimal", "python3-minimal"] {
        assert!(names.contains(&used), "{used} not in SBOM' {names:?}");
    }
    assert!(!names.iter().any(|n| n.eq_ignore_ascii_case("jinja2")), "{names:?}");
    let out = d.cli(&["sbom", &c1, "--format", "cyclonedx"]);
    let image_sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        image_sbom["components"].as_array().unwrap().iter().any(|c| c["name"] == "Jinja2"),
        "the image SBOM has jinja2"
    );

    // A second container of the image: the SBOM is not recomputed.
    let c2 = ctd.run("c2", "import requests, time; time.sleep(600)");
    let events = d.wait_event("c2 started", |e| e["event"] == "learning_started" && e["instance"] == c2.as_str());
    assert_eq!(events.iter().filter(|e| e["event"] == "sbom_stored").count(), 1);

    // SIGKILL mid-learning: c3 and c5 import requests and sleep; the daemon dies after the
    // state was persisted and comes back; SBOM' still holds what it learned. c5 is removed
    // while no daemon runs: it gets its SBOM' from what was stored.
    let c3 = ctd.run("c3", "import requests, time; time.sleep(600)");
    let c5 = ctd.run("c5", "import requests, time; time.sleep(600)");
    for c in [&c3, &c5] {
        d.wait_event("learning", |e| e["event"] == "learning_started" && e["instance"] == c.as_str());
    }
    std::thread::sleep(Duration::from_secs(3));
    d.child.kill().unwrap();
    let _ = d.child.wait();
    ctd.ctr(&["task", "kill", "-s", "9", &c5]);
    wait_for("c5 to stop", Duration::from_secs(10), || ctd.ctr(&["task", "delete", &c5]).status.success());
    d = daemon(dir, &ctd.socket, &url, &metrics, "daemon2.log");
    d.wait_event("SBOM' of c3 after the restart", |e| e["event"] == "prime_stored" && e["instance"] == c3.as_str());
    let c3_report = d.report(&c3);
    assert_relevance(&c3_report, "requests", true.into());
    let events =
        d.wait_event("SBOM' of the vanished c5", |e| e["event"] == "prime_stored" && e["instance"] == c5.as_str());
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "learning_ended" && e["instance"] == c5.as_str() && e["reason"] == "vanished")
    );
    let c5_report = d.report(&c5);
    // Ownership comes from c3's root when c3's start has indexed the image by then, else
    // from the stored SBOM alone (then marked incomplete; the coordinator's tests check that).
    assert_relevance(&c5_report, "requests", true.into());

    // A container that exits within a second still gets its SBOM'.
    let c4 = ctd.run("c4", "import requests");
    d.wait_event("SBOM' of c4", |e| e["event"] == "prime_stored" && e["instance"] == c4.as_str());
    assert_relevance(&d.report(&c4), "requests", true.into());

    // Every stored report reaches the receiver exactly once, through its outage.
    wait_for("the outbox to drain", Duration::from_secs(60), || {
        let out = d.cli(&["status", "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        s["flow"]["outbox"] == 0
    });
    let got = received.lock().unwrap().clone();
    let mut keys: Vec<String> = got.iter().map(|(k, _, _)| k.clone()).collect();
    keys.sort();
    let total = keys.len();
    keys.dedup();
    assert_eq!(total, keys.len(), "a report was received twice");
    // image + c1 + c3 + c4 + c5 instances at least (c2's window may still be open).
    assert!(total >= 5, "{total} reports received");
    assert!(got.iter().all(|(k, auth, body)| auth == "Bearer t0ken" && body["id"] == *k));

    // Prometheus metrics agree.
    let mut conn = std::net::TcpStream::connect(&metrics).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let value = |name: &str| -> u64 {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("sniffer_outbox_depth"), 0);
    assert!(value("sniffer_reports_sent_total") >= 3, "{text}");
    assert!(value("sniffer_events_total") > 0);
    assert_eq!(value("sniffer_sboms"), 1);
}

/// Without containerd, containers are found as the child cgroups of a parent: a chrooted
/// process of the Debian root in its own child cgroup goes through the whole flow.
#[test]
fn without_containerd_child_cgroups_are_discovered() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let parent = sniffer::cgroup::unified_root().unwrap().join(format!("sniffer-test-parent-{}", std::process::id()));
    let child = parent.join("app1");
    std::fs::create_dir_all(&child).unwrap();
    let socket = dir.join("sniffer.sock");
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let d = testkit::Daemon {
        child: Command::new(testkit::sniffer())
            .args([
                "run",
                "--socket",
                socket.to_str().unwrap(),
                "--containerd",
                dir.join("no-containerd.sock").to_str().unwrap(),
            ])
            .args(["--cgroup-parent", parent.to_str().unwrap(), "--state-dir", dir.join("state").to_str().unwrap()])
            .args(["--db", dir.join("vuln.db").to_str().unwrap(), "--learning-window", "5"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        socket,
    };
    wait_for("the daemon", Duration::from_secs(30), || d.cli(&["status"]).status.success());
    // The workload waits two seconds (discovery polls every second), imports, sleeps.
    let root = testkit::fixtures::bookworm_root();
    let mut workload = Command::new("chroot")
        .arg(&root)
        .args(["sh", "-c", "sleep 2; PYTHONDONTWRITEBYTECODE=1 python3 -c 'import requests'; sleep 60"])
        .spawn()
        .unwrap();
    // Into the cgroup once inside its root: discovery takes the root it finds then.
    let inside = std::fs::canonicalize(&root).unwrap();
    wait_for("chroot", Duration::from_secs(5), || {
        std::fs::read_link(format!("/proc/{}/root", workload.id())).is_ok_and(|r| r == inside)
    });
    std::fs::write(child.join("cgroup.procs"), workload.id().to_string()).unwrap();
    d.wait_event("SBOM' of app1", |e| e["event"] == "prime_stored" && e["instance"] == "app1");
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(log.contains("containerd not reachable"), "{log}");
    assert_relevance(&d.report("app1"), "requests", true.into());
    assert_relevance(&d.report("app1"), "jinja2", false.into());
    let _ = workload.kill();
    let _ = workload.wait();
    drop(d);
    // Killing the shell leaves its `sleep 60` in the cgroup: kill all of it, so that the
    // directories can go.
    let _ = std::fs::write(child.join("cgroup.kill"), "1");
    wait_for("an empty cgroup", Duration::from_secs(5), || {
        std::fs::read_to_string(child.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
    });
    std::fs::remove_dir(&child).unwrap();
    std::fs::remove_dir(&parent).unwrap();
}
