//! Cleartext `http://` origins: HTTP/2 with prior knowledge (h2c) and HTTP/1.1, against the
//! embedded server without TLS.

mod support;

use std::sync::atomic::Ordering;

use https_pool::{Cleartext, ConnectionPoolManager, Error};
use https_pool_testkit::{Alpn, TestServer, TestServerConfig};
use support::{body_len, get, trace_init};
use tokio::task::JoinSet;

fn pool(mode: Cleartext) -> ConnectionPoolManager {
    ConnectionPoolManager::builder()
        .cleartext(mode)
        .build()
        .expect("pool builds")
}

/// h2c multiplexes and scales exactly as HTTP/2 over TLS does: 40 concurrent requests against
/// a server allowing 10 streams use 4 connections, each carrying at most 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_multiplexes_and_scales_past_the_stream_limit() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .cleartext(true)
            .max_concurrent_streams(10)
            .response_delay(std::time::Duration::from_millis(50)),
    )
    .expect("server starts");
    assert!(server.url().starts_with("http://"));
    let pool = pool(Cleartext::Http2PriorKnowledge);
    let mut tasks = JoinSet::new();
    for i in 0..40 {
        let pool = pool.clone();
        let url = server.url_for(&format!("/h2c/{i}"));
        tasks.spawn(async move {
            let response = pool.request(get(&url)).await?;
            Ok::<_, Error>(body_len(response).await)
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task ran").expect("request succeeds");
    }
    let counters = server.counters();
    assert_eq!(counters.requests(), 40);
    assert_eq!(counters.connections_h2.load(Ordering::SeqCst), 4);
    assert_eq!(counters.accepted(), 4);
    assert!(counters.max_concurrent_per_connection() <= 10);
    assert_eq!(pool.stats().connections_opened, 4);
}

/// `Cleartext::Http1` keeps cleartext keep-alive connections: sequential requests reuse one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_http1_reuses_keep_alive_connections() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .cleartext(true)
            .alpn(Alpn::Http1),
    )
    .expect("server starts");
    let pool = pool(Cleartext::Http1);
    for i in 0..20 {
        let response = pool
            .request(get(&server.url_for(&format!("/h1/{i}"))))
            .await
            .expect("request succeeds");
        assert_eq!(response.version(), http::Version::HTTP_11);
        body_len(response).await;
    }
    assert_eq!(server.counters().requests(), 20);
    assert_eq!(
        server.counters().connections_http1.load(Ordering::SeqCst),
        1
    );
    assert_eq!(pool.stats().connections_opened, 1);
}

/// An https origin is unaffected by the cleartext mode, and an http origin never falls back to
/// TLS or the other way round: the scheme is part of the origin.
#[tokio::test]
async fn scheme_is_part_of_the_origin() {
    let server =
        TestServer::start(TestServerConfig::default().cleartext(true)).expect("server starts");
    let pool = pool(Cleartext::Disabled);
    let result = pool.request(get(&server.url_for("/x"))).await;
    assert!(
        matches!(result, Err(Error::CleartextDisabled { .. })),
        "got {result:?}"
    );
    assert_eq!(server.counters().accepted(), 0, "nothing was dialed");
}

/// Speaking h2c to a server that only speaks HTTP/1.1 fails with a protocol error, on the
/// server's answer rather than a deadline; the pool keeps no broken connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_against_an_http1_server_is_an_error() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .cleartext(true)
            .alpn(Alpn::Http1),
    )
    .expect("server starts");
    let pool = ConnectionPoolManager::builder()
        .cleartext(Cleartext::Http2PriorKnowledge)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("pool builds");
    let error = pool
        .request(get(&server.url_for("/x")))
        .await
        .expect_err("an HTTP/1.1 server cannot answer HTTP/2");
    assert!(matches!(error, Error::Protocol { .. }), "got {error:?}");
    assert_eq!(pool.stats().handles_outstanding, 0);
}
