//! Dialing: the origin's addresses (overrides, then the pool's [`Resolve`](crate::Resolve)r),
//! TCP raced across them per RFC 8305 ([`race`]), then TLS through rustls with ALPN, or, for a
//! cleartext `http://` origin the configuration allows, no TLS and the configured protocol.
//! An origin routed through an HTTP proxy ([`Route::Tunnel`]) races the *proxy's* addresses
//! instead, opens a CONNECT tunnel to the origin ([`tunnel`]) within the same connect
//! deadline, and runs TLS to the origin inside it (server name and certificate the origin's).
//!
//! The two phases run under separate deadlines so a slow TCP connect and a server that accepts
//! TCP but never answers TLS are told apart ([`TimeoutKind::Connect`] vs
//! [`TimeoutKind::TlsHandshake`]), and each failure is classified into its own [`Error`]
//! variant. Certificates are always verified; there is no switch to turn that off.

mod certificate_request;
mod classify;
mod client_auth;
mod race;
mod roots;
mod tls_config;
mod tunnel;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::{debug, instrument};

use self::certificate_request::WatchedHandshake;
use self::classify::{classify_connect_error, classify_tls_error};
use self::race::{ATTEMPT_DELAY, ConnectAttempts, TcpOptions, interleave, race};
use self::tls_config::{ALPN_H2, ALPN_HTTP1};
use crate::config::{Cleartext, PoolConfig};
use crate::connection_info::{TlsInfo, TlsVersion};
use crate::early_data::{EarlyHandshake, HandshakeCounts};
use crate::error::{Error, TimeoutKind, shared};
use crate::origin::{Origin, Scheme};
use crate::protocol::Protocol;
use crate::proxy::{Route, Routes, Tunnel};
use crate::resolver::{Lookup, SharedResolver};
use crate::transport::{EarlyWatch, TlsTransport, Transport};

/// A stream ready for HTTP, with the protocol to speak and how long the phases took.
pub(crate) struct Dialed {
    pub(crate) stream: Transport,
    /// What ALPN chose, or what the cleartext mode says.
    pub(crate) protocol: Protocol,
    /// TCP connect, DNS included.
    pub(crate) tcp_time: Duration,
    /// TLS handshake; zero for cleartext.
    pub(crate) tls_time: Duration,
    /// The TLS handshake resumed an earlier session (no certificate was sent or verified);
    /// `None` for cleartext, and for a dial still in early data (its handshake counts itself
    /// when it ends).
    pub(crate) resumed: Option<bool>,
    /// The handshake still under way while requests go as TLS 1.3 early data; `None` when
    /// the dial completed its handshake (see `crate::early_data`).
    pub(crate) early: Option<Arc<EarlyHandshake>>,
    /// The address the TCP race was won by (the proxy's, for a tunnel).
    pub(crate) peer: SocketAddr,
    /// The proxy the connection is tunnelled through; `None` when dialed directly.
    pub(crate) proxy: Option<Origin>,
    /// The socket's local address.
    pub(crate) local: SocketAddr,
    /// What the TLS handshake settled (version, ALPN, resumption); `None` for cleartext.
    pub(crate) tls: Option<TlsInfo>,
    /// The server's end-entity certificate, kept only for HTTP/2 coalescing.
    pub(crate) end_entity: Option<CertificateDer<'static>>,
    /// Set by the transport when the server refuses the connection for want of a client
    /// certificate after the handshake (see [`TlsTransport`]).
    pub(crate) client_certificate_required: Arc<AtomicBool>,
}

