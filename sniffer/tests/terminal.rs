//! What reaches a person at a terminal, and what reaches a pipe: log lines (text on a
//! terminal, JSON elsewhere, `--log-format` to choose), progress bars (on a terminal only),
//! and names from archives escaped. A terminal is a real pseudo-terminal (`script`).

use std::path::Path;
use std::process::{Command, Output};

const SNIFFER: &str = env!("CARGO_BIN_EXE_sniffer");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `sniffer args` on a pseudo-terminal: what the terminal showed (stdout and stderr).
fn on_terminal(args: &[&str]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let command = format!("{SNIFFER} {}", quoted.join(" "));
    let out = Command::new("script").args(["-qec", &command, "/dev/null"]).output().expect("script");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// `sniffer args` with its output piped.
fn piped(args: &[&str]) -> Output {
    Command::new(SNIFFER).args(args).output().expect("sniffer")
}

/// A daemon that starts and is stopped by SIGINT 2 s later.
fn daemon_args(socket: &Path) -> Vec<String> {
    ["run", "--no-flow", "--socket", socket.to_str().unwrap()].map(String::from).to_vec()
}

fn interrupted(args: &[String]) -> Vec<String> {
    let mut all = vec!["-s".to_string(), "INT".into(), "2".into(), SNIFFER.into()];
    all.extend(args.iter().cloned());
    all
}

#[test]
fn log_lines_are_text_on_a_terminal_and_json_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("s.sock");
    let args = daemon_args(&socket);
    // In a pipe: one JSON object per line.
    let out = Command::new("timeout").args(interrupted(&args)).output().unwrap();
    let err = text(&out.stderr);
    let first = err.lines().next().unwrap_or_else(|| panic!("no log line: {err}"));
    let line: serde_json::Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(line["fields"]["message"], "sniffer daemon started");
    // Asked for text in a pipe: compact lines, without colours.
    let mut text_args = args.clone();
    text_args.extend(["--log-format".into(), "text".into()]);
    let out = Command::new("timeout").args(interrupted(&text_args)).output().unwrap();
    let err = text(&out.stderr);
    let first = err.lines().next().unwrap();
    assert!(first.contains("INFO") && first.contains("sniffer daemon started"), "{err}");
    assert!(serde_json::from_str::<serde_json::Value>(first).is_err() && !err.contains('\x1b'), "{err}");
    // On a terminal: text by default, JSON when asked.
    let shown = |extra: &[&str]| {
        let mut all: Vec<String> = interrupted(&args);
        all.extend(extra.iter().map(|s| s.to_string()));
        let quoted: Vec<String> = all.iter().map(|a| format!("'{a}'")).collect();
        let command = format!("timeout {}", quoted.join(" "));
        text(&Command::new("script").args(["-qec", &command, "/dev/null"]).output().unwrap().stdout)
    };
    let tty = shown(&[]);
    let first = tty.lines().next().unwrap_or_default();
    assert!(first.contains("INFO") && first.contains("sniffer daemon started"), "{tty}");
    assert!(serde_json::from_str::<serde_json::Value>(first.trim()).is_err(), "{tty}");
    let tty = shown(&["--log-format", "json"]);
    let first = tty.lines().next().unwrap_or_default();
    assert!(serde_json::from_str::<serde_json::Value>(first.trim()).is_ok(), "{tty}");
    // A bad value names itself.
    let out = piped(&["status", "--log-format", "xml"]);
    assert!(!out.status.success() && text(&out.stderr).contains("xml"), "{}", text(&out.stderr));
}

#[test]
fn db_import_draws_progress_on_a_terminal_only_and_escapes_what_it_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = testkit::fixtures::osv();
    // A mirror's archive with an entry named to retitle the terminal (OSC 0 … BEL) and ring.
    let zip = tmp.path().join("hostile.zip");
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('\\x1b]0;pwned\\x07\\x1b[2J.json', b'not json')\n";
    assert!(Command::new("python3").args(["-c", script]).arg(&zip).status().unwrap().success());

    let db = tmp.path().join("piped.db");
    let out = piped(&["db", "import", fixtures.to_str().unwrap(), zip.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let skipped = err.lines().find(|l| l.starts_with("skipped ")).unwrap_or_else(|| panic!("{err}"));
    assert!(skipped.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J.json"), "{skipped}");
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    // In a pipe, no bar: the summary and the skipped line, nothing else.
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(!err.contains('\r') && !err.contains("importing"), "{err:?}");

    let db = tmp.path().join("terminal.db");
    let shown =
        on_terminal(&["db", "import", fixtures.to_str().unwrap(), zip.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    assert!(shown.contains("importing") && shown.contains("records"), "{shown:?}");
    assert!(shown.contains("imported 2665"), "{shown:?}");
    assert!(!shown.contains("pwned\x07"), "{shown:?}");
}

#[test]
fn sbom_of_a_directory_shows_a_spinner_on_a_terminal_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = testkit::fixtures::bookworm_root();
    let (a, b) = (tmp.path().join("tty.json"), tmp.path().join("pipe.json"));
    let shown = on_terminal(&["sbom", "--dir", root.to_str().unwrap(), "-o", a.to_str().unwrap()]);
    assert!(shown.contains("scanning"), "{shown:?}");
    let out = piped(&["sbom", "--dir", root.to_str().unwrap(), "-o", b.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(out.status.success() && !err.contains("scanning") && !err.contains('\r'), "{err:?}");
    let packages = |p: &Path| -> usize {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["packages"].as_array().unwrap().len()
    };
    assert_eq!(packages(&a), packages(&b));
}
