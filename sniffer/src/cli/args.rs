//! The command line: every subcommand and its flags (clap derive).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sniffer::api;
use sniffer::kernel;

/// Runtime-aware vulnerability agent: which files each container really opens and executes.
#[derive(Parser)]
#[command(name = "sniffer", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Log lines as `text` (compact, for people) or `json` (one object per line, for log
    /// collectors). Default: text when standard error is a terminal, else json.
    #[arg(long, global = true, value_enum, env = "SNIFFER_LOG_FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// tracing-subscriber's compact lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Args, Clone)]
pub(crate) struct KernelArgs {
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, default_value_t = 8 << 20, value_parser = parse_ring_size)]
    pub(crate) ring_bytes: u32,
    /// Entries of the in-kernel LRU of paths already sent.
    #[arg(long, default_value_t = 65536)]
    pub(crate) seen_entries: u32,
    /// Most uprobes at vulnerable functions per binary (past it, the rest of its findings
    /// stay at file level, said in SBOM').
    #[arg(long, default_value_t = sniffer::probes::ProbeLimits::default().per_binary)]
    pub(crate) max_probes_per_binary: usize,
    /// Most uprobes at vulnerable functions on the node.
    #[arg(long, default_value_t = sniffer::probes::ProbeLimits::default().total)]
    pub(crate) max_probes: usize,
}

impl KernelArgs {
    pub(crate) fn options(&self) -> kernel::Options {
        kernel::Options {
            ring_bytes: self.ring_bytes,
            seen_entries: self.seen_entries,
            probes: sniffer::probes::ProbeLimits { per_binary: self.max_probes_per_binary, total: self.max_probes },
            ..Default::default()
        }
    }
}

pub(crate) fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two of at least 4096"));
    }
    Ok(n)
}

