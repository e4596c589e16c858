//! Injected faults against the embedded server: GOAWAY rotation under load, abrupt
//! connection kills, a silent (black-holed) path, a server restart on the same port, a peer
//! lowering SETTINGS_MAX_CONCURRENT_STREAMS mid-connection, and graceful rotation. Counts
//! only; no timing assertions.
//!
//! Every scenario ends with the same leak check: no handle, stream or waiter left, and after
//! `shutdown()` no socket of this process still connected to the scenario's port. Each prints
//! one row of the fault table (scenario | requests | succeeded | retried | failed |
//! connections opened | client sockets before | at the end of the load | after shutdown):
//! `cargo test --all-features --test faults -- --nocapture --test-threads=1 | grep '^FAULT'`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use https_pool::{ConnectionPoolManager, Error, Origin};
use https_pool_testkit::{RttRelay, TestServer, TestServerConfig};
use support::{
    BudgetWatch, body_len, builder_for, get, run_load, sockets_settle, sockets_to, trace_init,
};

/// What one scenario did, for the leak check and the table row.
struct Outcome {
    sent: u64,
    succeeded: u64,
    failed: u64,
    /// Client sockets to the scenario's port before the pool was built.
    sockets_before: Option<usize>,
}

/// Checks nothing is left in use, shuts the pool down, checks every socket to `port` closed,
/// and prints the scenario's row of the fault table.
async fn finish(name: &str, pool: ConnectionPoolManager, port: u16, outcome: Outcome) {
    let stats = pool.stats();
    assert_eq!(stats.handles_outstanding, 0, "{name}: handles left");
    assert_eq!(stats.active_streams(), 0, "{name}: streams left");
    assert_eq!(stats.waiters(), 0, "{name}: waiters left");
    let sockets_open = sockets_to(port);
    pool.shutdown().await;
    drop(pool);
    let sockets_after = sockets_settle(port, 0).await;
    assert_eq!(
        sockets_after.unwrap_or(0),
        0,
        "{name}: sockets left open after shutdown"
    );
    let show = |n: Option<usize>| n.map_or_else(|| "n/a".to_owned(), |n| n.to_string());
    println!(
        // Leading newline: the test harness prints "test … ..." on the same line.
        "\nFAULT | {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
        outcome.sent,
        outcome.succeeded,
        stats.requests_retried,
        outcome.failed,
        stats.connections_opened,
        show(outcome.sockets_before),
        show(sockets_open),
        show(sockets_after),
    );
}

/// The server sends GOAWAY after every 50 requests on a connection; 20,000 requests from 64
/// tasks. Nothing fails: requests the GOAWAY provably cut off are retried (and counted), the
/// server never processed any request twice, and the pool learns the server's request budget
/// from the rotations (after which it rotates first, so the server sends few GOAWAYs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_every_50_requests_fails_nothing_duplicates_nothing_and_teaches_the_budget() {
    trace_init();
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 20_000 / TASKS + 1;
    let server = TestServer::start(
        TestServerConfig::default()
            .goaway_after(50)
            .track_duplicates(true),
    )
    .expect("server starts");
    let origin: Origin = server.url().parse().expect("origin");
    let sockets_before = sockets_to(server.port());
    let pool = builder_for(&server).build().expect("pool builds");
    let watch = BudgetWatch::start(&pool, &origin);
    let load = run_load(
        &pool,
        &server.url(),
        "goaway",
        TASKS,
        PER_TASK,
        Some(&watch),
    )
    .await;
    drop(watch);
    let failed = load.failures.len() as u64;
    assert_eq!(failed, 0, "failures: {:?}", load.failures.first());
    assert_eq!(load.succeeded, TASKS * PER_TASK);
    assert_eq!(
        server.counters().duplicates(),
        0,
        "no request processed twice"
    );
    // Every success was processed once; a failed request was processed at most once.
    let processed = server.counters().requests();
    assert!(processed >= load.succeeded && processed <= load.succeeded + failed);
    // Two rotations teach the budget; from then on the pool rotates first, so the server
    // has few GOAWAYs to send while connections still turn over at its budget.
    let goaways = server.counters().goaways_sent.load(Ordering::SeqCst);
    assert!(goaways >= 2, "{goaways} GOAWAYs");
    let stats = pool.stats();
    assert!(
        stats.connections_opened >= TASKS * PER_TASK / 50,
        "{} connections for {} requests at a budget of 50",
        stats.connections_opened,
        TASKS * PER_TASK
    );
    assert_eq!(stats.requests_failed, failed);
    let budget = stats
        .origin(&origin)
        .and_then(|o| o.learned_request_budget)
        .expect("the rotations taught the pool the server's budget");
    let outcome = Outcome {
        sent: TASKS * PER_TASK,
        succeeded: load.succeeded,
        failed,
        sockets_before,
    };
    let name = format!("GOAWAY every 50 requests (learned budget {budget})");
    finish(&name, pool, server.port(), outcome).await;
}

