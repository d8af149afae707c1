//! The typed event bus (the seed's Gateway): every transition of the flow is an event,
//! broadcast to whoever follows (`sniffer events --follow`) and kept in a short history.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// One transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FlowEvent {
    /// A container was discovered and is being watched.
    WorkloadStarted { id: String, image: String, digest: String, instance: String },
    /// The image already had an SBOM: not recomputed.
    SbomReused { digest: String },
    /// The image SBOM was computed and stored.
    SbomStored { digest: String, packages: usize, millis: u64 },
    /// The SBOM could not be computed.
    SbomFailed { digest: String, error: String },
    /// A report was stored and queued for submission.
    ReportStored { id: String, kind: String, key: String, findings: usize },
    /// The instance already had SBOM': not sniffed.
    PrimeReused { instance: String },
    /// Learning began.
    LearningStarted { instance: String },
    /// Learning ended: `window`, `exited`, `stopped`, or `vanished` (the container went while
    /// the daemon was down).
    LearningEnded { instance: String, reason: String, paths: usize },
    /// SBOM' stored.
    PrimeStored { instance: String, packages: usize },
    /// A report reached the backend.
    Submitted { id: String, attempts: u32 },
    /// A submission failed; it will be retried.
    SubmitFailed { id: String, attempts: u32, error: String },
    /// A report went to the dead-letter list (too old).
    DeadLettered { id: String, reason: String },
    /// A container exited.
    WorkloadExited { id: String },
}

/// Stamped event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// RFC 3339.
    pub at: String,
    /// The event.
    #[serde(flatten)]
    pub event: FlowEvent,
}

/// Broadcast plus a bounded history.
pub struct Bus {
    tx: broadcast::Sender<Stamped>,
    history: Mutex<VecDeque<Stamped>>,
}

const HISTORY: usize = 1000;

impl Default for Bus {
    fn default() -> Self {
        Bus { tx: broadcast::channel(1024).0, history: Mutex::new(VecDeque::new()) }
    }
}

impl Bus {
    /// Publishes an event (and logs it).
    pub fn publish(&self, event: FlowEvent) {
        tracing::info!(event = ?event, "flow");
        let stamped = Stamped { at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), event };
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(stamped.clone());
        let _ = self.tx.send(stamped);
    }

    /// Events so far (the last thousand).
    pub fn history(&self) -> Vec<Stamped> {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// Follows new events.
    pub fn subscribe(&self) -> broadcast::Receiver<Stamped> {
        self.tx.subscribe()
    }
}
