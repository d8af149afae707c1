//! The chart's dashboard and alerts against a real Prometheus (Debian's) scraping a real
//! daemon that has learned a real container: every dashboard query and every alert's query
//! returns data, the alert on vulnerable code that ran holds as it is, the series the
//! alerts' unit tests feed promtool are shaped as the daemon exports them, and an
//! instance's findings go from the metrics with its container.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::http::{get, query_escape};
use testkit::{Containerd, chart, daemon, receiver, wait_for};

/// A Prometheus that scrapes `target` every second; killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sniffer\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = testkit::free_addr();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian's `prometheus` package; `cargo xtask setup` installs it)");
        let p = Prometheus { child, addr };
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            std::net::TcpStream::connect(&p.addr).is_ok() && get(&p.addr, "/-/ready").0 == 200
        });
        p
    }

    /// The result of an instant query (panics on an error answer).
    fn query(&self, expr: &str) -> Vec<Value> {
        let (status, body) = get(&self.addr, &format!("/api/v1/query?query={}", query_escape(expr)));
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert!(status == 200 && v["status"] == "success", "{expr}: {body}");
        v["data"]["result"].as_array().unwrap().clone()
    }
}

/// (what, query): a panel's title or an alert's name, and its expression.
type Queries = Vec<(String, String)>;

/// Every query of the chart's dashboard and of its alerts, rendered by helm.
fn chart_queries() -> (Queries, Queries) {
    let objects = chart::render(&["metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true"]);
    let dashboard: Value =
        serde_json::from_str(chart::object(&objects, "ConfigMap")["data"]["sniffer.json"].as_str().unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row");
    let panel_queries: Vec<(String, String)> = panels
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_string();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect();
    let rules = &chart::object(&objects, "PrometheusRule")["spec"]["groups"];
    let alerts: Vec<(String, String)> = rules
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| (r["alert"].as_str().unwrap().to_string(), r["expr"].as_str().unwrap().to_string()))
        .collect();
    (panel_queries, alerts)
}

/// The series the rules' unit tests feed promtool: (name, label names but job and instance).
fn unit_test_series() -> Vec<(String, BTreeSet<String>)> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prometheus/rules_test.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut out = Vec::new();
    for test in doc["tests"].as_sequence().unwrap() {
        for s in test["input_series"].as_sequence().unwrap() {
            let series = s["series"].as_str().unwrap();
            let (name, labels) = series.split_once('{').unwrap();
            let names = labels
                .trim_end_matches('}')
                .split(',')
                .map(|kv| kv.split_once('=').unwrap().0.to_string())
                .filter(|k| k != "job" && k != "instance")
                .collect();
            out.push((name.to_string(), names));
        }
    }
    out
}

/// Each sample line of a text exposition: (name, label names).
fn exported_series(text: &str) -> Vec<(String, BTreeSet<String>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let Some((name, rest)) = l.split_once('{') else {
                return (l.split(' ').next().unwrap().to_string(), BTreeSet::new());
            };
            // Label names: what precedes each `="` outside a quoted value.
            let (mut names, mut current, mut quoted, mut escaped) = (BTreeSet::new(), String::new(), false, false);
            for c in rest.chars() {
                match (quoted, escaped, c) {
                    (true, true, _) => escaped = false,
                    (true, false, '\\') => escaped = true,
                    (true, false, '"') => quoted = false,
                    (true, false, _) => {}
                    (false, _, '"') => quoted = true,
                    (false, _, '=') => {
                        names.insert(std::mem::take(&mut current));
                    }
                    (false, _, ',') => {}
                    (false, _, '}') => break,
                    (false, _, c) => current.push(c),
                }
            }
            (name.to_string(), names)
        })
        .collect()
}

