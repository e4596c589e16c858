//! Publishing the pool's numbers through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! With the `metrics` feature, every counter the pool keeps for [`PoolStats`] is mirrored to
//! the facade as it changes, latencies are recorded into facade histograms, and the
//! per-origin gauges are published on each maintenance tick (at most once a second). Whatever
//! recorder the application installed (`metrics-exporter-prometheus`, StatsD, OpenTelemetry)
//! picks them up. Without the feature the handles below are zero-sized no-ops, so call sites
//! need no `cfg`.
//!
//! Every name, type and help text is in the one table below ([`Family`] constants), which
//! [`PoolStats::to_prometheus`] renders from as well, so a dashboard works with either:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `https_pool_connections_opened_total` | counter | |
//! | `https_pool_connections_closed_total` | counter | |
//! | `https_pool_connects_failed_total` | counter | |
//! | `https_pool_acquires_total` | counter | `outcome` = `ok` \| `error` |
//! | `https_pool_leases_reused_total` | counter | |
//! | `https_pool_leases_coalesced_total` | counter | |
//! | `https_pool_requests_total` | counter | `outcome` = `sent` \| `failed` |
//! | `https_pool_requests_retried_total` | counter | |
//! | `https_pool_handles_outstanding` | gauge | |
//! | `https_pool_active_streams` | gauge | `origin` |
//! | `https_pool_waiters` | gauge | `origin` |
//! | `https_pool_learned_request_budget` | gauge | `origin` (0 until learned) |
//! | `https_pool_tls_handshakes_total` | counter | `origin`, `kind` = `full` \| `resumed` |
//! | `https_pool_tls_early_data_total` | counter | `origin`, `outcome` = `accepted` \| `rejected` |
//! | `https_pool_acquire_duration_seconds` | histogram | |
//! | `https_pool_time_in_queue_seconds` | histogram | |
//! | `https_pool_time_in_queue_by_urgency_seconds` | histogram | `urgency` (0..=7) |
//! | `http.client.request.duration` | histogram | OpenTelemetry's (see `otel.rs`) |
//! | `http.client.active_requests` | gauge | `server.address`, `server.port`, `url.scheme` |
//! | `http.client.open_connections` | gauge | the same and `http.connection.state` = `active` \| `idle` |
//! | `http.client.connection.duration` | histogram | the same and `network.protocol.version` |
//!
//! The time in queue corresponds to OpenTelemetry's `http.client.request.time_in_queue`.
//! The last four are OpenTelemetry's HTTP client instruments under their semantic-convention
//! names and attributes (`otel.rs` records them and says how `to_prometheus` names them:
//! `http_client_request_duration_seconds`, …); the `https_pool_` ones are the pool's own.
//! Handles are registered when the pool is built: install the recorder before building the
//! pool. Several pools in one process add to the same series.
//!
//! [`PoolStats`]: crate::PoolStats
//! [`PoolStats::to_prometheus`]: crate::PoolStats::to_prometheus

/// One metric family: its full name, its type in the Prometheus text format (latency
/// histograms render as summaries there) and its help text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) prometheus_type: &'static str,
    pub(crate) help: &'static str,
}

const fn family(name: &'static str, prometheus_type: &'static str, help: &'static str) -> Family {
    Family {
        name,
        prometheus_type,
        help,
    }
}

