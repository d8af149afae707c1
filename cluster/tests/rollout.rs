//! A new image rolling out on 200 nodes at once. Each node's claimer talks through its own
//! mocked client (tower-test, as kube-rs tests itself) to one simulated API server that
//! keeps the `ImageSbom`, answers create, get and watch as a real one does, and counts
//! every request: one node reserves the image; the others each create (409), read, and
//! watch that one object until it is ready, whatever the time its SBOM takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coordinator::ids::Digest;
use coordinator::store::Claim;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

const NODES: usize = 200;
const DIGEST: &str = "sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

type Send = tower_test::mock::SendResponse<Response<Body>>;

/// The simulated API server: the one object, the watches waiting on it, and every request
/// each node made (method, path and query).
#[derive(Default)]
struct Server {
    object: Option<Value>,
    version: u64,
    watching: Vec<Send>,
    asked: HashMap<String, Vec<String>>,
}

fn respond(send: Send, status: u16, body: Vec<u8>) {
    send.send_response(Response::builder().status(status).body(Body::from(body)).unwrap());
}

fn status(code: u16, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code}))
        .unwrap()
}

/// A watch's body: one event per line.
fn event(kind: &str, object: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
    line.push(b'\n');
    line
}

/// Serves one node's requests.
async fn serve(
    node: String,
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    server: Arc<Mutex<Server>>,
) {
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let (method, path, query) =
            (parts.method.to_string(), parts.uri.path().to_string(), parts.uri.query().unwrap_or("").to_string());
        let mut s = server.lock().unwrap();
        s.asked.entry(node.clone()).or_default().push(format!("{method} {path}?{query}"));
        match method.as_str() {
            "POST" if s.object.is_some() => respond(send, 409, status(409, "AlreadyExists")),
            "POST" => {
                s.version += 1;
                let mut object: Value = serde_json::from_slice(&body).unwrap();
                object["metadata"]["resourceVersion"] = json!(s.version.to_string());
                s.object = Some(object.clone());
                respond(send, 201, serde_json::to_vec(&object).unwrap());
            }
            "GET" if query.contains("watch=true") => {
                let ready = s.object.as_ref().is_some_and(|o| o["spec"]["phase"] == "Ready");
                match (ready, s.object.clone()) {
                    (true, Some(o)) => respond(send, 200, event("MODIFIED", &o)),
                    _ => s.watching.push(send),
                }
            }
            "GET" => match s.object.clone() {
                Some(o) => respond(send, 200, serde_json::to_vec(&o).unwrap()),
                None => respond(send, 404, status(404, "NotFound")),
            },
            other => panic!("{node}: unexpected {other} {path}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_nodes_ask_three_times_each_for_a_new_image_whatever_its_sbom_takes() {
    let server = Arc::new(Mutex::new(Server::default()));
    let digest = Digest::from(DIGEST);
    let mut claims = Vec::new();
    for i in 0..NODES {
        let node = format!("node-{i:03}");
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(serve(node.clone(), handle, server.clone()));
        let claimer = cluster::claim::Claimer::new(
            kube::Api::all(kube::Client::new(service, "default")),
            &node,
            Duration::from_secs(600),
        );
        let digest = digest.clone();
        claims.push(tokio::spawn(async move { (node.clone(), claimer.claim(&digest, "web:2").await.unwrap().0) }));
    }
    // Every other node watches; the SBOM takes its time (a real one takes seconds to minutes).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.lock().unwrap().watching.len() < NODES - 1 {
        assert!(tokio::time::Instant::now() < deadline, "not every node watches");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mine: Vec<String> = {
        let s = server.lock().unwrap();
        s.asked.iter().filter(|(_, asked)| asked.len() == 1).map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(mine.len(), 1, "one node reserved it: {mine:?}");

    // The SBOM is ready (the reserving node applies it): every watch hears it once. The
    // events are sent after the lock is let go.
    let (ready, watching) = {
        let mut s = server.lock().unwrap();
        s.version += 1;
        let version = s.version.to_string();
        let object = s.object.as_mut().unwrap();
        object["spec"]["phase"] = json!("Ready");
        object["metadata"]["resourceVersion"] = json!(version);
        (object.clone(), std::mem::take(&mut s.watching))
    };
    for send in watching {
        respond(send, 200, event("MODIFIED", &ready));
    }
    let mut outcomes = HashMap::new();
    for c in claims {
        let (node, claim) = tokio::time::timeout(Duration::from_secs(30), c).await.unwrap().unwrap();
        outcomes.insert(node, claim);
    }
    assert_eq!(outcomes.values().filter(|c| **c == Claim::Mine).count(), 1);
    assert_eq!(outcomes[&mine[0]], Claim::Mine);

    let s = server.lock().unwrap();
    let name = format!("sha256-{}", "cd".repeat(32));
    let path = "/apis/sniffer.dev/v1alpha1/imagesboms";
    for (node, asked) in &s.asked {
        if *node == mine[0] {
            assert!(asked[0].starts_with(&format!("POST {path}?")), "{asked:?}");
            continue;
        }
        // Create (409), read, and one watch of that one object from the version read.
        assert_eq!(asked.len(), 3, "{node}: {asked:#?}");
        assert!(asked[0].starts_with(&format!("POST {path}?")), "{asked:?}");
        assert!(asked[1].starts_with(&format!("GET {path}/{name}?")), "{asked:?}");
        assert!(asked[2].starts_with(&format!("GET {path}?")), "{asked:?}");
        for part in ["watch=true", &format!("fieldSelector=metadata.name%3D{name}"), "resourceVersion=1"] {
            assert!(asked[2].contains(part), "{node} watch lacks {part}: {}", asked[2]);
        }
    }
    let total: usize = s.asked.values().map(Vec::len).sum();
    assert_eq!(total, 1 + 3 * (NODES - 1));
    println!("{NODES} nodes, one new image: {total} requests ({:.2} a node)", total as f64 / NODES as f64);
}
