//! What a response says about the connection that carried it: [`ConnectionInfo`], attached to
//! every response's extensions.
//!
//! The info is built once, when the connection is established, and each response gets a copy.
//! A copy of plain data rather than a clone of a shared `Arc`: every request on a connection
//! would otherwise write the same reference count, a cache line the workers sending on that
//! connection pass between them (the reason `exchange::start` borrows the connection from
//! the lease instead of cloning it). The one shared part is the proxy's origin (an `Arc`
//! inside), present only for connections that tunnel through a proxy.
//!
//! Attaching it costs what any response extension costs: `http::Extensions` boxes the value and,
//! on a response that has no extension yet (every response h2 and hyper hand over), allocates
//! its map. hyper-util's legacy `Client` (and so reqwest) pays the same for the `HttpInfo` it
//! inserts into every response. Measured with `scripts/callgrind-pool-bench.sh` against nginx
//! (1,024 clients, 4 connections): 35,933 instructions per request before, 36,773 after, of
//! which the insert is ~420 and dropping the map ~270; hyper-util's row spends ~400 and ~280
//! on the same two steps for its `HttpInfo`.

use std::net::SocketAddr;

use crate::origin::Origin;
use crate::protocol::Protocol;

/// The connection a response came on: which one, between which addresses, how it was
/// secured, and whether it was another origin's.
///
/// Every response from the pool carries one in its extensions:
///
/// ```
/// # async fn run(
/// #     pool: https_pool::ConnectionPoolManager,
/// # ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use https_pool::ConnectionInfo;
///
/// let request = http::Request::get("https://api.example.com/items").body(String::new())?;
/// let response = pool.request(request).await?;
/// if let Some(info) = response.extensions().get::<ConnectionInfo>() {
///     println!("connection {} to {} ({})", info.id(), info.peer_addr(), info.protocol());
/// }
/// # Ok(())
/// # }
/// ```
///
/// The same connection id appears in [`ConnectionStats`](crate::ConnectionStats) and in the
/// pool's `tracing` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    protocol: Protocol,
    tls: Option<TlsInfo>,
    coalesced: bool,
    proxy: Option<Origin>,
}

/// What the TLS handshake of a connection settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlsInfo {
    pub(crate) version: Option<TlsVersion>,
    /// The protocol ALPN selected; `None` when the server selected none.
    pub(crate) alpn: Option<&'static [u8]>,
    pub(crate) resumed: bool,
}

/// The TLS protocol version a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// The version rustls negotiated; `None` for one rustls does not speak (it speaks only
    /// these two).
    pub(crate) fn from_rustls(version: rustls::ProtocolVersion) -> Option<TlsVersion> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

impl ConnectionInfo {
    /// The info of a connection of its own origin (not coalesced), built once at establish.
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        protocol: Protocol,
        tls: Option<TlsInfo>,
        proxy: Option<Origin>,
    ) -> ConnectionInfo {
        ConnectionInfo {
            id,
            peer,
            local,
            protocol,
            tls,
            coalesced: false,
            proxy,
        }
    }

    /// A copy for one response; `coalesced` when the request was for another origin.
    pub(crate) fn for_response(&self, coalesced: bool) -> ConnectionInfo {
        ConnectionInfo {
            coalesced,
            ..self.clone()
        }
    }

    /// The pool's id of the connection (as in [`ConnectionStats::id`](crate::ConnectionStats::id)
    /// and `tracing` events).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The address the connection's socket is connected to: the one that won the connect race
    /// among the origin's addresses, or the proxy's when the connection is tunnelled (see
    /// [`proxy`](Self::proxy)).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the connection's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// HTTP/2 or HTTP/1.1.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The TLS version negotiated; `None` for a cleartext (`http://`) connection.
    pub fn tls_version(&self) -> Option<TlsVersion> {
        self.tls.and_then(|tls| tls.version)
    }

    /// The application protocol ALPN selected (`b"h2"`, `b"http/1.1"`); `None` for cleartext,
    /// or when the server selected none (the pool then speaks HTTP/1.1).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.and_then(|tls| tls.alpn)
    }

    /// Whether the TLS handshake resumed an earlier session (no certificate was sent); `None`
    /// for cleartext.
    pub fn tls_resumed(&self) -> Option<bool> {
        self.tls.map(|tls| tls.resumed)
    }

    /// True when the response came on another origin's connection, by HTTP/2 connection
    /// coalescing (see [`PoolConfig::http2_coalescing`](crate::PoolConfig::http2_coalescing)).
    pub fn coalesced(&self) -> bool {
        self.coalesced
    }

    /// The HTTP proxy (`http://host:port`, without credentials) the connection tunnels
    /// through with CONNECT, if any.
    pub fn proxy(&self) -> Option<&Origin> {
        self.proxy.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response's copy differs from the connection's only in `coalesced`.
    #[test]
    fn a_response_copy_only_marks_coalescing() {
        let tls = TlsInfo {
            version: Some(TlsVersion::Tls13),
            alpn: Some(b"h2"),
            resumed: false,
        };
        let peer = "127.0.0.2:443".parse().expect("addr");
        let local = "127.0.0.1:50000".parse().expect("addr");
        let info = ConnectionInfo::new(7, peer, local, Protocol::Http2, Some(tls), None);
        let copy = info.for_response(true);
        assert!(copy.coalesced() && !info.coalesced());
        assert_eq!(copy.for_response(false), info);
        assert_eq!(copy.alpn(), Some(&b"h2"[..]));
        assert_eq!(copy.tls_version(), Some(TlsVersion::Tls13));
        assert_eq!(copy.tls_resumed(), Some(false));
        assert_eq!(
            (copy.id(), copy.peer_addr(), copy.local_addr()),
            (7, peer, local)
        );
        assert_eq!(copy.proxy(), None);
    }

    /// rustls's two versions map; anything else is not claimed.
    #[test]
    fn tls_versions_map_from_rustls() {
        use rustls::ProtocolVersion as V;
        assert_eq!(TlsVersion::from_rustls(V::TLSv1_3), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::from_rustls(V::TLSv1_2), Some(TlsVersion::Tls12));
        assert_eq!(TlsVersion::from_rustls(V::TLSv1_1), None);
        assert_eq!(TlsVersion::Tls13.to_string(), "TLSv1.3");
    }
}
