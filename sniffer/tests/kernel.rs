//! The real kernel programs, loaded and attached, against real processes in real cgroups.
//! Run as root on a kernel with BTF (`cargo xtask test` does).

use std::path::{Path, PathBuf};
use std::process::Command;

use sniffer::cgroup::ScratchCgroup;
use sniffer::event::{Access, FileEvent};
use sniffer::kernel::{EventReader, FileReads, Kernel, Options};
use sniffer::loader::LoaderResolver;
use sniffer::tracker::Tracker;

const PYTHON: &str = "/usr/bin/python3";

/// Programs loaded, one scratch cgroup watched.
struct Harness {
    kernel: Kernel,
    reader: EventReader,
    cgroup: ScratchCgroup,
}

impl Harness {
    fn new(name: &str, options: Options) -> Harness {
        let mut kernel = Kernel::load(&options).expect("loading the eBPF programs (run as root)");
        let reader = kernel.events().unwrap();
        let cgroup = ScratchCgroup::create(&format!("sniffer-test-{name}-{}", std::process::id())).unwrap();
        kernel.watch(cgroup.id()).unwrap();
        Harness { kernel, reader, cgroup }
    }

    /// Runs the command inside the watched cgroup, waits, and returns every event read, with
    /// loaders added as the daemon adds them.
    fn run(&mut self, command: &mut Command) -> Vec<FileEvent> {
        let status = run_in(&self.cgroup, command);
        assert!(status.success() || status.code().is_some(), "{command:?} was killed");
        let mut events = Vec::new();
        self.reader.drain(&mut events);
        LoaderResolver::new().add_loaders(&mut events);
        events
    }
}

fn run_in(cgroup: &ScratchCgroup, command: &mut Command) -> std::process::ExitStatus {
    let _procs = cgroup.join_on_spawn(command).unwrap();
    command.status().expect("spawning the test command")
}

fn paths(events: &[FileEvent], kind: Access) -> Vec<PathBuf> {
    events.iter().filter(|e| e.kind == kind).map(|e| e.path.clone()).collect()
}

fn opened(events: &[FileEvent], path: &Path) -> usize {
    events.iter().filter(|e| e.kind == Access::Open && e.path == path).count()
}

fn canonical(path: impl AsRef<Path>) -> PathBuf {
    std::fs::canonicalize(path).unwrap()
}

fn tempdir() -> tempfile::TempDir {
    // Under /var/tmp, a plain directory on the root filesystem here.
    tempfile::tempdir_in("/var/tmp").unwrap()
}

#[tokio::test]
async fn absolute_open_is_reported_with_its_task() {
    let dir = tempdir();
    let file = canonical(dir.path()).join("absolute.txt");
    std::fs::write(&file, "x").unwrap();
    let mut h = Harness::new("abs", Options::default());
    let events = h.run(Command::new("/bin/cat").arg(&file));
    assert_eq!(opened(&events, &file), 1, "{events:#?}");
    let ev = events.iter().find(|e| e.path == file).unwrap();
    assert_eq!(ev.comm, "cat");
    assert_eq!(ev.cgroup_id, h.cgroup.id());
    assert!(ev.mnt_ns > 0 && ev.pid > 0 && !ev.truncated);
}

#[tokio::test]
async fn relative_open_after_chdir_is_absolute() {
    let dir = tempdir();
    let base = canonical(dir.path());
    std::fs::create_dir(base.join("sub")).unwrap();
    std::fs::write(base.join("sub/rel.txt"), "x").unwrap();
    let mut h = Harness::new("rel", Options::default());
    let events =
        h.run(Command::new("/bin/sh").arg("-c").arg("cd sub && cat ./rel.txt ../sub/rel.txt").current_dir(&base));
    assert_eq!(opened(&events, &base.join("sub/rel.txt")), 1, "{events:#?}");
    assert!(events.iter().all(|e| e.path.is_absolute()));
}

