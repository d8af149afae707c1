//! `cargo xtask bench flow`: on real containers (containerd with a temporary root, the
//! image of the cached Debian root), the time from a container's start to its image SBOM
//! stored, from the end of learning to the instance report stored, and the daemon's RSS
//! idle, with 10 and with 110 running containers that each opened 2,000 distinct files,
//! and the RSS per learned path as the slope between those two. The SBOM time is also given against a baseline
//! measured in the same run: `sniffer sbom --dir` on the same root, as a plain tool.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{Containerd, daemon_with, free_addr, prepare, receiver, wait_for};

const RUNS: usize = 5;
/// Distinct files each container of the memory run opens.
const FILES: usize = 2000;
/// Containers at the first and second memory reading.
const SMALL: usize = 10;
const LARGE: usize = 110;

/// An event's time, in milliseconds.
fn at(e: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap().timestamp_millis()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The RSS of `pid` by what holds it, in MiB: the kernel's ring buffer (mapped into the
/// daemon), files (its binary and libraries: what varies with the page cache's folio
/// sizes from machine to machine), and anonymous memory (its heap).
fn rss_parts(pid: u32) -> (f64, f64, f64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut ring, mut file, mut anon, mut name) = (0.0, 0.0, 0.0, String::new());
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("Rss:") {
            let kib: f64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0.0);
            match name.as_str() {
                n if n.starts_with("anon_inode:bpf") => ring += kib,
                n if n.starts_with('/') => file += kib,
                _ => anon += kib,
            }
        } else if line.split_whitespace().next().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
            name = line.split_whitespace().nth(5).unwrap_or("").to_string();
        }
    }
    (ring / 1024.0, file / 1024.0, anon / 1024.0)
}

fn main() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    let root = testkit::fixtures::bookworm_root();

    // Baseline: the same SBOM computed by the plain tool.
    let baseline = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let out = Command::new(testkit::sniffer())
                    .args(["sbom", "--dir", root.to_str().unwrap(), "-o", "/dev/null"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );

    let ctd = Containerd::start(&dir.join("containerd"));
    let (url, _received) = receiver(0);
    let mut to_sbom = Vec::new();
    let mut to_report = Vec::new();
    for run in 0..RUNS {
        // A fresh state each run, so the SBOM is computed each time.
        let rundir = dir.join(format!("run{run}"));
        prepare(&rundir);
        let d = daemon_with(&rundir, &ctd.socket, &url, &free_addr(), "daemon.log", 2);
        let id = ctd.run(&format!("b{run}"), "import requests, time; time.sleep(600)");
        let events =
            d.wait_event("the instance report", |e| e["event"] == "prime_stored" && e["instance"] == id.as_str());
        let find = |name: &str| events.iter().find(|e| e["event"] == name).unwrap_or_else(|| panic!("{name}"));
        let report_of_instance =
            events.iter().find(|e| e["event"] == "report_stored" && e["kind"] == "instance").expect("instance report");
        to_sbom.push((at(find("sbom_stored")) - at(find("workload_started"))) as f64);
        to_report.push((at(report_of_instance) - at(find("learning_ended"))) as f64);
        let _ = ctd.ctr(&["task", "kill", "-s", "9", &id]);
    }

    // Memory per learned path: containers of one image that each open FILES distinct
    // files of their own (paths unique per container too, so interning shares nothing: the
    // worst case), under one daemon with a long window. RSS is read idle, after SMALL
    // containers and after LARGE; the slope between the two counts is the cost per path.
    let rundir = dir.join("memory");
    prepare(&rundir);
    let d = daemon_with(&rundir, &ctd.socket, &url, &free_addr(), "daemon.log", 3600);
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_mib(d.child.id());
    let start = Instant::now();
    let mut started = 0;
    let grow_to = |n: usize, started: &mut usize| {
        while *started < n {
            let i = *started;
            let script = format!(
                "import os, time\nos.makedirs('/tmp/s', exist_ok=True)\nfor i in range({FILES}):\n    open(f'/tmp/s/c{i}-{{i}}', 'w').close()\ntime.sleep(3600)\n"
            );
            ctd.run(&format!("m{i}"), &script);
            *started += 1;
        }
        wait_for("the containers' files", Duration::from_secs(600), || learned_paths(&d) >= n * FILES);
        std::thread::sleep(Duration::from_secs(3));
        (learned_paths(&d), rss_mib(d.child.id()))
    };
    let (paths_small, rss_small) = grow_to(SMALL, &mut started);
    let (paths_large, rss_large) = grow_to(LARGE, &mut started);
    let (ring, file, anon) = rss_parts(d.child.id());
    let started_in = start.elapsed();
    let slope = (rss_large - rss_small) * 1024.0 * 1024.0 / (paths_large - paths_small) as f64;

    let (sbom, report) = (median(to_sbom), median(to_report));
    println!("flow benchmark (median of {RUNS} runs; real containerd, release build)");
    println!("  baseline: `sniffer sbom --dir` on the same root       {baseline:>8.0} ms");
    println!(
        "  container start -> image SBOM stored                {sbom:>8.0} ms  target < 2000 ms: {}  ({:.2}x baseline)",
        if sbom < 2000.0 { "met" } else { "MISSED" },
        sbom / baseline
    );
    println!(
        "  learning end -> instance report stored              {report:>8.0} ms  target < 1000 ms: {}",
        if report < 1000.0 { "met" } else { "MISSED" }
    );
    println!("  daemon RSS, idle                                    {idle:>8.1} MiB");
    println!("  daemon RSS, {SMALL:>3} containers x {FILES} files ({paths_small:>7} paths) {rss_small:>8.1} MiB");
    println!(
        "  daemon RSS, {LARGE:>3} containers x {FILES} files ({paths_large:>7} paths) {rss_large:>8.1} MiB  target < 64 MiB: {}  ({LARGE} started in {:.0} s)",
        if rss_large < 64.0 { "met" } else { "MISSED" },
        started_in.as_secs_f64()
    );
    println!("    of which: BPF maps {ring:.1} MiB, files {file:.1} MiB, anonymous {anon:.1} MiB");
    println!(
        "  RSS per learned path (slope between the two)        {slope:>8.0} B    target <= 200 B: {}",
        if slope <= 200.0 { "met" } else { "MISSED" }
    );
}

/// Distinct files the daemon holds, over every container.
fn learned_paths(d: &testkit::Daemon) -> usize {
    let out = d.cli(&["containers", "--json"]);
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    all.iter().map(|c| c["files"].as_u64().unwrap_or(0) as usize).sum()
}
