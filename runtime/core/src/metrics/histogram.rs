//! A duration histogram updated with two relaxed atomic additions, no lock: the call path
//! observes one per call (the count is the buckets' sum, added up when it is read).
//! prometheus-client's own histogram takes a mutex per observation.
//!
//! Fixed buckets from 10 µs by factors of 4 up to about 42 s (module calls take
//! microseconds, requests milliseconds), plus `+Inf`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(feature = "metrics")]
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
#[cfg(feature = "metrics")]
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds of the finite buckets, in nanoseconds: 10 µs x 4^i.
const BOUNDS_NS: [u64; 12] = {
    let mut b = [0u64; 12];
    let mut i = 0;
    let mut v = 10_000u64;
    while i < 12 {
        b[i] = v;
        v *= 4;
        i += 1;
    }
    b
};

#[derive(Default)]
struct Inner {
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: [AtomicU64; 13],
    sum_ns: AtomicU64,
}

/// A cheap-to-clone handle on one histogram.
#[derive(Clone, Default)]
pub struct DurationHistogram(Arc<Inner>);

impl std::fmt::Debug for DurationHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DurationHistogram")
    }
}

impl DurationHistogram {
    /// Counts one observation.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.iter().position(|b| ns <= *b).unwrap_or(12);
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket (upper bound in seconds, count)).
    #[cfg(feature = "metrics")]
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = BOUNDS_NS
            .iter()
            .map(|b| *b as f64 / 1e9)
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        (
            self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            // Always the buckets' sum, so a reader never sees them disagree.
            buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        )
    }
}

#[cfg(feature = "metrics")]
impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

#[cfg(feature = "metrics")]
impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_sum() {
        let h = DurationHistogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(10));
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_secs(100));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 4);
        assert!((sum - 100.000_026).abs() < 1e-9);
        assert_eq!(buckets[0], (0.000_01, 2));
        assert_eq!(buckets[1], (0.000_04, 1));
        assert_eq!(buckets[12].1, 1);
        assert!(buckets[12].0.is_infinite());
    }
}
