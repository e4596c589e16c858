//! Pool configuration: plain data with documented defaults, and the check of every value.
//!
//! [`PoolConfig`] is a value you can inspect, clone and log; [`PoolBuilder`] sets its fields
//! and [`PoolConfig::validate`] checks every value before a pool exists, returning
//! [`Error::InvalidConfig`](crate::Error::InvalidConfig) instead of panicking.
//!
//! [`PoolBuilder`]: crate::PoolBuilder

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

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
    /// `http://` origins fail with [`Error::CleartextDisabled`](crate::Error::CleartextDisabled). The default.
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

/// Configuration of a [`ConnectionPoolManager`](crate::ConnectionPoolManager). Every field documents its default.
///
/// Build a pool with [`ConnectionPoolManager::builder`](crate::ConnectionPoolManager::builder); the fields are public so a
/// configuration can be inspected (see [`ConnectionPoolManager::config`](crate::ConnectionPoolManager::config)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    // ----- Pool shape
    /// Most connections open (or being opened) to one origin. Default: 4.
    pub max_connections_per_origin: usize,
    /// Connections kept open to an origin that was warmed with
    /// [`prewarm_hosts`](crate::ConnectionPoolManager::prewarm_hosts); origins that were never
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
    /// [`Error::PoolExhausted`](crate::Error::PoolExhausted) at once. Default: 1024.
    pub max_waiters_per_origin: usize,
    /// How many times [`request`](crate::ConnectionPoolManager::request) (and the tower service)
    /// re-sends a request that provably never reached the server (the peer refused the
    /// stream, or its GOAWAY failed it above the last-stream-id), each time on another
    /// connection. When a connection refuses to open the stream at all (it had already been
    /// told to go away, or closed), the re-send costs no round trip and does not count, up to
    /// 8 such re-sends. Three, not one: when a server rotates connections often, a retry can
    /// itself land on a connection that is being rotated (measured against nginx rotating
    /// every 50 requests: about one request in a million needed the third). Requests that may
    /// have been processed are never retried; `0` turns retries off. Default: 3.
    pub max_unprocessed_retries: usize,
    /// How long [`acquire`](crate::ConnectionPoolManager::acquire) waits for a slot, dial included.
    /// Default: 30 s.
    pub acquire_timeout: Duration,
    /// From the request sent in full (its body written) to its response head. A server that
    /// takes a stream and never answers fails the request with
    /// [`TimeoutKind::ResponseHead`](crate::TimeoutKind::ResponseHead) and the stream is reset
    /// (HTTP/1.1: the connection discarded). Two minutes: twice nginx's `proxy_read_timeout`,
    /// so a proxy in front of a slow server answers with its own 504 first, and a long poll
    /// of a minute is unaffected; a longer one sets [`Timeouts`](crate::Timeouts) on its
    /// request. Default: 120 s.
    pub response_head_timeout: Duration,
    /// The longest a caller reading a response body waits for its next piece (data or
    /// trailers); a body that keeps arriving, however slowly, never trips it. Counted only
    /// while the caller is reading. Ends in
    /// [`TimeoutKind::Read`](crate::TimeoutKind::Read), the stream reset (HTTP/1.1: the
    /// connection discarded). Default: 120 s (as `response_head_timeout`; a stream that may
    /// stay silent longer, such as a gRPC watch, sets [`Timeouts`](crate::Timeouts)).
    pub read_timeout: Duration,
    /// The longest a request body may make no progress: the server grants no flow-control
    /// credit, or the socket takes no bytes. Waiting for the caller's own body to produce data
    /// does not count. Ends in [`TimeoutKind::Write`](crate::TimeoutKind::Write), the stream
    /// reset. Default: 120 s.
    pub write_timeout: Duration,
    /// The whole request, from the acquire to the end of the response body; `None` for no
    /// limit beyond the phases'. Ends in [`TimeoutKind::Request`](crate::TimeoutKind::Request).
    /// Default: `None`.
    pub request_timeout: Option<Duration>,
    /// After a dial to an origin fails, the next may start only this long later; each further
    /// failure in a row multiplies the wait by 1.6, up to `dial_backoff_max`, with ±20 %
    /// jitter (gRPC's connection backoff). Every dial obeys it, whether a request, the warm
    /// minimum or prewarm asked for it. From the second failure in a row, while an origin
    /// backs off and nothing can serve it, acquirers fail at once with
    /// [`Error::BackingOff`](crate::Error::BackingOff), which names the last dial's error; after
    /// a single failure (a server restarting, as often as one down) they wait for the next
    /// dial. A connection counts as a success only once it has served a
    /// response: one the server ends first (a GOAWAY right after SETTINGS) is a failed dial.
    /// Default: 1 s.
    pub dial_backoff_initial: Duration,
    /// The longest wait between two dials to an origin that keeps failing. Default: 120 s.
    pub dial_backoff_max: Duration,
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
    /// Demand-driven warm-up: keep, per origin, the connections that the peak concurrency
    /// (streams in use plus waiters) of the last `demand_window` needs (peak ÷ the server's
    /// stream limit at `scale_up_fill_ratio`, capped by the connection limit), above
    /// `min_connections_per_origin` and `max_idle_connections_per_origin`; dial back up to
    /// it, ahead of the next burst. Once the window passes without such a peak, the extra
    /// connections close per `idle_timeout`. `None` turns it off. Default: `None`.
    pub demand_window: Option<Duration>,
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
    /// in use end after about the same number of requests; it only ever lowers the budget
    /// below `max_requests_per_connection`. Until then, the count the server ended the last
    /// connection at is used to dial each replacement ahead of time (never to drain). See
    /// [`OriginStats::learned_request_budget`]. Default: true.
    ///
    /// [`OriginStats::learned_request_budget`]: crate::OriginStats::learned_request_budget
    pub learn_request_budget: bool,

    // ----- Names, TCP and TLS
    /// Addresses to dial for these host names (lower-case) instead of looking them up, as
    /// curl's `--resolve` does; the port is the origin's. Set with
    /// [`PoolBuilder::resolve`](crate::PoolBuilder::resolve). Default: none.
    pub resolve_overrides: BTreeMap<String, Vec<IpAddr>>,
    /// Deadline for DNS resolution plus TCP connect (every address raced); through a
    /// [`proxy`](Self::proxy), for the proxy's and the CONNECT exchange. Default: 10 s.
    pub connect_timeout: Duration,
    /// Deadline for the TLS handshake once TCP is connected. Default: 10 s.
    pub tls_handshake_timeout: Duration,
    /// Sets `TCP_NODELAY`. Default: true.
    pub tcp_nodelay: bool,
    /// TCP keepalive idle time; `None` leaves keepalive off. Default: 60 s.
    pub tcp_keepalive: Option<Duration>,
    /// Trust the Mozilla root set compiled in from `webpki-roots` (needs the `webpki-roots`
    /// feature, on by default). Default: true with that feature, false without.
    pub tls_webpki_roots: bool,
    /// Trust the operating system's roots (needs the `native-roots` feature). Default: false.
    pub tls_native_roots: bool,
    /// Extra trusted CA certificates, PEM-encoded, for private servers. Default: none.
    pub tls_extra_ca_pem: Vec<Vec<u8>>,
    /// TLS sessions remembered for resumption, across all servers (rustls' in-memory store);
    /// a replacement connection then resumes instead of a full handshake, skipping the
    /// certificate chain and its verification. `0` turns resumption off. Counted in
    /// [`OriginStats::tls_resumed_handshakes`](crate::OriginStats::tls_resumed_handshakes).
    /// Not used with [`tls_client_config`](Self::tls_client_config), whose own `resumption`
    /// applies. Default: 256 (rustls').
    pub tls_session_cache_size: usize,
    /// Send replay-safe requests as TLS 1.3 early data (0-RTT) on dials that resume a session
    /// whose ticket allows it. See [`PoolBuilder::tls_early_data`](crate::PoolBuilder::tls_early_data)
    /// for the replay risk and which requests go early. Default: false.
    pub tls_early_data: bool,
    /// The client certificate and key presented to servers that ask for one (mutual TLS).
    /// Set with [`PoolBuilder::tls_client_auth_pem`](crate::PoolBuilder::tls_client_auth_pem).
    /// Default: none.
    pub tls_client_auth: Option<TlsClientAuth>,
    /// A whole rustls configuration of the caller's, used instead of the one the options
    /// above build. Set with [`PoolBuilder::tls_config`](crate::PoolBuilder::tls_config),
    /// which says what the pool still sets in it. Default: none.
    pub tls_client_config: Option<CustomTlsConfig>,
    /// Log TLS secrets to the file named by the `SSLKEYLOGFILE` environment variable (NSS key
    /// log format, as browsers and curl write it), so Wireshark can decrypt a capture. For
    /// debugging only: whoever reads that file can read the traffic. Without the variable
    /// nothing is written. Default: false.
    pub tls_key_log: bool,
    /// Fail with [`Error::Protocol`](crate::Error::Protocol) when ALPN does not select `h2`, instead of falling back to
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
    /// `SETTINGS_INITIAL_WINDOW_SIZE` we advertise: how many response bytes a server may send
    /// on one stream before we return credit ([RFC 9113 §6.9.2]). A window is a credit, not an
    /// allocation: nothing is reserved for it, and bytes are held only while the caller has
    /// not read them. 2 MiB lets a response of up to 1 MiB arrive in one round trip on a warm
    /// connection, however long the path. Default: 2 MiB (hyper's).
    ///
    /// [RFC 9113 §6.9.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.2
    pub http2_initial_stream_window_size: u32,
    /// Connection-level receive window, in bytes: the most response bytes, across all streams
    /// of one connection, that a server may send before the caller reads them, and so the most
    /// unread response data one connection can be made to buffer. 8 MiB lets 32 concurrent
    /// 100 KiB responses arrive in one round trip. Default: 8 MiB.
    pub http2_initial_connection_window_size: u32,
    /// Grow the receive windows from the measured bandwidth-delay product, as hyper's
    /// adaptive window does: while response data is read, a PING measures the round trip and
    /// the bytes read during it; when a sample reaches half the stream window, the stream
    /// window doubles, up to 16 MiB, and the connection window follows at twice the stream
    /// window (up to 32 MiB; never below its configured size). The windows start from the two
    /// sizes above and never shrink. Off, the two sizes stay as they are.
    ///
    /// **Memory bound.** The unread response bytes the pool can be made to hold are at most
    /// one connection window per connection, plus up to 1/16 of it for the buffers the data
    /// arrives in (3 % measured by `tests/flow_control.rs`): with the defaults, 8 MiB per
    /// connection until the adaptive window grows it, never more than 32 MiB, so at most
    /// `max_connections_per_origin` × 34 MiB per origin (136 MiB with the defaults), and only
    /// while callers leave that much unread. The window grows only while callers read as
    /// fast as the path delivers. Reading a body returns its credit; dropping one resets its
    /// stream and frees what it held. The connection window is shared by its streams: read
    /// bodies concurrently (or drop them), since waiting for one response while others on the
    /// same connection stay unread can stall it once their data fills the window, with any
    /// HTTP/2 client. Default: true.
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
    /// HTTP/2 connection coalescing ([RFC 9113 §9.1.1]): a request for an origin with no
    /// connection of its own goes on an open HTTP/2 connection of another `https` origin on
    /// the same port whose certificate is valid for the request's host and whose socket is
    /// connected to one of the addresses that host resolves to, instead of dialing. A
    /// `421 Misdirected Request` on such a stream is sent again (by
    /// [`request`](crate::ConnectionPoolManager::request) and the tower service, when the
    /// body can be replayed) on a connection dialed for the request's own origin, and that
    /// pair of origins is not coalesced again. Only directly dialed origins coalesce: one
    /// routed through a [`proxy`](Self::proxy) neither uses nor lends connections. Counted in
    /// [`PoolStats::leases_coalesced`](crate::PoolStats::leases_coalesced). Default: false.
    ///
    /// [RFC 9113 §9.1.1]: https://www.rfc-editor.org/rfc/rfc9113#section-9.1.1
    pub http2_coalescing: bool,

    // ----- Proxy
    /// The HTTP proxy `https://` origins are reached through: TCP to the proxy, `CONNECT
    /// host:port`, then TLS to the origin inside the tunnel (the certificate is verified for
    /// the origin, as without a proxy). The proxy's host is looked up as an origin's is
    /// (overrides, then the resolver) and its addresses raced; the origin's name is left to
    /// the proxy to resolve. Credentials in the URL are sent as
    /// `Proxy-Authorization: Basic`. A proxy that answers CONNECT with anything but 2xx fails
    /// the dial with [`Error::ProxyRefused`](crate::Error::ProxyRefused), carrying its status
    /// (407 when it wants credentials). Cleartext `http://` origins never use it. One proxy per
    /// pool: each origin's route (direct or tunnelled, by [`no_proxy`](Self::no_proxy)) is
    /// fixed when the origin is first used, and its connections all take it. The URL's form
    /// and checks: [`ProxyUrl`]. Default: `None`.
    ///
    /// [`ProxyUrl`]: crate::ProxyUrl
    pub proxy: Option<crate::proxy::ProxyUrl>,
    /// Hosts dialed directly although a proxy is set, in `NO_PROXY` syntax, matched as curl
    /// and reqwest do: comma-separated entries, whitespace trimmed, case ignored; a domain
    /// (leading dot optional) matches itself and its subdomains, not names that merely end with
    /// it; IP addresses and CIDR blocks (`198.51.100.0/24`, `::1`) match an origin written as an IP;
    /// `*` matches every host. Ports are not matched: an entry with one matches nothing.
    /// Default: `None` (no exclusions, or `NO_PROXY` with `proxy_from_env`).
    pub no_proxy: Option<String>,
    /// At `build()`, fill whichever of `proxy` and `no_proxy` is unset from the environment:
    /// `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` (the first set, lower case first
    /// as curl reads them) and `no_proxy` / `NO_PROXY`. Read once, not per request.
    /// Default: false.
    pub proxy_from_env: bool,
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
            response_head_timeout: Duration::from_secs(120),
            read_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
            request_timeout: None,
            dial_backoff_initial: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(120),
            priority_aging: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(90),
            max_idle_connections_per_origin: 4,
            demand_window: None,
            max_connection_lifetime: None,
            max_requests_per_connection: None,
            learn_request_budget: true,
            resolve_overrides: BTreeMap::new(),
            connect_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            tcp_nodelay: true,
            tcp_keepalive: Some(Duration::from_secs(60)),
            tls_webpki_roots: cfg!(feature = "webpki-roots"),
            tls_native_roots: false,
            tls_extra_ca_pem: Vec::new(),
            tls_session_cache_size: 256,
            tls_early_data: false,
            tls_client_auth: None,
            tls_client_config: None,
            tls_key_log: false,
            h2_only: false,
            cleartext: Cleartext::Disabled,
            h1_max_connections: 10,
            h1_max_idle: 10,
            h1_idle_timeout: Duration::from_secs(60),
            http2_initial_stream_window_size: 2 * 1024 * 1024,
            http2_initial_connection_window_size: 8 * 1024 * 1024,
            http2_adaptive_window: true,
            http2_max_send_buf_size: 1024 * 1024,
            http2_max_header_list_size: 16 * 1024,
            http2_keep_alive_interval: Some(Duration::from_secs(30)),
            http2_keep_alive_timeout: Duration::from_secs(10),
            http2_coalescing: false,
            proxy: None,
            no_proxy: None,
            proxy_from_env: false,
        }
    }
}