/// What a dial puts on top of TCP.
enum Security {
    /// TLS to this server name; ALPN picks the protocol.
    Tls(ServerName<'static>),
    /// Nothing: cleartext, speaking this protocol.
    Plain(Protocol),
}

/// Opens TLS connections to origins. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connector {
    lookup: Lookup,
    tcp: TcpOptions,
    tls: TlsConnector,
    /// The same configuration with tokio-rustls' early data on: `connect` resolves right after
    /// the ClientHello when the session allows early data. `None` unless opted in.
    tls_early: Option<TlsConnector>,
    connect_timeout: Duration,
    tls_handshake_timeout: Duration,
    h2_only: bool,
    cleartext: Cleartext,
    keep_end_entity: bool,
    routes: Routes,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("connect_timeout", &self.connect_timeout)
            .field("tls_handshake_timeout", &self.tls_handshake_timeout)
            .field("h2_only", &self.h2_only)
            .field("cleartext", &self.cleartext)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Builds the connector; fails on TLS material (CA, client identity) that does not parse.
    pub(crate) fn new(config: &PoolConfig, resolver: SharedResolver) -> Result<Connector, Error> {
        let tls = tls_config::client_config(config)?;

        let routes = Routes::new(config.proxy.as_ref(), config.no_proxy.as_deref())?;
        Ok(Connector {
            routes,
            lookup: Lookup::new(config.resolve_overrides.clone(), resolver),
            tcp: TcpOptions {
                nodelay: config.tcp_nodelay,
                keepalive: config.tcp_keepalive,
            },
            tls_early: config
                .tls_early_data
                .then(|| TlsConnector::from(Arc::new(tls.clone())).early_data(true)),
            tls: TlsConnector::from(Arc::new(tls)),
            connect_timeout: config.connect_timeout,
            tls_handshake_timeout: config.tls_handshake_timeout,
            h2_only: config.h2_only,
            cleartext: config.cleartext,
            keep_end_entity: config.http2_coalescing,
        })
    }

