//! Dialing: TCP through hyper-util's `HttpConnector`, then TLS through rustls with ALPN, or,
//! for a cleartext `http://` origin the configuration allows, no TLS and the configured protocol.
//!
//! The two phases run under separate deadlines so a slow TCP connect and a server that accepts
//! TCP but never answers TLS are told apart ([`TimeoutKind::Connect`] vs
//! [`TimeoutKind::TlsHandshake`]), and each failure is classified into its own [`Error`]
//! variant. Certificates are always verified; there is no switch to turn that off.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::resolver::{MarkedResolver, is_resolve_error};
use pki_types::pem::PemObject;
use pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tower_service::Service;
use tracing::{debug, instrument};

use crate::config::{Cleartext, PoolConfig};
use crate::error::{Error, TimeoutKind, shared};
use crate::origin::{Origin, Scheme};
use crate::protocol::Protocol;
use crate::transport::Transport;

const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A stream ready for HTTP, with the protocol to speak and how long the phases took.
pub(crate) struct Dialed {
    pub(crate) stream: Transport,
    /// What ALPN chose, or what the cleartext mode says.
    pub(crate) protocol: Protocol,
    /// TCP connect, DNS included.
    pub(crate) tcp_time: Duration,
    /// TLS handshake; zero for cleartext.
    pub(crate) tls_time: Duration,
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
    http: HttpConnector<MarkedResolver>,
    tls: TlsConnector,
    connect_timeout: Duration,
    tls_handshake_timeout: Duration,
    h2_only: bool,
    cleartext: Cleartext,
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
    /// Builds the connector; fails on CA material that does not parse.
    pub(crate) fn new(config: &PoolConfig) -> Result<Connector, Error> {
        let mut http = HttpConnector::new_with_resolver(MarkedResolver::system());
        http.set_nodelay(config.tcp_nodelay);
        http.set_keepalive(config.tcp_keepalive);
        // The deadline is ours (below), so a timeout is reported as TimeoutKind::Connect.
        http.set_connect_timeout(None);

        let roots = root_store(config)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_config("tls", e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Offer http/1.1 too even when h2_only is set, so a server without h2 completes the
        // handshake and the caller gets a clear Error::Protocol rather than a TLS alert.
        tls.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];

        Ok(Connector {
            http,
            tls: TlsConnector::from(Arc::new(tls)),
            connect_timeout: config.connect_timeout,
            tls_handshake_timeout: config.tls_handshake_timeout,
            h2_only: config.h2_only,
            cleartext: config.cleartext,
        })
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
        // HttpConnector only dials; the `http` scheme here just satisfies its URI check.
        let target: Uri = format!("http://{}", origin.authority())
            .parse()
            .map_err(|_| Error::InvalidUrl {
                input: origin.to_string(),
                reason: "host cannot be dialed",
            })?;

        let started = Instant::now();
        let mut http = self.http.clone();
        let tcp = match tokio::time::timeout(self.connect_timeout, http.call(target)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    origin: origin.clone(),
                    kind: TimeoutKind::Connect,
                    after: self.connect_timeout,
                });
            }
            Ok(Err(e)) => return Err(classify_connect_error(origin, e)),
            Ok(Ok(io)) => io.into_inner(),
        };
        let tcp_time = started.elapsed();
        let server_name = match security {
            Security::Tls(name) => name,
            Security::Plain(protocol) => {
                debug!(%protocol, ?tcp_time, "dialed cleartext");
                return Ok(Dialed {
                    stream: Transport::Plain(tcp),
                    protocol,
                    tcp_time,
                    tls_time: Duration::ZERO,
                });
            }
        };

        let tls_started = Instant::now();
        let handshake = self.tls.connect(server_name, tcp);
        let stream = match tokio::time::timeout(self.tls_handshake_timeout, handshake).await {
            Err(_) => {
                return Err(Error::Timeout {
                    origin: origin.clone(),
                    kind: TimeoutKind::TlsHandshake,
                    after: self.tls_handshake_timeout,
                });
            }
            Ok(Err(e)) => return Err(classify_tls_error(origin, e)),
            Ok(Ok(stream)) => stream,
        };
        let tls_time = tls_started.elapsed();

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
        debug!(%protocol, ?tcp_time, ?tls_time, "dialed");
        Ok(Dialed {
            stream: Transport::Tls(Box::new(stream)),
            protocol,
            tcp_time,
            tls_time,
        })
    }
}

fn root_store(config: &PoolConfig) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    if config.tls_webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    #[cfg(feature = "native-roots")]
    if config.tls_native_roots {
        // Unreadable individual certificates are skipped, as the OS store often holds some.
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(Error::invalid_config(
                "tls_native_roots",
                "no usable certificate in the operating system's store",
            ));
        }
    }
    for pem in &config.tls_extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::invalid_config("tls_extra_ca_pem", format!("unreadable PEM: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                Error::invalid_config("tls_extra_ca_pem", format!("unusable CA certificate: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::invalid_config(
                "tls_extra_ca_pem",
                "no CERTIFICATE block in the PEM",
            ));
        }
    }
    Ok(roots)
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

/// `error` is hyper-util's `ConnectError` (not exported, hence generic).
fn classify_connect_error<E>(origin: &Origin, error: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    if is_resolve_error(&error) {
        return Error::Dns {
            origin: origin.clone(),
            source: shared(error),
        };
    }
    let refused = io_kind(&error) == Some(io::ErrorKind::ConnectionRefused);
    if refused {
        Error::ConnectionRefused {
            origin: origin.clone(),
            source: shared(error),
        }
    } else {
        Error::Connect {
            origin: origin.clone(),
            source: shared(error),
        }
    }
}

fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cause = e.source();
    }
    None
}

fn classify_tls_error(origin: &Origin, error: io::Error) -> Error {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            Error::UntrustedCertificate {
                origin: origin.clone(),
                source: shared(error),
            }
        }
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Error::CertificateNameMismatch {
            origin: origin.clone(),
            source: shared(error),
        },
        // The first record's type byte is not a TLS one: "HTTP/1.1 400" starts with 'H'.
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            Error::NotTls {
                origin: origin.clone(),
                source: shared(error),
            }
        }
        _ => Error::Tls {
            origin: origin.clone(),
            source: shared(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hyper_util::client::legacy::connect::dns::Name;

    use super::*;

    /// A failed lookup reaches the caller as `Error::Dns`, recognised by the resolver's error
    /// type anywhere in the cause chain, whatever hyper-util's message says.
    #[tokio::test]
    async fn a_failed_lookup_is_a_dns_error() {
        let failing = tower::service_fn(|_: Name| async {
            Err::<std::vec::IntoIter<SocketAddr>, _>(io::Error::other("no such host"))
        });
        let mut http = HttpConnector::new_with_resolver(MarkedResolver(failing));
        let target: Uri = "http://nowhere.test:1".parse().expect("uri");
        let error = http.call(target).await.expect_err("the lookup fails");
        let origin: Origin = "https://nowhere.test:1".parse().expect("origin");
        match classify_connect_error(&origin, error) {
            Error::Dns { origin: o, .. } => assert_eq!(o, origin),
            other => panic!("expected Error::Dns, got {other:?}"),
        }
    }

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
