//! Real HTTPS peers on loopback for tests, benchmarks and the harness (feature `testkit`).
//!
//! [`TestServer`] is a hyper server over rustls with a per-run certificate authority from
//! rcgen. It speaks HTTP/2 and/or HTTP/1.1 by ALPN, enforces a configurable
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, delays and sizes responses, can send GOAWAY after N
//! requests per connection, and counts what it sees (connections accepted, requests, the most
//! concurrent streams on any one connection). It runs on its own thread and runtime, binds
//! `127.0.0.1:0`, and shuts down when dropped.
//!
//! [`SilentListener`] accepts TCP and never answers: a TLS handshake against it times out.
//!
//! Nothing here imports the pool: it is a peer, as a third-party server would be.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;

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

/// How a [`TestServer`] behaves.
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
    /// Size of each response body. Default: 16 bytes.
    pub body_bytes: usize,
    /// Send GOAWAY (graceful) after this many requests on a connection. Default: never.
    pub goaway_after: Option<u64>,
    /// DNS names and IP addresses in the server certificate. Default: `localhost`,
    /// `127.0.0.1`, `::1`.
    pub cert_names: Vec<String>,
}

impl Default for TestServerConfig {
    fn default() -> Self {
        TestServerConfig {
            alpn: Alpn::H2,
            max_concurrent_streams: 250,
            response_delay: Duration::ZERO,
            body_bytes: 16,
            goaway_after: None,
            cert_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

impl TestServerConfig {
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

    /// Sets [`goaway_after`](Self::goaway_after).
    #[must_use]
    pub fn goaway_after(mut self, requests: u64) -> Self {
        self.goaway_after = Some(requests);
        self
    }

    /// Sets [`cert_names`](Self::cert_names).
    #[must_use]
    pub fn cert_names(mut self, names: Vec<String>) -> Self {
        self.cert_names = names;
        self
    }
}

/// What a [`TestServer`] has seen. All counters only grow, except `connections_open` and
/// `streams_active`.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections currently open (TLS done, not yet closed).
    pub connections_open: AtomicUsize,
    /// TLS handshakes that failed.
    pub tls_failures: AtomicU64,
    /// Connections that negotiated HTTP/2.
    pub connections_h2: AtomicU64,
    /// Connections that negotiated HTTP/1.1.
    pub connections_http1: AtomicU64,
    /// Requests that reached the handler.
    pub requests: AtomicU64,
    /// Requests in the handler right now.
    pub streams_active: AtomicUsize,
    /// The most requests ever in the handler at once on a single connection.
    pub max_concurrent_streams_per_connection: AtomicUsize,
    /// GOAWAY frames the server started.
    pub goaways_sent: AtomicU64,
}

impl ServerCounters {
    /// `connections_accepted`, loaded.
    pub fn accepted(&self) -> u64 {
        self.connections_accepted.load(Ordering::SeqCst)
    }

    /// `requests`, loaded.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// `max_concurrent_streams_per_connection`, loaded.
    pub fn max_concurrent_per_connection(&self) -> usize {
        self.max_concurrent_streams_per_connection
            .load(Ordering::SeqCst)
    }

    /// `connections_open`, loaded.
    pub fn open(&self) -> usize {
        self.connections_open.load(Ordering::SeqCst)
    }
}

/// A certificate authority made for one run, and a server certificate it signed.
#[derive(Debug)]
pub struct TestCertificates {
    /// The CA certificate, PEM: give it to the client as its trusted root.
    pub ca_pem: String,
    /// The server's chain (leaf, then CA), DER.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key, PKCS#8 DER.
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl TestCertificates {
    /// Generates a CA and a leaf certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    ///
    /// rcgen's error if a name is unusable.
    pub fn generate(names: &[String]) -> Result<TestCertificates, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        // A distinct name per CA: verifiers find issuers by name, so two test CAs sharing
        // one would look like a bad signature instead of an unknown issuer.
        static CA_SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = CA_SERIAL.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("https-pool test CA {}-{serial}-{nanos}", std::process::id()),
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(names.to_vec())?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "https-pool test server");
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
        Ok(TestCertificates {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        })
    }
}

/// A running HTTPS test server on `127.0.0.1`. Dropping it stops the server; if the server
/// thread panicked, the drop re-raises the panic so the test fails.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    ca_pem: String,
    counters: Arc<ServerCounters>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with `config` on an ephemeral loopback port.
    ///
    /// # Errors
    ///
    /// Binding or certificate generation failed.
    pub fn start(config: TestServerConfig) -> io::Result<TestServer> {
        let certs = TestCertificates::generate(&config.cert_names).map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
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

        let listener = StdTcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(ServerCounters::default());
        let (stop, stopped) = watch::channel(false);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("https-pool-testkit")
            .enable_all()
            .build()?;
        let server = Server {
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            config: Arc::new(config),
            counters: Arc::clone(&counters),
            request_ids: Arc::new(AtomicU64::new(0)),
        };
        let thread = std::thread::Builder::new()
            .name(format!("testkit-server-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => server.run(listener, stopped).await,
                        Err(e) => panic!("testkit: cannot register listener: {e}"),
                    }
                });
                // Dropping the runtime cancels the connection tasks.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(TestServer {
            addr,
            ca_pem: certs.ca_pem,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// The server's base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A URL on this server with `path` (which should start with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
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

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

struct Server {
    acceptor: TlsAcceptor,
    config: Arc<TestServerConfig>,
    counters: Arc<ServerCounters>,
    request_ids: Arc<AtomicU64>,
}

/// Per-connection state shared by its requests.
#[derive(Default)]
struct ConnState {
    id: u64,
    requests: AtomicU64,
    active: AtomicUsize,
    goaway: Notify,
}

impl Server {
    async fn run(self, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let mut next_id = 0u64;
        loop {
            let accepted = tokio::select! {
                _ = stopped.changed() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((tcp, _peer)) = accepted else {
                // Out of fds or similar: back off briefly rather than spin.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            next_id += 1;
            self.counters
                .connections_accepted
                .fetch_add(1, Ordering::SeqCst);
            let conn = Arc::new(ConnState {
                id: next_id,
                ..ConnState::default()
            });
            let acceptor = self.acceptor.clone();
            let config = Arc::clone(&self.config);
            let counters = Arc::clone(&self.counters);
            let request_ids = Arc::clone(&self.request_ids);
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stopped.changed() => {}
                    _ = serve_connection(tcp, acceptor, config, counters, request_ids, conn) => {}
                }
            });
        }
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    config: Arc<TestServerConfig>,
    counters: Arc<ServerCounters>,
    request_ids: Arc<AtomicU64>,
    conn: Arc<ConnState>,
) {
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.tls_failures.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    counters.connections_open.fetch_add(1, Ordering::SeqCst);
    let _open = OpenGuard(Arc::clone(&counters));
    let service = {
        let config = Arc::clone(&config);
        let counters = Arc::clone(&counters);
        let conn = Arc::clone(&conn);
        service_fn(move |req| {
            handle_request(
                req,
                Arc::clone(&config),
                Arc::clone(&counters),
                Arc::clone(&request_ids),
                Arc::clone(&conn),
            )
        })
    };
    let io = TokioIo::new(tls);
    if h2 {
        counters.connections_h2.fetch_add(1, Ordering::SeqCst);
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.max_concurrent_streams(config.max_concurrent_streams);
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = conn.goaway.notified() => {}
        }
        counters.goaways_sent.fetch_add(1, Ordering::SeqCst);
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    } else {
        counters.connections_http1.fetch_add(1, Ordering::SeqCst);
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = conn.goaway.notified() => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

struct OpenGuard(Arc<ServerCounters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::SeqCst);
    }
}

