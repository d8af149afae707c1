//! The New Workload flow end to end on real containers: a real containerd (temporary root)
//! runs an image made from the cached Debian root, the daemon discovers it, sniffs it with
//! the real eBPF programs, computes SBOM and SBOM', scans them against the real OSV
//! fixtures and submits the reports to a local receiver that is down at first.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SNIFFER: &str = env!("CARGO_BIN_EXE_sniffer");
const IMAGE: &str = "docker.io/library/bookworm-fixture:1";

struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // runc's state outlives containerd: remove every container before stopping it.
        let ids = self.ctr(&["containers", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "9", id]);
            let _ = self.ctr(&["task", "delete", "-f", id]);
            let _ = self.ctr(&["containers", "rm", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{1}\"\n",
                dir.display(),
                socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd").arg("--config").arg(&config).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        let c = Containerd { child, socket };
        wait_for("containerd", Duration::from_secs(20), || c.ctr(&["version"]).status.success());
        let image = PathBuf::from("/var/cache/sniffer-fixtures/bookworm.oci.tar");
        assert!(image.exists(), "{} missing: run `cargo xtask setup`", image.display());
        let out = c.ctr(&["images", "import", image.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        c
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr").arg("-a").arg(&self.socket).args(args).output().unwrap()
    }

    /// Runs `python3 -c script` as container `id` (made unique per test run, since runc's
    /// state is host-wide).
    fn run(&self, id: &str, script: &str) -> String {
        let id = format!("{id}-{}", std::process::id());
        let out = self.ctr(&["run", "-d", IMAGE, &id, "python3", "-c", script]);
        assert!(out.status.success(), "ctr run {id}: {}", String::from_utf8_lossy(&out.stderr));
        id
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

type Received = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

/// Receives POSTs; answers 503 to the first `down`. Keeps (idempotency key, auth, body).
fn receiver(down: usize) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reports", listener.local_addr().unwrap());
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = if n < down { "503 Service Unavailable" } else { "200 OK" };
            if n >= down {
                let body = serde_json::from_slice(&body).unwrap_or_default();
                g.lock().unwrap().push((headers.remove("idempotency-key").unwrap_or_default(), headers.remove("authorization").unwrap_or_default(), body));
            }
            let _ = conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
    });
    (url, got)
}

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon(dir: &Path, containerd: &Path, backend: &str, metrics: &str, log: &str) -> Daemon {
    let socket = dir.join("sniffer.sock");
    let log = std::fs::File::create(dir.join(log)).unwrap();
    let child = Command::new(SNIFFER)
        .args(["run", "--socket", socket.to_str().unwrap(), "--containerd", containerd.to_str().unwrap()])
        .args(["--state-dir", dir.join("state").to_str().unwrap(), "--db", dir.join("vuln.db").to_str().unwrap()])
        .args(["--learning-window", "6", "--backend-url", backend, "--metrics", metrics])
        .args(["--backend-token-file", dir.join("token").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Daemon { child, socket };
    wait_for("the daemon", Duration::from_secs(30), || d.cli(&["status"]).status.success());
    d
}

impl Daemon {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(SNIFFER).args(args).arg("--socket").arg(&self.socket).output().unwrap()
    }

    fn events(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["events", "--json"]);
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn wait_event(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        wait_for(what, Duration::from_secs(60), || {
            events = self.events();
            events.iter().any(&pred)
        });
        events
    }

    fn report(&self, key: &str) -> serde_json::Value {
        let out = self.cli(&["vulns", key, "--json"]);
        assert!(out.status.success(), "vulns {key}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

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
    std::fs::write(dir.join("token"), "t0ken\n").unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/osv");
    let out = Command::new(SNIFFER).args(["db", "import", fixtures.to_str().unwrap(), "--db", dir.join("vuln.db").to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let ctd = Containerd::start(&dir.join("containerd"));
    let (url, received) = receiver(3);
    let metrics = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
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
    let requests = instance["findings"].as_array().unwrap().iter().find(|f| f["package"]["name"] == "requests").unwrap();
    let evidence = &requests["evidence"];
    assert!(evidence.as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("/requests/")), "{evidence}");

    // A second container of the image: the SBOM is not recomputed.
    let c2 = ctd.run("c2", "import requests, time; time.sleep(600)");
    let events = d.wait_event("c2 started", |e| e["event"] == "learning_started" && e["instance"] == c2.as_str());
    assert_eq!(events.iter().filter(|e| e["event"] == "sbom_stored").count(), 1);

    // SIGKILL mid-learning: c3 imports requests and sleeps; the daemon dies after the
    // state was persisted and comes back; SBOM' still holds what it learned.
    let c3 = ctd.run("c3", "import requests, time; time.sleep(600)");
    d.wait_event("c3 learning", |e| e["event"] == "learning_started" && e["instance"] == c3.as_str());
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(d.child.id() as i32, libc::SIGKILL) };
    let _ = d.child.wait();
    d = daemon(dir, &ctd.socket, &url, &metrics, "daemon2.log");
    d.wait_event("SBOM' of c3 after the restart", |e| e["event"] == "prime_stored" && e["instance"] == c3.as_str());
    let c3_report = d.report(&c3);
    assert_relevance(&c3_report, "requests", true.into());

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
    // image + c1 + c3 + c4 instances at least (c2's window may still be open).
    assert!(total >= 4, "{total} reports received");
    assert!(got.iter().all(|(k, auth, body)| auth == "Bearer t0ken" && body["id"] == *k));

    // Prometheus metrics agree.
    let mut conn = std::net::TcpStream::connect(&metrics).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let value = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("sniffer_outbox_depth"), 0);
    assert!(value("sniffer_reports_sent_total") >= 3, "{text}");
    assert!(value("sniffer_events_total") > 0);
    assert_eq!(value("sniffer_sboms"), 1);
}
