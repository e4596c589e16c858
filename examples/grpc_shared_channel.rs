//! The gRPC shared-channel experiment: N workers making unary gRPC calls three ways, in one run.
//!
//! - **channel per worker**: each worker connects its own tonic `Channel` (N sockets);
//! - **shared channel**: one tonic `Channel` cloned into every worker (one HTTP/2 connection,
//!   whose `SETTINGS_MAX_CONCURRENT_STREAMS` queues the rest);
//! - **shared pool service**: one https-pool `PoolService` (h2c, up to 3 connections) cloned
//!   into every worker, each worker wrapping it in its own `HealthClient`.
//!
//! The call is `grpc.health.v1.Health/Check` from `tonic-health` against a tonic server on
//! 127.0.0.1 (cleartext HTTP/2, as in-cluster gRPC usually is). The server and each client run
//! in their own child process, so every row's peak RSS (`VmHWM`) is that client's alone.
//! Clients connect (or prewarm) before the clock starts; calls/s and latency cover the calls.
//! Sockets are those the client dialed.
//!
//! ```text
//! cargo run --release --example grpc_shared_channel -- [--workers 100] [--calls 1000]
//!     [--server-max-streams 40] [--json]
//! ```
//! `--server-max-streams 0` leaves the server at tonic's default (no stream limit).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use https_pool::{Cleartext, ConnectionPoolManager, PoolService};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Parser, Debug)]
#[command(about = "tonic channel per worker vs one shared channel vs one shared https-pool")]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Concurrent workers.
    #[arg(long, default_value_t = 100, global = true)]
    workers: usize,
    /// Unary calls per worker.
    #[arg(long, default_value_t = 1000, global = true)]
    calls: usize,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS; 0 keeps tonic's default (unlimited).
    #[arg(long, default_value_t = 40, global = true)]
    server_max_streams: u32,
    /// Print the rows as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Child process: serve gRPC health on 127.0.0.1 and print the address.
    Serve,
    /// Child process: run one approach against the server and print its row as JSON.
    Client {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, value_enum)]
        approach: Approach,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize, PartialEq)]
enum Approach {
    ChannelPerWorker,
    SharedChannel,
    PoolService,
}

