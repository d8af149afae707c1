//! `sniffer`: the node daemon and its CLI, one binary.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use sbom::text::clean;
use sniffer::api::{self, Request, Response};
use sniffer::kernel;
use sniffer::tracker::{ContainerSummary, FileRecord};

/// Runtime-aware vulnerability agent: which files each container really opens and executes.
#[derive(Parser)]
#[command(name = "sniffer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct KernelArgs {
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, default_value_t = 8 << 20, value_parser = parse_ring_size)]
    ring_bytes: u32,
    /// Entries of the in-kernel LRU of paths already sent.
    #[arg(long, default_value_t = 65536)]
    seen_entries: u32,
}

impl KernelArgs {
    fn options(&self) -> kernel::Options {
        kernel::Options { ring_bytes: self.ring_bytes, seen_entries: self.seen_entries, ..Default::default() }
    }
}

fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two of at least 4096"));
    }
    Ok(n)
}

#[derive(Args)]
struct ClientArgs {
    /// The daemon's API socket.
    #[arg(long, default_value = api::DEFAULT_SOCKET, env = "SNIFFER_SOCKET")]
    socket: PathBuf,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one image's SBOM may cost (past a budget: a warning naming the file and the budget,
/// and the SBOM says it is incomplete).
#[derive(Args, Clone, Copy)]
struct BudgetArgs {
    /// Most packages listed per image.
    #[arg(long, default_value_t = sbom::Budgets::default().packages)]
    max_packages: usize,
    /// Most files owned, all packages of an image together.
    #[arg(long, default_value_t = sbom::Budgets::default().files)]
    max_files: usize,
    /// Most bytes one Java archive, with what it holds, may have read and inflated.
    #[arg(long, default_value_t = sbom::Budgets::default().archive_work)]
    max_archive_bytes: u64,
    /// Most archives read inside one Java archive.
    #[arg(long, default_value_t = sbom::Budgets::default().nested_archives)]
    max_nested_archives: usize,
}

impl BudgetArgs {
    fn budgets(&self) -> sbom::Budgets {
        sbom::Budgets {
            packages: self.max_packages,
            files: self.max_files,
            archive_work: self.max_archive_bytes,
            nested_archives: self.max_nested_archives,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SbomFormat {
    /// Native JSON: every package with its files.
    Json,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

#[derive(Subcommand)]
enum Command {
    /// Run CMD in a fresh cgroup and print each distinct file it opened or executed.
    Trace {
        /// One JSON object per line (path, kind, pid, comm, truncated).
        #[arg(long)]
        json: bool,
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
        #[arg(long, requires = "id")]
        filtered: bool,
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
        #[arg(long)]
        filtered: Option<PathBuf>,
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
enum LearnCommand {
    /// End learning of a container now: SBOM' is built from what it used so far.
    Stop {
        /// Container id or instance key.
        container: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args, Clone)]
struct FlowArgs {
    /// Run only the sniffer: no discovery, SBOMs, scans or submission.
    #[arg(long)]
    no_flow: bool,
    /// Serve Prometheus metrics at this address (e.g. 0.0.0.0:9464).
    #[arg(long, env = "SNIFFER_METRICS")]
    metrics: Option<std::net::SocketAddr>,
    /// containerd's API socket.
    #[arg(long, default_value = sniffer::discovery::DEFAULT_SOCKET, env = "SNIFFER_CONTAINERD")]
    containerd: PathBuf,
    /// Without containerd: discover containers as the child cgroups of this directory (e.g.
    /// /sys/fs/cgroup/unified/kubepods), polled every second.
    #[arg(long, env = "SNIFFER_CGROUP_PARENT")]
    cgroup_parent: Option<PathBuf>,
    /// State directory (SBOMs, reports, learning state, outbox).
    #[arg(long, default_value = "/var/lib/sniffer", env = "SNIFFER_STATE_DIR")]
    state_dir: PathBuf,
    /// The vulnerability database.
    #[arg(long = "db", default_value = vuln::DEFAULT_DB, env = "SNIFFER_DB")]
    db: PathBuf,
    /// How long each instance is learned, in seconds.
    #[arg(long, default_value_t = 600)]
    learning_window: u64,
    /// How often what was learned is written to the state directory, in seconds (only
    /// instances that learned something new are written).
    #[arg(long, default_value_t = 2.0)]
    persist_every: f64,
    /// Where to POST reports (the backend); none keeps them on the node.
    #[arg(long, env = "SNIFFER_BACKEND_URL")]
    backend_url: Option<String>,
    /// A file holding the backend's bearer token.
    #[arg(long, env = "SNIFFER_BACKEND_TOKEN_FILE")]
    backend_token_file: Option<PathBuf>,
    /// Where image SBOMs are read from: `layers`, a read-only view of the image's own
    /// layers from containerd (no registry pull), or `root`, the first container's root.
    #[arg(long, value_enum, default_value = "layers")]
    image_source: sniffer::daemon::ImageSource,
    #[command(flatten)]
    budgets: BudgetArgs,
    /// Longest an image's SBOM may take, in seconds; past it, it is abandoned with a warning
    /// and the next container of the image tries again.
    #[arg(long, default_value_t = 300.0)]
    sbom_timeout: f64,
    /// Allow a plain-http backend URL to a host other than this one (reports and the token
    /// then cross the network unencrypted).
    #[arg(long)]
    allow_plain_http: bool,
    /// Days after which an unsent report goes to the dead-letter list.
    #[arg(long, default_value_t = 7.0)]
    dead_after_days: f64,
}

impl FlowArgs {
    /// The flow's options; the backend URL is checked (https, or http to loopback unless
    /// --allow-plain-http) and the token given in the environment, if any, is `token`.
    fn options(&self, token: Option<String>) -> anyhow::Result<Option<sniffer::daemon::FlowOptions>> {
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
        Ok(Some(sniffer::daemon::FlowOptions {
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
struct DbArg {
    /// The vulnerability database file.
    #[arg(long = "db", default_value = vuln::DEFAULT_DB, env = "SNIFFER_DB")]
    path: PathBuf,
}

#[derive(Subcommand)]
enum DbCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread starts: the daemon's heap settings, and the token taken out of
    // the environment (and wiped from the memory /proc/PID/environ shows), so that nothing
    // that can read the agent's environment, an image included, finds it there.
    let mut env_token = None;
    if matches!(cli.command, Command::Run { .. }) {
        sniffer::daemon::limit_heap_arenas();
        env_token = sniffer::secrets::take_env(sniffer::secrets::TOKEN_VAR);
    }
    if !matches!(cli.command, Command::Run { .. }) {
        // A CLI whose output is cut (`| head`) should stop quietly, as other tools do. The
        // daemon keeps Rust's default: a client hanging up must not kill it.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sniffer: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, env_token)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sniffer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, env_token: Option<String>) -> anyhow::Result<u8> {
    match command {
        Command::Trace { json, output, kernel, command } => {
            let result = sniffer::trace::run(sniffer::trace::TraceOptions {
                command,
                json,
                output,
                kernel: kernel.options(),
            })
            .await?;
            Ok(result.exit_code.clamp(0, 255) as u8)
        }
        Command::Run { socket, kernel, flow, max_paths_per_container } => {
            let options =
                sniffer::daemon::DaemonOptions {
                    socket,
                    kernel: kernel.options(),
                    limits: sniffer::tracker::Limits { max_paths: max_paths_per_container, ..Default::default() },
                    flow: flow.options(env_token)?,
                    metrics: flow.metrics,
                };
            sniffer::daemon::run(options).await?;
            Ok(0)
        }
        Command::Events { follow, client } => events(&client, follow).await,
        Command::Learn { command: LearnCommand::Stop { container, client } } => show(&client, Request::LearnStop { container }).await,
        Command::Vulns { key, relevant, client } => {
            let response = api::call(&client.socket, &Request::Report { key }).await?;
            let report = match response {
                Response::Report(r) => r,
                Response::Error { message } => bail!("{message}"),
                other => bail!("unexpected reply {other:?}"),
            };
            if let Some(why) = &report.not_scanned {
                eprintln!(
                    "sniffer: {} was NOT scanned ({}): no finding here means nothing. Run `sniffer db update` (or `sniffer db import PATH` offline); reports made after that are scanned.",
                    clean(&report.key),
                    clean(why)
                );
            }
            let mut scan = report.scan.clone();
            if relevant {
                scan.findings.retain(|f| f.relevant != Some(false));
            }
            if client.json {
                println!("{}", serde_json::to_string_pretty(&scan)?);
            } else {
                println!("{} {} ({}), {} packages", report.kind_name(), clean(&report.key), clean(&report.image), report.packages);
                print!("{}", vuln::report::render(&scan, &vuln::report::Context {
                    sbom: report.key.clone(),
                    filtered: None,
                    db: String::new(),
                    db_updated_at: None,
                }, vuln::report::Format::Table));
            }
            Ok(if report.not_scanned.is_some() { 4 } else { 0 })
        }
        Command::Status(client) => show(&client, Request::Status).await,
        Command::Containers(client) => show(&client, Request::Containers).await,
        Command::Files { container, client } => show(&client, Request::Files { container }).await,
        Command::Watch { cgroup, name, client } => {
            let cgroup = std::fs::canonicalize(&cgroup).unwrap_or(cgroup);
            show(&client, Request::Watch { cgroup, name }).await
        }
        Command::Unwatch { container, client } => show(&client, Request::Unwatch { container }).await,
        Command::Sbom { id, filtered: want_filtered, dir, socket, format, output, opened, budgets } => {
            let (sbom, filtered) = match (id, dir) {
                (Some(key), _) => stored_sbom(&socket, &key, want_filtered).await?,
                (None, Some(dir)) => computed_sbom(&dir, opened.as_deref(), budgets.budgets())?,
                (None, None) => bail!("give a container id or --dir ROOT"),
            };
            let json = match (format, &filtered) {

                (SbomFormat::Json, None) => serde_json::to_vec_pretty(&sbom)?,
                (SbomFormat::Json, Some(f)) => serde_json::to_vec_pretty(f)?,
                (SbomFormat::Cyclonedx, None) => serde_json::to_vec_pretty(&sbom::formats::cyclonedx(&sbom))?,
                (SbomFormat::Cyclonedx, Some(f)) => serde_json::to_vec_pretty(&sbom::formats::cyclonedx_filtered(&sbom, f))?,
                (SbomFormat::Spdx, None) => serde_json::to_vec_pretty(&sbom::formats::spdx(&sbom))?,
                (SbomFormat::Spdx, Some(f)) => serde_json::to_vec_pretty(&sbom::formats::spdx_filtered(&sbom, f))?,
            };
            if let Some(f) = &filtered {
                eprintln!("SBOM': {} of {} packages used; {} opened paths owned by none", f.packages.len(), sbom.packages.len(), f.unmatched);
            }
            match &output {
                Some(path) => std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?,
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            sbom_summary(&sbom);
            Ok(0)
        }
        Command::Scan { sbom, filtered, db, format, fail_on, output } => scan(sbom, filtered, db, format, fail_on, output),
        Command::Db { command } => db_command(command),
    }
}

fn scan(
    sbom_path: PathBuf,
    filtered: Option<PathBuf>,
    db: DbArg,
    format: vuln::report::Format,
    fail_on: Option<vuln::severity::Rating>,
    output: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let input = vuln::input::read(&sbom_path)?;
    let relevance = match &filtered {
        Some(path) => {
            let f = vuln::input::read(path)?;
            Some(f.relevance.with_context(|| format!("{}: not an SBOM' (no package carries evidence of use)", path.display()))?)
        }
        None => input.relevance.clone(),
    };
    let database = vuln::Db::open(&db.path)?;
    let mut report = vuln::scan(&database, &input.subjects, relevance.as_ref())?;
    report.warnings.splice(0..0, input.warnings);
    let ctx = vuln::report::Context {
        sbom: sbom_path.display().to_string(),
        filtered: filtered.as_ref().map(|p| p.display().to_string()),
        db: db.path.display().to_string(),
        db_updated_at: database.updated_at().ok().flatten(),
    };
    let text = vuln::report::render(&report, &ctx, format);
    match &output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    let failing = fail_on.map(|threshold| {
        report.findings.iter().filter(|f| f.relevant != Some(false) && f.severity.rating >= threshold).count()
    });
    match failing {
        Some(n) if n > 0 => {
            eprintln!("sniffer: {n} findings at or above {}", fail_on.map(|r| r.as_str()).unwrap_or_default());
            Ok(3)
        }
        _ => Ok(0),
    }
}

fn db_command(command: DbCommand) -> anyhow::Result<u8> {
    match command {
        DbCommand::Import { paths, db } => {
            if let Some(dir) = db.path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut writer = vuln::Writer::open(&db.path)?;
            let mut report = vuln::ImportReport::default();
            for p in &paths {
                let mut this = vuln::ImportReport::default();
                vuln::import::import_path(&mut writer, p, &mut this)?;
                for eco in &this.ecosystems {
                    let location = p.display().to_string();
                    let info = vuln::store::SourceInfo { location, imported_at: vuln::store::now(), ..Default::default() };
                    writer.set_source(eco, info)?;
                }
                report.imported += this.imported;
                report.unchanged += this.unchanged;
                report.withdrawn += this.withdrawn;
                report.skipped.extend(this.skipped);
            }
            writer.commit()?;
            eprintln!(
                "{}: imported {}, unchanged {}, withdrawn {}, skipped {}",
                db.path.display(),
                report.imported,
                report.unchanged,
                report.withdrawn,
                report.skipped.len()
            );
            for s in &report.skipped {
                eprintln!("skipped {}: {}", s.source, s.reason);
            }
            Ok(0)
        }
        DbCommand::Update { mirror, ecosystems, timeout, db } => {
            let report = vuln::update::update(&vuln::update::UpdateOptions {
                mirror,
                ecosystems,
                db: db.path.clone(),
                timeout: std::time::Duration::from_secs(timeout),
            })?;
            for (eco, fetch) in &report.ecosystems {
                match fetch {
                    vuln::update::Fetch::Unchanged => eprintln!("{eco}: unchanged"),
                    vuln::update::Fetch::Updated { bytes } => eprintln!("{eco}: fetched {bytes} bytes"),
                }
            }
            eprintln!(
                "{}: {} (imported {}, unchanged {}, skipped {})",
                db.path.display(),
                if report.swapped { "updated" } else { "already current" },
                report.import.imported,
                report.import.unchanged,
                report.import.skipped.len()
            );
            for s in &report.import.skipped {
                eprintln!("skipped {}: {}", s.source, s.reason);
            }
            Ok(0)
        }
        DbCommand::Status { db, json } => {
            let status = vuln::Db::open(&db.path)?.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(0);
            }
            let mut rows: Vec<Vec<String>> = status
                .ecosystems
                .iter()
                .map(|(eco, n)| {
                    let src = status.sources.get(eco.split(':').next().unwrap_or(eco)).or_else(|| status.sources.get(eco));
                    vec![eco.clone(), n.to_string(), src.map(|s| s.imported_at.clone()).unwrap_or_default()]
                })
                .collect();
            rows.push(vec!["total".into(), (status.records - status.withdrawn).to_string(), String::new()]);
            println!("{}", status.path.display());
            println!("updated {}; {} withdrawn records kept out of results", status.updated_at.as_deref().unwrap_or("never"), status.withdrawn);
            println!();
            print_table(&["ECOSYSTEM", "RECORDS", "IMPORTED"], rows);
            Ok(0)
        }
    }
}

/// The SBOM of a root, and SBOM' from a list of opened paths when given.
fn computed_sbom(
    dir: &std::path::Path,
    opened: Option<&std::path::Path>,
    budgets: sbom::Budgets,
) -> anyhow::Result<(sbom::Sbom, Option<sbom::index::FilteredSbom>)> {
    let sbom = scan_showing_progress(dir, budgets)?;
    let filtered = match opened {
        Some(list) => {
            let paths = read_opened(list)?;
            let root = sbom::rootfs::Root::open(dir).with_context(|| format!("opening {}", dir.display()))?;
            let index = sbom::index::FileIndex::build(&root, &sbom);
            Some(sbom::index::filter(&sbom, &index, paths.iter().map(PathBuf::as_path), true))
        }
        None => None,
    };
    Ok((sbom, filtered))
}

/// Scans a root; on a terminal, a line on standard error says how far it has got.
fn scan_showing_progress(dir: &std::path::Path, budgets: sbom::Budgets) -> anyhow::Result<sbom::Sbom> {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() {
        return Ok(sbom::scan_within(dir, budgets, None)?);
    }
    let started = std::time::Instant::now();
    let mut last = started;
    let mut shown = false;
    let sbom = sbom::scan_with_progress(dir, budgets, &mut |p| {
        // Quiet for small roots; then at most ten updates a second.
        if started.elapsed() < std::time::Duration::from_millis(300) || last.elapsed() < std::time::Duration::from_millis(100) {
            return;
        }
        last = std::time::Instant::now();
        shown = true;
        eprint!("\rscanning {}: {} entries, {} packages", dir.display(), p.entries, p.packages);
        let _ = std::io::stderr().flush();
    });
    if shown {
        eprint!("\r\x1b[2K");
    }
    Ok(sbom?)
}

/// The SBOM (and SBOM', if asked) the daemon stored for a container, instance or image.
async fn stored_sbom(socket: &std::path::Path, key: &str, filtered: bool) -> anyhow::Result<(sbom::Sbom, Option<sbom::index::FilteredSbom>)> {
    match api::call(socket, &Request::Sbom { key: key.to_string() }).await? {
        Response::Sbom { sbom, filtered: prime } => {
            let prime = match (filtered, prime) {
                (true, None) => bail!("no SBOM' for {key:?} yet (still learning, or not an instance)"),
                (true, Some(p)) => Some(*p),
                (false, _) => None,
            };
            Ok((*sbom, prime))
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

/// Reads a list of opened paths: plain lines, `sniffer trace` lines (`open /p`), or its
/// JSON lines (`{"path": ...}`).
fn read_opened(list: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let path = if line.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", list.display(), n + 1))?;
            v["path"].as_str().map(str::to_string)
        } else {
            let bare = line.strip_prefix("open ").or_else(|| line.strip_prefix("exec ")).unwrap_or(line);
            Some(bare.to_string())
        };
        match path {
            Some(p) if p.starts_with('/') => out.push(PathBuf::from(p)),
            _ => bail!("{}:{}: not an absolute path: {line:?}", list.display(), n + 1),
        }
    }
    Ok(out)
}

/// Packages by kind, and warnings, on standard error (standard output may hold the SBOM).
fn sbom_summary(sbom: &sbom::Sbom) {
    let mut by_kind = std::collections::BTreeMap::new();
    for p in &sbom.packages {
        *by_kind.entry(p.kind.as_str()).or_insert(0usize) += 1;
    }
    let distro = sbom.distro.as_ref().and_then(|d| d.pretty_name.clone()).unwrap_or_else(|| "unknown".into());
    eprintln!("{}: {}", clean(&sbom.root.display().to_string()), clean(&distro));
    for (kind, n) in &by_kind {
        eprintln!("  {kind:<8} {n:>6}");
    }
    eprintln!("  {:<8} {:>6}", "total", sbom.packages.len());
    for w in &sbom.warnings {
        eprintln!("warning: {} {}: {}", w.cataloger, clean(&sbom::path_text::encode(&w.path)), clean(&w.message));
    }
}

/// Prints flow events, one JSON object per line with --json, else one line each; with
/// `follow`, every new one as it happens, and a warning on standard error when the daemon
/// says this client fell behind and missed some.
async fn events(client: &ClientArgs, follow: bool) -> anyhow::Result<u8> {
    let print = |e: &coordinator::bus::Stamped| -> anyhow::Result<()> {
        if client.json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            let v = serde_json::to_value(&e.event)?;
            let name = v["event"].as_str().unwrap_or_default().to_string();
            let rest: Vec<String> = v
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "event")
                .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect();
            println!("{:>6} {}  {name:<16} {}", e.seq, e.at, clean(&rest.join(" ")));
        }
        Ok(())
    };
    if follow {
        api::follow(&client.socket, 0, |item| {
            match item {
                coordinator::bus::Followed::Event(e) => print(&e)?,
                coordinator::bus::Followed::Missed { count } => {
                    eprintln!("sniffer: fell behind the daemon: {count} events missed");
                }
            }
            Ok(true)
        })
        .await?;
        return Ok(0);
    }
    match api::call(&client.socket, &Request::Events { after: 0 }).await? {
        Response::Events { events, .. } => {
            for e in &events {
                print(e)?;
            }
            Ok(0)
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

async fn show(client: &ClientArgs, request: Request) -> anyhow::Result<u8> {
    let response = api::call(&client.socket, &request).await?;
    if let Response::Error { message } = &response {
        bail!("{message}");
    }
    if client.json {
        let value = match &response {
            Response::Status(status) => serde_json::to_value(status)?,
            Response::Containers { containers } => serde_json::to_value(containers)?,
            Response::Files { container, files } => serde_json::json!({ "container": container, "files": files }),
            Response::Container(c) => serde_json::to_value(c)?,
            Response::Events { events, .. } => serde_json::to_value(events)?,
            Response::Report(r) => serde_json::to_value(r)?,
            Response::Sbom { sbom, .. } => serde_json::to_value(sbom)?,
            Response::Ok { message } => serde_json::json!({ "ok": message }),
            Response::Error { .. } => unreachable!("handled above"),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    match response {
        Response::Status(s) => {
            let lost_per_cpu: Vec<String> = s.kernel.lost_per_cpu.iter().map(u64::to_string).collect();
            print_table(
                &["", ""],
                vec![
                    vec!["version".into(), s.version],
                    vec!["uptime".into(), format!("{} s", s.uptime_s)],
                    vec!["programs".into(), s.programs.join(", ")],
                    vec!["opened files read by".into(), s.file_reads.map_or("-".into(), |r| r.to_string())],
                    vec!["events".into(), s.events.to_string()],
                    vec!["events/s".into(), format!("{:.1}", s.events_per_s)],
                    vec!["repeats dropped in kernel".into(), s.kernel.repeats.to_string()],
                    vec!["lost events".into(), format!("{} (per CPU: {})", s.kernel.lost, lost_per_cpu.join(" "))],
                    vec!["watched containers".into(), s.watched.to_string()],
                ],
            );
            if let Some(f) = &s.flow {
                println!();
                print_table(
                    &["", ""],
                    vec![
                        vec!["image SBOMs".into(), f.sboms.to_string()],
                        vec!["SBOM's".into(), f.primes.to_string()],
                        vec!["learning now".into(), f.learning.to_string()],
                        vec!["reports stored".into(), f.reports.to_string()],
                        vec!["reports sent".into(), f.sent.to_string()],
                        vec!["outbox".into(), f.outbox.to_string()],
                        vec!["dead letters".into(), if f.dead_letters.is_empty() { "0".into() } else { f.dead_letters.join(", ") }],
                    ],
                );
            }
        }
        Response::Containers { containers } => containers_table(&containers),
        Response::Files { container, files } => {
            containers_table(std::slice::from_ref(&container));
            println!();
            files_table(&files);
        }
        Response::Container(c) => containers_table(&[c]),
        Response::Ok { message } => println!("{message}"),
        Response::Events { .. } | Response::Report(_) | Response::Sbom { .. } => println!("{}", serde_json::to_string_pretty(&response_value(&response))?),
        Response::Error { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

fn containers_table(containers: &[ContainerSummary]) {
    let rows = containers
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.cgroup_id.to_string(),
                if c.watching { "yes" } else { "no" }.into(),
                c.files.to_string(),
                c.events.to_string(),
                c.lost.to_string(),
                if c.complete { "yes" } else { "NO" }.into(),
            ]
        })
        .collect();
    print_table(&["CONTAINER", "CGROUP", "WATCHING", "FILES", "EVENTS", "LOST", "COMPLETE"], rows);
}

fn files_table(files: &[FileRecord]) {
    let rows = files
        .iter()
        .map(|f| {
            let kind = match (f.opened, f.executed) {
                (true, true) => "open+exec",
                (false, true) => "exec",
                _ => "open",
            };
            vec![kind.into(), f.path.clone(), f.exe.clone(), f.events.to_string()]
        })
        .collect();
    print_table(&["KIND", "PATH", "BY", "EVENTS"], rows);
}

fn response_value(r: &Response) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

/// Prints rows in columns as wide as their widest cell, under a header; every cell is cleaned of control characters (file names,
/// package names and messages come from images).
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.iter().map(|c| clean(c).into_owned()).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    if header.iter().any(|h| !h.is_empty()) {
        line(header.to_vec());
    }
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
