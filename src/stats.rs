//! Counters inside the pool, and the snapshots [`ConnectionPoolManager::stats`] hands out.
//!
//! The pool records with `Relaxed` atomics (and one histogram behind a mutex) so recording
//! costs a few nanoseconds. A snapshot reads them one by one while the pool keeps running, so
//! its numbers are **not a consistent cut**: a request may be counted in one field and not yet
//! in another. Totals only grow; gauges (`active_streams`, `waiters`, …) are instantaneous.
//!
//! Field names follow OpenTelemetry's HTTP client metrics where one exists
//! (`http.client.open_connections`, `http.client.connection.duration`,
//! `http.client.request.time_in_queue`).
//!
//! [`ConnectionPoolManager::stats`]: crate::ConnectionPoolManager::stats

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics;
use crate::origin::Origin;
use crate::protocol::Protocol;

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
    pub(crate) handles_outstanding: Level,
    pub(crate) requests_sent: Tally,
    pub(crate) requests_failed: Tally,
    /// Requests re-sent on another connection because they provably never reached the server.
    pub(crate) requests_retried: Tally,
    acquire_latency: LatencyRecorder,
    time_in_queue: QueueTimeRecorder,
    connection_duration: metrics::Histogram,
}

impl PoolCounters {
    pub(crate) fn new() -> PoolCounters {
        use metrics::{counter, counter_with, gauge, histogram};
        PoolCounters {
            connections_opened: Tally::new(counter("https_pool_connections_opened_total")),
            connections_closed: Tally::new(counter("https_pool_connections_closed_total")),
            connects_failed: Tally::new(counter("https_pool_connects_failed_total")),
            acquires_succeeded: Tally::new(counter_with(
                "https_pool_acquires_total",
                "outcome",
                "ok",
            )),
            acquires_failed: Tally::new(counter_with(
                "https_pool_acquires_total",
                "outcome",
                "error",
            )),
            leases_reused: Tally::new(counter("https_pool_leases_reused_total")),
            handles_outstanding: Level::new(gauge("https_pool_handles_outstanding")),
            requests_sent: Tally::new(counter_with("https_pool_requests_total", "outcome", "sent")),
            requests_failed: Tally::new(counter_with(
                "https_pool_requests_total",
                "outcome",
                "failed",
            )),
            requests_retried: Tally::new(counter("https_pool_requests_retried_total")),
            acquire_latency: LatencyRecorder::new(histogram("https_pool_acquire_duration_seconds")),
            time_in_queue: QueueTimeRecorder::new(),
            connection_duration: histogram("https_pool_connection_duration_seconds"),
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

    /// Records a connection's end, with how long it was open.
    pub(crate) fn record_connection_closed(&self, lifetime: Duration) {
        self.connections_closed.add(1);
        self.connection_duration.record(metrics::seconds(lifetime));
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
                metrics::histogram_with(
                    "https_pool_time_in_queue_by_urgency_seconds",
                    "urgency",
                    label,
                )
            }),
            exported_all: metrics::histogram("https_pool_time_in_queue_seconds"),
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
        self.value.fetch_sub(1, Relaxed);
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

/// Percentiles of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest sample.
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises a nanosecond histogram.
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let q = |q: f64| Duration::from_nanos(h.value_at_quantile(q));
        LatencySummary {
            count: h.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: Duration::from_nanos(h.max()),
        }
    }
}

