//! Hostile servers and broken networks (issue: every phase of a request is bounded, dials back
//! off, nothing leaks). Each case runs against the testkit's `HostileServer`, a real HTTP/2
//! (or HTTP/1.1) server over rustls that misbehaves one way, and asserts:
//!
//! - the request ends in the typed error of the phase that was stuck, well before the test's
//!   own 10 s guard (a behaviour bound, not a timing assertion);
//! - the server sees the stream closed again (the pool reset it), and the pool holds no
//!   handle, stream or waiter;
//! - after `shutdown()`, no socket of this process is still connected to the server and the
//!   runtime's live tasks are back to what they were before the pool existed.
//!
//! The dial-rate cases run 8 callers in a loop for 10 s against a server that closes every
//! connection, and one that sends GOAWAY(0) right after its SETTINGS, and count the dials.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use https_pool::{ConnectionPoolManager, Error, PoolBuilder, TimeoutKind, Timeouts};
use https_pool_testkit::{EndlessBody, Hostile, HostileServer, most_dials_within};
use support::{get, sockets_settle, sockets_to, trace_init};

/// The test's own guard around each request: every bounded phase ends well before it.
const GUARD: Duration = Duration::from_secs(10);
/// The phase timeouts the cases configure.
const PHASE: Duration = Duration::from_millis(300);

/// A pool trusting `server`'s CA, with short phase timeouts.
fn builder(server: &HostileServer) -> PoolBuilder {
    ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(server.ca_pem().as_bytes().to_vec())
        .response_head_timeout(PHASE)
        .read_timeout(PHASE)
        .write_timeout(PHASE)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .tls_handshake_timeout(Duration::from_secs(2))
}

/// Live tasks on this test's runtime.
fn live_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// What each case checks once its request has ended: the server saw every stream closed, the
/// pool holds nothing, and after shutdown no socket or task is left.
async fn assert_no_leaks(name: &str, pool: ConnectionPoolManager, server: &HostileServer) {
    let mut open = server.open_streams();
    for _ in 0..500 {
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        open = server.open_streams();
    }
    assert_eq!(open, 0, "{name}: streams the server still sees open");
    let stats = pool.stats();
    assert_eq!(stats.handles_outstanding, 0, "{name}: handles left");
    assert_eq!(stats.active_streams(), 0, "{name}: streams left");
    assert_eq!(stats.waiters(), 0, "{name}: waiters left");
    pool.shutdown().await;
    drop(pool);
    let sockets = sockets_settle(server.addr().port(), 0).await;
    assert!(
        sockets.is_none_or(|n| n == 0),
        "{name}: {sockets:?} sockets still connected to the server"
    );
}

/// Waits (bounded) for the runtime's live tasks to come back to `baseline`.
async fn assert_tasks_back_to(name: &str, baseline: usize) {
    let mut live = live_tasks();
    for _ in 0..500 {
        if live <= baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        live = live_tasks();
    }
    assert!(
        live <= baseline,
        "{name}: {live} live tasks, {baseline} before the pool"
    );
}

