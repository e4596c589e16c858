//! Pool configuration: plain data with documented defaults, and the builder that validates it.
//!
//! [`PoolConfig`] is a value you can inspect, clone and log; [`PoolBuilder`] sets its fields
//! with consuming, chainable setters and [`PoolBuilder::build`] checks every value before a
//! pool exists, returning [`Error::InvalidConfig`] instead of panicking.

use std::time::Duration;

use crate::error::Error;
use crate::manager::ConnectionPoolManager;

/// How an origin chooses among its open HTTP/2 connections when several have a free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SelectionPolicy {
    /// First fit, oldest connection first: fill one connection before using the next, so the
    /// fewest sockets carry the load and spare connections can go idle and close. This is the
    /// field's default (Go's `x/net/http2`, Envoy, Jetty, gRPC A105).
    #[default]
    Pack,
    /// The connection with the fewest active streams: spreads load across sockets (and server
    /// threads) at the cost of keeping every connection busy.
    LeastLoaded,
}

/// How the pool speaks to cleartext `http://` origins.
///
/// Certificates protect every `https://` origin; cleartext is for traffic that never leaves a
/// trusted network (in-cluster gRPC, a sidecar on localhost), so it is off unless asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cleartext {
    /// `http://` origins fail with [`Error::CleartextDisabled`]. The default.
    #[default]
    Disabled,
    /// HTTP/2 with prior knowledge ([RFC 9113 §3.3], "h2c"): the connection preface is sent
    /// at once, no upgrade. What gRPC servers (tonic, grpc-go) speak in cleartext.
    ///
    /// [RFC 9113 §3.3]: https://www.rfc-editor.org/rfc/rfc9113#section-3.3
    Http2PriorKnowledge,
    /// HTTP/1.1 keep-alive, as for an `https://` server that negotiated HTTP/1.1.
    Http1,
}

