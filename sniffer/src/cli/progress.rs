//! Progress bars (indicatif) for long commands, on a terminal only: in a pipe, a file or a
//! log collector nothing is drawn and nothing else changes.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sbom::text::clean;

/// Whether bars are drawn: standard error is a terminal.
pub(super) fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    // The templates are ours and fixed: a bad one is a bug, shown as the default style.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A bar for the database's downloads and imports: a new one for each download or
/// import, cleared when the next begins or the command is done.
#[derive(Debug, Default)]
pub(super) struct DbBar(std::sync::Mutex<Option<ProgressBar>>);

impl DbBar {
    /// A bar when on a terminal, else a reporter that says nothing.
    pub(super) fn for_stderr() -> Arc<dyn vuln::progress::Progress> {
        match on_terminal() {
            true => Arc::new(DbBar::default()),
            false => Arc::new(vuln::progress::Silent),
        }
    }

    fn begin(&self, total: Option<u64>, known: &str, unknown: &str, msg: String) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(style(known)),
            None => ProgressBar::new_spinner().with_style(style(unknown)),
        };
        bar.set_message(msg);
        bar.enable_steady_tick(Duration::from_millis(120));
        let previous = self.0.lock().unwrap_or_else(|p| p.into_inner()).replace(bar);
        if let Some(previous) = previous {
            previous.finish_and_clear();
        }
    }

    fn current(&self) -> Option<ProgressBar> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for DbBar {
    fn drop(&mut self) {
        vuln::progress::Progress::finished(self);
    }
}

impl vuln::progress::Progress for DbBar {
    fn download(&self, what: &str, total: Option<u64>) {
        self.begin(
            total,
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            "{spinner} {msg} {bytes} {bytes_per_sec}",
            format!("downloading {}", clean(what)),
        );
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = self.current() {
            bar.inc(n);
        }
    }

    fn records(&self, what: &str, total: Option<u64>) {
        self.begin(
            total,
            "{msg} [{bar:30}] {pos}/{len} records {per_sec} {eta}",
            "{spinner} {msg} {pos} records",
            format!("importing {}", clean(what)),
        );
    }

    fn record(&self) {
        if let Some(bar) = self.current() {
            bar.inc(1);
        }
    }

    fn finished(&self) {
        let bar = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
}

/// A spinner for a walk whose size is not known ahead: `sniffer sbom --dir`.
pub(super) struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// A spinner saying `what`, when on a terminal.
    pub(super) fn new(what: &str) -> Spinner {
        if !on_terminal() {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner().with_style(style("{spinner} {prefix} {msg} ({elapsed})"));
        bar.set_prefix(clean(what).into_owned());
        bar.tick();
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }

    /// Says how far it has got.
    pub(super) fn say(&self, msg: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(msg);
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
