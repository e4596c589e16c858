//! The counters the pool keeps while it runs: relaxed atomics (each on its own cache line)
//! and latency histograms, each mirrored to the `metrics` facade when that feature is on.
//! [`ConnectionPoolManager::stats`](crate::ConnectionPoolManager::stats) reads them into a
//! [`PoolStats`](crate::PoolStats).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics;
use crate::stats::LatencySummary;

/// Pool-wide counters. `<noun>_<outcome>` names; all `Relaxed`. Each is mirrored to the
/// `metrics` facade when that feature is on (see `metrics.rs`).
#[derive(Debug)]
pub(crate) struct PoolCounters {
    pub(crate) connections_opened: Tally,
    pub(crate) connections_closed: Tally,
    pub(crate) connects_failed: Tally,
    pub(crate) acquires_succeeded: Tally,
    pub(crate) acquires_failed: Tally,
    /// Leases on a connection that had already served one: the handshake saved.
    pub(crate) leases_reused: Tally,
    /// Leases on another origin's connection (HTTP/2 coalescing).
    pub(crate) leases_coalesced: Tally,
    pub(crate) handles_outstanding: Level,
    pub(crate) requests_sent: Tally,
    pub(crate) requests_failed: Tally,
    /// Requests re-sent on another connection because they provably never reached the server.
    pub(crate) requests_retried: Tally,
    acquire_latency: LatencyRecorder,
    time_in_queue: QueueTimeRecorder,
}

impl PoolCounters {
    pub(crate) fn new() -> PoolCounters {
        use metrics::{counter, counter_with, gauge, histogram};
        PoolCounters {
            connections_opened: Tally::new(counter(metrics::CONNECTIONS_OPENED)),
            connections_closed: Tally::new(counter(metrics::CONNECTIONS_CLOSED)),
            connects_failed: Tally::new(counter(metrics::CONNECTS_FAILED)),
            acquires_succeeded: Tally::new(counter_with(metrics::ACQUIRES, "outcome", "ok")),
            acquires_failed: Tally::new(counter_with(metrics::ACQUIRES, "outcome", "error")),
            leases_reused: Tally::new(counter(metrics::LEASES_REUSED)),
            leases_coalesced: Tally::new(counter(metrics::LEASES_COALESCED)),
            handles_outstanding: Level::new(gauge(metrics::HANDLES_OUTSTANDING)),
            requests_sent: Tally::new(counter_with(metrics::REQUESTS, "outcome", "sent")),
            requests_failed: Tally::new(counter_with(metrics::REQUESTS, "outcome", "failed")),
            requests_retried: Tally::new(counter(metrics::REQUESTS_RETRIED)),
            acquire_latency: LatencyRecorder::new(histogram(metrics::ACQUIRE_DURATION)),
            time_in_queue: QueueTimeRecorder::new(),
        }
    }

    /// Records a successful acquire of `urgency` that waited in the queue for all of `total`.
    pub(crate) fn record_queued_acquire(&self, total: Duration, urgency: u8) {
        self.acquires_succeeded.add(1);
        self.acquire_latency.record_n(total, 1);
        self.time_in_queue.record(urgency, total);
    }

    /// Records a successful acquire that found a free slot at once; `sample` is its latency
    /// when this one was sampled (one in [`FAST_ACQUIRE_SAMPLING`], recorded with that weight:
    /// such an acquire takes a fraction of a microsecond, and reading the clock twice and
    /// locking the histogram cost as much again).
    pub(crate) fn record_fast_acquire(&self, sample: Option<Duration>) {
        self.acquires_succeeded.add(1);
        if let Some(d) = sample {
            self.acquire_latency.record_n(d, FAST_ACQUIRE_SAMPLING);
        }
    }

    /// Records a connection's end (how long it was open goes to its origin's
    /// `http.client.connection.duration`, `otel.rs`).
    pub(crate) fn record_connection_closed(&self) {
        self.connections_closed.add(1);
    }

    pub(crate) fn acquire_latency(&self) -> LatencySummary {
        self.acquire_latency.summary()
    }

    pub(crate) fn time_in_queue(&self) -> LatencySummary {
        self.time_in_queue.summary()
    }

    pub(crate) fn time_in_queue_by_urgency(&self) -> [LatencySummary; 8] {
        self.time_in_queue.by_urgency()
    }
}

/// Time in queue, per urgency (0..=7) and over all. One histogram per urgency, each made on
/// first use (most pools only ever see the default urgency) and locked on its own; the
/// aggregate is their merge, made when stats are read, so a queued acquire records once.
#[derive(Debug)]
struct QueueTimeRecorder {
    histograms: [Mutex<Option<Histogram<u64>>>; 8],
    exported: [metrics::Histogram; 8],
    exported_all: metrics::Histogram,
}