/// Configuration of a [`ConnectionPoolManager`]. Every field documents its default.
///
/// Build a pool with [`ConnectionPoolManager::builder`]; the fields are public so a
/// configuration can be inspected (see [`ConnectionPoolManager::config`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    // ----- Pool shape
    /// Most connections open (or being opened) to one origin. Default: 4.
    pub max_connections_per_origin: usize,
    /// Connections kept open to an origin that was warmed with
    /// [`prewarm_hosts`](ConnectionPoolManager::prewarm_hosts); origins that were never
    /// prewarmed keep none. Default: 1.
    pub min_connections_per_origin: usize,
    /// Upper bound on concurrent streams the pool places on one HTTP/2 connection, on top of
    /// the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` ([RFC 9113 §6.5.2]). `None` uses the
    /// peer's value. Default: `None`.
    ///
    /// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
    pub max_streams_per_connection: Option<usize>,
    /// Fraction of a connection's stream slots that must be in use, across all connections of
    /// the origin, before the pool dials another connection for waiting demand. `1.0` fills
    /// connections completely first; `0.75` dials once three quarters are busy. Must be in
    /// `(0, 1]`. Default: 1.0.
    pub scale_up_fill_ratio: f64,
    /// How a connection is chosen among those with a free slot. Default:
    /// [`SelectionPolicy::Pack`].
    pub selection_policy: SelectionPolicy,
    /// Most acquirers that may wait for a slot on one origin; one more gets
    /// [`Error::PoolExhausted`] at once. Default: 1024.
    pub max_waiters_per_origin: usize,
    /// How many times [`request`](ConnectionPoolManager::request) (and the tower service)
    /// re-sends a request that provably never reached the server (the peer refused the
    /// stream, or its GOAWAY failed it above the last-stream-id), each time on another
    /// connection. When a connection refuses to open the stream at all (it had already been
    /// told to go away, or closed), the re-send costs no round trip and does not count, up to
    /// 8 such re-sends. Three, not one: when a server rotates connections often, a retry can
    /// itself land on a connection that is being rotated (measured against nginx rotating
    /// every 50 requests: about one request in a million needed the third). Requests that may
    /// have been processed are never retried; `0` turns retries off. Default: 3.
    pub max_unprocessed_retries: usize,
    /// How long [`acquire`](ConnectionPoolManager::acquire) waits for a slot, dial included.
    /// Default: 30 s.
    pub acquire_timeout: Duration,
    /// Waiters are served by [`Priority`](crate::Priority) urgency; one that has waited
    /// longer than this is served as urgency 0 (most urgent), so a low urgency is delayed but
    /// never starved. `Duration::ZERO` makes the queue plain FIFO. Default: 500 ms.
    pub priority_aging: Duration,
    /// A connection with no active stream for this long is closed, unless that would take the
    /// origin below its warm minimum; an origin left with no connection, dial, waiter or warm
    /// minimum for this long is forgotten (its next request starts afresh). Default: 90 s.
    pub idle_timeout: Duration,
    /// Most connections per origin that may sit idle; more idle ones are closed, oldest first.
    /// Default: 4.
    pub max_idle_connections_per_origin: usize,
    /// A connection older than this stops taking new streams, finishes the ones it has, and
    /// closes (graceful rotation); a prewarmed origin dials its replacement shortly before, so
    /// there is no cold gap. `None` never rotates by age. Default: `None`.
    pub max_connection_lifetime: Option<Duration>,
    /// A connection that has carried this many requests stops taking new ones, drains and
    /// closes. `None` never rotates by count. Default: `None`.
    pub max_requests_per_connection: Option<u64>,
    /// Learn a server's per-connection request limit (nginx `keepalive_requests` and the
    /// like) from its GOAWAYs and rotate connections a tenth before reaching it, so rotation
    /// stops failing in-flight requests. Learned only when two consecutive connections
    /// end after about the same number of requests; it only ever lowers the budget below
    /// `max_requests_per_connection`. See [`OriginStats::learned_request_budget`].
    /// Default: true.
    ///
    /// [`OriginStats::learned_request_budget`]: crate::OriginStats::learned_request_budget
    pub learn_request_budget: bool,

    // ----- TCP and TLS
    /// Deadline for DNS resolution plus TCP connect. Default: 10 s.
    pub connect_timeout: Duration,
    /// Deadline for the TLS handshake once TCP is connected. Default: 10 s.
    pub tls_handshake_timeout: Duration,
    /// Sets `TCP_NODELAY`. Default: true.
    pub tcp_nodelay: bool,
    /// TCP keepalive idle time; `None` leaves keepalive off. Default: 60 s.
    pub tcp_keepalive: Option<Duration>,
    /// Trust the Mozilla root set compiled in from `webpki-roots`. Default: true.
    pub tls_webpki_roots: bool,
    /// Trust the operating system's roots (needs the `native-roots` feature). Default: false.
    pub tls_native_roots: bool,
    /// Extra trusted CA certificates, PEM-encoded, for private servers. Default: none.
    pub tls_extra_ca_pem: Vec<Vec<u8>>,
    /// Fail with [`Error::Protocol`] when ALPN does not select `h2`, instead of falling back to
    /// HTTP/1.1. Default: false.
    pub h2_only: bool,
    /// Whether and how `http://` origins are dialed. Default: [`Cleartext::Disabled`].
    pub cleartext: Cleartext,

    // ----- HTTP/1.1 fallback
    /// Most connections to an origin whose server negotiated HTTP/1.1 (one request at a time
    /// each). Default: 10.
    pub h1_max_connections: usize,
    /// Most idle keep-alive connections kept per HTTP/1.1 origin. Default: 10.
    pub h1_max_idle: usize,
    /// An HTTP/1.1 connection idle this long is closed. Default: 60 s.
    pub h1_idle_timeout: Duration,

    // ----- HTTP/2 options
    /// `SETTINGS_INITIAL_WINDOW_SIZE` we advertise, in bytes ([RFC 9113 §6.9.2]). Default:
    /// 32 KiB.
    ///
    /// [RFC 9113 §6.9.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.2
    pub http2_initial_stream_window_size: u32,
    /// Connection-level receive window, in bytes. Default: 64 KiB.
    pub http2_initial_connection_window_size: u32,
    /// Grow the receive windows from the measured bandwidth-delay product, as hyper's
    /// adaptive window does: a PING measures the round trip while DATA arrives, and the
    /// windows double (up to 16 MiB) while samples fill them. Overrides the two sizes above.
    /// Default: false.
    pub http2_adaptive_window: bool,
    /// Most bytes of request DATA h2 buffers per stream before the pipe waits for the peer's
    /// flow control. Default: 1 MiB (hyper's).
    pub http2_max_send_buf_size: usize,
    /// `SETTINGS_MAX_HEADER_LIST_SIZE` we advertise: the largest response header block we
    /// accept, in bytes ([RFC 9113 §6.5.2]). Default: 16 KiB (hyper's).
    ///
    /// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
    pub http2_max_header_list_size: u32,
    /// Interval of HTTP/2 keep-alive PINGs; `None` disables them. Default: 30 s.
    pub http2_keep_alive_interval: Option<Duration>,
    /// A PING unanswered for this long closes the connection. Default: 10 s.
    pub http2_keep_alive_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections_per_origin: 4,
            min_connections_per_origin: 1,
            max_streams_per_connection: None,
            scale_up_fill_ratio: 1.0,
            selection_policy: SelectionPolicy::Pack,
            max_waiters_per_origin: 1024,
            max_unprocessed_retries: 3,
            acquire_timeout: Duration::from_secs(30),
            priority_aging: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(90),
            max_idle_connections_per_origin: 4,
            max_connection_lifetime: None,
            max_requests_per_connection: None,
            learn_request_budget: true,
            connect_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            tcp_nodelay: true,
            tcp_keepalive: Some(Duration::from_secs(60)),
            tls_webpki_roots: true,
            tls_native_roots: false,
            tls_extra_ca_pem: Vec::new(),
            h2_only: false,
            cleartext: Cleartext::Disabled,
            h1_max_connections: 10,
            h1_max_idle: 10,
            h1_idle_timeout: Duration::from_secs(60),
            http2_initial_stream_window_size: 32 * 1024,
            http2_initial_connection_window_size: 64 * 1024,
            http2_adaptive_window: false,
            http2_max_send_buf_size: 1024 * 1024,
            http2_max_header_list_size: 16 * 1024,
            http2_keep_alive_interval: Some(Duration::from_secs(30)),
            http2_keep_alive_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;