/// While the server abruptly kills random connections, acquire/send/drop at full speed
/// never leaks a slot, every failure is a typed connection or request error (an acquire's, a
/// failed dial's), and the server never handled more requests than were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_under_connection_kills_leaks_nothing_and_fails_only_with_typed_errors() {
    trace_init();
    let server = Arc::new(
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(2)))
            .expect("server starts"),
    );
    let sockets_before = sockets_to(server.port());
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
                            // A connection cut before it served anything was a failed dial
                            // (DESIGN: healthy only once it served): waiters with nothing else
                            // fail with that dial's error, or the backoff's after two.
                            assert!(e.is_connect(), "acquire failed with {e:?}");
                            failures.push(e);
                            continue;
                        }
                    };
                    sent.fetch_add(1, Ordering::SeqCst);
                    match handle.send(get(&format!("/churn/{i}"))).await {
                        Ok(r) => {
                            let _ = r.into_body();
                        }
                        Err(e) => {
                            // On a leased connection: the connection or the stream failed.
                            assert!(
                                matches!(e, Error::ConnectionClosed { .. } | Error::Request { .. }),
                                "send failed with {e:?}"
                            );
                            failures.push(e);
                        }
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
    assert!(server.counters().requests() <= sent.load(Ordering::SeqCst));
    let stats = pool.stats();
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.waiters(), 0);
    // Attempts, acquire included: a request that found no connection also failed.
    let attempted = 32 * 150;
    let outcome = Outcome {
        sent: attempted,
        succeeded: attempted - failures.len() as u64,
        failed: failures.len() as u64,
        sockets_before,
    };
    finish(
        &format!("abrupt kills ({killed} connections cut)"),
        pool,
        server.port(),
        outcome,
    )
    .await;
}

/// A connection whose path goes silent is evicted by the HTTP/2 PING timeout, and the next
/// request succeeds on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_connection_is_evicted_by_ping_timeout_and_replaced() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let relay = RttRelay::start(server.addr(), Duration::ZERO).expect("relay starts");
    let sockets_before = sockets_to(relay.addr().port());
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
    body_len(response).await;
    drop(handle);
    assert_eq!(relay.accepted(), 2);
    let outcome = Outcome {
        sent: 1,
        succeeded: 1,
        failed: 0,
        sockets_before,
    };
    finish(
        "black hole (PING timeout eviction)",
        pool,
        relay.addr().port(),
        outcome,
    )
    .await;
}

/// With a budget of 50 requests per connection, 2,000 requests from 16 tasks all succeed:
/// connections drain and close gracefully, none carries more than 50 requests, none leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budget_rotates_connections_without_failures() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().track_duplicates(true))
        .expect("server starts");
    let sockets_before = sockets_to(server.port());
    let pool = builder_for(&server)
        .max_requests_per_connection(50)
        .build()
        .expect("pool builds");
    let load = run_load(&pool, &server.url(), "budget", 16, 125, None).await;
    assert!(load.failures.is_empty(), "{:?}", load.failures.first());
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
    assert_eq!(pool.stats().requests_failed, 0);
    let outcome = Outcome {
        sent: 2_000,
        succeeded: load.succeeded,
        failed: 0,
        sockets_before,
    };
    finish(
        "request budget 50 per connection",
        pool,
        server.port(),
        outcome,
    )
    .await;
}

