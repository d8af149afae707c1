//! The daemon under test, run as its own binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{fixtures, wait_for};

/// The `sniffer` binary of this build: tests and benchmarks run from `target/<profile>/deps`,
/// and cargo builds the package's binary beside it for them.
pub fn sniffer() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().and_then(Path::parent).map(|dir| dir.join("sniffer")).unwrap();
        assert!(bin.is_file(), "{} is missing: run the tests of the sniffer package", bin.display());
        bin.to_str().unwrap().to_string()
    })
}

/// Makes `dir` ready for a daemon: a token file and a vulnerability database of the real
/// OSV fixtures (`dir/vuln.db`).
pub fn prepare(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("token"), "t0ken\n").unwrap();
    let fixtures = fixtures::osv();
    let out = Command::new(sniffer())
        .args(["db", "import", fixtures.to_str().unwrap(), "--db", dir.join("vuln.db").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A running `sniffer run`; dropping it kills it.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its API socket.
    pub socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon with a learning window of 6 s.
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
    let child = Command::new(sniffer())
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
    /// Runs the CLI against it.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(sniffer()).args(args).arg("--socket").arg(&self.socket).output().unwrap()
    }

    /// Its events so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["events", "--json"]);
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Waits (60 s at most) for an event that `pred` accepts; returns the events then.
    pub fn wait_event(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        wait_for(what, Duration::from_secs(60), || {
            events = self.events();
            events.iter().any(&pred)
        });
        events
    }

    /// The report `sniffer vulns KEY --json` shows.
    pub fn report(&self, key: &str) -> serde_json::Value {
        let out = self.cli(&["vulns", key, "--json"]);
        assert!(out.status.success(), "vulns {key}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}
