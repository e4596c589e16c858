//! A fixed-bucket histogram of relaxed atomics: what an OpenTelemetry explicit-bucket
//! histogram aggregates, and what the Prometheus text format's `_bucket{le=…}` lines render.
//!
//! Recording is two `fetch_add`s (the bucket and the sum) and a scan of 14 bounds: no lock,
//! no allocation, so it can sit on every request. The pool's hdrhistogram summaries keep
//! percentiles; these keep counts per bucket, which is what dashboards aggregate across
//! processes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The number of explicit bounds; there is one bucket more (above the last bound, `+Inf`).
pub(crate) const BOUNDS: usize = 14;

/// Explicit bucket upper bounds, inclusive (OpenTelemetry and Prometheus both count a value
/// equal to a bound in that bound's bucket), in seconds and in nanoseconds.
#[derive(Debug)]
pub(crate) struct Bounds {
    pub(crate) seconds: [f64; BOUNDS],
    nanos: [u64; BOUNDS],
}

impl Bounds {
    /// Bounds from seconds (ascending); the nanosecond copy is what `record` compares with.
    pub(crate) const fn new(seconds: [f64; BOUNDS]) -> Bounds {
        let mut nanos = [0; BOUNDS];
        let mut i = 0;
        while i < BOUNDS {
            // Rounded: 0.075 s is not exact in binary, and must still be 75 ms.
            nanos[i] = (seconds[i] * 1e9 + 0.5) as u64;
            i += 1;
        }
        Bounds { seconds, nanos }
    }

    fn bucket_of(&self, nanos: u64) -> usize {
        self.nanos
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS)
    }
}

/// Counts per bucket and the sum of the recorded values.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    counts: [AtomicU64; BOUNDS + 1],
    sum_nanos: AtomicU64,
}

impl Buckets {
    pub(crate) fn record(&self, bounds: &Bounds, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bounds.bucket_of(nanos)].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// The counts and sum now (read one by one: not a consistent cut while recording goes on).
    pub(crate) fn snapshot(&self) -> BucketCounts {
        BucketCounts {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum: Duration::from_nanos(self.sum_nanos.load(Relaxed)),
        }
    }
}

/// A histogram's counts per bucket (not cumulative; the last is above every bound) and sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BucketCounts {
    pub(crate) counts: [u64; BOUNDS + 1],
    pub(crate) sum: Duration,
}

impl BucketCounts {
    /// Values recorded.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds::new([
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ]);

    /// A value equal to a bound counts in that bound's bucket; one above every bound in the
    /// last; the sum is exact.
    #[test]
    fn values_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let buckets = Buckets::default();
        buckets.record(&B, Duration::from_millis(5));
        buckets.record(&B, Duration::from_micros(5_001));
        buckets.record(&B, Duration::ZERO);
        buckets.record(&B, Duration::from_secs(11));
        let snap = buckets.snapshot();
        assert_eq!(snap.counts[0], 2);
        assert_eq!(snap.counts[1], 1);
        assert_eq!(snap.counts[BOUNDS], 1);
        assert_eq!(snap.count(), 4);
        assert_eq!(snap.sum, Duration::from_micros(5_000 + 5_001 + 11_000_000));
    }
}
