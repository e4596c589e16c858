//! TLS 1.3 early data (0-RTT) against the testkit's server: one that takes it
//! ([`TestServerConfig::early_data`]: served as it arrives, answered before the client's
//! `Finished`), and one that does not (its tickets do not offer it). Replay-safe requests on
//! resumed dials go early, others wait for the handshake, every request is answered once, and
//! both sides count the same. nginx's view of the same (`$ssl_early_data`, `425 Too Early`) is
//! in `tests/interop.rs`.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use https_pool::{ConnectionPoolManager, NoEarlyData};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init, until_no_connection};

/// A server taking early data, each request path counted so a repeat shows.
fn early_data_server() -> TestServer {
    TestServer::start(
        TestServerConfig::default()
            .early_data(true)
            .track_duplicates(true),
    )
    .expect("server")
}

/// A pool that closes idle connections after 100 ms: each request after the first waits for
/// that, so it dials, and resumes, a connection of its own (the tickets of TLS 1.3 arrive
/// after the handshake, well within the 100 ms).
fn pool_for(server: &TestServer, early_data: bool) -> ConnectionPoolManager {
    builder_for(server)
        .tls_early_data(early_data)
        .idle_timeout(Duration::from_millis(100))
        .build()
        .expect("pool")
}

/// What the server saw arrive as early data: (connections, requests).
fn early_seen(server: &TestServer) -> (u64, u64) {
    let counters = server.counters();
    (
        counters.early_data_connections.load(SeqCst),
        counters.early_data_requests.load(SeqCst),
    )
}

/// Sends `request` on a connection of its own and reads the response to the end.
async fn on_a_fresh_dial<B>(pool: &ConnectionPoolManager, request: http::Request<B>) -> u16
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    until_no_connection(pool, Duration::from_secs(5)).await;
    let response = pool.request(request).await.expect("request");
    let status = response.status().as_u16();
    body_len(response).await;
    status
}

/// GETs on resumed dials go as early data: the server took early data on each of them, the
/// pool counts each as accepted, and every path reached the server once. (No race: the pool
/// holds the ClientHello until the request that caused the dial is in h2's hands, so the
/// request leaves with it, whatever the timing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_on_resumed_dials_go_as_early_data_and_are_answered_once() {
    trace_init();
    let server = early_data_server();
    let pool = pool_for(&server, true);
    for i in 0..4 {
        let status = on_a_fresh_dial(&pool, get(&server.url_for(&format!("/get/{i}")))).await;
        assert_eq!(status, 200);
    }
    let stats = pool.stats();
    let origin = &stats.origins[0];
    assert_eq!(
        (origin.tls_full_handshakes, origin.tls_resumed_handshakes),
        (1, 3)
    );
    assert_eq!(
        (origin.early_data_accepted, origin.early_data_rejected),
        (3, 0)
    );
    assert_eq!(early_seen(&server), (3, 3));
    let counters = server.counters();
    assert_eq!(counters.requests(), 4);
    assert_eq!(counters.duplicates(), 0);
    assert_eq!(stats.requests_retried, 0);
}

/// A POST, and a GET marked [`NoEarlyData`], on resumed dials wait for the handshake: the
/// dials resume and start in early data (the preface and SETTINGS go early, which the server
/// accepts and both sides count), but no request reaches the server as early data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_and_a_get_marked_no_early_data_wait_for_the_handshake() {
    trace_init();
    let server = early_data_server();
    let pool = pool_for(&server, true);
    assert_eq!(
        on_a_fresh_dial(&pool, get(&server.url_for("/first"))).await,
        200
    );
    let post = http::Request::post(server.url_for("/post"))
        .body(Full::new(Bytes::from_static(b"not replay-safe")))
        .expect("request");
    assert_eq!(on_a_fresh_dial(&pool, post).await, 200);
    let mut marked = get(&server.url_for("/marked"));
    marked.extensions_mut().insert(NoEarlyData);
    assert_eq!(on_a_fresh_dial(&pool, marked).await, 200);
    let origin = &pool.stats().origins[0];
    assert_eq!(origin.tls_resumed_handshakes, 2);
    assert_eq!(
        (origin.early_data_accepted, origin.early_data_rejected),
        (2, 0)
    );
    assert_eq!(early_seen(&server), (2, 0));
    assert_eq!(server.counters().requests(), 3);
}

/// Early data off (the default): a server that would take it gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_data_off_sends_nothing_early_to_a_server_that_takes_it() {
    trace_init();
    let server = early_data_server();
    let pool = pool_for(&server, false);
    for i in 0..3 {
        let status = on_a_fresh_dial(&pool, get(&server.url_for(&format!("/off/{i}")))).await;
        assert_eq!(status, 200);
    }
    let origin = &pool.stats().origins[0];
    assert_eq!(origin.tls_resumed_handshakes, 2);
    assert_eq!(origin.early_data_accepted, 0);
    assert_eq!(early_seen(&server), (0, 0));
}

/// Early data on, a server whose tickets do not allow it: every dial completes its handshake
/// first, as without the option, and the counts say no early data went.
#[tokio::test]
async fn early_data_on_against_a_server_without_it_resumes_and_sends_nothing_early() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server");
    let pool = builder_for(&server)
        .tls_early_data(true)
        .max_requests_per_connection(1)
        .build()
        .expect("pool");
    for i in 0..4 {
        let response = pool
            .request(get(&server.url_for(&format!("/{i}"))))
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        // Read to the end: TLS 1.3 session tickets arrive after the handshake, with data.
        body_len(response).await;
    }
    let stats = pool.stats();
    let origin = &stats.origins[0];
    assert_eq!(
        (origin.tls_full_handshakes, origin.tls_resumed_handshakes),
        (1, 3)
    );
    assert_eq!(
        (origin.early_data_accepted, origin.early_data_rejected),
        (0, 0)
    );
    assert_eq!(server.counters().accepted(), 4);
    let text = stats.to_prometheus();
    let line = format!(
        "https_pool_tls_early_data_total{{origin=\"{}\",outcome=\"accepted\"}} 0\n",
        origin.origin
    );
    assert!(text.contains(&line), "{text}");
}
