//! A real containerd (with runc) for tests: its own root, state and socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::{fixtures, wait_for};

/// The fixture image, as `cargo xtask setup` names it in its OCI archive.
pub const IMAGE: &str = "docker.io/library/bookworm-fixture:1";

/// A containerd of its own (root, state and socket under a test directory), with the
/// fixture image imported; dropping it removes its containers and stops it.
pub struct Containerd {
    /// The process.
    pub child: Child,
    /// Its socket.
    pub socket: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // runc's state outlives containerd: remove every container before stopping it.
        let ids = self.ctr(&["containers", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "9", id]);
            let _ = self.ctr(&["task", "delete", "-f", id]);
            let _ = self.ctr(&["containers", "rm", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Containerd {
    /// Starts one under `dir` and imports the fixture image.
    pub fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{1}\"\n",
                dir.display(),
                socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd { child, socket };
        wait_for("containerd", Duration::from_secs(20), || c.ctr(&["version"]).status.success());
        let image = fixtures::bookworm_oci();
        let out = c.ctr(&["images", "import", image.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        c
    }

    /// Runs `ctr` against it.
    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr").arg("-a").arg(&self.socket).args(args).output().unwrap()
    }

    /// Runs `python3 -c script` as container `id` (made unique per test run, since runc's
    /// state is host-wide).
    pub fn run(&self, id: &str, script: &str) -> String {
        self.run_with(id, &[], script)
    }

    /// The host pid of container `id`'s task.
    pub fn pid(&self, id: &str) -> Option<u32> {
        let out = self.ctr(&["task", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    /// Waits until `path` exists inside container `id`'s root.
    pub fn wait_file(&self, id: &str, path: &str) {
        wait_for(&format!("{path} in {id}"), Duration::from_secs(60), || {
            self.pid(id).is_some_and(|pid| Path::new(&format!("/proc/{pid}/root{path}")).exists())
        });
    }

    /// [`Containerd::run`] with extra `ctr run` flags.
    pub fn run_with(&self, id: &str, flags: &[&str], script: &str) -> String {
        let id = format!("{id}-{}", std::process::id());
        let out = self.ctr(&[&["run", "-d"][..], flags, &[IMAGE, &id, "python3", "-c", script]].concat());
        assert!(out.status.success(), "ctr run {id}: {}", String::from_utf8_lossy(&out.stderr));
        id
    }
}