mod tls;
mod validate;

pub use tls::{CustomTlsConfig, TlsClientAuth};

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults validate, and match the documented values.
    #[cfg(feature = "webpki-roots")]
    #[test]
    fn defaults_are_valid() {
        let c = PoolConfig::default();
        c.validate().expect("defaults are valid");
        assert_eq!(c.max_connections_per_origin, 4);
        assert_eq!(c.http2_initial_stream_window_size, 2 * 1024 * 1024);
        assert_eq!(c.http2_initial_connection_window_size, 8 * 1024 * 1024);
        assert!(c.http2_adaptive_window);
        assert_eq!(c.selection_policy, SelectionPolicy::Pack);
    }

    /// Without compiled-in roots the default configuration would trust nothing: `validate`
    /// says so, naming the ways to get trust anchors, rather than every dial failing later.
    #[cfg(not(feature = "webpki-roots"))]
    #[test]
    fn without_webpki_roots_the_default_trusts_nothing_and_says_so() {
        match PoolConfig::default().validate() {
            Err(crate::Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, "tls_webpki_roots");
                assert!(reason.contains("no trusted roots"), "{reason}");
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
        let with_flag = PoolConfig {
            tls_webpki_roots: true,
            ..PoolConfig::default()
        };
        assert!(matches!(
            with_flag.validate(),
            Err(crate::Error::InvalidConfig {
                field: "tls_webpki_roots",
                ..
            })
        ));
    }
}
