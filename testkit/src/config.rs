//! How a test server behaves: [`TestServerConfig`](crate::TestServerConfig) and the protocols it offers.

use std::net::SocketAddr;
use std::time::Duration;

/// Which protocols the server offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alpn {
    /// Only `h2`.
    H2,
    /// Only `http/1.1`.
    Http1,
    /// `h2` preferred, `http/1.1` accepted.
    Both,
}

/// How a [`TestServer`](crate::TestServer) behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestServerConfig {
    /// Protocols offered by ALPN. Default: [`Alpn::H2`].
    pub alpn: Alpn,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` sent to clients. Default: 250.
    pub max_concurrent_streams: u32,
    /// Delay before each response head. A request header `x-delay-ms` overrides it.
    /// Default: none.
    pub response_delay: Duration,
    /// Size of each response body. A request header `x-body-bytes` overrides it, up to
    /// [`MAX_BODY_OVERRIDE`](crate::MAX_BODY_OVERRIDE) bytes. Default: 16 bytes.
    pub body_bytes: usize,
    /// The HTTP/2 receive windows (stream and connection) the server advertises, in bytes:
    /// how much request body a client may send before the server returns credit. `None`
    /// keeps hyper's (1 MiB each). Default: `None`.
    pub receive_window: Option<u32>,
    /// Send GOAWAY (graceful) after this many requests on a connection. Default: never.
    pub goaway_after: Option<u64>,
    /// DNS names and IP addresses in the server certificate. Default: `localhost`,
    /// `127.0.0.1`, `::1`.
    pub cert_names: Vec<String>,
    /// Close an HTTP/1.1 connection that has had no request in flight for this long (as
    /// servers' keep-alive timeouts do: a plain TCP close). A request header `x-close: 1`
    /// instead makes that response carry `Connection: close`. Default: never.
    pub h1_idle_close_after: Option<Duration>,
    /// Remember every request path and count repeats in
    /// [`ServerCounters::duplicate_paths`](crate::ServerCounters::duplicate_paths); give each request a unique path to prove nothing
    /// was processed twice. Default: false.
    pub track_duplicates: bool,
    /// Let [`TestServer::send_max_concurrent_streams`](crate::TestServer::send_max_concurrent_streams) change
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` on live HTTP/2 connections (a frame-level shim
    /// between hyper and the socket; off by default so measurements see plain hyper).
    /// Default: false.
    pub settings_injection: bool,
    /// Where to listen: a loopback address (`127.0.0.1` or `::1`), port 0 for an ephemeral
    /// one. Default: `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Offer only TLS 1.2 (no TLS 1.3), e.g. to see what session resumption saves there.
    /// Default: false (TLS 1.2 and 1.3).
    pub tls12_only: bool,
    /// Answer `421 Misdirected Request` to a request whose host is not the TLS server name
    /// (SNI) its connection was opened for, as nginx does for a name its certificate covers
    /// but another virtual server serves: what a client coalescing connections meets.
    /// Default: false.
    pub misdirect_other_hosts: bool,
    /// Serve without TLS on an `http://` URL: HTTP/2 with prior knowledge ("h2c") for
    /// [`Alpn::H2`] and [`Alpn::Both`], HTTP/1.1 for [`Alpn::Http1`]. Default: false.
    pub cleartext: bool,
    /// Require every client to present a certificate signed by this CA (PEM; see
    /// [`TestClientCa`](crate::TestClientCa)), as a server doing mutual TLS does. A client
    /// without one is refused in the handshake: in TLS 1.3 with a `certificate_required`
    /// alert, which the client reads after its side of the handshake is done. Counted in
    /// [`ServerCounters::client_certificates`](crate::ServerCounters::client_certificates)
    /// and [`tls_failures`](crate::ServerCounters::tls_failures). Default: none (no client
    /// certificate asked for).
    pub client_auth_ca_pem: Option<String>,
    /// Take TLS 1.3 early data (0-RTT) on resumed connections, up to 16 KiB, and serve it as
    /// it arrives, answering before the client's `Finished` (as nginx with
    /// `ssl_early_data on`). Tickets then offer early data, and each resumption is single-use
    /// (rustls' stateful session cache), which is the replay protection TLS can give.
    /// Counted in [`ServerCounters::early_data_connections`](crate::ServerCounters::early_data_connections).
    /// Not with [`client_auth_ca_pem`](Self::client_auth_ca_pem). Default: false.
    pub early_data: bool,
}

