//! The same load through https-pool and what a service would use instead, side by side in
//! one run: hyper-util's legacy `Client` (shared), reqwest (shared), one hyper-util `Client`
//! per worker, raw `hyper::client::conn::http2` on K round-robin connections, and h2load (the
//! C reference) where it is installed.
//!
//! Every worker fires its first request at the same moment (a cold burst, as services do at
//! start), then sends its share back to back. `sockets_opened` counts every connection the
//! server accepted during the row (embedded server), not only those open at the end.
//!
//! `cargo run --release --bin pool_bench -- --clients 1024 --requests 200000 --server-max-streams 8`

#[path = "harness/mod.rs"]
mod harness;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use https_pool::ConnectionPoolManager;
use https_pool::testkit::{TestServer, TestServerConfig};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::sync::Barrier;

#[global_allocator]
static ALLOCATOR: harness::alloc::Counting = harness::alloc::Counting;

/// Side-by-side HTTP/2 client benchmark against the embedded server or a URL.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Concurrent workers.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Total requests per client kind (split evenly over the workers).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Target URL (default: start the embedded HTTPS server on 127.0.0.1).
    #[arg(long)]
    url: Option<String>,
    /// Extra trusted CA (PEM file) for --url.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// The embedded server's SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, default_value_t = 250)]
    server_max_streams: u32,
    /// The embedded server's response body size.
    #[arg(long, default_value_t = 16)]
    body_bytes: usize,
    /// Connections for https-pool (its maximum) and for the raw hyper row.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Print the JSON report to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    client: String,
    req_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    sockets_opened: Option<u64>,
    errors: u64,
    peak_rss_kb: Option<u64>,
    note: String,
}

#[derive(Debug, Serialize)]
struct Config {
    clients: usize,
    requests: usize,
    target: String,
    server_max_streams: Option<u32>,
    body_bytes: Option<usize>,
    connections: usize,
    machine: harness::machine::MachineInfo,
}

struct Target {
    url: String,
    ca_pem: Option<String>,
    server: Option<TestServer>,
}

impl Target {
    fn accepted(&self) -> Option<u64> {
        self.server.as_ref().map(|s| s.counters().accepted())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.clients > 0 && args.requests > 0,
        "--clients and --requests must be > 0"
    );
    anyhow::ensure!(args.connections > 0, "--connections must be > 0");
    // reqwest and hyper-rustls use the process-wide rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = match &args.url {
        Some(url) => Target {
            url: url.clone(),
            ca_pem: match &args.ca_cert {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => None,
            },
            server: None,
        },
        None => {
            let server = TestServer::start(
                TestServerConfig::default()
                    .max_concurrent_streams(args.server_max_streams)
                    .body_bytes(args.body_bytes),
            )?;
            Target {
                url: server.url_for("/bench"),
                ca_pem: Some(server.ca_pem().to_owned()),
                server: Some(server),
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let per_client = args.requests.div_ceil(args.clients);
    let total = per_client * args.clients;

    rows.push(runtime.block_on(row_pool(&args, &target, per_client))?);
    rows.push(runtime.block_on(row_hyper_util_shared(&args, &target, per_client))?);
    rows.push(runtime.block_on(row_reqwest(&args, &target, per_client))?);
    rows.push(runtime.block_on(row_hyper_util_per_worker(&args, &target, per_client))?);
    rows.push(runtime.block_on(row_raw_http2(&args, &target, per_client))?);
    if let Some(row) = row_h2load(&args, &target, total)? {
        rows.push(row);
    }
    drop(runtime);

    let config = Config {
        clients: args.clients,
        requests: total,
        target: match &target.server {
            Some(_) => "embedded HTTPS server (hyper + rustls, h2) on 127.0.0.1".to_owned(),
            None => target.url.clone(),
        },
        server_max_streams: target.server.as_ref().map(|_| args.server_max_streams),
        body_bytes: target.server.as_ref().map(|_| args.body_bytes),
        connections: args.connections,
        machine: harness::machine::MachineInfo::collect(),
    };
    print_table(&config, &rows);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "config": config, "rows": rows }))?
        );
    }
    Ok(())
}

