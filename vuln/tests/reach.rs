//! Function-level reachability of Go findings: real Go binaries (built here, stdlib only)
//! against real Go advisories (golang/vulndb), which name the vulnerable symbols.

mod common;

use std::path::{Path, PathBuf};

use vuln::reach::{Call, Calls, Facts, GoStatic, State};

const DECODE: &str = "GO-2024-3106"; // encoding/gob Decoder.Decode
const PARSER: &str = "GO-2024-3105"; // go/parser ParseFile, ...
const CONSTRAINT: &str = "GO-2024-3107"; // go/build/constraint Parse

fn db() -> (tempfile::TempDir, PathBuf) {
    let records = testkit::golang::records();
    let files: Vec<PathBuf> =
        [DECODE, PARSER, CONSTRAINT].iter().map(|id| records.join(format!("{id}.json"))).collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (dir, db, report) = common::db_of(&refs);
    assert_eq!(report.imported, 3, "{report:?}");
    (dir, db)
}

/// A root holding one binary at /usr/local/bin/app, its SBOM and the static facts.
fn image(binary: &Path, db: &vuln::Db) -> (tempfile::TempDir, sbom::Sbom, vuln::gocode::Outcome) {
    image_of(&[("app", binary)], db)
}

/// A root holding binaries at /usr/local/bin/NAME, its SBOM and the static facts.
fn image_of(binaries: &[(&str, &Path)], db: &vuln::Db) -> (tempfile::TempDir, sbom::Sbom, vuln::gocode::Outcome) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("usr/local/bin")).unwrap();
    for (name, binary) in binaries {
        std::fs::copy(binary, root.path().join("usr/local/bin").join(name)).unwrap();
    }
    let sbom = sbom::scan(root.path()).unwrap();
    let fs = sbom::rootfs::Root::open(root.path()).unwrap();
    let outcome = vuln::gocode::facts(db, &sbom, &fs, vuln::gocode::Limits::default()).unwrap();
    (root, sbom, outcome)
}

fn scan(
    db: &vuln::Db,
    sbom: &sbom::Sbom,
    runtime: Option<&sbom::index::RuntimeSbom>,
    facts: &Facts,
) -> vuln::ScanReport {
    let input = vuln::input::of_sbom(sbom);
    let relevance = runtime.and_then(|r| vuln::input::of_runtime(r).relevance);
    vuln::scan_with(db, &input.subjects, relevance.as_ref(), facts).unwrap()
}

fn state(report: &vuln::ScanReport, id: &str) -> (State, Option<bool>) {
    let f = report.findings.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("{id}: {report:#?}"));
    (f.state().unwrap_or_else(|| panic!("{id} has no reachability")), f.relevant)
}

#[test]
fn linked_not_linked_and_stripped() {
    let (_d, path) = db();
    let db = vuln::Db::open(&path).unwrap();
    // Without the binaries, nothing below the file is claimed.
    let bare = vuln::scan(&db, &common::subjects("golang", &[("stdlib", "1.19.8")]), None).unwrap();
    assert_eq!(bare.findings.len(), 3);
    assert!(bare.findings.iter().all(|f| f.reachability.is_none() && f.relevant.is_none()));

    let bins = tempfile::tempdir().unwrap();
    let p = testkit::golang::programs(bins.path());

    for (name, binary, decode) in [
        ("calls", &p.calls, State::Unknown),
        ("links", &p.links, State::Unknown),
        ("stripped", &p.stripped, State::Unknown),
        ("nolink", &p.nolink, State::NotPresent),
    ] {
        let (_root, sbom, outcome) = image(binary, &db);
        assert!(outcome.warnings.is_empty(), "{name}: {:?}", outcome.warnings);
        assert_eq!(outcome.binaries_read, 1);
        let facts = Facts { go: outcome.facts.clone(), ..Default::default() };
        let report = scan(&db, &sbom, None, &facts);
        assert_eq!(report.findings.len(), 3, "{name}: all three advisories affect Go 1.19's stdlib");
        // No parser is linked anywhere: not present, with what was looked for and where.
        for id in [PARSER, CONSTRAINT] {
            assert_eq!(state(&report, id), (State::NotPresent, None), "{name} {id}");
        }
        let why = &report.findings.iter().find(|f| f.id == CONSTRAINT).unwrap().reachability.as_ref().unwrap().why;
        assert!(why.contains("go/build/constraint.Parse") && why.contains("/usr/local/bin/app"), "{why}");
        assert_eq!(state(&report, DECODE), (decode, None), "{name}");
        if decode == State::Unknown {
            let GoStatic::Linked { sites } =
                outcome.facts.values().find(|f| matches!(f, GoStatic::Linked { .. })).unwrap()
            else {
                unreachable!()
            };
            let decode = sites.iter().find(|s| s.function == "encoding/gob.(*Decoder).Decode").unwrap();
            assert!(decode.offset.is_some(), "{name}: a probe can go there");
            assert_eq!(decode.binary, Path::new("/usr/local/bin/app"));
        }
    }
}

