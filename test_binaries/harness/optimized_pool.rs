//! The short demo behind `test_optimized_pool` (and the `optimized_pool` example): prewarm a
//! pool, hold 100 stream handles, and print the memory they cost and the acquisition latency
//! percentiles — in a few seconds, against the embedded HTTPS server on 127.0.0.1.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use https_pool::{ConnectionPoolManager, LatencySummary, Origin};
use https_pool_testkit::{TestServer, TestServerConfig};

use crate::alloc::live_bytes;
use crate::rss_bytes;

const HANDLES: usize = 100;

/// Runs the demo, printing what it measures. The binary calling it must install
/// [`Counting`](crate::alloc::Counting) as its global allocator, or the heap figure reads 0.
pub fn run() -> Result<()> {
    let server = TestServer::start(TestServerConfig::default()).context("starting the server")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let pool = ConnectionPoolManager::builder()
            .tls_extra_ca_pem(server.ca_pem())
            .min_connections_per_origin(1)
            .build()?;
        let warm = pool.prewarm_hosts(&[server.url()]).await;
        let warmed = match &warm[0].result {
            Ok(w) => w.clone(),
            Err(e) => bail!("prewarm failed: {e}"),
        };
        println!(
            "prewarmed {} in {:?} ({} connection, {:?}; TCP {:?}, TLS {:?})",
            warmed.origin,
            warmed.elapsed,
            warmed.connections,
            warmed.protocol,
            warmed.tcp_connect.unwrap_or_default(),
            warmed.tls_handshake.unwrap_or_default()
        );
        let origin: Origin = server.url().parse()?;
        // Let the peer's SETTINGS arrive so every slot is usable.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..1_000 {
            drop(pool.acquire(&origin).await?);
        }

        // The Vec's buffer is allocated first, so only the handles' own heap is measured.
        let mut held = Vec::with_capacity(HANDLES);
        let heap0 = live_bytes();
        let rss0 = rss_bytes();
        let started = Instant::now();
        for _ in 0..HANDLES {
            held.push(pool.acquire(&origin).await?);
        }
        let took = started.elapsed();
        let heap = live_bytes() - heap0;
        let rss = rss_bytes().zip(rss0).map(|(a, b)| a as i64 - b as i64);
        let stats = pool.stats();
        println!(
            "holding {HANDLES} handles on {} connection(s): heap +{heap} B ({:.1} B/handle), \
             RSS {}, acquired in {took:?}",
            stats.open_connections(),
            heap as f64 / HANDLES as f64,
            rss.map_or("n/a".to_owned(), |r| format!("{r:+} B"))
        );
        drop(held);
        for _ in 0..10_000 {
            drop(pool.acquire(&origin).await?);
        }
        print_latency(
            "acquire latency (pool-recorded, all acquires)",
            &pool.stats().acquire_latency,
        );
        println!(
            "sockets opened: {} (server accepted {})",
            pool.stats().connections_opened,
            server.counters().accepted()
        );
        pool.shutdown().await;
        Ok(())
    })
}

fn print_latency(label: &str, s: &LatencySummary) {
    println!(
        "{label}: n={} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
        s.count, s.p50, s.p90, s.p99, s.p999, s.max
    );
}
