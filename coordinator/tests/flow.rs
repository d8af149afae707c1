//! The flow on a real root filesystem (a real process chrooted into the cached Debian root,
//! so `/proc/<pid>/root` is that root), the real OSV fixtures, and a real HTTP receiver
//! that is down for its first attempts. The sniffer side is given as the paths a traced
//! `import requests` opens (the kernel path is exercised by the sniffer crate's tests).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coordinator::bus::{Bus, FlowEvent};
use coordinator::flow::{Config, Coordinator, Observed, Progress, Sniffer};
use coordinator::model::Workload;
use coordinator::store::{Storage, Store, Table};
use coordinator::submit::{Backend, Policy};

struct Recorded(Mutex<HashMap<u64, Vec<PathBuf>>>, Mutex<Vec<(u64, bool)>>);

impl Sniffer for Recorded {
    fn watch(&self, cgroup_id: u64) -> Result<(), coordinator::flow::WatchError> {
        self.1.lock().unwrap().push((cgroup_id, true));
        Ok(())
    }
    fn unwatch(&self, cgroup_id: u64) {
        self.1.lock().unwrap().push((cgroup_id, false));
    }
    fn observed(&self, cgroup_id: u64) -> Observed {
        Observed { paths: self.0.lock().unwrap().get(&cgroup_id).cloned().unwrap_or_default(), incomplete: Vec::new() }
    }
    fn progress(&self, cgroup_id: u64) -> Progress {
        Progress { paths: self.0.lock().unwrap().get(&cgroup_id).map_or(0, Vec::len), short_by: 0 }
    }
}

fn bookworm() -> PathBuf {
    let root = testkit::fixtures::bookworm_root();
    assert!(root.join("usr/bin/python3").exists(), "{} missing: run `cargo xtask setup`", root.display());
    root
}

