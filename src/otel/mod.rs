//! OpenTelemetry's HTTP client instruments, under their semantic-convention names and
//! attributes (<https://opentelemetry.io/docs/specs/semconv/http/http-metrics/>), and the
//! span each request runs in ([`span`]).
//!
//! | instrument | kind | attributes |
//! |---|---|---|
//! | `http.client.request.duration` | histogram, s | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `network.protocol.version`, `http.response.status_code` (with a response), `error.type` (a failure, or a status ≥ 400) |
//! | `http.client.active_requests` | up-down counter | `server.address`, `server.port`, `url.scheme` |
//! | `http.client.open_connections` | up-down counter | `http.connection.state` = `active` \| `idle`, `server.address`, `server.port`, `url.scheme` |
//! | `http.client.connection.duration` | histogram, s | `server.address`, `server.port`, `url.scheme`, `network.protocol.version` |
//!
//! **What a request's duration is.** From the call ([`request`], [`StreamHandle::send`], the
//! tower service's `call`) to the response head, or to the error: acquiring a slot (and any
//! dial it waits for) and the retries of a request the server never processed are in it;
//! reading the response body is not. That is .NET's definition ("the time it takes to
//! receive response headers"), the one the semantic conventions cite. A request that fails
//! before its origin's pool is found (a URI naming no origin, cleartext refused, the pool
//! shut down) is not recorded: it has no `server.address` to be filed under; its span still
//! gets its `error.type`.
//!
//! **Active requests** are the origin's leased stream slots plus the acquirers waiting for
//! one: a request is active from its acquire until its response body ends. Both this and
//! `open_connections` are read from the pool's state (published to the `metrics` facade on
//! the maintenance tick, at most once a second), so they cost the request path nothing.
//!
//! **Cardinality.** `http.request.method` is one of the nine methods of RFC 9110 and RFC
//! 5789, or `_OTHER`; `error.type` is one of the pool's [`Error`] kinds in snake case
//! ([`error_type`]) or the status code; `server.address` is the origin's host, never the
//! path. A series is made the first time its attribute set is seen (a table per method and
//! protocol, allocated on its first request), and recording into it takes no lock: two
//! relaxed `fetch_add`s in a fixed-bucket histogram ([`buckets`]) and, with the `metrics`
//! feature, one record on a facade handle registered when the series was made. The price of
//! the lock-free lookup is memory: a method and protocol's table has a slot for every status
//! code and error kind, about 15 KiB per (origin, method, protocol) in use: nothing for a
//! pool of a few origins, the crate's use.
//!
//! **Prometheus names** ([`PoolStats::to_prometheus`]) follow OpenTelemetry's rules for
//! Prometheus (<https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/>):
//! dots become underscores in metric and label names, the unit `s` becomes the suffix
//! `_seconds`, annotations such as `{request}` are dropped, up-down counters are gauges, and
//! a histogram is its `_bucket{le=…}` (cumulative, up to `+Inf`), `_sum` and `_count`. The
//! `metrics` facade gets the OpenTelemetry names as they are (an OpenTelemetry exporter keeps
//! them; a Prometheus exporter of the facade replaces the dots).
//!
//! [`request`]: crate::ConnectionPoolManager::request
//! [`StreamHandle::send`]: crate::StreamHandle::send
//! [`PoolStats::to_prometheus`]: crate::PoolStats::to_prometheus

pub(crate) mod buckets;
pub(crate) mod span;

use std::sync::OnceLock;
use std::time::Instant;

use http::{Method, Response, Version};

use crate::error::Error;
use crate::metrics;
pub(crate) use crate::metrics::{
    ACTIVE_REQUESTS, CONNECTION_DURATION, OPEN_CONNECTIONS, REQUEST_DURATION,
};
use crate::origin::Origin;
use crate::protocol::Protocol;

use buckets::{Bounds, BucketCounts, Buckets};

/// The semantic conventions' recommended bounds for `http.client.request.duration`.
pub(crate) const REQUEST_DURATION_BOUNDS: Bounds = Bounds::new([
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
]);

/// The semantic conventions' recommended bounds for `http.client.connection.duration`.
pub(crate) const CONNECTION_DURATION_BOUNDS: Bounds = Bounds::new([
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
]);

/// The methods `http.request.method` names; any other is `_OTHER` (semantic conventions:
/// "known" methods are those of RFC 9110 and PATCH).
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];
const METHOD_SLOTS: usize = METHODS.len() + 1;
/// HTTP/2, HTTP/1.1, and none (failed before a connection was leased).
const PROTOCOL_SLOTS: usize = 3;
/// Status codes 100..=999 (all `http::StatusCode` allows).
const STATUS_SLOTS: usize = 900;
const OUTCOME_SLOTS: usize = STATUS_SLOTS + ERROR_TYPES.len();

