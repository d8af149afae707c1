//! The subcommands that ask the daemon, over its typed API client (`sniffer::api`), and
//! print the answer as a table or JSON.

use anyhow::bail;
use sbom::text::clean;
use sniffer::api::{self, Request, Response};
use sniffer::tracker::{ContainerSummary, FileRecord};

use super::args::ClientArgs;

/// Prints flow events, one JSON object per line with --json, else one line each; with
/// `follow`, every new one as it happens, and a warning on standard error when the daemon
/// says this client fell behind and missed some.
pub(super) async fn events(client: &ClientArgs, follow: bool) -> anyhow::Result<u8> {
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

pub(super) async fn show(client: &ClientArgs, request: Request) -> anyhow::Result<u8> {
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
        println!("{}", sbom::text::to_json_pretty_string(&value)?);
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
                    vec![
                        "function probes".into(),
                        match &s.probes {
                            None => "-".into(),
                            Some(p) => match &p.unavailable {
                                Some(why) => format!("off: {why} (Go findings stay at file level)"),
                                None => format!(
                                    "{} attached ({} since start, {} failed; at most {} per binary, {} per node)",
                                    p.attached, p.attached_total, p.failed, p.max_per_binary, p.max_total
                                ),
                            },
                        },
                    ],
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
                        vec!["SBOM's".into(), f.runtime_sboms.to_string()],
                        vec!["learning now".into(), f.learning.to_string()],
                        vec!["reports stored".into(), f.reports.to_string()],
                        vec!["reports sent".into(), f.sent.to_string()],
                        vec!["outbox".into(), f.outbox.to_string()],
                        vec![
                            "dead letters".into(),
                            if f.dead_letters.is_empty() { "0".into() } else { f.dead_letters.join(", ") },
                        ],
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
        Response::Events { .. } | Response::Report(_) | Response::Sbom { .. } => {
            println!("{}", sbom::text::to_json_pretty_string(&response_value(&response))?)
        }
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
pub(super) fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.iter().map(|c| clean(c).into_owned()).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    if header.iter().any(|h| !h.is_empty()) {
        line(header.to_vec());
    }
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `sniffer vulns`: the stored report of a container, instance or image digest. A report
/// that was not scanned says so, on standard error, and exits 4.
pub(super) async fn vulns(client: &ClientArgs, key: String, relevant: bool) -> anyhow::Result<u8> {
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
        println!("{}", sbom::text::to_json_pretty_string(&scan)?);
    } else {
        println!(
            "{} {} ({}), {} packages",
            report.kind_name(),
            clean(&report.key),
            clean(&report.image),
            report.packages
        );
        print!(
            "{}",
            vuln::report::render(
                &scan,
                &vuln::report::Context {
                    sbom: report.key.clone(),
                    runtime: None,
                    db: String::new(),
                    db_updated_at: None,
                },
                vuln::report::Format::Table
            )
        );
    }
    Ok(if report.not_scanned.is_some() { 4 } else { 0 })
}