impl Default for TestServerConfig {
    fn default() -> Self {
        TestServerConfig {
            alpn: Alpn::H2,
            max_concurrent_streams: 250,
            response_delay: Duration::ZERO,
            body_bytes: 16,
            receive_window: None,
            goaway_after: None,
            cert_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            track_duplicates: false,
            h1_idle_close_after: None,
            cleartext: false,
            settings_injection: false,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls12_only: false,
            misdirect_other_hosts: false,
            client_auth_ca_pem: None,
            early_data: false,
        }
    }
}

impl TestServerConfig {
    /// Sets [`settings_injection`](Self::settings_injection).
    #[must_use]
    pub fn settings_injection(mut self, on: bool) -> Self {
        self.settings_injection = on;
        self
    }

    /// Sets [`cleartext`](Self::cleartext).
    #[must_use]
    pub fn cleartext(mut self, on: bool) -> Self {
        self.cleartext = on;
        self
    }

    /// Sets [`alpn`](Self::alpn).
    #[must_use]
    pub fn alpn(mut self, alpn: Alpn) -> Self {
        self.alpn = alpn;
        self
    }

    /// Sets [`max_concurrent_streams`](Self::max_concurrent_streams).
    #[must_use]
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = n;
        self
    }

    /// Sets [`response_delay`](Self::response_delay).
    #[must_use]
    pub fn response_delay(mut self, delay: Duration) -> Self {
        self.response_delay = delay;
        self
    }

    /// Sets [`body_bytes`](Self::body_bytes).
    #[must_use]
    pub fn body_bytes(mut self, n: usize) -> Self {
        self.body_bytes = n;
        self
    }

    /// Sets [`receive_window`](Self::receive_window).
    #[must_use]
    pub fn receive_window(mut self, bytes: u32) -> Self {
        self.receive_window = Some(bytes);
        self
    }

    /// Sets [`goaway_after`](Self::goaway_after).
    #[must_use]
    pub fn goaway_after(mut self, requests: u64) -> Self {
        self.goaway_after = Some(requests);
        self
    }

    /// Sets [`h1_idle_close_after`](Self::h1_idle_close_after).
    #[must_use]
    pub fn h1_idle_close_after(mut self, idle: Duration) -> Self {
        self.h1_idle_close_after = Some(idle);
        self
    }

    /// Sets [`track_duplicates`](Self::track_duplicates).
    #[must_use]
    pub fn track_duplicates(mut self, on: bool) -> Self {
        self.track_duplicates = on;
        self
    }

    /// Sets [`bind`](Self::bind).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets [`tls12_only`](Self::tls12_only).
    #[must_use]
    pub fn tls12_only(mut self, on: bool) -> Self {
        self.tls12_only = on;
        self
    }

    /// Sets [`misdirect_other_hosts`](Self::misdirect_other_hosts).
    #[must_use]
    pub fn misdirect_other_hosts(mut self, on: bool) -> Self {
        self.misdirect_other_hosts = on;
        self
    }

    /// Sets [`client_auth_ca_pem`](Self::client_auth_ca_pem).
    #[must_use]
    pub fn client_auth_ca_pem(mut self, ca_pem: impl Into<String>) -> Self {
        self.client_auth_ca_pem = Some(ca_pem.into());
        self
    }

    /// Sets [`early_data`](Self::early_data).
    #[must_use]
    pub fn early_data(mut self, on: bool) -> Self {
        self.early_data = on;
        self
    }

    /// Sets [`cert_names`](Self::cert_names).
    #[must_use]
    pub fn cert_names(mut self, names: Vec<String>) -> Self {
        self.cert_names = names;
        self
    }
}
