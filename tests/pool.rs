//! Pool semantics against the embedded HTTPS server: multiplexing, scale-up by the peer's
//! stream limit, the bounded queue, single-flight dials, warm-up and slot accounting.
//! Assertions are on counts (sockets the server accepted, streams, errors), never on time.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util_free::join_all;
use https_pool::{Error, Origin, Protocol, SelectionPolicy};
use https_pool_testkit::{Alpn, TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};
use tokio::sync::Barrier;

/// `join_all` over spawned tasks, without a futures dependency.
mod futures_util_free {
    pub async fn join_all<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("task did not panic"));
        }
        out
    }
}

/// 150 concurrent requests to a server allowing 250 streams all succeed over at most two
/// sockets: the pool multiplexes instead of dialing per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_150_requests_use_at_most_two_sockets_when_server_allows_250_streams() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(250)
            .response_delay(Duration::from_millis(100)),
    )
    .expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let url = server.url_for("/multiplex");
    let tasks = (0..150)
        .map(|_| {
            let pool = pool.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let response = pool.request(get(&url)).await?;
                assert_eq!(response.status(), 200);
                Ok::<_, Error>(body_len(response).await)
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(server.counters().requests(), 150);
    let sockets = server.counters().accepted();
    assert!(
        (1..=2).contains(&sockets),
        "{sockets} sockets for 150 streams"
    );
    assert!(
        server.counters().max_concurrent_per_connection() > 1,
        "streams were multiplexed"
    );
}

/// With the server limiting each connection to 8 streams, 64 requests in flight make the
/// pool open exactly 8 connections, and no connection ever carries more than 8 streams (so
/// the server never has to refuse one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_limit_of_8_streams_with_64_in_flight_opens_exactly_8_connections() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(8)
            .response_delay(Duration::from_millis(50)),
    )
    .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(8)
        .build()
        .expect("pool builds");
    let results = run_concurrent(&pool, &server.url_for("/limit"), 64).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(server.counters().accepted(), 8);
    assert!(server.counters().max_concurrent_per_connection() <= 8);
    let stats = pool.stats();
    let origin = stats.origins.first().expect("one origin");
    assert!(
        origin
            .connections
            .iter()
            .filter(|c| c.peer_settings_received)
            .all(|c| c.max_streams == 8)
    );
}

/// Capped at 2 connections, the requests beyond 2×8 streams wait in the queue and all
/// complete; only 2 sockets are ever opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_rest_wait_in_the_queue_and_all_complete() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(8)
            .response_delay(Duration::from_millis(50)),
    )
    .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(2)
        .build()
        .expect("pool builds");
    let results = run_concurrent(&pool, &server.url_for("/queue"), 64).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(server.counters().accepted(), 2);
    assert_eq!(server.counters().requests(), 64);
    assert!(server.counters().max_concurrent_per_connection() <= 8);
    let stats = pool.stats();
    assert!(stats.time_in_queue.count > 0, "some acquirers queued");
    assert_eq!(stats.waiters(), 0);
}

/// With every slot held and the queue (length 10) full, one more acquirer gets
/// `PoolExhausted` immediately; once slots free up, the queued ten all get one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_wait_queue_rejects_the_overflow_with_pool_exhausted() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(8))
        .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(2)
        .min_connections_per_origin(2)
        .max_waiters_per_origin(10)
        .build()
        .expect("pool builds");
    let warm = pool.prewarm_hosts(&[server.url()]).await;
    assert!(warm[0].is_ok(), "{warm:?}");
    wait_for_settings(&pool, 2).await;

    let origin: Origin = server.url().parse().expect("origin");
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(pool.acquire(&origin).await.expect("a free slot"));
    }
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            let origin = origin.clone();
            tokio::spawn(async move { pool.acquire(&origin).await.map(|h| h.connection_id()) })
        })
        .collect();
    while pool.stats().waiters() < 10 {
        tokio::task::yield_now().await;
    }
    match pool.acquire(&origin).await {
        Err(Error::PoolExhausted { waiters, origin: o }) => {
            assert_eq!(waiters, 10);
            assert_eq!(o, origin);
        }
        other => panic!("expected PoolExhausted, got {other:?}"),
    }
    drop(held);
    for result in join_all(waiters).await {
        result.expect("queued acquirer is served once slots free up");
    }
    assert_eq!(server.counters().accepted(), 2);
}