/// Sends `request` under the guard; the request must fail, and its error is returned.
async fn must_fail<B>(name: &str, pool: &ConnectionPoolManager, request: Request<B>) -> Error
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<https_pool::BoxError>,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(GUARD, async {
        let response = pool.request(request).await?;
        // A head may come; then the body is what must fail.
        response.into_body().collect().await.map(|_| ())
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: no outcome within the {GUARD:?} guard"));
    let error = outcome.expect_err(name);
    println!(
        "HOSTILE | {name} | {error} | {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    error
}

fn timeout_kind(error: &Error) -> Option<TimeoutKind> {
    match error {
        Error::Timeout { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// A request body of `len` bytes that the pool must stream (more than it keeps for replay).
fn upload(url: &str, len: usize) -> Request<Full<Bytes>> {
    Request::post(url)
        .body(Full::new(Bytes::from(vec![b'x'; len])))
        .expect("a valid request")
}

/// H9: the server takes the stream and never answers. The response head's deadline ends
/// it, the stream is reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_never_answered_times_out_at_the_response_head() {
    trace_init();
    let baseline = live_tasks();
    let server = HostileServer::start(Hostile::SilentStreams).expect("server starts");
    let pool = builder(&server).build().expect("pool builds");
    let error = must_fail("H9 silent stream", &pool, get(&server.url())).await;
    assert_eq!(
        timeout_kind(&error),
        Some(TimeoutKind::ResponseHead),
        "{error:?}"
    );
    assert_no_leaks("H9", pool, &server).await;
    assert!(server.resets_received() >= 1, "the stream was reset");
    assert_tasks_back_to("H9", baseline).await;
}

/// A per-request override wins over the pool's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_overrides_the_pools_deadline() {
    trace_init();
    let server = HostileServer::start(Hostile::SilentStreams).expect("server starts");
    let pool = builder(&server)
        .response_head_timeout(Duration::from_secs(60))
        .build()
        .expect("pool builds");
    let mut request = get(&server.url());
    request
        .extensions_mut()
        .insert(Timeouts::new().response_head(PHASE));
    let error = must_fail("override", &pool, request).await;
    match error {
        Error::Timeout { kind, after, .. } => {
            assert_eq!(kind, TimeoutKind::ResponseHead);
            assert_eq!(after, PHASE, "the request's own deadline");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_no_leaks("override", pool, &server).await;
}

/// H11: the body trickles slower than the read deadline; and, trickling faster, the whole
/// request's deadline ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_times_out_on_read_and_on_the_whole_request() {
    trace_init();
    let baseline = live_tasks();
    let slow = HostileServer::start(Hostile::TrickleBody {
        interval: Duration::from_secs(2),
    })
    .expect("server starts");
    let pool = builder(&slow).build().expect("pool builds");
    let error = must_fail("H11 trickle (read)", &pool, get(&slow.url())).await;
    assert_eq!(timeout_kind(&error), Some(TimeoutKind::Read), "{error:?}");
    assert_no_leaks("H11 read", pool, &slow).await;

    let moving = HostileServer::start(Hostile::TrickleBody {
        interval: Duration::from_millis(50),
    })
    .expect("server starts");
    let pool = builder(&moving)
        .request_timeout(Duration::from_millis(800))
        .build()
        .expect("pool builds");
    let error = must_fail("H11 trickle (request)", &pool, get(&moving.url())).await;
    assert_eq!(
        timeout_kind(&error),
        Some(TimeoutKind::Request),
        "{error:?}"
    );
    assert_no_leaks("H11 request", pool, &moving).await;
    assert_tasks_back_to("H11", baseline).await;
}

/// H12: the server's window is 0 and never opens: the upload's write deadline ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_into_a_closed_window_times_out_on_write() {
    trace_init();
    let baseline = live_tasks();
    let server = HostileServer::start(Hostile::ZeroWindow).expect("server starts");
    let pool = builder(&server).build().expect("pool builds");
    let error = must_fail("H12 zero window", &pool, upload(&server.url(), 1 << 20)).await;
    assert_eq!(timeout_kind(&error), Some(TimeoutKind::Write), "{error:?}");
    assert_no_leaks("H12", pool, &server).await;
    assert_tasks_back_to("H12", baseline).await;
}

/// H13: the server answers (END_STREAM) before the upload ends and never opens its window.
/// The upload stops and its stream is reset when the response ends: repeated, the server
/// never sees more streams open than the connection's slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_response_stops_the_upload_and_frees_the_stream() {
    trace_init();
    let baseline = live_tasks();
    let server = HostileServer::start(Hostile::EarlyResponseZeroWindow).expect("server starts");
    let pool = builder(&server)
        .max_connections_per_origin(1)
        .max_streams_per_connection(4)
        .build()
        .expect("pool builds");
    for i in 0..20 {
        let request = Request::post(server.url())
            .body(EndlessBody)
            .expect("a valid request");
        let outcome = tokio::time::timeout(GUARD, pool.request(request))
            .await
            .expect("within the guard");
        let response = outcome.unwrap_or_else(|e| panic!("request {i}: {e:?}"));
        assert_eq!(response.status(), 200);
        drop(response);
    }
    assert!(
        server.max_open_streams() <= 4,
        "the server saw {} streams open at once on a 4-slot connection",
        server.max_open_streams()
    );
    assert_no_leaks("H13", pool, &server).await;
    assert_tasks_back_to("H13", baseline).await;
}

/// H14: the server allows 0 streams. Waiters fail with a typed timeout (acquire, or the
/// response head of the one provisional stream h2 parks when SETTINGS(0) was read before it
/// left), or, when that stream reached the server first and was refused, with the backoff's
/// error: a connection whose first stream was refused served nothing, a failed dial, so the
/// retry waits for the backoff and the next refusal fails fast. Nothing waits without a
/// deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_no_streams_fails_waiters_in_time() {
    trace_init();
    let baseline = live_tasks();
    let server = HostileServer::start(Hostile::ZeroStreams).expect("server starts");
    let pool = builder(&server)
        .acquire_timeout(Duration::from_secs(1))
        .build()
        .expect("pool builds");
    for i in 0..3 {
        let error = must_fail(&format!("H14 zero streams #{i}"), &pool, get(&server.url())).await;
        assert!(
            matches!(
                timeout_kind(&error),
                Some(TimeoutKind::Acquire | TimeoutKind::ResponseHead)
            ) || matches!(error, Error::BackingOff { .. }),
            "{error:?}"
        );
    }
    assert_no_leaks("H14", pool, &server).await;
    assert_tasks_back_to("H14", baseline).await;
}

/// H16a: an HTTP/1.1 status line at one byte per 100 ms: the response head's deadline ends
/// it and the connection is discarded (the server sees it close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_status_line_trickle_times_out_and_discards_the_connection() {
    trace_init();
    let baseline = live_tasks();
    let server = HostileServer::start(Hostile::Http1TrickleStatusLine {
        interval: Duration::from_millis(100),
    })
    .expect("server starts");
    let pool = builder(&server).build().expect("pool builds");
    let error = must_fail("H16a http/1.1 trickle", &pool, get(&server.url())).await;
    assert_eq!(
        timeout_kind(&error),
        Some(TimeoutKind::ResponseHead),
        "{error:?}"
    );
    let mut live = server.live_connections();
    for _ in 0..500 {
        if live == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        live = server.live_connections();
    }
    assert_eq!(live, 0, "the timed-out HTTP/1.1 connection was closed");
    assert_no_leaks("H16a", pool, &server).await;
    assert_tasks_back_to("H16a", baseline).await;
}

