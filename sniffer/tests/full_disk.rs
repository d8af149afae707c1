//! A full disk under the state directory: the daemon says so naming the file, keeps
//! sniffing and answering, loses nothing stored before, and catches up once there is room:
//! the container learned meanwhile gets its image SBOM and SBOM' stored.

use std::process::Command;
use std::time::Duration;

use testkit::{Containerd, daemon_args, receiver, wait_for};

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_state_disk_loses_nothing_and_the_daemon_catches_up() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    assert!(
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"]).arg(&state).status().unwrap().success()
    );
    let _tmpfs = Tmpfs(state.clone());
    let ctd = Containerd::start(&dir.join("containerd"));
    let (url, _received) = receiver(0);
    let d = daemon_args(dir, &ctd.socket, &url, &testkit::free_addr(), "daemon.log", 10, &["--persist-every", "0.5"]);

    // Before: one container learned and stored in full.
    let c0 = ctd.run("before", "import requests, time; time.sleep(600)");
    d.wait_event("c0's SBOM'", |e| e["event"] == "prime_stored" && e["instance"] == c0.as_str());

    // The disk fills up; a container starts and is learned meanwhile.
    let filler = state.join("filler");
    let fill = format!(
        "f = open('{}', 'wb')\ntry:\n    while True: f.write(b'x' * 65536); f.flush()\nexcept OSError: pass\n",
        filler.display()
    );
    assert!(Command::new("python3").arg("-c").arg(&fill).status().unwrap().success());
    let c1 = ctd.run("during", "import requests, time; time.sleep(600)");
    let log = dir.join("daemon.log");
    wait_for("the daemon to say the disk is full", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).unwrap().contains("No space left")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(state.join("state.db").to_str().unwrap()), "the error names the file: {text}");
    let containers = d.cli(&["containers", "--json"]);
    assert!(containers.status.success());
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&containers.stdout).unwrap();
    assert!(
        listed.iter().any(|c| c["name"] == c1.as_str() && c["files"].as_u64().unwrap() > 0),
        "still sniffing: {listed:?}"
    );
    assert!(d.cli(&["vulns", &c0]).status.success(), "what was stored before is still served");

    // Room again: the daemon catches up by itself.
    std::fs::remove_file(&filler).unwrap();
    let events = d.wait_event("c1's SBOM'", |e| e["event"] == "prime_stored" && e["instance"] == c1.as_str());
    assert!(events.iter().any(|e| e["event"] == "sbom_stored"));
    let report = d.report(&c1);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["package"]["name"] == "requests" && f["relevant"] == true),
        "{report}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("works again") || text.contains("reopened"), "{text}");
    let errors = text.lines().filter(|l| l.contains("storing flow state failed")).count();
    assert!(errors <= 3, "said {errors} times: {text}");
}
