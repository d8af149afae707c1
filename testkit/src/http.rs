//! A loopback HTTP backend that records what it accepts and can refuse on demand.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A loopback address nothing listens on now.
pub fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// What the receiver accepted: (idempotency key, authorization, body) of each POST.
pub type Received = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

/// Receives POSTs; answers 503 to the first `down`. Keeps (idempotency key, auth, body).
pub fn receiver(down: usize) -> (String, Received) {
    receiver_when(move |n| n >= down)
}

/// Receives POSTs; accepts request `n` (from 0) when `accept(n)`, else answers 503. Keeps
/// (idempotency key, auth, body) of what it accepted.
pub fn receiver_when(accept: impl Fn(usize) -> bool + Send + 'static) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reports", listener.local_addr().unwrap());
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = if accept(n) { "200 OK" } else { "503 Service Unavailable" };
            if accept(n) {
                let body = serde_json::from_slice(&body).unwrap_or_default();
                g.lock().unwrap().push((
                    headers.remove("idempotency-key").unwrap_or_default(),
                    headers.remove("authorization").unwrap_or_default(),
                    body,
                ));
            }
            let _ = conn
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
    });
    (url, got)
}

/// `GET path` from `addr` over HTTP/1.0 (no chunking): (status, body). `path` is sent as
/// given; [`query_escape`] a query's values.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut conn = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// A query string value, percent-encoded.
pub fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
