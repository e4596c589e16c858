//! Selection policy, side by side: `Pack` (first fit, oldest first) vs `LeastLoaded`, with
//! real requests against the embedded HTTPS server on 127.0.0.1.
//!
//! - 16 concurrent GETs over 4 warm connections (server allows 100 streams each): does
//!   spreading over sockets pay at low concurrency?
//! - 1,024 concurrent GETs with the server limiting each connection to 8 streams, pool max 4
//!   connections: both policies must fill every connection; the queue does the rest.
//!
//! `cargo bench --bench policy`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use https_pool::{ConnectionPoolManager, SelectionPolicy};
use https_pool_testkit::{TestServer, TestServerConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn warm_pool(
    rt: &tokio::runtime::Runtime,
    server: &TestServer,
    policy: SelectionPolicy,
    connections: usize,
) -> ConnectionPoolManager {
    let pool = ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(server.ca_pem())
        .selection_policy(policy)
        .min_connections_per_origin(connections)
        .max_connections_per_origin(connections)
        .max_waiters_per_origin(4_096)
        .build()
        .expect("pool builds");
    rt.block_on(async {
        let warm = pool.prewarm_hosts(&[server.url()]).await;
        assert!(warm[0].is_ok(), "{warm:?}");
        for _ in 0..5_000 {
            let settled = pool
                .stats()
                .origins
                .iter()
                .flat_map(|o| &o.connections)
                .filter(|c| c.peer_settings_received)
                .count();
            if settled == connections {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    pool
}

async fn burst(pool: &ConnectionPoolManager, url: &Arc<str>, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let pool = pool.clone();
            let url = Arc::clone(url);
            tokio::spawn(async move {
                let request = http::Request::get(&*url)
                    .body(Empty::<bytes::Bytes>::new())
                    .expect("request");
                let response = pool.request(request).await.expect("request succeeds");
                let _ = response.into_body().collect().await;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

/// One group: `burst` concurrent GETs per iteration over 4 warm connections to a server that
/// allows `server_streams` streams each, once per policy.
fn bench_group(c: &mut Criterion, name: &str, server_streams: u32, burst_size: usize) {
    let policies = [
        ("pack", SelectionPolicy::Pack),
        ("least_loaded", SelectionPolicy::LeastLoaded),
    ];
    let mut group = c.benchmark_group(name);
    if burst_size > 100 {
        group.sample_size(10);
    }
    let server =
        TestServer::start(TestServerConfig::default().max_concurrent_streams(server_streams))
            .expect("server starts");
    let url: Arc<str> = Arc::from(server.url_for("/policy"));
    for (policy_name, policy) in policies {
        let rt = runtime();
        let pool = warm_pool(&rt, &server, policy, 4);
        group.bench_function(BenchmarkId::from_parameter(policy_name), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let pool = pool.clone();
                let url = Arc::clone(&url);
                async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        burst(&pool, &url, burst_size).await;
                    }
                    start.elapsed()
                }
            })
        });
        println!(
            "{name}/{policy_name}: pool sockets opened {}",
            pool.stats().connections_opened
        );
    }
    group.finish();
}

fn bench_policies(c: &mut Criterion) {
    bench_group(c, "policy_16_concurrent_4_connections", 100, 16);
    bench_group(c, "policy_1024_concurrent_server_max_streams_8", 8, 1_024);
}

criterion_group!(benches, bench_policies);
criterion_main!(benches);