/// A snapshot of the whole pool.
///
/// The pool records with relaxed atomics while it runs, and a snapshot reads them one by one,
/// so its numbers are not a consistent cut: a request may be counted in one field and not yet
/// in another. Totals only grow; gauges (`active_streams`, `waiters`, …) are instantaneous.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolStats {
    /// One entry per origin the pool has seen.
    pub origins: Vec<OriginStats>,
    /// Connections established since the pool was built.
    pub connections_opened: u64,
    /// Connections that have closed (by us, the peer, or an error).
    pub connections_closed: u64,
    /// Dials that failed (DNS, TCP, TLS, protocol).
    pub connects_failed: u64,
    /// Successful acquires.
    pub acquires_succeeded: u64,
    /// Acquires that returned an error.
    pub acquires_failed: u64,
    /// Acquires served by a connection that had served one before (handshakes saved).
    pub leases_reused: u64,
    /// Stream slots currently leased: held by [`StreamHandle`](crate::StreamHandle)s and by
    /// response [`Body`](crate::Body)s still streaming.
    pub handles_outstanding: u64,
    /// Requests handed to a connection.
    pub requests_sent: u64,
    /// Requests that returned an error to the caller.
    pub requests_failed: u64,
    /// Re-sends on another connection of requests that provably never reached the server
    /// (never opened, refused, or above a GOAWAY's last-stream-id); a request retried twice
    /// counts twice (see [`PoolConfig::max_unprocessed_retries`](crate::PoolConfig::max_unprocessed_retries)).
    pub requests_retried: u64,
    /// Time from `acquire` being called to the handle being returned. Acquires that found a
    /// free slot at once are sampled one in 16 and recorded with weight 16 (they take a
    /// fraction of a microsecond; timing each would cost as much again); acquires that waited
    /// are all recorded.
    pub acquire_latency: LatencySummary,
    /// Time acquirers spent queued for a slot (`http.client.request.time_in_queue`); only
    /// acquires that had to wait are counted.
    pub time_in_queue: LatencySummary,
    /// [`time_in_queue`](Self::time_in_queue) per [`Priority`](crate::Priority) urgency,
    /// index 0 to 7. A retried request counts at its own urgency.
    pub time_in_queue_by_urgency: [LatencySummary; 8],
}