/// 1,000 tasks acquiring on a cold origin at the same instant all succeed, and the pool
/// opens no more sockets than ceil(1000 / server max streams), capped by its maximum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_of_1000_on_a_cold_origin_opens_at_most_ceil_n_over_max_streams_sockets() {
    trace_init();
    const HERD: usize = 1000;
    const SERVER_STREAMS: u32 = 100;
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(SERVER_STREAMS)
            .response_delay(Duration::from_millis(20)),
    )
    .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(16)
        .max_waiters_per_origin(HERD)
        .build()
        .expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let barrier = Arc::new(Barrier::new(HERD));
    let tasks = (0..HERD)
        .map(|i| {
            let pool = pool.clone();
            let origin = origin.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut handle = pool.acquire(&origin).await?;
                let response = handle.send(get(&format!("/herd/{i}"))).await?;
                Ok::<_, Error>(response.status())
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        failures.first()
    );
    let bound = HERD.div_ceil(SERVER_STREAMS as usize).min(16) as u64;
    let sockets = server.counters().accepted();
    assert!(sockets <= bound, "{sockets} sockets, bound {bound}");
    assert!(server.counters().max_concurrent_per_connection() <= SERVER_STREAMS as usize);
    let stats = pool.stats();
    assert_eq!(stats.connections_opened, sockets);
    assert_eq!(stats.acquires_succeeded, HERD as u64);
}

/// Prewarming three origins opens the warm minimum on each, the first acquire afterwards
/// opens no socket, and a refused host is reported while the others still warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_opens_the_warm_minimum_per_origin_and_reports_a_bad_host() {
    trace_init();
    let servers: Vec<TestServer> = (0..3)
        .map(|_| TestServer::start(TestServerConfig::default()).expect("server starts"))
        .collect();
    let mut builder = https_pool::ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .min_connections_per_origin(2);
    for s in &servers {
        builder = builder.tls_extra_ca_pem(s.ca_pem());
    }
    let pool = builder.build().expect("pool builds");
    let refused = closed_port();
    let mut hosts: Vec<String> = servers.iter().map(TestServer::url).collect();
    hosts.insert(1, format!("127.0.0.1:{refused}"));

    let reports = pool.prewarm_hosts(&hosts).await;
    assert_eq!(reports.len(), 4);
    assert_eq!(reports[1].input, hosts[1]);
    match &reports[1].result {
        Err(Error::ConnectionRefused { origin, .. }) => assert_eq!(origin.port(), refused),
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    for (i, server) in servers.iter().enumerate() {
        let report = &reports[if i == 0 { 0 } else { i + 1 }];
        let warmed = report.result.as_ref().expect("good host warms");
        assert_eq!(warmed.connections, 2);
        assert_eq!(warmed.protocol, Some(Protocol::Http2));
        assert_eq!(server.counters().accepted(), 2);
    }
    for server in &servers {
        let response = pool.request(get(&server.url_for("/after-warmup"))).await;
        assert_eq!(response.expect("request succeeds").status(), 200);
        assert_eq!(
            server.counters().accepted(),
            2,
            "no new socket after prewarm"
        );
    }
    let stats = pool.stats();
    assert_eq!(stats.connections_opened, 6);
    // The refused host stays on the warm list and is re-dialed with backoff.
    assert!(stats.connects_failed >= 1);
}

/// 10,000 acquire/drop cycles leave no slot leased, no handle outstanding, and no socket
/// beyond the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_acquire_drop_cycles_leak_no_slots_or_sockets() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    for _ in 0..10_000 {
        let handle = pool.acquire(&origin).await.expect("acquire");
        drop(handle);
    }
    let stats = pool.stats();
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.waiters(), 0);
    assert_eq!(stats.acquires_succeeded, 10_000);
    assert_eq!(stats.leases_reused, 9_999);
    assert_eq!(server.counters().accepted(), 1);
}

/// Both selection policies serve every request within the server's stream limit; least-loaded
/// spreads streams over the prewarmed connections, pack fills the oldest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_policies_pack_and_least_loaded_place_streams_as_documented() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(100))
        .expect("server starts");
    for policy in [SelectionPolicy::Pack, SelectionPolicy::LeastLoaded] {
        let pool = builder_for(&server)
            .min_connections_per_origin(2)
            .max_connections_per_origin(2)
            .selection_policy(policy)
            .build()
            .expect("pool builds");
        assert!(pool.prewarm_hosts(&[server.url()]).await[0].is_ok());
        wait_for_settings(&pool, 2).await;
        let origin: Origin = server.url().parse().expect("origin");
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire(&origin).await.expect("acquire"));
        }
        let mut ids: Vec<u64> = held.iter().map(|h| h.connection_id()).collect();
        ids.sort_unstable();
        ids.dedup();
        match policy {
            SelectionPolicy::Pack => assert_eq!(ids.len(), 1, "pack fills one connection"),
            _ => assert_eq!(ids.len(), 2, "least-loaded spreads"),
        }
        drop(held);
        pool.shutdown().await;
    }
}

