//! `cargo xtask bench soak [MINUTES]` (default 10): the daemon as a node runs it for a
//! while. Containers of two images start and stop continuously (a few at a time, each
//! learned for 5 s), the backend answers 503 to every other request, `sniffer status`,
//! `sniffer containers` and `GET /metrics` are polled side by side, and the daemon is
//! SIGKILLed half way and started again on the same state. Printed: the longest API answer,
//! RSS early and at the end, reports stored against delivered (each exactly once, none
//! lost) and the outbox depth at the end.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{Containerd, daemon_args, free_addr, prepare, wait_for};

/// The second image: the fixture root with one file more, so it has a digest of its own.
const SECOND_IMAGE: &str = "docker.io/library/bookworm-fixture:2";
/// Containers running at once, and how long each lives.
const AT_ONCE: usize = 4;
const LIFETIME: Duration = Duration::from_secs(8);

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Report ids the daemon said it stored, read from `sniffer events --follow`.
fn follow(socket: &std::path::Path, into: Arc<Mutex<HashSet<String>>>) -> std::process::Child {
    let mut child = Command::new(testkit::sniffer())
        .args(["events", "--follow", "--json", "--socket"])
        .arg(socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(e) = serde_json::from_str::<serde_json::Value>(&line)
                && e["event"] == "report_stored"
            {
                into.lock().unwrap().insert(e["id"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    child
}

/// The second image, made once from the fixture root and cached beside it.
fn second_image() -> std::path::PathBuf {
    let cache = std::path::Path::new(testkit::fixtures::CACHE);
    let archive = cache.join("bookworm2.oci.tar");
    if !archive.exists() {
        let copy = tempfile::tempdir_in(cache).unwrap();
        let root = copy.path().join("root");
        assert!(Command::new("cp").args(["-al"]).arg(cache.join("bookworm")).arg(&root).status().unwrap().success());
        std::fs::write(root.join("etc/soak-image"), "2\n").unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/oci-image.py");
        let partial = archive.with_extension("partial");
        assert!(
            Command::new("python3")
                .arg(script)
                .arg(&root)
                .arg(SECOND_IMAGE)
                .arg(&partial)
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
        );
        std::fs::rename(partial, &archive).unwrap();
    }
    archive
}

fn main() {
    let minutes: f64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(10.0);
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    prepare(dir);
    let second = second_image();
    let ctd = Containerd::start(&dir.join("containerd"));
    let out = ctd.ctr(&["images", "import", second.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The backend answers 503 to every other request.
    let (url, received) = testkit::receiver_when(|n| n % 2 == 1);
    let metrics = free_addr();
    let args = ["--persist-every", "1"];
    let mut d = daemon_args(dir, &ctd.socket, &url, &metrics, "daemon1.log", 5, &args);
    let stored: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut follower = follow(&d.socket, stored.clone());

    // Pollers: the longest answer of each kind of call, across both lives of the daemon.
    let stop = Arc::new(AtomicBool::new(false));
    let slowest: Arc<Mutex<HashMap<&'static str, Duration>>> = Arc::default();
    let socket = d.socket.clone();
    let pollers: Vec<_> = ["status", "containers", "metrics"]
        .into_iter()
        .map(|what| {
            let (stop, slowest, socket, metrics) = (stop.clone(), slowest.clone(), socket.clone(), metrics.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let ok = if what == "metrics" {
                        TcpStream::connect(&metrics)
                            .and_then(|mut c| {
                                c.set_read_timeout(Some(Duration::from_secs(30)))?;
                                c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")?;
                                c.read_to_end(&mut Vec::new())
                            })
                            .is_ok()
                    } else {
                        Command::new(testkit::sniffer())
                            .arg(what)
                            .arg("--socket")
                            .arg(&socket)
                            .output()
                            .is_ok_and(|o| o.status.success())
                    };
                    // While the daemon is down (the kill), calls fail: they are not answers.
                    if ok {
                        let took = start.elapsed();
                        let mut s = slowest.lock().unwrap();
                        let e = s.entry(what).or_default();
                        *e = (*e).max(took);
                    } else {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        })
        .collect();

    let start = Instant::now();
    let mut running: Vec<(String, Instant)> = Vec::new();
    let (mut started, mut killed, mut rss_early) = (0usize, false, None);
    let script = "import requests, time; time.sleep(3600)";
    while start.elapsed() < run_for {
        running.retain(|(id, since)| {
            if since.elapsed() < LIFETIME {
                return true;
            }
            let _ = ctd.ctr(&["task", "kill", "-s", "9", id]);
            true
        });
        // Remove what has stopped, start more.
        running.retain(|(id, since)| {
            if since.elapsed() < LIFETIME {
                return true;
            }
            if ctd.ctr(&["task", "delete", id]).status.success() {
                let _ = ctd.ctr(&["containers", "rm", id]);
                return false;
            }
            true
        });
        while running.len() < AT_ONCE {
            let image = if started % 2 == 0 { testkit::IMAGE } else { SECOND_IMAGE };
            let id = format!("s{started}-{}", std::process::id());
            let out = ctd.ctr(&["run", "-d", image, &id, "python3", "-c", script]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            running.push((id, Instant::now()));
            started += 1;
        }
        if rss_early.is_none() && start.elapsed() > Duration::from_secs(30) {
            rss_early = Some(rss_mib(d.child.id()));
        }
        if !killed && start.elapsed() > run_for / 2 {
            // SIGKILL, then the same state again.
            killed = true;
            let _ = d.child.kill();
            let _ = d.child.wait();
            let _ = follower.kill();
            let _ = follower.wait();
            d = daemon_args(dir, &ctd.socket, &url, &metrics, "daemon2.log", 5, &args);
            follower = follow(&d.socket, stored.clone());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let rss_end = rss_mib(d.child.id());
    stop.store(true, Ordering::Relaxed);
    for p in pollers {
        p.join().unwrap();
    }
    // Stop starting; let the outbox drain (the backend still fails every other request).
    for (id, _) in &running {
        let _ = ctd.ctr(&["task", "kill", "-s", "9", id]);
    }
    let outbox = |d: &testkit::Daemon| -> u64 {
        let out = d.cli(&["status", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|s| s["flow"]["outbox"].as_u64())
            .unwrap_or(u64::MAX)
    };
    let _ = std::panic::catch_unwind(|| wait_for("the outbox to drain", Duration::from_secs(120), || outbox(&d) == 0));
    std::thread::sleep(Duration::from_secs(1));
    let depth = outbox(&d);
    let _ = follower.kill();
    let _ = follower.wait();

    let stored = stored.lock().unwrap().clone();
    let mut delivered: HashMap<String, u32> = HashMap::new();
    for (key, _, _) in received.lock().unwrap().iter() {
        *delivered.entry(key.clone()).or_default() += 1;
    }
    let lost: Vec<&String> = stored.iter().filter(|id| !delivered.contains_key(*id)).collect();
    let twice = delivered.values().filter(|&&n| n > 1).count();
    let slowest = slowest.lock().unwrap().clone();
    println!(
        "soak benchmark: {minutes} min, {started} containers of two images, {AT_ONCE} at a time, each for {LIFETIME:?}; backend 503 every other request; one SIGKILL and restart"
    );
    for (what, took) in &slowest {
        println!(
            "  longest answer, {what:<10} {:>8.1} ms   target < 1000 ms: {}",
            took.as_secs_f64() * 1e3,
            if *took < Duration::from_secs(1) { "met" } else { "MISSED" }
        );
    }
    println!("  daemon RSS after 30 s            {:>8.1} MiB", rss_early.unwrap_or(0.0));
    println!("  daemon RSS at the end            {rss_end:>8.1} MiB (second life, since the restart)");
    println!("  reports stored                   {:>8}", stored.len());
    println!(
        "  reports delivered                {:>8} ({} more than once, {} stored but not delivered)",
        delivered.len(),
        twice,
        lost.len()
    );
    println!("  outbox depth at the end          {depth:>8}");
    println!(
        "  verdict: {}",
        if lost.is_empty() && twice == 0 && depth == 0 {
            "every report delivered exactly once"
        } else {
            "REPORTS LOST OR DUPLICATED"
        }
    );
}