/// Connections older than their lifetime rotate out under steady load with no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_rotation_under_steady_load_loses_nothing() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(2)))
            .expect("server starts");
    let sockets_before = sockets_to(server.port());
    let pool = builder_for(&server)
        .max_connection_lifetime(Duration::from_millis(100))
        .build()
        .expect("pool builds");
    let load = run_load(&pool, &server.url(), "life", 8, 150, None).await;
    assert!(load.failures.is_empty(), "{:?}", load.failures.first());
    assert_eq!(server.counters().requests(), 1_200);
    assert!(server.counters().accepted() >= 2, "connections rotated");
    assert_eq!(pool.stats().requests_failed, 0);
    let outcome = Outcome {
        sent: 1_200,
        succeeded: load.succeeded,
        failed: 0,
        sockets_before,
    };
    finish("lifetime 100 ms", pool, server.port(), outcome).await;
}

/// A prewarmed origin dials the replacement of an aging connection before it retires, and
/// keeps its warm minimum of one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarmed_origin_replaces_an_aging_connection() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let sockets_before = sockets_to(server.port());
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
    body_len(response).await;
    let outcome = Outcome {
        sent: 1,
        succeeded: 1,
        failed: 0,
        sockets_before,
    };
    finish(
        "prewarmed replacement before retirement",
        pool,
        server.port(),
        outcome,
    )
    .await;
}

/// The server restarts on the same port under load (every connection cut without GOAWAY, a
/// moment of refused connects): requests in flight fail with a typed error or succeed; once
/// the pool has seen the old connections close, every request succeeds; nothing hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_load_recovers_with_typed_errors_only() {
    trace_init();
    use std::sync::atomic::AtomicBool;
    const WORKERS: u64 = 16;
    let mut server =
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(1)))
            .expect("server starts");
    let port = server.port();
    let url = server.url();
    let sockets_before = sockets_to(port);
    let pool = builder_for(&server)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .expect("pool builds");
    let after_restart = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let pool = pool.clone();
            let url = url.clone();
            let after_restart = Arc::clone(&after_restart);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                // (phase-after-restart, outcome) per request.
                let mut outcomes: Vec<(bool, Result<(), Error>)> = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let after = after_restart.load(Ordering::SeqCst);
                    let result = match pool.request(get(&format!("{url}/restart/{w}/{i}"))).await {
                        Ok(response) => {
                            body_len(response).await;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    };
                    outcomes.push((after, result));
                    i += 1;
                    if i >= 5_000 {
                        break; // bound, whatever happens
                    }
                }
                outcomes
            })
        })
        .collect();

    // Let load build up, restart, then wait (bounded) until the pool has seen every
    // connection of the old server close.
    for _ in 0..500 {
        if server.counters().requests() >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let opened_before = pool.stats().connections_opened;
    server.restart().expect("server restarts on its port");
    for _ in 0..500 {
        if pool.stats().connections_closed >= opened_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        pool.stats().connections_closed >= opened_before,
        "the pool noticed the old connections close"
    );
    let served_at_mark = server.counters().requests();
    after_restart.store(true, Ordering::SeqCst);
    for _ in 0..500 {
        if server.counters().requests() >= served_at_mark + 1_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::SeqCst);

    let (mut sent, mut succeeded, mut failed, mut after_sent) = (0u64, 0u64, 0u64, 0u64);
    for worker in workers {
        for (after, result) in worker.await.expect("worker ran") {
            sent += 1;
            after_sent += u64::from(after);
            match result {
                Ok(()) => succeeded += 1,
                Err(e) => {
                    failed += 1;
                    assert!(!after, "a request started after the restart failed: {e:?}");
                    // In flight on a cut connection, or waiting for a dial made while the
                    // port refused or reset connections: that dial's typed error is what
                    // `acquire` documents for the second case.
                    assert!(
                        matches!(e, Error::ConnectionClosed { .. } | Error::Request { .. })
                            || e.is_connect(),
                        "untyped or unexpected failure: {e:?}"
                    );
                }
            }
        }
    }
    assert!(after_sent >= 1, "requests ran after the restart");
    let outcome = Outcome {
        sent,
        succeeded,
        failed,
        sockets_before,
    };
    finish("server restart on the same port", pool, port, outcome).await;
}

