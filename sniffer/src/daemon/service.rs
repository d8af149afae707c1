//! The local API on the Unix socket: one JSON request per connection and one reply, except
//! [`Request::Follow`], which keeps the connection and streams events.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::Daemon;
use crate::api::{Request, Response, Status};
use crate::cgroup;

/// Longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;
/// A follower whose client has not taken a line for this long is dropped.
const FOLLOW_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A follower with nothing to say writes an empty line this often, which finds clients
/// that went away.
const FOLLOW_KEEPALIVE: Duration = Duration::from_secs(15);

const FLOW_OFF: &str = "the flow is not running in this daemon (started with --no-flow)";

/// Serves one connection.
pub(super) async fn serve(stream: UnixStream, daemon: Daemon) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST)).read_line(&mut line).await.context("reading the request")?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Follow { from }) => {
            let Some(flow) = &daemon.flow else {
                return reply(&mut write, &Response::Error { message: FLOW_OFF.into() }).await;
            };
            return follow(flow.bus(), from, write).await.context("following events");
        }
        Ok(Request::LearnStop { container }) => learn_stop(&daemon, &container).await,
        // Everything else reads the store or the kernel's maps: the blocking pool's work.
        Ok(request) => {
            let d = daemon.clone();
            tokio::task::spawn_blocking(move || handle(&d, request))
                .await
                .unwrap_or_else(|e| Response::Error { message: format!("the request failed: {e}") })
        }
        Err(e) => Response::Error { message: format!("malformed request: {e}") },
    };
    reply(&mut write, &response).await
}

async fn reply(write: &mut (impl AsyncWrite + Unpin), response: &Response) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec(response)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    Ok(())
}

/// Streams every event numbered `from` or later to `out`, one JSON [`Followed`] per line
/// (empty lines are keep-alives), until the client goes or stops reading.
///
/// [`Followed`]: coordinator::bus::Followed
pub async fn follow(bus: &coordinator::bus::Bus, from: u64, mut out: impl AsyncWrite + Unpin) -> std::io::Result<()> {
    let mut follower = bus.follow(from);
    loop {
        let line = match tokio::time::timeout(FOLLOW_KEEPALIVE, follower.next()).await {
            Ok(Some(item)) => {
                let mut line = serde_json::to_vec(&item)?;
                line.push(b'\n');
                line
            }
            Ok(None) => return Ok(()),
            Err(_) => b"\n".to_vec(),
        };
        match tokio::time::timeout(FOLLOW_WRITE_TIMEOUT, out.write_all(&line)).await {
            Ok(Ok(())) => {}
            // The client went away.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the follower stopped reading"));
            }
        }
    }
}

async fn learn_stop(daemon: &Daemon, which: &str) -> Response {
    let Some(c) = &daemon.flow else { return Response::Error { message: FLOW_OFF.into() } };
    match c.learn_stop(which).await {
        Ok(true) => Response::Ok { message: format!("learning of {which} ended; SBOM' stored") },
        Ok(false) => Response::Error { message: format!("{which} is not being learned") },
        Err(e) => Response::Error { message: coordinator::chain(&e) },
    }
}

/// Answers a request; may block (store reads, map syscalls, a stat of a cgroup).
fn handle(daemon: &Daemon, request: Request) -> Response {
    let result = match request {
        Request::Status => status(daemon),
        Request::Containers => Ok(Response::Containers { containers: daemon.tracking.summaries() }),
        Request::Files { container } => match daemon.tracking.files(&container) {
            Some((container, files)) => Ok(Response::Files { container, files }),
            None => Err(format!("no container {container:?} is watched")),
        },
        Request::Watch { cgroup, name } => watch(daemon, &cgroup, name),
        Request::Unwatch { container } => unwatch(daemon, &container),
        Request::Events { after } => match &daemon.flow {
            Some(c) => Ok(Response::Events { events: c.bus().history(after), next: c.bus().next_seq() }),
            None => Err(FLOW_OFF.into()),
        },
        Request::Sbom { key } => match &daemon.flow {
            Some(c) => match c.sbom_for(&key) {
                Ok(Some((sbom, runtime))) => {
                    Ok(Response::Sbom { sbom: Box::new(sbom), runtime: runtime.map(Box::new) })
                }
                Ok(None) => Err(format!("no SBOM for {key:?} (yet)")),
                Err(e) => Err(coordinator::chain(&e)),
            },
            None => Err(FLOW_OFF.into()),
        },
        Request::Report { key } => match &daemon.flow {
            Some(c) => match c.find_report(&key) {
                Ok(Some(r)) => Ok(Response::Report(Box::new(r))),
                Ok(None) => Err(format!("no report for {key:?} (yet)")),
                Err(e) => Err(coordinator::chain(&e)),
            },
            None => Err(FLOW_OFF.into()),
        },
        Request::LearnStop { .. } | Request::Follow { .. } => Err("served apart".into()),
    };
    result.unwrap_or_else(|message| Response::Error { message })
}