struct ActiveGuard<'a> {
    conn: &'a ConnState,
    counters: &'a ServerCounters,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.conn.active.fetch_sub(1, Ordering::SeqCst);
        self.counters.streams_active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle_request(
    req: Request<Incoming>,
    config: Arc<TestServerConfig>,
    counters: Arc<ServerCounters>,
    request_ids: Arc<AtomicU64>,
    conn: Arc<ConnState>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = request_ids.fetch_add(1, Ordering::SeqCst) + 1;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    counters.streams_active.fetch_add(1, Ordering::SeqCst);
    let concurrent = conn.active.fetch_add(1, Ordering::SeqCst) + 1;
    counters
        .max_concurrent_streams_per_connection
        .fetch_max(concurrent, Ordering::SeqCst);
    let _active = ActiveGuard {
        conn: &conn,
        counters: &counters,
    };
    let served_on_conn = conn.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if config.goaway_after.is_some_and(|n| served_on_conn >= n) {
        conn.goaway.notify_one();
    }

    let delay = req
        .headers()
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(config.response_delay);
    // Read the request body so POSTs complete; its size is echoed back.
    let received = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("x-request-id", request_id)
        .header("x-connection-id", conn.id)
        .header("x-received-bytes", received)
        .body(Full::new(Bytes::from(vec![b'x'; config.body_bytes])));
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// A TCP listener on `127.0.0.1` that accepts connections and never writes a byte: a TLS
/// handshake against it hangs until the client's deadline.
#[derive(Debug)]
pub struct SilentListener {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentListener {
    /// Starts the listener on an ephemeral port.
    ///
    /// # Errors
    ///
    /// Binding failed.
    pub fn start() -> io::Result<SilentListener> {
        let listener = StdTcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("testkit-silent".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    let mut held = Vec::new();
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => return,
                            accepted = listener.accept() => {
                                if let Ok((tcp, _)) = accepted {
                                    held.push(tcp);
                                }
                            }
                        }
                    }
                });
            })?;
        Ok(SilentListener {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