/// The peer lowers SETTINGS_MAX_CONCURRENT_STREAMS from 100 to 2 on a live connection: the
/// pool applies the new limit to that connection (never more than 2 leases on it) and opens
/// more connections for the rest of the load, which all succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_lowering_max_concurrent_streams_mid_connection_is_honoured() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(100)
            .response_delay(Duration::from_millis(20))
            .settings_injection(true),
    )
    .expect("server starts");
    let port = server.port();
    let sockets_before = sockets_to(port);
    let pool = builder_for(&server)
        .max_connections_per_origin(8)
        .build()
        .expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let response = pool
        .request(get(&server.url_for("/warm")))
        .await
        .expect("warm-up request");
    body_len(response).await;
    let first = pool.stats().origin(&origin).expect("origin").connections[0].clone();
    assert_eq!(first.max_streams, 100);

    assert_eq!(server.send_max_concurrent_streams(2), 1);
    // Bounded wait until the client acknowledged the frame and the pool applied it.
    for _ in 0..500 {
        let applied = pool
            .stats()
            .origin(&origin)
            .and_then(|o| o.connections.iter().find(|c| c.id == first.id).cloned())
            .is_some_and(|c| c.max_streams == 2);
        if server.settings_acked() == 1 && applied {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.settings_acked(),
        1,
        "the client acknowledged the new SETTINGS"
    );

    // 40 concurrent requests: the first connection takes at most 2 of them.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let pool = pool.clone();
        let origin = origin.clone();
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut most_on_first = 0;
            while sampling.load(Ordering::SeqCst) {
                if let Some(c) = pool
                    .stats()
                    .origin(&origin)
                    .and_then(|o| o.connections.iter().find(|c| c.id == first.id).cloned())
                {
                    assert_eq!(c.max_streams, 2, "the lowered limit stays applied");
                    most_on_first = most_on_first.max(c.active_streams);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            most_on_first
        })
    };
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let pool = pool.clone();
            let url = server.url_for(&format!("/lowered/{i}"));
            tokio::spawn(async move {
                let response = pool.request(get(&url)).await?;
                Ok::<_, Error>(body_len(response).await)
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("every request succeeds");
    }
    sampling.store(false, Ordering::SeqCst);
    let most_on_first = sampler.await.expect("sampler");
    assert!(
        most_on_first <= 2,
        "at most 2 leases on the lowered connection"
    );
    let stats = pool.stats();
    assert!(
        stats.connections_opened >= 2,
        "more connections carried the load"
    );
    let outcome = Outcome {
        sent: 41,
        succeeded: 41,
        failed: 0,
        sockets_before,
    };
    finish(
        "SETTINGS max streams 100 -> 2 mid-connection",
        pool,
        port,
        outcome,
    )
    .await;
}

/// The retry path on its own: with budget learning off, the server rotates every connection
/// after 50 requests for the whole run, 10 runs in a row. With h2 driven directly the signals
/// are exact (`retry.rs`): a request whose stream never opened, or which the server's GOAWAY
/// failed above its last-stream-id, is retried on another connection; the rest complete. So
/// every one of 20,032 requests from 64 tasks succeeds, and the server never processes a
/// request twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_every_50_requests_with_learning_off_fails_nothing_and_duplicates_nothing() {
    trace_init();
    const RUNS: usize = 10;
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 20_000 / TASKS + 1;
    for run in 0..RUNS {
        let server = TestServer::start(
            TestServerConfig::default()
                .goaway_after(50)
                .track_duplicates(true),
        )
        .expect("server starts");
        let sockets_before = sockets_to(server.port());
        let pool = builder_for(&server)
            .learn_request_budget(false)
            .build()
            .expect("pool builds");
        let load = run_load(&pool, &server.url(), "retry", TASKS, PER_TASK, None).await;
        let failures: Vec<String> = load
            .failures
            .iter()
            .map(|(_, e)| format!("{e:?}"))
            .collect();
        assert!(
            failures.is_empty(),
            "run {run}: {} failed: {failures:?}",
            failures.len()
        );
        assert_eq!(load.succeeded, TASKS * PER_TASK, "run {run}");
        assert_eq!(
            server.counters().duplicates(),
            0,
            "run {run}: no request processed twice"
        );
        assert!(
            pool.stats().requests_retried > 0,
            "run {run}: GOAWAY-failed requests were retried"
        );
        assert!(
            server.counters().goaways_sent.load(Ordering::SeqCst) > 100,
            "run {run}: rotations happened"
        );
        let outcome = Outcome {
            sent: TASKS * PER_TASK,
            succeeded: load.succeeded,
            failed: load.failures.len() as u64,
            sockets_before,
        };
        finish(
            &format!("GOAWAY every 50 requests, learning off, run {}", run + 1),
            pool,
            server.port(),
            outcome,
        )
        .await;
    }
}
