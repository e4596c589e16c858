//! Publishing the pool's numbers through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! With the `metrics` feature, every counter the pool keeps for [`PoolStats`] is mirrored to
//! the facade as it changes, latencies are recorded into facade histograms, and the
//! per-origin gauges are published on each maintenance tick (at most once a second). Whatever
//! recorder the application installed (`metrics-exporter-prometheus`, StatsD, OpenTelemetry)
//! picks them up. Without the feature the handles below are zero-sized no-ops, so call sites
//! need no `cfg`.
//!
//! Names match [`PoolStats::to_prometheus`], so a dashboard works with either:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `https_pool_connections_opened_total` | counter | |
//! | `https_pool_connections_closed_total` | counter | |
//! | `https_pool_connects_failed_total` | counter | |
//! | `https_pool_acquires_total` | counter | `outcome` = `ok` \| `error` |
//! | `https_pool_leases_reused_total` | counter | |
//! | `https_pool_requests_total` | counter | `outcome` = `sent` \| `failed` |
//! | `https_pool_requests_retried_total` | counter | |
//! | `https_pool_handles_outstanding` | gauge | |
//! | `https_pool_open_connections` | gauge | `origin`, `state` = `active` \| `idle` |
//! | `https_pool_active_streams` | gauge | `origin` |
//! | `https_pool_waiters` | gauge | `origin` |
//! | `https_pool_learned_request_budget` | gauge | `origin` (0 until learned) |
//! | `https_pool_acquire_duration_seconds` | histogram | |
//! | `https_pool_time_in_queue_seconds` | histogram | |
//! | `https_pool_time_in_queue_by_urgency_seconds` | histogram | `urgency` (0..=7) |
//! | `https_pool_connection_duration_seconds` | histogram | |
//!
//! The last two correspond to OpenTelemetry's `http.client.request.time_in_queue` and
//! `http.client.connection.duration`; `open_connections` to `http.client.open_connections`.
//! Handles are registered when the pool is built: install the recorder before building the
//! pool. Several pools in one process add to the same series.
//!
//! [`PoolStats`]: crate::PoolStats
//! [`PoolStats::to_prometheus`]: crate::PoolStats::to_prometheus

#[cfg(feature = "metrics")]
pub(crate) use facade::*;
#[cfg(not(feature = "metrics"))]
pub(crate) use noop::*;

/// Whether the facade is compiled in; lets callers skip work (snapshots) only it needs.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

#[cfg(feature = "metrics")]
mod facade {
    use std::time::Duration;

    use crate::stats::OriginStats;

    pub(crate) use metrics::{Counter, Gauge, Histogram};

    pub(crate) fn counter(name: &'static str) -> Counter {
        metrics::counter!(name)
    }

    pub(crate) fn counter_with(
        name: &'static str,
        key: &'static str,
        value: &'static str,
    ) -> Counter {
        metrics::counter!(name, key => value)
    }

    pub(crate) fn gauge(name: &'static str) -> Gauge {
        metrics::gauge!(name)
    }

    pub(crate) fn histogram(name: &'static str) -> Histogram {
        metrics::histogram!(name)
    }

    pub(crate) fn histogram_with(
        name: &'static str,
        key: &'static str,
        value: &'static str,
    ) -> Histogram {
        metrics::histogram!(name, key => value)
    }

    pub(crate) fn seconds(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    /// Publishes one origin's gauges.
    pub(crate) fn publish_origin(stats: &OriginStats) {
        let origin = stats.origin.to_string();
        metrics::gauge!("https_pool_open_connections", "origin" => origin.clone(), "state" => "active")
            .set(stats.active_connections() as f64);
        metrics::gauge!("https_pool_open_connections", "origin" => origin.clone(), "state" => "idle")
            .set(stats.idle_connections() as f64);
        metrics::gauge!("https_pool_active_streams", "origin" => origin.clone())
            .set(stats.active_streams() as f64);
        metrics::gauge!("https_pool_waiters", "origin" => origin.clone()).set(stats.waiters as f64);
        metrics::gauge!("https_pool_learned_request_budget", "origin" => origin)
            .set(stats.learned_request_budget.unwrap_or(0) as f64);
    }
}

#[cfg(not(feature = "metrics"))]
mod noop {
    use std::time::Duration;

    use crate::stats::OriginStats;

    /// Stands in for `metrics::Counter`.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Counter;

    impl Counter {
        #[inline(always)]
        pub(crate) fn increment(&self, _: u64) {}
    }

    /// Stands in for `metrics::Gauge`.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Gauge;

    impl Gauge {
        #[inline(always)]
        pub(crate) fn increment(&self, _: f64) {}
        #[inline(always)]
        pub(crate) fn decrement(&self, _: f64) {}
    }

    /// Stands in for `metrics::Histogram`.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Histogram;

    impl Histogram {
        #[inline(always)]
        pub(crate) fn record(&self, _: f64) {}
    }

    pub(crate) fn counter(_: &'static str) -> Counter {
        Counter
    }

    pub(crate) fn counter_with(_: &'static str, _: &'static str, _: &'static str) -> Counter {
        Counter
    }

    pub(crate) fn gauge(_: &'static str) -> Gauge {
        Gauge
    }

    pub(crate) fn histogram(_: &'static str) -> Histogram {
        Histogram
    }

    pub(crate) fn histogram_with(_: &'static str, _: &'static str, _: &'static str) -> Histogram {
        Histogram
    }

    #[inline(always)]
    pub(crate) fn seconds(_: Duration) -> f64 {
        0.0
    }

    pub(crate) fn publish_origin(_: &OriginStats) {}
}
