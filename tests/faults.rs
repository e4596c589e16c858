//! Injected faults against the embedded server: GOAWAY rotation under load, abrupt
//! connection kills, and a silent (black-holed) path. Counts only; no timing assertions.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use https_pool::testkit::{RttRelay, TestServer, TestServerConfig};
use https_pool::{Error, Origin};
use support::{body_len, builder_for, get, trace_init};

/// The server sends GOAWAY after every 50 requests on a connection; of 5,000 requests from
/// 64 tasks, every failure is a typed `ConnectionClosed`, requests handed back unsent are
/// retried (and counted), and the server never processed any request twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_every_50_requests_duplicates_nothing_and_fails_only_with_typed_errors() {
    trace_init();
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 5_000 / TASKS + 1;
    let server = TestServer::start(
        TestServerConfig::default()
            .goaway_after(50)
            .track_duplicates(true),
    )
    .expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let ok = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let pool = pool.clone();
            let url = server.url();
            let ok = Arc::clone(&ok);
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..PER_TASK {
                    match pool.request(get(&format!("{url}/goaway/{t}/{i}"))).await {
                        Ok(response) => {
                            assert_eq!(response.status(), 200);
                            body_len(response).await;
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => errors.push(e),
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors: Vec<Error> = Vec::new();
    for t in tasks {
        errors.extend(t.await.expect("task"));
    }
    for e in &errors {
        assert!(
            matches!(e, Error::ConnectionClosed { .. }),
            "unexpected failure: {e:?}"
        );
    }
    let succeeded = ok.load(Ordering::SeqCst);
    assert_eq!(succeeded + errors.len() as u64, TASKS * PER_TASK);
    assert_eq!(
        server.counters().duplicates(),
        0,
        "no request processed twice"
    );
    // Every success was processed once; a failed request was processed at most once.
    let processed = server.counters().requests();
    assert!(processed >= succeeded && processed <= succeeded + errors.len() as u64);
    assert!(server.counters().goaways_sent.load(Ordering::SeqCst) > 10);
    let stats = pool.stats();
    assert_eq!(stats.requests_failed, errors.len() as u64);
    assert_eq!(stats.handles_outstanding, 0);
    println!(
        "goaway rotation: {succeeded} ok, {} failed, {} retried, {} connections",
        errors.len(),
        stats.requests_retried,
        stats.connections_opened
    );
}

/// While the server abruptly kills random connections, acquire/send/drop at full speed
/// never leaks a slot, every failure is a typed connection or request error, and the
/// server never handled more requests than were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_under_connection_kills_leaks_nothing_and_fails_only_with_typed_errors() {
    trace_init();
    let server = Arc::new(
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(2)))
            .expect("server starts"),
    );
    let pool = builder_for(&server).build().expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let killer = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let mut killed = 0;
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                killed += server.kill_connections(1);
            }
            killed
        })
    };
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let pool = pool.clone();
            let origin = origin.clone();
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for i in 0..150 {
                    let mut handle = match pool.acquire(&origin).await {
                        Ok(h) => h,
                        Err(e) => {
                            failures.push(e);
                            continue;
                        }
                    };
                    sent.fetch_add(1, Ordering::SeqCst);
                    match handle.send(get(&format!("/churn/{i}"))).await {
                        Ok(r) => {
                            let _ = r.into_body();
                        }
                        Err(e) => failures.push(e),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.expect("task"));
    }
    let killed = killer.await.expect("killer");
    assert!(killed > 0, "the fault was injected");
    for f in &failures {
        assert!(
            matches!(f, Error::ConnectionClosed { .. } | Error::Request { .. }),
            "untyped or unexpected failure: {f:?}"
        );
    }
    assert!(server.counters().requests() <= sent.load(Ordering::SeqCst));
    let stats = pool.stats();
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.waiters(), 0);
    println!(
        "churn: sent {}, failed {}, killed {killed}, connections {}",
        sent.load(Ordering::SeqCst),
        failures.len(),
        stats.connections_opened
    );
}