pub(crate) const CONNECTIONS_OPENED: Family = family(
    "https_pool_connections_opened_total",
    "counter",
    "Connections established.",
);
pub(crate) const CONNECTIONS_CLOSED: Family = family(
    "https_pool_connections_closed_total",
    "counter",
    "Connections closed by either side or by an error.",
);
pub(crate) const CONNECTS_FAILED: Family = family(
    "https_pool_connects_failed_total",
    "counter",
    "Dials that failed (DNS, TCP, TLS, protocol).",
);
pub(crate) const ACQUIRES: Family = family(
    "https_pool_acquires_total",
    "counter",
    "Stream-slot acquisitions by outcome.",
);
pub(crate) const LEASES_REUSED: Family = family(
    "https_pool_leases_reused_total",
    "counter",
    "Acquisitions served by a connection that had served one before.",
);
pub(crate) const LEASES_COALESCED: Family = family(
    "https_pool_leases_coalesced_total",
    "counter",
    "Acquisitions served by another origin's HTTP/2 connection (RFC 9113 §9.1.1).",
);
pub(crate) const REQUESTS: Family = family(
    "https_pool_requests_total",
    "counter",
    "Requests handed to a connection, and those that failed.",
);
pub(crate) const REQUESTS_RETRIED: Family = family(
    "https_pool_requests_retried_total",
    "counter",
    "Requests re-sent because they provably never reached the server.",
);
pub(crate) const HANDLES_OUTSTANDING: Family = family(
    "https_pool_handles_outstanding",
    "gauge",
    "Stream handles currently held.",
);
pub(crate) const ACTIVE_STREAMS: Family = family(
    "https_pool_active_streams",
    "gauge",
    "Stream slots leased per origin.",
);
pub(crate) const WAITERS: Family = family(
    "https_pool_waiters",
    "gauge",
    "Acquirers waiting for a slot per origin.",
);
pub(crate) const LEARNED_REQUEST_BUDGET: Family = family(
    "https_pool_learned_request_budget",
    "gauge",
    "Requests per connection the server allows before rotating it, as learned (0: none).",
);
pub(crate) const TLS_HANDSHAKES: Family = family(
    "https_pool_tls_handshakes_total",
    "counter",
    "TLS handshakes of dials per origin, full or resumed (set on each maintenance tick).",
);
pub(crate) const TLS_EARLY_DATA: Family = family(
    "https_pool_tls_early_data_total",
    "counter",
    "Dials per origin that sent TLS 1.3 early data, by the server's answer (set on each maintenance tick).",
);
pub(crate) const ACQUIRE_DURATION: Family = family(
    "https_pool_acquire_duration_seconds",
    "summary",
    "Time from acquire to a leased slot.",
);
pub(crate) const TIME_IN_QUEUE: Family = family(
    "https_pool_time_in_queue_seconds",
    "summary",
    "Time acquirers spent queued (http.client.request.time_in_queue).",
);
pub(crate) const TIME_IN_QUEUE_BY_URGENCY: Family = family(
    "https_pool_time_in_queue_by_urgency_seconds",
    "summary",
    "Time acquirers spent queued, per Priority urgency (RFC 9218, 0 most urgent).",
);
/// One of OpenTelemetry's HTTP client instruments (recorded by `otel.rs`): its
/// semantic-convention name (what the facade gets) and its Prometheus family (what
/// `to_prometheus` renders; see `otel.rs` for the naming rules).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Instrument {
    pub(crate) otel_name: &'static str,
    pub(crate) prometheus: Family,
}

pub(crate) const REQUEST_DURATION: Instrument = Instrument {
    otel_name: "http.client.request.duration",
    prometheus: Family {
        name: "http_client_request_duration_seconds",
        prometheus_type: "histogram",
        help: "Duration of HTTP client requests, from the call to the response head or the error.",
    },
};

pub(crate) const ACTIVE_REQUESTS: Instrument = Instrument {
    otel_name: "http.client.active_requests",
    prometheus: Family {
        name: "http_client_active_requests",
        prometheus_type: "gauge",
        help: "Requests holding or waiting for a stream slot.",
    },
};

pub(crate) const OPEN_CONNECTIONS: Instrument = Instrument {
    otel_name: "http.client.open_connections",
    prometheus: Family {
        name: "http_client_open_connections",
        prometheus_type: "gauge",
        help: "Open connections, active (a stream in use) or idle.",
    },
};

pub(crate) const CONNECTION_DURATION: Instrument = Instrument {
    otel_name: "http.client.connection.duration",
    prometheus: Family {
        name: "http_client_connection_duration_seconds",
        prometheus_type: "histogram",
        help: "How long connections stayed open.",
    },
};

