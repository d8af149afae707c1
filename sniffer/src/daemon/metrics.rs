//! Prometheus text on `--metrics ADDR`: one request per connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Daemon;

/// Serves until the listener fails.
pub(super) async fn serve(listener: TcpListener, daemon: Daemon) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            // Read the request's head (whatever it asks, the answer is the metrics).
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            // The flow's counts are store reads: off the runtime.
            let body = match tokio::task::spawn_blocking(move || render(&daemon)).await {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %coordinator::chain(&e), "rendering metrics");
                    return;
                }
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}

/// The Prometheus text exposition of the daemon's counters.
fn render(daemon: &Daemon) -> String {
    let lost = daemon.kernel.stats().map(|k| k.lost).unwrap_or(0);
    let (events, _) = daemon.tracking.rate();
    let watched = daemon.tracking.watched().len() as u64;
    let paths = daemon.tracking.distinct_paths() as u64;
    let mut rows: Vec<(&str, &str, &str, u64)> = vec![
        ("sniffer_events_total", "counter", "File events received from the kernel.", events),
        ("sniffer_lost_events_total", "counter", "Events lost because the ring buffer was full.", lost),
        ("sniffer_watched_containers", "gauge", "Containers being sniffed.", watched),
        ("sniffer_distinct_paths", "gauge", "Distinct paths held for all tracked containers.", paths),
    ];
    if let Some(f) = daemon.flow.as_ref().and_then(|c| c.status().ok()) {
        rows.extend([
            ("sniffer_learning_instances", "gauge", "Instances being learned.", f.learning as u64),
            ("sniffer_sboms", "gauge", "Image SBOMs stored.", f.sboms),
            ("sniffer_reports_stored", "gauge", "Reports stored.", f.reports),
            ("sniffer_reports_sent_total", "counter", "Reports the backend accepted.", f.sent),
            ("sniffer_outbox_depth", "gauge", "Reports waiting to be sent.", f.outbox),
            ("sniffer_dead_letters", "gauge", "Reports given up on.", f.dead_letters.len() as u64),
        ]);
    }
    rows.iter()
        .map(|(name, kind, help, v)| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"))
        .collect()
}