#[tokio::test]
async fn openat_with_a_directory_fd_is_resolved() {
    let dir = tempdir();
    let base = canonical(dir.path());
    std::fs::write(base.join("viafd.txt"), "x").unwrap();
    let script = format!(
        "import os\nd = os.open({:?}, os.O_RDONLY | os.O_DIRECTORY)\nos.close(os.open('viafd.txt', os.O_RDONLY, dir_fd=d))\n",
        base.to_str().unwrap()
    );
    let mut h = Harness::new("dirfd", Options::default());
    let events = h.run(Command::new(PYTHON).arg("-c").arg(script).current_dir("/"));
    assert_eq!(opened(&events, &base.join("viafd.txt")), 1, "{events:#?}");
    assert_eq!(opened(&events, Path::new("/viafd.txt")), 0);
}

#[tokio::test]
async fn open_through_a_symlink_reports_the_target() {
    let dir = tempdir();
    let base = canonical(dir.path());
    std::fs::create_dir(base.join("real")).unwrap();
    std::fs::write(base.join("real/target.txt"), "x").unwrap();
    std::os::unix::fs::symlink("real/target.txt", base.join("link.txt")).unwrap();
    let mut h = Harness::new("symlink", Options::default());
    let events = h.run(Command::new("/bin/cat").arg(base.join("link.txt")));
    assert_eq!(opened(&events, &base.join("real/target.txt")), 1, "{events:#?}");
    assert_eq!(opened(&events, &base.join("link.txt")), 0);
}

#[tokio::test]
async fn failed_open_is_not_reported() {
    let dir = tempdir();
    let missing = canonical(dir.path()).join("missing.txt");
    let mut h = Harness::new("missing", Options::default());
    let events = h.run(Command::new("/bin/cat").arg(&missing));
    assert!(events.iter().all(|e| !e.path.ends_with("missing.txt")), "{events:#?}");
    // The command itself ran and was seen.
    assert!(paths(&events, Access::Exec).contains(&canonical("/bin/cat")));
}

#[tokio::test]
async fn python_import_json_reports_its_sources_and_the_interpreter() {
    // An empty bytecode cache prefix: Python must open json's .py sources, not cached .pyc.
    let cache = tempdir();
    let mut h = Harness::new("python", Options::default());
    let events = h.run(Command::new(PYTHON).arg("-c").arg("import json").env("PYTHONPYCACHEPREFIX", cache.path()));
    let json_dir = canonical("/usr/lib/python3.11/json");
    for source in ["__init__.py", "decoder.py", "scanner.py", "encoder.py"] {
        assert_eq!(opened(&events, &json_dir.join(source)), 1, "json/{source} in {events:#?}");
    }
    assert!(paths(&events, Access::Exec).contains(&canonical(PYTHON)), "{events:#?}");
}

#[tokio::test]
async fn exec_reports_binary_loader_and_libraries() {
    let mut h = Harness::new("exec", Options::default());
    let events = h.run(Command::new("/bin/ls").arg("/"));
    let execs = paths(&events, Access::Exec);
    assert!(execs.contains(&canonical("/bin/ls")), "{execs:?}");
    let loader = canonical("/lib64/ld-linux-x86-64.so.2");
    let loader_event = events.iter().find(|e| e.kind == Access::Exec && e.path == loader).expect("loader reported");
    assert_eq!(loader_event.loader_of.as_deref(), Some(canonical("/bin/ls").as_path()));
    assert_eq!(opened(&events, &canonical("/lib/x86_64-linux-gnu/libc.so.6")), 1, "{events:#?}");
    assert_eq!(opened(&events, &canonical("/lib/x86_64-linux-gnu/libselinux.so.1")), 1);
}

