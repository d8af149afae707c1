//! Each version scheme against its reference vectors, and against the real tools where this
//! machine has them (dpkg, rpm, Python's `packaging`, node's `semver`).

use std::cmp::Ordering;
use std::process::Command;

use vuln::version::Scheme;

/// Asserts `list` is strictly increasing in `scheme`, comparing every pair.
fn assert_increasing(scheme: Scheme, list: &[&str]) {
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            assert_eq!(scheme.compare(a, b).unwrap(), Ordering::Less, "{scheme:?}: {a} < {b}");
            assert_eq!(scheme.compare(b, a).unwrap(), Ordering::Greater, "{scheme:?}: {b} > {a}");
        }
    }
}

fn assert_equal(scheme: Scheme, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert_eq!(scheme.compare(a, b).unwrap(), Ordering::Equal, "{scheme:?}: {a} == {b}");
    }
}

fn sign(o: Ordering) -> i32 {
    o as i32
}

#[test]
fn dpkg_reference_cases_and_dpkg_itself() {
    // From dpkg's own test suite (lib/dpkg/t/t-version.c) and Debian Policy 5.6.12.
    assert_increasing(Scheme::Dpkg, &["0:1.0~rc1-1", "1.0-1", "1.0-1+b1", "1.0-2", "1.0.1-1", "1:0.9-1"]);
    assert_increasing(Scheme::Dpkg, &["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.1"]);
    assert_increasing(Scheme::Dpkg, &["2.36-9", "2.36-9+deb12u1", "2.36-9+deb12u10", "2.36-10"]);
    assert_equal(Scheme::Dpkg, &[("0:1.2.3", "1.2.3"), ("1.2.3-0", "1.2.3-0"), ("0001.0", "1.0")]);
    // Every version in this machine's dpkg database, in pairs, against dpkg --compare-versions.
    let out = Command::new("dpkg-query").args(["-W", "-f", "${Version}\n"]).output().unwrap();
    let mut versions: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    versions.sort();
    versions.dedup();
    assert!(versions.len() > 100);
    for pair in versions.chunks(2).take(150).filter(|p| p.len() == 2) {
        let ours = Scheme::Dpkg.compare(&pair[0], &pair[1]).unwrap();
        let lt =
            Command::new("dpkg").args(["--compare-versions", &pair[0], "lt", &pair[1]]).status().unwrap().success();
        assert_eq!(ours == Ordering::Less, lt, "dpkg: {} vs {}", pair[0], pair[1]);
    }
}

