//! One large download through the pool over an emulated long path, for every flow-control
//! window setting worth comparing: the embedded HTTPS server on 127.0.0.1 behind the testkit's
//! RTT relay, one response body read to the end.
//!
//! Reports, per setting, the first download on a fresh connection (the connection is opened by
//! a small request first, so no handshake is timed; an adaptive window starts from its initial
//! size) and the median of the last three of six downloads in a row (an adaptive window has
//! grown by then; fixed windows: of three), in seconds and in round trips, so a change to the defaults or to the HTTP/2
//! engine can be compared with the one before it, and with the best setting the path allows.
//!
//! `cargo run --release --example large_download -- [rtt ms, default 40] [MiB, default 16]`

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use https_pool::{ConnectionPoolManager, PoolBuilder, PoolConfig};
use https_pool_testkit::{RttRelay, TestServer, TestServerConfig};

/// Downloads in a row per setting; the median is taken over the last `RUNS`.
const DOWNLOADS: usize = 6;
const RUNS: usize = 3;
const KIB: u32 = 1024;
const MIB: u32 = 1024 * 1024;

/// A window setting: (stream window, connection window, adaptive).
struct Setting {
    name: String,
    stream: u32,
    connection: u32,
    adaptive: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let rtt_ms: u64 = args.next().map_or(Ok(40), |a| a.parse())?;
    let mib: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let server = TestServer::start(TestServerConfig::default().body_bytes(mib << 20))?;
    let relay = RttRelay::start(server.addr(), Duration::from_millis(rtt_ms))?;
    let rtt = Duration::from_millis(rtt_ms).as_secs_f64();
    println!(
        "{mib} MiB GET over a {rtt_ms} ms RTT relay to the embedded HTTPS server on 127.0.0.1: \
         the first download on a fresh connection, and the median of downloads {} to {DOWNLOADS} \
         (fixed windows: of 1 to {RUNS})",
        DOWNLOADS - RUNS + 1
    );
    let defaults = PoolConfig::default();
    let settings = [
        Setting {
            name: "defaults".to_owned(),
            stream: defaults.http2_initial_stream_window_size,
            connection: defaults.http2_initial_connection_window_size,
            adaptive: defaults.http2_adaptive_window,
        },
        fixed(
            "seed: 32 KiB stream, 64 KiB conn, fixed",
            32 * KIB,
            64 * KIB,
        ),
        Setting {
            name: "adaptive (BDP) from 64 KiB".to_owned(),
            stream: 65_535,
            connection: 65_535,
            adaptive: true,
        },
        fixed(
            "2 MiB stream, 5 MiB conn, fixed (hyper's)",
            2 * MIB,
            5 * MIB,
        ),
        fixed("16 MiB stream, 16 MiB conn, fixed", 16 * MIB, 16 * MIB),
        fixed("64 MiB stream, 64 MiB conn, fixed", 64 * MIB, 64 * MIB),
    ];
    println!(
        "{:<44} {:>9} {:>10} {:>11} {:>10}",
        "windows", "first: s", "first: RTT", "median: RTT", "MiB/s"
    );
    for setting in settings {
        let pool = PoolBuilder::new()
            .tls_webpki_roots(false)
            .tls_extra_ca_pem(server.ca_pem())
            .max_connections_per_origin(1)
            .http2_initial_stream_window_size(setting.stream)
            .http2_initial_connection_window_size(setting.connection)
            .http2_adaptive_window(setting.adaptive)
            .build()?;
        let url = format!("{}/download", relay.url());
        // The connection is opened (and its SETTINGS exchanged) by a small request.
        small(&pool, &relay.url()).await?;
        // Fixed windows do not change from one download to the next: three are enough (the
        // seed's take 22 s each at 40 ms).
        let downloads = if setting.adaptive { DOWNLOADS } else { RUNS };
        let mut times = Vec::with_capacity(downloads);
        for _ in 0..downloads {
            let started = Instant::now();
            let bytes = download(&pool, &url).await?;
            times.push(started.elapsed());
            assert_eq!(bytes, mib << 20, "the whole body arrived");
        }
        let first = times[0].as_secs_f64();
        let mut last = times[downloads - RUNS..].to_vec();
        last.sort();
        let median = last[RUNS / 2].as_secs_f64();
        println!(
            "{:<44} {first:>9.3} {:>10.2} {:>11.2} {:>10.1}",
            setting.name,
            first / rtt,
            median / rtt,
            mib as f64 / median
        );
        pool.shutdown().await;
    }
    Ok(())
}

fn fixed(name: &str, stream: u32, connection: u32) -> Setting {
    Setting {
        name: name.to_owned(),
        stream,
        connection,
        adaptive: false,
    }
}

async fn small(
    pool: &ConnectionPoolManager,
    base: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut request = http::Request::get(format!("{base}/open")).body(Empty::<Bytes>::new())?;
    request
        .headers_mut()
        .insert("x-body-bytes", http::HeaderValue::from_static("16"));
    pool.request(request).await?.into_body().collect().await?;
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
