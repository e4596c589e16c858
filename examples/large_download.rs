//! One large download through the pool over an emulated long path: the embedded HTTPS server
//! on 127.0.0.1 behind the testkit's RTT relay, one 16 MiB response body read to the end.
//!
//! Reports the median of three downloads (after one warm-up request) for the pool's default
//! flow-control windows and for the adaptive (BDP) window, so a change to the HTTP/2 engine can
//! be compared with the one before it on the same machine.
//!
//! `cargo run --release --example large_download -- [rtt ms, default 40] [MiB, default 16]`

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use https_pool::ConnectionPoolManager;
use https_pool_testkit::{RttRelay, TestServer, TestServerConfig};

const RUNS: usize = 3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let rtt_ms: u64 = args.next().map_or(Ok(40), |a| a.parse())?;
    let mib: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let server = TestServer::start(TestServerConfig::default().body_bytes(mib << 20))?;
    let relay = RttRelay::start(server.addr(), Duration::from_millis(rtt_ms))?;
    println!(
        "{mib} MiB GET over a {rtt_ms} ms RTT relay to the embedded HTTPS server on 127.0.0.1; \
         median of {RUNS}"
    );
    println!("{:<40} {:>10} {:>10}", "windows", "seconds", "MiB/s");
    for (name, adaptive) in [
        ("default (32 KiB stream, 64 KiB conn)", false),
        ("adaptive (BDP)", true),
    ] {
        let pool = ConnectionPoolManager::builder()
            .tls_webpki_roots(false)
            .tls_extra_ca_pem(server.ca_pem())
            .max_connections_per_origin(1)
            .http2_adaptive_window(adaptive)
            .build()?;
        let url = format!("{}/download", relay.url());
        // Warm-up: the connection is open and its SETTINGS exchanged before timing.
        download(&pool, &url).await?;
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let bytes = download(&pool, &url).await?;
            times.push(started.elapsed());
            assert_eq!(bytes, mib << 20, "the whole body arrived");
        }
        times.sort();
        let median = times[RUNS / 2].as_secs_f64();
        println!("{name:<40} {median:>10.3} {:>10.1}", mib as f64 / median);
        pool.shutdown().await;
    }
    Ok(())
}

async fn download(
    pool: &ConnectionPoolManager,
    url: &str,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let request = http::Request::get(url).body(Empty::<Bytes>::new())?;
    let response = pool.request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(body.len())
}