#[test]
fn pep440_reference_order_and_python_packaging() {
    // The ordering example of the packaging project's tests, from PEP 440's summary.
    let order = [
        "1.0.dev456",
        "1.0a1",
        "1.0a2.dev456",
        "1.0a12.dev456",
        "1.0a12",
        "1.0b1.dev456",
        "1.0b2",
        "1.0b2.post345.dev456",
        "1.0b2.post345",
        "1.0rc1.dev456",
        "1.0rc1",
        "1.0",
        "1.0+abc.5",
        "1.0+abc.7",
        "1.0+5",
        "1.0.post456.dev34",
        "1.0.post456",
        "1.0.15",
        "1.1.dev1",
    ];
    assert_increasing(Scheme::Pep440, &order);
    assert_equal(Scheme::Pep440, &[("1.0", "1.0.0"), ("1.0a1", "1.0.0alpha1"), ("1!1.0", "1!1.0.0"), ("v1.0", "1.0")]);
    // Python's own `packaging` (vendored in pip) on every version the PyPI fixtures name.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/osv/PyPI");
    let script = r#"
import json, os, sys
from pip._vendor.packaging.version import Version, InvalidVersion
vs = set()
for f in os.listdir(sys.argv[1]):
    for a in json.load(open(os.path.join(sys.argv[1], f))).get("affected", []):
        vs.update(a.get("versions", []))
ok = []
for v in vs:
    try: ok.append((Version(v), v))
    except InvalidVersion: pass
ok.sort()
print("\n".join(v for _, v in ok))
"#;
    let out = Command::new("python3").args(["-c", script, fixtures]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sorted_by_python: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert!(sorted_by_python.len() > 5000, "{}", sorted_by_python.len());
    let mut ours = sorted_by_python.clone();
    ours.sort_by(|a, b| Scheme::Pep440.compare(a, b).unwrap());
    for (a, b) in sorted_by_python.windows(2).map(|w| (&w[0], &w[1])) {
        let ord = Scheme::Pep440.compare(a, b).unwrap();
        assert_ne!(ord, Ordering::Greater, "python orders {a} before {b}");
    }
}

#[test]
fn semver_reference_precedence_and_node_semver() {
    // semver.org, §11.
    assert_increasing(
        Scheme::Semver,
        &[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ],
    );
    assert_equal(Scheme::Semver, &[("1.0.0+build.1", "1.0.0+build.2"), ("v1.2.3", "1.2.3")]);
    // Go: pseudo-versions are pre-releases of the next patch; +incompatible is metadata.
    assert_increasing(
        Scheme::Go,
        &["v0.0.0-20191109021931-daa7c04131f5", "v0.0.1", "v1.9.9", "v2.0.0-rc.1", "v2.0.0+incompatible"],
    );
    // node's semver (npm's own copy) agrees on a mixed list.
    let list = ["1.2.3", "1.2.3-beta.10", "1.2.3-beta.9", "1.2.3-alpha", "0.9.0", "10.0.0", "1.10.0", "1.2.10"];
    let semver_js = "/usr/lib/node_modules/npm/node_modules/semver";
    let script =
        format!("const s=require('{semver_js}');console.log(JSON.stringify(process.argv.slice(1).sort(s.compare)))");
    let out = Command::new("node").args(["-e", &script]).args(list).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let node: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    ours.sort_by(|a, b| Scheme::Semver.compare(a, b).unwrap());
    assert_eq!(ours, node);
}

#[test]
fn rpm_reference_cases_and_rpm_itself() {
    // From rpm's tests/rpmvercmp.at: (a, b, expected sign).
    let cases: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("5.5p1", "5.5p2", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("xyz10", "xyz10.1", -1),
        ("xyz.4", "8", -1),
        ("1.0010", "1.9", 1),
        ("1.05", "1.5", 0),
        ("1.0", "1", 1),
        ("2.50", "2.5", 1),
        ("fc4", "fc.4", 0),
        ("FC5", "fc4", -1),
        ("2a", "2.0", -1),
        ("1.0a", "1.0", 1),
        ("1b.fc17", "1b.fc17", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0^", "1.0", 1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.01", -1),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
    ];
    for (a, b, want) in cases {
        assert_eq!(sign(vuln::version::rpm_vercmp(a, b)), *want, "rpmvercmp({a}, {b})");
    }
    // The real rpm agrees on the same cases.
    let lua: String = cases.iter().map(|(a, b, _)| format!("print(rpm.vercmp('{a}','{b}')..' ');")).collect();
    let out = Command::new("rpm").arg("--eval").arg(format!("%{{lua:{lua}}}")).output().unwrap();
    let theirs: Vec<i32> =
        String::from_utf8(out.stdout).unwrap().split_whitespace().map(|s| s.parse().unwrap()).collect();
    let wanted: Vec<i32> = cases.iter().map(|c| c.2).collect();
    assert_eq!(theirs, wanted);
    assert_increasing(Scheme::Rpm, &["1.0-1", "1.0-2", "1.1-1", "1:0.5-1"]);
}

#[test]
fn apk_order() {
    // apk's rules: pre-release suffixes before the release, post-release after it, letters
    // after the number, -r revisions last.
    assert_increasing(
        Scheme::Apk,
        &[
            "1.0_alpha",
            "1.0_alpha2",
            "1.0_beta",
            "1.0_pre1",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0-r10",
            "1.0_p1",
            "1.0a",
            "1.0.1",
            "1.1",
            "1.10",
            "2",
        ],
    );
    assert_equal(Scheme::Apk, &[("1.0-r0", "1.0-r0"), ("1.2.3_git20240101-r0", "1.2.3_git20240101-r0")]);
    assert!(Scheme::Apk.parse("1.0_bogus").is_err());
}

#[test]
fn maven_comparable_version_cases() {
    // Maven's ComparableVersionTest: qualifier and number orders.
    assert_increasing(
        Scheme::Maven,
        &[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ],
    );
    assert_increasing(
        Scheme::Maven,
        &[
            "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1", "2.2",
            "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ],
    );
    assert_equal(
        Scheme::Maven,
        &[("1", "1.0.0"), ("1-ga", "1"), ("1-final", "1.0"), ("1a1", "1-alpha-1"), ("1-cr", "1-rc")],
    );
}