impl Approach {
    fn label(self) -> &'static str {
        match self {
            Approach::ChannelPerWorker => "tonic Channel per worker",
            Approach::SharedChannel => "one shared tonic Channel",
            Approach::PoolService => "one shared https-pool (<= 3 conns)",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Row {
    approach: Approach,
    calls_ok: u64,
    calls_failed: u64,
    seconds: f64,
    calls_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    sockets: u64,
    peak_rss_kib: Option<u64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.role {
        Some(Role::Serve) => serve(args.server_max_streams),
        Some(Role::Client { addr, approach }) => {
            let row = run_client(addr, approach, args.workers, args.calls)?;
            println!("{}", serde_json::to_string(&row)?);
            Ok(())
        }
        None => orchestrate(&args),
    }
}

/// Starts the server child, then one client child per approach, and prints the table.
fn orchestrate(args: &Args) -> Result<()> {
    let exe = std::env::current_exe().context("locating this example's binary")?;
    let mut server = ChildGuard(
        Command::new(&exe)
            .args(["serve", "--server-max-streams"])
            .arg(args.server_max_streams.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the server process")?,
    );
    let stdout = server.0.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("LISTENING ")
        .context("server did not report its address")?
        .parse()?;

    let mut rows = Vec::new();
    for approach in [
        Approach::ChannelPerWorker,
        Approach::SharedChannel,
        Approach::PoolService,
    ] {
        let output = Command::new(&exe)
            .args(["client", "--addr", &addr.to_string(), "--approach"])
            .arg(approach.to_possible_value().context("name")?.get_name())
            .args(["--workers", &args.workers.to_string()])
            .args(["--calls", &args.calls.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .context("running a client process")?;
        if !output.status.success() {
            bail!("{} client failed: {}", approach.label(), output.status);
        }
        rows.push(serde_json::from_slice::<Row>(&output.stdout)?);
    }

    if args.json {
        let config = serde_json::json!({
            "workers": args.workers,
            "calls_per_worker": args.calls,
            "server_max_streams": args.server_max_streams,
            "server": "tonic 0.14 health service, h2c on 127.0.0.1, separate process",
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "config": config, "rows": rows }))?
        );
        return Ok(());
    }
    let limit = match args.server_max_streams {
        0 => "no stream limit".to_owned(),
        n => format!("max concurrent streams {n}"),
    };
    println!(
        "{} workers x {} unary calls (grpc.health.v1.Health/Check), tonic server on {addr} ({limit})",
        args.workers, args.calls
    );
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>8} {:>8} {:>14}",
        "approach", "calls/s", "p50 us", "p99 us", "sockets", "failed", "peak RSS KiB"
    );
    for row in &rows {
        println!(
            "{:<36} {:>10.0} {:>10.1} {:>10.1} {:>8} {:>8} {:>14}",
            row.approach.label(),
            row.calls_per_sec,
            row.p50_us,
            row.p99_us,
            row.sockets,
            row.calls_failed,
            row.peak_rss_kib
                .map_or_else(|| "n/a".to_owned(), |k| k.to_string())
        );
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// Kills the child process when dropped, so no server outlives the run.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn serve(max_streams: u32) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let (_reporter, service) = tonic_health::server::health_reporter();
    Server::builder()
        .max_concurrent_streams((max_streams > 0).then_some(max_streams))
        .add_service(service)
        // As tonic's own `serve` does (TCP_NODELAY on): `TcpIncoming::from` leaves Nagle on,
        // and every client sharing one connection then stalls on delayed ACKs (p99 ≈ 45 ms).
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await?;
    Ok(())
}

#[tokio::main]
async fn run_client(
    addr: SocketAddr,
    approach: Approach,
    workers: usize,
    calls: usize,
) -> Result<Row> {
    let url = format!("http://{addr}");
    let dials = Arc::new(AtomicU64::new(0));
    let endpoint = Endpoint::from_shared(url.clone())?;
    // Each approach builds one HealthClient per worker, connected before the clock starts.
    let mut pool = None;
    let clients: Vec<Client> = match approach {
        Approach::ChannelPerWorker => {
            let mut clients = Vec::with_capacity(workers);
            for _ in 0..workers {
                let channel = endpoint
                    .connect_with_connector(counting_connector(addr, Arc::clone(&dials)))
                    .await?;
                clients.push(Client::Channel(HealthClient::new(channel)));
            }
            clients
        }
        Approach::SharedChannel => {
            let channel = endpoint
                .connect_with_connector(counting_connector(addr, Arc::clone(&dials)))
                .await?;
            (0..workers)
                .map(|_| Client::Channel(HealthClient::new(channel.clone())))
                .collect()
        }
        Approach::PoolService => {
            let built = ConnectionPoolManager::builder()
                .cleartext(Cleartext::Http2PriorKnowledge)
                .max_connections_per_origin(3)
                .max_waiters_per_origin(workers.max(1) * 2)
                .build()?;
            for warmed in built.prewarm_hosts(&[url.as_str()]).await {
                warmed.result?;
            }
            let service = built.service(url.as_str())?;
            let clients = (0..workers)
                .map(|_| Client::Pool(HealthClient::new(service.clone())))
                .collect();
            pool = Some(built);
            clients
        }
    };

    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let mut latency = new_histogram();
            tokio::spawn(async move {
                let mut failed = 0u64;
                for _ in 0..calls {
                    let call_started = Instant::now();
                    match client.check().await {
                        Ok(_) => latency.saturating_record(micros(call_started.elapsed())),
                        Err(_) => failed += 1,
                    }
                }
                (latency, failed)
            })
        })
        .collect();
    let mut latency = new_histogram();
    let mut failed = 0;
    for task in tasks {
        let (worker_latency, worker_failed) = task.await?;
        latency.add(&worker_latency)?;
        failed += worker_failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let sockets = match &pool {
        Some(pool) => pool.stats().connections_opened,
        None => dials.load(Ordering::Relaxed),
    };
    Ok(Row {
        approach,
        calls_ok: latency.len(),
        calls_failed: failed,
        seconds,
        calls_per_sec: latency.len() as f64 / seconds,
        p50_us: latency.value_at_quantile(0.50) as f64,
        p99_us: latency.value_at_quantile(0.99) as f64,
        sockets,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// One worker's client: a tonic `Channel` or the pool's service under the same generated
/// `HealthClient`.
enum Client {
    Channel(HealthClient<Channel>),
    Pool(HealthClient<PoolService<tonic::body::Body>>),
}

impl Client {
    async fn check(&mut self) -> Result<(), tonic::Status> {
        let request = HealthCheckRequest {
            service: String::new(),
        };
        match self {
            Client::Channel(client) => client.check(request).await.map(drop),
            Client::Pool(client) => client.check(request).await.map(drop),
        }
    }
}

/// A TCP connector for tonic that counts the sockets it opens.
fn counting_connector(
    addr: SocketAddr,
    dials: Arc<AtomicU64>,
) -> impl tower::Service<
    http::Uri,
    Response = TokioIo<tokio::net::TcpStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
+ 'static {
    tower::service_fn(move |_uri: http::Uri| {
        let dials = Arc::clone(&dials);
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            dials.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(TokioIo::new(tcp))
        }
    })
}

/// Microseconds up to one minute, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The process's peak resident set (`VmHWM`), Linux only.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