/// A real process of the Debian root (`chroot ROOT sleep 120`), returned once it is inside
/// the root: until `chroot` has run, `/proc/<pid>/root` is the host's, and an SBOM computed
/// then would be the host's.
fn in_bookworm() -> std::process::Child {
    let root = std::fs::canonicalize(bookworm()).unwrap();
    let mut child = std::process::Command::new("chroot").arg(&root).args(["sleep", "120"]).spawn().unwrap();
    for _ in 0..500 {
        if std::fs::read_link(format!("/proc/{}/root", child.id())).is_ok_and(|r| r == root) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id();
    let _ = child.kill();
    let _ = child.wait();
    panic!("process {pid} never entered {}", root.display());
}

fn vuln_db(dir: &Path) -> PathBuf {
    let db = dir.join("vuln.db");
    let mut w = vuln::Writer::open(&db).unwrap();
    let fixtures = testkit::fixtures::osv();
    vuln::import::import_path(&mut w, &fixtures, &mut vuln::ImportReport::default()).unwrap();
    w.commit().unwrap();
    db
}

/// The flow's settings with the database `db`, default budgets and two minutes for an SBOM.
fn config(db: &Path, learning_window: Duration, persist_every: Duration) -> Config {
    Config {
        vuln_db: db.to_path_buf(),
        learning_window,
        persist_every,
        sbom_timeout: Duration::from_secs(120),
        budgets: sbom::Budgets::default(),
    }
}

async fn until(bus: &Bus, what: impl Fn(&FlowEvent) -> bool) {
    for _ in 0..300 {
        if bus.history(0).iter().any(|s| what(&s.event)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out; events: {:#?}", bus.history(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_once_instance_learned_reports_sent_exactly_once_through_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let db = vuln_db(tmp.path());
    let state = tmp.path().join("state");
    // A real workload in the real root.
    let mut child = in_bookworm();
    let mut second = in_bookworm();
    let site = "/usr/local/lib/python3.11/dist-packages";
    let opened: Vec<PathBuf> =
        ["/usr/bin/python3.11", &format!("{site}/requests/__init__.py"), &format!("{site}/urllib3/__init__.py")]
            .iter()
            .map(PathBuf::from)
            .collect();
    let sniffer =
        Arc::new(Recorded(Mutex::new(HashMap::from([(11, opened.clone()), (12, opened)])), Mutex::new(Vec::new())));
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let (url, received) = testkit::receiver(3);
    let backend = Backend { url, token_file: Some(token), token: None, timeout: Duration::from_secs(5) };
    let policy = Policy {
        base: Duration::from_millis(100),
        max: Duration::from_millis(400),
        dead_after: Duration::from_secs(3600),
    };

    let run = |store: Arc<dyn Storage>, bus: Arc<Bus>| {
        let notify = Arc::new(tokio::sync::Notify::new());
        let config = config(&db, Duration::from_millis(500), Duration::from_millis(200));
        let c = Arc::new(Coordinator::new(store.clone(), bus.clone(), sniffer.clone(), config, notify.clone()));
        let outbox = tokio::spawn(coordinator::submit::run(store, bus, backend.clone(), policy, notify));
        (c, outbox)
    };
    let store: Arc<dyn Storage> = Arc::new(Store::open(&state).unwrap());
    let bus = Arc::new(Bus::default());
    let (c, outbox) = run(store.clone(), bus.clone());
    let w = |id: &str, pid: u32, cg: u64| Workload {
        id: id.into(),
        pid,
        cgroup_id: cg,
        image: "bookworm-fixture:1".into(),
        digest: "sha256:feed".into(),
        k8s: None,
        layers: None,
        owner: None,
    };
    c.workload_started(w("one", child.id(), 11)).await.unwrap();
    c.workload_started(w("two", second.id(), 12)).await.unwrap();
    let sbom_events = bus.history(0).iter().filter(|s| matches!(s.event, FlowEvent::SbomStored { .. })).count();
    assert_eq!(sbom_events, 1, "one image, one SBOM computation");
    assert!(bus.history(0).iter().any(|s| matches!(s.event, FlowEvent::SbomReused { .. })));

    // The learning window ends: SBOM' and the instance report.
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.tick().await.unwrap();
    until(&bus, |e| matches!(e, FlowEvent::RuntimeSbomStored { instance, .. } if instance == "two")).await;

    let image = c.report_for("image:sha256:feed").unwrap().unwrap();
    let jinja_ids: Vec<&str> = image
        .scan
        .findings
        .iter()
        .filter(|f| f.package.name.eq_ignore_ascii_case("jinja2"))
        .map(|f| f.id.as_str())
        .collect();
    assert!(!jinja_ids.is_empty());
    let instance = c.report_for("instance:one").unwrap().unwrap();
    for f in &instance.scan.findings {
        let used = ["requests", "urllib3"].contains(&f.package.name.as_str());
        assert_eq!(f.relevant, Some(used), "{} {}", f.package.name, f.id);
    }
    let runtime: sbom::index::RuntimeSbom =
        serde_json::from_slice(&store.get_raw(Table::RuntimeSbom, "one").unwrap().unwrap()).unwrap();
    let names: Vec<&str> = runtime.packages.iter().map(|p| p.package.name.as_str()).collect();
    assert!(
        names.contains(&"requests") && names.contains(&"urllib3") && names.contains(&"python3.11-minimal"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.eq_ignore_ascii_case("jinja2")));

    // The instance again (a restarted container): it has SBOM', so it is not sniffed (its
    // cgroup, watched at discovery, is let go) and the image is neither recomputed nor
    // indexed again.
    let reuses = bus.history(0).iter().filter(|s| matches!(s.event, FlowEvent::SbomReused { .. })).count();
    c.workload_started(w("one", child.id(), 13)).await.unwrap();
    assert!(
        bus.history(0)
            .iter()
            .any(|s| matches!(&s.event, FlowEvent::RuntimeSbomReused { instance } if instance == "one"))
    );
    assert_eq!(bus.history(0).iter().filter(|s| matches!(s.event, FlowEvent::SbomReused { .. })).count(), reuses);
    assert_eq!(sniffer.1.lock().unwrap().iter().filter(|(cg, _)| *cg == 13).collect::<Vec<_>>(), [&(13, false)]);
    assert!(c.learning().is_empty());

    // The receiver was down for three attempts; every report arrives, once.
    for _ in 0..100 {
        if store.count(Table::Outbox).unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.count(Table::Outbox).unwrap(), 0, "{:#?}", bus.history(0));
    assert!(bus.history(0).iter().any(|s| matches!(s.event, FlowEvent::SubmitFailed { .. })));
    let got = received.lock().unwrap().clone();
    let mut keys: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!((before, keys.len()), (3, 3), "image + two instances, each once");
    assert!(got.iter().all(|(k, auth, body)| auth == "Bearer s3cret" && body["id"] == *k));

    // Metrics: what runs, counted from its reports; a restarted daemon reads them back.
    use coordinator::posture::Tally;
    let (instances, images) = c.posture().snapshot();
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert!(instances.iter().any(|i| i.labels.workload == "one" && i.tally == Some(Tally::of(&instance))));
    assert_eq!(images[0].tally, Some(Tally::of(&image)));
    assert_eq!(images[0].image_digest, "feed");
    let restarted = Coordinator::new(
        store.clone(),
        bus.clone(),
        sniffer.clone(),
        config(&db, Duration::from_millis(500), Duration::from_millis(200)),
        Arc::new(tokio::sync::Notify::new()),
    );
    restarted.workload_started(w("one", child.id(), 14)).await.unwrap();
    let (instances, images) = restarted.posture().snapshot();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].tally, Some(Tally::of(&instance)));
    assert_eq!(images[0].tally, Some(Tally::of(&image)));
    restarted.workload_exited("one").await.unwrap();
    let (instances, images) = restarted.posture().snapshot();
    assert!(instances.is_empty() && images.is_empty());
    // Timings: one SBOM, one image scan, two instance scans, two learning windows.
    let t = c.timings();
    assert_eq!((t.sbom.snapshot().count, t.image_scan.snapshot().count, t.instance_scan.snapshot().count), (1, 1, 2));
    assert_eq!(t.learning.snapshot().count, 2);

    outbox.abort();
    child.kill().unwrap();
    second.kill().unwrap();
    let _ = (child.wait(), second.wait());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_learning_keeps_every_learned_path() {
    let tmp = tempfile::tempdir().unwrap();
    let db = vuln_db(tmp.path());
    let state = tmp.path().join("state");
    let mut child = in_bookworm();
    let w = Workload {
        id: "c1".into(),
        pid: child.id(),
        cgroup_id: 21,
        image: "img".into(),
        digest: "sha256:beef".into(),
        k8s: None,
        layers: None,
        owner: None,
    };
    let requests = PathBuf::from("/usr/local/lib/python3.11/dist-packages/requests/__init__.py");
    let config = config(&db, Duration::from_secs(3600), Duration::from_millis(1));
    {
        // First life: learns `requests`, persists, then dies without finishing.
        let sniffer =
            Arc::new(Recorded(Mutex::new(HashMap::from([(21, vec![requests.clone()])])), Mutex::new(Vec::new())));
        let store: Arc<dyn Storage> = Arc::new(Store::open(&state).unwrap());
        let c = Coordinator::new(
            store,
            Arc::new(Bus::default()),
            sniffer,
            config.clone(),
            Arc::new(tokio::sync::Notify::new()),
        );
        c.workload_started(w.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        c.tick().await.unwrap();
    }
    // Second life: the kernel's memory of the container is gone (a fresh sniffer sees
    // only what happens next), the store is not.
    let sniffer = Arc::new(Recorded(Mutex::new(HashMap::new()), Mutex::new(Vec::new())));
    let store: Arc<dyn Storage> = Arc::new(Store::open(&state).unwrap());
    let bus = Arc::new(Bus::default());
    let c = Coordinator::new(store.clone(), bus.clone(), sniffer.clone(), config, Arc::new(tokio::sync::Notify::new()));
    c.workload_started(w).await.unwrap();
    assert!(
        bus.history(0).iter().any(|s| matches!(s.event, FlowEvent::SbomReused { .. })),
        "SBOM kept across the restart"
    );
    assert!(c.learn_stop("c1").await.unwrap());
    let runtime: sbom::index::RuntimeSbom =
        serde_json::from_slice(&store.get_raw(Table::RuntimeSbom, "c1").unwrap().unwrap()).unwrap();
    let requests_pkg =
        runtime.packages.iter().find(|p| p.package.name == "requests").expect("learned before the restart");
    assert_eq!(requests_pkg.evidence, [requests]);
    assert_eq!(store.count(Table::Learning).unwrap(), 0);
    // Both reports of the first life and the instance report wait in the outbox.
    assert_eq!(store.count(Table::Outbox).unwrap(), 2);
    assert_eq!(*sniffer.1.lock().unwrap(), [(21, true), (21, false)]);
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_gone_while_the_daemon_was_down_still_gets_its_sbom_prime() {
    let tmp = tempfile::tempdir().unwrap();
    let db = vuln_db(tmp.path());
    let state = tmp.path().join("state");
    let mut child = in_bookworm();
    let w = Workload {
        id: "c9".into(),
        pid: child.id(),
        cgroup_id: 29,
        image: "img".into(),
        digest: "sha256:f00d".into(),
        k8s: None,
        layers: None,
        owner: None,
    };
    // What the kernel reports: merged-/usr paths, while dpkg lists /lib/x86_64-linux-gnu/libc.so.6.
    let opened: Vec<PathBuf> = [
        "/usr/bin/python3.11",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/local/lib/python3.11/dist-packages/requests/__init__.py",
        "/usr/lib/python3.11",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let config = config(&db, Duration::from_secs(3600), Duration::from_millis(1));
    {
        // First life: the image SBOM is stored, the instance learns, and the daemon dies.
        let sniffer = Arc::new(Recorded(Mutex::new(HashMap::from([(29, opened.clone())])), Mutex::new(Vec::new())));
        let store: Arc<dyn Storage> = Arc::new(Store::open(&state).unwrap());
        let c = Coordinator::new(
            store,
            Arc::new(Bus::default()),
            sniffer,
            config.clone(),
            Arc::new(tokio::sync::Notify::new()),
        );
        c.workload_started(w.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        c.tick().await.unwrap();
    }
    // The container exits while no daemon runs: its root is gone.
    child.kill().unwrap();
    let _ = child.wait();
    let sniffer = Arc::new(Recorded(Mutex::new(HashMap::new()), Mutex::new(Vec::new())));
    let store: Arc<dyn Storage> = Arc::new(Store::open(&state).unwrap());
    let bus = Arc::new(Bus::default());
    let c = Coordinator::new(store.clone(), bus.clone(), sniffer, config, Arc::new(tokio::sync::Notify::new()));
    // A container that still runs is left to its start; nothing is running here.
    assert_eq!(c.synced(&["c9".to_string()]).await.unwrap(), 0);
    assert_eq!(store.count(Table::Learning).unwrap(), 1);
    assert_eq!(c.synced(&[]).await.unwrap(), 1);
    assert!(
        bus.history(0)
            .iter()
            .any(|s| matches!(&s.event, FlowEvent::LearningEnded { reason, paths: 4, .. } if *reason == coordinator::ids::EndReason::Vanished))
    );
    let runtime: sbom::index::RuntimeSbom =
        serde_json::from_slice(&store.get_raw(Table::RuntimeSbom, "c9").unwrap().unwrap()).unwrap();
    let names: Vec<&str> = runtime.packages.iter().map(|p| p.package.name.as_str()).collect();
    for used in ["libc6", "python3.11-minimal", "requests"] {
        assert!(names.contains(&used), "{used} not in {names:?}");
    }
    // The directory is no package's file; SBOM' says how it was made.
    assert_eq!(runtime.unmatched, 1);
    assert!(!runtime.complete);
    assert_eq!(runtime.warnings, [sbom::index::WITHOUT_ROOT]);
    assert_eq!(store.count(Table::Learning).unwrap(), 0);
    let report = c.report_for("instance:c9").unwrap().expect("instance report");
    assert_eq!(report.scan.runtime_complete, Some(false));
    assert!(report.scan.warnings.iter().any(|w| w.contains(sbom::index::WITHOUT_ROOT)), "{:?}", report.scan.warnings);
    assert!(report.scan.findings.iter().any(|f| f.package.name == "requests" && f.relevant == Some(true)));
    // Nothing left to finish.
    assert_eq!(c.synced(&[]).await.unwrap(), 0);
}

/// A computation that outlasts `sbom_timeout` is abandoned with a warning, never stored, and
/// the next container of the image computes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sbom_that_takes_too_long_is_abandoned_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let db = vuln_db(tmp.path());
    let mut child = in_bookworm();
    let sniffer = Arc::new(Recorded(Mutex::new(HashMap::new()), Mutex::new(Vec::new())));
    let store: Arc<dyn Storage> = Arc::new(Store::open(&tmp.path().join("state")).unwrap());
    let w = |id: &str, cg: u64| Workload {
        id: id.into(),
        pid: child.id(),
        cgroup_id: cg,
        image: "bookworm-fixture:1".into(),
        digest: "sha256:slow".into(),
        k8s: None,
        layers: None,
        owner: None,
    };
    let config =
        |sbom_timeout| Config { sbom_timeout, ..config(&db, Duration::from_secs(3600), Duration::from_secs(3600)) };
    let bus = Arc::new(Bus::default());
    let notify = Arc::new(tokio::sync::Notify::new());
    let c =
        Coordinator::new(store.clone(), bus.clone(), sniffer.clone(), config(Duration::from_millis(1)), notify.clone());
    c.workload_started(w("first", 31)).await.unwrap();
    let failed: Vec<String> = bus
        .history(0)
        .iter()
        .filter_map(|s| match &s.event {
            FlowEvent::SbomFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", bus.history(0));
    assert!(failed[0].contains("took longer"), "{failed:?}");
    assert_eq!(store.count(Table::Sbom).unwrap(), 0, "nothing half-made is stored");

    // The next container of the image, with time enough, computes it.
    let c =
        Coordinator::new(store.clone(), bus.clone(), sniffer.clone(), config(Duration::from_secs(120)), notify.clone());
    c.workload_started(w("second", 32)).await.unwrap();
    assert_eq!(store.count(Table::Sbom).unwrap(), 1);
    assert_eq!(c.report_for("image:sha256:slow").unwrap().unwrap().not_scanned, None);

    // Without a vulnerability database the report says it was not scanned: its empty
    // findings are not a clean result.
    let none = Config { vuln_db: tmp.path().join("none.db"), ..config(Duration::from_secs(120)) };
    let c = Coordinator::new(store.clone(), bus.clone(), sniffer, none, notify);
    c.workload_started(Workload { digest: "sha256:nodb".into(), ..w("third", 33) }).await.unwrap();
    let report = c.report_for("image:sha256:nodb").unwrap().unwrap();
    assert!(report.scan.findings.is_empty());
    assert!(report.not_scanned.as_deref().is_some_and(|why| why.contains("none.db")), "{:?}", report.not_scanned);
    child.kill().unwrap();
    let _ = child.wait();
}

/// A store whose image SBOMs another node computes (cluster mode's `Theirs`).
struct ComputedElsewhere(Store);

impl Storage for ComputedElsewhere {
    fn put_many(&self, items: &[(Table, &str, serde_json::Value)]) -> Result<(), coordinator::store::StoreError> {
        self.0.put_many(items)
    }
    fn get_raw(&self, kind: Table, key: &str) -> Result<Option<Vec<u8>>, coordinator::store::StoreError> {
        self.0.get_raw(kind, key)
    }
    fn delete(&self, kind: Table, key: &str) -> Result<(), coordinator::store::StoreError> {
        self.0.delete(kind, key)
    }
    fn keys(&self, kind: Table) -> Result<Vec<String>, coordinator::store::StoreError> {
        self.0.keys(kind)
    }
    fn count(&self, kind: Table) -> Result<u64, coordinator::store::StoreError> {
        self.0.count(kind)
    }
    fn claim_image(
        &self,
        _: &coordinator::ids::Digest,
        _: &str,
    ) -> Result<coordinator::store::Claim, coordinator::store::StoreError> {
        Ok(coordinator::store::Claim::Theirs)
    }
}

/// In a cluster: the replicas of one Deployment on a node are one instance, learned by the
/// first (the second is not sniffed); an image another node computed gets no second image
/// report here, but this node still indexes it, so SBOM' is made and scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_one_instance_and_another_nodes_image_is_only_indexed_here() {
    let tmp = tempfile::tempdir().unwrap();
    let db = vuln_db(tmp.path());
    let mut first = in_bookworm();
    let mut second = in_bookworm();
    let opened: Vec<PathBuf> = ["/usr/bin/python3.11", "/usr/local/lib/python3.11/dist-packages/requests/__init__.py"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let sniffer = Arc::new(Recorded(Mutex::new(HashMap::from([(21, opened)])), Mutex::new(Vec::new())));
    let store: Arc<dyn Storage> = Arc::new(ComputedElsewhere(Store::open(&tmp.path().join("state")).unwrap()));
    let bus = Arc::new(Bus::default());
    let config = config(&db, Duration::from_secs(3600), Duration::from_secs(3600));
    let c = Coordinator::new(store.clone(), bus.clone(), sniffer.clone(), config, Arc::new(tokio::sync::Notify::new()));
    let replica = |id: &str, pod: &str, pid: u32, cg: u64| Workload {
        id: id.into(),
        pid,
        cgroup_id: cg,
        image: "bookworm-fixture:1".into(),
        digest: "sha256:feed".into(),
        k8s: Some(coordinator::model::K8sIdentity {
            namespace: "shop".into(),
            pod: pod.into(),
            container: "app".into(),
            pod_uid: format!("uid-{pod}"),
        }),
        layers: None,
        owner: Some(coordinator::model::WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "uid-web".into(),
        }),
    };
    let (a, b) = (replica("c-a", "web-7d9f-a", first.id(), 21), replica("c-b", "web-7d9f-b", second.id(), 22));
    assert_eq!(a.instance(), b.instance());
    assert_eq!(a.instance().as_str(), "shop/Deployment/web/app@sha256:feed");
    c.workload_started(a.clone()).await.unwrap();
    c.workload_started(b).await.unwrap();
    let history = bus.history(0);
    assert!(history.iter().any(|s| matches!(&s.event, FlowEvent::ReplicaNotSniffed { id, .. } if id == "c-b")));
    assert!(sniffer.1.lock().unwrap().contains(&(22, false)), "the second replica's cgroup is let go");
    assert_eq!(c.learning().len(), 1);
    // Another node's image: reused, no image report from this node; the SBOM is kept here.
    assert!(history.iter().any(|s| matches!(s.event, FlowEvent::SbomReused { .. })));
    assert!(!history.iter().any(|s| matches!(s.event, FlowEvent::SbomStored { .. })));
    assert!(c.report_for("image:sha256:feed").unwrap().is_none());
    assert!(store.get_raw(Table::Sbom, "sha256:feed").unwrap().is_some());

    assert!(c.learn_stop("c-a").await.unwrap());
    let runtime: sbom::index::RuntimeSbom = serde_json::from_slice(
        &store.get_raw(Table::RuntimeSbom, "shop/Deployment/web/app@sha256:feed").unwrap().unwrap(),
    )
    .unwrap();
    assert!(runtime.packages.iter().any(|p| p.package.name == "requests"), "indexed here: {runtime:?}");
    let report = c.report_for("instance:shop/Deployment/web/app@sha256:feed").unwrap().unwrap();
    assert!(report.scan.findings.iter().any(|f| f.package.name == "requests" && f.relevant == Some(true)));
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