fn print_table(config: &Config, rows: &[Row]) {
    println!(
        "{} clients, {} requests each row, target: {}{}",
        config.clients,
        config.requests,
        config.target,
        config
            .server_max_streams
            .map(|m| format!(", server max streams {m}"))
            .unwrap_or_default()
    );
    println!("machine: {}", config.machine.summary());
    println!(
        "| {:<40} | {:>10} | {:>9} | {:>9} | {:>9} | {:>7} | {:>6} | {:>9} |",
        "client", "req/s", "p50 µs", "p99 µs", "p99.9 µs", "sockets", "errors", "peak RSS KiB"
    );
    println!(
        "|{:-<42}|{:->12}|{:->11}|{:->11}|{:->11}|{:->9}|{:->8}|{:->14}|",
        "", "", "", "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:<40} | {:>10.0} | {:>9.0} | {:>9.0} | {:>9.0} | {:>7} | {:>6} | {:>12} |",
            r.client,
            r.req_per_sec,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.sockets_opened.map_or("n/a".to_owned(), |s| s.to_string()),
            r.errors,
            r.peak_rss_kb.map_or("n/a".to_owned(), |s| s.to_string()),
        );
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("{}: {}", r.client, r.note);
    }
}

/// Runs `per_client` requests on each of `clients` workers, all starting together; `send`
/// gets the worker index.
async fn drive<F, Fut>(
    name: &str,
    target: &Target,
    clients: usize,
    per_client: usize,
    send: F,
) -> Result<Row>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let accepted_before = target.accepted();
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = harness::rss_bytes() {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let barrier = Arc::new(Barrier::new(clients));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let send = send.clone();
            let barrier = Arc::clone(&barrier);
            let errors = Arc::clone(&errors);
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_client);
                barrier.wait().await;
                for _ in 0..per_client {
                    let t = Instant::now();
                    match send(w).await {
                        Ok(()) => samples.push(t.elapsed()),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                samples
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for w in workers {
        for s in w.await? {
            histogram.saturating_record(u64::try_from(s.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let ok = histogram.len();
    Ok(Row {
        client: name.to_owned(),
        req_per_sec: ok as f64 / elapsed.as_secs_f64(),
        p50_us: histogram.value_at_quantile(0.5) as f64,
        p99_us: histogram.value_at_quantile(0.99) as f64,
        p999_us: histogram.value_at_quantile(0.999) as f64,
        sockets_opened: target.accepted().zip(accepted_before).map(|(a, b)| a - b),
        errors: errors.load(Ordering::Relaxed),
        peak_rss_kb: Some(peak.load(Ordering::Relaxed) / 1024).filter(|&k| k > 0),
        note: String::new(),
    })
}

fn tls_config(target: &Target) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &target.ca_pem {
        use pki_types::pem::PemObject;
        for cert in pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert?)?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn get(url: &str) -> Result<http::Request<Empty<Bytes>>> {
    Ok(http::Request::get(url).body(Empty::new())?)
}

// ===== rows =====

async fn row_pool(args: &Args, target: &Target, per_client: usize) -> Result<Row> {
    let mut builder = ConnectionPoolManager::builder()
        .max_connections_per_origin(args.connections)
        .max_waiters_per_origin(args.clients.max(1024));
    if let Some(pem) = &target.ca_pem {
        builder = builder.tls_extra_ca_pem(pem.clone());
    }
    let pool = builder.build()?;
    let url: Arc<str> = Arc::from(target.url.as_str());
    let mut row = drive("https-pool (shared)", target, args.clients, per_client, {
        let pool = pool.clone();
        move |_| {
            let pool = pool.clone();
            let url = Arc::clone(&url);
            async move {
                let response = pool.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        }
    })
    .await?;
    let stats = pool.stats();
    if row.sockets_opened.is_none() {
        row.sockets_opened = Some(stats.connections_opened);
    }
    row.note = format!(
        "max {} connections; {} opened, {} leases reused",
        args.connections, stats.connections_opened, stats.leases_reused
    );
    Ok(row)
}

type HyperUtilClient = LegacyClient<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

fn hyper_util_client(target: &Target) -> Result<HyperUtilClient> {
    // hyper-rustls sets ALPN itself from enable_http1/enable_http2.
    let mut tls = tls_config(target)?;
    tls.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(LegacyClient::builder(TokioExecutor::new()).build(connector))
}

async fn row_hyper_util_shared(args: &Args, target: &Target, per_client: usize) -> Result<Row> {
    let client = hyper_util_client(target)?;
    let url: Arc<str> = Arc::from(target.url.as_str());
    drive(
        "hyper-util Client (shared)",
        target,
        args.clients,
        per_client,
        move |_| {
            let client = client.clone();
            let url = Arc::clone(&url);
            async move {
                let response = client.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await
}

async fn row_reqwest(args: &Args, target: &Target, per_client: usize) -> Result<Row> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = &target.ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    let client = builder.build()?;
    let url: Arc<str> = Arc::from(target.url.as_str());
    drive(
        "reqwest (shared)",
        target,
        args.clients,
        per_client,
        move |_| {
            let client = client.clone();
            let url = Arc::clone(&url);
            async move {
                client.get(&*url).send().await?.bytes().await?;
                Ok(())
            }
        },
    )
    .await
}

async fn row_hyper_util_per_worker(args: &Args, target: &Target, per_client: usize) -> Result<Row> {
    let clients: Arc<Vec<HyperUtilClient>> = Arc::new(
        (0..args.clients)
            .map(|_| hyper_util_client(target))
            .collect::<Result<_>>()?,
    );
    let url: Arc<str> = Arc::from(target.url.as_str());
    drive(
        "hyper-util Client per worker",
        target,
        args.clients,
        per_client,
        move |w| {
            let client = clients[w].clone();
            let url = Arc::clone(&url);
            async move {
                let response = client.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await
}

async fn row_raw_http2(args: &Args, target: &Target, per_client: usize) -> Result<Row> {
    let uri: http::Uri = target.url.parse()?;
    let host = uri.host().context("URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config(target)?));
    let accepted_before = target.accepted();
    let mut senders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let name = pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())?;
        let stream = tls.connect(name, tcp).await?;
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("{} did not negotiate h2", target.url);
        }
        let (sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let sockets = target.accepted().zip(accepted_before).map(|(a, b)| a - b);
    let senders = Arc::new(senders);
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = Arc::from(target.url.as_str());
    let mut row = drive(
        &format!("raw hyper conn::http2 x{} (round-robin)", args.connections),
        target,
        args.clients,
        per_client,
        move |_| {
            let i = next.fetch_add(1, Ordering::Relaxed) % senders.len();
            let mut sender = senders[i].clone();
            let url = Arc::clone(&url);
            async move {
                let response = sender.send_request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await?;
    row.sockets_opened =
        Some(sockets.unwrap_or(args.connections as u64) + row.sockets_opened.unwrap_or(0));
    row.note = "connections dialed before the burst (not part of the timed run)".to_owned();
    Ok(row)
}

/// h2load on the same server and load: -c K connections, -m streams each, -n requests.
fn row_h2load(args: &Args, target: &Target, total: usize) -> Result<Option<Row>> {
    let Ok(out) = std::process::Command::new("h2load")
        .arg("--version")
        .output()
    else {
        eprintln!("h2load not installed (Debian: nghttp2-client); skipping its row");
        return Ok(None);
    };
    if !out.status.success() {
        return Ok(None);
    }
    let streams = args.clients.div_ceil(args.connections);
    let accepted_before = target.accepted();
    let out = std::process::Command::new("h2load")
        .args([
            "-n",
            &total.to_string(),
            "-c",
            &args.connections.to_string(),
            "-m",
            &streams.to_string(),
            &target.url,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let failed = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| l.split(", ").find(|p| p.ends_with("failed")))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let mean = text
        .lines()
        .find(|l| l.trim_start().starts_with("time for request:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .and_then(|cols| cols.get(5).map(|s| (*s).to_owned()))
        .unwrap_or_default();
    Ok(Some(Row {
        client: format!("h2load -c {} -m {streams} (C reference)", args.connections),
        req_per_sec: rps,
        p50_us: 0.0,
        p99_us: 0.0,
        p999_us: 0.0,
        sockets_opened: target.accepted().zip(accepted_before).map(|(a, b)| a - b),
        errors: failed,
        peak_rss_kb: None,
        note: format!("separate process; reports no percentiles (mean time for request {mean})"),
    }))
}
