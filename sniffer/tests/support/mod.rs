//! Shared by the flow test and the flow benchmark: a real containerd with a temporary
//! root, the daemon, and a loopback HTTP receiver.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SNIFFER: &str = env!("CARGO_BIN_EXE_sniffer");
pub const IMAGE: &str = "docker.io/library/bookworm-fixture:1";

pub struct Containerd {
    pub child: Child,
    pub socket: PathBuf,
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
    pub fn start(dir: &Path) -> Containerd {
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
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd { child, socket };
        wait_for("containerd", Duration::from_secs(20), || c.ctr(&["version"]).status.success());
        let image = PathBuf::from("/var/cache/sniffer-fixtures/bookworm.oci.tar");
        assert!(image.exists(), "{} missing: run `cargo xtask setup`", image.display());
        let out = c.ctr(&["images", "import", image.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        c
    }

    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr").arg("-a").arg(&self.socket).args(args).output().unwrap()
    }

    /// Runs `python3 -c script` as container `id` (made unique per test run, since runc's
    /// state is host-wide).
    pub fn run(&self, id: &str, script: &str) -> String {
        self.run_with(id, &[], script)
    }

    /// The host pid of container `id`'s task.
    pub fn pid(&self, id: &str) -> Option<u32> {
        let out = self.ctr(&["task", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    /// Waits until `path` exists inside container `id`'s root.
    pub fn wait_file(&self, id: &str, path: &str) {
        wait_for(&format!("{path} in {id}"), Duration::from_secs(60), || {
            self.pid(id).is_some_and(|pid| Path::new(&format!("/proc/{pid}/root{path}")).exists())
        });
    }

    /// [`Containerd::run`] with extra `ctr run` flags.
    pub fn run_with(&self, id: &str, flags: &[&str], script: &str) -> String {
        let id = format!("{id}-{}", std::process::id());
        let out = self.ctr(&[&["run", "-d"][..], flags, &[IMAGE, &id, "python3", "-c", script]].concat());
        assert!(out.status.success(), "ctr run {id}: {}", String::from_utf8_lossy(&out.stderr));
        id
    }
}

/// Makes `dir` ready for a daemon: a token file and a vulnerability database of the real
/// OSV fixtures (`dir/vuln.db`).
pub fn prepare(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("token"), "t0ken\n").unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/osv");
    let out = Command::new(SNIFFER)
        .args(["db", "import", fixtures.to_str().unwrap(), "--db", dir.join("vuln.db").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A loopback address nothing listens on now.
pub fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub type Received = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

/// Receives POSTs; answers 503 to the first `down`. Keeps (idempotency key, auth, body).
pub fn receiver(down: usize) -> (String, Received) {
    receiver_when(move |n| n >= down)
}

/// Receives POSTs; accepts request `n` (from 0) when `accept(n)`, else answers 503. Keeps
/// (idempotency key, auth, body) of what it accepted.
pub fn receiver_when(accept: impl Fn(usize) -> bool + Send + 'static) -> (String, Received) {
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
            let status = if accept(n) { "200 OK" } else { "503 Service Unavailable" };
            if accept(n) {
                let body = serde_json::from_slice(&body).unwrap_or_default();
                g.lock().unwrap().push((
                    headers.remove("idempotency-key").unwrap_or_default(),
                    headers.remove("authorization").unwrap_or_default(),
                    body,
                ));
            }
            let _ = conn
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
    });
    (url, got)
}

pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn daemon(dir: &Path, containerd: &Path, backend: &str, metrics: &str, log: &str) -> Daemon {
    daemon_with(dir, containerd, backend, metrics, log, 6)
}

/// The daemon with a learning window of `window_s` seconds.
pub fn daemon_with(dir: &Path, containerd: &Path, backend: &str, metrics: &str, log: &str, window_s: u32) -> Daemon {
    daemon_args(dir, containerd, backend, metrics, log, window_s, &[])
}

/// The daemon with a learning window of `window_s` seconds and `extra` arguments.
pub fn daemon_args(
    dir: &Path,
    containerd: &Path,
    backend: &str,
    metrics: &str,
    log: &str,
    window_s: u32,
    extra: &[&str],
) -> Daemon {
    let window = window_s.to_string();
    let socket = dir.join("sniffer.sock");
    let log = std::fs::File::create(dir.join(log)).unwrap();
    let child = Command::new(SNIFFER)
        .args(["run", "--socket", socket.to_str().unwrap(), "--containerd", containerd.to_str().unwrap()])
        .args(["--state-dir", dir.join("state").to_str().unwrap(), "--db", dir.join("vuln.db").to_str().unwrap()])
        .args(["--learning-window", &window, "--backend-url", backend, "--metrics", metrics])
        .args(["--backend-token-file", dir.join("token").to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Daemon { child, socket };
    wait_for("the daemon", Duration::from_secs(30), || d.cli(&["status"]).status.success());
    d
}

impl Daemon {
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(SNIFFER).args(args).arg("--socket").arg(&self.socket).output().unwrap()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["events", "--json"]);
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    pub fn wait_event(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        wait_for(what, Duration::from_secs(60), || {
            events = self.events();
            events.iter().any(&pred)
        });
        events
    }

    pub fn report(&self, key: &str) -> serde_json::Value {
        let out = self.cli(&["vulns", key, "--json"]);
        assert!(out.status.success(), "vulns {key}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}