/// One origin's gauges, as the maintenance tick publishes them.
#[derive(Debug)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct OriginGauges {
    pub(crate) origin: String,
    /// `server.address`, `server.port`, `url.scheme`, for the OpenTelemetry instruments.
    pub(crate) attributes: [(&'static str, String); 3],
    pub(crate) active_connections: usize,
    pub(crate) idle_connections: usize,
    pub(crate) active_streams: usize,
    pub(crate) waiters: usize,
    pub(crate) learned_request_budget: u64,
    pub(crate) tls_full_handshakes: u64,
    pub(crate) tls_resumed_handshakes: u64,
    pub(crate) early_data_accepted: u64,
    pub(crate) early_data_rejected: u64,
}

#[cfg(feature = "metrics")]
pub(crate) use facade::*;
#[cfg(not(feature = "metrics"))]
pub(crate) use noop::*;

/// Whether the facade is compiled in; lets callers skip work (snapshots) only it needs.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

#[cfg(feature = "metrics")]
mod facade {
    use std::time::Duration;

    use super::{ACTIVE_REQUESTS, Family, OPEN_CONNECTIONS, OriginGauges};

    pub(crate) use metrics::{Counter, Gauge, Histogram};

    pub(crate) fn counter(family: Family) -> Counter {
        metrics::counter!(family.name)
    }

    pub(crate) fn counter_with(family: Family, key: &'static str, value: &'static str) -> Counter {
        metrics::counter!(family.name, key => value)
    }

    pub(crate) fn gauge(family: Family) -> Gauge {
        metrics::gauge!(family.name)
    }

    pub(crate) fn histogram(family: Family) -> Histogram {
        metrics::histogram!(family.name)
    }

    pub(crate) fn histogram_with(
        family: Family,
        key: &'static str,
        value: &'static str,
    ) -> Histogram {
        metrics::histogram!(family.name, key => value)
    }

    /// A histogram with labels made at run time (an OpenTelemetry series' attributes).
    pub(crate) fn histogram_labelled(
        name: &'static str,
        labels: Vec<(&'static str, String)>,
    ) -> Histogram {
        let labels: Vec<metrics::Label> = labels
            .into_iter()
            .map(|(key, value)| metrics::Label::new(key, value))
            .collect();
        metrics::histogram!(name, labels)
    }

    pub(crate) fn seconds(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    /// Publishes one origin's gauges.
    pub(crate) fn publish_origin(g: &OriginGauges) {
        let origin = g.origin.clone();
        let attributes = |extra: Option<(&'static str, &'static str)>| {
            let mut labels: Vec<metrics::Label> = g
                .attributes
                .iter()
                .map(|(key, value)| metrics::Label::new(*key, value.clone()))
                .collect();
            labels.extend(extra.map(|(key, value)| metrics::Label::new(key, value)));
            labels
        };
        let open = OPEN_CONNECTIONS.otel_name;
        for (state, n) in [
            ("active", g.active_connections),
            ("idle", g.idle_connections),
        ] {
            metrics::gauge!(open, attributes(Some(("http.connection.state", state)))).set(n as f64);
        }
        metrics::gauge!(ACTIVE_REQUESTS.otel_name, attributes(None))
            .set((g.active_streams + g.waiters) as f64);
        metrics::gauge!(super::ACTIVE_STREAMS.name, "origin" => origin.clone())
            .set(g.active_streams as f64);
        metrics::gauge!(super::WAITERS.name, "origin" => origin.clone()).set(g.waiters as f64);
        metrics::gauge!(super::LEARNED_REQUEST_BUDGET.name, "origin" => origin.clone())
            .set(g.learned_request_budget as f64);
        let handshakes = super::TLS_HANDSHAKES.name;
        metrics::counter!(handshakes, "origin" => origin.clone(), "kind" => "full")
            .absolute(g.tls_full_handshakes);
        metrics::counter!(handshakes, "origin" => origin.clone(), "kind" => "resumed")
            .absolute(g.tls_resumed_handshakes);
        let early = super::TLS_EARLY_DATA.name;
        metrics::counter!(early, "origin" => origin.clone(), "outcome" => "accepted")
            .absolute(g.early_data_accepted);
        metrics::counter!(early, "origin" => origin, "outcome" => "rejected")
            .absolute(g.early_data_rejected);
    }
}

#[cfg(not(feature = "metrics"))]
mod noop {
    use std::time::Duration;

    use super::{Family, OriginGauges};

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

    pub(crate) fn counter(_: Family) -> Counter {
        Counter
    }

    pub(crate) fn counter_with(_: Family, _: &'static str, _: &'static str) -> Counter {
        Counter
    }

    pub(crate) fn gauge(_: Family) -> Gauge {
        Gauge
    }

    pub(crate) fn histogram(_: Family) -> Histogram {
        Histogram
    }

    pub(crate) fn histogram_with(_: Family, _: &'static str, _: &'static str) -> Histogram {
        Histogram
    }

    pub(crate) fn histogram_labelled(_: &'static str, _: Vec<(&'static str, String)>) -> Histogram {
        Histogram
    }

    #[inline(always)]
    pub(crate) fn seconds(_: Duration) -> f64 {
        0.0
    }

    pub(crate) fn publish_origin(_: &OriginGauges) {}
}
