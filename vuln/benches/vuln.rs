//! `cargo xtask bench vuln`: import rate of the real OSV fixtures, database open time, and
//! scan time of a 500-package SBOM (the real Debian root's packages plus PyPI packages at
//! versions the fixtures name, so most lookups hit), with peak RSS per phase. Each figure is
//! also given against a baseline measured in the same run: parsing the same JSON with
//! serde_json and nothing else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Resets the peak RSS counter (VmHWM) of this process.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn main() {
    let fixtures = testkit::fixtures::osv();
    let root = testkit::fixtures::bookworm_root();
    let mut files = Vec::new();
    json_files(&fixtures, &mut files);
    let contents: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let tmp = tempfile::tempdir().unwrap();

    // Baseline: parse every record, nothing else.
    let parse = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for c in &contents {
                    std::hint::black_box(vuln::osv::Record::parse(c).unwrap());
                }
                t.elapsed()
            })
            .collect(),
    );

    reset_peak();
    let mut imports = Vec::new();
    let db = tmp.path().join("vuln.db");
    for i in 0..RUNS {
        let path = tmp.path().join(format!("run{i}.db"));
        let t = Instant::now();
        let mut w = vuln::Writer::open(&path).unwrap();
        let mut report = vuln::ImportReport::default();
        vuln::import::import_path(&mut w, &fixtures, &mut report).unwrap();
        w.commit().unwrap();
        imports.push(t.elapsed());
        std::fs::rename(&path, &db).unwrap();
    }
    let import = median(imports);
    let import_rss = peak_mib();
    let records = files.len() as f64;

    let open = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(vuln::Db::open(&db).unwrap());
                t.elapsed()
            })
            .collect(),
    );

    // 500 packages: the real root's, then PyPI packages the fixtures name, each at a
    // version a record lists as affected.
    let sbom = sbom::scan(&root).unwrap();
    let mut subjects = vuln::input::parse(&serde_json::to_value(&sbom).unwrap()).unwrap().subjects;
    for c in &contents {
        if subjects.len() >= 500 {
            break;
        }
        let r = vuln::osv::Record::parse(c).unwrap();
        let Some((name, version)) =
            r.affected.iter().find_map(|a| Some((a.package.as_ref()?.name.clone(), a.versions.first()?.clone())))
        else {
            continue;
        };
        if r.affected[0].package.as_ref().is_some_and(|p| p.ecosystem == "PyPI")
            && !subjects.iter().any(|s| s.name == name)
        {
            subjects.push(vuln::input::subject_of_purl(&format!("pkg:pypi/{name}@{version}")).unwrap());
        }
    }
    assert_eq!(subjects.len(), 500);
    let doc = serde_json::to_vec(&sbom).unwrap();
    let baseline_sbom = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(serde_json::from_slice::<sbom::Sbom>(&doc).unwrap());
                t.elapsed()
            })
            .collect(),
    );
    reset_peak();
    let database = vuln::Db::open(&db).unwrap();
    let mut findings = 0;
    let scan = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                findings = vuln::scan(&database, &subjects, None).unwrap().findings.len();
                t.elapsed()
            })
            .collect(),
    );
    let scan_rss = peak_mib();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("vuln benchmark (median of {RUNS} runs; peak RSS of this process per phase)");
    println!("  baseline: parse {} records with serde_json  {:>8.1} ms", files.len(), ms(parse));
    println!(
        "  import {} records into the database         {:>8.1} ms  {:>8.0} records/s  {:.2}x baseline  peak RSS {import_rss:.1} MiB",
        files.len(),
        ms(import),
        records / import.as_secs_f64(),
        import.as_secs_f64() / parse.as_secs_f64()
    );
    println!("  database open                                {:>8.3} ms", ms(open));
    println!(
        "  scan 500 packages ({findings} findings)             {:>8.1} ms  target < 50 ms: {}  ({:.2}x parsing a {}-package SBOM)  peak RSS {scan_rss:.1} MiB",
        ms(scan),
        if scan < Duration::from_millis(50) { "met" } else { "MISSED" },
        scan.as_secs_f64() / baseline_sbom.as_secs_f64(),
        sbom.packages.len()
    );
}