/// The smallest window HTTP/2 starts with; smaller windows only slow every stream down.
const MIN_WINDOW_SIZE: u32 = 65_535;

impl PoolConfig {
    /// Checks every value; the first bad one is reported.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_connections_per_origin == 0 {
            return Err(Error::invalid_config(
                "max_connections_per_origin",
                "must be at least 1",
            ));
        }
        if self.max_connection_lifetime.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "max_connection_lifetime",
                "must be greater than zero (or None)",
            ));
        }
        if self.max_requests_per_connection == Some(0) {
            return Err(Error::invalid_config(
                "max_requests_per_connection",
                "must be at least 1 (or None)",
            ));
        }
        if self.max_waiters_per_origin == 0 {
            return Err(Error::invalid_config(
                "max_waiters_per_origin",
                "must be at least 1 (a cold origin's first acquirer waits for the dial)",
            ));
        }
        if self.h1_max_connections == 0 {
            return Err(Error::invalid_config(
                "h1_max_connections",
                "must be at least 1",
            ));
        }
        if self.min_connections_per_origin > self.max_connections_per_origin {
            return Err(Error::invalid_config(
                "min_connections_per_origin",
                format!(
                    "{} exceeds max_connections_per_origin ({})",
                    self.min_connections_per_origin, self.max_connections_per_origin
                ),
            ));
        }
        if self.max_streams_per_connection == Some(0) {
            return Err(Error::invalid_config(
                "max_streams_per_connection",
                "must be at least 1 (or None for the peer's limit)",
            ));
        }
        if !(self.scale_up_fill_ratio > 0.0 && self.scale_up_fill_ratio <= 1.0) {
            return Err(Error::invalid_config(
                "scale_up_fill_ratio",
                format!("{} is not in (0, 1]", self.scale_up_fill_ratio),
            ));
        }
        for (field, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("connect_timeout", self.connect_timeout),
            ("tls_handshake_timeout", self.tls_handshake_timeout),
            ("idle_timeout", self.idle_timeout),
            ("h1_idle_timeout", self.h1_idle_timeout),
            ("http2_keep_alive_timeout", self.http2_keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(field, "must be greater than zero"));
            }
        }
        if self.http2_keep_alive_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "http2_keep_alive_interval",
                "must be greater than zero (or None to disable)",
            ));
        }
        // The stream window may be set below the protocol's initial 65,535 (that is what
        // SETTINGS_INITIAL_WINDOW_SIZE is for); the connection window can only grow.
        if self.http2_initial_stream_window_size == 0
            || self.http2_initial_stream_window_size > MAX_WINDOW_SIZE
        {
            return Err(Error::invalid_config(
                "http2_initial_stream_window_size",
                format!("must be in 1..={MAX_WINDOW_SIZE}"),
            ));
        }
        if self.http2_initial_connection_window_size < MIN_WINDOW_SIZE
            || self.http2_initial_connection_window_size > MAX_WINDOW_SIZE
        {
            return Err(Error::invalid_config(
                "http2_initial_connection_window_size",
                format!("must be in {MIN_WINDOW_SIZE}..={MAX_WINDOW_SIZE}"),
            ));
        }
        if self.http2_max_send_buf_size == 0 || self.http2_max_send_buf_size > u32::MAX as usize {
            return Err(Error::invalid_config(
                "http2_max_send_buf_size",
                format!("must be in 1..={}", u32::MAX),
            ));
        }
        if self.http2_max_header_list_size == 0 {
            return Err(Error::invalid_config(
                "http2_max_header_list_size",
                "must be at least 1",
            ));
        }
        if !self.tls_webpki_roots && !self.tls_native_roots && self.tls_extra_ca_pem.is_empty() {
            return Err(Error::invalid_config(
                "tls_webpki_roots",
                "no trusted roots: enable webpki or native roots, or add a CA certificate",
            ));
        }
        if self.h2_only && self.cleartext == Cleartext::Http1 {
            return Err(Error::invalid_config(
                "cleartext",
                "Cleartext::Http1 contradicts h2_only; use Cleartext::Http2PriorKnowledge",
            ));
        }
        if self.tls_native_roots && !cfg!(feature = "native-roots") {
            return Err(Error::invalid_config(
                "tls_native_roots",
                "this build lacks the `native-roots` feature",
            ));
        }
        Ok(())
    }
}