#[tokio::test]
async fn chrooted_task_in_its_own_mount_namespace_reports_paths_inside_its_root() {
    let dir = tempdir();
    let root = canonical(dir.path());
    for d in ["usr", "data"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    for (link, target) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    }
    std::fs::write(root.join("data/hello.txt"), "hello").unwrap();
    let script = format!("mount --bind /usr {0}/usr && exec chroot {0} /usr/bin/cat /data/hello.txt", root.display());
    let mut h = Harness::new("chroot", Options::default());
    let events =
        h.run(Command::new("/usr/bin/unshare").args(["--mount", "--propagation", "private", "/bin/sh", "-c", &script]));
    assert_eq!(opened(&events, Path::new("/data/hello.txt")), 1, "{events:#?}");
    assert_eq!(opened(&events, &root.join("data/hello.txt")), 0);
    let cat = events.iter().find(|e| e.kind == Access::Exec && e.comm == "cat").expect("cat exec");
    assert_eq!(cat.path, Path::new("/usr/bin/cat"));
    let host_ns = std::fs::metadata("/proc/self/ns/mnt").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    assert_ne!(cat.mnt_ns, host_ns, "cat ran in its own mount namespace");
}

#[tokio::test]
async fn unwatched_cgroup_sends_nothing() {
    let dir = tempdir();
    let file = canonical(dir.path()).join("unwatched.txt");
    std::fs::write(&file, "x").unwrap();
    let mut h = Harness::new("watched", Options::default());
    let other = ScratchCgroup::create(&format!("sniffer-test-unwatched-{}", std::process::id())).unwrap();
    run_in(&other, Command::new("/bin/cat").arg(&file));
    let mut events = Vec::new();
    h.reader.drain(&mut events);
    assert!(events.is_empty(), "{events:#?}");
    // The same command in the watched cgroup is seen: the test can fail.
    let events = h.run(Command::new("/bin/cat").arg(&file));
    assert_eq!(opened(&events, &file), 1);
}

#[tokio::test]
async fn ten_thousand_opens_of_one_path_send_one_event() {
    let dir = tempdir();
    let file = canonical(dir.path()).join("hot.txt");
    std::fs::write(&file, "x").unwrap();
    let script = format!("for _ in range(10000):\n    open({:?}).close()\n", file.to_str().unwrap());
    let mut h = Harness::new("repeat", Options::default());
    let events = h.run(Command::new(PYTHON).arg("-c").arg(script));
    assert_eq!(opened(&events, &file), 1, "{} events", events.len());
    let repeats = h.kernel.stats().unwrap().repeats;
    assert!(repeats >= 9999, "{repeats} repeats dropped in the kernel");
}

#[tokio::test]
async fn flooded_tiny_ring_buffer_counts_losses_and_marks_the_container_incomplete() {
    let dir = tempdir();
    let base = canonical(dir.path());
    for i in 0..2000 {
        std::fs::write(base.join(format!("f{i}")), "").unwrap();
    }
    let script = format!(
        "import os\nfor i in range(2000):\n    open(os.path.join({:?}, 'f%d' % i)).close()\n",
        base.to_str().unwrap()
    );
    let mut h = Harness::new("flood", Options { ring_bytes: 4096, ..Options::default() });
    // Nothing is read while the command runs, so the one-page ring fills up.
    let events = h.run(Command::new(PYTHON).arg("-c").arg(script));
    let lost = h.kernel.counts_for(h.cgroup.id()).unwrap().lost;
    let stats = h.kernel.stats().unwrap();
    assert!(lost > 0, "lost {lost}, received {}", events.len());
    assert_eq!(stats.lost, lost, "every loss is attributed to the only watched cgroup");
    assert_eq!(stats.lost_per_cpu.iter().sum::<u64>(), stats.lost);
    assert!((events.len() as u64) < 2000);

    let mut tracker = Tracker::default();
    tracker.watch(h.cgroup.id(), Some("flood"));
    for e in &events {
        tracker.record(e);
    }
    assert!(tracker.summary(h.cgroup.id()).unwrap().complete, "nothing lost known yet");
    tracker.set_lost(h.cgroup.id(), lost);
    assert!(!tracker.summary(h.cgroup.id()).unwrap().complete);
}

