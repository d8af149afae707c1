//! `sniffer`: the node daemon and its CLI, one binary.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
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
    /// Start the node daemon.
    Run {
        /// Where to serve the local API.
        #[arg(long, default_value = api::DEFAULT_SOCKET, env = "SNIFFER_SOCKET")]
        socket: PathBuf,
        #[command(flatten)]
        kernel: KernelArgs,
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
        /// The root filesystem.
        #[arg(long)]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: SbomFormat,
        /// Write the SBOM here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Stop watching a container (what it used stays listed).
    Unwatch {
        /// Container name or cgroup id.
        container: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sniffer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<u8> {
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
        Command::Run { socket, kernel } => {
            sniffer::daemon::run(sniffer::daemon::DaemonOptions { socket, kernel: kernel.options() }).await?;
            Ok(0)
        }
        Command::Status(client) => show(&client, Request::Status).await,
        Command::Containers(client) => show(&client, Request::Containers).await,
        Command::Files { container, client } => show(&client, Request::Files { container }).await,
        Command::Watch { cgroup, name, client } => {
            let cgroup = std::fs::canonicalize(&cgroup).unwrap_or(cgroup);
            show(&client, Request::Watch { cgroup, name }).await
        }
        Command::Unwatch { container, client } => show(&client, Request::Unwatch { container }).await,
        Command::Sbom { dir, format, output } => {
            let sbom = sbom::scan(&dir)?;
            let json = match format {
                SbomFormat::Json => serde_json::to_vec_pretty(&sbom)?,
                SbomFormat::Cyclonedx => serde_json::to_vec_pretty(&sbom::formats::cyclonedx(&sbom))?,
                SbomFormat::Spdx => serde_json::to_vec_pretty(&sbom::formats::spdx(&sbom))?,
            };
            match &output {
                Some(path) => std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?,
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            sbom_summary(&sbom);
            Ok(0)
        }
    }
}

/// Packages by kind, and warnings, on standard error (standard output may hold the SBOM).
fn sbom_summary(sbom: &sbom::Sbom) {
    let mut by_kind = std::collections::BTreeMap::new();
    for p in &sbom.packages {
        *by_kind.entry(p.kind.as_str()).or_insert(0usize) += 1;
    }
    let distro = sbom.distro.as_ref().and_then(|d| d.pretty_name.clone()).unwrap_or_else(|| "unknown".into());
    eprintln!("{}: {distro}", sbom.root.display());
    for (kind, n) in &by_kind {
        eprintln!("  {kind:<8} {n:>6}");
    }
    eprintln!("  {:<8} {:>6}", "total", sbom.packages.len());
    for w in &sbom.warnings {
        eprintln!("warning: {} {}: {}", w.cataloger, w.path.display(), w.message);
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
                    vec!["events".into(), s.events.to_string()],
                    vec!["events/s".into(), format!("{:.1}", s.events_per_s)],
                    vec!["repeats dropped in kernel".into(), s.kernel.repeats.to_string()],
                    vec!["lost events".into(), format!("{} (per CPU: {})", s.kernel.lost, lost_per_cpu.join(" "))],
                    vec!["watched containers".into(), s.watched.to_string()],
                ],
            );
        }
        Response::Containers { containers } => containers_table(&containers),
        Response::Files { container, files } => {
            containers_table(std::slice::from_ref(&container));
            println!();
            files_table(&files);
        }
        Response::Container(c) => containers_table(&[c]),
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

/// Prints rows in columns as wide as their widest cell.
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
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
