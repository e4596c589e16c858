//! The crate's one error type.
//!
//! Every failure the pool can report is a distinct [`Error`] variant that names the origin
//! involved and keeps the underlying cause reachable through [`std::error::Error::source`].
//! The `Display` wording is for humans and is **not** part of the API: match on variants and
//! use the helpers ([`Error::is_timeout`], [`Error::is_connect`]) instead of parsing messages.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::origin::Origin;

/// A boxed error, as accepted from request bodies.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A shared cause. Errors are `Clone` because one failed dial is reported to every acquirer
/// that was waiting on it.
pub(crate) type SharedError = Arc<dyn StdError + Send + Sync>;

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The TCP connect (DNS included; through a proxy, the CONNECT exchange too) took longer
    /// than `connect_timeout`.
    Connect,
    /// The TLS handshake took longer than `tls_handshake_timeout`.
    TlsHandshake,
    /// No stream slot became free within `acquire_timeout`.
    Acquire,
    /// The request was sent (its body written in full) but no response head came within
    /// `response_head_timeout`. The stream was reset; the request may have been processed.
    ResponseHead,
    /// The caller waited this long for the next piece of a response body (or its trailers)
    /// and nothing came: `read_timeout`. The stream was reset (HTTP/1.1: the connection
    /// discarded).
    Read,
    /// The request body could not make progress for `write_timeout`: the server gave no
    /// flow-control credit, or the socket took no bytes. The stream was reset.
    Write,
    /// The whole request, from acquire to the end of the response body, took longer than
    /// `request_timeout`.
    Request,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "tcp connect",
            TimeoutKind::TlsHandshake => "tls handshake",
            TimeoutKind::Acquire => "acquire",
            TimeoutKind::ResponseHead => "response head",
            TimeoutKind::Read => "response body read",
            TimeoutKind::Write => "request body write",
            TimeoutKind::Request => "request",
        })
    }
}