    /// The addresses a dial to `origin` would try (overrides, IP literal or the resolver).
    pub(crate) async fn resolve(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Error> {
        self.lookup.addresses(origin).await
    }

    /// How connections to `origin` are dialed: directly, or through the pool's proxy. Fixed
    /// for the pool's lifetime, so an origin's pool decides it once.
    pub(crate) fn route(&self, origin: &Origin) -> Route {
        self.routes.route(origin)
    }

    /// Resolves, connects and completes TLS to `origin` (for `http://`, only connects), on
    /// `route`.
    ///
    /// `nth` is how many dials the origin started before this one: the race starts at the
    /// `nth` address (modulo their number, within each family; see [`interleave`]), so an
    /// origin's connections spread over the addresses its name (or its proxy's) has.
    ///
    /// `early_data`: the origin's handshake counts, when this dial may send HTTP/2 as TLS 1.3
    /// early data (opted in, and the origin's last connection spoke HTTP/2); the dial then
    /// returns before the handshake completes if the resumed session allows early data.
    #[instrument(level = "debug", skip(self, route, early_data), fields(origin = %origin, proxy = ?route.proxy()))]
    pub(crate) async fn dial(
        &self,
        origin: &Origin,
        route: &Route,
        nth: usize,
        early_data: Option<&Arc<HandshakeCounts>>,
    ) -> Result<Dialed, Error> {
        // Checked before dialing, so a name TLS cannot use never opens a socket.
        let security = match cleartext_protocol(self.cleartext, origin)? {
            None => {
                let name =
                    ServerName::try_from(origin.host_unbracketed().to_owned()).map_err(|_| {
                        Error::InvalidUrl {
                            input: origin.to_string(),
                            reason: "host is neither a DNS name nor an IP address",
                        }
                    })?;
                Security::Tls(name)
            }
            Some(protocol) => Security::Plain(protocol),
        };
        let started = Instant::now();
        let (tcp, peer) = match route {
            Route::Direct => self.connect(origin, nth).await?,
            Route::Tunnel(tunnel) => self.connect_through(origin, tunnel, nth).await?,
        };
        // Read once here, for the connection's info; a socket whose own address cannot be
        // read is not one to send on.
        let local = tcp
            .local_addr()
            .map_err(|e| classify_connect_error(origin, ConnectAttempts(vec![(peer, e)])))?;
        let proxy = route.proxy().cloned();
        let tcp_time = started.elapsed();
        let server_name = match security {
            Security::Tls(name) => name,
            Security::Plain(protocol) => {
                debug!(%protocol, ?tcp_time, "dialed cleartext");
                return Ok(Dialed {
                    stream: Transport::Plain(tcp),
                    client_certificate_required: Arc::default(),
                    protocol,
                    tcp_time,
                    tls_time: Duration::ZERO,
                    resumed: None,
                    early: None,
                    peer,
                    proxy,
                    local,
                    tls: None,
                    end_entity: None,
                });
            }
        };

        let tls_started = Instant::now();
        let connector = match (early_data, &self.tls_early) {
            (Some(_), Some(early)) => early,
            _ => &self.tls,
        };
        let handshake = WatchedHandshake::new(connector.connect(server_name, tcp));
        let stream = match tokio::time::timeout(self.tls_handshake_timeout, handshake).await {
            Err(_) => {
                return Err(Error::Timeout {
                    origin: origin.clone(),
                    kind: TimeoutKind::TlsHandshake,
                    after: self.tls_handshake_timeout,
                });
            }
            Ok((Err(e), certificate_request_unanswered)) => {
                return Err(classify_tls_error(
                    origin,
                    e,
                    certificate_request_unanswered,
                ));
            }
            Ok((Ok(stream), _)) => stream,
        };
        let tls_time = tls_started.elapsed();
        // With early data on, tokio-rustls resolves `connect` before the handshake only when
        // the resumed session allows early data; then the rest of the handshake happens as
        // the connection writes, under the transport's deadline.
        if let Some(counts) = early_data
            && stream.get_ref().1.is_handshaking()
        {
            let early = EarlyHandshake::new(Arc::clone(counts));
            let client_certificate_required = Arc::new(AtomicBool::new(false));
            debug!(%peer, ?tcp_time, "dialed; HTTP/2 goes as early data");
            let deadline = tls_started + self.tls_handshake_timeout;
            return Ok(Dialed {
                stream: Transport::Tls(Box::new(TlsTransport::new(
                    stream,
                    Arc::clone(&client_certificate_required),
                    Some(EarlyWatch::new(
                        Arc::clone(&early),
                        deadline,
                        self.tls_handshake_timeout,
                        ALPN_H2,
                    )),
                ))),
                client_certificate_required,
                // The session's ALPN: only an origin whose last connection spoke HTTP/2 is
                // dialed with early data (the transport fails the connection otherwise).
                protocol: Protocol::Http2,
                tcp_time,
                tls_time,
                resumed: None,
                early: Some(early),
                peer,
                proxy,
                local,
                tls: Some(TlsInfo {
                    version: Some(TlsVersion::Tls13),
                    alpn: Some(ALPN_H2),
                    resumed: true,
                }),
                // Coalescing needs the certificate, which a resumed handshake does not show.
                end_entity: None,
            });
        }
        let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);

        // The selected protocol as the pool's own constant, so the connection's info keeps it
        // without an allocation.
        let (protocol, alpn) = match stream.get_ref().1.alpn_protocol() {
            Some(ALPN_H2) => (Protocol::Http2, Some(ALPN_H2)),
            Some(ALPN_HTTP1) => (Protocol::Http1, Some(ALPN_HTTP1)),
            // No ALPN at all means the server predates it: HTTP/1.1.
            None => (Protocol::Http1, None),
            Some(other) => {
                return Err(Error::Protocol {
                    origin: origin.clone(),
                    reason: format!(
                        "server selected unknown ALPN protocol {:?}",
                        String::from_utf8_lossy(other)
                    ),
                    source: None,
                });
            }
        };
        if self.h2_only && protocol != Protocol::Http2 {
            return Err(Error::Protocol {
                origin: origin.clone(),
                reason: "server does not offer HTTP/2 (ALPN h2) and h2_only is set".to_owned(),
                source: None,
            });
        }
        debug!(%protocol, %peer, ?tcp_time, ?tls_time, resumed, "dialed");
        let end_entity = self
            .keep_end_entity
            .then(|| stream.get_ref().1.peer_certificates()?.first().cloned())
            .flatten()
            .map(CertificateDer::into_owned);
        let tls = TlsInfo {
            version: stream
                .get_ref()
                .1
                .protocol_version()
                .and_then(TlsVersion::from_rustls),
            alpn,
            resumed,
        };
        let client_certificate_required = Arc::new(AtomicBool::new(false));
        Ok(Dialed {
            stream: Transport::Tls(Box::new(TlsTransport::new(
                stream,
                Arc::clone(&client_certificate_required),
                None,
            ))),
            client_certificate_required,
            protocol,
            tcp_time,
            tls_time,
            resumed: Some(resumed),
            early: None,
            peer,
            proxy,
            local,
            tls: Some(tls),
            end_entity,
        })
    }

