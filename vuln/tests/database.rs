//! The database under bad input: malformed and withdrawn records, replaced records, a
//! corrupt file, zips, and `db update` against a local HTTP server that misbehaves.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;
use common::{db_of, subjects};
use testkit::fixtures::osv as fixtures;

fn lodash_ids(db: &Path, version: &str) -> Vec<String> {
    let db = vuln::Db::open(db).unwrap();
    let scan = vuln::scan(&db, &subjects("npm", &[("lodash", version)]), None).unwrap();
    scan.findings.into_iter().map(|f| f.id).collect()
}

fn zip_dir(dir: &Path, zip: &Path) {
    let script = "import sys, zipfile, os\nz = zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED)\nfor f in sorted(os.listdir(sys.argv[1])): z.write(os.path.join(sys.argv[1], f), f)\nz.close()";
    assert!(Command::new("python3").args(["-c", script]).arg(dir).arg(zip).status().unwrap().success());
}

#[test]
fn malformed_records_are_skipped_and_named_withdrawn_ones_never_match() {
    let tmp = tempfile::tempdir().unwrap();
    let npm = fixtures().join("npm");
    for f in std::fs::read_dir(&npm).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
    }
    // GHSA-35jh-r3h4-6jhm withdrawn; a truncated record; one without an id; binary garbage.
    let path = tmp.path().join("GHSA-35jh-r3h4-6jhm.json");
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    r["withdrawn"] = "2024-01-01T00:00:00Z".into();
    std::fs::write(&path, serde_json::to_vec(&r).unwrap()).unwrap();
    std::fs::write(tmp.path().join("truncated.json"), br#"{"id": "GHSA-xxxx", "affected": [{"package""#).unwrap();
    std::fs::write(tmp.path().join("noid.json"), br#"{"affected": []}"#).unwrap();
    std::fs::write(tmp.path().join("garbage.json"), [0xff, 0x00, 0x13, 0x37]).unwrap();
    let (_d, db, report) = db_of(&[tmp.path()]);
    assert_eq!((report.imported, report.withdrawn), (4, 1));
    let skipped: Vec<&str> = report.skipped.iter().map(|s| s.source.rsplit('/').next().unwrap()).collect();
    assert_eq!(skipped, ["garbage.json", "noid.json", "truncated.json"]);
    assert!(report.skipped.iter().all(|s| !s.reason.is_empty()));
    assert_eq!(lodash_ids(&db, "4.17.15"), ["GHSA-p6mc-m468-83gw"]);
    let status = vuln::Db::open(&db).unwrap().status().unwrap();
    assert_eq!((status.records, status.withdrawn, status.ecosystems["npm"]), (4, 1, 3));
}

#[test]
fn a_replaced_record_is_reindexed_and_reimport_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("npm/GHSA-p6mc-m468-83gw.json");
    let path = tmp.path().join("r.json");
    std::fs::copy(&src, &path).unwrap();
    let (_d, db, _) = db_of(&[&path]);
    assert_eq!(lodash_ids(&db, "4.17.15"), ["GHSA-p6mc-m468-83gw"]);
    // The advisory is corrected upstream: fixed earlier, so 4.17.15 is no longer affected.
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&src).unwrap()).unwrap();
    for a in r["affected"].as_array_mut().unwrap() {
        a["ranges"] = serde_json::json!([{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.17.10"}]}]);
    }
    std::fs::write(&path, serde_json::to_vec(&r).unwrap()).unwrap();
    for expected_imported in [1, 0] {
        let mut w = vuln::Writer::open(&db).unwrap();
        let mut report = vuln::ImportReport::default();
        vuln::import::import_path(&mut w, &path, &mut report).unwrap();
        w.commit().unwrap();
        assert_eq!(report.imported, expected_imported);
        assert!(lodash_ids(&db, "4.17.15").is_empty());
        assert_eq!(lodash_ids(&db, "4.17.9"), ["GHSA-p6mc-m468-83gw"]);
    }
}

#[test]
fn zip_import_equals_directory_import() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    zip_dir(&fixtures().join("PyPI"), &zip);
    let (_a, from_zip, r1) = db_of(&[&zip]);
    let (_b, from_dir, r2) = db_of(&[&fixtures().join("PyPI")]);
    assert_eq!((r1.imported, r1.withdrawn), (r2.imported, r2.withdrawn));
    let (s1, s2) =
        (vuln::Db::open(&from_zip).unwrap().status().unwrap(), vuln::Db::open(&from_dir).unwrap().status().unwrap());
    assert_eq!(s1.ecosystems, s2.ecosystems);
    assert_eq!(s1.ecosystems["PyPI"], 2651);
}

/// A mirror's zip whose 8,000 names share one local entry that inflates to 16 MiB each is
/// refused at once (it kept `db import` busy for minutes), and the database is untouched.
#[test]
fn a_zip_whose_entries_share_their_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    testkit::archive::shared_entry_zip(&zip, 8000, |i| format!("r{i}.json"), "a.json", b' ', 16 << 20);
    let db = tmp.path().join("vuln.db");
    let start = std::time::Instant::now();
    let mut w = vuln::Writer::open(&db).unwrap();
    let err = vuln::import::import_path(&mut w, &zip, &mut vuln::ImportReport::default()).unwrap_err();
    assert!(err.to_string().contains("share or overlap"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "{:?}", start.elapsed());
}

#[test]
fn a_corrupt_database_file_is_a_clear_error() {
    let (_d, db, _) = db_of(&[&fixtures().join("npm")]);
    let bytes = std::fs::read(&db).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database, it is a text file\n".repeat(100)).unwrap();
    let truncated = tmp.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    for bad in [&garbage, &truncated] {
        let err = vuln::Db::open(bad).err().unwrap_or_else(|| panic!("{} opened", bad.display())).to_string();
        assert!(err.contains(&bad.display().to_string()) && err.contains("rebuild"), "{err}");
    }
    let missing = vuln::Db::open(&tmp.path().join("none.db")).err().unwrap().to_string();
    assert!(missing.contains("sniffer db import"), "{missing}");
}

/// A scripted HTTP server on loopback: each connection gets the next response; every
/// request's head is kept.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn serve(responses: Vec<Vec<u8>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for response in responses {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
            let _ = conn.write_all(&response);
            // Dropping the connection ends a short body early: an interrupted transfer.
        }
    });
    Server { url, requests }
}