/// A connection whose path goes silent is evicted by the HTTP/2 PING timeout, and the next
/// request succeeds on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_connection_is_evicted_by_ping_timeout_and_replaced() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let relay = RttRelay::start(server.addr(), Duration::ZERO).expect("relay starts");
    let pool = builder_for(&server)
        .http2_keep_alive_interval(Duration::from_millis(100))
        .http2_keep_alive_timeout(Duration::from_millis(200))
        .build()
        .expect("pool builds");
    let url = relay.url();
    let first = pool.acquire(&url).await.expect("acquire");
    let first_id = first.connection_id();
    drop(first);
    relay.set_black_hole(true);
    // Bounded wait for the eviction; the assertion is on the outcome.
    for _ in 0..200 {
        if pool.stats().open_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        pool.stats().open_connections(),
        0,
        "silent connection evicted"
    );
    relay.set_black_hole(false);
    let mut handle = pool.acquire(&url).await.expect("acquire after eviction");
    assert_ne!(handle.connection_id(), first_id);
    let response = handle
        .send(get("/after-black-hole"))
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(relay.accepted(), 2);
}

/// With a budget of 50 requests per connection, 2,000 requests from 16 tasks all succeed:
/// connections drain and close gracefully, none carries more than 50 requests, none leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budget_rotates_connections_without_failures() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().track_duplicates(true))
        .expect("server starts");
    let pool = builder_for(&server)
        .max_requests_per_connection(50)
        .build()
        .expect("pool builds");
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let pool = pool.clone();
            let url = server.url();
            tokio::spawn(async move {
                for i in 0..125 {
                    let response = pool.request(get(&format!("{url}/budget/{t}/{i}"))).await?;
                    body_len(response).await;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("every request succeeds");
    }
    let counters = server.counters();
    assert_eq!(counters.requests(), 2_000);
    assert_eq!(counters.duplicates(), 0);
    assert!(
        counters
            .max_requests_on_one_connection
            .load(Ordering::SeqCst)
            <= 50
    );
    assert!(counters.accepted() >= 2_000 / 50);
    let stats = pool.stats();
    assert_eq!(stats.requests_failed, 0);
    assert_eq!(stats.handles_outstanding, 0);
}

/// Connections older than their lifetime rotate out under steady load with no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_rotation_under_steady_load_loses_nothing() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(2)))
            .expect("server starts");
    let pool = builder_for(&server)
        .max_connection_lifetime(Duration::from_millis(100))
        .build()
        .expect("pool builds");
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let pool = pool.clone();
            let url = server.url();
            tokio::spawn(async move {
                for i in 0..150 {
                    let response = pool.request(get(&format!("{url}/life/{t}/{i}"))).await?;
                    body_len(response).await;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("every request succeeds");
    }
    assert_eq!(server.counters().requests(), 1_200);
    assert!(server.counters().accepted() >= 2, "connections rotated");
    assert_eq!(pool.stats().requests_failed, 0);
}

/// A prewarmed origin dials the replacement of an aging connection before it retires, and
/// keeps its warm minimum of one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarmed_origin_replaces_an_aging_connection() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server)
        .min_connections_per_origin(1)
        .max_connection_lifetime(Duration::from_millis(300))
        .build()
        .expect("pool builds");
    assert!(pool.prewarm_hosts(&[server.url()]).await[0].is_ok());
    let first_id = pool.stats().origins[0].connections[0].id;
    // Bounded wait for the rotation; the assertions are on where it settles.
    for _ in 0..200 {
        let stats = pool.stats();
        let ids: Vec<u64> = stats.origins[0].connections.iter().map(|c| c.id).collect();
        if !ids.contains(&first_id) && ids.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = pool.stats();
    let ids: Vec<u64> = stats.origins[0].connections.iter().map(|c| c.id).collect();
    assert!(
        !ids.contains(&first_id),
        "the aged connection retired: {ids:?}"
    );
    assert!(!ids.is_empty(), "the warm minimum is kept");
    assert!(server.counters().accepted() >= 2);
    let response = pool
        .request(get(&server.url_for("/after")))
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}
