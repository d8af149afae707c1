//! The Helm chart, rendered and linted by a real helm, validated strictly against the
//! schemas of Kubernetes 1.29 to 1.33 by kubernetes-validate, and its DaemonSet's
//! privileges, mounts and RBAC verbs checked against what the agent needs
//! (`sniffer::caps`). `tests/pod.rs` runs that DaemonSet's container for real.

use std::process::Command;

use serde_json::Value;
use sniffer::caps::{Capability, needed};
use testkit::chart;

fn agent(objects: &[Value]) -> &Value {
    let ds = chart::object(objects, "DaemonSet");
    ds["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "agent").unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[test]
fn the_chart_lints_and_renders_valid_manifests_for_kubernetes_1_29_to_1_33() {
    let out = Command::new(chart::helm()).arg("lint").arg(chart::dir()).arg("--strict").output().unwrap();
    assert!(
        out.status.success(),
        "helm lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let variants: [&[&str]; 4] = [
        &[],
        &["imageSource=root", "backend.url=https://backend.example/reports", "backend.tokenSecret.name=sniffer-token"],
        &["metrics.enabled=false", "vulnerabilityDatabase.update.enabled=false"],
        &["metrics.grafanaDashboard.enabled=true"],
    ];
    for (i, sets) in variants.iter().enumerate() {
        let file = tmp.path().join(format!("rendered-{i}.yaml"));
        std::fs::write(&file, chart::render_text(sets, true)).unwrap();
        for version in ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"] {
            let out = Command::new(chart::validator("kubernetes-validate"))
                .args(["--strict", "-k", version])
                .arg(&file)
                .output()
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && !text.contains("ERROR"), "{sets:?} on {version}: {text}");
            // Every object was checked against a schema, the CRDs included.
            for kind in ["daemonset", "clusterrole/", "serviceaccount", "customresourcedefinition"] {
                assert!(text.contains(kind), "{kind} not validated: {text}");
            }
        }
    }
    // The optional ServiceMonitor (a Prometheus Operator kind, no Kubernetes schema). The
    // agent's `namespace` and `container` labels name workloads: they must win over the
    // target's, or they arrive as `exported_namespace` and every query misses them.
    let objects = chart::render(&["metrics.serviceMonitor.enabled=true"]);
    let monitor = chart::object(&objects, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
}

#[test]
fn the_chart_renders_alert_rules_promtool_accepts_and_tests_and_a_dashboard_for_grafanas_sidecar() {
    // Off by default, and nothing without metrics.
    let kinds = |objects: &[Value]| objects.iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(!kinds(&chart::render(&[])).iter().any(|k| k == "PrometheusRule" || k == "ConfigMap"));
    let both = ["metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true"];
    let off = ["metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true", "metrics.enabled=false"];
    assert!(!kinds(&chart::render(&off)).iter().any(|k| k == "PrometheusRule" || k == "ConfigMap"));
    let objects = chart::render(&both);

    // The dashboard: a ConfigMap Grafana's sidecar picks up, holding a dashboard whose every
    // panel queries the agent's metrics (tests/prometheus.rs runs each query for real).
    let map = chart::object(&objects, "ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: Value = serde_json::from_str(map["data"]["sniffer.json"].as_str().unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "sniffer-overview");
    let panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row").collect();
    for p in &panels {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert!(t["expr"].as_str().unwrap().contains("sniffer_"), "{}: {}", p["title"], t["expr"]);
        }
    }
    let titles: Vec<&str> = panels.iter().map(|p| p["title"].as_str().unwrap()).collect();
    for wanted in [
        "Findings by severity and relevance",
        "Workloads with the most relevant critical findings",
        "Events per second",
        "Events lost (1h)",
        "Instances being learned",
        "Outbox and dead letters",
    ] {
        assert!(titles.contains(&wanted), "{wanted} not in {titles:?}");
    }
    let elsewhere =
        chart::render(&["metrics.grafanaDashboard.enabled=true", "metrics.grafanaDashboard.namespace=monitoring"]);
    assert_eq!(chart::object(&elsewhere, "ConfigMap")["metadata"]["namespace"], "monitoring");

    // The rules: promtool checks them as rendered, and runs their unit tests.
    let rule = chart::object(&objects, "PrometheusRule");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("rules.yaml"), serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prometheus/rules_test.yaml");
    std::fs::copy(&tests, tmp.path().join("rules_test.yaml")).unwrap();
    for args in [["check", "rules", "rules.yaml"], ["test", "rules", "rules_test.yaml"]] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(tmp.path())
            .output()
            .expect("promtool (Debian's `prometheus`)");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("SUCCESS"), "promtool {args:?}: {text}");
    }
    let alerts: Vec<&str> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        alerts,
        [
            "SnifferVulnerableCodeRan",
            "SnifferReportsNotScanned",
            "SnifferEventsLost",
            "SnifferOutboxGrowing",
            "SnifferDeadLetters"
        ]
    );
    // Every alert is unit-tested.
    let unit = std::fs::read_to_string(&tests).unwrap();
    for a in &alerts {
        assert!(unit.contains(&format!("alertname: {a}")), "{a} has no promtool test");
    }
}