impl PoolStats {
    /// Renders the snapshot in the Prometheus text exposition format (version 0.0.4), for
    /// services that expose `/metrics` without a metrics facade. Names are prefixed
    /// `https_pool_`; per-origin series carry an `origin` label; latencies are summaries in
    /// seconds.
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        // (family name, type, help, [(label set or "_suffix", value)])
        type Family<'a> = (String, &'a str, &'a str, Vec<(String, String)>);
        let mut lines: Vec<Family<'_>> = Vec::new();
        let counter = |name: &str, help: &'static str, v: u64| {
            (
                name.to_owned(),
                "counter",
                help,
                vec![(String::new(), v.to_string())],
            )
        };
        lines.push(counter(
            "connections_opened_total",
            "Connections established.",
            self.connections_opened,
        ));
        lines.push(counter(
            "connections_closed_total",
            "Connections closed by either side or by an error.",
            self.connections_closed,
        ));
        lines.push(counter(
            "connects_failed_total",
            "Dials that failed (DNS, TCP, TLS, protocol).",
            self.connects_failed,
        ));
        lines.push((
            "acquires_total".to_owned(),
            "counter",
            "Stream-slot acquisitions by outcome.",
            vec![
                (
                    "{outcome=\"ok\"}".to_owned(),
                    self.acquires_succeeded.to_string(),
                ),
                (
                    "{outcome=\"error\"}".to_owned(),
                    self.acquires_failed.to_string(),
                ),
            ],
        ));
        lines.push(counter(
            "leases_reused_total",
            "Acquisitions served by a connection that had served one before.",
            self.leases_reused,
        ));
        lines.push((
            "requests_total".to_owned(),
            "counter",
            "Requests handed to a connection, and those that failed.",
            vec![
                (
                    "{outcome=\"sent\"}".to_owned(),
                    self.requests_sent.to_string(),
                ),
                (
                    "{outcome=\"failed\"}".to_owned(),
                    self.requests_failed.to_string(),
                ),
            ],
        ));
        lines.push(counter(
            "requests_retried_total",
            "Requests re-sent because they provably never reached the server.",
            self.requests_retried,
        ));
        lines.push((
            "handles_outstanding".to_owned(),
            "gauge",
            "Stream handles currently held.",
            vec![(String::new(), self.handles_outstanding.to_string())],
        ));
        let per_origin = |f: &dyn Fn(&OriginStats) -> Vec<(String, String)>| {
            self.origins.iter().flat_map(f).collect::<Vec<_>>()
        };
        lines.push((
            "open_connections".to_owned(),
            "gauge",
            "Open connections per origin (http.client.open_connections).",
            per_origin(&|o| {
                let origin = escape_label(&o.origin.to_string());
                vec![
                    (
                        format!("{{origin=\"{origin}\",state=\"active\"}}"),
                        o.active_connections().to_string(),
                    ),
                    (
                        format!("{{origin=\"{origin}\",state=\"idle\"}}"),
                        o.idle_connections().to_string(),
                    ),
                ]
            }),
        ));
        lines.push((
            "active_streams".to_owned(),
            "gauge",
            "Stream slots leased per origin.",
            per_origin(&|o| {
                vec![(
                    format!("{{origin=\"{}\"}}", escape_label(&o.origin.to_string())),
                    o.active_streams().to_string(),
                )]
            }),
        ));
        lines.push((
            "waiters".to_owned(),
            "gauge",
            "Acquirers waiting for a slot per origin.",
            per_origin(&|o| {
                vec![(
                    format!("{{origin=\"{}\"}}", escape_label(&o.origin.to_string())),
                    o.waiters.to_string(),
                )]
            }),
        ));
        lines.push((
            "learned_request_budget".to_owned(),
            "gauge",
            "Requests per connection the server allows before rotating it, as learned (0: none).",
            per_origin(&|o| {
                vec![(
                    format!("{{origin=\"{}\"}}", escape_label(&o.origin.to_string())),
                    o.learned_request_budget.unwrap_or(0).to_string(),
                )]
            }),
        ));
        for (name, help, summary) in [
            (
                "acquire_duration_seconds",
                "Time from acquire to a leased slot.",
                &self.acquire_latency,
            ),
            (
                "time_in_queue_seconds",
                "Time acquirers spent queued (http.client.request.time_in_queue).",
                &self.time_in_queue,
            ),
        ] {
            let q = |label: &str, d: Duration| {
                (
                    format!("{{quantile=\"{label}\"}}"),
                    d.as_secs_f64().to_string(),
                )
            };
            lines.push((
                name.to_owned(),
                "summary",
                help,
                vec![
                    q("0.5", summary.p50),
                    q("0.9", summary.p90),
                    q("0.99", summary.p99),
                    q("0.999", summary.p999),
                    ("_count".to_owned(), summary.count.to_string()),
                ],
            ));
        }
        let by_urgency: Vec<(String, String)> = self
            .time_in_queue_by_urgency
            .iter()
            .enumerate()
            .filter(|(_, s)| s.count > 0)
            .flat_map(|(u, s)| {
                let q = move |label: &str, d: Duration| {
                    (
                        format!("{{urgency=\"{u}\",quantile=\"{label}\"}}"),
                        d.as_secs_f64().to_string(),
                    )
                };
                [
                    q("0.5", s.p50),
                    q("0.99", s.p99),
                    (format!("_count{{urgency=\"{u}\"}}"), s.count.to_string()),
                ]
            })
            .collect();
        lines.push((
            "time_in_queue_by_urgency_seconds".to_owned(),
            "summary",
            "Time acquirers spent queued, per Priority urgency (RFC 9218, 0 most urgent).",
            by_urgency,
        ));
        let mut out = String::new();
        for (name, kind, help, samples) in lines {
            let _ = writeln!(out, "# HELP https_pool_{name} {help}");
            let _ = writeln!(out, "# TYPE https_pool_{name} {kind}");
            for (suffix, value) in samples {
                match suffix.strip_prefix('_') {
                    Some(tail) => {
                        let _ = writeln!(out, "https_pool_{name}_{tail} {value}");
                    }
                    None => {
                        let _ = writeln!(out, "https_pool_{name}{suffix} {value}");
                    }
                }
            }
        }
        out
    }

    /// Connections currently open across all origins (`http.client.open_connections`).
    pub fn open_connections(&self) -> usize {
        self.origins.iter().map(|o| o.connections.len()).sum()
    }

    /// Streams currently leased across all origins.
    pub fn active_streams(&self) -> usize {
        self.origins.iter().map(OriginStats::active_streams).sum()
    }

    /// Acquirers currently waiting across all origins.
    pub fn waiters(&self) -> usize {
        self.origins.iter().map(|o| o.waiters).sum()
    }

    /// The entry for one origin.
    pub fn origin(&self, origin: &Origin) -> Option<&OriginStats> {
        self.origins.iter().find(|o| &o.origin == origin)
    }
}