/// An HTTP/1.1-only server works: ten sequential requests reuse one keep-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_only_server_reuses_one_connection_for_sequential_requests() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().alpn(Alpn::Http1)).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    for i in 0..10 {
        let response = pool
            .request(get(&server.url_for(&format!("/h1/{i}"))))
            .await
            .expect("request succeeds");
        assert_eq!(response.status(), 200);
        assert_eq!(body_len(response).await, 16);
    }
    assert_eq!(server.counters().accepted(), 1);
    let stats = pool.stats();
    let conn = &stats.origins[0].connections[0];
    assert_eq!(conn.protocol, Protocol::Http1);
    assert_eq!(conn.requests_served, 10);
}

/// Connections opened for a burst close after the idle timeout, down to the warm minimum of
/// a prewarmed origin (1 here), and the server sees them go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_down_to_the_warm_minimum() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(2)
            .response_delay(Duration::from_millis(50)),
    )
    .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(4)
        .min_connections_per_origin(1)
        .idle_timeout(Duration::from_millis(200))
        .build()
        .expect("pool builds");
    assert!(pool.prewarm_hosts(&[server.url()]).await[0].is_ok());
    let results = run_concurrent(&pool, &server.url_for("/burst"), 16).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        server.counters().accepted(),
        4,
        "the burst scaled to the cap"
    );
    // Bounded wait for the sweep; the assertion is on the count it settles at.
    for _ in 0..500 {
        if pool.stats().open_connections() == 1 && server.counters().open() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.stats().open_connections(), 1);
    assert_eq!(
        server.counters().open(),
        1,
        "closed connections reached the server"
    );
    let response = pool
        .request(get(&server.url_for("/after")))
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.counters().accepted(),
        4,
        "the warm connection served it"
    );
}

/// An HTTP/1.1 response whose body is still unread keeps its connection busy: the next
/// request goes to a second connection instead of waiting behind that body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_unread_body_does_not_block_the_next_request() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .alpn(Alpn::Http1)
            .body_bytes(256 * 1024),
    )
    .expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let first = pool
        .request(get(&server.url_for("/a")))
        .await
        .expect("first");
    let second = pool
        .request(get(&server.url_for("/b")))
        .await
        .expect("second");
    assert_eq!(body_len(second).await, 256 * 1024);
    assert_eq!(body_len(first).await, 256 * 1024);
    assert_eq!(server.counters().accepted(), 2);
    // Both bodies are read: either connection serves the next request.
    let third = pool
        .request(get(&server.url_for("/c")))
        .await
        .expect("third");
    assert_eq!(body_len(third).await, 256 * 1024);
    assert_eq!(server.counters().accepted(), 2);
}

/// `shutdown` wakes a waiting acquirer with `PoolClosed`, waits for the held handle, and
/// later acquires fail with `PoolClosed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_waiters_and_later_acquires_with_pool_closed() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(1))
        .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(1)
        .build()
        .expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let held = pool.acquire(&origin).await.expect("first slot");
    let waiter = {
        let pool = pool.clone();
        let origin = origin.clone();
        tokio::spawn(async move { pool.acquire(&origin).await })
    };
    while pool.stats().waiters() == 0 {
        tokio::task::yield_now().await;
    }
    let shutdown = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.shutdown().await })
    };
    assert!(matches!(
        waiter.await.expect("join"),
        Err(Error::PoolClosed)
    ));
    // The waiter saw PoolClosed, so shutdown is past closing; give its task many turns to
    // show it does not finish while a handle is held.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the held handle"
    );
    drop(held);
    shutdown
        .await
        .expect("shutdown completes once the handle is dropped");
    assert!(matches!(
        pool.acquire(&origin).await,
        Err(Error::PoolClosed)
    ));
    assert_eq!(pool.stats().handles_outstanding, 0);
}

async fn run_concurrent(
    pool: &https_pool::ConnectionPoolManager,
    url: &str,
    n: usize,
) -> Vec<Result<u16, Error>> {
    let barrier = Arc::new(Barrier::new(n));
    let tasks = (0..n)
        .map(|_| {
            let pool = pool.clone();
            let url = url.to_owned();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let response = pool.request(get(&url)).await?;
                Ok(response.status().as_u16())
            })
        })
        .collect();
    join_all(tasks).await
}

/// Waits until `n` connections have received the peer's SETTINGS (bounded, not timed).
async fn wait_for_settings(pool: &https_pool::ConnectionPoolManager, n: usize) {
    for _ in 0..10_000 {
        let stats = pool.stats();
        let ready = stats
            .origins
            .iter()
            .flat_map(|o| &o.connections)
            .filter(|c| c.peer_settings_received)
            .count();
        if ready >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("peer SETTINGS never arrived on {n} connections");
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}
