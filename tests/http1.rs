//! The HTTP/1.1 fallback: keep-alive reuse, the per-origin connection cap, dead idle
//! connections, `Connection: close`, dropped bodies, and HTTP/1.1 next to HTTP/2 in one pool.
//! Real sockets on 127.0.0.1; counts only.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use https_pool::{ConnectionPoolManager, Error, Origin, Protocol};
use https_pool_testkit::{Alpn, TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};
use tokio::sync::Barrier;

fn h1_server(config: TestServerConfig) -> TestServer {
    TestServer::start(config.alpn(Alpn::Http1)).expect("server starts")
}

/// 50 concurrent requests with `h1_max_connections` 10 all succeed over exactly 10
/// connections, one request at a time each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_use_exactly_h1_max_connections() {
    trace_init();
    let server = h1_server(TestServerConfig::default().response_delay(Duration::from_millis(50)));
    let pool = builder_for(&server)
        .h1_max_connections(10)
        .build()
        .expect("pool builds");
    let barrier = Arc::new(Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let pool = pool.clone();
            let url = server.url_for(&format!("/h1/{i}"));
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let response = pool.request(get(&url)).await?;
                Ok::<_, Error>(body_len(response).await)
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("request succeeds"), 16);
    }
    assert_eq!(server.counters().accepted(), 10);
    assert_eq!(server.counters().max_concurrent_per_connection(), 1);
    let stats = pool.stats();
    let origin = &stats.origins[0];
    assert!(
        origin
            .connections
            .iter()
            .all(|c| c.protocol == Protocol::Http1)
    );
    assert_eq!(
        origin
            .connections
            .iter()
            .map(|c| c.requests_served)
            .sum::<u64>(),
        50
    );
}

/// The server closes idle keep-alive connections after 100 ms; after a 300 ms pause the next
/// request still succeeds on a fresh connection, and nothing was processed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_closed_by_the_server_is_replaced_and_nothing_is_sent_twice() {
    trace_init();
    let server = h1_server(
        TestServerConfig::default()
            .h1_idle_close_after(Duration::from_millis(100))
            .track_duplicates(true),
    );
    let pool = builder_for(&server).build().expect("pool builds");
    let first = pool
        .request(get(&server.url_for("/first")))
        .await
        .expect("first");
    assert_eq!(body_len(first).await, 16);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = pool
        .request(get(&server.url_for("/second")))
        .await
        .expect("second");
    assert_eq!(body_len(second).await, 16);
    assert_eq!(server.counters().requests(), 2);
    assert_eq!(server.counters().duplicates(), 0);
    assert_eq!(server.counters().accepted(), 2);
}

/// A response with `Connection: close` ends its connection: the next request opens another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_response_is_not_reused() {
    trace_init();
    let server = h1_server(TestServerConfig::default());
    let pool = builder_for(&server).build().expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let mut handle = pool.acquire(&origin).await.expect("acquire");
    let first_id = handle.connection_id();
    let closing = Request::get("/close")
        .header("x-close", "1")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = handle.send(closing).await.expect("request");
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(body_len(response).await, 16);
    drop(handle);
    let mut next = pool.acquire(&origin).await.expect("acquire");
    assert_ne!(
        next.connection_id(),
        first_id,
        "the closed connection is not reused"
    );
    let response = next.send(get("/next")).await.expect("next");
    assert_eq!(body_len(response).await, 16);
}

/// A response body dropped half-read leaves its connection unusable; the pool does not reuse
/// it, and the next request succeeds on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_read_dropped_body_is_not_reused() {
    trace_init();
    let server = h1_server(TestServerConfig::default().body_bytes(4 * 1024 * 1024));
    let pool = builder_for(&server).build().expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let mut handle = pool.acquire(&origin).await.expect("acquire");
    let first_id = handle.connection_id();
    let response = handle.send(get("/big")).await.expect("request");
    drop(handle);
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("frame ok");
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    drop(body);
    let mut next = pool.acquire(&origin).await.expect("acquire");
    assert_ne!(
        next.connection_id(),
        first_id,
        "the half-read connection is not reused"
    );
    let response = next.send(get("/next")).await.expect("next");
    assert_eq!(body_len(response).await, 4 * 1024 * 1024);
    assert_eq!(pool.stats().requests_failed, 0);
}

/// One HTTP/2 origin and one HTTP/1.1 origin in the same pool, used concurrently: both
/// serve every request, and stats report each origin's protocol and counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_origins_share_one_pool_with_correct_stats() {
    trace_init();
    let h2 =
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(20)))
            .expect("server starts");
    let h1 = h1_server(TestServerConfig::default().response_delay(Duration::from_millis(20)));
    let pool = ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(h2.ca_pem())
        .tls_extra_ca_pem(h1.ca_pem())
        .h1_max_connections(4)
        .build()
        .expect("pool builds");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let pool = pool.clone();
            let url = if i % 2 == 0 {
                h2.url_for("/mixed")
            } else {
                h1.url_for("/mixed")
            };
            tokio::spawn(async move {
                let response = pool.request(get(&url)).await?;
                Ok::<_, Error>(body_len(response).await)
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("request succeeds"), 16);
    }
    let stats = pool.stats();
    let h2_origin: Origin = h2.url().parse().expect("origin");
    let h1_origin: Origin = h1.url().parse().expect("origin");
    let h2_stats = stats.origin(&h2_origin).expect("h2 origin");
    let h1_stats = stats.origin(&h1_origin).expect("h1 origin");
    assert!(
        h2_stats
            .connections
            .iter()
            .all(|c| c.protocol == Protocol::Http2)
    );
    assert!(
        h1_stats
            .connections
            .iter()
            .all(|c| c.protocol == Protocol::Http1)
    );
    assert_eq!(h2_stats.connections.len(), 1);
    assert!(h1_stats.connections.len() <= 4);
    let served =
        |o: &https_pool::OriginStats| o.connections.iter().map(|c| c.requests_served).sum::<u64>();
    assert_eq!(served(h2_stats), 20);
    assert_eq!(served(h1_stats), 20);
    assert_eq!(h1.counters().requests(), 20);
    assert_eq!(h2.counters().requests(), 20);
}

/// With `h2_only`, a server that offers only HTTP/1.1 is a clear protocol error.
#[tokio::test]
async fn h2_only_rejects_an_http1_server_with_a_protocol_error() {
    trace_init();
    let server = h1_server(TestServerConfig::default());
    let pool = builder_for(&server)
        .h2_only(true)
        .build()
        .expect("pool builds");
    let err = pool.acquire(server.url()).await.expect_err("h1 refused");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP/2"), "{err}");
}