#[tokio::test]
async fn deep_paths_are_flagged_truncated_not_cut_silently() {
    let dir = tempdir();
    let mut deep = canonical(dir.path());
    for i in 0..120 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("leaf.txt"), "x").unwrap();
    let mut h = Harness::new("deep", Options::default());
    let events = h.run(Command::new("/bin/cat").arg("leaf.txt").current_dir(&deep));
    let leaf = events.iter().find(|e| e.path.ends_with("d119/leaf.txt")).expect("leaf reported");
    assert!(leaf.truncated, "{leaf:?}");
    assert!(leaf.path.to_string_lossy().starts_with(sniffer::event::TRUNCATED_PREFIX));
}

/// Opens `<root>/data/hello.txt` `times` times, then chroots to `<root>` and opens
/// `/data/hello.txt` once: the same task, mount and dentry under two roots. Returns the
/// harness, the events and the file's path outside the root.
fn open_before_and_after_chroot(name: &str, times: usize, options: Options) -> (Harness, Vec<FileEvent>, PathBuf) {
    let dir = tempdir();
    let root = canonical(dir.path());
    std::fs::create_dir(root.join("data")).unwrap();
    let file = root.join("data/hello.txt");
    std::fs::write(&file, "hello").unwrap();
    let script = format!(
        "import os\nfor _ in range({times}):\n    open({file:?}).close()\nos.chroot({root:?})\nos.chdir('/')\nopen('/data/hello.txt').close()\n",
        file = file.to_str().unwrap(),
        root = root.to_str().unwrap()
    );
    let mut h = Harness::new(name, options);
    let events = h.run(Command::new(PYTHON).arg("-c").arg(script));
    (h, events, file)
}

#[tokio::test]
async fn one_file_opened_before_and_after_chroot_is_reported_under_each_path() {
    // Only the root in the repeat key tells the second open from a repeat of the first.
    let (_h, events, file) = open_before_and_after_chroot("reroot", 1, Options::default());
    assert_eq!(opened(&events, &file), 1, "{events:#?}");
    assert_eq!(opened(&events, Path::new("/data/hello.txt")), 1, "{events:#?}");
}

/// One file opened 1,000 times, then again after a chroot: one event per path, the rest
/// dropped as repeats, with the programs reading opened files as `reads` says.
fn one_event_per_path_when_reading_by(reads: FileReads) {
    let options = Options { file_reads: Some(reads), ..Options::default() };
    let (h, events, file) = open_before_and_after_chroot(&format!("{reads:?}"), 1000, options);
    assert_eq!(h.kernel.file_reads(), reads);
    assert_eq!(opened(&events, &file), 1, "{events:#?}");
    assert_eq!(opened(&events, Path::new("/data/hello.txt")), 1, "{events:#?}");
    let repeats = h.kernel.stats().unwrap().repeats;
    assert!(repeats >= 999, "{repeats} repeats dropped in the kernel");
}

#[tokio::test]
async fn probe_reads_report_paths_and_drop_repeats_as_plain_loads_do() {
    // Kernels without the kfunc bpf_rdonly_cast.
    one_event_per_path_when_reading_by(FileReads::Probed);
}

#[tokio::test]
async fn plain_loads_of_the_file_with_a_probed_fd_slot_report_paths_and_drop_repeats() {
    // Kernels with bpf_rdonly_cast but no casts to void.
    one_event_per_path_when_reading_by(FileReads::PlainFields);
}

