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
    /// JVMs (`libjvm.so`) whose class definitions to list, besides the command's own when it
    /// is a JVM launcher (with `db`).
    pub jvms: Vec<PathBuf>,
}

/// One `--json` line of a class a JVM defined.
#[derive(Serialize)]
struct JsonClass<'a> {
    kind: &'static str,
    class: &'a str,
    source: &'a str,
    pid: u32,
    comm: &'a str,
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
    let mut prober = match &options.db {
        Some(db) => {
            let mut p = Prober {
                manager: ProbeManager::start_with(kernel.call_program(), kernel.class_program(), options.kernel.probes),
                db: db.clone(),
                cgroup_id: cgroup.id(),
                done: HashSet::new(),
                printed: HashSet::new(),
                classes: HashSet::new(),
            };
            let binary = which(program).with_context(|| format!("finding {} to probe", program.to_string_lossy()))?;
            // A JVM launcher's own libjvm.so (`bin/java` beside `lib/server/`).
            let mut jvms = options.jvms.clone();
            jvms.extend(
                binary
                    .parent()
                    .and_then(|d| d.parent())
                    .map(|home| home.join("lib/server/libjvm.so"))
                    .filter(|j| j.is_file()),
            );
            p.jvms(jvms).await;
            p.binary(std::process::id(), binary).await?;
            p.print(&mut out, options.json, &[], &[])?;
            Some(p)
        }
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
                if let Some(p) = &mut prober {
                    let execs: Vec<(u32, PathBuf)> =
                        batch.iter().filter(|e| e.kind == Access::Exec && e.loader_of.is_none()).map(|e| (e.tgid, e.path.clone())).collect();
                    for (pid, binary) in execs {
                        // A process gone already cannot be read: its binary is not probed.
                        let _ = p.binary(pid, binary).await;
                    }
                }
                print_new(&mut out, options.json, &mut seen, batch.drain(..))?;
                if let Some(p) = &mut prober {
                    p.print(&mut out, options.json, &reader.take_calls(), &reader.take_classes())?;
                }
            }
        }
    };
    // Every syscall of the command has returned, so all its events are in the ring buffer.
    reader.drain(&mut batch);
    loaders.add_loaders(&mut batch);
    print_new(&mut out, options.json, &mut seen, batch.drain(..))?;
    if let Some(p) = &mut prober {
        p.print(&mut out, options.json, &reader.take_calls(), &reader.take_classes())?;
    }
    out.flush()?;
    if let Some(calls) = prober.as_ref().and_then(|p| p.manager.release(cgroup.id())) {
        for why in calls.unprobed.iter().chain(calls.class_probe.iter().flat_map(|p| p.gaps.iter())) {
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

/// The probes of a trace: the command's binary before it starts, and every binary it
/// executes as soon as its exec is seen (said by the `probe` lines, which come after it).
struct Prober {
    manager: ProbeManager,
    db: PathBuf,
    cgroup_id: u64,
    /// (the task's root as the host sees it, the binary in it) already looked at.
    done: HashSet<(PathBuf, PathBuf)>,
    /// Probes and calls printed (a probe removed after its call moves in the list).
    printed: HashSet<(&'static str, sbom::calls::Site)>,
    /// Classes printed, with their code source (at most [`MAX_CLASSES_PRINTED`]).
    classes: HashSet<(String, String)>,
}

/// Most distinct classes a trace lists.
const MAX_CLASSES_PRINTED: usize = 1 << 20;

impl Prober {
    /// Probes `binary` inside the root of process `pid` (the vulnerable Go functions it
    /// links, by `db`), once per root and binary; waits until the probes are in place.
    async fn binary(&mut self, pid: u32, binary: PathBuf) -> anyhow::Result<()> {
        let root_path = PathBuf::from(format!("/proc/{pid}/root"));
        let host_root = std::fs::read_link(&root_path).unwrap_or_else(|_| root_path.clone());
        if !self.done.insert((host_root, binary.clone())) {
            return Ok(());
        }
        let db = self.db.clone();
        let facts = tokio::task::spawn_blocking(move || -> anyhow::Result<vuln::gocode::Outcome> {
            let db = vuln::Db::open(&db)?;
            let root =
                sbom::rootfs::Root::open(&root_path).with_context(|| format!("opening {}", root_path.display()))?;
            let mut catalog = sbom::catalog::Catalog::with_budgets(sbom::Budgets::default());
            sbom::catalog::binary::catalog_file(&root, &binary, &mut catalog);
            let sbom = sbom::Sbom {
                root: root_path,
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
        let targets = crate::probes::targets(facts.facts.values());
        if targets.is_empty() {
            return Ok(());
        }
        let before = self.manager.calls(self.cgroup_id).map_or(0, |c| c.probed.len() + c.unprobed.len());
        self.manager.probe(self.cgroup_id, pid, targets);
        let start = std::time::Instant::now();
        while self.manager.calls(self.cgroup_id).is_some_and(|c| c.probed.len() + c.unprobed.len() == before)
            && start.elapsed().as_secs() < 10
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Probes the class definitions of these JVMs (host paths) before the command starts.
    async fn jvms(&mut self, jvms: Vec<PathBuf>) {
        if jvms.is_empty() {
            return;
        }
        let targets: Vec<crate::probes::Target> = jvms.into_iter().map(crate::probes::Target::jvm).collect();
        self.manager.probe(self.cgroup_id, std::process::id(), targets);
        let start = std::time::Instant::now();
        while self.manager.calls(self.cgroup_id).is_none_or(|c| c.class_probe.is_none())
            && start.elapsed().as_secs() < 10
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Records the calls and classes the kernel reported, then prints the probes, calls and
    /// classes not printed yet.
    fn print(
        &mut self,
        out: &mut impl Write,
        json: bool,
        seen: &[crate::event::CallSeen],
        classes: &[crate::event::ClassSeen],
    ) -> anyhow::Result<()> {
        self.manager.record(seen);
        for c in classes.iter().filter(|c| c.cgroup_id == self.cgroup_id) {
            if self.classes.len() >= MAX_CLASSES_PRINTED || !self.classes.insert((c.class.clone(), c.source.clone())) {
                continue;
            }
            if json {
                let line = JsonClass { kind: "class", class: &c.class, source: &c.source, pid: c.tgid, comm: &c.comm };
                out.write_all(&sbom::text::to_json_line(&line)?)?;
                writeln!(out)?;
            } else {
                writeln!(out, "class {} {}", sbom::text::clean(&c.class), sbom::text::clean(&c.source))?;
            }
        }
        let Some(calls) = self.manager.calls(self.cgroup_id) else { return Ok(()) };
        if let Some(probe) = &calls.class_probe {
            for jvm in &probe.jvms {
                let site = sbom::calls::Site {
                    binary: jvm.clone(),
                    function: crate::probes::CLASS_DEFINE.to_string(),
                    offset: None,
                };
                if self.printed.insert(("probe", site.clone())) {
                    print_site(out, json, "probe", &site, None)?;
                }
            }
        }
        for site in &calls.probed {
            if self.printed.insert(("probe", site.clone())) {
                print_site(out, json, "probe", site, None)?;
            }
        }
        for c in &calls.calls {
            if self.printed.insert(("call", c.site.clone())) {
                print_site(out, json, "call", &c.site, Some((c.pid, &c.comm)))?;
            }
        }
        out.flush()?;
        Ok(())
    }
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

/// A `probe` or `call` line: `KIND FUNCTION BINARY`, or JSON with the caller.
fn print_site(
    out: &mut impl Write,
    json: bool,
    kind: &'static str,
    site: &sbom::calls::Site,
    caller: Option<(u32, &str)>,
) -> anyhow::Result<()> {
    let path = display_path(&site.binary);
    if json {
        let (pid, comm) = caller.unwrap_or((0, ""));
        let line = JsonCall { path, kind, function: &site.function, pid, comm };
        out.write_all(&sbom::text::to_json_line(&line)?)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{kind} {} {}", sbom::text::clean(&site.function), sbom::text::clean(&path))?;
    }
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
