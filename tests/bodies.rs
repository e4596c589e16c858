//! The response body holds its stream slot until the stream ends, against the embedded HTTPS
//! server on 127.0.0.1: slow downloads do not make later requests queue behind them, and a
//! body ended, dropped or failed gives its slot back.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{builder_for, get, trace_init};
use tokio::sync::Barrier;

const MIB: usize = 1 << 20;

/// 16 slowly read 1 MiB downloads, a server allowing 2 streams per connection, at most 8
/// connections: every response head arrives before any body is read (so none waited behind
/// a body on a slot that only looked free), the pool opens exactly 8 connections, and no
/// connection ever carries more than 2 streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_keep_their_slots_so_no_head_queues_behind_a_body() {
    trace_init();
    const DOWNLOADS: usize = 16;
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(2)
            .body_bytes(MIB),
    )
    .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(8)
        .build()
        .expect("pool builds");

    let sampling = Arc::new(AtomicBool::new(true));
    let most_per_connection = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (pool, sampling, most) = (
            pool.clone(),
            Arc::clone(&sampling),
            Arc::clone(&most_per_connection),
        );
        tokio::spawn(async move {
            while sampling.load(Ordering::SeqCst) {
                for origin in pool.stats().origins {
                    for c in origin.connections {
                        most.fetch_max(c.active_streams, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    // Nobody reads a body until every head is in: if a request queued behind a body, the
    // barrier would never open.
    let heads_in = Arc::new(Barrier::new(DOWNLOADS));
    let started = Instant::now();
    let tasks: Vec<_> = (0..DOWNLOADS)
        .map(|i| {
            let pool = pool.clone();
            let heads_in = Arc::clone(&heads_in);
            let url = server.url_for(&format!("/slow/{i}"));
            tokio::spawn(async move {
                let response = pool.request(get(&url)).await.expect("response head");
                let head_after = started.elapsed();
                heads_in.wait().await;
                let mut body = response.into_body();
                let mut read = 0;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.expect("body frame").into_data() {
                        read += data.len();
                    }
                    // A slow reader: the server's flow-control window stays mostly closed.
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                (head_after, read)
            })
        })
        .collect();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("download task"));
        }
        results
    })
    .await
    .expect("every head arrived while all bodies were unread (none queued behind a body)");
    sampling.store(false, Ordering::SeqCst);
    sampler.await.expect("sampler");

    let slowest_head = outcome.iter().map(|(h, _)| *h).max().unwrap_or_default();
    println!("slowest of {DOWNLOADS} response heads: {slowest_head:?}");
    for (_, read) in &outcome {
        assert_eq!(*read, MIB, "every body read to the end");
    }
    let stats = pool.stats();
    assert_eq!(
        stats.connections_opened, 8,
        "16 streams at 2 per connection"
    );
    assert!(
        most_per_connection.load(Ordering::SeqCst) <= 2,
        "never more than 2 streams leased on a connection"
    );
    assert!(server.counters().max_concurrent_per_connection() <= 2);
    assert_eq!(stats.handles_outstanding, 0, "every slot came back");
    assert_eq!(stats.active_streams(), 0);
}

/// The slot is the body's until its last byte: leased while it streams, free after it ends;
/// a body dropped half-read frees its slot at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_frees_its_slot_at_its_end_or_when_dropped() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().body_bytes(MIB)).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");

    let response = pool
        .request(get(&server.url_for("/read")))
        .await
        .expect("head");
    let mut body = response.into_body();
    assert!(body.holds_slot());
    assert_eq!(
        pool.stats().active_streams(),
        1,
        "the unread body holds the slot"
    );
    let mut read = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            read += data.len();
        }
    }
    assert_eq!(read, MIB);
    assert!(!body.holds_slot());
    assert_eq!(pool.stats().active_streams(), 0, "ended: the slot is free");

    let response = pool
        .request(get(&server.url_for("/drop")))
        .await
        .expect("head");
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert!(first.is_data());
    assert_eq!(pool.stats().active_streams(), 1);
    drop(body);
    assert_eq!(
        pool.stats().active_streams(),
        0,
        "dropped: the slot is free"
    );
    assert_eq!(pool.stats().handles_outstanding, 0);

    // The connection is still good for the next request.
    let response = pool
        .request(get(&server.url_for("/after")))
        .await
        .expect("head");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(bytes.len(), MIB);
    assert_eq!(pool.stats().connections_opened, 1);
}

/// A handle's response body keeps the handle's slot after the handle is dropped; the slot is
/// freed only when both are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_shares_its_slot_with_the_body_it_received() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().body_bytes(MIB)).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let origin = server.url();

    let mut handle = pool.acquire(&origin).await.expect("acquire");
    let response = handle.send(get("/shared")).await.expect("head");
    assert_eq!(pool.stats().active_streams(), 1, "one slot, shared");
    drop(handle);
    assert_eq!(pool.stats().active_streams(), 1, "the body still holds it");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(bytes.len(), MIB);
    assert_eq!(pool.stats().active_streams(), 0, "both gone: free");

    // The other order: the body ends first, the handle still holds the slot.
    let mut handle = pool.acquire(&origin).await.expect("acquire");
    let response = handle.send(get("/shared-again")).await.expect("head");
    response.into_body().collect().await.expect("body");
    assert_eq!(pool.stats().active_streams(), 1, "the handle holds it");
    drop(handle);
    assert_eq!(pool.stats().active_streams(), 0);
    assert_eq!(pool.stats().handles_outstanding, 0);
}
