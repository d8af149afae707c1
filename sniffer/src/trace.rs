//! `sniffer trace -- CMD`: run one command in a fresh cgroup and list the files it used.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cgroup::ScratchCgroup;
use crate::event::{Access, FileEvent, display_path};
use crate::kernel::{self, Kernel};
use crate::loader::LoaderResolver;
use crate::probes::ProbeManager;

/// What to trace and how to print it.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// One JSON object per line instead of `kind path`.
    pub json: bool,
    /// Where to print (standard output when `None`).
    pub output: Option<PathBuf>,
    /// How to load the kernel programs.
    pub kernel: kernel::Options,
    /// A vulnerability database: probe the vulnerable Go functions the command's binary
    /// links, and list the calls.
    pub db: Option<PathBuf>,
}

/// One `--json` line of a call of a vulnerable function.
#[derive(Serialize)]
struct JsonCall<'a> {
    /// The binary.
    path: String,
    kind: &'static str,
    function: &'a str,
    pid: u32,
    comm: &'a str,
}

/// One line of `--json` output.
#[derive(Serialize)]
struct JsonLine<'a> {
    path: String,
    kind: Access,
    pid: u32,
    comm: &'a str,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    loader_of: Option<String>,
}

/// What a finished trace saw, besides what it printed.
#[derive(Debug, Clone, Copy)]
pub struct TraceResult {
    /// The command's exit status, as a shell reports it (128 + signal when killed).
    pub exit_code: i32,
    /// Events the kernel lost for the command's cgroup.
    pub lost: u64,
}

/// Runs the command under watch, printing each distinct (kind, path) once as it arrives.
pub async fn run(options: TraceOptions) -> anyhow::Result<TraceResult> {
    let Some((program, args)) = options.command.split_first() else {
        bail!("no command given: sniffer trace -- CMD [ARGS...]");
    };
    let mut out: Box<dyn Write + Send> = match &options.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let mut kernel = Kernel::load(&options.kernel)?;
    let mut reader = kernel.events()?;
    let cgroup = ScratchCgroup::create(&format!("sniffer-trace-{}", std::process::id()))
        .context("creating a cgroup for the command")?;
    kernel.watch(cgroup.id())?;
    let probes = match &options.db {
        Some(db) => Some(probe_command(&kernel, &options.kernel, db, program, cgroup.id()).await?),
        None => None,
    };
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    let procs = cgroup.join_on_spawn(command.as_std_mut())?;
    let mut child = command.spawn().with_context(|| format!("starting {}", program.to_string_lossy()))?;
    drop(procs);

    let mut seen = HashSet::new();
    let mut loaders = LoaderResolver::new();
    let mut batch = Vec::new();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the command")?,
            read = reader.next_batch(&mut batch) => {
                read.context("reading events")?;
                loaders.add_loaders(&mut batch);
                print_new(&mut out, options.json, &mut seen, batch.drain(..))?;
                print_calls(&mut out, options.json, probes.as_ref(), cgroup.id(), &reader.take_calls())?;
            }
        }
    };
    // Every syscall of the command has returned, so all its events are in the ring buffer.
    reader.drain(&mut batch);
    loaders.add_loaders(&mut batch);
    print_new(&mut out, options.json, &mut seen, batch.drain(..))?;
    print_calls(&mut out, options.json, probes.as_ref(), cgroup.id(), &reader.take_calls())?;
    out.flush()?;
    if let Some(calls) = probes.as_ref().and_then(|p| p.release(cgroup.id())) {
        for why in &calls.unprobed {
            eprintln!("sniffer: not probed: {}", sbom::text::clean(why));
        }
    }
    let lost = kernel.unwatch(cgroup.id())?;
    if lost > 0 {
        eprintln!("sniffer: {lost} events were lost (ring buffer full): this list is incomplete");
    }
    let exit_code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(TraceResult { exit_code, lost })
}

