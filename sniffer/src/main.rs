//! `sniffer`: the node daemon and its CLI, one binary. The command line lives in `cli`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command, LogFormat};

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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let format = cli.log_format.unwrap_or(if terminal { LogFormat::Text } else { LogFormat::Json });
    // Colours only for a terminal; tracing-subscriber escapes control characters in fields.
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).with_ansi(terminal);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.compact().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sniffer: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command, env_token)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sniffer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
