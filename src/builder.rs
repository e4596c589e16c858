//! [`PoolBuilder`]: consuming, chainable setters over a [`PoolConfig`]; [`build`](PoolBuilder::build)
//! validates it and creates the pool.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Cleartext, CustomTlsConfig, PoolConfig, SelectionPolicy, TlsClientAuth};
use crate::error::Error;
use crate::manager::ConnectionPoolManager;
use crate::proxy::{EnvProxy, ProxyUrl, read_env};
use crate::resolver::{Resolve, SharedResolver};

// Here rather than in manager.rs: the builder builds the manager, so the manager does not
// import the builder back.
impl ConnectionPoolManager {
    /// A builder starting from [`PoolConfig::default`].
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }
}

/// Builds a [`ConnectionPoolManager`]; start with [`ConnectionPoolManager::builder`].
///
/// Setters consume and return the builder; [`build`](PoolBuilder::build) validates.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder {
    config: PoolConfig,
    resolver: SharedResolver,
}

impl PoolBuilder {
    /// A builder holding [`PoolConfig::default`].
    pub fn new() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Starts from an existing configuration.
    pub fn from_config(config: PoolConfig) -> PoolBuilder {
        PoolBuilder {
            config,
            resolver: SharedResolver::default(),
        }
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

    /// See [`PoolConfig::response_head_timeout`].
    pub fn response_head_timeout(mut self, timeout: Duration) -> Self {
        self.config.response_head_timeout = timeout;
        self
    }

    /// See [`PoolConfig::read_timeout`].
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// See [`PoolConfig::write_timeout`].
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// See [`PoolConfig::request_timeout`].
    pub fn request_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.request_timeout = timeout.into();
        self
    }

    /// See [`PoolConfig::dial_backoff_initial`].
    pub fn dial_backoff_initial(mut self, wait: Duration) -> Self {
        self.config.dial_backoff_initial = wait;
        self
    }

    /// See [`PoolConfig::dial_backoff_max`].
    pub fn dial_backoff_max(mut self, wait: Duration) -> Self {
        self.config.dial_backoff_max = wait;
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

    /// See [`PoolConfig::demand_window`].
    pub fn demand_window(mut self, window: impl Into<Option<Duration>>) -> Self {
        self.config.demand_window = window.into();
        self
    }

    /// See [`PoolConfig::learn_request_budget`].
    pub fn learn_request_budget(mut self, enabled: bool) -> Self {
        self.config.learn_request_budget = enabled;
        self
    }

    // ----- Names, TCP and TLS

    /// Looks host names up through `resolver` instead of the system's (`getaddrinfo`). See
    /// [`Resolve`].
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = SharedResolver(Arc::new(resolver));
        self
    }

    /// Dials `addrs` for `host` instead of looking it up, like curl's `--resolve`; the port
    /// is the origin's. Calling it again for the same host replaces its addresses. See
    /// [`PoolConfig::resolve_overrides`].
    pub fn resolve(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.config
            .resolve_overrides
            .insert(host.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }

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

    /// See [`PoolConfig::tls_session_cache_size`].
    pub fn tls_session_cache_size(mut self, sessions: usize) -> Self {
        self.config.tls_session_cache_size = sessions;
        self
    }

    /// Sends requests as TLS 1.3 early data (0-RTT) on a dial that resumes a session, saving
    /// the handshake's round trip for the request that caused the dial. Default: off.
    ///
    /// Only when the session's ticket allows early data, the origin's previous connection
    /// spoke HTTP/2, and the request is replay-safe: `GET`, `HEAD` or `OPTIONS` without a
    /// body and without the [`NoEarlyData`](crate::NoEarlyData) extension. Other requests on
    /// that connection wait until its handshake completes. Early data the server rejects is
    /// sent again by the TLS layer after the handshake (the server's application sees it
    /// once); a `425 Too Early` answer ([RFC 8470]) is sent again by
    /// [`ConnectionPoolManager::request`](crate::ConnectionPoolManager::request) after a
    /// handshake completed (a [`StreamHandle`](crate::StreamHandle) hands it to the caller).
    /// Counted in [`OriginStats::early_data_accepted`](crate::OriginStats::early_data_accepted)
    /// and [`OriginStats::early_data_rejected`](crate::OriginStats::early_data_rejected).
    ///
    /// **Replay risk.** Early data has no protection against replay ([RFC 8446 §8]): whoever
    /// can see the traffic may send the same early data to the server again, and the server
    /// may process it more than once. Turn this on only for servers whose safe methods are
    /// really safe (no state change), mark any other `GET` with `NoEarlyData`, and prefer
    /// servers that answer `425` to what they will not take early (RFC 8470 §5.1).
    ///
    /// Applies to a [`tls_config`](Self::tls_config) as well (the pool sets its
    /// `enable_early_data`).
    ///
    /// [RFC 8446 §8]: https://www.rfc-editor.org/rfc/rfc8446#section-8
    /// [RFC 8470]: https://www.rfc-editor.org/rfc/rfc8470
    pub fn tls_early_data(mut self, enabled: bool) -> Self {
        self.config.tls_early_data = enabled;
        self
    }

    /// Presents this client certificate chain (PEM, the client's certificate first) and
    /// private key (unencrypted PEM: PKCS#8, or PKCS#1 RSA / SEC1 EC; RSA, ECDSA or Ed25519) to
    /// servers that require one (mutual TLS). Both are checked by
    /// [`build`](Self::build), which fails with [`Error::InvalidConfig`] naming
    /// `tls_client_auth` (the [`PoolConfig`] field) for a chain without a certificate, a missing, encrypted or
    /// unusable key, or a key that is not the certificate's. A server that requires a
    /// certificate from a pool without one fails with [`Error::ClientCertificateRequired`].
    /// See [`PoolConfig::tls_client_auth`].
    pub fn tls_client_auth_pem(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.config.tls_client_auth = Some(TlsClientAuth::from_pem(cert_chain_pem, key_pem));
        self
    }

    /// Dials with the caller's own rustls configuration instead of building one, for what the
    /// other options do not cover (a custom certificate verifier or client-certificate
    /// resolver, protocol versions, cipher suites, another crypto provider).
    ///
    /// What the pool still does with it:
    /// - **ALPN is the pool's**: `alpn_protocols` is replaced by `h2, http/1.1`, since the
    ///   pool reads ALPN's choice to pick the protocol it speaks.
    /// - **Resumption is the caller's**: its `resumption` (rustls' default is an in-memory
    ///   store of 256 sessions, as the pool's) is kept, and
    ///   [`tls_session_cache_size`](Self::tls_session_cache_size) has no effect. Full and
    ///   resumed handshakes are counted from each connection either way
    ///   ([`OriginStats::tls_resumed_handshakes`](crate::OriginStats::tls_resumed_handshakes)).
    /// - [`tls_key_log`](Self::tls_key_log), when set, replaces its `key_log`.
    ///
    /// Its roots and client identity are the caller's: with it, setting
    /// [`tls_extra_ca_pem`](Self::tls_extra_ca_pem),
    /// [`tls_native_roots`](Self::tls_native_roots) or
    /// [`tls_client_auth_pem`](Self::tls_client_auth_pem) makes [`build`](Self::build) fail
    /// with [`Error::InvalidConfig`] rather than be ignored, and
    /// [`tls_webpki_roots`](Self::tls_webpki_roots) is ignored. Its certificate verifier is
    /// the caller's responsibility.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.config.tls_client_config = Some(CustomTlsConfig::new(config));
        self
    }

