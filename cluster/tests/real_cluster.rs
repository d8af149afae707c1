//! Against a real cluster: `cargo xtask test-cluster` runs these when `KUBECONFIG` names
//! one (they are `#[ignore]`d otherwise: no API server can be installed on the CI machines).
//! They install the CRDs, then reserve an image as two nodes would, queue and apply an
//! instance's objects, and read them back through the API server's own validation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coordinator::ids::Digest;
use coordinator::store::{Claim, Storage, Store, Table};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

async fn client() -> Option<Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        println!("skipped: KUBECONFIG is not set, so there is no cluster to test against");
        return None;
    }
    Some(Client::try_default().await.expect("the cluster KUBECONFIG names"))
}

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in cluster::resources::crds() {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("sniffer-test").force(), &Patch::Apply(&crd)).await.unwrap();
        for _ in 0..60 {
            let got = api.get(&name).await.unwrap();
            let established = got
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[tokio::test]
#[ignore = "needs a cluster: cargo xtask test-cluster"]
async fn two_nodes_one_image_sbom_and_an_instance_written_and_read_back() {
    let Some(client) = client().await else { return };
    install_crds(&client).await;
    let ns = format!("sniffer-test-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    namespaces.create(&PostParams::default(), &namespace).await.unwrap();

    // Two nodes claim one image: the first computes, the second takes over only once the
    // first is late (a takeover time of one second here).
    let digest = Digest::from(format!("sha256:{:064x}", std::process::id()));
    let a = cluster::claim::Claimer::new(Api::all(client.clone()), "node-a", Duration::from_secs(3600));
    let mut b = cluster::claim::Claimer::new(Api::all(client.clone()), "node-b", Duration::from_secs(1));
    b.retry = Duration::from_millis(200);
    assert_eq!(a.claim(&digest, "test:1").await.unwrap().0, Claim::Mine);
    assert_eq!(b.claim(&digest, "test:1").await.unwrap().0, Claim::Mine, "taken over after a second");

    // An instance's report and SBOM' through the queue, then read back.
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn Storage> = Arc::new(Store::open(dir.path()).unwrap());
    let storage = Arc::new(cluster::store::ClusterStorage::new(
        local.clone(),
        client.clone(),
        tokio::runtime::Handle::current(),
        "node-a",
        Duration::from_secs(600),
    ));
    let w = common::workload(&ns, &digest);
    let report = common::instance_report(&w, Vec::new());
    let runtime = sbom::index::RuntimeSbom {
        packages: Vec::new(),
        unmatched: 0,
        complete: true,
        warnings: Vec::new(),
        calls: None,
    };
    let (r, p, key) =
        (serde_json::to_value(&report).unwrap(), serde_json::to_value(&runtime).unwrap(), w.instance().to_string());
    let s = storage.clone();
    tokio::task::spawn_blocking(move || {
        s.put_many(&[(Table::Report, "r-1", r), (Table::RuntimeSbom, &key, p)]).unwrap()
    })
    .await
    .unwrap();
    cluster::store::publish_once(&local, &client, &cluster::limit::RateLimit::new(100.0, 100)).await.unwrap();
    assert!(local.keys(Table::Publish).unwrap().is_empty(), "everything applied");
    let name = cluster::names::instance_object_name("Deployment", "web", "app", &w.instance());
    let reports: Api<cluster::resources::VulnerabilityReport> = Api::namespaced(client.clone(), &ns);
    assert_eq!(reports.get(&name).await.unwrap().spec.instance, w.instance().as_str());
    // Another node sees that SBOM' exists.
    let dir_b = tempfile::tempdir().unwrap();
    let other = Arc::new(cluster::store::ClusterStorage::new(
        Arc::new(Store::open(dir_b.path()).unwrap()),
        client.clone(),
        tokio::runtime::Handle::current(),
        "node-b",
        Duration::from_secs(600),
    ));
    let instance = w.instance();
    assert!(tokio::task::spawn_blocking(move || other.has_runtime_sbom(&instance).unwrap()).await.unwrap());

    let images: Api<cluster::resources::ImageSbom> = Api::all(client.clone());
    let _ = images.delete(&cluster::names::image_object_name(&digest), &DeleteParams::default()).await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