#[tokio::test]
async fn this_kernel_gets_the_fastest_file_reads_its_btf_allows() {
    let btf = sniffer::btf::Btf::from_kernel().unwrap();
    let expected = match (
        btf.func_id("bpf_rdonly_cast").is_some(),
        btf.has_enumerator("bpf_features", "BPF_FEAT_RDONLY_CAST_TO_VOID"),
    ) {
        (false, _) => FileReads::Probed,
        (true, false) => FileReads::PlainFields,
        (true, true) => FileReads::Plain,
    };
    let h = Harness::new("fastest", Options::default());
    assert_eq!(h.kernel.file_reads(), expected);
}

#[tokio::test]
async fn cgroups_sharing_a_gate_slot_are_each_reported_and_unwatched_apart() {
    // One slot: every cgroup maps to it, so the second watched one spills.
    let mut kernel = Kernel::load(&Options { max_watched: 1, ..Options::default() }).unwrap();
    let mut reader = kernel.events().unwrap();
    let pid = std::process::id();
    let [a, b, c] = ["a", "b", "c"].map(|n| ScratchCgroup::create(&format!("sniffer-test-slot-{n}-{pid}")).unwrap());
    kernel.watch(a.id()).unwrap();
    kernel.watch(b.id()).unwrap();
    let dir = tempdir();
    let base = canonical(dir.path());
    let mut cat_in = |cgroup: &ScratchCgroup, name: &str| -> Vec<FileEvent> {
        let file = base.join(name);
        std::fs::write(&file, "x").unwrap();
        assert!(run_in(cgroup, Command::new("/bin/cat").arg(&file)).success());
        let mut events = Vec::new();
        reader.drain(&mut events);
        events.retain(|e| e.path == file);
        events
    };
    let seen_by = |events: &[FileEvent]| events.iter().map(|e| e.cgroup_id).collect::<Vec<_>>();

    assert_eq!(seen_by(&cat_in(&a, "a1")), [a.id()], "the slot's holder");
    assert_eq!(seen_by(&cat_in(&b, "b1")), [b.id()], "the spilled one");
    assert!(cat_in(&c, "c1").is_empty(), "unwatched, though its slot is taken");

    kernel.unwatch(a.id()).unwrap();
    assert!(cat_in(&a, "a2").is_empty(), "unwatched holder");
    assert_eq!(seen_by(&cat_in(&b, "b2")), [b.id()], "still watched after the holder left");
    kernel.watch(c.id()).unwrap();
    assert_eq!(seen_by(&cat_in(&c, "c2")), [c.id()], "takes the freed slot");

    kernel.unwatch(b.id()).unwrap();
    assert!(cat_in(&b, "b3").is_empty(), "unwatched spilled one");
    assert_eq!(seen_by(&cat_in(&c, "c3")), [c.id()]);
}

/// A file opened only through io_uring (`IORING_OP_OPENAT`) is reported, relative paths
/// absolute, a failed open not at all; the read syscalls around it never name the file.
#[tokio::test]
async fn opens_through_io_uring_are_reported() {
    let dir = tempdir();
    let program = dir.path().join("uring-open");
    testkit::uring::build(&program);
    let secret = dir.path().join("only-through-io-uring.txt");
    std::fs::write(&secret, "seen only by io_uring\n").unwrap();
    let mut h = Harness::new("uring", Options::default());
    let events = h.run(Command::new(&program).arg(&secret));
    assert_eq!(opened(&events, &canonical(&secret)), 1, "{events:#?}");
    // Relative to its working directory: reported absolute.
    let mut h = Harness::new("uring-rel", Options::default());
    let events = h.run(Command::new(&program).args(["only-through-io-uring.txt"]).arg(dir.path()));
    assert_eq!(opened(&events, &canonical(&secret)), 1, "{events:#?}");
    // A failed open through io_uring is not reported.
    let missing = dir.path().join("missing-through-io-uring.txt");
    let mut h = Harness::new("uring-missing", Options::default());
    let events = h.run(Command::new(&program).arg(&missing));
    assert!(!events.iter().any(|e| e.path == missing), "{events:#?}");
}
