//! The daemon's local API: one JSON request per connection, one JSON response, over a Unix
//! socket (newline terminated).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::kernel::KernelStats;
use crate::tracker::{ContainerSummary, FileRecord};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/sniffer/sniffer.sock";

/// A request to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Programs, rates, losses, watched containers.
    Status,
    /// Every watched container.
    Containers,
    /// The files of one container (by name or cgroup id).
    Files {
        /// Name or cgroup id.
        container: String,
    },
    /// Start watching a cgroup v2 directory under a name.
    Watch {
        /// The cgroup directory.
        cgroup: PathBuf,
        /// A name for it (the directory's name when absent).
        name: Option<String>,
    },
    /// Stop watching a container; what was learned is kept until the daemon stops.
    Unwatch {
        /// Name or cgroup id.
        container: String,
    },
    /// Flow events kept (the last thousand) numbered `after` or later.
    Events {
        /// The first sequence number wanted.
        #[serde(default)]
        after: u64,
    },
    /// Every flow event numbered `from` or later, kept ones first, then each new one as it
    /// happens: the connection stays open and each line is a `coordinator::bus::Followed`.
    Follow {
        /// The first sequence number wanted.
        #[serde(default)]
        from: u64,
    },
    /// End learning now: by container id or instance key.
    LearnStop {
        /// Container id or instance key.
        container: String,
    },
    /// The stored SBOM (and SBOM', if any) of an image digest, instance key or container id.
    Sbom {
        /// Image digest, instance key or container id.
        key: String,
    },
    /// The stored report of an image digest, instance key or container id.
    Report {
        /// Image digest, instance key or container id.
        key: String,
    },
}

/// The daemon's status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Daemon version.
    pub version: String,
    /// Programs attached, `program@category/tracepoint`.
    pub programs: Vec<String>,
    /// How the programs read an opened file (older daemons did not say).
    #[serde(default)]
    pub file_reads: Option<crate::kernel::FileReads>,
    /// The uprobes at vulnerable functions (older daemons did not say).
    #[serde(default)]
    pub probes: Option<crate::probes::ProbeStatus>,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Events received since start.
    pub events: u64,
    /// Events per second over the last ten seconds.
    pub events_per_s: f64,
    /// The kernel's counters (sent, lost per CPU, repeats dropped).
    pub kernel: KernelStats,
    /// Containers being watched now.
    pub watched: usize,
    /// The flow's counts, when the daemon runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<coordinator::flow::FlowStatus>,
}

/// A reply from the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(Status),
    /// Answer to [`Request::Containers`].
    Containers {
        /// The containers.
        containers: Vec<ContainerSummary>,
    },
    /// Answer to [`Request::Files`].
    Files {
        /// The container.
        container: ContainerSummary,
        /// Its files, by path.
        files: Vec<FileRecord>,
    },
    /// Answer to [`Request::Watch`] and [`Request::Unwatch`].
    Container(ContainerSummary),
    /// Flow events.
    Events {
        /// Events after the requested one.
        events: Vec<coordinator::bus::Stamped>,
        /// The number the next event will get.
        next: u64,
    },
    /// A stored report.
    Report(Box<coordinator::model::Report>),
    /// A stored SBOM, with the instance's SBOM' when there is one.
    Sbom {
        /// The image SBOM.
        sbom: Box<sbom::Sbom>,
        /// The instance's SBOM'.
        #[serde(rename = "filtered")]
        runtime: Option<Box<sbom::index::RuntimeSbom>>,
    },
    /// Done.
    Ok {
        /// What happened.
        message: String,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// Follows the daemon's flow events from number `from`, calling `each` for every line
/// until the daemon goes or `each` says stop.
pub async fn follow(
    socket: &Path,
    from: u64,
    mut each: impl FnMut(coordinator::bus::Followed) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let stream = UnixStream::connect(socket).await.with_context(|| {
        format!("connecting to the sniffer daemon at {} (is `sniffer run` running?)", socket.display())
    })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(&Request::Follow { from })?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await.context("reading the daemon's events")? {
        if line.is_empty() {
            continue;
        }
        let item = match serde_json::from_str(&line) {
            Ok(item) => item,
            // An error reply (a daemon without the flow) instead of a stream.
            Err(_) => match serde_json::from_str::<Response>(&line) {
                Ok(Response::Error { message }) => anyhow::bail!("{message}"),
                _ => anyhow::bail!("malformed line from the daemon: {line:?}"),
            },
        };
        if !each(item)? {
            break;
        }
    }
    Ok(())
}

/// Sends one request and reads the response.
pub async fn call(socket: &Path, request: &Request) -> anyhow::Result<Response> {
    let stream = UnixStream::connect(socket).await.with_context(|| {
        format!("connecting to the sniffer daemon at {} (is `sniffer run` running?)", socket.display())
    })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.shutdown().await?;
    let mut reply = String::new();
    BufReader::new(read).read_line(&mut reply).await.context("reading the daemon's reply")?;
    serde_json::from_str(&reply).with_context(|| format!("malformed reply from the daemon: {reply:?}"))
}
