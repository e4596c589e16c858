//! A server that breaks the rules on purpose: [`HostileServer`](crate::HostileServer) and the
//! behaviours it can show, [`Hostile`](crate::Hostile).
//!
//! Each behaviour models one way a real server (or a man in the middle) can hold a client
//! forever or make it buffer without bound: a response that never comes, a body that
//! trickles, a window that never opens, a header block that never ends, a flood of control
//! frames. A client that bounds every phase of a request passes against all of them; the
//! counters ([`HostileServer::open_streams`], [`HostileServer::resets_received`], …) show
//! that it also cleaned up (reset what it abandoned, closed what it gave up on).
//!
//! The HTTP/2 behaviours speak through a small hand-written frame codec (`frame.rs`): no
//! library would write these frames. Every behaviour bounds what it sends, and everything
//! stops when the handle is dropped.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod frame;
mod h2;
mod http1;
mod streams;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::certs::TestCertificates;
use crate::listener::{loopback_listener, next_connection};
use streams::{Counters, LiveConnection};

/// No connection lives longer than this, whatever its behaviour: a backstop for a handle
/// kept alive by mistake. Tests of timeouts take seconds, far below it.
const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// A TLS handshake that takes longer is abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`HostileServer`] misbehaves. Every HTTP/2 behaviour answers the client's SETTINGS
/// with an ACK, its PINGs with PING ACKs, and credits received DATA back with WINDOW_UPDATEs,
/// unless its description says otherwise. The server's own SETTINGS carry
/// `SETTINGS_MAX_CONCURRENT_STREAMS = 250` unless said otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hostile {
    /// H9, a response that never comes: streams are accepted and never answered. Each stays
    /// open until the client resets it.
    SilentStreams,
    /// H11, a body that never ends: a `200` head, then a 1-byte DATA frame every `interval`
    /// (within the client's flow-control windows), never END_STREAM.
    TrickleBody {
        /// Time between two body bytes (at least 1 ms).
        interval: Duration,
    },
    /// H12, an upload that cannot progress: `SETTINGS_INITIAL_WINDOW_SIZE = 0`, no
    /// WINDOW_UPDATE ever (stream or connection), and no answer.
    ZeroWindow,
    /// H13, an answer before the upload is done: `SETTINGS_INITIAL_WINDOW_SIZE = 0`, no
    /// WINDOW_UPDATE ever, and each request is answered at once with `200` and END_STREAM on
    /// the HEADERS. The stream stays open until the client sends END_STREAM or RST_STREAM.
    EarlyResponseZeroWindow,
    /// H14, a server with no room: `SETTINGS_MAX_CONCURRENT_STREAMS = 0`. A stream opened
    /// anyway is refused with RST_STREAM(REFUSED_STREAM).
    ZeroStreams,
    /// H15, a server going away: SETTINGS, then GOAWAY(last stream 0, NO_ERROR) at once;
    /// the socket closes about 100 ms later. No request is answered.
    GoAwayAtOnce,
    /// H2, a dead port behind a live listener: TCP is accepted and closed at once, before
    /// TLS. The handshake fails.
    CloseAtOnce,
    /// A header block that never ends (CVE-2024-27316's family): each request gets a
    /// HEADERS without END_HEADERS, then 1 KiB CONTINUATION frames, each one literal
    /// field, never END_HEADERS, until 64 MiB are sent or the client goes away; then the
    /// connection closes. While flooding the server reads nothing (nothing else may be sent
    /// inside a header block, so nothing is answered). Only the first request on a
    /// connection is flooded.
    ContinuationFlood,
    /// An oversized response head: `200` and about 1 MiB of 1000-byte literal fields, in a
    /// HEADERS and CONTINUATION frames within the client's frame size, END_HEADERS on the
    /// last and END_STREAM on the HEADERS.
    HugeHeaders,
    /// An HPACK compression error: the response's header block starts with a dynamic table
    /// size update above the client's `SETTINGS_HEADER_TABLE_SIZE` (1 MiB, or one more than
    /// the client allows if that is more), then `:status 200`, END_STREAM.
    HpackTableUpdate,
    /// A flow-control error: WINDOW_UPDATE on the connection by 2^31-1, twice, right after
    /// the server's SETTINGS, overflowing the client's send window. No request is answered.
    WindowUpdateOverflow,
    /// A push the client refused: a PUSH_PROMISE (`GET https://localhost/pushed`) on each
    /// request stream, although clients that send `SETTINGS_ENABLE_PUSH = 0` forbid it,
    /// then the answer of [`Normal`](Hostile::Normal).
    PushPromise,
    /// A SETTINGS flood (CVE-2019-9515): once the client's SETTINGS arrive, empty SETTINGS
    /// frames as fast as the socket takes them, never reading the client's ACKs (nor
    /// anything else) while flooding; 100 000 frames at most. Then the server reads again
    /// (ignoring the backlog of ACKs) and answers PINGs but no request, as
    /// [`SilentStreams`](Hostile::SilentStreams), so the client's resets and close are seen.
    SettingsFlood,
    /// A PING flood (CVE-2019-9512): as [`SettingsFlood`](Hostile::SettingsFlood), with PING
    /// frames.
    PingFlood,
    /// A body nobody reads: `200` with `content-length: bytes`, then `bytes` bytes as fast as
    /// the client's windows (initial window and WINDOW_UPDATEs, stream and connection) allow,
    /// END_STREAM on the last DATA frame. Shows that what a caller leaves unread stays bounded
    /// by the client's windows.
    UnreadBody {
        /// Body length in bytes.
        bytes: usize,
    },
    /// H16a, an HTTP/1.1 head that never ends (ALPN `http/1.1`): after the request head,
    /// `HTTP/1.1 200 OK\r\n` one byte every `interval`, then a header line `x-trickle: aaa…`
    /// that never ends (64 KiB at most, then silence), never finishing the head.
    Http1TrickleStatusLine {
        /// Time between two bytes (at least 1 ms).
        interval: Duration,
    },
    /// A well-behaved answer, the control case: `200`, `content-length: 2`, body `ok`,
    /// END_STREAM.
    Normal,
}