#[test]
fn every_binary_holding_the_module_is_looked_in() {
    let (_d, path) = db();
    let db = vuln::Db::open(&path).unwrap();
    let bins = tempfile::tempdir().unwrap();
    let p = testkit::golang::programs(bins.path());
    // Both binaries hold stdlib 1.19.8 (one purl); only the second links Decode.
    let (_root, sbom, outcome) = image_of(&[("a", &p.nolink), ("b", &p.links)], &db);
    assert_eq!(outcome.binaries_read, 2);
    let GoStatic::Linked { sites } = &outcome.facts.iter().find(|((_, id), _)| id == DECODE).unwrap().1 else {
        panic!("Decode is linked in b: {:?}", outcome.facts)
    };
    assert!(sites.iter().all(|s| s.binary == Path::new("/usr/local/bin/b")), "{sites:?}");
    let GoStatic::NotPresent { binaries, .. } = &outcome.facts.iter().find(|((_, id), _)| id == PARSER).unwrap().1
    else {
        panic!("no parser anywhere")
    };
    assert_eq!(binaries.len(), 2, "both looked in: {binaries:?}");
    let report = scan(&db, &sbom, None, &Facts { go: outcome.facts.clone(), ..Default::default() });
    assert_eq!(state(&report, DECODE), (State::Unknown, None));
}

