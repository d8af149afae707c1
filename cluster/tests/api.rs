//! The client side against a mock API server, the way kube-rs tests itself: `tower-test`'s
//! mock service behind `kube::Client`, each request the agent makes asserted (method, path,
//! query, field manager, body), answered with what a real API server answers, including
//! 409, 410 Gone on a watch, 422, 429 and 500.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coordinator::ids::{Digest, InstanceId};
use coordinator::model::{Workload, WorkloadRef};
use coordinator::store::{Claim, Storage, StorageExt, Store, Table};
use http::{Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mock() -> (Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// What the agent asked.
struct Asked {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

/// Takes the next request (within 10 s), answers `status` with `body` (`null`: the
/// request's own body, as an apply answers with the object), and returns it.
async fn answer(handle: &mut Handle, status: u16, body: Value) -> Asked {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("a request within 10 s")
        .expect("the client is still there");
    let (parts, req_body) = request.into_parts();
    let bytes = req_body.collect().await.unwrap().to_bytes();
    let asked = Asked {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: parts.headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    let body = if body.is_null() { asked.body.clone() } else { body };
    send.send_response(
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap(),
    );
    asked
}

/// Asserts the agent makes no request within `wait`.
async fn no_request(handle: &mut Handle, wait: Duration) {
    if let Ok(Some((request, _))) = tokio::time::timeout(wait, handle.next_request()).await {
        panic!("unexpected request {} {}", request.method(), request.uri());
    }
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": reason, "reason": reason, "code": code})
}

fn pod(name: &str, owner: Option<(&str, &str, &str)>) -> Pod {
    let owners = owner.map(|(api, kind, name)| {
        json!([{ "apiVersion": api, "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true }])
    });
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "shop", "uid": format!("uid-{name}"), "ownerReferences": owners.unwrap_or(json!([])) }
    }))
    .unwrap()
}

fn metadata_of(api: &str, kind: &str, name: &str, owner: Option<(&str, &str, &str)>) -> Value {
    let owners = owner.map(|(api, kind, name)| {
        json!([{ "apiVersion": api, "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true }])
    });
    json!({ "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": { "name": name, "namespace": "shop", "uid": format!("uid-{name}"), "ownerReferences": owners.unwrap_or(json!([])) },
            "_": [api, kind] })
}

#[tokio::test]
async fn a_replica_set_pod_belongs_to_its_deployment_looked_up_once() {
    let (client, mut handle) = mock();
    let owners = cluster::identity::Owners::new(client);
    let p = pod("web-7d9f-abcde", Some(("apps/v1", "ReplicaSet", "web-7d9f")));
    let o = owners.clone();
    let first = tokio::spawn(async move { o.workload_of(&p).await });
    let asked = answer(
        &mut handle,
        200,
        metadata_of("apps/v1", "ReplicaSet", "web-7d9f", Some(("apps/v1", "Deployment", "web"))),
    )
    .await;
    assert_eq!(
        (asked.method.as_str(), asked.path.as_str()),
        ("GET", "/apis/apps/v1/namespaces/shop/replicasets/web-7d9f")
    );
    let w = first.await.unwrap();
    assert_eq!(
        w,
        WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "uid-web".into()
        }
    );
    // Another replica of the same ReplicaSet: from the cache, no request.
    let o = owners.clone();
    let second = tokio::spawn(async move {
        o.workload_of(&pod("web-7d9f-fghij", Some(("apps/v1", "ReplicaSet", "web-7d9f")))).await
    });
    no_request(&mut handle, Duration::from_millis(300)).await;
    assert_eq!(second.await.unwrap().name, "web");
}

#[tokio::test]
async fn jobs_of_a_cron_job_statefulsets_and_bare_pods_resolve_and_failures_fall_back() {
    let (client, mut handle) = mock();
    let owners = cluster::identity::Owners::new(client);
    // A Job of a CronJob.
    let o = owners.clone();
    let job =
        tokio::spawn(async move { o.workload_of(&pod("backup-29-x", Some(("batch/v1", "Job", "backup-29")))).await });
    let asked =
        answer(&mut handle, 200, metadata_of("batch/v1", "Job", "backup-29", Some(("batch/v1", "CronJob", "backup"))))
            .await;
    assert_eq!(asked.path, "/apis/batch/v1/namespaces/shop/jobs/backup-29");
    assert_eq!(job.await.unwrap().kind, "CronJob");
    // A StatefulSet's pod and a bare pod need no request.
    let o = owners.clone();
    let direct = tokio::spawn(async move {
        (
            o.workload_of(&pod("db-0", Some(("apps/v1", "StatefulSet", "db")))).await,
            o.workload_of(&pod("debug", None)).await,
        )
    });
    no_request(&mut handle, Duration::from_millis(300)).await;
    let (sts, bare) = direct.await.unwrap();
    assert_eq!((sts.kind.as_str(), sts.name.as_str()), ("StatefulSet", "db"));
    assert_eq!((bare.kind.as_str(), bare.name.as_str(), bare.uid.as_str()), ("Pod", "debug", "uid-debug"));
    // The API server fails: the ReplicaSet stands in, and the failure is not cached.
    for _ in 0..2 {
        let o = owners.clone();
        let failed =
            tokio::spawn(
                async move { o.workload_of(&pod("api-5c-x", Some(("apps/v1", "ReplicaSet", "api-5c")))).await },
            );
        let asked = answer(&mut handle, 500, status(500, "InternalError")).await;
        assert_eq!(asked.path, "/apis/apps/v1/namespaces/shop/replicasets/api-5c");
        assert_eq!(failed.await.unwrap().kind, "ReplicaSet");
    }
}

fn image_sbom(phase: &str, node: &str, claimed_at: &str, version: &str) -> Value {
    json!({ "apiVersion": "sniffer.dev/v1alpha1", "kind": "ImageSbom",
            "metadata": { "name": "sha256-".to_string() + &"ab".repeat(32), "resourceVersion": version },
            "spec": { "image": "web:1", "digest": DIGEST, "phase": phase, "node": node, "claimedAt": claimed_at } })
}

const DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";

#[tokio::test]
async fn the_first_node_reserves_an_image_and_the_others_reuse_or_take_over() {
    let (client, mut handle) = mock();
    let claimer = Arc::new(cluster::claim::Claimer::new(kube::Api::all(client), "node-a", Duration::from_secs(600)));
    let digest = Digest::from(DIGEST);
    let path = "/apis/sniffer.dev/v1alpha1/imagesboms";

    // Nobody has it: created, computing, in this node's name.
    let (c, d) = (claimer.clone(), digest.clone());
    let claim = tokio::spawn(async move { c.claim(&d, "web:1").await.unwrap().0 });
    let asked = answer(&mut handle, 201, image_sbom("Computing", "node-a", "2026-11-30T10:00:00Z", "1")).await;
    assert_eq!((asked.method.as_str(), asked.path.as_str()), ("POST", path));
    assert!(asked.query.contains("fieldManager=sniffer"), "{}", asked.query);
    assert_eq!(asked.body["spec"]["phase"], "Computing");
    assert_eq!(asked.body["spec"]["node"], "node-a");
    assert_eq!(asked.body["metadata"]["name"], format!("sha256-{}", "ab".repeat(32)));
    assert_eq!(claim.await.unwrap(), Claim::Mine);

    // Another node's, ready: reused.
    let (c, d) = (claimer.clone(), digest.clone());
    let claim = tokio::spawn(async move { c.claim(&d, "web:1").await.unwrap().0 });
    assert_eq!(answer(&mut handle, 409, status(409, "AlreadyExists")).await.method, "POST");
    let asked = answer(&mut handle, 200, image_sbom("Ready", "node-b", "2026-11-30T10:00:00Z", "2")).await;
    assert_eq!((asked.method.as_str(), asked.path.as_str()), ("GET", &*format!("{path}/sha256-{}", "ab".repeat(32))));
    assert_eq!(claim.await.unwrap(), Claim::Theirs);

    // Another node's, computing for over the takeover time: replaced with the version read.
    // A third node took it first (409): read again, now ready: reused.
    let (c, d) = (claimer.clone(), digest.clone());
    let claim = tokio::spawn(async move { c.claim(&d, "web:1").await.unwrap().0 });
    answer(&mut handle, 409, status(409, "AlreadyExists")).await;
    answer(&mut handle, 200, image_sbom("Computing", "node-b", "2020-01-01T00:00:00Z", "7")).await;
    let asked = answer(&mut handle, 409, status(409, "Conflict")).await;
    assert_eq!(asked.method, "PUT");
    assert_eq!(asked.body["metadata"]["resourceVersion"], "7");
    assert_eq!(asked.body["spec"]["node"], "node-a");
    answer(&mut handle, 409, status(409, "AlreadyExists")).await;
    answer(&mut handle, 200, image_sbom("Ready", "node-c", "2026-11-30T10:00:00Z", "9")).await;
    assert_eq!(claim.await.unwrap(), Claim::Theirs);

    // A stale one taken over: this node computes.
    let (c, d) = (claimer.clone(), digest.clone());
    let claim = tokio::spawn(async move { c.claim(&d, "web:1").await.unwrap().0 });
    answer(&mut handle, 409, status(409, "AlreadyExists")).await;
    answer(&mut handle, 200, image_sbom("Computing", "node-b", "2020-01-01T00:00:00Z", "10")).await;
    let asked = answer(&mut handle, 200, image_sbom("Computing", "node-a", "2026-11-30T10:00:00Z", "11")).await;
    assert_eq!((asked.method.as_str(), asked.body["metadata"]["resourceVersion"].as_str()), ("PUT", Some("10")));
    assert_eq!(claim.await.unwrap(), Claim::Mine);

    // Another node's, fresh: that one object is watched from the version read. The watch
    // ends (the server's timeout): read again, without creating; still computing: watched
    // again; deleted: reserved again.
    let (c, d) = (claimer.clone(), digest.clone());
    let claim = tokio::spawn(async move { c.claim(&d, "web:1").await.unwrap().0 });
    let fresh = sbom::time::Timestamp::now().to_string();
    answer(&mut handle, 409, status(409, "AlreadyExists")).await;
    answer(&mut handle, 200, image_sbom("Computing", "node-b", &fresh, "12")).await;
    let watch = |expected_version: &'static str| {
        let name = format!("sha256-{}", "ab".repeat(32));
        move |request: &Request<Body>| {
            let query = request.uri().query().unwrap().to_string();
            assert_eq!((request.method().as_str(), request.uri().path()), ("GET", path));
            for part in [
                "watch=true",
                &format!("fieldSelector=metadata.name%3D{name}"),
                &format!("resourceVersion={expected_version}"),
            ] {
                assert!(query.contains(part), "{part} not in {query}");
            }
        }
    };
    let (request, send) = handle.next_request().await.unwrap();
    watch("12")(&request);
    send.send_response(Response::builder().status(200).body(Body::from(Vec::new())).unwrap());
    let asked = answer(&mut handle, 200, image_sbom("Computing", "node-b", &fresh, "13")).await;
    assert_eq!(asked.method, "GET", "read again, not created");
    let (request, send) = handle.next_request().await.unwrap();
    watch("13")(&request);
    let deleted = json!({"type": "DELETED", "object": image_sbom("Computing", "node-b", &fresh, "14")});
    send.send_response(
        Response::builder().status(200).body(Body::from(serde_json::to_vec(&deleted).unwrap())).unwrap(),
    );
    assert_eq!(answer(&mut handle, 201, image_sbom("Computing", "node-a", &fresh, "15")).await.method, "POST");
    assert_eq!(claim.await.unwrap(), Claim::Mine);
}

fn workload() -> Workload {
    common::workload("shop", &Digest::from(DIGEST))
}

/// A cluster storage as node `node`, over a new state file in `dir`; and that file's store.
fn cluster_storage(
    dir: &std::path::Path,
    client: kube::Client,
    node: &str,
) -> (Arc<cluster::store::ClusterStorage>, Arc<dyn Storage>) {
    let local: Arc<dyn Storage> = Arc::new(Store::open(dir).unwrap());
    let storage = Arc::new(cluster::store::ClusterStorage::new(
        local.clone(),
        client,
        tokio::runtime::Handle::current(),
        node,
        Duration::from_secs(600),
    ));
    (storage, local)
}

/// Stores an instance's report and an empty SBOM' through `storage`, as the flow does (one
/// batch).
async fn store_instance(storage: Arc<cluster::store::ClusterStorage>, w: &Workload) {
    let report = serde_json::to_value(common::instance_report(w, Vec::new())).unwrap();
    let runtime = serde_json::to_value(sbom::index::RuntimeSbom {
        packages: Vec::new(),
        unmatched: 0,
        complete: true,
        warnings: Vec::new(),
        calls: None,
    })
    .unwrap();
    let key = w.instance().to_string();
    tokio::task::spawn_blocking(move || {
        storage.put_many(&[(Table::Report, "r-1", report), (Table::RuntimeSbom, &key, runtime)]).unwrap()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn results_wait_in_the_queue_while_the_api_server_fails_and_are_applied_after() {
    let (client, mut handle) = mock();
    let dir = tempfile::tempdir().unwrap();
    let (storage, local) = cluster_storage(dir.path(), client.clone(), "node-a");
    let w = workload();
    store_instance(storage.clone(), &w).await;
    let queued = local.keys(Table::Publish).unwrap();
    assert_eq!(queued.len(), 2, "{queued:?}");

    // The API server is overloaded, then fails: both objects stay queued, with a backoff.
    let pass = {
        let (l, c) = (local.clone(), client.clone());
        tokio::spawn(async move {
            cluster::store::publish_once(&l, &c, &cluster::limit::RateLimit::new(100.0, 100)).await.unwrap()
        })
    };
    let mut paths = Vec::new();
    for (code, reason) in [(429, "TooManyRequests"), (500, "InternalError")] {
        let asked = answer(&mut handle, code, status(code, reason)).await;
        assert_eq!(asked.method, "PATCH");
        assert!(asked.query.contains("fieldManager=sniffer") && asked.query.contains("force=true"), "{}", asked.query);
        assert_eq!(asked.content_type, "application/apply-patch+yaml");
        paths.push(asked.path);
    }
    let next = pass.await.unwrap();
    assert!(next <= Duration::from_secs(1), "{next:?}");
    assert_eq!(local.keys(Table::Publish).unwrap().len(), 2);
    paths.sort();
    let name = cluster::names::instance_object_name("Deployment", "web", "app", &w.instance());
    assert_eq!(
        paths,
        [
            format!("/apis/sniffer.dev/v1alpha1/namespaces/shop/runtimesboms/{name}"),
            format!("/apis/sniffer.dev/v1alpha1/namespaces/shop/vulnerabilityreports/{name}"),
        ]
    );

    // After the backoff: applied, with labels and the workload as owner; the queue empties.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pass = {
        let (l, c) = (local.clone(), client.clone());
        tokio::spawn(async move {
            cluster::store::publish_once(&l, &c, &cluster::limit::RateLimit::new(100.0, 100)).await.unwrap()
        })
    };
    for _ in 0..2 {
        let asked = answer(&mut handle, 200, Value::Null).await;
        let meta = &asked.body["metadata"];
        assert_eq!(meta["namespace"], "shop");
        assert_eq!(meta["labels"]["sniffer.dev/workload-kind"], "Deployment");
        assert_eq!(meta["labels"]["sniffer.dev/workload-name"], "web");
        assert_eq!(meta["labels"]["sniffer.dev/container"], "app");
        assert_eq!(meta["ownerReferences"][0]["uid"], "uid-web");
        assert_eq!(asked.body["spec"]["instance"], w.instance().as_str());
    }
    pass.await.unwrap();
    assert!(local.keys(Table::Publish).unwrap().is_empty());
}

#[tokio::test]
async fn an_object_the_api_server_refuses_is_dropped_and_a_forbidden_one_waits() {
    let (client, mut handle) = mock();
    let dir = tempfile::tempdir().unwrap();
    let (storage, local) = cluster_storage(dir.path(), client.clone(), "node-a");
    store_instance(storage, &workload()).await;
    let pass = {
        let (l, c) = (local.clone(), client.clone());
        tokio::spawn(async move {
            cluster::store::publish_once(&l, &c, &cluster::limit::RateLimit::new(100.0, 100)).await.unwrap()
        })
    };
    answer(&mut handle, 422, status(422, "Invalid")).await;
    let forbidden = answer(&mut handle, 403, status(403, "Forbidden")).await;
    let next = pass.await.unwrap();
    // Ten minutes, less up to half at random (nodes refused together come back apart).
    assert!((Duration::from_secs(300)..=Duration::from_secs(600)).contains(&next), "{next:?}");
    let left = local.keys(Table::Publish).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    // The refused one is gone; the forbidden one is kept for when RBAC allows it.
    let kind = if forbidden.path.contains("/runtimesboms/") { "RuntimeSbom/" } else { "VulnerabilityReport/" };
    assert!(left[0].starts_with(kind), "{left:?} {}", forbidden.path);
    let kept: cluster::store::Pending = local.get(Table::Publish, &left[0]).unwrap().unwrap();
    assert_eq!(kept.attempts, 1);
    assert!(kept.last_error.unwrap().contains("Forbidden"));
}

#[tokio::test]
async fn has_sbom_prime_asks_the_cluster_when_this_node_has_none() {
    let (client, mut handle) = mock();
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = cluster_storage(dir.path(), client, "node-a");
    let instance = workload().instance();
    let name = cluster::names::instance_object_name("Deployment", "web", "app", &instance);
    for (code, found) in [(404, false), (200, true)] {
        let (s, i) = (storage.clone(), instance.clone());
        let asked =
            tokio::spawn(
                async move { tokio::task::spawn_blocking(move || s.has_runtime_sbom(&i).unwrap()).await.unwrap() },
            );
        let body = if code == 404 {
            status(404, "NotFound")
        } else {
            json!({"apiVersion": "sniffer.dev/v1alpha1", "kind": "RuntimeSbom", "metadata": {"name": name, "namespace": "shop"}, "spec": {"instance": instance.as_str(), "workload": {"kind": "Deployment", "name": "web"}, "container": "app", "image": "web:1", "digest": DIGEST, "packageCount": 0, "unmatched": 0, "complete": true}})
        };
        let got = answer(&mut handle, code, body).await;
        assert_eq!(got.path, format!("/apis/sniffer.dev/v1alpha1/namespaces/shop/runtimesboms/{name}"));
        assert_eq!(asked.await.unwrap(), found);
    }
    // The API server fails: learned here rather than not at all.
    let (s, i) = (storage.clone(), instance.clone());
    let asked =
        tokio::spawn(
            async move { tokio::task::spawn_blocking(move || s.has_runtime_sbom(&i).unwrap()).await.unwrap() },
        );
    answer(&mut handle, 503, status(503, "ServiceUnavailable")).await;
    assert!(!asked.await.unwrap());
    // A container outside Kubernetes: no request.
    let s = storage.clone();
    let outside = tokio::task::spawn_blocking(move || s.has_runtime_sbom(&InstanceId::from("0123abcd")).unwrap());
    no_request(&mut handle, Duration::from_millis(200)).await;
    assert!(!outside.await.unwrap());
}

#[tokio::test]
async fn this_nodes_pods_are_watched_and_an_expired_watch_relists() {
    let (client, mut handle) = mock();
    let (identity, run) = cluster::identity::Identity::start(client, "node-1");
    let reflector = tokio::spawn(run);
    let list = |pods: Vec<Pod>, version: &str| json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": version}, "items": pods});
    let asked =
        answer(&mut handle, 200, list(vec![pod("web-7d9f-a", Some(("apps/v1", "StatefulSet", "web")))], "10")).await;
    assert_eq!((asked.method.as_str(), asked.path.as_str()), ("GET", "/api/v1/pods"));
    assert!(asked.query.contains("fieldSelector=spec.nodeName%3Dnode-1"), "{}", asked.query);
    // The watch: its resource version is too old (410 Gone), as after a long disconnection.
    let watch = tokio::time::timeout(Duration::from_secs(10), handle.next_request()).await.unwrap().unwrap();
    assert!(watch.0.uri().query().unwrap().contains("watch=true"), "{}", watch.0.uri());
    assert!(watch.0.uri().query().unwrap().contains("fieldSelector=spec.nodeName%3Dnode-1"));
    let gone = json!({"type": "ERROR", "object": status(410, "Expired")});
    watch
        .1
        .send_response(Response::builder().status(200).body(Body::from(serde_json::to_vec(&gone).unwrap())).unwrap());
    // Listed again, with the pod that started meanwhile.
    let again = answer(
        &mut handle,
        200,
        list(vec![pod("web-7d9f-a", Some(("apps/v1", "StatefulSet", "web"))), pod("debug", None)], "20"),
    )
    .await;
    assert!(
        again.query.contains("fieldSelector=spec.nodeName%3Dnode-1") && !again.query.contains("watch=true"),
        "{}",
        again.query
    );
    let found = identity.workload("shop", "debug").await.expect("the pod listed after the expiry");
    assert_eq!((found.kind.as_str(), found.name.as_str()), ("Pod", "debug"));
    assert_eq!(identity.workload("shop", "web-7d9f-a").await.unwrap().kind, "StatefulSet");
    reflector.abort();
}

#[test]
fn objects_stay_small_with_thousands_of_packages_and_findings() {
    let package = |i: usize| sbom::Package {
        name: format!("package-with-a-rather-long-name-{i:06}"),
        version: format!("1.{i}.0-1+deb12u{i}"),
        kind: sbom::Ecosystem::Deb,
        purl: format!(
            "pkg:deb/debian/package-with-a-rather-long-name-{i:06}@1.{i}.0-1%2Bdeb12u{i}?arch=amd64&distro=debian-12"
        ),
        source: Some(sbom::model::Source { name: format!("source-{i}"), version: format!("1.{i}") }),
        licenses: vec!["GPL-2.0-or-later".into(), "LGPL-2.1-or-later".into()],
        found_at: "/var/lib/dpkg/status".into(),
        files: Vec::new(),
        version_from_commit: false,
    };
    let sbom = sbom::Sbom {
        root: "/".into(),
        distro: None,
        packages: (0..20_000).map(package).collect(),
        warnings: Vec::new(),
        incomplete: false,
    };
    let spec = cluster::compact::image_sbom(&sbom, "big:1", DIGEST, "node-a", "2026-11-30T10:00:00Z");
    let size = serde_json::to_vec(&spec).unwrap().len();
    assert!(size < 600 * 1024, "{size} bytes");
    assert!(spec.truncated && spec.package_count == 20_000 && spec.packages.len() < 20_000);
    assert_eq!(spec.packages[0].name, "package-with-a-rather-long-name-000000");

    let finding = |i: usize| -> vuln::Finding {
        serde_json::from_value(json!({
            "id": format!("CVE-2026-{i:05}"), "aliases": [], "severity": {"rating": if i.is_multiple_of(3) { "critical" } else { "high" }},
            "package": {"name": format!("p{i}"), "version": "1", "purl": format!("pkg:pypi/p{i}@1"), "ecosystem": "PyPI"},
            "fixed": ["2"], "relevant": i.is_multiple_of(2), "evidence": []
        }))
        .unwrap()
    };
    let w = workload();
    let report = common::instance_report(&w, (0..30_000).map(finding).collect());
    let body = cluster::compact::report_body(&report);
    let size = serde_json::to_vec(&body).unwrap().len();
    assert!(size < 600 * 1024, "{size} bytes");
    assert!(body.truncated && body.findings.len() < 30_000);
    assert_eq!(
        (body.summary.total, body.summary.critical, body.summary.high, body.summary.relevant),
        (30_000, 10_000, 20_000, 15_000)
    );
}
