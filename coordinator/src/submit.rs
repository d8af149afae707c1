//! Submission to the backend (the "SaaS"): each stored report sits in the outbox until the
//! backend accepts it. POST of the report JSON with a bearer token and the report id as
//! `Idempotency-Key`; exponential backoff with jitter while the backend is down; a report
//! older than the configured age goes to the dead-letter list instead of being retried for
//! ever. The outbox is in the store, so a restart loses nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::bus::{Bus, FlowEvent};
use crate::store::{Storage, StorageExt, StoreError, Table};

/// Where reports go. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct Backend {
    /// The URL each report is POSTed to (http or https; TLS by rustls).
    pub url: String,
    /// Bearer token, read from this file at each attempt (so it can rotate).
    pub token_file: Option<PathBuf>,
    /// Bearer token given directly (environment).
    pub token: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("url", &self.url)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a backend URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum BackendUrlError {
    /// Not a URL.
    #[error("backend URL {url:?} is not a valid URL")]
    Invalid {
        /// The URL.
        url: String,
    },
    /// Plain HTTP to a host that is not this one: reports and the token would cross the
    /// network in clear.
    #[error(
        "backend URL {url:?} is plain http to {host:?}, not loopback: reports and the token would cross the network unencrypted (use https, or allow it with --allow-plain-http)"
    )]
    PlainHttp {
        /// The URL.
        url: String,
        /// Its host.
        host: String,
    },
    /// Neither http nor https.
    #[error("backend URL {url:?} has scheme {scheme:?}; only https (and http to loopback) are supported")]
    Scheme {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
}

/// Accepts `https://` URLs, and `http://` ones to a loopback host or when `allow_plain_http`.
pub fn check_url(url: &str, allow_plain_http: bool) -> Result<(), BackendUrlError> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| BackendUrlError::Invalid { url: url.into() })?;
    let host = uri.host().ok_or_else(|| BackendUrlError::Invalid { url: url.into() })?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback || allow_plain_http {
                Ok(())
            } else {
                Err(BackendUrlError::PlainHttp { url: url.into(), host: host.into() })
            }
        }
        other => Err(BackendUrlError::Scheme { url: url.into(), scheme: other.unwrap_or_default().into() }),
    }
}

/// Retry policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Age after which a report is dead-lettered.
    pub dead_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            dead_after: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A report waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// When it was queued (Unix ms).
    pub created_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before (Unix ms).
    pub next_ms: i64,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// A fresh entry, due now.
    pub fn new() -> OutboxEntry {
        let now = now_ms();
        OutboxEntry { created_ms: now, attempts: 0, next_ms: now, last_error: None }
    }
}

impl Default for OutboxEntry {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Delay before attempt `attempts + 1`: exponential, capped, with half of it random.
pub fn backoff(policy: &Policy, attempts: u32) -> Duration {
    let exp = policy.base.saturating_mul(1u32 << attempts.min(20).saturating_sub(1)).min(policy.max);
    let half = exp / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

fn token(backend: &Backend) -> Result<Option<String>, String> {
    if let Some(f) = &backend.token_file {
        let t = std::fs::read_to_string(f).map_err(|e| format!("reading token file {}: {e}", f.display()))?;
        return Ok(Some(t.trim().to_string()));
    }
    Ok(backend.token.clone())
}

/// One POST; `Ok` when the backend has the report (2xx, or 409: it had it already).
fn post(backend: &Backend, id: &str, body: &[u8]) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(backend.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("sniffer/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut req = agent.post(&backend.url).header("Content-Type", "application/json").header("Idempotency-Key", id);
    if let Some(t) = token(backend)? {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = req.send(body).map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        200..=299 | 409 => Ok(()),
        code => Err(format!("HTTP {code}")),
    }
}

/// Sends every due report once; returns how long until the next is due. Blocking (store
/// writes with their fsync, HTTP): [`run`] calls it on the blocking pool.
pub fn pass(store: &dyn Storage, bus: &Bus, backend: &Backend, policy: &Policy) -> Result<Duration, StoreError> {
    let mut next = policy.max;
    for id in store.keys(Table::Outbox)? {
        let Some(mut entry) = store.get::<OutboxEntry>(Table::Outbox, &id)? else { continue };
        let now = now_ms();
        if now - entry.created_ms > policy.dead_after.as_millis() as i64 {
            let reason = entry.last_error.clone().unwrap_or_else(|| "too old".into());
            let value = serde_json::to_value(&entry).map_err(StoreError::record(Table::Dead, &id))?;
            store.put_many(&[(Table::Dead, &id, value)])?;
            store.delete(Table::Outbox, &id)?;
            bus.publish(FlowEvent::DeadLettered { id: id.into(), reason });
            continue;
        }
        if entry.next_ms > now {
            next = next.min(Duration::from_millis((entry.next_ms - now) as u64));
            continue;
        }
        let Some(body) = store.get_raw(Table::Report, &id)? else {
            store.delete(Table::Outbox, &id)?;
            continue;
        };
        let result = post(backend, &id, &body);
        entry.attempts += 1;
        match result {
            Ok(()) => {
                store.put(Table::Sent, &id, &sbom::time::Timestamp::now())?;
                store.delete(Table::Outbox, &id)?;
                bus.publish(FlowEvent::Submitted { id: id.into(), attempts: entry.attempts });
            }
            Err(error) => {
                let delay = backoff(policy, entry.attempts);
                entry.next_ms = now_ms() + delay.as_millis() as i64;
                entry.last_error = Some(error.clone());
                store.put(Table::Outbox, &id, &entry)?;
                next = next.min(delay);
                bus.publish(FlowEvent::SubmitFailed { id: id.into(), attempts: entry.attempts, error });
            }
        }
    }
    Ok(next)
}

/// Runs the outbox for ever: a pass, then sleep until the next report is due or `wake`
/// says a new one was queued.
pub async fn run(store: Arc<dyn Storage>, bus: Arc<Bus>, backend: Backend, policy: Policy, wake: Arc<Notify>) {
    let shared = Arc::new((store, bus, backend, policy));
    loop {
        let s = shared.clone();
        let passed = tokio::task::spawn_blocking(move || pass(&*s.0, &s.1, &s.2, &s.3)).await;
        let wait = match passed {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::error!(error = %crate::chain(&e), "outbox");
                Duration::from_secs(5)
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox pass failed");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in ["https://backend.example/reports", "http://127.0.0.1:8080/r", "http://[::1]/r", "http://localhost/r"]
        {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        let e = check_url("http://backend.example/reports", false).unwrap_err();
        assert!(e.to_string().contains("--allow-plain-http") && e.to_string().contains("backend.example"), "{e}");
        assert!(check_url("http://backend.example/reports", true).is_ok());
        assert!(matches!(check_url("ftp://x/y", true), Err(BackendUrlError::Scheme { .. })));
        assert!(matches!(check_url("not a url", true), Err(BackendUrlError::Invalid { .. })));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let b = Backend {
            url: "https://b/r".into(),
            token_file: None,
            token: Some("s3cr3t-t0ken".into()),
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{b:?} {b:#?}");
        assert!(!shown.contains("s3cr3t-t0ken") && shown.contains("<redacted>"), "{shown}");
    }
}