#[test]
fn with_sbom_prime_and_calls() {
    let (_d, path) = db();
    let db = vuln::Db::open(&path).unwrap();
    let bins = tempfile::tempdir().unwrap();
    let p = testkit::golang::programs(bins.path());
    let (root, sbom, outcome) = image(&p.calls, &db);
    let fs = sbom::rootfs::Root::open(root.path()).unwrap();
    let index = sbom::index::FileIndex::build(&fs, &sbom);
    let ran = sbom::index::filter(&sbom, &index, [Path::new("/usr/local/bin/app")], true);
    let idle = sbom::index::filter(&sbom, &index, std::iter::empty::<&Path>(), true);
    let mut facts = Facts { go: outcome.facts.clone(), ..Default::default() };

    // Executed, no probes: file level, said so; not present stays not present.
    let report = scan(&db, &sbom, Some(&ran), &facts);
    assert_eq!(state(&report, DECODE), (State::Opened, Some(true)));
    assert!(report.findings[0].reachability.as_ref().unwrap().why.contains("no function probes"));
    assert_eq!(state(&report, PARSER), (State::NotPresent, Some(false)));
    // Never executed: not opened.
    let report = scan(&db, &sbom, Some(&idle), &facts);
    assert_eq!(state(&report, DECODE), (State::NotOpened, Some(false)));

    // Probed for the whole window: called, or linked and not called.
    let GoStatic::Linked { sites } = &outcome.facts.iter().find(|((_, id), _)| id == DECODE).unwrap().1 else {
        panic!("Decode is linked")
    };
    let probed: Vec<_> = sites.iter().filter(|s| s.offset.is_some()).cloned().collect();
    facts.calls = Some(Calls { probed: probed.clone(), window_seconds: 30, ..Default::default() });
    let report = scan(&db, &sbom, Some(&ran), &facts);
    assert_eq!(state(&report, DECODE), (State::NotCalled, Some(false)));
    let r = report.findings.iter().find(|f| f.id == DECODE).unwrap().reachability.clone().unwrap();
    assert!(r.why.contains("not called during 30 s"), "{}", r.why);
    assert_eq!(r.window_seconds, Some(30));

    let decode = probed.iter().find(|s| s.function == "encoding/gob.(*Decoder).Decode").unwrap().clone();
    let call = Call { site: decode, pid: 42, comm: "app".into(), at: sbom::time::Timestamp::now() };
    facts.calls = Some(Calls { probed, calls: vec![call], window_seconds: 30, ..Default::default() });
    let report = scan(&db, &sbom, Some(&ran), &facts);
    assert_eq!(state(&report, DECODE), (State::Called, Some(true)));
    assert_eq!(report.findings[0].id, DECODE, "called first");
    let r = report.findings[0].reachability.as_ref().unwrap();
    assert!(r.evidence[0].contains("pid 42 (app)"), "{:?}", r.evidence);

    // VEX says why each is not affected.
    let ctx = vuln::report::Context { sbom: "s".into(), runtime: None, db: "d".into(), db_updated_at: None };
    let cdx: serde_json::Value =
        serde_json::from_str(&vuln::report::render(&report, &ctx, vuln::report::Format::CyclonedxVex)).unwrap();
    let analysis = |id: &str| {
        cdx["vulnerabilities"].as_array().unwrap().iter().find(|v| v["id"] == id).unwrap()["analysis"].clone()
    };
    assert_eq!(analysis(PARSER)["justification"], "code_not_present");
    assert_eq!(analysis(DECODE)["state"], "exploitable");
    let open: serde_json::Value =
        serde_json::from_str(&vuln::report::render(&report, &ctx, vuln::report::Format::Openvex)).unwrap();
    let st = |cve: &str| {
        open["statements"].as_array().unwrap().iter().find(|s| s["vulnerability"]["name"] == cve).unwrap().clone()
    };
    assert_eq!(st("CVE-2024-34155")["justification"], "vulnerable_code_not_present");
    assert_eq!(st("CVE-2024-34156")["status"], "affected");
    let table = vuln::report::render(&report, &ctx, vuln::report::Format::Table);
    assert!(table.lines().next().unwrap().contains("REACHABILITY"), "{table}");
    assert!(
        table.contains("1 with a vulnerable function called")
            && table.contains("2 whose vulnerable code is not in the binary"),
        "{table}"
    );
}

#[test]
fn a_table_that_cannot_be_read_is_undecided_never_absent() {
    let (_d, path) = db();
    let db = vuln::Db::open(&path).unwrap();
    let bins = tempfile::tempdir().unwrap();
    let p = testkit::golang::programs(bins.path());
    let (root, sbom, _) = image(&p.nolink, &db);
    // The binary's table made to lie: the function count past its end.
    let bin = root.path().join("usr/local/bin/app");
    let mut data = std::fs::read(&bin).unwrap();
    let at = memchr_magic(&data);
    data[at + 8..at + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&bin, &data).unwrap();
    let fs = sbom::rootfs::Root::open(root.path()).unwrap();
    let outcome = vuln::gocode::facts(&db, &sbom, &fs, vuln::gocode::Limits::default()).unwrap();
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    let facts = Facts { go: outcome.facts, ..Default::default() };
    let report = scan(&db, &sbom, None, &facts);
    for f in &report.findings {
        assert_eq!(f.state(), Some(State::Unknown), "{}: {:?}", f.id, f.reachability);
        assert!(f.reachability.as_ref().unwrap().why.contains("malformed"), "{:?}", f.reachability);
    }
}

/// Offset of the 1.18 table's magic in a Go 1.19 binary.
fn memchr_magic(data: &[u8]) -> usize {
    (0..data.len() - 8).step_by(8).find(|&i| data[i..i + 8] == [0xf0, 0xff, 0xff, 0xff, 0, 0, 1, 8]).unwrap()
}
