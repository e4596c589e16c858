//! The snapshots [`ConnectionPoolManager::stats`] hands out: the pool, each origin, each
//! connection.
//!
//! A snapshot reads the pool's counters one by one while the pool keeps running, so its
//! numbers are **not a consistent cut**: a request may be counted in one field and not yet in
//! another. Totals only grow; gauges (`active_streams`, `waiters`, …) are instantaneous.
//!
//! Field names follow OpenTelemetry's HTTP client metrics where one exists
//! (`http.client.open_connections`, `http.client.connection.duration`,
//! `http.client.request.time_in_queue`).
//!
//! [`ConnectionPoolManager::stats`]: crate::ConnectionPoolManager::stats

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::connection_info::TlsVersion;
use crate::metrics::OriginGauges;
use crate::origin::Origin;
use crate::protocol::Protocol;

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
    /// Acquires served by another origin's HTTP/2 connection (see
    /// [`PoolConfig::http2_coalescing`](crate::PoolConfig::http2_coalescing)).
    pub leases_coalesced: u64,
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
    /// The most streams in use plus acquirers waiting at once within the last
    /// [`demand_window`](crate::PoolConfig::demand_window) (0 when that is off).
    pub recent_peak_demand: usize,
    /// Requests per connection the pool learned this origin's server allows before it
    /// rotates the connection with GOAWAY; connections drain at this count. `None` until
    /// learned (see [`PoolConfig::learn_request_budget`](crate::PoolConfig::learn_request_budget)).
    pub learned_request_budget: Option<u64>,
    /// Full TLS handshakes (certificate sent and verified) of this origin's dials, since the
    /// origin entered the pool.
    pub tls_full_handshakes: u64,
    /// TLS handshakes that resumed an earlier session (no certificate; see
    /// [`PoolConfig::tls_session_cache_size`](crate::PoolConfig::tls_session_cache_size)).
    pub tls_resumed_handshakes: u64,
    /// Dials whose TLS 1.3 early data the server accepted: the HTTP/2 preface, and the
    /// request that caused the dial when it was replay-safe, sent with the ClientHello (see
    /// [`PoolBuilder::tls_early_data`](crate::PoolBuilder::tls_early_data)).
    pub early_data_accepted: u64,
    /// Handshakes that sent early data the server rejected; the TLS layer sent it again
    /// after the handshake.
    pub early_data_rejected: u64,
    /// Dials failed in a row since a connection last served a response; while above zero the
    /// origin backs off (see [`PoolConfig::dial_backoff_initial`](crate::PoolConfig::dial_backoff_initial)).
    pub dial_failures_in_row: u32,
    /// The OpenTelemetry histograms (`http.client.request.duration`,
    /// `http.client.connection.duration`), for `to_prometheus`.
    pub(crate) telemetry: crate::otel::TelemetrySnapshot,
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

    /// The per-origin gauges the `metrics` facade publishes.
    pub(crate) fn gauges(&self) -> OriginGauges {
        OriginGauges {
            origin: self.origin.to_string(),
            attributes: crate::otel::origin_attributes(&self.origin),
            active_connections: self.active_connections(),
            idle_connections: self.idle_connections(),
            active_streams: self.active_streams(),
            waiters: self.waiters,
            learned_request_budget: self.learned_request_budget.unwrap_or(0),
            tls_full_handshakes: self.tls_full_handshakes,
            tls_resumed_handshakes: self.tls_resumed_handshakes,
            early_data_accepted: self.early_data_accepted,
            early_data_rejected: self.early_data_rejected,
        }
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
    /// The address the connection's socket is connected to (the one that won the connect
    /// race among the origin's addresses, or the proxy's when tunnelled).
    pub peer_addr: std::net::SocketAddr,
    /// The HTTP proxy (`http://host:port`) the connection is tunnelled through with CONNECT;
    /// `None` when it goes to the origin directly (see
    /// [`PoolConfig::proxy`](crate::PoolConfig::proxy)).
    pub proxy: Option<Origin>,
    /// The local address of the connection's socket.
    pub local_addr: std::net::SocketAddr,
    /// The TLS version negotiated; `None` for cleartext.
    pub tls_version: Option<TlsVersion>,
    /// Whether the TLS handshake resumed an earlier session; `None` for cleartext.
    pub tls_resumed: Option<bool>,
    /// How long name resolution plus the TCP connect race took when this connection was
    /// dialed (through a proxy: those to the proxy, plus the CONNECT exchange).
    pub tcp_connect: Duration,
    /// How long its TLS handshake took (zero for cleartext).
    pub tls_handshake: Duration,
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