#[test]
fn the_daemonset_asks_for_what_the_agent_checks_and_no_more() {
    for (source, views) in [("layers", true), ("root", false)] {
        let objects = chart::render(&[&format!("imageSource={source}")]);
        let ds = chart::object(&objects, "DaemonSet");
        let pod = &ds["spec"]["template"]["spec"];
        let c = agent(&objects);
        let sc = &c["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
        let mut granted = strs(&sc["capabilities"]["add"]);
        granted.sort();
        let mut wanted: Vec<String> =
            needed(true, views).iter().map(|n| n.cap.name().trim_start_matches("CAP_").to_string()).collect();
        wanted.sort();
        assert_eq!(granted, wanted, "imageSource={source}");
        assert_eq!(granted.contains(&"SYS_ADMIN".to_string()), views);
        // The host's PID namespace (see the template), nothing else of the host's.
        assert_eq!(pod["hostPID"], true);
        assert!(pod["hostNetwork"].is_null() && pod["hostIPC"].is_null());
        // Mounts: read-only but for the state and run directories.
        let mounts: Vec<(String, bool)> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["mountPath"].as_str().unwrap().to_string(), m["readOnly"] == true))
            .collect();
        let mut expected = vec![
            ("/run/containerd/containerd.sock".to_string(), true),
            ("/sys/kernel/btf".into(), true),
            ("/sys/kernel/tracing".into(), true),
            ("/sys/fs/cgroup".into(), true),
            ("/var/lib/sniffer".into(), false),
            ("/run/sniffer".into(), false),
        ];
        if views {
            expected.push(("/var/lib/containerd".into(), true));
        }
        let (mut m, mut e) = (mounts.clone(), expected);
        m.sort();
        e.sort();
        assert_eq!(m, e);
        // The node's name from the downward API; every node, tainted or not; bounded rollout.
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
        assert_eq!(pod["tolerations"][0]["operator"], "Exists");
        assert_eq!(pod["priorityClassName"], "system-node-critical");
        assert_eq!(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"], 1);
        // The updater: no capability at all.
        let updater = pod["containers"].as_array().unwrap().iter().find(|c| c["name"] == "db-update").unwrap();
        assert_eq!(strs(&updater["securityContext"]["capabilities"]["drop"]), ["ALL"]);
        assert!(updater["securityContext"]["capabilities"]["add"].is_null());
        assert!(strs(&updater["args"]).contains(&"--every=21600".to_string()));
        // Logs for a collector, whatever the container runtime's stderr looks like.
        for c in [c, updater] {
            assert!(strs(&c["args"]).contains(&"--log-format=json".to_string()), "{}", c["name"]);
        }
    }
    assert_eq!(Capability::SYS_ADMIN.name(), "CAP_SYS_ADMIN");
}

#[test]
fn rbac_grants_only_the_verbs_the_agent_uses() {
    let objects = chart::render(&[]);
    let role = chart::object(&objects, "ClusterRole");
    let mut rules: Vec<String> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let groups = strs(&r["apiGroups"]);
            let verbs = strs(&r["verbs"]).join(",");
            strs(&r["resources"]).into_iter().map(move |res| format!("{}/{res}: {verbs}", groups.join("")))
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "/pods: get,list,watch",
            "apps/replicasets: get",
            "batch/jobs: get",
            "sniffer.dev/clustervulnerabilityreports: get,create,patch",
            "sniffer.dev/imagesboms: get,watch,create,update,patch",
            "sniffer.dev/runtimesboms: get,create,patch",
            "sniffer.dev/vulnerabilityreports: get,create,patch",
        ]
    );
    let binding = chart::object(&objects, "ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["name"], chart::object(&objects, "ServiceAccount")["metadata"]["name"]);
}

#[test]
fn the_chart_carries_the_generated_crds() {
    let chart_crds = chart::dir().join("crds/sniffer.dev.yaml");
    let generated = cluster::resources::crds_yaml().unwrap();
    assert!(
        std::fs::read_to_string(&chart_crds).unwrap() == generated,
        "{} is stale: run `cargo xtask crds`",
        chart_crds.display()
    );
}