/// Builds a [`ConnectionPoolManager`]; start with [`ConnectionPoolManager::builder`].
///
/// Setters consume and return the builder; [`build`](PoolBuilder::build) validates.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder {
    config: PoolConfig,
}

impl PoolBuilder {
    /// A builder holding [`PoolConfig::default`].
    pub fn new() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Starts from an existing configuration.
    pub fn from_config(config: PoolConfig) -> PoolBuilder {
        PoolBuilder { config }
    }

    // ----- Pool shape

    /// See [`PoolConfig::max_connections_per_origin`].
    pub fn max_connections_per_origin(mut self, n: usize) -> Self {
        self.config.max_connections_per_origin = n;
        self
    }

    /// See [`PoolConfig::min_connections_per_origin`].
    pub fn min_connections_per_origin(mut self, n: usize) -> Self {
        self.config.min_connections_per_origin = n;
        self
    }

    /// See [`PoolConfig::max_streams_per_connection`].
    pub fn max_streams_per_connection(mut self, n: impl Into<Option<usize>>) -> Self {
        self.config.max_streams_per_connection = n.into();
        self
    }

    /// See [`PoolConfig::scale_up_fill_ratio`].
    pub fn scale_up_fill_ratio(mut self, ratio: f64) -> Self {
        self.config.scale_up_fill_ratio = ratio;
        self
    }

