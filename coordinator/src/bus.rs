//! The typed event bus (the seed's Gateway): every transition of the flow is an event,
//! numbered, broadcast to whoever follows (`sniffer events --follow`) and kept in a short
//! history.
//!
//! Lock rule: the history's lock is held only to number an event and push it; the
//! broadcast happens after it is released, so a publisher never wakes anyone while holding
//! it. A follower may therefore receive two events out of order by a step; it orders
//! itself by sequence number against the history it replayed.

use std::collections::VecDeque;
use std::sync::Mutex;

use sbom::time::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ids::{Digest, EndReason, InstanceId, ReportId};
use crate::model::ReportKind;

/// One transition. Field names are the wire's (`sniffer events --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FlowEvent {
    /// A container was discovered and is being watched.
    WorkloadStarted {
        /// Container id.
        id: String,
        /// Image reference.
        image: String,
        /// Image digest.
        digest: Digest,
        /// The instance it belongs to.
        instance: InstanceId,
    },
    /// The image already had an SBOM: not recomputed.
    SbomReused {
        /// Image digest.
        digest: Digest,
    },
    /// The image SBOM was computed and stored.
    SbomStored {
        /// Image digest.
        digest: Digest,
        /// Packages found.
        packages: usize,
        /// How long it took.
        millis: u64,
    },
    /// The SBOM could not be computed.
    SbomFailed {
        /// Image digest.
        digest: Digest,
        /// Why, with its causes.
        error: String,
    },
    /// A report was stored and queued for submission.
    ReportStored {
        /// Report id.
        id: ReportId,
        /// `image` or `instance`.
        kind: ReportKind,
        /// Image digest or instance id.
        key: String,
        /// Findings in it.
        findings: usize,
    },
    /// The instance already had SBOM': not sniffed.
    #[serde(rename = "prime_reused")]
    RuntimeSbomReused {
        /// The instance.
        instance: InstanceId,
    },
    /// Another replica of the same instance is being learned here: this one is not sniffed.
    ReplicaNotSniffed {
        /// Container id.
        id: String,
        /// The instance.
        instance: InstanceId,
    },
    /// Learning began.
    LearningStarted {
        /// The instance.
        instance: InstanceId,
    },
    /// Learning ended.
    LearningEnded {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: EndReason,
        /// Distinct paths learned.
        paths: usize,
    },
    /// SBOM' stored.
    #[serde(rename = "prime_stored")]
    RuntimeSbomStored {
        /// The instance.
        instance: InstanceId,
        /// Packages in its SBOM'.
        packages: usize,
    },
    /// A report reached the backend.
    Submitted {
        /// Report id.
        id: ReportId,
        /// Attempts it took.
        attempts: u32,
    },
    /// A submission failed; it will be retried.
    SubmitFailed {
        /// Report id.
        id: ReportId,
        /// Attempts so far.
        attempts: u32,
        /// Why, with its causes.
        error: String,
    },
    /// A report went to the dead-letter list (too old).
    DeadLettered {
        /// Report id.
        id: ReportId,
        /// Why.
        reason: String,
    },
    /// A container exited.
    WorkloadExited {
        /// Container id.
        id: String,
    },
}

/// Stamped event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Its number: 0 for the daemon's first event, one more for each after it.
    #[serde(default)]
    pub seq: u64,
    /// When, written to the millisecond.
    #[serde(with = "sbom::time::millis")]
    pub at: Timestamp,
    /// The event.
    #[serde(flatten)]
    pub event: FlowEvent,
}

/// What a follower gets next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "follow", rename_all = "snake_case")]
pub enum Followed {
    /// An event.
    Event(Stamped),
    /// The follower fell behind and `count` events went by unseen; the next event follows.
    Missed {
        /// How many.
        count: u64,
    },
}

/// Broadcast plus a bounded history.
pub struct Bus {
    tx: broadcast::Sender<Stamped>,
    history: Mutex<History>,
}

#[derive(Default)]
struct History {
    next: u64,
    kept: VecDeque<Stamped>,
}

/// Events kept for `sniffer events` without --follow.
const HISTORY: usize = 1000;
/// Events a follower may fall behind by before it misses some.
const FOLLOW_BUFFER: usize = 4096;

impl Default for Bus {
    fn default() -> Self {
        Bus::with_buffer(FOLLOW_BUFFER)
    }
}

impl Bus {
    /// A bus whose followers may fall `buffer` events behind.
    pub fn with_buffer(buffer: usize) -> Self {
        Bus { tx: broadcast::channel(buffer.max(1)).0, history: Mutex::new(History::default()) }
    }

    fn history_lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an event (and logs it).
    pub fn publish(&self, event: FlowEvent) {
        tracing::info!(event = ?event, "flow");
        let at = Timestamp::now();
        let stamped = {
            let mut h = self.history_lock();
            let stamped = Stamped { seq: h.next, at, event };
            h.next += 1;
            if h.kept.len() == HISTORY {
                h.kept.pop_front();
            }
            h.kept.push_back(stamped.clone());
            stamped
        };
        // No follower is not an error.
        let _ = self.tx.send(stamped);
    }

    /// Events kept (the last thousand) numbered `after` or later.
    pub fn history(&self, after: u64) -> Vec<Stamped> {
        self.history_lock().kept.iter().filter(|e| e.seq >= after).cloned().collect()
    }