/// Errors returned by the pool.
///
/// Marked `#[non_exhaustive]`: new failure kinds may be added in minor releases.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text given as an origin or request URI is not a valid URL.
    #[error("invalid url {input:?}: {reason}")]
    InvalidUrl {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The URL's scheme is not one the pool speaks.
    #[error("unsupported scheme {scheme:?} in {input:?}: the pool speaks https and http")]
    UnsupportedScheme {
        /// The text that was given.
        input: String,
        /// The scheme found in it.
        scheme: String,
    },

    /// The origin is cleartext `http://` and the pool's
    /// [`cleartext`](crate::PoolConfig::cleartext) mode is [`Cleartext::Disabled`]
    /// (the default). Nothing was dialed.
    ///
    /// [`Cleartext::Disabled`]: crate::Cleartext::Disabled
    #[error(
        "{origin} is cleartext http and the pool refuses cleartext; enable it with PoolBuilder::cleartext"
    )]
    CleartextDisabled {
        /// The `http://` origin.
        origin: Origin,
    },

    /// A [`PoolConfig`](crate::PoolConfig) value is out of range.
    #[error("invalid pool configuration: {field}: {reason}")]
    InvalidConfig {
        /// The configuration field at fault.
        field: &'static str,
        /// Why the value was rejected.
        reason: String,
    },

    /// A request handed to a [`StreamHandle`](crate::StreamHandle) names another origin, or is
    /// otherwise unusable.
    #[error("invalid request for {origin}: {reason}")]
    InvalidRequest {
        /// The origin of the handle the request was given to.
        origin: Origin,
        /// What is wrong with the request.
        reason: String,
    },

    /// A [`Priority`](crate::Priority) urgency outside RFC 9218's 0..=7.
    #[error("priority urgency {urgency} is outside RFC 9218's 0..=7")]
    InvalidPriority {
        /// The urgency given.
        urgency: u8,
    },

    /// The host name could not be resolved.
    #[error("dns resolution failed for {origin}")]
    Dns {
        /// The origin being dialed.
        origin: Origin,
        /// The resolver's error.
        #[source]
        source: SharedError,
    },

    /// The server actively refused the TCP connection.
    #[error("connection refused by {origin}")]
    ConnectionRefused {
        /// The origin being dialed.
        origin: Origin,
        /// The socket error.
        #[source]
        source: SharedError,
    },

    /// Any other TCP-level connect failure (unreachable network, reset during connect, …).
    #[error("tcp connect to {origin} failed")]
    Connect {
        /// The origin being dialed.
        origin: Origin,
        /// The socket error.
        #[source]
        source: SharedError,
    },

    /// The server's certificate does not chain to a trusted root (unknown or self-signed issuer).
    #[error("tls handshake with {origin} failed: certificate issuer is not trusted")]
    UntrustedCertificate {
        /// The origin being dialed.
        origin: Origin,
        /// The rustls error.
        #[source]
        source: SharedError,
    },

    /// The server's certificate is valid but not for the host name that was dialed.
    #[error("tls handshake with {origin} failed: certificate is not valid for this host name")]
    CertificateNameMismatch {
        /// The origin being dialed.
        origin: Origin,
        /// The rustls error.
        #[source]
        source: SharedError,
    },

    /// The server answered the TLS handshake with something that is not TLS, as a
    /// cleartext HTTP server does: the port most likely serves `http://`, not `https://`.
    #[error(
        "tls handshake with {origin} failed: the server answered in plaintext, not TLS \
         (does the port serve http:// rather than https://?)"
    )]
    NotTls {
        /// The origin being dialed.
        origin: Origin,
        /// The rustls error (an invalid record type).
        #[source]
        source: SharedError,
    },

    /// The server requires a client certificate (mutual TLS) and the pool presented none: it
    /// answered with TLS's `certificate_required` alert. Give the pool an identity with
    /// [`PoolBuilder::tls_client_auth_pem`](crate::PoolBuilder::tls_client_auth_pem) (or a
    /// [`tls_config`](crate::PoolBuilder::tls_config) that has one). With TLS 1.3 the alert
    /// comes after the client's side of the handshake, so it fails the connection's first
    /// request rather than the dial; either way this is the error, and it is not retried. The
    /// origin then backs off as after any failed dial, and while it does, requests may fail
    /// with [`Error::BackingOff`] instead, whose source is this error.
    /// ([`prewarm_hosts`](crate::ConnectionPoolManager::prewarm_hosts) counts such a TLS 1.3
    /// connection as opened: its handshake succeeded, the refusal comes after.)
    ///
    /// TLS 1.2 has no such alert: a server refuses with a bare `handshake_failure`, which is
    /// reported as this error when that server had asked for a certificate the pool could not
    /// give (otherwise [`Error::Tls`]). nginx with
    /// `ssl_verify_client on` completes the handshake and answers each request with
    /// `400 No required SSL certificate was sent`, a response, not an error.
    #[error(
        "tls with {origin} failed: the server requires a client certificate and none was \
         presented (see PoolBuilder::tls_client_auth_pem)"
    )]
    ClientCertificateRequired {
        /// The origin being dialed.
        origin: Origin,
        /// The rustls error (the alert), possibly under the h2 or I/O error it surfaced in.
        #[source]
        source: SharedError,
    },

    /// Any other TLS failure (protocol alert, expired certificate, unsupported parameters, …).
    #[error("tls handshake with {origin} failed")]
    Tls {
        /// The origin being dialed.
        origin: Origin,
        /// The rustls or I/O error.
        #[source]
        source: SharedError,
    },

    /// A deadline expired; [`TimeoutKind`] says which.
    #[error("{kind} timed out after {after:?} for {origin}")]
    Timeout {
        /// The origin involved.
        origin: Origin,
        /// Which deadline expired.
        kind: TimeoutKind,
        /// The configured deadline.
        after: Duration,
    },

    /// The peer does not speak what the pool needs (for example ALPN chose http/1.1 while
    /// `h2_only` is set), or the HTTP/2 handshake failed.
    #[error("protocol error with {origin}: {reason}")]
    Protocol {
        /// The origin involved.
        origin: Origin,
        /// What went wrong.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<SharedError>,
    },

    /// Every connection is at its stream limit, no more may be opened, and the wait queue is
    /// full: the request was rejected at once.
    #[error("pool for {origin} is exhausted: {waiters} acquirers are already waiting")]
    PoolExhausted {
        /// The origin involved.
        origin: Origin,
        /// How many acquirers were waiting (the configured queue length).
        waiters: usize,
    },

    /// Dials to the origin keep failing and it is backing off: no connection could take the
    /// request, and the next dial is not due yet, so the acquire failed at once instead of
    /// waiting out `acquire_timeout`. `source` is the last dial's error.
    #[error("{origin} is backing off after {failures} failed dials; next dial in {retry_in:?}")]
    BackingOff {
        /// The origin involved.
        origin: Origin,
        /// Dials that failed in a row.
        failures: u32,
        /// How long until the next dial is allowed.
        retry_in: Duration,
        /// The last dial's error.
        #[source]
        source: Box<Error>,
    },

    /// The connection closed or failed while the request was in flight. The request may have
    /// reached the server.
    #[error("connection {connection_id} to {origin} failed during the request")]
    ConnectionClosed {
        /// The origin involved.
        origin: Origin,
        /// The pool's id of the connection.
        connection_id: u64,
        /// hyper's error.
        #[source]
        source: SharedError,
    },

    /// The request failed for a reason that is not the connection's (for example the request
    /// body returned an error, or the peer reset the stream).
    #[error("request to {origin} on connection {connection_id} failed")]
    Request {
        /// The origin involved.
        origin: Origin,
        /// The pool's id of the connection.
        connection_id: u64,
        /// hyper's error.
        #[source]
        source: SharedError,
    },

    /// The HTTP proxy answered `CONNECT` for the origin with a status other than 2xx: 407
    /// when it wants (other) credentials, 403 when its rules forbid the destination, 502 or
    /// 504 when it could not reach the origin. Nothing reached the origin.
    #[error("proxy {proxy} refused to tunnel to {origin}: {status}")]
    ProxyRefused {
        /// The origin the tunnel was for.
        origin: Origin,
        /// The proxy (`http://host:port`, without credentials).
        proxy: Origin,
        /// The status the proxy answered with.
        status: http::StatusCode,
    },

    /// The tunnel through the HTTP proxy could not be opened: the proxy's name did not
    /// resolve, its TCP connect failed or ran past `connect_timeout` (CONNECT included), or it
    /// answered `CONNECT` with something that is not an HTTP response head. `source` is that
    /// failure, in its own variant ([`Error::Dns`], [`Error::ConnectionRefused`],
    /// [`Error::Connect`], [`Error::Timeout`], [`Error::Protocol`]) naming the proxy.
    #[error("could not open a tunnel to {origin} through proxy {proxy}")]
    ProxyConnect {
        /// The origin the tunnel was for.
        origin: Origin,
        /// The proxy (`http://host:port`, without credentials).
        proxy: Origin,
        /// What failed, naming the proxy as its origin.
        #[source]
        source: Box<Error>,
    },

    /// The pool was shut down; no new streams are handed out.
    #[error("the connection pool is shut down")]
    PoolClosed,
}