#[derive(Args)]
pub(crate) struct ClientArgs {
    /// The daemon's API socket.
    #[arg(long, default_value = api::DEFAULT_SOCKET, env = "SNIFFER_SOCKET")]
    pub(crate) socket: PathBuf,
    /// JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What one image's SBOM may cost (past a budget: a warning naming the file and the budget,
/// and the SBOM says it is incomplete).
#[derive(Args, Clone, Copy)]
pub(crate) struct BudgetArgs {
    /// Most packages listed per image.
    #[arg(long, default_value_t = sbom::Budgets::default().packages)]
    pub(crate) max_packages: usize,
    /// Most files owned, all packages of an image together.
    #[arg(long, default_value_t = sbom::Budgets::default().files)]
    pub(crate) max_files: usize,
    /// Most bytes one Java archive, with what it holds, may have read and inflated.
    #[arg(long, default_value_t = sbom::Budgets::default().archive_work)]
    pub(crate) max_archive_bytes: u64,
    /// Most archives read inside one Java archive.
    #[arg(long, default_value_t = sbom::Budgets::default().nested_archives)]
    pub(crate) max_nested_archives: usize,
}

impl BudgetArgs {
    pub(crate) fn budgets(&self) -> sbom::Budgets {
        sbom::Budgets {
            packages: self.max_packages,
            files: self.max_files,
            archive_work: self.max_archive_bytes,
            nested_archives: self.max_nested_archives,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum SbomFormat {
    /// Native JSON: every package with its files.
    Json,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run CMD in a fresh cgroup and print each distinct file it opened or executed.
    Trace {
        /// One JSON object per line (path, kind, pid, comm, truncated).
        #[arg(long)]
        json: bool,
        /// With a vulnerability database: probe the vulnerable Go functions the command's
        /// binary links, and list each one it calls (`call FUNCTION BINARY`); when the command
        /// is a JVM launcher, list the classes it defines (`class NAME CODE-SOURCE`).
        #[arg(long)]
        db: Option<PathBuf>,
        /// With --db: list the classes this JVM (its `libjvm.so`) defines too (for a command
        /// that starts one itself, inside a chroot, say).
        #[arg(long, requires = "db")]
        jvm: Vec<PathBuf>,
        /// Write the list here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        kernel: KernelArgs,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
    /// Start the node daemon: sniffer, container discovery and the New Workload flow.
    Run {
        /// Where to serve the local API.
        #[arg(long, default_value = api::DEFAULT_SOCKET, env = "SNIFFER_SOCKET")]
        socket: PathBuf,
        #[command(flatten)]
        kernel: KernelArgs,
        #[command(flatten)]
        flow: FlowArgs,
        /// Distinct files kept per container; past it, new paths are counted and dropped,
        /// and that container's SBOM' says it is incomplete.
        #[arg(long, default_value_t = sniffer::tracker::Limits::default().max_paths, env = "SNIFFER_MAX_PATHS_PER_CONTAINER")]
        max_paths_per_container: usize,
    },
    /// Flow events: containers found, SBOMs, learning, reports, submissions.
    Events {
        /// Keep printing new events.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Learning control.
    Learn {
        #[command(subcommand)]
        command: LearnCommand,
    },
    /// The stored vulnerability report of a container, instance or image digest.
    Vulns {
        /// Container id, instance key or image digest.
        key: String,
        /// Only findings in packages the workload used.
        #[arg(long)]
        relevant: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Programs attached, event rate, lost events, watched containers.
    Status(ClientArgs),
    /// Watched containers.
    Containers(ClientArgs),
    /// Files a container opened or executed.
    Files {
        /// Container name or cgroup id.
        container: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Watch a cgroup v2 directory (containers are discovered by the daemon in a later version).
    Watch {
        /// The cgroup directory, e.g. /sys/fs/cgroup/unified/mygroup.
        cgroup: PathBuf,
        /// A name to show it under.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Compute the SBOM of a root filesystem (a directory), with the files each package owns.
    Sbom {
        /// A container id, instance key or image digest: its stored SBOM, from the daemon.
        #[arg(required_unless_present = "dir", conflicts_with_all = ["dir", "opened"])]
        id: Option<String>,
        /// With ID: the stored SBOM' of that container or instance instead.
        #[arg(long, visible_alias = "filtered", requires = "id")]
        runtime: bool,
        /// A root filesystem to compute the SBOM of.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The daemon's API socket (with ID).
        #[arg(long, default_value = api::DEFAULT_SOCKET, env = "SNIFFER_SOCKET")]
        socket: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: SbomFormat,
        /// Write the SBOM here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Paths the workload opened (one per line, or `sniffer trace` output, plain or
        /// --json): write SBOM', the packages owning them, with that evidence.
        #[arg(long)]
        opened: Option<PathBuf>,
        #[command(flatten)]
        budgets: BudgetArgs,
    },
    /// Scan an SBOM (ours, CycloneDX or SPDX JSON) against the offline vulnerability database.
    Scan {
        /// The SBOM.
        #[arg(long)]
        sbom: PathBuf,
        /// SBOM' (packages the workload used): findings outside it are marked not relevant.
        #[arg(long, visible_alias = "filtered")]
        runtime: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
        /// Output format: table, json, cyclonedx-vex, openvex, sarif.
        #[arg(long, default_value = "table")]
        format: vuln::report::Format,
        /// Exit with status 3 when a finding is at least this severe (low, medium, high,
        /// critical); with SBOM', findings it shows never ran do not count.
        #[arg(long)]
        fail_on: Option<vuln::severity::Rating>,
        /// Write the report here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The root filesystem the SBOM (sniffer's own) was made of: its Go binaries' function
        /// tables are read (inside it, as hostile) to say which vulnerable functions each
        /// links; a finding none of whose vulnerable symbols is linked is `not_present`.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// The offline vulnerability database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Stop watching a container (what it used stays listed).
    Unwatch {
        /// Container name or cgroup id.
        container: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum LearnCommand {
    /// End learning of a container now: SBOM' is built from what it used so far.
    Stop {
        /// Container id or instance key.
        container: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args, Clone)]
pub(crate) struct FlowArgs {
    /// Run only the sniffer: no discovery, SBOMs, scans or submission.
    #[arg(long)]
    pub(crate) no_flow: bool,
    /// Serve Prometheus metrics at this address (e.g. 0.0.0.0:9464).
    #[arg(long, env = "SNIFFER_METRICS")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// containerd's API socket.
    #[arg(long, default_value = sniffer::discovery::DEFAULT_SOCKET, env = "SNIFFER_CONTAINERD")]
    pub(crate) containerd: PathBuf,
    /// Without containerd: discover containers as the child cgroups of this directory (e.g.
    /// /sys/fs/cgroup/unified/kubepods), polled every second.
    #[arg(long, env = "SNIFFER_CGROUP_PARENT")]
    pub(crate) cgroup_parent: Option<PathBuf>,
    /// State directory (SBOMs, reports, learning state, outbox).
    #[arg(long, default_value = "/var/lib/sniffer", env = "SNIFFER_STATE_DIR")]
    pub(crate) state_dir: PathBuf,
    /// The vulnerability database.
    #[arg(long = "db", default_value = vuln::DEFAULT_DB, env = "SNIFFER_DB")]
    pub(crate) db: PathBuf,
    /// How long each instance is learned, in seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) learning_window: u64,
    /// How often what was learned is written to the state directory, in seconds (only
    /// instances that learned something new are written).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) persist_every: f64,
    /// Where to POST reports (the backend); none keeps them on the node.
    #[arg(long, env = "SNIFFER_BACKEND_URL")]
    pub(crate) backend_url: Option<String>,
    /// A file holding the backend's bearer token.
    #[arg(long, env = "SNIFFER_BACKEND_TOKEN_FILE")]
    pub(crate) backend_token_file: Option<PathBuf>,
    /// Where image SBOMs are read from: `layers`, a read-only view of the image's own
    /// layers from containerd (no registry pull), or `root`, the first container's root.
    #[arg(long, value_enum, default_value = "layers")]
    pub(crate) image_source: sniffer::daemon::ImageSource,
    #[command(flatten)]
    pub(crate) budgets: BudgetArgs,
    /// Longest an image's SBOM may take, in seconds; past it, it is abandoned with a warning
    /// and the next container of the image tries again.
    #[arg(long, default_value_t = 300.0)]
    pub(crate) sbom_timeout: f64,
    /// Allow a plain-http backend URL to a host other than this one (reports and the token
    /// then cross the network unencrypted).
    #[arg(long)]
    pub(crate) allow_plain_http: bool,
    /// Days after which an unsent report goes to the dead-letter list.
    #[arg(long, default_value_t = 7.0)]
    pub(crate) dead_after_days: f64,
    /// Cluster mode: workloads named from this node's pods, results as `sniffer.dev` custom
    /// resources, one SBOM per image cluster-wide. The default when running in a pod
    /// (`KUBERNETES_SERVICE_HOST` set); `--standalone` turns it off.
    #[arg(long, conflicts_with = "standalone")]
    pub(crate) cluster: bool,
    /// Node-local only, even in a pod.
    #[arg(long)]
    pub(crate) standalone: bool,
    /// This node's name, as the API server knows it (in a DaemonSet: the downward API's
    /// `spec.nodeName`).
    #[arg(long, env = "NODE_NAME")]
    pub(crate) node_name: Option<String>,
    /// Seconds another node's reservation of an image SBOM is waited for before this node
    /// takes it over.
    #[arg(long, default_value_t = 600)]
    pub(crate) takeover_after: u64,
    /// Writes to the API server a second, on average (kubelet's `--kube-api-qps`).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) kube_api_qps: f64,
    /// Writes to the API server at once (kubelet's `--kube-api-burst`).
    #[arg(long, default_value_t = 10)]
    pub(crate) kube_api_burst: u32,
}

impl FlowArgs {
    /// The flow's options; the backend URL is checked (https, or http to loopback unless
    /// --allow-plain-http) and the token given in the environment, if any, is `token`.
    pub(crate) fn options(&self, token: Option<String>) -> anyhow::Result<Option<sniffer::daemon::FlowOptions>> {
        if self.no_flow {
            return Ok(None);
        }
        if let Some(url) = &self.backend_url {
            coordinator::submit::check_url(url, self.allow_plain_http)?;
        }
        let backend = self.backend_url.clone().map(|url| coordinator::submit::Backend {
            url,
            token_file: self.backend_token_file.clone(),
            token,
            timeout: std::time::Duration::from_secs(30),
        });
        let policy = coordinator::submit::Policy {
            dead_after: std::time::Duration::from_secs_f64(self.dead_after_days * 86400.0),
            ..Default::default()
        };
        let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        let cluster = match (self.cluster || (in_pod && !self.standalone), &self.node_name) {
            (false, _) => None,
            (true, Some(node)) if !node.is_empty() => Some(sniffer::daemon::ClusterOptions {
                node: node.clone(),
                takeover_after: std::time::Duration::from_secs(self.takeover_after),
                qps: self.kube_api_qps,
                burst: self.kube_api_burst,
            }),
            (true, _) => anyhow::bail!(
                "cluster mode needs this node's name: --node-name, or NODE_NAME from the downward API (spec.nodeName); --standalone runs without the cluster"
            ),
        };
        Ok(Some(sniffer::daemon::FlowOptions {
            cluster,
            containerd: self.containerd.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
            state_dir: self.state_dir.clone(),
            config: coordinator::flow::Config {
                vuln_db: self.db.clone(),
                learning_window: std::time::Duration::from_secs(self.learning_window),
                persist_every: std::time::Duration::from_secs_f64(self.persist_every.max(0.1)),
                sbom_timeout: std::time::Duration::from_secs_f64(self.sbom_timeout.max(0.001)),
                budgets: self.budgets.budgets(),
            },
            backend,
            policy,
            image_source: self.image_source,
        }))
    }
}

#[derive(Args)]
pub(crate) struct DbArg {
    /// The vulnerability database file.
    #[arg(long = "db", default_value = vuln::DEFAULT_DB, env = "SNIFFER_DB")]
    pub(crate) path: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum DbCommand {
    /// Import OSV records: a directory of JSON files, one JSON file, or an osv.dev all.zip.
    Import {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Fetch <MIRROR>/<Ecosystem>/all.zip for each ecosystem and swap in the new database
    /// only when every download and import succeeded.
    Update {
        /// Base URL of an osv.dev export mirror.
        #[arg(long, default_value = vuln::update::DEFAULT_MIRROR, env = "SNIFFER_OSV_MIRROR")]
        mirror: String,
        /// Ecosystems to fetch (repeat the flag).
        #[arg(long = "ecosystem", default_values = ["Debian", "Ubuntu", "Alpine", "PyPI", "npm", "Go", "Maven", "crates.io"])]
        ecosystems: Vec<String>,
        /// Per-request timeout in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Keep running, updating every this many seconds (a failed update is said and the
        /// database in use stays): how the Helm chart's updater container runs.
        #[arg(long)]
        every: Option<u64>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Ecosystems, record counts, age and sources.
    Status {
        #[command(flatten)]
        db: DbArg,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}