impl Hostile {
    /// The one protocol offered by ALPN.
    fn alpn(&self) -> &'static [u8] {
        match self {
            Hostile::Http1TrickleStatusLine { .. } => b"http/1.1",
            _ => b"h2",
        }
    }
}

/// A server on `127.0.0.1` showing one [`Hostile`] behaviour on every connection. It runs on
/// its own thread and runtime; dropping it stops everything (connections are cut, the
/// runtime is shut down, the thread joined). If the server's thread panicked, the drop
/// re-raises the panic so the test fails.
///
/// Counters are not a consistent cut: each is read on its own. Poll them until they settle.
#[derive(Debug)]
pub struct HostileServer {
    addr: SocketAddr,
    ca_pem: String,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

// ===== impl HostileServer =====

impl HostileServer {
    /// Starts a server showing `behaviour` on an ephemeral `127.0.0.1` port, with TLS: a
    /// certificate for `localhost` and `127.0.0.1` from a fresh [`TestCertificates`] CA,
    /// ALPN `h2` (or `http/1.1` for the HTTP/1.1 behaviours).
    ///
    /// # Errors
    ///
    /// Binding, certificate generation or the TLS configuration failed.
    pub fn start(behaviour: Hostile) -> io::Result<HostileServer> {
        let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certs = TestCertificates::generate(&names).map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs.chain, PrivateKeyDer::Pkcs8(certs.key))
            .map_err(io::Error::other)?;
        tls.alpn_protocols = vec![behaviour.alpn().to_vec()];

        let counters = Arc::new(Counters::default());
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("testkit-hostile")
            .enable_all()
            .build()?;
        let (listener, addr) = loopback_listener(&runtime)?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("testkit-hostile-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(accept(listener, acceptor, behaviour, counters, stopped));
                    // Dropping the tasks cuts their connections; their guards settle the
                    // counters.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?
        };
        Ok(HostileServer {
            addr,
            ca_pem: certs.ca_pem,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:PORT/`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }

    /// The PEM of the CA that signed the server's certificate: the root a client must
    /// trust. As [`TestServer::ca_pem`](crate::TestServer::ca_pem).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// TCP connections accepted.
    pub fn connections_accepted(&self) -> u64 {
        Counters::get(&self.counters.connections_accepted)
    }

    /// Streams clients opened: HTTP/2 HEADERS frames that opened a stream; HTTP/1.1
    /// requests whose request line was read.
    pub fn streams_opened(&self) -> u64 {
        Counters::get(&self.counters.streams_opened)
    }

    /// Streams open now, over live connections. A stream is open from the client's HEADERS
    /// until it is closed in both directions: the client's side by its END_STREAM or
    /// RST_STREAM, the server's by its END_STREAM or RST_STREAM; a closed connection closes
    /// all its streams. A stream the server never answers is open until the client resets
    /// it. (HTTP/1.1: a request is open until its connection closes.)
    pub fn open_streams(&self) -> u64 {
        Counters::get(&self.counters.open_streams)
    }

    /// The most streams open at once on any one connection.
    pub fn max_open_streams(&self) -> u64 {
        Counters::get(&self.counters.max_open_streams)
    }

    /// RST_STREAM frames received from clients.
    pub fn resets_received(&self) -> u64 {
        Counters::get(&self.counters.resets_received)
    }

    /// Connections whose socket is still open.
    pub fn live_connections(&self) -> u64 {
        Counters::get(&self.counters.live_connections)
    }
}

impl Drop for HostileServer {
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

/// Accepts connections until stopped, one task each.
async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    behaviour: Hostile,
    counters: Arc<Counters>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let Some(tcp) = next_connection(&listener, &mut stopped).await else {
            return;
        };
        counters.connections_accepted.fetch_add(1, Ordering::SeqCst);
        if behaviour == Hostile::CloseAtOnce {
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let live = LiveConnection::new(Arc::clone(&counters));
        let acceptor = acceptor.clone();
        let behaviour = behaviour.clone();
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            let serve = serve(tcp, acceptor, behaviour, counters);
            let _ = tokio::time::timeout(MAX_CONNECTION_LIFETIME, serve).await;
            // The socket is closed by now (dropped with `serve`).
            drop(live);
        });
    }
}

/// One connection: TLS, then the behaviour.
async fn serve(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    behaviour: Hostile,
    counters: Arc<Counters>,
) {
    let Ok(Ok(tls)) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
    else {
        return;
    };
    match behaviour {
        Hostile::Http1TrickleStatusLine { interval } => {
            http1::serve_trickle(tls, interval, counters).await;
        }
        _ => h2::serve(tls, behaviour, counters).await,
    }
}