/// Escapes a Prometheus label value (backslash, quote, newline).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A snapshot of one origin.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OriginStats {
    /// The origin.
    pub origin: Origin,
    /// Open connections, oldest first.
    pub connections: Vec<ConnectionStats>,
    /// Dials in flight.
    pub connecting: usize,
    /// Acquirers waiting for a slot.
    pub waiters: usize,
    /// Connections this origin keeps open (0 unless prewarmed).
    pub warm_minimum: usize,
    /// Requests per connection the pool learned this origin's server allows before it
    /// rotates the connection with GOAWAY; connections drain at this count. `None` until
    /// learned (see [`PoolConfig::learn_request_budget`](crate::PoolConfig::learn_request_budget)).
    pub learned_request_budget: Option<u64>,
}

impl OriginStats {
    /// Streams currently leased on this origin.
    pub fn active_streams(&self) -> usize {
        self.connections.iter().map(|c| c.active_streams).sum()
    }

    /// Connections with at least one active stream (`open_connections{state=active}`).
    pub fn active_connections(&self) -> usize {
        self.connections
            .iter()
            .filter(|c| c.active_streams > 0)
            .count()
    }

    /// Connections with no active stream (`open_connections{state=idle}`).
    pub fn idle_connections(&self) -> usize {
        self.connections.len() - self.active_connections()
    }
}

/// A snapshot of one connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// The pool's id for the connection (also in `tracing` events).
    pub id: u64,
    /// HTTP/2 or HTTP/1.1.
    pub protocol: Protocol,
    /// Stream slots leased right now.
    pub active_streams: usize,
    /// The slot limit in force: `min(peer's SETTINGS_MAX_CONCURRENT_STREAMS, configured cap)`;
    /// 1 for HTTP/1.1.
    pub max_streams: usize,
    /// False until the peer's first SETTINGS frame arrived; until then the pool places a
    /// single stream on the connection.
    pub peer_settings_received: bool,
    /// Rotating out (lifetime or request budget reached): finishing its streams, taking no
    /// new ones.
    pub draining: bool,
    /// Leases handed out on this connection.
    pub leases: u64,
    /// Requests sent on this connection.
    pub requests_served: u64,
    /// Time since the connection was established (`http.client.connection.duration`).
    pub age: Duration,
    /// How long it has had no active stream; `None` while busy.
    pub idle_for: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Prometheus rendering has a HELP/TYPE pair per family and labelled per-origin series.
    #[test]
    fn prometheus_text_has_families_and_origin_labels() {
        let origin: Origin = "https://api.example".parse().expect("origin");
        let stats = PoolStats {
            origins: vec![OriginStats {
                origin,
                connections: Vec::new(),
                connecting: 0,
                waiters: 3,
                warm_minimum: 1,
                learned_request_budget: Some(50),
            }],
            connections_opened: 2,
            connections_closed: 1,
            connects_failed: 0,
            acquires_succeeded: 10,
            acquires_failed: 1,
            leases_reused: 8,
            handles_outstanding: 0,
            requests_sent: 10,
            requests_failed: 1,
            requests_retried: 0,
            acquire_latency: LatencySummary::default(),
            time_in_queue: LatencySummary::default(),
            time_in_queue_by_urgency: Default::default(),
        };
        let text = stats.to_prometheus();
        assert!(text.contains("# TYPE https_pool_connections_opened_total counter\n"));
        assert!(text.contains("https_pool_connections_opened_total 2\n"));
        assert!(text.contains("https_pool_acquires_total{outcome=\"error\"} 1\n"));
        assert!(text.contains("https_pool_waiters{origin=\"https://api.example:443\"} 3\n"));
        assert!(text.contains("https_pool_acquire_duration_seconds_count 0\n"));
        assert!(text.contains(
            "https_pool_open_connections{origin=\"https://api.example:443\",state=\"idle\"} 0\n"
        ));
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
