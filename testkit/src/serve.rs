//! Serving one connection: TLS, ALPN, HTTP/2 or HTTP/1.1, and the request handler.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
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
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::{Alpn, TestServerConfig};
use crate::counters::ServerCounters;
use crate::early_data::EarlyDataTls;
use crate::listener::{listener_on, next_connection};
use crate::settings_injector::{Injections, SettingsInjector};

#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) registry: Registry,
    pub(crate) acceptor: TlsAcceptor,
    /// The acceptor's configuration, for [`EarlyDataTls`] (with `early_data`).
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) config: Arc<TestServerConfig>,
    pub(crate) counters: Arc<ServerCounters>,
    pub(crate) request_ids: Arc<AtomicU64>,
}

/// Per-connection state shared by its requests.
#[derive(Default)]
pub(crate) struct ConnState {
    pub(crate) id: u64,
    pub(crate) requests: AtomicU64,
    pub(crate) active: AtomicUsize,
    pub(crate) goaway: Notify,
    /// Drops the connection without GOAWAY or close_notify: an abrupt TCP close.
    pub(crate) kill: Notify,
    /// When the last request finished (for the HTTP/1.1 idle close).
    pub(crate) last_done: std::sync::Mutex<Option<std::time::Instant>>,
    /// SETTINGS frames to send mid-connection (with `settings_injection`).
    pub(crate) injections: Arc<Injections>,
    /// The TLS server name (SNI) the client asked for.
    pub(crate) sni: std::sync::OnceLock<String>,
}

/// Live connections, so a test can kill some.
pub(crate) type Registry = Arc<std::sync::Mutex<Vec<std::sync::Weak<ConnState>>>>;

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Runs a copy of the server on `addr` in its own thread and runtime.
    pub(crate) fn spawn(
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
            let Some(tcp) = next_connection(&listener, &mut stopped).await else {
                return;
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
            let tls = if self.config.early_data {
                Tls::EarlyData(Arc::clone(&self.tls))
            } else {
                Tls::Acceptor(self.acceptor.clone())
            };
            let config = Arc::clone(&self.config);
            let counters = Arc::clone(&self.counters);
            let request_ids = Arc::clone(&self.request_ids);
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stopped.changed() => {}
                    _ = serve_connection(tcp, tls, config, counters, request_ids, conn) => {}
                }
            });
        }
    }
}

/// How a connection's TLS is terminated.
enum Tls {
    /// tokio-rustls: the handshake completes before HTTP starts.
    Acceptor(TlsAcceptor),
    /// Early data is served as it arrives (with `early_data`).
    EarlyData(Arc<rustls::ServerConfig>),
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    tls: Tls,
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
    let acceptor = match tls {
        Tls::Acceptor(acceptor) => acceptor,
        Tls::EarlyData(tls_config) => {
            let Ok(tls) = EarlyDataTls::accept(tcp, tls_config, Arc::clone(&counters)).await else {
                return;
            };
            if let Some(name) = tls.connection().server_name() {
                let _ = conn.sni.set(name.to_owned());
            }
            let h2 = tls.connection().alpn_protocol() == Some(b"h2");
            serve_http(tls, h2, config, counters, request_ids, conn).await;
            return;
        }
    };
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.tls_failures.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    if tls.get_ref().1.peer_certificates().is_some() {
        counters.client_certificates.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(name) = tls.get_ref().1.server_name() {
        let _ = conn.sni.set(name.to_owned());
    }
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
        if let Some(window) = config.receive_window {
            builder
                .initial_stream_window_size(window)
                .initial_connection_window_size(window);
        }
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
    if config.misdirect_other_hosts
        && let Some(sni) = conn.sni.get()
        && req
            .uri()
            .host()
            .is_some_and(|host| !host.eq_ignore_ascii_case(sni))
    {
        counters.misdirected.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
        return Ok(response);
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
    let body_bytes = req
        .headers()
        .get("x-body-bytes")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(config.body_bytes, |n| n.min(crate::MAX_BODY_OVERRIDE));
    let status_override = req
        .headers()
        .get("x-status")
        .and_then(|v| StatusCode::from_bytes(v.as_bytes()).ok());
    // Read the request body so POSTs complete; its size is echoed back.
    let received = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let close = headers_close;
    // `x-status: NNN` answers with that status (tests of how clients count error statuses).
    let status = status_override.unwrap_or(StatusCode::OK);
    let mut response = Response::builder().status(status);
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
        .body(Full::new(response_body(body_bytes)));
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// `n` bytes of `x`, sliced from one buffer that every response of the process shares: a
/// server holding many large responses that a client has not read yet then holds them once,
/// not once each, so a client's own memory can be measured in the same process.
fn response_body(n: usize) -> Bytes {
    static SHARED: std::sync::Mutex<Bytes> = std::sync::Mutex::new(Bytes::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if shared.len() < n {
        *shared = Bytes::from(vec![b'x'; n]);
    }
    shared.slice(..n)
}
