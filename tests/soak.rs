//! Soak: steady load with periodic faults for a bounded time, then leak checks. Ignored by
//! default; `scripts/soak.sh [SECONDS]` runs it (default 300 s) and prints the figures.
//! Everything is on 127.0.0.1.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use https_pool::Error;
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{builder_for, get, trace_init};

/// Open file descriptors of this process (Linux), or `None` elsewhere.
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// Resident set size in KiB (Linux), or `None` elsewhere.
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// 32 workers send requests for `HTTPS_POOL_SOAK_SECS` seconds while the server sends GOAWAY
/// every 500 requests per connection and a connection is killed every 2 s. Afterwards no
/// handle, stream or waiter is left, and after shutdown the process's fd count is back to
/// where it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long-running; run it with scripts/soak.sh"]
async fn soak_steady_load_with_periodic_faults_leaks_nothing() {
    trace_init();
    let secs: u64 = std::env::var("HTTPS_POOL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let fds_before = open_fds();
    let rss_start = rss_kib();
    let server = Arc::new(
        TestServer::start(TestServerConfig::default().goaway_after(500)).expect("server starts"),
    );
    let pool = builder_for(&server).build().expect("pool builds");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let killer = {
        let server = Arc::clone(&server);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut killed = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                killed += server.kill_connections(1);
            }
            killed
        })
    };
    let sampler = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut rss_max = 0;
            while !stop.load(Ordering::Relaxed) {
                rss_max = rss_max.max(rss_kib().unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            rss_max
        })
    };
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let pool = pool.clone();
            let url = server.url();
            let (ok, failed) = (Arc::clone(&ok), Arc::clone(&failed));
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    match pool.request(get(&format!("{url}/soak/{w}/{i}"))).await {
                        // A kill can cut a body after its head: that is a failed request too.
                        Ok(r) => match r.into_body().collect().await {
                            Ok(_) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        Err(Error::ConnectionClosed { .. } | Error::Request { .. }) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("unexpected error: {e:?}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.await.expect("killer");
    let rss_max = sampler.await.expect("sampler");
    let rss_end = rss_kib();
    let stats = pool.stats();
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.waiters(), 0);

    pool.shutdown().await;
    drop(pool);
    drop(server);
    // Bounded wait for sockets to finish closing.
    let mut fds_after = open_fds();
    for _ in 0..100 {
        if fds_after <= fds_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fds_after = open_fds();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("soak: {secs} s, 32 workers, GOAWAY every 500 requests, a kill every 2 s");
    println!(
        "requests ok {ok}, failed {failed} ({:.3}%), retried {}, connections opened {} closed {}, kills {killed}",
        failed as f64 / (ok + failed).max(1) as f64 * 100.0,
        stats.requests_retried,
        stats.connections_opened,
        stats.connections_closed,
    );
    println!(
        "RSS KiB start {:?} max {rss_max} end {:?}; open fds before {:?} after {:?}",
        rss_start, rss_end, fds_before, fds_after
    );
    assert!(
        fds_after <= fds_before,
        "fds leaked: {fds_before:?} -> {fds_after:?}"
    );
}