fn ok_response(body: &[u8], extra: &str) -> Vec<u8> {
    let mut r =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

fn md5_b64(bytes: &[u8]) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,hashlib,base64;print(base64.b64encode(hashlib.md5(sys.stdin.buffer.read()).digest()).decode())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Counts what an update reports.
#[derive(Debug, Default)]
struct Counted {
    announced: std::sync::Mutex<Vec<(String, Option<u64>)>>,
    bytes: std::sync::atomic::AtomicU64,
    expected: std::sync::atomic::AtomicU64,
    records: std::sync::atomic::AtomicU64,
}

impl vuln::progress::Progress for Counted {
    fn download(&self, what: &str, total: Option<u64>) {
        self.announced.lock().unwrap().push((what.to_string(), total));
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    fn records(&self, _what: &str, total: Option<u64>) {
        self.expected.fetch_add(total.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    }
    fn record(&self) {
        self.records.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn update_swaps_in_complete_downloads_only() {
    let tmp = tempfile::tempdir().unwrap();
    let npm_zip = tmp.path().join("npm.zip");
    zip_dir(&fixtures().join("npm"), &npm_zip);
    let zip = std::fs::read(&npm_zip).unwrap();
    let db = tmp.path().join("state/vuln.db");
    let counted = std::sync::Arc::new(Counted::default());
    let opts = |url: &str| vuln::update::UpdateOptions {
        mirror: url.to_string(),
        ecosystems: vec!["npm".into()],
        db: db.clone(),
        timeout: std::time::Duration::from_secs(20),
        progress: counted.clone(),
    };
    let good = ok_response(&zip, &format!("ETag: \"v1\"\r\nx-goog-hash: crc32c=AAAAAA==,md5={}\r\n", md5_b64(&zip)));
    let not_modified = b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_vec();
    // Content-Length promises the whole zip; the server hangs up halfway.
    let mut cut = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v2\"\r\n\r\n", zip.len()).into_bytes();
    cut.extend_from_slice(&zip[..zip.len() / 2]);
    let bad_md5 = ok_response(&zip, "ETag: \"v3\"\r\nx-goog-hash: md5=AAAAAAAAAAAAAAAAAAAAAA==\r\n");
    let server = serve(vec![good, not_modified, cut, bad_md5]);

    let report = vuln::update::update(&opts(&server.url)).unwrap();
    assert!(report.swapped);
    assert_eq!(report.import.imported, 4);
    // What a progress bar is told: the download's size, every byte, every record.
    assert_eq!(*counted.announced.lock().unwrap(), [("npm".to_string(), Some(zip.len() as u64))]);
    assert_eq!(counted.bytes.load(std::sync::atomic::Ordering::Relaxed), zip.len() as u64);
    assert_eq!(counted.records.load(std::sync::atomic::Ordering::Relaxed), 4);
    assert_eq!(counted.expected.load(std::sync::atomic::Ordering::Relaxed), 4);
    let status = vuln::Db::open(&db).unwrap().status().unwrap();
    assert_eq!(status.sources["npm"].etag.as_deref(), Some("\"v1\""));
    assert_eq!(lodash_ids(&db, "4.17.15").len(), 2);
    let before = std::fs::read(&db).unwrap();

    let report = vuln::update::update(&opts(&server.url)).unwrap();
    assert!(!report.swapped);
    assert_eq!(report.ecosystems["npm"], vuln::update::Fetch::Unchanged);
    assert!(server.requests.lock().unwrap()[1].to_ascii_lowercase().contains("if-none-match: \"v1\""));

    let err = vuln::update::update(&opts(&server.url)).unwrap_err().to_string();
    assert!(err.contains("broke off") || err.contains("fetching"), "{err}");
    let err = vuln::update::update(&opts(&server.url)).unwrap_err().to_string();
    assert!(err.contains("MD5 mismatch"), "{err}");
    // The old database is in use, byte for byte, and no temporary file is left behind.
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(lodash_ids(&db, "4.17.15").len(), 2);
    let left: Vec<_> = std::fs::read_dir(db.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("vuln.db")]);
}