/// Abuse h2 bounds by itself (CONTINUATION flood, huge headers, a bad HPACK table update,
/// window overflow, PUSH_PROMISE with push off, SETTINGS and PING floods): each request ends
/// in a typed error, and nothing leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_abuse_ends_in_typed_errors_and_leaks_nothing() {
    trace_init();
    let baseline = live_tasks();
    let cases = [
        ("continuation flood", Hostile::ContinuationFlood),
        ("huge headers", Hostile::HugeHeaders),
        ("hpack table update", Hostile::HpackTableUpdate),
        ("window update overflow", Hostile::WindowUpdateOverflow),
        ("push promise", Hostile::PushPromise),
        ("settings flood", Hostile::SettingsFlood),
        ("ping flood", Hostile::PingFlood),
    ];
    for (name, behaviour) in cases {
        let server = HostileServer::start(behaviour).expect("server starts");
        let pool = builder(&server).build().expect("pool builds");
        let error = must_fail(name, &pool, get(&server.url())).await;
        assert!(
            matches!(
                error,
                Error::Protocol { .. }
                    | Error::ConnectionClosed { .. }
                    | Error::Request { .. }
                    | Error::Timeout { .. }
                    | Error::BackingOff { .. }
            ),
            "{name}: {error:?}"
        );
        assert_no_leaks(name, pool, &server).await;
    }
    assert_tasks_back_to("abuse", baseline).await;
}

/// A large body the caller does not read stays within flow control, and dropping it resets
/// the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_is_reset_when_dropped() {
    trace_init();
    let baseline = live_tasks();
    let server = HostileServer::start(Hostile::UnreadBody { bytes: 64 << 20 }).expect("starts");
    let pool = builder(&server).build().expect("pool builds");
    let response = tokio::time::timeout(GUARD, pool.request(get(&server.url())))
        .await
        .expect("within the guard")
        .expect("a response head");
    assert_eq!(response.status(), 200);
    assert!(response.body().holds_slot());
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(response);
    assert_no_leaks("unread body", pool, &server).await;
    assert_tasks_back_to("unread body", baseline).await;
}

