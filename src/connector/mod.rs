//! Dialing: the origin's addresses (overrides, then the pool's [`Resolve`](crate::Resolve)r),
//! TCP raced across them per RFC 8305 ([`race`]), then TLS through rustls with ALPN, or, for a
//! cleartext `http://` origin the configuration allows, no TLS and the configured protocol.
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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tracing::{debug, instrument};

use self::certificate_request::WatchedHandshake;
use self::classify::{classify_connect_error, classify_tls_error};
use self::race::{ATTEMPT_DELAY, TcpOptions, interleave, race};
use self::tls_config::{ALPN_H2, ALPN_HTTP1};
use crate::config::{Cleartext, PoolConfig};
use crate::error::{Error, TimeoutKind};
use crate::origin::{Origin, Scheme};
use crate::protocol::Protocol;
use crate::resolver::{Lookup, SharedResolver};
use crate::transport::{TlsTransport, Transport};

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
    /// `None` for cleartext.
    pub(crate) resumed: Option<bool>,
    /// The address the TCP race was won by.
    pub(crate) peer: SocketAddr,
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
    connect_timeout: Duration,
    tls_handshake_timeout: Duration,
    h2_only: bool,
    cleartext: Cleartext,
    keep_end_entity: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("connect_timeout", &self.connect_timeout)
            .field("tls_handshake_timeout", &self.tls_handshake_timeout)
            .field("h2_only", &self.h2_only)
            .field("cleartext", &self.cleartext)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Builds the connector; fails on TLS material (CA, client identity) that does not parse.
    pub(crate) fn new(config: &PoolConfig, resolver: SharedResolver) -> Result<Connector, Error> {
        let tls = tls_config::client_config(config)?;

        Ok(Connector {
            lookup: Lookup::new(config.resolve_overrides.clone(), resolver),
            tcp: TcpOptions {
                nodelay: config.tcp_nodelay,
                keepalive: config.tcp_keepalive,
            },
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

    /// Resolves, connects and completes TLS to `origin` (for `http://`, only connects).
    #[instrument(level = "debug", skip(self), fields(origin = %origin))]
    pub(crate) async fn dial(&self, origin: &Origin) -> Result<Dialed, Error> {
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
        // One deadline over the lookup and the whole race: a timeout is TimeoutKind::Connect.
        let started = Instant::now();
        let connect = async {
            let addrs = interleave(self.lookup.addresses(origin).await?);
            race(&addrs, self.tcp, ATTEMPT_DELAY)
                .await
                .map_err(|attempts| classify_connect_error(origin, attempts))
        };
        let (tcp, peer) = match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => {
                return Err(Error::Timeout {
                    origin: origin.clone(),
                    kind: TimeoutKind::Connect,
                    after: self.connect_timeout,
                });
            }
            Ok(result) => result?,
        };
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
                    peer,
                    end_entity: None,
                });
            }
        };

        let tls_started = Instant::now();
        let handshake = WatchedHandshake::new(self.tls.connect(server_name, tcp));
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
        let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);

        let protocol = match stream.get_ref().1.alpn_protocol() {
            Some(ALPN_H2) => Protocol::Http2,
            // No ALPN at all means the server predates it: HTTP/1.1.
            Some(ALPN_HTTP1) | None => Protocol::Http1,
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
        let client_certificate_required = Arc::new(AtomicBool::new(false));
        Ok(Dialed {
            stream: Transport::Tls(Box::new(TlsTransport::new(
                stream,
                Arc::clone(&client_certificate_required),
            ))),
            client_certificate_required,
            protocol,
            tcp_time,
            tls_time,
            resumed: Some(resumed),
            peer,
            end_entity,
        })
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
