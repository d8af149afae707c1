//! `sniffer db`: import, update and status of the offline vulnerability database.

use anyhow::Context;

use super::args::DbCommand;
use sbom::text::clean;

use super::client::print_table;

pub(super) fn db_command(command: DbCommand) -> anyhow::Result<u8> {
    match command {
        DbCommand::Import { paths, db } => {
            if let Some(dir) = db.path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut writer = vuln::Writer::open(&db.path)?;
            let bar = super::progress::DbBar::for_stderr();
            writer.set_progress(bar.clone());
            let mut report = vuln::ImportReport::default();
            for p in &paths {
                let mut this = vuln::ImportReport::default();
                vuln::import::import_path(&mut writer, p, &mut this)?;
                for eco in &this.ecosystems {
                    let location = p.display().to_string();
                    let info = vuln::store::SourceInfo {
                        location,
                        etag: None,
                        last_modified: None,
                        imported_at: sbom::time::Timestamp::now(),
                    };
                    writer.set_source(eco, info)?;
                }
                report.imported += this.imported;
                report.unchanged += this.unchanged;
                report.withdrawn += this.withdrawn;
                report.skipped.extend(this.skipped);
            }
            let committed = writer.commit();
            bar.finished();
            committed?;
            eprintln!(
                "{}: imported {}, unchanged {}, withdrawn {}, skipped {}",
                db.path.display(),
                report.imported,
                report.unchanged,
                report.withdrawn,
                report.skipped.len()
            );
            print_skipped(&report.skipped);
            Ok(0)
        }
        DbCommand::Update { mirror, ecosystems, timeout, every, db } => {
            let options = vuln::update::UpdateOptions {
                mirror,
                ecosystems,
                db: db.path.clone(),
                timeout: std::time::Duration::from_secs(timeout),
                progress: super::progress::DbBar::for_stderr(),
            };
            let Some(every) = every else {
                update_once(&options)?;
                return Ok(0);
            };
            loop {
                if let Err(e) = update_once(&options) {
                    eprintln!("update failed, the database in use stays: {e:#}");
                }
                std::thread::sleep(std::time::Duration::from_secs(every.max(60)));
            }
        }
        DbCommand::Status { db, json } => {
            let status = vuln::Db::open(&db.path)?.status()?;
            if json {
                println!("{}", sbom::text::to_json_pretty_string(&status)?);
                return Ok(0);
            }
            let mut rows: Vec<Vec<String>> = status
                .ecosystems
                .iter()
                .map(|(eco, n)| {
                    let src =
                        status.sources.get(eco.split(':').next().unwrap_or(eco)).or_else(|| status.sources.get(eco));
                    vec![eco.clone(), n.to_string(), src.map(|s| s.imported_at.to_string()).unwrap_or_default()]
                })
                .collect();
            rows.push(vec!["total".into(), (status.records - status.withdrawn).to_string(), String::new()]);
            println!("{}", status.path.display());
            println!(
                "updated {}; {} withdrawn records kept out of results",
                status.updated_at.map_or("never".into(), |t| t.to_string()),
                status.withdrawn
            );
            println!();
            print_table(&["ECOSYSTEM", "RECORDS", "IMPORTED"], rows);
            Ok(0)
        }
    }
}

/// One `db update`, said on standard error.
fn update_once(options: &vuln::update::UpdateOptions) -> anyhow::Result<()> {
    let report = vuln::update::update(options);
    options.progress.finished();
    let report = report?;
    for (eco, fetch) in &report.ecosystems {
        match fetch {
            vuln::update::Fetch::Unchanged => eprintln!("{eco}: unchanged"),
            vuln::update::Fetch::Updated { bytes } => eprintln!("{eco}: fetched {bytes} bytes"),
        }
    }
    eprintln!(
        "{}: {} (imported {}, unchanged {}, skipped {})",
        options.db.display(),
        if report.swapped { "updated" } else { "already current" },
        report.import.imported,
        report.import.unchanged,
        report.import.skipped.len()
    );
    print_skipped(&report.import.skipped);
    Ok(())
}

/// What was not imported: names and reasons come from archives and mirrors, escaped.
fn print_skipped(skipped: &[vuln::store::Skipped]) {
    for s in skipped {
        eprintln!("skipped {}: {}", clean(&s.source), clean(&s.reason));
    }
}
