//! `sniffer sbom`: the SBOM (and SBOM') of a root, or the one the daemon stored.

use std::path::PathBuf;

use anyhow::{Context, bail};
use sbom::text::clean;
use sniffer::api::{self, Request, Response};

use super::args::SbomFormat;

/// The SBOM of a root, and SBOM' from a list of opened paths when given.
fn computed_sbom(
    dir: &std::path::Path,
    opened: Option<&std::path::Path>,
    budgets: sbom::Budgets,
) -> anyhow::Result<(sbom::Sbom, Option<sbom::index::RuntimeSbom>)> {
    let sbom = scan_showing_progress(dir, budgets)?;
    let runtime = match opened {
        Some(list) => {
            let (paths, calls) = read_opened(list)?;
            let root = sbom::rootfs::Root::open(dir).with_context(|| format!("opening {}", dir.display()))?;
            let index = sbom::index::FileIndex::build(&root, &sbom);
            let mut runtime = sbom::index::filter(&sbom, &index, paths.iter().map(PathBuf::as_path), true);
            runtime.calls = calls.map(|mut c| {
                c.note_opened(&paths);
                c
            });
            Some(runtime)
        }
        None => None,
    };
    Ok((sbom, runtime))
}

/// Scans a root; on a terminal, a spinner on standard error says how far it has got.
fn scan_showing_progress(dir: &std::path::Path, budgets: sbom::Budgets) -> anyhow::Result<sbom::Sbom> {
    if !super::progress::on_terminal() {
        return Ok(sbom::scan_within(dir, budgets, None)?);
    }
    let spinner = super::progress::Spinner::new(&format!("scanning {}", dir.display()));
    let sbom = sbom::scan_with_progress(dir, budgets, &mut |p| {
        spinner.say(format!("{} entries, {} packages", p.entries, p.packages));
    });
    drop(spinner);
    Ok(sbom?)
}