/// `error.type` values: one per [`Error`] kind, in the order of [`error_type_index`].
const ERROR_TYPES: [&str; 23] = [
    "invalid_url",
    "unsupported_scheme",
    "cleartext_disabled",
    "invalid_config",
    "invalid_request",
    "invalid_priority",
    "dns",
    "connection_refused",
    "connect",
    "untrusted_certificate",
    "certificate_name_mismatch",
    "not_tls",
    "tls",
    "timeout",
    "protocol",
    "pool_exhausted",
    "backing_off",
    "connection_closed",
    "request",
    "pool_closed",
    "client_certificate_required",
    "proxy_refused",
    "proxy_connect",
];

fn error_type_index(error: &Error) -> u8 {
    // Exhaustive on purpose: a new variant must choose its name here.
    match error {
        Error::InvalidUrl { .. } => 0,
        Error::UnsupportedScheme { .. } => 1,
        Error::CleartextDisabled { .. } => 2,
        Error::InvalidConfig { .. } => 3,
        Error::InvalidRequest { .. } => 4,
        Error::InvalidPriority { .. } => 5,
        Error::Dns { .. } => 6,
        Error::ConnectionRefused { .. } => 7,
        Error::Connect { .. } => 8,
        Error::UntrustedCertificate { .. } => 9,
        Error::CertificateNameMismatch { .. } => 10,
        Error::NotTls { .. } => 11,
        Error::Tls { .. } => 12,
        Error::Timeout { .. } => 13,
        Error::Protocol { .. } => 14,
        Error::PoolExhausted { .. } => 15,
        Error::BackingOff { .. } => 16,
        Error::ConnectionClosed { .. } => 17,
        Error::Request { .. } => 18,
        Error::PoolClosed => 19,
        Error::ClientCertificateRequired { .. } => 20,
        Error::ProxyRefused { .. } => 21,
        Error::ProxyConnect { .. } => 22,
    }
}

/// The `error.type` of a failed request: the [`Error`] variant in snake case.
pub(crate) fn error_type(error: &Error) -> &'static str {
    error_type_name(error_type_index(error))
}

/// The `error.type` at `index` in [`ERROR_TYPES`].
fn error_type_name(index: u8) -> &'static str {
    ERROR_TYPES
        .get(usize::from(index))
        .copied()
        .unwrap_or("_OTHER")
}

/// The `network.protocol.version` of a protocol.
pub(crate) fn protocol_version(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http2 => "2",
        Protocol::Http1 => "1.1",
    }
}

/// How a request ended, as its duration series tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response head with this status code.
    Status(u16),
    /// An error of this `error.type` (its index in [`ERROR_TYPES`]).
    Error(u8),
}

impl Outcome {
    fn slot(self) -> usize {
        match self {
            Outcome::Status(code) => usize::from(code.clamp(100, 999) - 100),
            Outcome::Error(index) => STATUS_SLOTS + usize::from(index),
        }
    }

    fn from_slot(slot: usize) -> Outcome {
        match slot.checked_sub(STATUS_SLOTS) {
            None => Outcome::Status(100 + slot as u16),
            Some(i) => Outcome::Error(u8::try_from(i).unwrap_or(u8::MAX)),
        }
    }
}

/// The attributes every series of an origin carries: `server.address` (the host, IPv6
/// without brackets), `server.port`, `url.scheme`.
pub(crate) fn origin_attributes(origin: &Origin) -> [(&'static str, String); 3] {
    [
        ("server.address", origin.host_unbracketed().to_owned()),
        ("server.port", origin.port().to_string()),
        ("url.scheme", origin.scheme().as_str().to_owned()),
    ]
}

/// The attributes of one `http.client.request.duration` series, besides the origin's.
pub(crate) fn request_attributes(
    method: &'static str,
    protocol: Option<Protocol>,
    outcome: Outcome,
) -> Vec<(&'static str, String)> {
    let mut attributes = vec![("http.request.method", method.to_owned())];
    if let Some(protocol) = protocol {
        attributes.push((
            "network.protocol.version",
            protocol_version(protocol).to_owned(),
        ));
    }
    match outcome {
        Outcome::Status(code) => {
            attributes.push(("http.response.status_code", code.to_string()));
            // A client counts 4xx and 5xx as errors (semantic conventions, span status).
            if code >= 400 {
                attributes.push(("error.type", code.to_string()));
            }
        }
        Outcome::Error(index) => {
            attributes.push(("error.type", error_type_name(index).to_owned()));
        }
    }
    attributes
}

/// One histogram series: its buckets, and its facade handle (a no-op without the feature).
#[derive(Debug)]
struct Series {
    buckets: Buckets,
    exported: metrics::Histogram,
}

impl Series {
    fn new(name: &'static str, attributes: Vec<(&'static str, String)>) -> Series {
        Series {
            buckets: Buckets::default(),
            exported: metrics::histogram_labelled(name, attributes),
        }
    }

    fn record(&self, bounds: &Bounds, value: std::time::Duration) {
        self.buckets.record(bounds, value);
        self.exported.record(metrics::seconds(value));
    }
}