    /// TCP to `origin`: one deadline over the lookup and the whole race, a timeout being
    /// [`TimeoutKind::Connect`].
    async fn connect(&self, origin: &Origin, nth: usize) -> Result<(TcpStream, SocketAddr), Error> {
        let connect = async {
            let addrs = interleave(self.lookup.addresses(origin).await?, nth);
            race(&addrs, self.tcp, ATTEMPT_DELAY)
                .await
                .map_err(|attempts| classify_connect_error(origin, attempts))
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => Err(Error::Timeout {
                origin: origin.clone(),
                kind: TimeoutKind::Connect,
                after: self.connect_timeout,
            }),
            Ok(result) => result,
        }
    }

    /// TCP to the proxy (its addresses raced as an origin's are), then CONNECT to `origin`,
    /// all under the one connect deadline. A refusal is [`Error::ProxyRefused`]; any other
    /// failure is [`Error::ProxyConnect`] wrapping the failure named after the proxy.
    async fn connect_through(
        &self,
        origin: &Origin,
        tunnel: &Tunnel,
        nth: usize,
    ) -> Result<(TcpStream, SocketAddr), Error> {
        let proxy = &tunnel.proxy;
        let through = |source: Error| Error::ProxyConnect {
            origin: origin.clone(),
            proxy: proxy.clone(),
            source: Box::new(source),
        };
        let connect = async {
            let (mut tcp, peer) = self.connect(proxy, nth).await.map_err(through)?;
            tunnel::open(&mut tcp, origin, tunnel.authorization.as_ref())
                .await
                .map_err(|failure| match failure {
                    tunnel::TunnelFailure::Refused(status) => Error::ProxyRefused {
                        origin: origin.clone(),
                        proxy: proxy.clone(),
                        status,
                    },
                    tunnel::TunnelFailure::Io(error) => through(Error::Connect {
                        origin: proxy.clone(),
                        source: shared(error),
                    }),
                    tunnel::TunnelFailure::Malformed(reason) => through(Error::Protocol {
                        origin: proxy.clone(),
                        reason: reason.to_owned(),
                        source: None,
                    }),
                })?;
            debug!(%proxy, %peer, "tunnel open");
            Ok((tcp, peer))
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => Err(through(Error::Timeout {
                origin: proxy.clone(),
                kind: TimeoutKind::Connect,
                after: self.connect_timeout,
            })),
            Ok(result) => result,
        }
    }
}

/// The protocol a cleartext dial to `origin` speaks (`None` for `https://`), or
/// [`Error::CleartextDisabled`] when the configuration does not allow `http://`. The one place
/// that refuses cleartext: acquires check it before an origin is created, dials before a socket
/// is opened.
pub(crate) fn cleartext_protocol(
    cleartext: Cleartext,
    origin: &Origin,
) -> Result<Option<Protocol>, Error> {
    match (origin.scheme(), cleartext) {
        (Scheme::Https, _) => Ok(None),
        (Scheme::Http, Cleartext::Disabled) => Err(Error::CleartextDisabled {
            origin: origin.clone(),
        }),
        (Scheme::Http, Cleartext::Http2PriorKnowledge) => Ok(Some(Protocol::Http2)),
        (Scheme::Http, Cleartext::Http1) => Ok(Some(Protocol::Http1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `http://` is refused, and only when cleartext is off.
    #[test]
    fn cleartext_is_refused_in_one_place() {
        let plain: Origin = "http://a.test".parse().expect("origin");
        let tls: Origin = "https://a.test".parse().expect("origin");
        assert!(matches!(
            cleartext_protocol(Cleartext::Disabled, &plain),
            Err(Error::CleartextDisabled { .. })
        ));
        assert_eq!(
            cleartext_protocol(Cleartext::Disabled, &tls).ok(),
            Some(None)
        );
        assert_eq!(
            cleartext_protocol(Cleartext::Http1, &plain).ok(),
            Some(Some(Protocol::Http1))
        );
    }
}