impl QueueTimeRecorder {
    fn new() -> QueueTimeRecorder {
        const LABELS: [&str; 8] = ["0", "1", "2", "3", "4", "5", "6", "7"];
        QueueTimeRecorder {
            histograms: Default::default(),
            exported: LABELS.map(|label| {
                metrics::histogram_with(metrics::TIME_IN_QUEUE_BY_URGENCY, "urgency", label)
            }),
            exported_all: metrics::histogram(metrics::TIME_IN_QUEUE),
        }
    }

    fn record(&self, urgency: u8, d: Duration) {
        let u = usize::from(urgency.min(7));
        let nanos = u64::try_from(d.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, HISTOGRAM_MAX_NANOS);
        let mut h = self.histograms[u].lock().unwrap_or_else(|p| p.into_inner());
        h.get_or_insert_with(latency_histogram)
            .saturating_record(nanos);
        drop(h);
        self.exported[u].record(metrics::seconds(d));
        self.exported_all.record(metrics::seconds(d));
    }

    fn by_urgency(&self) -> [LatencySummary; 8] {
        std::array::from_fn(|u| {
            let h = self.histograms[u].lock().unwrap_or_else(|p| p.into_inner());
            h.as_ref()
                .map(LatencySummary::from_histogram)
                .unwrap_or_default()
        })
    }

    fn summary(&self) -> LatencySummary {
        let mut merged: Option<Histogram<u64>> = None;
        for cell in &self.histograms {
            let h = cell.lock().unwrap_or_else(|p| p.into_inner());
            let Some(h) = h.as_ref() else { continue };
            match &mut merged {
                None => merged = Some(h.clone()),
                // Same bounds and precision: adding cannot fail.
                Some(m) => {
                    let _ = m.add(h);
                }
            }
        }
        merged
            .as_ref()
            .map(LatencySummary::from_histogram)
            .unwrap_or_default()
    }
}

/// One in this many acquires that do not wait has its latency recorded, with this weight.
pub(crate) const FAST_ACQUIRE_SAMPLING: u64 = 16;

/// A count that only grows, mirrored to a facade counter. Each on a cache line of its own:
/// several are bumped on every request from every worker thread, and neighbours would make
/// the threads fight over one line.
#[repr(align(64))]
pub(crate) struct Tally {
    value: AtomicU64,
    exported: metrics::Counter,
}

impl Tally {
    fn new(exported: metrics::Counter) -> Tally {
        Tally {
            value: AtomicU64::new(0),
            exported,
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.value.fetch_add(n, Relaxed);
        self.exported.increment(n);
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A count that goes up and down, mirrored to a facade gauge (on its own cache line, as
/// [`Tally`]).
#[repr(align(64))]
pub(crate) struct Level {
    value: AtomicU64,
    exported: metrics::Gauge,
}

impl Level {
    fn new(exported: metrics::Gauge) -> Level {
        Level {
            value: AtomicU64::new(0),
            exported,
        }
    }

    pub(crate) fn increment(&self) {
        self.value.fetch_add(1, Relaxed);
        self.exported.increment(1.0);
    }

    pub(crate) fn decrement(&self) {
        let before = self.value.fetch_sub(1, Relaxed);
        debug_assert!(before > 0, "a level went below zero");
        self.exported.decrement(1.0);
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

impl std::fmt::Debug for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A nanosecond histogram, 3 significant digits, saturating at one hour.
#[derive(Debug)]
struct LatencyRecorder {
    histogram: Mutex<Histogram<u64>>,
    exported: metrics::Histogram,
}

const HISTOGRAM_MAX_NANOS: u64 = 3_600 * 1_000_000_000;

/// A latency histogram in nanoseconds, 1 ns to an hour, three significant figures.
fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low,
    // 0..=5 significant figures): no input reaches this.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NANOS, 3)
        .expect("constant histogram bounds are valid")
}

impl LatencyRecorder {
    fn new(exported: metrics::Histogram) -> LatencyRecorder {
        LatencyRecorder {
            histogram: Mutex::new(latency_histogram()),
            exported,
        }
    }

    /// Records `d` as `n` samples.
    fn record_n(&self, d: Duration, n: u64) {
        let nanos = u64::try_from(d.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, HISTOGRAM_MAX_NANOS);
        // A poisoned lock only means another thread panicked mid-record; the counts are
        // still usable.
        let mut h = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        h.saturating_record_n(nanos, n);
        drop(h);
        for _ in 0..n {
            self.exported.record(metrics::seconds(d));
        }
    }

    fn summary(&self) -> LatencySummary {
        let h = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        LatencySummary::from_histogram(&h)
    }
}