/// Request-duration series of one method and protocol, one per outcome, each made on first
/// use.
type OutcomeTable = Box<[OnceLock<Box<Series>>]>;

/// One origin's OpenTelemetry histograms. Shared by the origin's pool and its connections.
#[derive(Debug)]
pub(crate) struct OriginTelemetry {
    origin: Origin,
    /// Indexed by `protocol slot * METHOD_SLOTS + method slot`, then by outcome slot.
    requests: [OnceLock<OutcomeTable>; PROTOCOL_SLOTS * METHOD_SLOTS],
    /// `http.client.connection.duration`, HTTP/2 then HTTP/1.1.
    connections: [Series; 2],
}

const CONNECTION_PROTOCOLS: [Protocol; 2] = [Protocol::Http2, Protocol::Http1];

fn protocol_slot(protocol: Option<Protocol>) -> usize {
    match protocol {
        Some(Protocol::Http2) => 0,
        Some(Protocol::Http1) => 1,
        None => 2,
    }
}

impl OriginTelemetry {
    pub(crate) fn new(origin: &Origin) -> OriginTelemetry {
        OriginTelemetry {
            origin: origin.clone(),
            requests: std::array::from_fn(|_| OnceLock::new()),
            connections: CONNECTION_PROTOCOLS.map(|protocol| {
                let mut attributes = origin_attributes(origin).to_vec();
                attributes.push((
                    "network.protocol.version",
                    protocol_version(protocol).to_owned(),
                ));
                Series::new(CONNECTION_DURATION.otel_name, attributes)
            }),
        }
    }

    /// Records one request's duration.
    fn record_request(
        &self,
        method: usize,
        protocol: Option<Protocol>,
        outcome: Outcome,
        duration: std::time::Duration,
    ) {
        let Some(table) = self
            .requests
            .get(protocol_slot(protocol) * METHOD_SLOTS + method)
        else {
            return;
        };
        let table = table.get_or_init(|| (0..OUTCOME_SLOTS).map(|_| OnceLock::new()).collect());
        let Some(cell) = table.get(outcome.slot()) else {
            return;
        };
        let series = cell.get_or_init(|| {
            let mut attributes = origin_attributes(&self.origin).to_vec();
            attributes.extend(request_attributes(method_name(method), protocol, outcome));
            Box::new(Series::new(REQUEST_DURATION.otel_name, attributes))
        });
        series.record(&REQUEST_DURATION_BOUNDS, duration);
    }

    /// Records how long a connection of `protocol` was open.
    pub(crate) fn record_connection(&self, protocol: Protocol, lifetime: std::time::Duration) {
        self.connections[protocol_slot(Some(protocol)).min(1)]
            .record(&CONNECTION_DURATION_BOUNDS, lifetime);
    }

    /// The series recorded so far.
    pub(crate) fn snapshot(&self) -> TelemetrySnapshot {
        let mut requests = Vec::new();
        for (index, table) in self.requests.iter().enumerate() {
            let Some(table) = table.get() else { continue };
            let protocol = match index / METHOD_SLOTS {
                0 => Some(Protocol::Http2),
                1 => Some(Protocol::Http1),
                _ => None,
            };
            let method = method_name(index % METHOD_SLOTS);
            for (slot, cell) in table.iter().enumerate() {
                if let Some(series) = cell.get() {
                    requests.push(RequestSeries {
                        method,
                        protocol,
                        outcome: Outcome::from_slot(slot),
                        counts: series.buckets.snapshot(),
                    });
                }
            }
        }
        TelemetrySnapshot {
            requests,
            connections: CONNECTION_PROTOCOLS
                .iter()
                .zip(&self.connections)
                .map(|(protocol, series)| (*protocol, series.buckets.snapshot()))
                .filter(|(_, counts)| counts.count() > 0)
                .collect(),
        }
    }
}

fn method_slot(method: &Method) -> usize {
    METHODS
        .iter()
        .position(|known| known == method)
        .unwrap_or(METHODS.len())
}

fn method_name(slot: usize) -> &'static str {
    METHODS.get(slot).map_or("_OTHER", Method::as_str)
}

