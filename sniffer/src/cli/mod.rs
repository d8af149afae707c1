//! The CLI as a module tree (ripgrep's `flags/` and mini-redis's `cmd/` as models):
//! `args` holds the command line; each other module one group of subcommands: `client`
//! asks the daemon over the typed API client (`sniffer::api`), `sbom` and `scan` work on
//! files, `db` on the vulnerability database.

pub(crate) mod args;
mod client;
mod db;
mod progress;
mod sbom;
mod scan;

use sniffer::api::Request;

use args::{Command, LearnCommand};

/// Runs one command; its exit status.
pub(crate) async fn run(command: Command, env_token: Option<String>) -> anyhow::Result<u8> {
    match command {
        Command::Trace { json, db, jvm, output, kernel, command } => {
            let result = sniffer::trace::run(sniffer::trace::TraceOptions {
                command,
                json,
                output,
                kernel: kernel.options(),
                db,
                jvms: jvm,
            })
            .await?;
            Ok(result.exit_code.clamp(0, 255) as u8)
        }
        Command::Run { socket, kernel, flow, max_paths_per_container } => {
            let options = sniffer::daemon::DaemonOptions {
                socket,
                kernel: kernel.options(),
                limits: sniffer::tracker::Limits { max_paths: max_paths_per_container, ..Default::default() },
                flow: flow.options(env_token)?,
                metrics: flow.metrics,
            };
            sniffer::daemon::run(options).await?;
            Ok(0)
        }
        Command::Events { follow, client } => client::events(&client, follow).await,
        Command::Learn { command: LearnCommand::Stop { container, client } } => {
            client::show(&client, Request::LearnStop { container }).await
        }
        Command::Vulns { key, relevant, client } => client::vulns(&client, key, relevant).await,
        Command::Status(client) => client::show(&client, Request::Status).await,
        Command::Containers(client) => client::show(&client, Request::Containers).await,
        Command::Files { container, client } => client::show(&client, Request::Files { container }).await,
        Command::Watch { cgroup, name, client } => {
            let cgroup = std::fs::canonicalize(&cgroup).unwrap_or(cgroup);
            client::show(&client, Request::Watch { cgroup, name }).await
        }
        Command::Unwatch { container, client } => client::show(&client, Request::Unwatch { container }).await,
        Command::Sbom { id, runtime, dir, socket, format, output, opened, budgets } => {
            sbom::command(id, runtime, dir, &socket, format, output, opened, budgets.budgets()).await
        }
        Command::Scan { sbom, runtime, db, format, fail_on, output, root } => {
            scan::scan(scan::ScanArgs { sbom_path: sbom, runtime, db, format, fail_on, output, root })
        }
        Command::Db { command } => db::db_command(command),
    }
}
