//! The hostile-server kit against real clients: `h2` over tokio-rustls, and raw frames where
//! a well-behaved client would never go. Every wait is under [`GUARD`]; counters are polled
//! until they settle, never asserted after a sleep.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use https_pool_testkit::{Hostile, HostileServer};
use pki_types::pem::PemObject;
use pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The longest any step may take before the test fails instead of hanging.
const GUARD: Duration = Duration::from_secs(5);
/// How long a response that must not come is waited for.
const NOT_COMING: Duration = Duration::from_millis(300);

/// A TLS connection to `server` trusting only its CA, offering `alpn`.
async fn tls(server: &HostileServer, alpn: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.ca_pem().as_bytes()) {
        roots
            .add(cert.expect("the CA PEM parses"))
            .expect("the CA is usable");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(server.addr()).await?;
    let name = ServerName::try_from("localhost").expect("a valid name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// An `h2` client on a new connection, its connection driven by a task.
async fn h2_client(server: &HostileServer) -> SendRequest<Bytes> {
    let io = timeout(GUARD, tls(server, b"h2"))
        .await
        .expect("TLS within the guard")
        .expect("TLS handshake");
    let (send, conn) = timeout(GUARD, h2::client::handshake(io))
        .await
        .expect("HTTP/2 handshake within the guard")
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// As [`h2_client`], once the server's SETTINGS are applied: a PING's answer comes after
/// them (frames arrive in order), so a stream opened next sees the server's windows.
async fn h2_client_settled(server: &HostileServer) -> SendRequest<Bytes> {
    let io = timeout(GUARD, tls(server, b"h2"))
        .await
        .expect("TLS within the guard")
        .expect("TLS handshake");
    let (send, mut conn) = timeout(GUARD, h2::client::handshake(io))
        .await
        .expect("HTTP/2 handshake within the guard")
        .expect("HTTP/2 handshake");
    let mut pinger = conn.ping_pong().expect("a ping handle");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    timeout(GUARD, pinger.ping(h2::Ping::opaque()))
        .await
        .expect("a PING answer within the guard")
        .expect("a PING answer");
    send
}

fn get(server: &HostileServer) -> http::Request<()> {
    http::Request::get(server.url())
        .body(())
        .expect("a valid request")
}

/// Polls `done` until it holds, failing the test after [`GUARD`].
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let settled = timeout(GUARD, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "{what}: not within {GUARD:?}");
}

/// `Normal` answers 200 "ok"; afterwards no stream is open, and one was opened.
#[tokio::test]
async fn normal_answers_ok_and_leaves_no_stream_open() {
    let server = HostileServer::start(Hostile::Normal).expect("server starts");
    assert_eq!(
        server.url(),
        format!("https://localhost:{}/", server.addr().port())
    );
    let mut send = h2_client(&server).await;
    let (response, _) = send.send_request(get(&server), true).expect("sent");
    let response = timeout(GUARD, response)
        .await
        .expect("a response within the guard")
        .expect("a response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    while let Some(chunk) = timeout(GUARD, body.data())
        .await
        .expect("body within the guard")
    {
        let chunk = chunk.expect("body chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, b"ok");
    eventually("the stream closes", || server.open_streams() == 0).await;
    assert_eq!(server.streams_opened(), 1);
    assert_eq!(server.max_open_streams(), 1);
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.live_connections(), 1);
}

/// `SilentStreams` never answers; a request dropped by the client is reset, and its stream
/// closes.
#[tokio::test]
async fn a_dropped_request_to_silent_streams_is_reset() {
    let server = HostileServer::start(Hostile::SilentStreams).expect("server starts");
    let mut send = h2_client(&server).await;
    let (response, _) = send.send_request(get(&server), true).expect("sent");
    eventually("the server sees the stream", || server.open_streams() == 1).await;
    // The ResponseFuture is dropped here: h2 sends RST_STREAM(CANCEL).
    assert!(
        timeout(NOT_COMING, response).await.is_err(),
        "a silent server sent a response"
    );
    eventually("the reset arrives", || server.resets_received() == 1).await;
    eventually("the stream closes", || server.open_streams() == 0).await;
    assert_eq!(server.streams_opened(), 1);
}

/// `TrickleBody` sends a 200 head, then one byte at a time.
#[tokio::test]
async fn trickle_body_sends_one_byte_at_a_time() {
    let server = HostileServer::start(Hostile::TrickleBody {
        interval: Duration::from_millis(5),
    })
    .expect("server starts");
    let mut send = h2_client(&server).await;
    let (response, _) = send.send_request(get(&server), true).expect("sent");
    let response = timeout(GUARD, response)
        .await
        .expect("a head within the guard")
        .expect("a head");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    for _ in 0..3 {
        let chunk = timeout(GUARD, body.data())
            .await
            .expect("a byte within the guard")
            .expect("the body does not end")
            .expect("a body chunk");
        assert_eq!(chunk.len(), 1);
    }
    assert_eq!(server.open_streams(), 1, "the body never ends");
    drop(body);
    eventually("the reset arrives", || server.resets_received() == 1).await;
    eventually("the stream closes", || server.open_streams() == 0).await;
}

/// `ZeroStreams`: the client learns it may open no stream, so a request is never sent.
#[tokio::test]
async fn zero_streams_leaves_the_client_no_stream() {
    let server = HostileServer::start(Hostile::ZeroStreams).expect("server starts");
    let io = timeout(GUARD, tls(&server, b"h2"))
        .await
        .expect("TLS within the guard")
        .expect("TLS handshake");
    let (mut send, mut conn) = timeout(GUARD, h2::client::handshake(io))
        .await
        .expect("HTTP/2 handshake within the guard")
        .expect("HTTP/2 handshake");
    // Drive the connection until the server's SETTINGS have been applied.
    let applied = timeout(
        GUARD,
        std::future::poll_fn(|cx| {
            if Pin::new(&mut conn).poll(cx).is_ready() {
                return std::task::Poll::Ready(false); // the connection ended
            }
            if conn.max_concurrent_send_streams() == 0 {
                std::task::Poll::Ready(true)
            } else {
                std::task::Poll::Pending
            }
        }),
    )
    .await
    .expect("SETTINGS within the guard");
    assert!(applied, "the connection ended before its SETTINGS");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (response, _) = send.send_request(get(&server), true).expect("queued");
    assert!(
        timeout(NOT_COMING, response).await.is_err(),
        "a stream opened past SETTINGS_MAX_CONCURRENT_STREAMS = 0"
    );
    assert_eq!(server.streams_opened(), 0);
}

/// `ZeroStreams`: a stream opened anyway (raw frames) is refused with REFUSED_STREAM.
#[tokio::test]
async fn zero_streams_refuses_a_stream_opened_anyway() {
    let server = HostileServer::start(Hostile::ZeroStreams).expect("server starts");
    let mut io = timeout(GUARD, tls(&server, b"h2"))
        .await
        .expect("TLS within the guard")
        .expect("TLS handshake");
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    // HEADERS on stream 1, END_STREAM | END_HEADERS: GET https://localhost/ (HPACK static).
    hello.extend_from_slice(&[0, 0, 4, 0x1, 0x5, 0, 0, 0, 1, 0x82, 0x87, 0x84, 0x86]);
    io.write_all(&hello).await.expect("frames written");
    let rst = timeout(GUARD, async {
        loop {
            let mut header = [0u8; 9];
            io.read_exact(&mut header).await?;
            let len =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let mut payload = vec![0u8; len];
            io.read_exact(&mut payload).await?;
            if header[3] == 0x3 {
                return std::io::Result::Ok((header[8], payload));
            }
        }
    })
    .await
    .expect("RST_STREAM within the guard")
    .expect("frames read");
    assert_eq!(rst, (1, vec![0, 0, 0, 7]), "REFUSED_STREAM on stream 1");
    assert_eq!(server.streams_opened(), 1);
    eventually("the refused stream is closed", || {
        server.open_streams() == 0
    })
    .await;
}

/// `CloseAtOnce`: TCP is accepted and closed, so the TLS handshake fails.
#[tokio::test]
async fn close_at_once_fails_the_tls_handshake() {
    let server = HostileServer::start(Hostile::CloseAtOnce).expect("server starts");
    let handshake = timeout(GUARD, tls(&server, b"h2"))
        .await
        .expect("the handshake ends within the guard");
    assert!(handshake.is_err(), "a TLS handshake succeeded");
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.live_connections(), 0);
}

/// `Http1TrickleStatusLine`: ALPN http/1.1, the status line arrives a byte at a time; the
/// request is open until the client closes, and then the connection is gone.
#[tokio::test]
async fn http1_status_line_trickles_and_closes_with_the_client() {
    let server = HostileServer::start(Hostile::Http1TrickleStatusLine {
        interval: Duration::from_millis(5),
    })
    .expect("server starts");
    let mut io = timeout(GUARD, tls(&server, b"http/1.1"))
        .await
        .expect("TLS within the guard")
        .expect("TLS handshake");
    assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    io.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("request written");
    let mut start = [0u8; 9];
    timeout(GUARD, io.read_exact(&mut start))
        .await
        .expect("bytes within the guard")
        .expect("bytes read");
    assert_eq!(&start, b"HTTP/1.1 ");
    assert_eq!((server.streams_opened(), server.open_streams()), (1, 1));
    drop(io);
    eventually("the connection closes", || server.live_connections() == 0).await;
    assert_eq!(server.open_streams(), 0);
}

/// The protocol-error behaviours are well-formed enough for a real client to name the
/// error: each request fails, and the server's connection goes.
#[tokio::test]
async fn a_real_client_detects_each_protocol_error() {
    for behaviour in [
        Hostile::GoAwayAtOnce,
        Hostile::ContinuationFlood,
        Hostile::HpackTableUpdate,
        Hostile::WindowUpdateOverflow,
    ] {
        let server = HostileServer::start(behaviour.clone()).expect("server starts");
        let mut send = h2_client(&server).await;
        let failed = match send.send_request(get(&server), true) {
            Err(_) => true,
            Ok((response, _)) => timeout(GUARD, response)
                .await
                .expect("an outcome within the guard")
                .is_err(),
        };
        assert!(failed, "{behaviour:?}: the request succeeded");
        eventually("the connection closes", || server.live_connections() == 0).await;
    }
}

/// H13 with a real client: the early answer arrives while the upload is stuck on a zero
/// window; the stream stays open until the client resets it.
#[tokio::test]
async fn an_early_answer_leaves_the_stream_open_until_the_client_resets() {
    let server = HostileServer::start(Hostile::EarlyResponseZeroWindow).expect("server starts");
    // The server's window of 0 must be known before the upload starts, or the client sends
    // its first bytes (and END_STREAM) under the protocol's default window.
    let mut send = h2_client_settled(&server).await;
    let request = http::Request::post(server.url())
        .body(())
        .expect("a valid request");
    let (response, mut upload) = send.send_request(request, false).expect("sent");
    upload
        .send_data(Bytes::from_static(b"never sent: the window is 0"), true)
        .expect("queued");
    let response = timeout(GUARD, response)
        .await
        .expect("a response within the guard")
        .expect("a response");
    assert_eq!(response.status(), 200);
    assert!(response.into_body().is_end_stream());
    assert_eq!(server.open_streams(), 1, "the client's half is still open");
    upload.send_reset(h2::Reason::CANCEL);
    eventually("the reset arrives", || server.resets_received() == 1).await;
    eventually("the stream closes", || server.open_streams() == 0).await;
}
