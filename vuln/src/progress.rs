//! What a long database operation says as it goes, for a progress bar on a terminal. The
//! library only reports; the CLI decides whether anything is drawn.

/// Receives progress; every method does nothing unless overridden.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// A download of `what` began; `total` bytes when the server said.
    fn download(&self, _what: &str, _total: Option<u64>) {}
    /// `n` more bytes arrived.
    fn bytes(&self, _n: u64) {}
    /// Reading `total` more records (when known) from `what` began.
    fn records(&self, _what: &str, _total: Option<u64>) {}
    /// One more record was read.
    fn record(&self) {}
    /// The operation is over (whether it worked or not): what was shown goes.
    fn finished(&self) {}
}

/// Says nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}
