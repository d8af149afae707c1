//! What function probes cost (`cargo xtask bench probes`), against baselines measured in
//! the same run, interleaved:
//! - a Go program calling a probed function 10 million times, wall time with the probe
//!   (removed after the first call, as the daemon does) and without: target within 1%;
//! - the same with the probe never removed, 100,000 calls: what each trap costs, which the
//!   removal avoids;
//! - a JVM starting a program that defines 5,000 classes, wall time with the class probe
//!   and without: target within 5%;
//! - memory per probe (the agent's RSS and the kernel's slab, 1,000 probes) and per
//!   instance (the probe manager's state for 1,000 containers).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sniffer::cgroup::ScratchCgroup;
use sniffer::kernel::{Kernel, Options};
use sniffer::probes::{ProbeKind, ProbeLimits, ProbeManager, Target};

const CALLS: u64 = 10_000_000;
const KEPT_CALLS: u64 = 100_000;
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `program N 0` in `cgroup`, returns its wall time.
fn timed(cgroup: &ScratchCgroup, program: &Path, n: u64) -> Duration {
    // Pinned to one CPU other than 0, as the sniffer benchmark pins its opener.
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1"]).arg(program).args([n.to_string(), "0".into()]).stdout(std::process::Stdio::null());
    let procs = cgroup.join_on_spawn(&mut cmd).unwrap();
    let start = Instant::now();
    let status = cmd.spawn().unwrap().wait().unwrap();
    let took = start.elapsed();
    drop(procs);
    assert!(status.success());
    took
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

fn slab_kib() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    m.lines().find_map(|l| l.strip_prefix("Slab:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

/// Polls the reader for calls and hands them to the manager (what the daemon's event loop
/// does), until `done`.
fn pump(
    reader: &mut sniffer::kernel::EventReader,
    manager: &ProbeManager,
    rt: &tokio::runtime::Runtime,
    done: Instant,
) {
    let mut batch = Vec::new();
    while Instant::now() < done {
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(20), reader.next_batch(&mut batch)).await;
        });
        batch.clear();
        manager.record(&reader.take_calls());
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let programs = testkit::golang::programs(dir.path());
    let program = programs.calls.clone();
    let decode = "encoding/gob.(*Decoder).Decode".to_string();
    let mut kernel = rt.block_on(async { Kernel::load(&Options::default()) }).unwrap();
    let mut reader = rt.block_on(async { kernel.events() }).unwrap();
    let manager = ProbeManager::start_with(
        kernel.call_program(),
        kernel.class_program(),
        ProbeLimits { per_binary: 4096, total: 4096 },
    );
    let cgroup = ScratchCgroup::create(&format!("sniffer-bench-probes-{}", std::process::id())).unwrap();
    kernel.watch(cgroup.id()).unwrap();
    let target =
        || vec![Target { kind: ProbeKind::GoFunction, binary: program.clone(), functions: vec![decode.clone()] }];
    let wait_attached = |m: &ProbeManager, id: u64| {
        let start = Instant::now();
        while m.calls(id).is_none_or(|c| c.since.is_none()) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(2));
        }
    };

    println!("{CALLS} calls of {decode} (calls {CALLS} 0), wall time, {ROUNDS} rounds interleaved:");
    let (mut base, mut probed) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        base.push(timed(&cgroup, &program, CALLS).as_secs_f64());
        manager.probe(cgroup.id(), std::process::id(), target());
        wait_attached(&manager, cgroup.id());
        let handle = {
            let program = program.clone();
            let procs = &cgroup;
            std::thread::scope(|s| {
                let t = s.spawn(|| timed(procs, &program, CALLS));
                while !t.is_finished() {
                    pump(&mut reader, &manager, &rt, Instant::now() + Duration::from_millis(50));
                }
                t.join().unwrap()
            })
        };
        probed.push(handle.as_secs_f64());
        let calls = manager.release(cgroup.id()).unwrap_or_default();
        assert_eq!(calls.calls.len(), 1, "the first call is seen: {calls:?}");
    }
    let (b, p) = (median(base.clone()), median(probed.clone()));
    println!("  without a probe: {:.3} s (rounds {base:.3?})", b);
    println!("  with the probe, removed after the first call: {:.3} s (rounds {probed:.3?})", p);
    let paired = median(base.iter().zip(&probed).map(|(b, p)| p / b).collect());
    println!("  ratio of medians {:.4}, median of the rounds' ratios {paired:.4} (target at most 1.01)", p / b);

    // The probe kept: an unwatched cgroup's calls trap and are dropped by the gate.
    let idle = ScratchCgroup::create(&format!("sniffer-bench-probes-idle-{}", std::process::id())).unwrap();
    let other = ScratchCgroup::create(&format!("sniffer-bench-probes-watch-{}", std::process::id())).unwrap();
    kernel.watch(other.id()).unwrap();
    let (mut base, mut kept) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        base.push(timed(&idle, &program, KEPT_CALLS).as_secs_f64());
        // Another container waits on the probe, so it stays while this one calls.
        manager.probe(other.id(), std::process::id(), target());
        wait_attached(&manager, other.id());
        kept.push(timed(&idle, &program, KEPT_CALLS).as_secs_f64());
        manager.release(other.id());
    }
    let (b, k) = (median(base), median(kept));
    println!(
        "{KEPT_CALLS} calls with the probe kept (another container waits on it): {:.3} s against {:.3} s: {:.2} µs per trap",
        k,
        b,
        (k - b) * 1e6 / KEPT_CALLS as f64
    );

    jvm(&manager, &mut reader, &rt, &cgroup, dir.path());

    // Memory: 1,000 probes on a large binary's functions, and 1,000 containers' state.
    let big = Path::new("/usr/lib/google-cloud-sdk/bin/kubectl");
    if big.exists() {
        let table = sbom::gofunc::FuncTable::parse(&std::fs::File::open(big).unwrap()).unwrap();
        let functions: Vec<String> = table
            .funcs()
            .filter(|f| f.offset.is_some() && f.name.starts_with("k8s.io/"))
            .take(1000)
            .map(|f| f.name.into_owned())
            .collect();
        drop(table);
        sniffer_trim();
        let (rss0, slab0) = (rss_kib(), slab_kib());
        manager.probe(
            cgroup.id(),
            std::process::id(),
            vec![Target { kind: ProbeKind::GoFunction, binary: big.to_path_buf(), functions }],
        );
        wait_attached(&manager, cgroup.id());
        sniffer_trim();
        let (rss1, slab1) = (rss_kib(), slab_kib());
        let n = manager.status().attached.max(1) as u64;
        println!(
            "{n} probes: agent RSS +{} KiB ({} bytes per probe), kernel slab +{} KiB ({} bytes per probe)",
            rss1.saturating_sub(rss0),
            rss1.saturating_sub(rss0) * 1024 / n,
            slab1.saturating_sub(slab0),
            slab1.saturating_sub(slab0) * 1024 / n
        );
        manager.release(cgroup.id());
    }
    let rss0 = rss_kib();
    for id in 0..1000u64 {
        // Containers whose probes the thread never gets to (no such pid): state only.
        manager.probe(u64::MAX - id, u32::MAX, target());
    }
    std::thread::sleep(Duration::from_millis(500));
    println!("1,000 containers' probe state: agent RSS +{} KiB", rss_kib().saturating_sub(rss0));
}

