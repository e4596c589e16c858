//! Demand-driven warm-up (`demand_window`): after a burst the pool keeps the connections the
//! burst needed, above the idle cap, dials back up to them when one is lost, and lets them
//! close once the window has passed. Without it the idle cap closes them at once.

mod support;

use std::time::Duration;

use https_pool::ConnectionPoolManager;
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};

const STREAMS: u32 = 8;
const BURST: usize = 64;

fn server() -> TestServer {
    TestServer::start(
        TestServerConfig::default()
            .max_concurrent_streams(STREAMS)
            .response_delay(Duration::from_millis(50))
            .settings_injection(false),
    )
    .expect("server")
}

fn pool(server: &TestServer, window: Option<Duration>) -> ConnectionPoolManager {
    builder_for(server)
        .max_connections_per_origin(16)
        .max_idle_connections_per_origin(1)
        .idle_timeout(Duration::from_millis(200))
        .demand_window(window)
        .build()
        .expect("pool")
}

/// `BURST` concurrent requests; all succeed.
async fn burst(pool: &ConnectionPoolManager, server: &TestServer) {
    let tasks: Vec<_> = (0..BURST)
        .map(|i| {
            let pool = pool.clone();
            let url = server.url_for(&format!("/burst/{i}"));
            tokio::spawn(async move {
                let response = pool.request(get(&url)).await.expect("request");
                body_len(response).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
}

/// Waits (bounded, 10 s) until the pool has `want` open connections; returns the last count.
async fn open_settles(pool: &ConnectionPoolManager, want: usize) -> usize {
    let mut open = pool.stats().open_connections();
    for _ in 0..1_000 {
        if open == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        open = pool.stats().open_connections();
    }
    open
}

/// The burst needed 64 / 8 = 8 connections: with the option they stay open through several
/// idle sweeps, and a lost one is dialed again; without it the idle cap leaves one.
#[tokio::test]
async fn the_connections_a_burst_needed_stay_warm() {
    trace_init();
    let server = server();
    let warm = pool(&server, Some(Duration::from_secs(60)));
    warm.request(get(&server.url()))
        .await
        .expect("first request"); // learns the limit
    burst(&warm, &server).await;
    let needed = BURST / STREAMS as usize;
    assert_eq!(warm.stats().origins[0].recent_peak_demand, BURST);
    // A dozen sweeps (every 50 ms at this idle timeout) later, all are still open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(warm.stats().open_connections(), needed);

    // One is lost: the tick dials a replacement.
    let opened = warm.stats().connections_opened;
    assert_eq!(server.kill_connections(1), 1);
    for _ in 0..1_000 {
        if warm.stats().connections_opened > opened {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(warm.stats().connections_opened, opened + 1);
    assert_eq!(open_settles(&warm, needed).await, needed);

    let cold = pool(&server, None);
    cold.request(get(&server.url()))
        .await
        .expect("first request");
    burst(&cold, &server).await;
    assert_eq!(open_settles(&cold, 1).await, 1);
    assert_eq!(cold.stats().origins[0].recent_peak_demand, 0);
}

/// A burst the open connections absorb without anyone waiting counts as demand too: two
/// seconds' window, one burst that queued at t = 0, one that did not at t ≈ 1.2 s. At
/// t ≈ 2.6 s the first has left the window and only the second keeps the connections.
#[tokio::test]
async fn a_burst_absorbed_without_waiting_still_counts() {
    trace_init();
    let server = server();
    let pool = pool(&server, Some(Duration::from_secs(2)));
    let origin = server.url();
    let hold_all = || async {
        let mut held = Vec::new();
        for _ in 0..BURST {
            held.push(pool.acquire(origin.as_str()));
        }
        let mut handles = Vec::new();
        for acquiring in held {
            handles.push(acquiring.await.expect("acquire"));
        }
        handles
    };
    pool.request(get(&server.url()))
        .await
        .expect("first request"); // learns the limit
    let started = tokio::time::Instant::now();
    let queued = hold_all().await;
    let needed = BURST / STREAMS as usize;
    assert_eq!(pool.stats().open_connections(), needed);
    drop(queued);

    tokio::time::sleep_until(started + Duration::from_millis(1_200)).await;
    let waiting_before = pool.stats().time_in_queue.count;
    let absorbed = hold_all().await;
    assert_eq!(
        pool.stats().time_in_queue.count,
        waiting_before,
        "nobody waited"
    );
    drop(absorbed);

    tokio::time::sleep_until(started + Duration::from_millis(2_600)).await;
    assert_eq!(pool.stats().open_connections(), needed);
}

/// Once the window has passed with no burst, the extra connections close per idle_timeout.
#[tokio::test]
async fn they_close_once_the_window_has_passed() {
    trace_init();
    let server = server();
    let pool = pool(&server, Some(Duration::from_millis(500)));
    pool.request(get(&server.url()))
        .await
        .expect("first request");
    burst(&pool, &server).await;
    assert!(pool.stats().open_connections() > 1);
    assert_eq!(open_settles(&pool, 0).await, 0);
}
