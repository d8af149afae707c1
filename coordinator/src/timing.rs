//! How long the flow's steps take, as histograms with a few fixed buckets: enough to see
//! an image whose SBOM takes minutes, or scans slowing as the database grows, at a bounded
//! cost (one counter per bucket, no label from outside).

use std::sync::Mutex;
use std::time::Duration;

/// A histogram's cumulative counts, as Prometheus exposes them.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, in seconds, ascending (`+Inf` is implied).
    pub bounds: &'static [f64],
    /// Observations at or below each bound.
    pub cumulative: Vec<u64>,
    /// Sum of the observations, in seconds.
    pub sum: f64,
    /// Observations.
    pub count: u64,
}

/// Durations, in fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    /// A histogram with these upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, inner: Mutex::new((vec![0; bounds.len()], 0.0, 0)) }
    }

    /// Counts one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = self.bounds.iter().position(|b| secs <= *b);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = slot {
            inner.0[i] += 1;
        }
        inner.1 += secs;
        inner.2 += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let (per_bucket, sum, count) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cumulative = per_bucket
            .iter()
            .scan(0, |acc, n| {
                *acc += n;
                Some(*acc)
            })
            .collect();
        HistogramSnapshot { bounds: self.bounds, cumulative, sum, count }
    }
}

/// The flow's histograms.
#[derive(Debug)]
pub struct Timings {
    /// Computing an image's SBOM (with its file index and code).
    pub sbom: Histogram,
    /// Scanning an image's SBOM.
    pub image_scan: Histogram,
    /// Scanning an instance's SBOM and SBOM'.
    pub instance_scan: Histogram,
    /// How long instances were learned before their SBOM' was made.
    pub learning: Histogram,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            sbom: Histogram::new(&[0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
            image_scan: Histogram::new(SCAN),
            instance_scan: Histogram::new(SCAN),
            learning: Histogram::new(&[10.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0]),
        }
    }
}

const SCAN: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_an_overflow_counts_only_in_the_total() {
        let h = Histogram::new(&[1.0, 10.0]);
        for s in [0.5, 1.0, 5.0, 100.0] {
            h.observe(Duration::from_secs_f64(s));
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative, [2, 3]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 106.5).abs() < 1e-9);
    }
}
