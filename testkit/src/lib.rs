//! What the integration tests and benchmarks of every crate share, so that each exists once:
//! where the fixtures are ([`fixtures`]), a real containerd with a temporary root
//! ([`containerd`]), the daemon under test ([`daemon`]), a loopback HTTP backend ([`http`])
//! hostile archives ([`archive`]) and the Helm chart rendered by a real helm ([`chart`]). Test code: it panics with a message on any failure.

pub mod archive;
pub mod chart;
pub mod containerd;
pub mod daemon;
pub mod fixtures;
pub mod golang;
pub mod http;
pub mod java;
pub mod uring;

use std::time::{Duration, Instant};

pub use containerd::{Containerd, IMAGE};
pub use daemon::{Daemon, daemon, daemon_args, daemon_with, prepare, sniffer};
pub use http::{Received, free_addr, receiver, receiver_when};

/// Polls `ok` every 200 ms until it holds; panics naming `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