fn sniffer_trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
}

/// Classes the JVM benchmark's program defines.
const CLASSES: usize = 5000;

/// A JVM defining [`CLASSES`] classes from a jar, with and without the class probe.
fn jvm(
    manager: &ProbeManager,
    reader: &mut sniffer::kernel::EventReader,
    rt: &tokio::runtime::Runtime,
    cgroup: &ScratchCgroup,
    dir: &Path,
) {
    let libjvm = testkit::java::libjvm();
    let mut source = String::from(
        "public class Main { public static void main(String[] a) throws Exception { \
        for (int i = 0; i < 5000; i++) Class.forName(\"C\" + i); } }\n",
    );
    for i in 0..CLASSES {
        source.push_str(&format!("class C{i} {{ static int f() {{ return {i}; }} }}\n"));
    }
    let jar = dir.join("classes.jar");
    testkit::java::jar(&jar, &[], &[("Main.java", &source)], &[], None);
    let run = |cg: &ScratchCgroup| {
        let mut cmd = Command::new("java");
        cmd.args(["-XX:-UsePerfData", "-cp"]).arg(&jar).arg("Main").stdout(std::process::Stdio::null());
        let procs = cg.join_on_spawn(&mut cmd).unwrap();
        let start = Instant::now();
        let mut child = cmd.spawn().unwrap();
        drop(procs);
        (start, child.wait().map(|s| s.success()).unwrap_or(false))
    };
    println!("a JVM defining {CLASSES} classes (java -cp classes.jar Main), wall time, {ROUNDS} rounds interleaved:");
    let (mut base, mut probed, mut seen) = (Vec::new(), Vec::new(), 0);
    for _ in 0..ROUNDS {
        let (start, ok) = run(cgroup);
        assert!(ok);
        base.push(start.elapsed().as_secs_f64());
        manager.probe(cgroup.id(), std::process::id(), vec![Target::jvm(libjvm.clone())]);
        let t0 = Instant::now();
        while manager.calls(cgroup.id()).is_none_or(|c| c.class_probe.is_none())
            && t0.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let (start, ok) = run(cgroup);
                assert!(ok);
                start.elapsed()
            });
            let mut batch = Vec::new();
            while !t.is_finished() {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_millis(20), reader.next_batch(&mut batch)).await;
                });
                batch.clear();
                manager.record_classes(&reader.take_classes());
            }
            t.join().unwrap()
        });
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(100), reader.next_batch(&mut Vec::new())).await;
        });
        manager.record_classes(&reader.take_classes());
        probed.push(took.as_secs_f64());
        let calls = manager.release(cgroup.id()).unwrap_or_default();
        seen = calls.classes.iter().map(|d| d.count).sum::<u64>();
    }
    let (b, p) = (median(base.clone()), median(probed.clone()));
    println!("  without the class probe: {b:.3} s (rounds {base:.3?})");
    println!("  with it: {p:.3} s (rounds {probed:.3?}); {seen} classes seen defined in the last round");
    let paired = median(base.iter().zip(&probed).map(|(b, p)| p / b).collect());
    println!("  ratio of medians {:.4}, median of the rounds' ratios {paired:.4} (target at most 1.05)", p / b);
}
