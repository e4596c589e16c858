//! [`TestServer`](crate::TestServer): the server's thread, runtime and listener, and its controls.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::certs::TestCertificates;
use crate::config::{Alpn, TestServerConfig};
use crate::counters::ServerCounters;
use crate::serve::{ConnState, Registry, Server};

/// A running HTTPS test server on `127.0.0.1`. Dropping it stops the server; if the server
/// thread panicked, the drop re-raises the panic so the test fails.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    scheme: &'static str,
    settings_injection: bool,
    ca_pem: String,
    counters: Arc<ServerCounters>,
    registry: Registry,
    server: Server,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with `config` on its [`bind`](TestServerConfig::bind) address
    /// (an ephemeral `127.0.0.1` port by default).
    ///
    /// # Errors
    ///
    /// The bind address is not loopback, or binding or certificate generation failed.
    pub fn start(config: TestServerConfig) -> io::Result<TestServer> {
        if !config.bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("test servers listen on loopback only, not {}", config.bind),
            ));
        }
        if config.early_data && config.client_auth_ca_pem.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "early_data and client_auth_ca_pem together: rustls answers early data only \
                 to a client it need not authenticate first",
            ));
        }
        let certs = TestCertificates::generate(&config.cert_names).map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if config.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(io::Error::other)?;
        let builder = match &config.client_auth_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca_pem) => builder.with_client_cert_verifier(client_verifier(ca_pem, provider)?),
        };
        let mut tls = builder
            .with_single_cert(
                certs.chain.clone(),
                PrivateKeyDer::Pkcs8(certs.key.clone_key()),
            )
            .map_err(io::Error::other)?;
        tls.alpn_protocols = match config.alpn {
            Alpn::H2 => vec![b"h2".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        if config.early_data {
            tls.max_early_data_size = crate::early_data::MAX_EARLY_DATA;
            tls.send_half_rtt_data = true;
        }
        let tls = Arc::new(tls);

        let counters = Arc::new(ServerCounters::default());
        let registry: Registry = Arc::default();
        let scheme = if config.cleartext { "http" } else { "https" };
        let settings_injection = config.settings_injection;
        let server = Server {
            registry: Arc::clone(&registry),
            acceptor: TlsAcceptor::from(Arc::clone(&tls)),
            tls,
            config: Arc::new(config),
            counters: Arc::clone(&counters),
            request_ids: Arc::new(AtomicU64::new(0)),
        };
        let bind = server.config.bind;
        let (stop, thread, addr) = server.spawn(bind)?;
        Ok(TestServer {
            addr,
            scheme,
            settings_injection,
            ca_pem: certs.ca_pem,
            counters,
            registry,
            server,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the server and starts it again on the same port with the same certificate, as a
    /// deploy or crash-restart does: every connection is cut without GOAWAY (the process
    /// went away), and for a moment connections are refused. Counters carry on.
    ///
    /// # Errors
    ///
    /// The port could not be bound again.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the server's thread, as dropping the server does.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop_thread();
        let (stop, thread, _) = self.server.spawn(self.addr)?;
        self.stop = stop;
        self.thread = Some(thread);
        Ok(())
    }

    fn stop_thread(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }

    /// Sends `SETTINGS_MAX_CONCURRENT_STREAMS = max_streams` on every live HTTP/2 connection,
    /// as a server lowering (or raising) its limit mid-connection does. Needs
    /// [`TestServerConfig::settings_injection`](crate::TestServerConfig::settings_injection). Returns how many connections it was queued
    /// on; see [`settings_acked`](Self::settings_acked) for when clients have applied it.
    pub fn send_max_concurrent_streams(&self, max_streams: u32) -> usize {
        if !self.settings_injection {
            return 0;
        }
        let live = self.live_connections();
        for conn in &live {
            conn.injections.send_max_concurrent_streams(max_streams);
        }
        live.len()
    }

    /// Injected SETTINGS frames clients have acknowledged (RFC 9113 §6.5.3: a client
    /// acknowledges once it has applied them), over live connections.
    pub fn settings_acked(&self) -> u64 {
        self.live_connections()
            .iter()
            .map(|c| c.injections.acked())
            .sum()
    }

    fn live_connections(&self) -> Vec<Arc<ConnState>> {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.retain(|w| w.strong_count() > 0);
        registry
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect()
    }

    /// Abruptly closes up to `n` live connections, picked pseudo-randomly: no GOAWAY, no TLS
    /// close_notify, in-flight requests are cut. Returns how many were killed.
    pub fn kill_connections(&self, n: usize) -> usize {
        let mut live = self.live_connections();
        let mut seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as usize)
            .unwrap_or(7)
            | 1;
        let mut killed = 0;
        while killed < n && !live.is_empty() {
            // xorshift: good enough to spread kills over connections.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let victim = live.swap_remove(seed % live.len());
            victim.kill.notify_one();
            killed += 1;
        }
        self.counters
            .connections_killed
            .fetch_add(killed as u64, Ordering::SeqCst);
        killed
    }

    /// Starts a graceful shutdown (hyper's: GOAWAY, then the requests in flight finish) on
    /// every live connection, as a deploy or a restart does. Returns how many.
    pub fn goaway_connections(&self) -> usize {
        let live = self.live_connections();
        for conn in &live {
            conn.goaway.notify_one();
        }
        live.len()
    }

    /// The server's base URL, `https://127.0.0.1:PORT` (`http://` when cleartext).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// A URL on this server with `path` (which should start with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What the server has seen.
    pub fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    /// A shared handle to the counters, for use after the server is moved.
    pub fn counters_arc(&self) -> Arc<ServerCounters> {
        Arc::clone(&self.counters)
    }
}

/// A verifier that requires a client certificate signed by the CA in `ca_pem`.
fn client_verifier(
    ca_pem: &str,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> io::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    use pki_types::CertificateDer;
    use pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(io::Error::other)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
