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
//! [`RttRelay`] forwards TCP to a target with a fixed delay each way (a stand-in for
//! `tc netem`, which is not available everywhere) and can turn into a black hole.
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

mod settings_injector;

use settings_injector::{Injections, SettingsInjector};

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
    /// Close an HTTP/1.1 connection that has had no request in flight for this long (as
    /// servers' keep-alive timeouts do: a plain TCP close). A request header `x-close: 1`
    /// instead makes that response carry `Connection: close`. Default: never.
    pub h1_idle_close_after: Option<Duration>,
    /// Remember every request path and count repeats in
    /// [`ServerCounters::duplicate_paths`]; give each request a unique path to prove nothing
    /// was processed twice. Default: false.
    pub track_duplicates: bool,
    /// Let [`TestServer::send_max_concurrent_streams`] change
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` on live HTTP/2 connections (a frame-level shim
    /// between hyper and the socket; off by default so measurements see plain hyper).
    /// Default: false.
    pub settings_injection: bool,
    /// Serve without TLS on an `http://` URL: HTTP/2 with prior knowledge ("h2c") for
    /// [`Alpn::H2`] and [`Alpn::Both`], HTTP/1.1 for [`Alpn::Http1`]. Default: false.
    pub cleartext: bool,
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
            track_duplicates: false,
            h1_idle_close_after: None,
            cleartext: false,
            settings_injection: false,
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
    /// Connections cut by [`TestServer::kill_connections`].
    pub connections_killed: AtomicU64,
    /// The most requests any single connection carried.
    pub max_requests_on_one_connection: AtomicU64,
    /// Requests whose path had been seen before (with `track_duplicates`).
    pub duplicate_paths: AtomicU64,
    seen_paths: std::sync::Mutex<std::collections::HashSet<String>>,
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

    /// Distinct request paths seen (with `track_duplicates`).
    pub fn distinct_paths(&self) -> usize {
        self.seen_paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// `duplicate_paths`, loaded.
    pub fn duplicates(&self) -> u64 {
        self.duplicate_paths.load(Ordering::SeqCst)
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

        let counters = Arc::new(ServerCounters::default());
        let registry: Registry = Arc::default();
        let scheme = if config.cleartext { "http" } else { "https" };
        let settings_injection = config.settings_injection;
        let server = Server {
            registry: Arc::clone(&registry),
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            config: Arc::new(config),
            counters: Arc::clone(&counters),
            request_ids: Arc::new(AtomicU64::new(0)),
        };
        let (stop, thread, addr) =
            server.spawn("127.0.0.1:0".parse().map_err(io::Error::other)?)?;
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
    /// [`TestServerConfig::settings_injection`]. Returns how many connections it was queued
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

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Binds `127.0.0.1:0` and registers the listener with `runtime`, so a failure is an error
/// here rather than a panic on the peer's thread.
fn loopback_listener(runtime: &tokio::runtime::Runtime) -> io::Result<(TcpListener, SocketAddr)> {
    listener_on(runtime, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Binds `addr` (std sets `SO_REUSEADDR`, so a restarted server gets its port back while old
/// connections sit in TIME_WAIT) and registers the listener with `runtime`.
fn listener_on(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = StdTcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let _entered = runtime.enter();
    Ok((TcpListener::from_std(listener)?, addr))
}

#[derive(Clone)]
struct Server {
    registry: Registry,
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
    /// Drops the connection without GOAWAY or close_notify: an abrupt TCP close.
    kill: Notify,
    /// When the last request finished (for the HTTP/1.1 idle close).
    last_done: std::sync::Mutex<Option<std::time::Instant>>,
    /// SETTINGS frames to send mid-connection (with `settings_injection`).
    injections: Arc<Injections>,
}

/// Live connections, so a test can kill some.
type Registry = Arc<std::sync::Mutex<Vec<std::sync::Weak<ConnState>>>>;

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Runs a copy of the server on `addr` in its own thread and runtime.
    fn spawn(
        &self,
        addr: SocketAddr,
    ) -> io::Result<(watch::Sender<bool>, JoinHandle<()>, SocketAddr)> {
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("https-pool-testkit")
            .enable_all()
            .build()?;
        let (listener, addr) = listener_on(&runtime, addr)?;
        let server = self.clone();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-server-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(server.run(listener, stopped));
                // Dropping the runtime cancels the connection tasks.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok((stop, thread, addr))
    }

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
            self.registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::downgrade(&conn));
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
    if config.cleartext {
        let h2 = config.alpn != Alpn::Http1;
        serve_http(tcp, h2, config, counters, request_ids, conn).await;
        return;
    }
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.tls_failures.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_http(tls, h2, config, counters, request_ids, conn).await;
}

/// Serves HTTP/2 or HTTP/1.1 on an accepted (and, unless cleartext, TLS-terminated) stream,
/// through a [`SettingsInjector`] when the configuration asks for one.
async fn serve_http<I>(
    io: I,
    h2: bool,
    config: Arc<TestServerConfig>,
    counters: Arc<ServerCounters>,
    request_ids: Arc<AtomicU64>,
    conn: Arc<ConnState>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 && config.settings_injection {
        let io = SettingsInjector::new(io, Arc::clone(&conn.injections));
        serve_protocol(io, h2, config, counters, request_ids, conn).await;
    } else {
        serve_protocol(io, h2, config, counters, request_ids, conn).await;
    }
}

async fn serve_protocol<I>(
    io: I,
    h2: bool,
    config: Arc<TestServerConfig>,
    counters: Arc<ServerCounters>,
    request_ids: Arc<AtomicU64>,
    conn: Arc<ConnState>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
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
    let io = TokioIo::new(io);
    if h2 {
        counters.connections_h2.fetch_add(1, Ordering::SeqCst);
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.max_concurrent_streams(config.max_concurrent_streams);
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = conn.kill.notified() => return,
            _ = conn.goaway.notified() => {}
        }
        counters.goaways_sent.fetch_add(1, Ordering::SeqCst);
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = conn.kill.notified() => {}
        }
    } else {
        counters.connections_http1.fetch_add(1, Ordering::SeqCst);
        if let Some(idle) = config.h1_idle_close_after {
            spawn_idle_closer(Arc::clone(&conn), idle);
        }
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = conn.kill.notified() => return,
            _ = conn.goaway.notified() => {}
        }
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = conn.kill.notified() => {}
        }
    }
}