/// The SBOM (and SBOM', if asked) the daemon stored for a container, instance or image.
async fn stored_sbom(
    socket: &std::path::Path,
    key: &str,
    want_runtime: bool,
) -> anyhow::Result<(sbom::Sbom, Option<sbom::index::RuntimeSbom>)> {
    match api::call(socket, &Request::Sbom { key: key.to_string() }).await? {
        Response::Sbom { sbom, runtime } => {
            let runtime = match (want_runtime, runtime) {
                (true, None) => bail!("no SBOM' for {key:?} yet (still learning, or not an instance)"),
                (true, Some(p)) => Some(*p),
                (false, _) => None,
            };
            Ok((*sbom, runtime))
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

/// Reads a list of opened paths: plain lines, `sniffer trace` lines (`open /p`), or its
/// JSON lines (`{"path": ...}`); with `sniffer trace --db`, also the functions it probed
/// (`probe FUNCTION BINARY`) and the calls it saw (`call FUNCTION BINARY`).
fn read_opened(list: &std::path::Path) -> anyhow::Result<(Vec<PathBuf>, Option<sbom::calls::Calls>)> {
    let text = std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let mut out = Vec::new();
    let mut calls: Option<sbom::calls::Calls> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", list.display(), n + 1);
        if let Some((class, source)) = class_line(line).with_context(at)? {
            calls.get_or_insert_with(Default::default).define(&source, &class, 0, "");
            continue;
        }
        if let Some((kind, site)) = probe_or_call(line).with_context(at)? {
            let c = calls.get_or_insert_with(Default::default);
            match kind {
                "probe" if site.function == sniffer::probes::CLASS_DEFINE => {
                    c.class_probe.get_or_insert_with(Default::default).jvms.push(site.binary)
                }
                "probe" => c.probed.push(site),
                _ => c.calls.push(sbom::calls::Call {
                    site,
                    pid: 0,
                    comm: String::new(),
                    at: sbom::time::Timestamp::now(),
                }),
            }
            continue;
        }
        let path = if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
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
    Ok((out, calls))
}

/// A `class` line of `sniffer trace --db` (text: `class NAME SOURCE`; JSON: `kind`, `class`,
/// `source`): the class and its code source; `None` for any other line.
fn class_line(line: &str) -> anyhow::Result<Option<(String, String)>> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
        if v["kind"] != "class" {
            return Ok(None);
        }
        let (Some(c), Some(s)) = (v["class"].as_str(), v["source"].as_str()) else {
            bail!("a class line without its class and source");
        };
        return Ok(Some((c.to_string(), s.to_string())));
    }
    let Some(rest) = line.strip_prefix("class ") else { return Ok(None) };
    // Class names hold no spaces; the code source may be empty.
    let (class, source) = rest.split_once(' ').unwrap_or((rest, ""));
    Ok(Some((class.to_string(), source.to_string())))
}

/// A `probe` or `call` line of `sniffer trace --db` (text: `call FUNCTION BINARY`; JSON:
/// `kind`, `function`, `path`), as the kind and the function; `None` for any other line.
fn probe_or_call(line: &str) -> anyhow::Result<Option<(&'static str, sbom::calls::Site)>> {
    let (kind, function, binary) = if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
        let kind = match v["kind"].as_str() {
            Some("probe") => "probe",
            Some("call") => "call",
            _ => return Ok(None),
        };
        let (Some(f), Some(p)) = (v["function"].as_str(), v["path"].as_str()) else {
            bail!("a {kind} line without its function and path");
        };
        (kind, f.to_string(), p.to_string())
    } else {
        let kind = match line.split_once(' ') {
            Some(("probe", _)) => "probe",
            Some(("call", _)) => "call",
            _ => return Ok(None),
        };
        let rest = &line[kind.len() + 1..];
        // Function names hold no spaces; the binary's path may.
        let Some((f, p)) = rest.split_once(' ') else { bail!("a {kind} line without a binary: {line:?}") };
        (kind, f.to_string(), p.to_string())
    };
    if !binary.starts_with('/') {
        bail!("{kind} of {function}: not an absolute path: {binary:?}");
    }
    Ok(Some((kind, sbom::calls::Site { binary: PathBuf::from(binary), function, offset: None })))
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

/// `sniffer sbom`: computed from `dir`, or the daemon's stored one for `id`; written as
/// `format` to `output` or standard output, with a summary on standard error.
#[expect(clippy::too_many_arguments, reason = "one argument per flag of the subcommand")]
pub(super) async fn command(
    id: Option<String>,
    want_runtime: bool,
    dir: Option<PathBuf>,
    socket: &std::path::Path,
    format: SbomFormat,
    output: Option<PathBuf>,
    opened: Option<PathBuf>,
    budgets: sbom::Budgets,
) -> anyhow::Result<u8> {
    let (sbom, runtime) = match (id, dir) {
        (Some(key), _) => stored_sbom(socket, &key, want_runtime).await?,
        (None, Some(dir)) => computed_sbom(&dir, opened.as_deref(), budgets)?,
        (None, None) => bail!("give a container id or --dir ROOT"),
    };
    let json = match (format, &runtime) {
        (SbomFormat::Json, None) => sbom::text::to_json_pretty(&sbom)?,
        (SbomFormat::Json, Some(f)) => sbom::text::to_json_pretty(f)?,
        (SbomFormat::Cyclonedx, None) => sbom::text::to_json_pretty(&sbom::formats::cyclonedx(&sbom))?,
        (SbomFormat::Cyclonedx, Some(f)) => sbom::text::to_json_pretty(&sbom::formats::cyclonedx_runtime(&sbom, f))?,
        (SbomFormat::Spdx, None) => sbom::text::to_json_pretty(&sbom::formats::spdx(&sbom))?,
        (SbomFormat::Spdx, Some(f)) => sbom::text::to_json_pretty(&sbom::formats::spdx_runtime(&sbom, f))?,
    };
    if let Some(f) = &runtime {
        eprintln!(
            "SBOM': {} of {} packages used; {} opened paths owned by none",
            f.packages.len(),
            sbom.packages.len(),
            f.unmatched
        );
    }
    match &output {
        Some(path) => std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{}", String::from_utf8_lossy(&json)),
    }
    sbom_summary(&sbom);
    Ok(0)
}
