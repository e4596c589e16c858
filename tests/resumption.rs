//! TLS session resumption: a replacement connection resumes the session of the one it
//! replaces (TLS 1.3 and TLS 1.2), the counts say so per origin and per connection, and a
//! session cache of size 0 turns it off.

mod support;

use https_pool::ConnectionPoolManager;
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};

/// Sends `n` requests one after another, each on a new connection (the pool rotates after
/// every request), and returns the pool.
async fn rotate(
    server: &TestServer,
    pool: ConnectionPoolManager,
    n: usize,
) -> ConnectionPoolManager {
    for i in 0..n {
        let response = pool
            .request(get(&server.url_for(&format!("/{i}"))))
            .await
            .expect("request");
        // Read to the end: TLS 1.3 session tickets arrive after the handshake, with data.
        body_len(response).await;
    }
    pool
}

async fn handshakes(config: TestServerConfig, cache: usize) -> (u64, u64, u64) {
    trace_init();
    let server = TestServer::start(config).expect("server");
    let pool = builder_for(&server)
        .max_requests_per_connection(1)
        .tls_session_cache_size(cache)
        .build()
        .expect("pool");
    let pool = rotate(&server, pool, 4).await;
    let stats = pool.stats();
    let origin = &stats.origins[0];
    (
        origin.tls_full_handshakes,
        origin.tls_resumed_handshakes,
        server.counters().accepted(),
    )
}

/// TLS 1.3: one full handshake, then every replacement resumes.
#[tokio::test]
async fn replacements_resume_over_tls13() {
    let (full, resumed, accepted) = handshakes(TestServerConfig::default(), 256).await;
    assert_eq!(accepted, 4);
    assert_eq!((full, resumed), (1, 3));
}

/// TLS 1.2 (session IDs): the same.
#[tokio::test]
async fn replacements_resume_over_tls12() {
    let config = TestServerConfig::default().tls12_only(true);
    let (full, resumed, accepted) = handshakes(config, 256).await;
    assert_eq!(accepted, 4);
    assert_eq!((full, resumed), (1, 3));
}

/// No session cache: every handshake is full.
#[tokio::test]
async fn a_cache_of_zero_turns_resumption_off() {
    let (full, resumed, accepted) = handshakes(TestServerConfig::default(), 0).await;
    assert_eq!(accepted, 4);
    assert_eq!((full, resumed), (4, 0));
}

/// The connection's own stats say whether its handshake resumed, and the Prometheus text
/// carries the per-origin counts.
#[tokio::test]
async fn connection_stats_and_prometheus_show_the_kind() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server");
    let pool = builder_for(&server)
        .max_requests_per_connection(1)
        .build()
        .expect("pool");
    let origin = server.url();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        // Held while the stats are read: the connection is still listed.
        let mut handle = pool.acquire(origin.as_str()).await.expect("acquire");
        kinds.push(pool.stats().origins[0].connections[0].tls_resumed);
        let response = handle.send(get("/")).await.expect("request");
        body_len(response).await;
    }
    assert_eq!(kinds, [Some(false), Some(true)]);
    let text = pool.stats().to_prometheus();
    for (kind, n) in [("full", 1), ("resumed", 1)] {
        let line =
            format!("https_pool_tls_handshakes_total{{origin=\"{origin}\",kind=\"{kind}\"}} {n}\n");
        assert!(text.contains(&line), "{text}");
    }
}
