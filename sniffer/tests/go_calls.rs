//! Function-level reachability through the daemon, in real containerd containers: an image
//! of real Go binaries (built here, stdlib only) is scanned against real Go advisories, and
//! uprobes at the vulnerable functions it links see which container calls them.

use std::time::Duration;

use testkit::{Containerd, daemon_args, wait_for};

const IMAGE: &str = "docker.io/library/go-fixture:1";

fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["findings"].as_array().unwrap().iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("{id}: {report:#}"))
}

fn state(report: &serde_json::Value, id: &str) -> String {
    finding(report, id)["reachability"]["state"].as_str().unwrap_or_else(|| panic!("{id}: {report:#}")).to_string()
}

#[test]
fn vulnerable_go_functions_called_linked_and_absent_per_container() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    // The Go advisories join the OSV fixtures in the daemon's database.
    let records = testkit::golang::records();
    let out = std::process::Command::new(testkit::sniffer())
        .args(["db", "import", "--db", dir.join("vuln.db").to_str().unwrap()])
        .args(["GO-2024-3105", "GO-2024-3106", "GO-2024-3107"].map(|id| records.join(format!("{id}.json"))))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let programs = testkit::golang::programs(dir);
    let archive = testkit::golang::image(dir, &programs, IMAGE);
    let ctd = Containerd::start(&dir.join("containerd"));
    let out = ctd.ctr(&["images", "import", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics = testkit::free_addr();
    let d = daemon_args(dir, &ctd.socket, "http://127.0.0.1:9/none", &metrics, "daemon.log", 60, &[]);
    let run = |name: &str, args: &[&str]| {
        let id = format!("{name}-{}", std::process::id());
        let out = ctd.ctr(&[&["run", "-d", IMAGE, &id][..], args].concat());
        assert!(out.status.success(), "ctr run {id}: {}", String::from_utf8_lossy(&out.stderr));
        id
    };

    // The first container: the image is scanned as it starts, and Decode's probe is in
    // place before the program (which waits 3 s) calls it.
    let calls = run("calls", &["/usr/local/bin/calls", "100000", "3"]);
    let events = d.wait_event("SBOM' of calls", |e| e["event"] == "prime_stored" && e["instance"] == calls.as_str());
    let digest = events.iter().find(|e| e["event"] == "sbom_stored").unwrap()["digest"].as_str().unwrap().to_string();

    // The image report: the parsers are not in any binary; Decode is linked.
    let image = d.report(&digest);
    for id in ["GO-2024-3105", "GO-2024-3107"] {
        assert_eq!(state(&image, id), "not_present", "{id}");
    }
    assert_eq!(state(&image, "GO-2024-3106"), "unknown");

    let report = d.report(&calls);
    assert_eq!(state(&report, "GO-2024-3106"), "called", "{:#}", finding(&report, "GO-2024-3106"));
    assert_eq!(finding(&report, "GO-2024-3106")["relevant"], true);
    let evidence = finding(&report, "GO-2024-3106")["reachability"]["evidence"].to_string();
    assert!(evidence.contains("encoding/gob.(*Decoder).Decode") && evidence.contains("(calls)"), "{evidence}");
    for id in ["GO-2024-3105", "GO-2024-3107"] {
        assert_eq!(state(&report, id), "not_present", "{id}");
        assert_eq!(finding(&report, id)["relevant"], false);
    }
    assert_eq!(report["findings"][0]["id"], "GO-2024-3106", "called first");

    // Another container of the image runs the binary that links Decode and never calls it;
    // its probes were in place at its start (the image was scanned before).
    let links = run("links", &["/usr/local/bin/links", "wait"]);
    d.wait_event("SBOM' of links", |e| e["event"] == "prime_stored" && e["instance"] == links.as_str());
    let report = d.report(&links);
    let decode = finding(&report, "GO-2024-3106");
    assert_eq!(state(&report, "GO-2024-3106"), "not_called", "{decode:#}");
    assert_eq!(decode["relevant"], false);
    assert!(decode["reachability"]["why"].as_str().unwrap().contains("not called during"), "{decode:#}");

    // SBOM' says what was probed, from when.
    let out = d.cli(&["sbom", &links, "--runtime"]);
    let runtime: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = runtime["warnings"].to_string();
    assert!(warnings.contains("function probes:") && warnings.contains(" from "), "{warnings}");

    // The probes went once nobody waited on them; status says how many are attached.
    wait_for("probes removed", Duration::from_secs(20), || {
        let out = d.cli(&["status", "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        s["probes"]["attached"] == 0 && s["probes"]["attached_total"].as_u64().unwrap_or(0) > 0
    });
    let status = String::from_utf8(d.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("function probes") && status.contains("attached"), "{status}");

    // `sniffer vulns` ranks it: a table with the reachability column.
    let out = d.cli(&["vulns", &calls]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("REACHABILITY") && table.contains("called"), "{table}");
}

/// The same answer without a daemon: `sniffer trace --db` probes and lists the calls,
/// `sniffer sbom --opened` keeps them in SBOM', `sniffer scan --root` decides with them.
#[test]
fn trace_sbom_and_scan_give_the_same_answer_without_a_daemon() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = dir.path();
    let db = dir.join("vuln.db");
    let records = testkit::golang::records();
    let sniffer = |args: &[&str]| {
        let out = std::process::Command::new(testkit::sniffer()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let ids = ["GO-2024-3105", "GO-2024-3106", "GO-2024-3107"].map(|id| records.join(format!("{id}.json")));
    let mut import = vec!["db", "import", "--db", db.to_str().unwrap()];
    import.extend(ids.iter().map(|p| p.to_str().unwrap()));
    sniffer(&import);
    let programs = testkit::golang::programs(dir);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    for (name, p) in [("calls", &programs.calls), ("links", &programs.links)] {
        std::fs::copy(p, root.join("usr/local/bin").join(name)).unwrap();
    }
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let sbom = sniffer(&["sbom", "--dir", &s(&root)]).stdout;
    std::fs::write(dir.join("sbom.json"), sbom).unwrap();

    for (name, args, json, expected) in
        [("calls", &["10", "1"][..], false, "called"), ("links", &["x"][..], true, "not_called")]
    {
        let trace = dir.join(format!("{name}.trace"));
        let bin = format!("/usr/local/bin/{name}");
        let mut cmd = vec!["trace", "--db", db.to_str().unwrap(), "-o", trace.to_str().unwrap()];
        if json {
            cmd.push("--json");
        }
        cmd.extend(["--", "chroot", root.to_str().unwrap(), &bin]);
        cmd.extend(args);
        sniffer(&cmd);
        let text = std::fs::read_to_string(&trace).unwrap();
        assert!(text.contains("encoding/gob.(*Decoder).Decode"), "{text}");
        assert_eq!(text.contains("call"), expected == "called", "{text}");
        let runtime = sniffer(&["sbom", "--dir", &s(&root), "--opened", &s(&trace)]).stdout;
        let runtime_path = dir.join(format!("{name}.runtime.json"));
        std::fs::write(&runtime_path, &runtime).unwrap();
        let report: serde_json::Value = serde_json::from_slice(
            &sniffer(&[
                "scan",
                "--sbom",
                &s(&dir.join("sbom.json")),
                "--runtime",
                &s(&runtime_path),
                "--root",
                &s(&root),
                "--db",
                &s(&db),
                "--format",
                "json",
            ])
            .stdout,
        )
        .unwrap();
        assert_eq!(state(&report, "GO-2024-3106"), expected, "{name}: {:#}", finding(&report, "GO-2024-3106"));
        assert_eq!(state(&report, "GO-2024-3105"), "not_present", "{name}");
    }

    // A trace line that names no absolute binary is refused, naming the line.
    std::fs::write(dir.join("bad.trace"), "call encoding/gob.(*Decoder).Decode relative/path\n").unwrap();
    let out = std::process::Command::new(testkit::sniffer())
        .args(["sbom", "--dir", &s(&root), "--opened", &s(&dir.join("bad.trace"))])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("bad.trace:1"), "{out:?}");
}