/// Closes an HTTP/1.1 connection once it has been idle for `idle` (checked every idle / 4).
fn spawn_idle_closer(conn: Arc<ConnState>, idle: Duration) {
    let since_open = std::time::Instant::now();
    let weak = Arc::downgrade(&conn);
    drop(conn);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(idle / 4).await;
            let Some(conn) = weak.upgrade() else { return };
            if conn.active.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let last = conn
                .last_done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or(since_open);
            if last.elapsed() >= idle {
                conn.kill.notify_one();
                return;
            }
        }
    });
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
        *self
            .conn
            .last_done
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
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
    counters
        .max_requests_on_one_connection
        .fetch_max(served_on_conn, Ordering::SeqCst);
    if config.goaway_after.is_some_and(|n| served_on_conn >= n) {
        conn.goaway.notify_one();
    }

    if config.track_duplicates {
        let path = req.uri().path().to_owned();
        let mut seen = counters
            .seen_paths
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !seen.insert(path.clone()) {
            counters.duplicate_paths.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(path, "testkit: request path seen twice");
        }
    }
    let headers_close = req.headers().get("x-close").is_some_and(|v| v == "1");
    // Echoed back, so tests can see what a client sent.
    let priority = req.headers().get("priority").cloned();
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
    let close = headers_close;
    let mut response = Response::builder().status(StatusCode::OK);
    if close {
        response = response.header(http::header::CONNECTION, "close");
    }
    if let Some(priority) = priority {
        response = response.header("x-echo-priority", priority);
    }
    let response = response
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
        let (stop, mut stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (listener, addr) = loopback_listener(&runtime)?;
        let thread = std::thread::Builder::new()
            .name("testkit-silent".into())
            .spawn(move || {
                runtime.block_on(async move {
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

/// A loopback TCP relay that delays each direction by half the configured round-trip time,
/// and can silently stop forwarding (a black hole, as a dead NAT or peer looks).
///
/// Point a client at [`RttRelay::url`]; the relay connects to `target` for each connection.
/// The TLS server name stays `127.0.0.1`, so a [`TestServer`] certificate still verifies.
#[derive(Debug)]
pub struct RttRelay {
    addr: SocketAddr,
    black_hole: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl RttRelay {
    /// Starts a relay to `target` adding `rtt` of round-trip delay (half each way).
    ///
    /// # Errors
    ///
    /// Binding failed.
    pub fn start(target: SocketAddr, rtt: Duration) -> io::Result<RttRelay> {
        let (stop, mut stopped) = watch::channel(false);
        let black_hole = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (listener, addr) = loopback_listener(&runtime)?;
        let one_way = rtt / 2;
        let thread = {
            let black_hole = Arc::clone(&black_hole);
            let accepted = Arc::clone(&accepted);
            std::thread::Builder::new()
                .name(format!("testkit-relay-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(async move {
                        loop {
                            let (client, _) = tokio::select! {
                                _ = stopped.changed() => return,
                                accepted = listener.accept() => match accepted {
                                    Ok(pair) => pair,
                                    Err(_) => continue,
                                },
                            };
                            accepted.fetch_add(1, Ordering::SeqCst);
                            let black_hole = Arc::clone(&black_hole);
                            let mut stopped = stopped.clone();
                            tokio::spawn(async move {
                                tokio::select! {
                                    _ = stopped.changed() => {}
                                    _ = relay(client, target, one_way, black_hole) => {}
                                }
                            });
                        }
                    });
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?
        };
        Ok(RttRelay {
            addr,
            black_hole,
            accepted,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT` of the relay.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections the relay accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// While on, bytes in both directions are read and dropped: connections stay open but
    /// nothing arrives, as with a dead peer behind a NAT.
    pub fn set_black_hole(&self, on: bool) {
        self.black_hole.store(on, Ordering::SeqCst);
    }
}

impl Drop for RttRelay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    target: SocketAddr,
    one_way: Duration,
    black_hole: Arc<std::sync::atomic::AtomicBool>,
) {
    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, one_way, Arc::clone(&black_hole)),
        pump(server_read, client_write, one_way, black_hole),
    );
}

/// Copies one direction, delivering each chunk `delay` after it was read, in order.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    black_hole: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if black_hole.load(Ordering::SeqCst) {
                        continue;
                    }
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::join!(reader, writer);
}