impl Error {
    /// True when a deadline expired (connect, TLS handshake, acquire, response head, read,
    /// write, or the whole request; or the connect to a proxy).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::ProxyConnect { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// True when the failure happened while establishing a connection (DNS, TCP, TLS,
    /// protocol negotiation, a connect / handshake timeout, a proxy's tunnel, or an origin
    /// backing off after such failures).
    pub fn is_connect(&self) -> bool {
        match self {
            Error::Dns { .. }
            | Error::ConnectionRefused { .. }
            | Error::Connect { .. }
            | Error::UntrustedCertificate { .. }
            | Error::CertificateNameMismatch { .. }
            | Error::NotTls { .. }
            | Error::Tls { .. }
            | Error::ClientCertificateRequired { .. }
            | Error::Protocol { .. }
            | Error::ProxyRefused { .. }
            | Error::ProxyConnect { .. }
            | Error::BackingOff { .. } => true,
            Error::Timeout { kind, .. } => {
                matches!(kind, TimeoutKind::Connect | TimeoutKind::TlsHandshake)
            }
            _ => false,
        }
    }

    /// True when the request provably never reached the server and another attempt may
    /// succeed: no slot came (acquire timeout, full wait queue) or the dial failed in a way
    /// that can pass (DNS, refused, connect or TLS handshake timeout, other connect error, the
    /// proxy unreachable that way, an origin backing off after such dials). Sending it again cannot process it twice, whatever its method, so
    /// these are the errors a caller's own retry (a tower `Retry` policy, say) may retry.
    ///
    /// `false` proves nothing either way: the pool has already sent again, on another
    /// connection, what it could prove unsent, and certificate, protocol and configuration
    /// failures would only fail again.
    pub fn is_retry_safe(&self) -> bool {
        match self {
            Error::Dns { .. }
            | Error::ConnectionRefused { .. }
            | Error::Connect { .. }
            | Error::PoolExhausted { .. } => true,
            // As safe as the dial failure behind them: a backoff after refused client
            // certificates or proxy refusals would only end the same way.
            Error::BackingOff { source, .. } | Error::ProxyConnect { source, .. } => {
                source.is_retry_safe()
            }
            Error::Timeout { kind, .. } => matches!(
                kind,
                TimeoutKind::Acquire | TimeoutKind::Connect | TimeoutKind::TlsHandshake
            ),
            _ => false,
        }
    }

