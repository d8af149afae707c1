//! Prometheus text on `--metrics ADDR`: one request per connection.

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Daemon;

/// Serves until the listener fails.
pub(super) async fn serve(listener: TcpListener, daemon: Daemon) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            // Whatever it asks, the answer is the metrics; but the whole head is read first:
            // closing with part of a request unread makes the kernel reset the connection,
            // and the client may lose the answer.
            if tokio::time::timeout(HEAD_WAIT, read_head(&mut conn)).await.is_err() {
                return;
            }
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

/// Longest a client may take to send its request's head.
const HEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest request head read; past it the rest is not waited for.
const MAX_HEAD: usize = 8 << 10;

/// Reads until the blank line that ends a request's head, the end of the stream, an error
/// or [`MAX_HEAD`] bytes; gives what it read.
async fn read_head<R: tokio::io::AsyncRead + Unpin>(conn: &mut R) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// The Prometheus text exposition: the daemon's health, the findings of what runs here,
/// and the flow's timings.
fn render(daemon: &Daemon) -> String {
    let lost = daemon.kernel.stats().map(|k| k.lost).unwrap_or(0);
    let (events, _) = daemon.tracking.rate();
    let watched = daemon.tracking.watched().len() as u64;
    let paths = daemon.tracking.distinct_paths() as u64;
    let mut out = Exposition::default();
    let mut plain = |name: &str, kind: &str, help: &str, v: u64| {
        out.family(name, kind, help);
        out.sample(name, &[], v);
    };
    plain("sniffer_events_total", "counter", "File events received from the kernel.", events);
    plain("sniffer_lost_events_total", "counter", "Events lost because the ring buffer was full.", lost);
    plain("sniffer_watched_containers", "gauge", "Containers being sniffed.", watched);
    plain("sniffer_distinct_paths", "gauge", "Distinct paths held for all tracked containers.", paths);
    let Some(flow) = daemon.flow.as_ref() else { return out.0 };
    if let Ok(f) = flow.status() {
        plain("sniffer_learning_instances", "gauge", "Instances being learned.", f.learning as u64);
        plain("sniffer_sboms", "gauge", "Image SBOMs stored.", f.sboms);
        plain("sniffer_reports_stored", "gauge", "Reports stored.", f.reports);
        plain("sniffer_reports_sent_total", "counter", "Reports the backend accepted.", f.sent);
        plain("sniffer_outbox_depth", "gauge", "Reports waiting to be sent.", f.outbox);
        plain("sniffer_dead_letters", "gauge", "Reports given up on.", f.dead_letters.len() as u64);
    }
    posture(&mut out, flow.posture());
    let t = flow.timings();
    out.family("sniffer_sbom_duration_seconds", "histogram", "Time to compute an image's SBOM, file index and code.");
    out.histogram("sniffer_sbom_duration_seconds", &[], &t.sbom.snapshot());
    out.family("sniffer_scan_duration_seconds", "histogram", "Time to scan a report against the database.");
    out.histogram("sniffer_scan_duration_seconds", &[("kind", "image")], &t.image_scan.snapshot());
    out.histogram("sniffer_scan_duration_seconds", &[("kind", "instance")], &t.instance_scan.snapshot());
    out.family("sniffer_learning_duration_seconds", "histogram", "How long instances were learned before SBOM'.");
    out.histogram("sniffer_learning_duration_seconds", &[], &t.learning.snapshot());
    out.0
}

/// The findings of every instance and image running on the node.
fn posture(out: &mut Exposition, posture: &coordinator::posture::Posture) {
    let (instances, images) = posture.snapshot();
    out.family(
        "sniffer_findings",
        "gauge",
        "Findings of each instance running on the node, by severity and reachability (from its SBOM').",
    );
    let mut not_scanned = [0u64; 2];
    for row in &instances {
        let Some(tally) = &row.tally else { continue };
        not_scanned[1] += u64::from(!tally.scanned);
        let l = &row.labels;
        for (b, n) in &tally.counts {
            let labels = [
                ("namespace", l.namespace.as_str()),
                ("kind", l.kind.as_str()),
                ("workload", l.workload.as_str()),
                ("container", l.container.as_str()),
                ("image_digest", l.image_digest.as_str()),
                ("severity", b.severity),
                ("reachability", b.reachability),
                ("relevant", if b.relevant { "true" } else { "false" }),
            ];
            out.sample("sniffer_findings", &labels, *n);
        }
    }
    out.family("sniffer_image_findings", "gauge", "Findings of each image running on the node, by severity.");
    for row in &images {
        let Some(tally) = &row.tally else { continue };
        not_scanned[0] += u64::from(!tally.scanned);
        for (severity, n) in tally.by_severity() {
            let labels =
                [("image", row.image.as_str()), ("image_digest", row.image_digest.as_str()), ("severity", severity)];
            out.sample("sniffer_image_findings", &labels, n);
        }
    }
    out.family(
        "sniffer_reports_not_scanned",
        "gauge",
        "Reports of what runs here that were not scanned (no or a broken database): their zero findings mean nothing.",
    );
    out.sample("sniffer_reports_not_scanned", &[("kind", "image")], not_scanned[0]);
    out.sample("sniffer_reports_not_scanned", &[("kind", "instance")], not_scanned[1]);
}

/// Prometheus text format 0.0.4, written as it goes.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &coordinator::timing::HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
            let le = bound.to_string();
            let with: Vec<(&str, &str)> = labels.iter().copied().chain([("le", le.as_str())]).collect();
            self.sample(&bucket, &with, n);
        }
        let with: Vec<(&str, &str)> = labels.iter().copied().chain([("le", "+Inf")]).collect();
        self.sample(&bucket, &with, h.count);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// A label value as the text format wants it: backslash, quote and line feed escaped.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_whole_head_is_read_however_it_arrives() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let sent = tokio::spawn(async move {
            for part in ["GET ", "/metrics", " HTTP/1.0\r\nHost: x\r\n", "\r\n"] {
                client.write_all(part.as_bytes()).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            client
        });
        assert_eq!(read_head(&mut server).await, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        // A head that never ends stops at the bound; a stream that ends, at its end.
        let mut endless = tokio::io::repeat(b'a');
        assert!(read_head(&mut endless).await.len() >= MAX_HEAD);
        drop(sent.await.unwrap());
        assert!(read_head(&mut server).await.is_empty());
    }

    #[test]
    fn label_values_are_escaped_and_histograms_end_at_inf() {
        let mut out = Exposition::default();
        out.sample("m", &[("image", "a\"b\\c\nd")], 1);
        assert_eq!(out.0, "m{image=\"a\\\"b\\\\c\\nd\"} 1\n");
        let h = coordinator::timing::Histogram::new(&[1.0]);
        h.observe(std::time::Duration::from_secs(2));
        let mut out = Exposition::default();
        out.histogram("t", &[("kind", "image")], &h.snapshot());
        assert_eq!(
            out.0,
            "t_bucket{kind=\"image\",le=\"1\"} 0\nt_bucket{kind=\"image\",le=\"+Inf\"} 1\nt_sum{kind=\"image\"} 2\nt_count{kind=\"image\"} 1\n"
        );
    }
}
