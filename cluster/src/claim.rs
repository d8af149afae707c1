//! One SBOM per image, cluster-wide. The first node to start a container of an image
//! creates its [`ImageSbom`] in phase `Computing` with its own name in `spec.node`: that is
//! the reservation, and the API server's `AlreadyExists` tells every later node that another
//! has it. They wait for `Ready` and reuse it; a reservation still computing
//! [`Claimer::takeover_after`] after it was made is taken over (a replace that carries the
//! object's `resourceVersion`, so of two nodes taking over at once one wins).
//!
//! A waiting node watches that one object (a field selector on its name, from the version
//! it read) rather than reading it again and again: when an image rolls out on thousands
//! of nodes, each asks three times (create, read, watch) and then hears from the API
//! server, once, when the SBOM is ready. A watch that ends (the server's timeout, an
//! expired version) is followed by one read and a new watch; a failed one by a jittered
//! backoff.

use std::time::Duration;

use coordinator::ids::Digest;
use coordinator::store::Claim;
use futures::StreamExt;
use kube::Api;
use kube::api::{ObjectMeta, PostParams, WatchEvent, WatchParams};
use sbom::time::Timestamp;

use crate::limit::jittered;
use crate::names;
use crate::resources::{ImageSbom, ImageSbomSpec, Phase};

/// What to do about an image SBOM another node may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is ready: use it.
    Reuse,
    /// Another node is computing it, and has had less than the takeover time: wait.
    Wait,
    /// Take it (its holder is too late, or is this node from before a restart).
    TakeOver,
}

/// The decision about `spec`, as `node` at `now`.
pub fn decide(spec: &ImageSbomSpec, node: &str, now: Timestamp, takeover_after: Duration) -> Decision {
    if spec.phase == Phase::Ready {
        return Decision::Reuse;
    }
    if spec.node == node {
        return Decision::TakeOver;
    }
    // A reservation whose time cannot be read counts as stale.
    let age = Timestamp::parse(&spec.claimed_at).map(|t| {
        let ms = now.unix_millis().saturating_sub(t.unix_millis());
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    });
    match age {
        Ok(age) if age < takeover_after => Decision::Wait,
        _ => Decision::TakeOver,
    }
}

/// The reservation `node` makes.
pub fn reservation(digest: &Digest, image: &str, node: &str, now: Timestamp) -> ImageSbom {
    ImageSbom {
        metadata: ObjectMeta {
            name: Some(names::image_object_name(digest)),
            labels: Some(names::image_labels(digest)),
            ..ObjectMeta::default()
        },
        spec: ImageSbomSpec {
            image: image.to_string(),
            digest: digest.to_string(),
            phase: Phase::Computing,
            node: node.to_string(),
            claimed_at: now.to_string(),
            distro: None,
            packages: Vec::new(),
            package_count: 0,
            truncated: false,
            incomplete: false,
        },
    }
}

/// Claims image SBOMs for one node.
pub struct Claimer {
    api: Api<ImageSbom>,
    node: String,
    /// How long another node's reservation is waited for before it is taken over.
    pub takeover_after: Duration,
    /// Longest one watch is asked to last (the API server ends it then; it is renewed).
    pub watch_for: Duration,
    /// Base of the jittered pause after a watch that failed.
    pub retry: Duration,
}

/// How watching a reservation ended.
#[derive(Debug, PartialEq, Eq)]
enum Watched {
    /// The SBOM is ready.
    Ready,
    /// The reservation was deleted: reserve again.
    Deleted,
    /// The watch ended without either (its time, an expired version, the waiting time
    /// over, a failure): read the object again and decide.
    Ended,
}

impl Claimer {
    /// Claims made as `node` through `api`.
    pub fn new(api: Api<ImageSbom>, node: &str, takeover_after: Duration) -> Self {
        Claimer {
            api,
            node: node.to_string(),
            takeover_after,
            watch_for: Duration::from_secs(290),
            retry: Duration::from_secs(2),
        }
    }

    fn params() -> PostParams {
        PostParams { dry_run: false, field_manager: Some(crate::FIELD_MANAGER.into()) }
    }