    /// The number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.history_lock().next
    }

    /// Followers now.
    pub fn followers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Follows every event numbered `from` or later: first those still kept, then each
    /// new one as it is published.
    pub fn follow(&self, from: u64) -> Follower {
        // Subscribe before reading the history, so nothing falls between the two.
        let rx = self.tx.subscribe();
        // The kept events and the next number, read together: an event published between
        // two reads would otherwise be counted as missed and then delivered as well.
        let (replay, published): (VecDeque<Stamped>, u64) = {
            let h = self.history_lock();
            (h.kept.iter().filter(|e| e.seq >= from).cloned().collect(), h.next)
        };
        let oldest_kept = replay.front().map(|e| e.seq).unwrap_or(published);
        let next = replay.back().map(|e| e.seq + 1).unwrap_or(from);
        // Events from `from` up to the oldest kept one are gone for good.
        let missed = oldest_kept.saturating_sub(from);
        Follower { rx, replay, next, missed }
    }
}

/// A follower of the bus: [`Follower::next`] gives every event in order, and says how many
/// went by when it fell behind.
pub struct Follower {
    rx: broadcast::Receiver<Stamped>,
    replay: VecDeque<Stamped>,
    /// The sequence number expected next.
    next: u64,
    /// Misses to report before the next event.
    missed: u64,
}

impl Follower {
    /// The next event, or how many were missed; `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<Followed> {
        if self.missed > 0 {
            let count = std::mem::take(&mut self.missed);
            return Some(Followed::Missed { count });
        }
        if let Some(e) = self.replay.pop_front() {
            return Some(Followed::Event(e));
        }
        loop {
            match self.rx.recv().await {
                // Already given from the history.
                Ok(e) if e.seq < self.next => continue,
                Ok(e) => {
                    self.next = e.seq + 1;
                    return Some(Followed::Event(e));
                }
                Err(broadcast::error::RecvError::Lagged(count)) => return Some(Followed::Missed { count }),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ev(i: usize) -> FlowEvent {
        FlowEvent::WorkloadExited { id: format!("c{i}") }
    }

    #[test]
    fn events_are_numbered_and_the_history_is_bounded() {
        let bus = Bus::default();
        for i in 0..1500 {
            bus.publish(ev(i));
        }
        let h = bus.history(0);
        assert_eq!(h.len(), HISTORY);
        assert_eq!((h[0].seq, h[HISTORY - 1].seq), (500, 1499));
        assert_eq!(bus.history(1490).len(), 10);
        assert_eq!(bus.next_seq(), 1500);
    }

    /// 5,000 events published by another thread while a follower reads: every one arrives,
    /// once, in order, past the history's thousand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_that_keeps_up_gets_all_5000_events_in_order() {
        let bus = Arc::new(Bus::default());
        bus.publish(ev(0));
        let mut f = bus.follow(0);
        let publisher = {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for i in 1..5000 {
                    bus.publish(ev(i));
                    if i % 500 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
            })
        };
        let mut seqs = Vec::new();
        while seqs.len() < 5000 {
            match tokio::time::timeout(std::time::Duration::from_secs(10), f.next()).await {
                Ok(Some(Followed::Event(e))) => {
                    assert_eq!(e.event, ev(e.seq as usize));
                    seqs.push(e.seq);
                }
                other => panic!("after {} events: {other:?}", seqs.len()),
            }
        }
        publisher.join().unwrap();
        assert_eq!(seqs, (0..5000).collect::<Vec<u64>>());
    }

    /// A follower that does not read while 5,000 events go by is told how many it missed,
    /// and what it got plus what it missed is every event.
    #[tokio::test]
    async fn a_follower_that_falls_behind_is_told_how_many_it_missed() {
        let bus = Bus::with_buffer(256);
        let mut f = bus.follow(0);
        for i in 0..5000 {
            bus.publish(ev(i));
        }
        let (mut got, mut missed, mut last) = (0u64, 0u64, None);
        while got + missed < 5000 {
            match f.next().await {
                Some(Followed::Event(e)) => {
                    assert!(last.is_none_or(|l| e.seq > l), "in order");
                    last = Some(e.seq);
                    got += 1;
                }
                Some(Followed::Missed { count }) => missed += count,
                None => panic!("bus closed"),
            }
        }
        assert_eq!(got + missed, 5000);
        assert!(missed > 0 && got >= 256, "got {got}, missed {missed}");
        assert_eq!(last, Some(4999));
    }

    /// Following from a number older than the history says the older ones are gone.
    #[tokio::test]
    async fn following_from_before_the_history_reports_the_gap() {
        let bus = Bus::default();
        for i in 0..1200 {
            bus.publish(ev(i));
        }
        let mut f = bus.follow(100);
        assert_eq!(f.next().await, Some(Followed::Missed { count: 100 }));
        match f.next().await {
            Some(Followed::Event(e)) => assert_eq!(e.seq, 200),
            other => panic!("{other:?}"),
        }
        let mut up_to_date = bus.follow(1200);
        bus.publish(ev(1200));
        match up_to_date.next().await {
            Some(Followed::Event(e)) => assert_eq!(e.seq, 1200),
            other => panic!("{other:?}"),
        }
    }
}
