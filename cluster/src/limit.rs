//! A client-side rate limit on what this node writes to the API server (kubelet's
//! `--kube-api-qps` and `--kube-api-burst`): a token bucket, `burst` deep, refilled at
//! `qps`. Its lock is held only to count, never across a wait. And the jitter every
//! backoff takes, so that nodes that failed together do not come back together.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket.
#[derive(Debug)]
pub struct RateLimit {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// `qps` requests a second on average, `burst` at once (both at least one request:
    /// a limit of zero would stop the agent writing anything).
    pub fn new(qps: f64, burst: u32) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit {
            qps: if qps.is_finite() && qps > 0.0 { qps } else { 1.0 },
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits for a token and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let (tokens, last) = *state;
                let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
                if tokens >= 1.0 {
                    *state = (tokens - 1.0, now);
                    return;
                }
                *state = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// `base` plus up to as much again, at random: nodes that failed together do not retry
/// together.
pub fn jittered(base: Duration) -> Duration {
    base + base.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let limit = RateLimit::new(5.0, 10);
        let start = Instant::now();
        for _ in 0..10 {
            limit.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1), "the burst is free");
        for _ in 0..20 {
            limit.acquire().await;
        }
        // 20 more at 5 a second: 4 s.
        let took = start.elapsed().as_secs_f64();
        assert!((3.9..4.1).contains(&took), "{took}");
        // Nonsense limits still let requests through, one a second.
        let odd = RateLimit::new(0.0, 0);
        odd.acquire().await;
        let t = Instant::now();
        odd.acquire().await;
        assert!((t.elapsed().as_secs_f64() - 1.0).abs() < 0.01);
    }
}
