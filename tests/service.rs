//! The pool as a `tower::Service`: readiness leases a slot (backpressure), `call` uses it.

mod support;

use std::future::poll_fn;
use std::time::Duration;

use https_pool::{Error, PoolService};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};
use tower_service::Service;

async fn ready(svc: &mut PoolService<String>) -> Result<(), Error> {
    poll_fn(|cx| Service::<http::Request<String>>::poll_ready(svc, cx)).await
}

/// `poll_ready` holds the origin's only slot; a second service waits in the pool's queue
/// until the first one's request frees it, then both requests succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_ready_leases_a_slot_and_reflects_backpressure() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(1))
        .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(1)
        .build()
        .expect("pool builds");
    let mut first = pool.service(server.url()).expect("service");
    ready(&mut first).await.expect("first is ready");
    assert_eq!(pool.stats().active_streams(), 1);

    let mut second = first.clone();
    let waiting = tokio::spawn(async move {
        ready(&mut second).await?;
        let response = second
            .call(
                http::Request::get("/second")
                    .body(String::new())
                    .expect("req"),
            )
            .await?;
        Ok::<_, Error>(body_len(response).await)
    });
    // Bounded wait until the second service is queued in the pool.
    for _ in 0..2_000 {
        if pool.stats().waiters() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        pool.stats().waiters(),
        1,
        "the second service waits for the slot"
    );

    let response = first
        .call(
            http::Request::get("/first")
                .body(String::new())
                .expect("req"),
        )
        .await
        .expect("first request");
    assert_eq!(body_len(response).await, 16);
    assert_eq!(waiting.await.expect("task").expect("second request"), 16);
    assert_eq!(server.counters().accepted(), 1);
    assert_eq!(pool.stats().active_streams(), 0);
}

/// Readiness fails with the pool's typed error when the wait queue is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_ready_fails_when_the_wait_queue_is_full() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(1))
        .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(1)
        .max_waiters_per_origin(1)
        .build()
        .expect("pool builds");
    // Warm the origin so the limit is known, then hold its only slot.
    let response = pool
        .request(get(&server.url_for("/warm")))
        .await
        .expect("warm");
    body_len(response).await;
    let mut holder = pool.service(server.url()).expect("service");
    ready(&mut holder).await.expect("holder is ready");
    let mut queued = holder.clone();
    let queued = tokio::spawn(async move { ready(&mut queued).await });
    for _ in 0..2_000 {
        if pool.stats().waiters() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(pool.stats().waiters(), 1);
    let mut other = holder.clone();
    match ready(&mut other).await {
        Err(Error::PoolExhausted { .. }) => {}
        other => panic!("expected PoolExhausted, got {other:?}"),
    }
    drop(holder);
    queued
        .await
        .expect("task")
        .expect("the queued service gets the slot");
}

/// A service for a malformed origin is refused up front.
#[test]
fn service_for_a_bad_origin_is_an_error() {
    let pool = https_pool::ConnectionPoolManager::builder()
        .build()
        .expect("pool builds");
    assert!(matches!(
        pool.service::<String>("ht tp://x"),
        Err(Error::InvalidUrl { .. })
    ));
}