/// Probes the vulnerable Go functions `program`'s binary links (from `db`) for the cgroup,
/// and waits until they are in place.
async fn probe_command(
    kernel: &Kernel,
    options: &kernel::Options,
    db: &std::path::Path,
    program: &std::ffi::OsStr,
    cgroup_id: u64,
) -> anyhow::Result<ProbeManager> {
    let binary = which(program).with_context(|| format!("finding {} to probe", program.to_string_lossy()))?;
    let db = db.to_path_buf();
    let found = binary.clone();
    let facts = tokio::task::spawn_blocking(move || -> anyhow::Result<vuln::gocode::Outcome> {
        let db = vuln::Db::open(&db)?;
        let root = sbom::rootfs::Root::open(std::path::Path::new("/")).context("opening /")?;
        let mut catalog = sbom::catalog::Catalog::with_budgets(sbom::Budgets::default());
        sbom::catalog::binary::catalog_file(&root, &found, &mut catalog);
        let sbom = sbom::Sbom {
            root: "/".into(),
            distro: None,
            packages: catalog.packages,
            warnings: Vec::new(),
            incomplete: false,
        };
        Ok(vuln::gocode::facts(&db, &sbom, &root, vuln::gocode::Limits::default())?)
    })
    .await??;
    for w in &facts.warnings {
        eprintln!("sniffer: {}", sbom::text::clean(w));
    }
    let manager = ProbeManager::start(kernel.call_program(), options.probes);
    let targets = crate::probes::targets(facts.facts.values());
    manager.probe(cgroup_id, std::process::id(), targets);
    let start = std::time::Instant::now();
    while manager.calls(cgroup_id).is_some_and(|c| c.since.is_none()) && start.elapsed().as_secs() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(manager)
}

/// Where the command `program` is: itself when it names a path, else found on `PATH`.
fn which(program: &std::ffi::OsStr) -> Option<PathBuf> {
    let p = std::path::Path::new(program);
    if p.components().count() > 1 {
        return std::fs::canonicalize(p).ok();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
        .and_then(|c| std::fs::canonicalize(c).ok())
}

fn print_calls(
    out: &mut impl Write,
    json: bool,
    probes: Option<&ProbeManager>,
    cgroup_id: u64,
    seen: &[crate::event::CallSeen],
) -> anyhow::Result<()> {
    let Some(probes) = probes else { return Ok(()) };
    let before = probes.calls(cgroup_id).map_or(0, |c| c.calls.len());
    probes.record(seen);
    let Some(calls) = probes.calls(cgroup_id) else { return Ok(()) };
    for c in calls.calls.iter().skip(before) {
        let path = display_path(&c.site.binary);
        if json {
            let line = JsonCall { path, kind: "call", function: &c.site.function, pid: c.pid, comm: &c.comm };
            out.write_all(&sbom::text::to_json_line(&line)?)?;
            writeln!(out)?;
        } else {
            writeln!(out, "call {} {}", sbom::text::clean(&c.site.function), sbom::text::clean(&path))?;
        }
    }
    out.flush()?;
    Ok(())
}

fn print_new(
    out: &mut impl Write,
    json: bool,
    seen: &mut HashSet<(Access, PathBuf)>,
    events: impl Iterator<Item = FileEvent>,
) -> anyhow::Result<()> {
    for event in events {
        if !seen.insert((event.kind, event.path.clone())) {
            continue;
        }
        let path = display_path(&event.path);
        if json {
            let line = JsonLine {
                path,
                kind: event.kind,
                pid: event.pid,
                comm: &event.comm,
                truncated: event.truncated,
                loader_of: event.loader_of.as_deref().map(display_path),
            };
            // Exact too, with C1 and bidirectional controls as JSON escapes.
            out.write_all(&sbom::text::to_json_line(&line)?)?;
            writeln!(out)?;
        } else {
            // A name's control characters would drive the terminal (and split the line):
            // escaped here; `--json` keeps the path exact.
            writeln!(out, "{} {}", event.kind.as_str(), sbom::text::clean(&path))?;
        }
    }
    out.flush()?;
    Ok(())
}
