//! The memory bound of the default flow-control windows: response bytes a caller has not read
//! are held by the pool only up to the connection's receive window, however many streams
//! wait and however large their bodies are; reading them afterwards still completes.
//!
//! Heap is counted by a global allocator wrapper (the harness's), so this file holds one test:
//! another test running beside it would be counted too. The test server runs in this process,
//! but serves every body as a slice of one shared buffer, so its side costs nothing per
//! unsent response.

#[path = "../test_binaries/harness/alloc.rs"]
mod alloc;
mod support;

use std::time::Duration;

use http::Response;
use https_pool::{Body, ConnectionPoolManager, PoolConfig};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const STREAMS: usize = 100;
const BODY_BYTES: usize = 1 << 20;

/// Sends `STREAMS` GETs for bodies of `body_bytes` at once and keeps their responses unread;
/// returns them with the heap growth once data has stopped arriving.
async fn hold_unread(
    pool: &ConnectionPoolManager,
    url: &str,
    body_bytes: usize,
) -> (Vec<Response<Body>>, i64) {
    let before = alloc::live_bytes();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..STREAMS {
        let pool = pool.clone();
        let mut request = get(url);
        request.headers_mut().insert(
            "x-body-bytes",
            body_bytes.to_string().parse().expect("a header value"),
        );
        requests.spawn(async move { pool.request(request).await });
    }
    let mut responses = Vec::with_capacity(STREAMS);
    while let Some(joined) = requests.join_next().await {
        responses.push(
            joined
                .expect("no panic")
                .expect("the response head arrives"),
        );
    }
    // Data stops arriving once the windows are spent: wait until the heap has not moved for
    // a quarter of a second (bounded, so a pool that never stops fails instead of hanging).
    let mut last = alloc::live_bytes();
    let mut still = 0;
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = alloc::live_bytes();
        if (now - last).abs() < 4096 {
            still += 1;
            if still == 10 {
                break;
            }
        } else {
            still = 0;
        }
        last = now;
    }
    (responses, alloc::live_bytes() - before)
}

/// 100 streams whose 1 MiB bodies are never read hold no more than the documented bound
/// (one connection window, 8 MiB with the defaults, plus 1/16 for the buffers the data
/// arrives in) beyond what 100 streams with tiny bodies hold, although 100 MiB were asked
/// for; reading them afterwards completes every body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_bodies_hold_at_most_one_connection_window() {
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let defaults = PoolConfig::default();
    let window = i64::from(defaults.http2_initial_connection_window_size);
    let bound = window + window / 16;
    let url = server.url_for("/unread");

    // Warm: the connection is open, its SETTINGS exchanged, the server's shared body grown.
    let mut warm = get(&url);
    warm.headers_mut().insert(
        "x-body-bytes",
        BODY_BYTES.to_string().parse().expect("value"),
    );
    assert_eq!(
        body_len(pool.request(warm).await.expect("warm")).await,
        BODY_BYTES
    );

    // What 100 open streams cost with (almost) no data: heads, stream state, bodies.
    let (small, bookkeeping) = hold_unread(&pool, &url, 16).await;
    for response in small {
        assert_eq!(body_len(response).await, 16);
    }

    let (unread, held) = hold_unread(&pool, &url, BODY_BYTES).await;
    let data = held - bookkeeping;
    eprintln!(
        "100 unread 1 MiB bodies: heap +{held} B, of which data {data} B (bookkeeping {bookkeeping} B); window {window} B, bound {bound} B"
    );
    assert!(
        data <= bound,
        "unread data {data} B exceeds the bound {bound} B (connection window {window} B)"
    );
    // The bound is the window, not a figure far above what arrives: most of it did.
    assert!(
        data >= window / 2,
        "only {data} B arrived; the server should have filled most of the {window} B window"
    );
    let stats = pool.stats();
    assert_eq!(
        stats
            .origins
            .iter()
            .map(|o| o.connections.len())
            .sum::<usize>(),
        1,
        "all 100 streams share one connection (the server allows 250)"
    );

    // Read together, as data arrives: read one at a time, the first body could wait forever
    // for credit that the unread others hold (HTTP/2's connection window is shared).
    let mut readers = tokio::task::JoinSet::new();
    for response in unread {
        readers.spawn(body_len(response));
    }
    let mut total = 0;
    while let Some(len) = readers.join_next().await {
        total += len.expect("no panic");
    }
    assert_eq!(total, STREAMS * BODY_BYTES, "every body reads to the end");
    pool.shutdown().await;
}