    /// The origin the error is about, when it is about one.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Error::InvalidRequest { origin, .. }
            | Error::Dns { origin, .. }
            | Error::ConnectionRefused { origin, .. }
            | Error::Connect { origin, .. }
            | Error::UntrustedCertificate { origin, .. }
            | Error::CertificateNameMismatch { origin, .. }
            | Error::NotTls { origin, .. }
            | Error::Tls { origin, .. }
            | Error::ClientCertificateRequired { origin, .. }
            | Error::Timeout { origin, .. }
            | Error::Protocol { origin, .. }
            | Error::PoolExhausted { origin, .. }
            | Error::BackingOff { origin, .. }
            | Error::CleartextDisabled { origin }
            | Error::ProxyRefused { origin, .. }
            | Error::ProxyConnect { origin, .. }
            | Error::ConnectionClosed { origin, .. }
            | Error::Request { origin, .. } => Some(origin),
            Error::InvalidUrl { .. }
            | Error::UnsupportedScheme { .. }
            | Error::InvalidConfig { .. }
            | Error::InvalidPriority { .. }
            | Error::PoolClosed => None,
        }
    }

    pub(crate) fn invalid_config(field: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}

/// Moves an error into a shared cause.
pub(crate) fn shared<E: StdError + Send + Sync + 'static>(error: E) -> SharedError {
    Arc::new(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_static() {
        assert_send_sync::<Error>();
    }

    /// Timeouts report both helpers consistently: a TLS handshake timeout is a connect-phase
    /// failure, an acquire timeout is not.
    #[test]
    fn timeout_helpers_classify_by_kind() {
        let origin: Origin = "https://a.example".parse().expect("valid origin");
        let tls = Error::Timeout {
            origin: origin.clone(),
            kind: TimeoutKind::TlsHandshake,
            after: Duration::from_secs(1),
        };
        let acquire = Error::Timeout {
            origin,
            kind: TimeoutKind::Acquire,
            after: Duration::from_secs(1),
        };
        assert!(tls.is_timeout() && tls.is_connect());
        assert!(acquire.is_timeout() && !acquire.is_connect());
        assert!(acquire.to_string().contains("https://a.example:443"));
    }
}