    /// See [`PoolConfig::selection_policy`].
    pub fn selection_policy(mut self, policy: SelectionPolicy) -> Self {
        self.config.selection_policy = policy;
        self
    }

    /// See [`PoolConfig::max_waiters_per_origin`].
    pub fn max_waiters_per_origin(mut self, n: usize) -> Self {
        self.config.max_waiters_per_origin = n;
        self
    }

    /// See [`PoolConfig::max_unprocessed_retries`].
    pub fn max_unprocessed_retries(mut self, n: usize) -> Self {
        self.config.max_unprocessed_retries = n;
        self
    }

    /// See [`PoolConfig::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// See [`PoolConfig::priority_aging`].
    pub fn priority_aging(mut self, aging: Duration) -> Self {
        self.config.priority_aging = aging;
        self
    }

    /// See [`PoolConfig::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// See [`PoolConfig::max_connection_lifetime`].
    pub fn max_connection_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.config.max_connection_lifetime = lifetime.into();
        self
    }

    /// See [`PoolConfig::max_requests_per_connection`].
    pub fn max_requests_per_connection(mut self, n: impl Into<Option<u64>>) -> Self {
        self.config.max_requests_per_connection = n.into();
        self
    }

    /// See [`PoolConfig::max_idle_connections_per_origin`].
    pub fn max_idle_connections_per_origin(mut self, n: usize) -> Self {
        self.config.max_idle_connections_per_origin = n;
        self
    }

    /// See [`PoolConfig::learn_request_budget`].
    pub fn learn_request_budget(mut self, enabled: bool) -> Self {
        self.config.learn_request_budget = enabled;
        self
    }

    // ----- TCP and TLS

    /// See [`PoolConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// See [`PoolConfig::tls_handshake_timeout`].
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.tls_handshake_timeout = timeout;
        self
    }

    /// See [`PoolConfig::tcp_nodelay`].
    pub fn tcp_nodelay(mut self, enabled: bool) -> Self {
        self.config.tcp_nodelay = enabled;
        self
    }

    /// See [`PoolConfig::tcp_keepalive`].
    pub fn tcp_keepalive(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.config.tcp_keepalive = idle.into();
        self
    }

    /// See [`PoolConfig::tls_webpki_roots`].
    pub fn tls_webpki_roots(mut self, enabled: bool) -> Self {
        self.config.tls_webpki_roots = enabled;
        self
    }

    /// See [`PoolConfig::tls_native_roots`].
    pub fn tls_native_roots(mut self, enabled: bool) -> Self {
        self.config.tls_native_roots = enabled;
        self
    }

    /// Adds trusted CA certificates from PEM (one or more `CERTIFICATE` blocks). See
    /// [`PoolConfig::tls_extra_ca_pem`].
    pub fn tls_extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.tls_extra_ca_pem.push(pem.into());
        self
    }

    /// See [`PoolConfig::h2_only`].
    pub fn h2_only(mut self, enabled: bool) -> Self {
        self.config.h2_only = enabled;
        self
    }

    /// Allows `http://` origins, spoken as `mode` says. See [`PoolConfig::cleartext`].
    ///
    /// ```
    /// use https_pool::{Cleartext, ConnectionPoolManager};
    /// let pool = ConnectionPoolManager::builder()
    ///     .cleartext(Cleartext::Http2PriorKnowledge)
    ///     .build()?;
    /// # Ok::<(), https_pool::Error>(())
    /// ```
    pub fn cleartext(mut self, mode: Cleartext) -> Self {
        self.config.cleartext = mode;
        self
    }

    // ----- HTTP/1.1 fallback

    /// See [`PoolConfig::h1_max_connections`].
    pub fn h1_max_connections(mut self, n: usize) -> Self {
        self.config.h1_max_connections = n;
        self
    }

    /// See [`PoolConfig::h1_max_idle`].
    pub fn h1_max_idle(mut self, n: usize) -> Self {
        self.config.h1_max_idle = n;
        self
    }

    /// See [`PoolConfig::h1_idle_timeout`].
    pub fn h1_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.h1_idle_timeout = timeout;
        self
    }

    // ----- HTTP/2 options

    /// See [`PoolConfig::http2_initial_stream_window_size`].
    pub fn http2_initial_stream_window_size(mut self, bytes: u32) -> Self {
        self.config.http2_initial_stream_window_size = bytes;
        self
    }

    /// See [`PoolConfig::http2_initial_connection_window_size`].
    pub fn http2_initial_connection_window_size(mut self, bytes: u32) -> Self {
        self.config.http2_initial_connection_window_size = bytes;
        self
    }

    /// See [`PoolConfig::http2_adaptive_window`].
    pub fn http2_adaptive_window(mut self, enabled: bool) -> Self {
        self.config.http2_adaptive_window = enabled;
        self
    }

    /// See [`PoolConfig::http2_max_send_buf_size`].
    pub fn http2_max_send_buf_size(mut self, bytes: usize) -> Self {
        self.config.http2_max_send_buf_size = bytes;
        self
    }

    /// See [`PoolConfig::http2_max_header_list_size`].
    pub fn http2_max_header_list_size(mut self, bytes: u32) -> Self {
        self.config.http2_max_header_list_size = bytes;
        self
    }

    /// See [`PoolConfig::http2_keep_alive_interval`].
    pub fn http2_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.config.http2_keep_alive_interval = interval.into();
        self
    }

    /// See [`PoolConfig::http2_keep_alive_timeout`].
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.config.http2_keep_alive_timeout = timeout;
        self
    }

    /// The configuration as set so far.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Validates the configuration and creates the pool. No connection is opened yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an out-of-range value or an unusable CA certificate.
    pub fn build(self) -> Result<ConnectionPoolManager, Error> {
        ConnectionPoolManager::from_config(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults validate, and match the documented values.
    #[test]
    fn defaults_are_valid() {
        let c = PoolConfig::default();
        c.validate().expect("defaults are valid");
        assert_eq!(c.max_connections_per_origin, 4);
        assert_eq!(c.http2_initial_stream_window_size, 32 * 1024);
        assert_eq!(c.http2_initial_connection_window_size, 64 * 1024);
        assert_eq!(c.selection_policy, SelectionPolicy::Pack);
    }

    /// Each out-of-range value is rejected, naming its field.
    #[test]
    fn out_of_range_values_name_their_field() {
        let cases: Vec<(&str, PoolBuilder)> = vec![
            (
                "max_connections_per_origin",
                PoolBuilder::new().max_connections_per_origin(0),
            ),
            (
                "min_connections_per_origin",
                PoolBuilder::new().min_connections_per_origin(5),
            ),
            (
                "max_streams_per_connection",
                PoolBuilder::new().max_streams_per_connection(0),
            ),
            (
                "scale_up_fill_ratio",
                PoolBuilder::new().scale_up_fill_ratio(0.0),
            ),
            (
                "scale_up_fill_ratio",
                PoolBuilder::new().scale_up_fill_ratio(f64::NAN),
            ),
            (
                "acquire_timeout",
                PoolBuilder::new().acquire_timeout(Duration::ZERO),
            ),
            (
                "http2_initial_connection_window_size",
                PoolBuilder::new().http2_initial_connection_window_size(100),
            ),
            (
                "http2_initial_stream_window_size",
                PoolBuilder::new().http2_initial_stream_window_size(u32::MAX),
            ),
            (
                "tls_webpki_roots",
                PoolBuilder::new().tls_webpki_roots(false),
            ),
            (
                "cleartext",
                PoolBuilder::new().h2_only(true).cleartext(Cleartext::Http1),
            ),
        ];
        for (field, builder) in cases {
            match builder.config().validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}