/// One origin's OpenTelemetry histograms as read for [`OriginStats`](crate::OriginStats).
#[derive(Debug, Clone, Default)]
pub(crate) struct TelemetrySnapshot {
    pub(crate) requests: Vec<RequestSeries>,
    /// Connection durations per protocol (only protocols with a closed connection).
    pub(crate) connections: Vec<(Protocol, BucketCounts)>,
}

/// One `http.client.request.duration` series.
#[derive(Debug, Clone)]
pub(crate) struct RequestSeries {
    pub(crate) method: &'static str,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) outcome: Outcome,
    pub(crate) counts: BucketCounts,
}

/// Times one request from its call to its response head (or error).
///
/// The start is a clock read the request path did not make before; the end is another.
/// Measured with `scripts/callgrind-pool-bench.sh` (pool_bench, 1,024 clients on 4
/// connections to nginx, 24,576 requests): the two reads and the histogram record add about
/// 200 instructions to a request's ~35,900 (≈ 0.6 %).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestClock {
    started: Instant,
    method: u8,
}

impl RequestClock {
    pub(crate) fn start(method: &Method) -> RequestClock {
        RequestClock {
            started: Instant::now(),
            method: method_slot(method) as u8,
        }
    }

    /// Records the request's duration on `telemetry` (its origin's). `leased_on` is the
    /// protocol of the connection it was sent on, for a failure (a response names its own).
    pub(crate) fn finish<B>(
        self,
        telemetry: &OriginTelemetry,
        result: &Result<Response<B>, Error>,
        leased_on: Option<Protocol>,
    ) {
        match result {
            Ok(response) => self.finish_response(telemetry, response),
            Err(error) => self.finish_error(telemetry, error, leased_on),
        }
    }

    /// [`finish`](Self::finish) for a response head.
    pub(crate) fn finish_response<B>(self, telemetry: &OriginTelemetry, response: &Response<B>) {
        let protocol = match response.version() {
            Version::HTTP_2 => Protocol::Http2,
            _ => Protocol::Http1,
        };
        telemetry.record_request(
            usize::from(self.method),
            Some(protocol),
            Outcome::Status(response.status().as_u16()),
            self.started.elapsed(),
        );
    }

    /// [`finish`](Self::finish) for an error.
    pub(crate) fn finish_error(
        self,
        telemetry: &OriginTelemetry,
        error: &Error,
        leased_on: Option<Protocol>,
    ) {
        telemetry.record_request(
            usize::from(self.method),
            leased_on,
            Outcome::Error(error_type_index(error)),
            self.started.elapsed(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every status code and error kind has a slot of its own, and reads back as itself.
    #[test]
    fn outcomes_round_trip_through_their_slots() {
        for code in [100, 200, 404, 599, 999] {
            let outcome = Outcome::Status(code);
            assert_eq!(Outcome::from_slot(outcome.slot()), outcome);
        }
        for index in 0..ERROR_TYPES.len() as u8 {
            let outcome = Outcome::Error(index);
            assert!(outcome.slot() < OUTCOME_SLOTS);
            assert_eq!(Outcome::from_slot(outcome.slot()), outcome);
        }
    }

    /// Standard methods keep their names; others are `_OTHER`.
    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_name(method_slot(&Method::PATCH)), "PATCH");
        let custom = Method::from_bytes(b"PURGE").expect("a valid token");
        assert_eq!(method_name(method_slot(&custom)), "_OTHER");
    }

    /// Requests land in the series of their method, protocol and outcome.
    #[test]
    fn requests_are_recorded_per_attribute_set() {
        let origin: Origin = "https://api.example:8443".parse().expect("origin");
        let telemetry = OriginTelemetry::new(&origin);
        let get = method_slot(&Method::GET);
        let ms = Duration::from_millis(1);
        telemetry.record_request(get, Some(Protocol::Http2), Outcome::Status(200), ms);
        telemetry.record_request(get, Some(Protocol::Http2), Outcome::Status(200), ms);
        let pool_exhausted = ERROR_TYPES
            .iter()
            .position(|n| *n == "pool_exhausted")
            .expect("a listed error.type") as u8;
        telemetry.record_request(get, None, Outcome::Error(pool_exhausted), ms);
        telemetry.record_connection(Protocol::Http2, Duration::from_secs(3));
        let snap = telemetry.snapshot();
        assert_eq!(snap.requests.len(), 2);
        let ok = snap
            .requests
            .iter()
            .find(|s| s.outcome == Outcome::Status(200))
            .expect("the 200 series");
        assert_eq!((ok.method, ok.protocol), ("GET", Some(Protocol::Http2)));
        assert_eq!(ok.counts.count(), 2);
        assert_eq!(snap.connections.len(), 1);
        assert_eq!(snap.connections[0].1.count(), 1);
    }
}