    /// Reserves `digest`'s SBOM (`Mine`), or waits for another node's to be ready
    /// (`Theirs`), taking over one that is not ready in time. Returns the time of this
    /// node's reservation with `Mine`.
    pub async fn claim(&self, digest: &Digest, image: &str) -> Result<(Claim, Timestamp), kube::Error> {
        let name = names::image_object_name(digest);
        // Waited for by this node's own clock too: a holder whose clock runs ahead would
        // otherwise be waited for as long as it is ahead.
        let started = tokio::time::Instant::now();
        // Whether to try to create it first (not after a watch ended: it exists).
        let mut create = true;
        loop {
            let now = Timestamp::now();
            if create {
                match self.api.create(&Self::params(), &reservation(digest, image, &self.node, now)).await {
                    Ok(_) => return Ok((Claim::Mine, now)),
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e),
                }
            }
            create = true;
            // Deleted between the two calls: try to create it again.
            let Some(existing) = self.api.get_opt(&name).await? else { continue };
            let waited = started.elapsed();
            let mut decision = decide(&existing.spec, &self.node, Timestamp::now(), self.takeover_after);
            if decision == Decision::Wait && waited >= self.takeover_after {
                decision = Decision::TakeOver;
            }
            match decision {
                Decision::Reuse => return Ok((Claim::Theirs, now)),
                Decision::Wait => {
                    let version = existing.metadata.resource_version.clone().unwrap_or_default();
                    let left = self.takeover_after.saturating_sub(waited);
                    match self.watch(&name, &version, left.min(self.watch_for)).await {
                        Watched::Ready => return Ok((Claim::Theirs, now)),
                        Watched::Deleted => {}
                        Watched::Ended => create = false,
                    }
                }
                Decision::TakeOver => {
                    let now = Timestamp::now();
                    let mut taken = existing;
                    taken.spec.node = self.node.clone();
                    taken.spec.claimed_at = now.to_string();
                    taken.spec.phase = Phase::Computing;
                    // Carries the resourceVersion read: a node that took it first wins.
                    match self.api.replace(&name, &Self::params(), &taken).await {
                        Ok(_) => return Ok((Claim::Mine, now)),
                        Err(kube::Error::Api(s)) if s.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Watches the object `name` from `version` for at most `limit`.
    async fn watch(&self, name: &str, version: &str, limit: Duration) -> Watched {
        let seconds = u32::try_from(limit.as_secs().max(1)).unwrap_or(u32::MAX);
        let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(seconds);
        let deadline = tokio::time::Instant::now() + limit;
        let events = match self.api.watch(&params, version).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(object = name, error = %coordinator::chain(&e), "watching a reservation failed; read again");
                tokio::time::sleep(jittered(self.retry)).await;
                return Watched::Ended;
            }
        };
        let mut events = std::pin::pin!(events);
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)))) if o.spec.phase == Phase::Ready => {
                    return Watched::Ready;
                }
                Ok(Some(Ok(WatchEvent::Deleted(_)))) => return Watched::Deleted,
                Ok(Some(Ok(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Bookmark(_)))) => {}
                // An expired version (410), the server's timeout, the waiting time over.
                Ok(Some(Ok(WatchEvent::Error(_)))) | Ok(None) | Err(_) => return Watched::Ended,
                Ok(Some(Err(e))) => {
                    tracing::warn!(object = name, error = %coordinator::chain(&e), "watching a reservation broke off; read again");
                    tokio::time::sleep(jittered(self.retry)).await;
                    return Watched::Ended;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(phase: Phase, node: &str, claimed_at: &str) -> ImageSbomSpec {
        let mut s = reservation(&Digest::from("sha256:ab"), "img", node, Timestamp::now()).spec;
        s.phase = phase;
        s.claimed_at = claimed_at.into();
        s
    }

    #[test]
    fn ready_is_reused_fresh_is_waited_for_stale_or_own_is_taken_over() {
        let now = Timestamp::parse("2026-11-30T10:00:00Z").unwrap();
        let limit = Duration::from_secs(600);
        assert_eq!(decide(&spec(Phase::Ready, "b", "2026-11-30T00:00:00Z"), "a", now, limit), Decision::Reuse);
        assert_eq!(decide(&spec(Phase::Computing, "b", "2026-11-30T09:55:00Z"), "a", now, limit), Decision::Wait);
        assert_eq!(decide(&spec(Phase::Computing, "b", "2026-11-30T09:49:59Z"), "a", now, limit), Decision::TakeOver);
        assert_eq!(decide(&spec(Phase::Computing, "a", "2026-11-30T09:59:00Z"), "a", now, limit), Decision::TakeOver);
        assert_eq!(decide(&spec(Phase::Computing, "b", "garbage"), "a", now, limit), Decision::TakeOver);
        // A reservation from the future (a node's clock ahead) is waited for, not taken.
        assert_eq!(decide(&spec(Phase::Computing, "b", "2026-11-30T10:05:00Z"), "a", now, limit), Decision::Wait);
    }
}