/// 8 callers request in a loop for `window`; returns (attempts, errors by kind name).
async fn hammer(pool: &ConnectionPoolManager, url: &str, window: Duration) -> (u64, Vec<Error>) {
    let attempts = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + window;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            let url = url.to_owned();
            let attempts = Arc::clone(&attempts);
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while Instant::now() < until {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    match tokio::time::timeout(GUARD, pool.request(get(&url))).await {
                        Ok(Ok(_)) => panic!("the hostile server served a request"),
                        Ok(Err(e)) => errors.push(e),
                        Err(_) => panic!("a request outlived the {GUARD:?} guard"),
                    }
                    // A caller that tries again a millisecond later, as a busy service would.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for caller in callers {
        errors.extend(caller.await.expect("caller ran"));
    }
    (attempts.load(Ordering::Relaxed), errors)
}

/// H2 and H15: a server that closes every connection at once, and one that sends GOAWAY(0)
/// right after its SETTINGS, hammered by 8 callers for 10 s: the pool dials no more often
/// than its backoff allows, and callers get typed errors, most of them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_servers_are_dialed_on_the_backoff_schedule() {
    trace_init();
    let window = Duration::from_secs(10);
    let initial = https_pool::PoolConfig::default().dial_backoff_initial;
    let bound = most_dials_within(window, initial, 1.6, 0.2);
    for (name, behaviour) in [
        ("H2 close at once", Hostile::CloseAtOnce),
        ("H15 GOAWAY at once", Hostile::GoAwayAtOnce),
    ] {
        let server = HostileServer::start(behaviour).expect("server starts");
        let pool = builder(&server).build().expect("pool builds");
        let (attempts, errors) = hammer(&pool, &server.url(), window).await;
        let dials = server.connections_accepted();
        let backing_off = errors
            .iter()
            .filter(|e| matches!(e, Error::BackingOff { .. }))
            .count();
        println!(
            "HOSTILE | {name} | {attempts} requests, {} errors ({backing_off} BackingOff) | {dials} dials in {window:?} (backoff allows {bound})",
            errors.len()
        );
        assert_eq!(
            errors.len() as u64,
            attempts,
            "{name}: every request failed"
        );
        for e in &errors {
            assert!(
                e.is_connect(),
                "{name}: untyped or unexpected failure: {e:?}"
            );
        }
        assert!(dials >= 2, "{name}: the server was dialed ({dials})");
        assert!(
            dials <= bound,
            "{name}: {dials} dials in {window:?}, the backoff allows {bound}"
        );
        assert!(
            backing_off as u64 > attempts / 2,
            "{name}: most callers failed fast ({backing_off} of {attempts})"
        );
        assert_no_leaks(name, pool, &server).await;
    }
}

/// A refused port: callers get the connect error, then the fast `BackingOff` naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_backs_off_with_the_dial_error_named() {
    trace_init();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let server = HostileServer::start(Hostile::Normal).expect("server starts");
    let pool = builder(&server).build().expect("pool builds");
    let url = format!("https://127.0.0.1:{port}/");
    let (attempts, errors) = hammer(&pool, &url, Duration::from_secs(3)).await;
    let origin = pool.stats();
    let dials = origin.connects_failed;
    let bound = most_dials_within(Duration::from_secs(3), Duration::from_secs(1), 1.6, 0.2);
    println!(
        "HOSTILE | refused port | {attempts} requests | {dials} dials (backoff allows {bound})"
    );
    assert!(dials <= bound, "{dials} dials, the backoff allows {bound}");
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, Error::ConnectionRefused { .. })),
        "the dial's own error reached a caller"
    );
    let named = errors.iter().find_map(|e| match e {
        Error::BackingOff { source, .. } => Some(source),
        _ => None,
    });
    assert!(
        matches!(named.map(|s| &**s), Some(Error::ConnectionRefused { .. })),
        "BackingOff names the refused dial: {named:?}"
    );
    assert_eq!(sockets_to(port).unwrap_or(0), 0);
    pool.shutdown().await;
}
