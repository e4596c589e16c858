//! Warm acquire + release on an open HTTP/2 connection (1 task and 64 tasks), a warm request
//! round trip (GET, body read to the end), a contended case (64 tasks on 8 stream slots, so
//! every acquire waits for a slot another task frees), and heap bytes per held handle, against
//! the embedded HTTPS server on 127.0.0.1.
//!
//! `cargo bench --bench acquire`. The heap figure is printed before criterion's output; it
//! comes from a counting global allocator wrapped around the system allocator.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use https_pool::{ConnectionPoolManager, Origin};
use https_pool_testkit::{TestServer, TestServerConfig};

// The harness's counting allocator (std only), shared rather than copied.
#[path = "../test_binaries/harness/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    pool: ConnectionPoolManager,
    origin: Origin,
    server_url: String,
    _server: TestServer,
}

/// 64 tasks loop on acquire, yield once holding the slot, release: with 8 slots, 56 tasks
/// are always queued and each release hands its slot to a waiter.
fn contended(f: &Fixture, iters: u64) -> Duration {
    const TASKS: u64 = 64;
    f.runtime.block_on(async {
        let per_task = iters.div_ceil(TASKS);
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = f.pool.clone();
                let origin = f.origin.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        let handle = pool.acquire(&origin).await.expect("acquire");
                        tokio::task::yield_now().await;
                        drop(handle);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        start
            .elapsed()
            .mul_f64(iters as f64 / (per_task * TASKS) as f64)
    })
}

fn fixture(server_streams: u32) -> Fixture {
    let server =
        TestServer::start(TestServerConfig::default().max_concurrent_streams(server_streams))
            .expect("server starts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pool = ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(server.ca_pem())
        .min_connections_per_origin(1)
        .max_connections_per_origin(1)
        .build()
        .expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    runtime.block_on(async {
        let warm = pool.prewarm_hosts(&[server.url()]).await;
        assert!(warm[0].is_ok(), "{warm:?}");
        // Wait (bounded) for the peer's SETTINGS so every slot is available.
        for _ in 0..5_000 {
            let ready = pool
                .stats()
                .origins
                .iter()
                .any(|o| o.connections.iter().any(|c| c.peer_settings_received));
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    Fixture {
        runtime,
        pool,
        origin,
        server_url: server.url(),
        _server: server,
    }
}

/// Holds `n` handles at once and reports live heap bytes per handle.
fn heap_per_handle(f: &Fixture, n: usize) -> f64 {
    f.runtime.block_on(async {
        let mut held = Vec::with_capacity(n);
        let before = alloc::live_bytes();
        for _ in 0..n {
            held.push(f.pool.acquire(&f.origin).await.expect("acquire"));
        }
        let after = alloc::live_bytes();
        // The Vec's buffer was allocated before `before`: only the handles' own heap counts.
        drop(held);
        (after - before) as f64 / n as f64
    })
}

fn bench_acquire(c: &mut Criterion) {
    let f = fixture(250);
    for n in [100, 250] {
        let per_handle = heap_per_handle(&f, n);
        println!(
            "heap bytes per held handle ({n} held, 1 connection, server max streams 250): {per_handle:.1}"
        );
    }
    println!(
        "stack size of a StreamHandle: {} bytes",
        std::mem::size_of::<https_pool::StreamHandle>()
    );

    let mut group = c.benchmark_group("warm_acquire_release");
    group.bench_function("1_task", |b| {
        b.to_async(&f.runtime).iter(|| async {
            let handle = f.pool.acquire(&f.origin).await.expect("acquire");
            drop(handle);
        })
    });
    group.bench_function("64_tasks", |b| {
        b.to_async(&f.runtime).iter_custom(|iters| {
            let pool = f.pool.clone();
            let origin = f.origin.clone();
            async move {
                let per_task = iters.div_ceil(64);
                let start = Instant::now();
                let tasks: Vec<_> = (0..64)
                    .map(|_| {
                        let pool = pool.clone();
                        let origin = origin.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                let handle = pool.acquire(&origin).await.expect("acquire");
                                drop(handle);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                // Time per acquire+release across all tasks (throughput view).
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_task * 64) as f64)
            }
        })
    });
    group.finish();

    let url = format!("{}/bench", f.server_url);
    let mut group = c.benchmark_group("warm_request");
    group.bench_function("1_task", |b| {
        b.to_async(&f.runtime).iter(|| async {
            let request = http::Request::get(url.as_str())
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("request");
            let response = f.pool.request(request).await.expect("request");
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("body");
            assert_eq!(body.to_bytes().len(), 16);
        })
    });
    group.finish();

    let slots8 = fixture(8);
    let mut group = c.benchmark_group("contended_handoff");
    group.bench_function("64_tasks_8_slots", |b| {
        b.iter_custom(|iters| contended(&slots8, iters))
    });
    group.finish();

    let latency = f.pool.stats().acquire_latency;
    println!(
        "pool-recorded acquire latency over the run: count={} p50={:?} p99={:?} p99.9={:?} max={:?}",
        latency.count, latency.p50, latency.p99, latency.p999, latency.max
    );
}

criterion_group!(benches, bench_acquire);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
