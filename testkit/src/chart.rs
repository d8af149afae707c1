//! The Helm chart, rendered by a real helm (`cargo xtask setup` installs it in
//! target/tools), and the validators of what it renders.

use std::path::PathBuf;
use std::process::Command;

fn target() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The chart's directory.
pub fn dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/chart/sniffer")
}

/// helm 3.17 from the npm package PLATFORM.md names.
pub fn helm() -> PathBuf {
    let helm = target().join("tools/helm");
    assert!(helm.exists(), "{} is missing: run `cargo xtask setup`", helm.display());
    helm
}

/// A program of the validators' virtualenv (kubernetes-validate, python with jsonschema).
pub fn validator(name: &str) -> PathBuf {
    let bin = target().join("validators/bin").join(name);
    assert!(bin.exists(), "{} is missing: run `cargo xtask setup`", bin.display());
    bin
}

/// `helm template` of the chart with `--set` values (and its CRDs when `crds`), as text.
pub fn render_text(sets: &[&str], crds: bool) -> String {
    let mut cmd = Command::new(helm());
    cmd.args(["template", "sniffer"]).arg(dir()).args(["--namespace", "sniffer-system"]);
    if crds {
        cmd.arg("--include-crds");
    }
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The rendered objects.
pub fn render(sets: &[&str]) -> Vec<serde_json::Value> {
    let text = render_text(sets, false);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The rendered object of `kind`.
pub fn object<'a>(objects: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind} rendered"))
}

use serde::Deserialize as _;
