//! The daemon under load, on real containers: many containers being learned with thousands
//! of paths each, learning state persisted continuously, while `sniffer status`, `sniffer
//! containers` and `GET /metrics` are polled side by side. Every call must answer within a
//! second, for long enough to have hit the old lock-order deadlock (coordinator's `active`
//! against the daemon's state, taken in opposite orders) many times over: it hung every
//! API call for good after about 270 rounds. `sniffer events --follow` runs throughout and
//! must see every event, numbered without a gap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{Containerd, daemon_args, receiver, wait_for};

const CONTAINERS: usize = 12;
const PATHS: usize = 7000;
const POLL_FOR: Duration = Duration::from_secs(60);
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Runs a CLI call; its time, or a failure naming it when it does not end within 10 s.
fn timed_cli(socket: &std::path::Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(testkit::sniffer())
        .args(args)
        .arg("--socket")
        .arg(socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(status.success(), "sniffer {args:?}: {err}");
            return start.elapsed();
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("sniffer {args:?} hung (no answer in 10 s)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn timed_metrics(addr: &str) -> Duration {
    let start = Instant::now();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap_or_else(|e| panic!("GET /metrics hung: {e}"));
    assert!(body.contains("sniffer_learning_instances"), "{body}");
    start.elapsed()
}

#[test]
fn the_daemon_answers_within_a_second_under_load() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let ctd = Containerd::start(&dir.join("containerd"));
    let (url, _received) = receiver(0);
    let metrics = testkit::free_addr();
    // Persisting twice a second (every container learns a new path each time) keeps the
    // store writing the whole time.
    let d = daemon_args(dir, &ctd.socket, &url, &metrics, "daemon.log", 3600, &["--persist-every", "0.5"]);

    let mut follower = Command::new(testkit::sniffer())
        .args(["events", "--follow", "--json", "--socket"])
        .arg(&d.socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let followed: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let out = follower.stdout.take().unwrap();
    let f = followed.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            f.lock().unwrap().push(serde_json::from_str(&line).unwrap());
        }
    });

    // Each container opens PATHS distinct files, then a new one five times a second.
    let script = format!(
        "import os, time\nos.makedirs('/tmp/s', exist_ok=True)\nfor i in range({PATHS}):\n    open(f'/tmp/s/{{i}}', 'w').close()\n\
         i = {PATHS}\nwhile True:\n    open(f'/tmp/s/{{i}}', 'w').close()\n    i += 1\n    time.sleep(0.2)\n"
    );
    let ids: Vec<String> = (0..CONTAINERS).map(|i| ctd.run(&format!("s{i}"), &script)).collect();
    wait_for("every container to have opened its files", Duration::from_secs(240), || {
        let out = d.cli(&["containers", "--json"]);
        let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        ids.iter()
            .all(|id| all.iter().any(|c| c["name"] == id.as_str() && c["files"].as_u64().unwrap_or(0) >= PATHS as u64))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = [&["status"][..], &["containers"][..], &["files", ids[0].as_str()][..], &[][..]]
        .into_iter()
        .map(|args| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let (socket, metrics, stop) = (d.socket.clone(), metrics.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut rounds, mut slowest) = (0u32, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let took = if args.is_empty() {
                        timed_metrics(&metrics)
                    } else {
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        timed_cli(&socket, &args)
                    };
                    slowest = slowest.max(took);
                    rounds += 1;
                }
                (if args.is_empty() { "GET /metrics".to_string() } else { args.join(" ") }, rounds, slowest)
            })
        })
        .collect();
    std::thread::sleep(POLL_FOR);
    stop.store(true, Ordering::Relaxed);
    for p in pollers {
        let (what, rounds, slowest) = p.join().unwrap();
        println!("{what}: {rounds} rounds, slowest {slowest:?}");
        // The old deadlock struck within about 270 rounds of the quick calls. A `files`
        // answer is 7,000 records: it only has to keep answering.
        let enough = if what.starts_with("files") { 20 } else { 300 };
        assert!(rounds >= enough, "{what}: only {rounds} rounds");
        assert!(slowest < ANSWER_WITHIN, "{what}: an answer took {slowest:?}");
    }

    // Still learning every container, every file, and persisting without a failure.
    let out = d.cli(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["flow"]["learning"], CONTAINERS as u64, "{status}");
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(!log.contains("persisting") && !log.contains("\"ERROR\""), "{log}");

    // The follower saw every event, numbered from 0 without a gap.
    let _ = follower.kill();
    let _ = follower.wait();
    let events = followed.lock().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    for id in &ids {
        assert!(events.iter().any(|e| e["event"] == "learning_started" && e["instance"] == id.as_str()), "{id}");
    }
}
