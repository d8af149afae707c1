//! The real OSV fixtures against the real Debian root: exactly the findings the records
//! give, checked against an independent evaluation with Python's `packaging`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

mod common;
use common::{db_of, subjects};
use testkit::fixtures::{bookworm_root, osv as fixtures};

/// Record ids affecting each (name, version), computed by Python's packaging from the
/// PyPI fixtures: an independent reading of the same OSV semantics.
fn python_expected(packages: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let script = r#"
import json, os, sys, re
from pip._vendor.packaging.version import Version
d = sys.argv[1]
want = [a.split("==") for a in sys.argv[2:]]
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
out = {f"{n}=={v}": [] for n, v in want}
for f in sorted(os.listdir(d)):
    r = json.load(open(os.path.join(d, f)))
    if r.get("withdrawn"): continue
    for a in r.get("affected", []):
        for n, v in want:
            if norm(a["package"]["name"]) != norm(n): continue
            hit = v in a.get("versions", [])
            for rg in a.get("ranges", []):
                if rg["type"] != "ECOSYSTEM": continue
                ev = sorted(rg["events"], key=lambda e: Version("0") if list(e.values())[0] == "0" else Version(list(e.values())[0]))
                st = False
                for e in ev:
                    (k, x), = e.items()
                    x = Version(x)
                    if k == "introduced" and Version(v) >= x: st = True
                    if k == "fixed" and Version(v) >= x: st = False
                    if k == "last_affected" and Version(v) > x: st = False
                hit = hit or st
            if hit and r["id"] not in out[f"{n}=={v}"]: out[f"{n}=={v}"].append(r["id"])
print(json.dumps(out))
"#;
    let args: Vec<String> = packages.iter().map(|(n, v)| format!("{n}=={v}")).collect();
    let out = Command::new("python3").args(["-c", script]).arg(fixtures().join("PyPI")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn debian_root_gets_exactly_the_findings_the_records_give() {
    let (_dir, db, report) = db_of(&[&fixtures()]);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.imported, 2665);
    let db = vuln::Db::open(&db).unwrap();
    let sbom = sbom::scan(&bookworm_root()).unwrap();
    let doc = serde_json::to_value(&sbom).unwrap();
    let input = vuln::input::parse(&doc).unwrap();
    assert_eq!(input.format, "sniffer");
    let scan = vuln::scan(&db, &input.subjects, None).unwrap();

    // Record ids per package, as our findings carry them (the finding's id and its aliases
    // that are records in the database).
    let mut ours: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &scan.findings {
        let key = format!("{}=={}", sbom::purl::normalize_python(&f.package.name), f.package.version);
        let ids = ours.entry(key).or_default();
        for id in std::iter::once(&f.id).chain(&f.aliases) {
            if db.record(id).unwrap().is_some() {
                ids.insert(id.clone());
            }
        }
    }
    let python: Vec<(&str, &str)> = vec![
        ("requests", "2.25.0"),
        ("urllib3", "1.26.4"),
        ("jinja2", "2.11.2"),
        ("markupsafe", "2.0.1"),
        ("idna", "2.10"),
        ("certifi", "2024.8.30"),
        ("chardet", "3.0.4"),
    ];
    for (key, ids) in python_expected(&python) {
        let got = ours.get(&key).cloned().unwrap_or_default();
        assert_eq!(got, ids.into_iter().collect::<BTreeSet<_>>(), "{key}");
    }
    assert!(ours["requests==2.25.0"].contains("PYSEC-2023-74"));
    let requests = scan.findings.iter().find(|f| f.id == "PYSEC-2023-74").unwrap();
    assert_eq!(requests.fixed, ["2.31.0"]);
    assert!(requests.aliases.contains(&"CVE-2023-32681".to_string()));
    assert!(!ours.get("jinja2==2.11.2").unwrap().is_empty());
    // npm: the fixture README's known answers.
    let npm = |k: &str| ours.get(k).cloned().unwrap_or_default();
    assert_eq!(npm("lodash==4.17.15"), BTreeSet::from(["GHSA-p6mc-m468-83gw".into(), "GHSA-35jh-r3h4-6jhm".into()]));
    assert_eq!(npm("minimist==1.2.0"), BTreeSet::from(["GHSA-vh95-rmgr-6w4m".into(), "GHSA-xvch-5gv4-984h".into()]));
    // GitHub's CVSS vector is scored.
    let cmd = scan.findings.iter().find(|f| f.id == "GHSA-35jh-r3h4-6jhm").unwrap();
    assert_eq!((cmd.severity.score, cmd.severity.rating), (Some(7.2), vuln::severity::Rating::High));

    // Every finding's fixed versions are free of it.
    for f in &scan.findings {
        let ty = if f.package.ecosystem == "npm" { "npm" } else { "pypi" };
        for fixed in &f.fixed {
            let s = subjects(ty, &[(&f.package.name, fixed)]);
            let again = vuln::scan(&db, &s, None).unwrap();
            assert!(again.findings.iter().all(|g| g.id != f.id), "{} {fixed} still has {}", f.package.name, f.id);
        }
    }
    let fixed = subjects("npm", &[("lodash", "4.17.21"), ("minimist", "1.2.6")]);
    assert!(vuln::scan(&db, &fixed, None).unwrap().findings.is_empty());
}

#[test]
fn sbom_prime_marks_findings_relevant_with_evidence() {
    let (_dir, db, _) = db_of(&[&fixtures()]);
    let db = vuln::Db::open(&db).unwrap();
    let root = bookworm_root();
    let sbom = sbom::scan(&root).unwrap();
    let index = sbom::index::FileIndex::build(&sbom::rootfs::Root::open(&root).unwrap(), &sbom);
    let opened = [std::path::PathBuf::from("/usr/local/lib/python3.11/dist-packages/requests/__init__.py")];
    let runtime = sbom::index::filter(&sbom, &index, opened.iter().map(|p| p.as_path()), true);
    // Through the CycloneDX SBOM' document, as another tool would hand it over.
    let doc = sbom::formats::cyclonedx_runtime(&sbom, &runtime);
    let relevance = vuln::input::parse(&doc).unwrap().relevance.unwrap();
    let input = vuln::input::parse(&serde_json::to_value(&sbom).unwrap()).unwrap();
    let scan = vuln::scan(&db, &input.subjects, Some(&relevance)).unwrap();
    let first = &scan.findings[0];
    assert_eq!((first.package.name.as_str(), first.relevant), ("requests", Some(true)));
    assert_eq!(first.evidence, opened);
    let jinja = scan.findings.iter().find(|f| f.package.name.eq_ignore_ascii_case("jinja2")).unwrap();
    assert_eq!(jinja.relevant, Some(false));
    assert!(jinja.evidence.is_empty());
    // Relevant findings come first.
    let flags: Vec<bool> = scan.findings.iter().map(|f| f.relevant == Some(true)).collect();
    assert!(flags.windows(2).all(|w| w[0] >= w[1]), "{flags:?}");
}

/// The fixtures hold no Debian records yet (their README says so), so these are written
/// here in the shape of osv.dev's Debian export, against the real root's real libc6: the
/// binary package matches through its source package (glibc) and the release (Debian:12).
#[test]
fn debian_packages_match_through_source_package_and_release() {
    let sbom = sbom::scan(&bookworm_root()).unwrap();
    let libc = sbom.packages.iter().find(|p| p.name == "libc6").unwrap();
    let src = libc.source.as_ref().unwrap();
    assert_eq!(src.name, "glibc");
    let record = |id: &str, eco: &str, fixed: &str| {
        serde_json::json!({"id": id, "modified": "2024-01-01T00:00:00Z", "aliases": [format!("CVE-2099-{}", id.len())],
            "affected": [{"package": {"ecosystem": eco, "name": "glibc"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                          "ecosystem_specific": {"urgency": "medium"}}]})
    };
    let tmp = tempfile::tempdir().unwrap();
    let above = format!("{}+z", src.version);
    for (id, eco, fixed) in [
        ("DEBIAN-T-1", "Debian:12", above.as_str()),
        ("DEBIAN-T-22", "Debian:12", "2.28-1"),
        ("DEBIAN-T-333", "Debian:11", above.as_str()),
    ] {
        std::fs::write(tmp.path().join(format!("{id}.json")), record(id, eco, fixed).to_string()).unwrap();
    }
    let (_d, db, _) = db_of(&[tmp.path()]);
    let db = vuln::Db::open(&db).unwrap();
    let input = vuln::input::parse(&serde_json::to_value(&sbom).unwrap()).unwrap();
    let scan = vuln::scan(&db, &input.subjects, None).unwrap();
    let ids: BTreeSet<(&str, &str)> = scan.findings.iter().map(|f| (f.id.as_str(), f.package.name.as_str())).collect();
    // Every binary package built from glibc in the root, and only DEBIAN-T-1.
    let from_glibc: BTreeSet<(&str, &str)> = sbom
        .packages
        .iter()
        .filter(|p| p.source.as_ref().is_some_and(|s| s.name == "glibc"))
        .map(|p| ("DEBIAN-T-1", p.name.as_str()))
        .collect();
    assert!(from_glibc.len() >= 2, "{from_glibc:?}");
    assert_eq!(ids, from_glibc);
    let f = &scan.findings[0];
    assert_eq!((f.package.source.as_deref(), f.fixed.as_slice()), (Some("glibc"), [above.clone()].as_slice()));
    assert_eq!(f.severity.rating, vuln::severity::Rating::Medium);
}

/// PyPA records carry no CVSS vector: alone, the Jinja2 and requests findings are
/// `unknown`. With the GitHub advisories they name as aliases in the database (real
/// records, `tests/data/github`), each is rated from the advisory's vector, and says so in
/// the JSON and in the CycloneDX rating's source.
#[test]
fn pypi_findings_take_their_rating_from_the_github_advisory_they_name() {
    let packages = [("jinja2", "2.11.2"), ("requests", "2.25.0")];
    let rated = |paths: &[&std::path::Path]| {
        let (_dir, db, _) = db_of(paths);
        let db = vuln::Db::open(&db).unwrap();
        let report = vuln::scan(&db, &subjects("pypi", &packages), None).unwrap();
        let of = |name: &str, alias: &str| {
            report
                .findings
                .iter()
                .find(|f| f.package.name == name && (f.id == alias || f.aliases.iter().any(|a| a == alias)))
                .unwrap_or_else(|| panic!("no finding {alias} for {name}: {:#?}", report.findings))
                .clone()
        };
        (of("jinja2", "GHSA-g3rq-g295-4j3m"), of("requests", "GHSA-j8r2-6x86-q33q"), report)
    };

    let (jinja, requests, _) = rated(&[&fixtures().join("PyPI")]);
    for f in [&jinja, &requests] {
        assert_eq!(f.severity, vuln::severity::SeverityInfo::default(), "{}", f.id);
    }

    let (jinja, requests, report) = rated(&[&fixtures().join("PyPI"), &github_records()]);
    for (f, ghsa, pysec, score, vector) in [
        (&jinja, "GHSA-g3rq-g295-4j3m", "PYSEC-2021-66", 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"),
        (&requests, "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74", 6.1, "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"),
    ] {
        // One finding for the two records, as before.
        assert!(f.id == ghsa && f.aliases.iter().any(|a| a == pysec), "{f:#?}");
        assert_eq!(f.severity.rating, vuln::severity::Rating::Medium);
        assert_eq!((f.severity.score, f.severity.vector.as_deref()), (Some(score), Some(vector)));
        let source = f.severity.source.as_ref().unwrap();
        assert_eq!((source.record.as_str(), source.field.as_str()), (ghsa, "severity CVSS_V3"));
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(json["severity"]["source"]["record"], ghsa);
    }
    let ctx = vuln::report::Context { sbom: "x".into(), runtime: None, db: "db".into(), db_updated_at: None };
    let vex: serde_json::Value =
        serde_json::from_str(&vuln::report::render(&report, &ctx, vuln::report::Format::CyclonedxVex)).unwrap();
    let rating = vex["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "GHSA-j8r2-6x86-q33q")
        .map(|v| v["ratings"][0].clone())
        .unwrap();
    assert_eq!(rating["source"]["name"], "GitHub (GHSA-j8r2-6x86-q33q)");
    assert_eq!(rating["source"]["url"], "https://osv.dev/vulnerability/GHSA-j8r2-6x86-q33q");
}

/// The GitHub advisories this crate's tests carry (`tests/data/github`).
fn github_records() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github")
}

/// A database of [`github_records`] alone, opened (its directory lives as long as the first).
fn github_db() -> (tempfile::TempDir, vuln::Db) {
    let (dir, db, _) = db_of(&[&github_records()]);
    let db = vuln::Db::open(&db).unwrap();
    (dir, db)
}

/// Go module paths keep their case in our purls (`github.com/Azure/...`), and OSV's Go
/// records name them exactly: the real advisory for azidentity matches our purl, and the
/// lower-cased one tools following the purl spec's text write, but not the fixed version.
#[test]
fn go_modules_with_capitals_match_their_advisory() {
    let (_dir, db) = github_db();
    let module = "github.com/Azure/azure-sdk-for-go/sdk/azidentity";
    let ours = sbom::purl::golang(module, "v1.5.2");
    assert_eq!(ours, format!("pkg:golang/{module}@v1.5.2"));
    for purl in [ours, format!("pkg:golang/{}@v1.5.2", module.to_lowercase())] {
        let s = vec![vuln::input::subject_of_purl(&purl).unwrap()];
        let report = vuln::scan(&db, &s, None).unwrap();
        assert_eq!(report.findings.len(), 1, "{purl}: {report:#?}");
        assert_eq!(
            (report.findings[0].id.as_str(), report.findings[0].fixed.as_slice()),
            ("GHSA-m5vv-6r4h-3vj9", ["1.6.0".to_string()].as_slice())
        );
    }
    let fixed = vec![vuln::input::subject_of_purl(&sbom::purl::golang(module, "v1.6.0")).unwrap()];
    assert!(vuln::scan(&db, &fixed, None).unwrap().findings.is_empty());
}

/// A Go module built from its own tree with nothing saying its version (`(devel)`) is not
/// matched, and the scan says why in plain words.
#[test]
fn a_module_without_a_known_version_is_not_matched_and_said_so() {
    let (_dir, db) = github_db();
    let purl = sbom::purl::golang("github.com/Azure/azure-sdk-for-go/sdk/azidentity", "(devel)");
    let report = vuln::scan(&db, &[vuln::input::subject_of_purl(&purl).unwrap()], None).unwrap();
    assert!(report.findings.is_empty());
    assert_eq!(report.warnings, [format!("{purl}: no version known (built from source: (devel)), not matched")]);
}

/// A main module whose version was made from its commit (a pseudo-version below every
/// release) is matched all the same (it may be that old), but the scan says the findings
/// rest on a commit-derived version; a dependency at a pseudo-version (a real module
/// version, ordered as Go orders them) is matched without that warning.
#[test]
fn a_version_made_from_a_commit_is_matched_and_said_so() {
    let (_dir, db) = github_db();
    let module = "github.com/Azure/azure-sdk-for-go/sdk/azidentity";
    let version = "v0.0.0-20250515090502-9894294ef13a";
    let package = |from_commit| sbom::Package {
        name: module.into(),
        version: version.into(),
        kind: sbom::Ecosystem::Go,
        purl: sbom::purl::golang(module, version),
        source: None,
        licenses: vec![],
        found_at: "/usr/local/bin/app".into(),
        files: vec!["/usr/local/bin/app".into()],
        version_from_commit: from_commit,
    };
    for from_commit in [true, false] {
        let doc = sbom::Sbom {
            root: "/".into(),
            distro: None,
            packages: vec![package(from_commit)],
            warnings: vec![],
            incomplete: false,
        };
        let input = vuln::input::of_sbom(&doc);
        let report = vuln::scan(&db, &input.subjects, None).unwrap();
        assert_eq!(report.findings.len(), 1, "{report:#?}");
        let said: Vec<&String> = report.warnings.iter().filter(|w| w.contains("made from a commit")).collect();
        match from_commit {
            true => assert_eq!(
                said,
                [&format!(
                    "{}: version {version} is made from a commit (nothing in the binary names a release), and sorts \
                     below every release: 1 findings rest on it; check them against that commit",
                    sbom::purl::golang(module, version)
                )]
            ),
            false => assert!(said.is_empty(), "{said:?}"),
        }
    }
    // It survives the SBOM's JSON (the flag is written only when set).
    let json = serde_json::to_value(package(true)).unwrap();
    assert_eq!(json["version_from_commit"], true);
    assert!(serde_json::to_value(package(false)).unwrap().get("version_from_commit").is_none());
}