fn status(daemon: &Daemon) -> Result<Response, String> {
    let (events, events_per_s) = daemon.tracking.rate();
    Ok(Response::Status(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        programs: daemon.kernel.attached().to_vec(),
        file_reads: Some(daemon.kernel.file_reads()),
        probes: Some(daemon.probes.status()),
        uptime_s: daemon.started.elapsed().as_secs(),
        events,
        events_per_s,
        kernel: daemon.kernel.stats().map_err(|e| coordinator::chain(&e))?,
        watched: daemon.tracking.watched().len(),
        flow: match &daemon.flow {
            Some(c) => Some(c.status().map_err(|e| coordinator::chain(&e))?),
            None => None,
        },
    }))
}

fn watch(daemon: &Daemon, dir: &std::path::Path, name: Option<String>) -> Result<Response, String> {
    let id = cgroup::id_of(dir).map_err(|e| format!("cgroup {}: {e}", dir.display()))?;
    let name = name.unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    daemon.kernel.watch(id).map_err(|e| coordinator::chain(&e))?;
    Ok(Response::Container(daemon.tracking.watch(id, Some(&name), &[])))
}

fn unwatch(daemon: &Daemon, key: &str) -> Result<Response, String> {
    let id = daemon.tracking.find(key).ok_or_else(|| format!("no container {key:?} is watched"))?;
    let lost = daemon.kernel.unwatch(id).map_err(|e| coordinator::chain(&e))?;
    daemon.tracking.unwatch(id, lost).map(Response::Container).ok_or_else(|| format!("no container {key:?} is watched"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coordinator::bus::{Bus, FlowEvent, Followed};
    use tokio::io::AsyncBufReadExt;

    use super::*;

    /// 5,000 events, published by another thread while a follower streams them over a real
    /// socket pair: every one arrives, once and in order (the API used to page through a
    /// history of 1,000 and go silent past it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follow_streams_5000_events_over_a_socket_in_order() {
        let bus = Arc::new(Bus::default());
        let (client, server) = UnixStream::pair().unwrap();
        let b = bus.clone();
        let server = tokio::spawn(async move { follow(&b, 0, server).await });
        while bus.followers() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let b = bus.clone();
        let publisher = std::thread::spawn(move || {
            // 50,000 events a second at most: far more than the flow ever publishes.
            for i in 0..5000 {
                b.publish(FlowEvent::WorkloadExited { id: format!("c{i}") });
                if i % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let mut lines = BufReader::new(client).lines();
        let mut seqs = Vec::new();
        while seqs.len() < 5000 {
            let line =
                tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
            match serde_json::from_str::<Followed>(&line).unwrap() {
                Followed::Event(e) => {
                    assert_eq!(e.event, FlowEvent::WorkloadExited { id: format!("c{}", e.seq) });
                    seqs.push(e.seq);
                }
                Followed::Missed { count } => panic!("missed {count} after {} events", seqs.len()),
            }
        }
        publisher.join().unwrap();
        assert_eq!(seqs, (0..5000).collect::<Vec<u64>>());
        // The client hangs up: the server's follower ends at its next write.
        drop(lines);
        bus.publish(FlowEvent::WorkloadExited { id: "last".into() });
        let ended = tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
        assert!(ended.is_ok(), "{ended:?}");
    }
}