    /// See [`PoolConfig::tls_key_log`].
    pub fn tls_key_log(mut self, enabled: bool) -> Self {
        self.config.tls_key_log = enabled;
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

    /// See [`PoolConfig::http2_coalescing`].
    pub fn http2_coalescing(mut self, enabled: bool) -> Self {
        self.config.http2_coalescing = enabled;
        self
    }

    /// See [`PoolConfig::http2_keep_alive_timeout`].
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.config.http2_keep_alive_timeout = timeout;
        self
    }

    // ----- Proxy

    /// Tunnels `https://` origins through this HTTP proxy (`http://[user:password@]host[:port]`)
    /// with CONNECT. See [`PoolConfig::proxy`]; a bad URL fails [`build`](Self::build).
    pub fn proxy(mut self, url: impl Into<ProxyUrl>) -> Self {
        self.config.proxy = Some(url.into());
        self
    }

    /// Hosts dialed directly despite the proxy, in `NO_PROXY` syntax. See
    /// [`PoolConfig::no_proxy`].
    pub fn no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.config.no_proxy = Some(hosts.into());
        self
    }

    /// Reads `HTTPS_PROXY` / `ALL_PROXY` and `NO_PROXY` at [`build`](Self::build) for what
    /// [`proxy`](Self::proxy) and [`no_proxy`](Self::no_proxy) left unset. See
    /// [`PoolConfig::proxy_from_env`].
    pub fn proxy_from_env(mut self, enabled: bool) -> Self {
        self.config.proxy_from_env = enabled;
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
    /// [`Error::InvalidConfig`] for an out-of-range value, an unusable CA certificate or proxy
    /// URL (one read from the environment included).
    pub fn build(mut self) -> Result<ConnectionPoolManager, Error> {
        if self.config.proxy_from_env {
            fill_from_env(&mut self.config, read_env(|name| std::env::var(name).ok()));
        }
        ConnectionPoolManager::from_parts(self.config, self.resolver)
    }
}

/// `proxy_from_env`: the environment fills what the builder left unset.
fn fill_from_env(config: &mut PoolConfig, env: EnvProxy) {
    if config.proxy.is_none() {
        config.proxy = env.proxy;
    }
    if config.no_proxy.is_none() {
        config.no_proxy = env.no_proxy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_client_config() -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
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
                "tls_extra_ca_pem",
                PoolBuilder::new()
                    .tls_config(test_client_config())
                    .tls_extra_ca_pem("-----BEGIN CERTIFICATE-----"),
            ),
            (
                "tls_client_auth",
                PoolBuilder::new()
                    .tls_config(test_client_config())
                    .tls_client_auth_pem("cert", "key"),
            ),
            (
                "cleartext",
                PoolBuilder::new().h2_only(true).cleartext(Cleartext::Http1),
            ),
            ("proxy", PoolBuilder::new().proxy("https://proxy.test:3128")),
            (
                "proxy",
                PoolBuilder::new().proxy("http://proxy.test:3128/path"),
            ),
        ];
        for (field, builder) in cases {
            match builder.config().validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    /// The environment fills only what was not set explicitly.
    #[test]
    fn explicit_proxy_settings_win_over_the_environment() {
        let env = EnvProxy {
            proxy: Some(ProxyUrl::from("http://env:1")),
            no_proxy: Some("env.test".to_owned()),
        };
        let mut config = PoolBuilder::new().no_proxy("mine.test").config().clone();
        fill_from_env(&mut config, env.clone());
        assert_eq!(config.proxy, Some(ProxyUrl::from("http://env:1")));
        assert_eq!(config.no_proxy.as_deref(), Some("mine.test"));
        let mut config = PoolBuilder::new().proxy("http://mine:1").config().clone();
        fill_from_env(&mut config, env);
        assert_eq!(config.proxy, Some(ProxyUrl::from("http://mine:1")));
        assert_eq!(config.no_proxy.as_deref(), Some("env.test"));
    }
}