#[test]
fn a_real_prometheus_answers_every_dashboard_and_alert_query_from_a_real_daemon() {
    let (panels, alerts) = chart_queries();
    assert!(panels.len() >= 10 && alerts.len() == 5, "{panels:?} {alerts:?}");
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let ctd = Containerd::start(&dir.join("containerd"));
    let (url, _received) = receiver(0);
    let metrics = testkit::free_addr();
    let d = daemon(dir, &ctd.socket, &url, &metrics, "daemon.log");

    // A container that uses requests and reads minimist's code (critical, GHSA-xvch-5gv4-984h).
    let c1 =
        ctd.run("c1", "import requests, time; open('/srv/app/node_modules/minimist/index.js').read(); time.sleep(600)");
    d.wait_event("SBOM' of c1", |e| e["event"] == "prime_stored" && e["instance"] == c1.as_str());

    let prometheus = Prometheus::start(dir, &metrics);
    wait_for("a few scrapes with findings", Duration::from_secs(60), || {
        prometheus
            .query("count_over_time(sniffer_findings[1m])")
            .first()
            .is_some_and(|r| r["value"][1].as_str().and_then(|v| v.parse::<u32>().ok()).is_some_and(|n| n >= 4))
    });

    for (title, expr) in &panels {
        assert!(!prometheus.query(expr).is_empty(), "dashboard panel {title:?}: no data for {expr}");
    }
    for (alert, expr) in &alerts {
        let query = expr.strip_suffix(" > 0").unwrap_or_else(|| panic!("{alert}: {expr} does not end in > 0"));
        assert!(!prometheus.query(query).is_empty(), "alert {alert}: no data for {query}");
    }
    // The alert on vulnerable code that ran holds for c1 (its `for` aside).
    let (_, ran) = alerts.iter().find(|(a, _)| a == "SnifferVulnerableCodeRan").unwrap();
    let firing = prometheus.query(ran);
    assert!(
        firing.iter().any(|r| r["metric"]["severity"] == "critical" && r["metric"]["workload"] == c1.as_str()),
        "{firing:?}"
    );
    // The relevance split is there: jinja2 (never imported) is not relevant.
    assert!(!prometheus.query("sniffer_findings{relevant=\"false\"}").is_empty());

    // The promtool unit tests' series are named and labelled as the daemon exports them
    // (its own text: Prometheus drops a label whose value is empty, as `namespace` is
    // outside Kubernetes).
    let (_, exposition) = get(&metrics, "/metrics");
    let exported = exported_series(&exposition);
    // The bound DESIGN.md states: at most 6 severities x 8 states per instance.
    let series = exported.iter().filter(|(n, _)| n == "sniffer_findings").count();
    assert!((1..=48).contains(&series), "{series}");
    eprintln!("one instance: {series} sniffer_findings series; the whole exposition {} bytes", exposition.len());
    for (name, labels) in unit_test_series() {
        let real: Vec<&BTreeSet<String>> = exported.iter().filter(|(n, _)| *n == name).map(|(_, l)| l).collect();
        assert!(real.contains(&&labels), "{name}: the unit tests use {labels:?}, the daemon exports {real:?}");
    }

    // `sniffer vulns` ends with how many findings are in code that ran.
    let out = d.cli(&["vulns", &c1]);
    let table = String::from_utf8_lossy(&out.stdout);
    let last = table.lines().last().unwrap();
    let (ran, rest) = last.split_once(" of ").unwrap_or_else(|| panic!("{table}"));
    assert!(rest.ends_with("findings are in code that ran") && ran.parse::<u32>().unwrap() >= 2, "{last}");

    // The instance's findings go with its container: the metrics stay bounded by what runs.
    ctd.ctr(&["task", "kill", "-s", "9", &c1]);
    wait_for("c1's findings to leave the metrics", Duration::from_secs(30), || {
        let (_, text) = get(&metrics, "/metrics");
        !text.lines().any(|l| l.starts_with("sniffer_findings{") || l.starts_with("sniffer_image_findings{"))
    });
}
