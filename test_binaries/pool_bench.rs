//! The same load through https-pool and what a service would use instead, side by side in
//! one run: hyper-util's legacy `Client` (shared), reqwest (shared), one hyper-util `Client`
//! per worker, raw `hyper::client::conn::http2` and raw `h2` on K round-robin connections (the
//! ceiling: what a hand-written loop over the same connections costs; also with FIFO waiting in
//! front, a `Semaphore` per connection), raw
//! `hyper::client::conn::http1` on K connections behind a `Semaphore` (the HTTP/1.1 ceiling),
//! and h2load (the C reference) where it is installed.
//!
//! Every row runs in a child process of its own (this binary with `--child-row`), so one
//! row's heap, threads and connections do not colour the next, and the child's CPU time
//! (user + system, from `/proc/self/stat`, around the timed part) divided by the requests it
//! completed is the client's CPU per request. The embedded server, when used, runs in this
//! parent process, so its CPU is not counted. Every worker fires its first request at the
//! same moment (a cold burst, as services do at start), then sends its share back to back.
//!
//! `cargo run --release --bin pool_bench -- --clients 1024 --requests 200000 --runs 3 \
//!     --url https://127.0.0.1:8443/ --ca-cert target/nginx-peer/ca.pem`
//!
//! `--rtt MS` puts a relay between every row and the target that delays each direction by half
//! of MS milliseconds (a long network path on loopback; the relay runs in the parent process,
//! like the embedded server, so its CPU is not counted). The target must be on a loopback
//! address; the table then also gives p50 and p99 in round trips. One download at a time, a
//! 1 MiB file from nginx 40 ms away:
//!
//! `cargo run --release --bin pool_bench -- --rtt 40 --clients 1 --requests 20 --runs 3 \
//!     --url https://127.0.0.1:18511/files/1m.bin --ca-cert target/bench-long-path/ca.pem \
//!     --only https-pool,reqwest,hyper-util-shared`
//!
//! `--body-bytes N` sizes the embedded server's responses, 16 MiB and beyond; pass a
//! `--requests` to match, since every request carries the whole body:
//!
//! `cargo run --release --bin pool_bench -- --rtt 20 --clients 2 --requests 10 \
//!     --body-bytes 16777216 --only https-pool,reqwest`
//!
//! `--json` writes only JSON to stdout (the table goes to stderr).

use https_pool_harness::machine;

use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use https_pool::ConnectionPoolManager;
use https_pool_testkit::{Alpn, RttRelay, TestServer, TestServerConfig};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

/// Every row, in the order they run and print.
const ROWS: [&str; 9] = [
    "https-pool",
    "raw-h2",
    "raw-h2-fifo",
    "raw-hyper",
    "raw-h1",
    "hyper-util-shared",
    "reqwest",
    "hyper-util-per-worker",
    "h2load",
];

/// Side-by-side HTTP client benchmark against the embedded server or a URL.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Concurrent workers. Several counts (`16,128,1024`) measure every row at each, the
    /// counts interleaved within every run, so that a ratio between counts is not a ratio
    /// between two moments of a noisy machine.
    #[arg(long = "clients", value_delimiter = ',', default_value = "64")]
    client_counts: Vec<usize>,
    /// The count of the current measurement (set from `--clients`).
    #[arg(skip)]
    clients: usize,
    /// Total requests per row (split evenly over the workers).
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
    /// The embedded server's response body size, in bytes (16777216 for 16 MiB; no upper
    /// limit but memory, the server holds one copy).
    #[arg(long, default_value_t = 16)]
    body_bytes: usize,
    /// Round-trip time, in milliseconds, a relay in front of the target adds (half each way):
    /// every row talks to the relay. The target (embedded server or `--url`) must be on a
    /// loopback IP address.
    #[arg(long, value_name = "MS")]
    rtt: Option<u64>,
    /// The embedded server speaks HTTP/1.1 only.
    #[arg(long)]
    server_http1: bool,
    /// Connections for https-pool (its maximum) and for the raw rows.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Untimed requests each worker sends before the timed ones; all workers then start
    /// together, so `--warm-up 1 --requests N×clients` times a burst on warm connections.
    #[arg(long, default_value_t = 0)]
    warm_up: usize,
    /// Runs of every row; the table shows the run with the median req/s, the JSON all runs.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Only these rows (comma-separated): https-pool, raw-h2, raw-h2-fifo, raw-hyper, raw-h1,
    /// hyper-util-shared, reqwest, hyper-util-per-worker, h2load.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Print only the JSON report on stdout; the table goes to stderr.
    #[arg(long)]
    json: bool,
    /// Internal: run this one row in this process and print its JSON.
    #[arg(long, hide = true)]
    child_row: Option<String>,
}

/// One row's figures. A figure the row could not measure is `None` (JSON `null`, table
/// `n/a`), never 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    row: String,
    client: String,
    /// False when the row could not run against this target; `note` says why.
    ran: bool,
    req_per_sec: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    /// Client CPU (user + system) per completed request.
    cpu_us_per_req: Option<f64>,
    sockets_opened: Option<u64>,
    errors: u64,
    peak_rss_kib: Option<u64>,
    note: String,
}

impl Row {
    fn not_run(row: &str, connections: usize, why: String) -> Row {
        Row {
            row: row.to_owned(),
            client: client_name(row, connections),
            ran: false,
            req_per_sec: None,
            p50_us: None,
            p99_us: None,
            p999_us: None,
            cpu_us_per_req: None,
            sockets_opened: None,
            errors: 0,
            peak_rss_kib: None,
            note: why,
        }
    }
}

#[derive(Debug, Serialize)]
struct Config {
    /// The client counts measured (interleaved when several).
    clients: Vec<usize>,
    requests_per_row: usize,
    runs: usize,
    target: String,
    /// The round trip the relay in front of the target adds, when there is one.
    rtt_ms: Option<u64>,
    server_max_streams: Option<u32>,
    body_bytes: Option<usize>,
    connections: usize,
    machine: machine::MachineInfo,
}

fn client_name(row: &str, k: usize) -> String {
    match row {
        "https-pool" => format!("https-pool (shared, max {k} connections)"),
        "raw-h2" => format!("raw h2 x{k} (round-robin)"),
        "raw-h2-fifo" => format!("raw h2 x{k} (round-robin, FIFO Semaphore per connection)"),
        "raw-hyper" => format!("raw hyper conn::http2 x{k} (round-robin)"),
        "raw-h1" => format!("raw hyper conn::http1 x{k} (Semaphore + idle list)"),
        "hyper-util-shared" => "hyper-util Client (shared)".to_owned(),
        "reqwest" => "reqwest (shared)".to_owned(),
        "hyper-util-per-worker" => "hyper-util Client per worker".to_owned(),
        "h2load" => format!("h2load -c {k} (C reference)"),
        "h2load-h1" => format!("h2load --h1 -c {k} -m 1 (C reference)"),
        other => other.to_owned(),
    }
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    anyhow::ensure!(
        !args.client_counts.is_empty()
            && args.client_counts.iter().all(|&c| c > 0)
            && args.requests > 0,
        "--clients and --requests must be > 0"
    );
    args.clients = args.client_counts[0];
    anyhow::ensure!(args.connections > 0, "--connections must be > 0");
    anyhow::ensure!(args.runs > 0, "--runs must be > 0");
    for name in &args.only {
        anyhow::ensure!(
            ROWS.contains(&name.as_str()),
            "unknown row {name:?}; rows are {}",
            ROWS.join(", ")
        );
    }
    // reqwest and hyper-rustls use the process-wide rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(row) = &args.child_row {
        return child(&args, row);
    }
    parent(&args)
}

// ===== parent: the target, the children, the table =====

struct Target {
    /// What the rows request: the target's own URL, or the relay's when `--rtt` is set.
    url: String,
    /// The target's own URL.
    origin_url: String,
    ca_file: Option<PathBuf>,
    /// Held for the whole run: every row of every run goes through the same relay.
    relay: Option<RttRelay>,
    server: Option<TestServer>,
}

impl Target {
    /// Connections accepted so far: the embedded server's count, else the relay's (it opens
    /// one connection to the target for each it accepts, so both count the client's sockets).
    fn accepted(&self) -> Option<u64> {
        match (&self.server, &self.relay) {
            (Some(server), _) => Some(server.counters().accepted()),
            (None, Some(relay)) => Some(relay.accepted()),
            (None, None) => None,
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.server.is_some()
            && let Some(ca) = &self.ca_file
        {
            let _ = std::fs::remove_file(ca);
        }
    }
}

/// Starts an [`RttRelay`] in front of the host and port of `url`, and returns it with the URL
/// the rows use instead: the same scheme and path, on the relay's address.
fn relay_in_front(url: &str, rtt: Duration) -> Result<(RttRelay, String)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("the target URL {url:?} does not parse"))?;
    let scheme = uri
        .scheme_str()
        .with_context(|| format!("the target URL {url:?} has no scheme"))?;
    let host = uri
        .host()
        .with_context(|| format!("the target URL {url:?} has no host"))?;
    // The relay stands in for a long path to a server on this machine: it must never carry
    // benchmark traffic anywhere else, and a name could resolve off the machine.
    let ip = host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .filter(IpAddr::is_loopback)
        .with_context(|| {
            format!(
                "--rtt needs the target on a loopback IP address (such as 127.0.0.1 or [::1]), not {host:?}"
            )
        })?;
    let port = match (uri.port_u16(), scheme) {
        (Some(port), _) => port,
        (None, "https") => 443,
        (None, "http") => 80,
        (None, other) => {
            bail!("the target URL {url:?} has no port and an unknown scheme {other:?}")
        }
    };
    let relay =
        RttRelay::start(SocketAddr::new(ip, port), rtt).context("starting the RTT relay")?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // The relay listens on 127.0.0.1, which the embedded server's and the nginx peer's
    // certificates both cover, so TLS still verifies.
    let relayed = format!("{scheme}://{}{path}", relay.addr());
    Ok((relay, relayed))
}

fn parent(args: &Args) -> Result<()> {
    let mut target = match &args.url {
        Some(url) => Target {
            url: url.clone(),
            origin_url: url.clone(),
            ca_file: args.ca_cert.clone(),
            relay: None,
            server: None,
        },
        None => {
            let server = TestServer::start(
                TestServerConfig::default()
                    .alpn(if args.server_http1 {
                        Alpn::Http1
                    } else {
                        Alpn::H2
                    })
                    .max_concurrent_streams(args.server_max_streams)
                    .body_bytes(args.body_bytes),
            )?;
            let ca = std::env::temp_dir().join(format!("pool_bench-{}-ca.pem", std::process::id()));
            std::fs::write(&ca, server.ca_pem())?;
            let url = server.url_for("/bench");
            Target {
                url: url.clone(),
                origin_url: url,
                ca_file: Some(ca),
                relay: None,
                server: Some(server),
            }
        }
    };
    if let Some(ms) = args.rtt {
        let (relay, url) = relay_in_front(&target.origin_url, Duration::from_millis(ms))?;
        target.relay = Some(relay);
        target.url = url;
    }
    // h2load speaks HTTP/1.1 only when told to: ask the server what it speaks (directly: the
    // answer is the same through the relay).
    let http1_only = match negotiated_alpn(&target.origin_url, target.ca_file.as_deref()) {
        Ok(alpn) => alpn.as_deref() == Some(b"http/1.1"),
        Err(e) => {
            eprintln!("could not ask the target for its protocol ({e:#}); assuming h2");
            false
        }
    };
    let selected: Vec<&str> = ROWS
        .iter()
        .copied()
        .filter(|r| args.only.is_empty() || args.only.iter().any(|o| o == r))
        .collect();

    // One measurement per (client count, row), interleaved: every run measures each once.
    let counts = &args.client_counts;
    let several = counts.len() > 1;
    let cells: Vec<(usize, &str)> = counts
        .iter()
        .flat_map(|&c| selected.iter().map(move |&r| (c, r)))
        .collect();
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(); cells.len()];
    let mut totals = Vec::new();
    for run in 0..args.runs {
        for (i, &(clients, row)) in cells.iter().enumerate() {
            let mut cell = args.clone();
            cell.clients = clients;
            let total = args.requests.div_ceil(clients) * clients;
            if run == 0 {
                totals.push(total);
            }
            eprintln!("run {}/{}: {row} ({clients} clients)", run + 1, args.runs);
            let result = if row == "h2load" {
                row_h2load(&cell, &target, total, http1_only)
            } else if row == "raw-h1" && !http1_only {
                Err(anyhow::anyhow!(
                    "the target speaks h2, so the pool does too: the HTTP/1.1 ceiling does not apply"
                ))
            } else {
                run_child(&cell, &target, row)
            };
            let mut result =
                result.unwrap_or_else(|e| Row::not_run(row, args.connections, format!("{e:#}")));
            if several {
                result.client = format!("{} @ {clients} clients", result.client);
            }
            runs[i].push(result);
        }
    }
    let medians: Vec<Row> = runs.iter().map(|r| median_row(r)).collect();
    let config = Config {
        clients: counts.clone(),
        requests_per_row: totals.iter().copied().max().unwrap_or(0),
        runs: args.runs,
        target: match &target.server {
            Some(_) => format!(
                "embedded HTTPS server (hyper + rustls, {}) on 127.0.0.1, in the parent process",
                if args.server_http1 { "http/1.1" } else { "h2" }
            ),
            None => target.origin_url.clone(),
        },
        rtt_ms: args.rtt,
        server_max_streams: target.server.as_ref().map(|_| args.server_max_streams),
        body_bytes: target.server.as_ref().map(|_| args.body_bytes),
        connections: args.connections,
        machine: machine::MachineInfo::collect(),
    };
    let mut table = render_table(&config, &medians);
    table.push_str(&render_ratios(&cells, &medians));
    if args.json {
        eprint!("{table}");
        let report = serde_json::json!({ "config": config, "rows": medians, "runs": runs });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

/// The run with the median req/s (rows that did not run keep their first outcome).
fn median_row(runs: &[Row]) -> Row {
    let mut ran: Vec<&Row> = runs.iter().filter(|r| r.ran).collect();
    if ran.is_empty() {
        return runs[0].clone();
    }
    ran.sort_by(|a, b| {
        a.req_per_sec
            .partial_cmp(&b.req_per_sec)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut median = ran[ran.len() / 2].clone();
    if runs.len() > 1 {
        let all: Vec<String> = ran
            .iter()
            .map(|r| format!("{:.0}", r.req_per_sec.unwrap_or(0.0)))
            .collect();
        let sep = if median.note.is_empty() { "" } else { "; " };
        median.note = format!(
            "{}{sep}req/s of the {} runs: {}",
            median.note,
            ran.len(),
            all.join(", ")
        );
    }
    median
}

fn run_child(args: &Args, target: &Target, row: &str) -> Result<Row> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "--child-row",
        row,
        "--url",
        &target.url,
        "--clients",
        &args.clients.to_string(),
        "--requests",
        &args.requests.to_string(),
        "--connections",
        &args.connections.to_string(),
        "--warm-up",
        &args.warm_up.to_string(),
    ]);
    if let Some(ca) = &target.ca_file {
        cmd.arg("--ca-cert").arg(ca);
    }
    // The reason a row cannot run is the child's error line, not a backtrace.
    cmd.env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    let accepted_before = target.accepted();
    let out = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr
            .lines()
            .find_map(|l| l.strip_prefix("Error: "))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("the child process failed")
            .to_owned();
        bail!("{reason}");
    }
    let mut row: Row = serde_json::from_slice(&out.stdout).context("reading the child's row")?;
    if let (Some(after), Some(before)) = (target.accepted(), accepted_before) {
        row.sockets_opened = Some(after - before);
    }
    Ok(row)
}

fn render_table(config: &Config, rows: &[Row]) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} clients{}, {} requests per row at most (a multiple of the clients), {} run(s) per row (median shown), target: {}{}{}",
        config
            .clients
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        if config.clients.len() > 1 {
            " (interleaved in every run)"
        } else {
            ""
        },
        config.requests_per_row,
        config.runs,
        config.target,
        config
            .rtt_ms
            .map(|ms| format!(
                ", through a relay adding {ms} ms round trip ({} ms each way, in the parent process)",
                ms as f64 / 2.0
            ))
            .unwrap_or_default(),
        config
            .server_max_streams
            .map(|m| format!(", server max streams {m}"))
            .unwrap_or_default()
    ));
    line(format!("machine: {}", config.machine.summary()));
    let width = rows
        .iter()
        .map(|r| r.client.chars().count())
        .max()
        .unwrap_or(0)
        .max(44);
    let f0 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
    let f1 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1}"));
    let u = |v: Option<u64>| v.map_or("n/a".to_owned(), |v| v.to_string());
    // Latency in round trips is what a long path is read by: about 1 per request once the
    // connection is warm and the windows hold the whole body, more while they grow.
    let rtt_us = config.rtt_ms.map(|ms| ms as f64 * 1000.0);
    let in_rtts = |v: Option<f64>| match (v, rtt_us) {
        (Some(v), Some(rtt)) if rtt > 0.0 => format!("{:.2}", v / rtt),
        _ => "n/a".to_owned(),
    };
    // (header, width, the cell of a row), in the order they print.
    type Cell<'a> = Box<dyn Fn(&Row) -> String + 'a>;
    let mut columns: Vec<(&str, usize, Cell)> = vec![
        ("req/s", 9, Box::new(|r: &Row| f0(r.req_per_sec))),
        ("CPU µs/req", 10, Box::new(|r: &Row| f1(r.cpu_us_per_req))),
        ("p50 µs", 9, Box::new(|r: &Row| f0(r.p50_us))),
        ("p99 µs", 9, Box::new(|r: &Row| f0(r.p99_us))),
        ("p99.9 µs", 9, Box::new(|r: &Row| f0(r.p999_us))),
    ];
    if rtt_us.is_some() {
        columns.push(("p50 RTT", 7, Box::new(|r: &Row| in_rtts(r.p50_us))));
        columns.push(("p99 RTT", 7, Box::new(|r: &Row| in_rtts(r.p99_us))));
    }
    columns.push(("sockets", 7, Box::new(|r: &Row| u(r.sockets_opened))));
    columns.push((
        "errors",
        6,
        Box::new(|r: &Row| {
            if r.ran {
                r.errors.to_string()
            } else {
                "n/a".to_owned()
            }
        }),
    ));
    columns.push(("peak RSS KiB", 12, Box::new(|r: &Row| u(r.peak_rss_kib))));
    let mut header = format!("| {:<width$} |", "client");
    let mut dashes = format!("|{:-<w$}|", "", w = width + 2);
    for (name, w, _) in &columns {
        header.push_str(&format!(" {name:>w$} |"));
        dashes.push_str(&format!("{:->w$}|", ":", w = w + 2));
    }
    line(header);
    line(dashes);
    for r in rows {
        let mut cells = format!("| {:<width$} |", r.client);
        for (_, w, cell) in &columns {
            cells.push_str(&format!(" {:>w$} |", cell(r)));
        }
        line(cells);
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        line(format!("{}: {}", r.client, r.note));
    }
    out
}

/// The ratios the comparisons are read by, computed here from the medians above so nobody
/// divides by hand: each row's req/s between client counts, https-pool's req/s over every
/// other row's at the same count, and each cell's p99.9 over its p50.
fn render_ratios(cells: &[(usize, &str)], medians: &[Row]) -> String {
    let figure = |clients: usize, row: &str, pick: fn(&Row) -> Option<f64>| {
        cells
            .iter()
            .zip(medians)
            .find(|((c, r), m)| *c == clients && *r == row && m.ran)
            .and_then(|(_, m)| pick(m))
    };
    let req_per_sec = |r: &Row| r.req_per_sec;
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
        _ => "n/a".to_owned(),
    };
    let mut counts: Vec<usize> = cells.iter().map(|(c, _)| *c).collect();
    counts.dedup();
    let mut rows: Vec<&str> = Vec::new();
    for (_, r) in cells {
        if !rows.contains(r) {
            rows.push(r);
        }
    }
    let mut out = String::from("ratios of the medians above:\n");
    if counts.len() > 1 {
        for row in &rows {
            let mut pairs = Vec::new();
            for (i, &hi) in counts.iter().enumerate() {
                for &lo in &counts[..i] {
                    pairs.push(format!(
                        "{hi}/{lo} clients {}",
                        ratio(figure(hi, row, req_per_sec), figure(lo, row, req_per_sec))
                    ));
                }
            }
            out.push_str(&format!("  {row} req/s: {}\n", pairs.join(", ")));
        }
    }
    if rows.contains(&"https-pool") {
        for &c in &counts {
            let others: Vec<String> = rows
                .iter()
                .filter(|r| **r != "https-pool")
                .map(|r| {
                    format!(
                        "{r} {}",
                        ratio(
                            figure(c, "https-pool", req_per_sec),
                            figure(c, r, req_per_sec)
                        )
                    )
                })
                .collect();
            if !others.is_empty() {
                out.push_str(&format!(
                    "  https-pool req/s ÷ each row @ {c} clients: {}\n",
                    others.join(", ")
                ));
            }
        }
    }
    for row in &rows {
        let tails: Vec<String> = counts
            .iter()
            .map(|&c| {
                format!(
                    "@ {c} clients {}",
                    ratio(figure(c, row, |r| r.p999_us), figure(c, row, |r| r.p50_us))
                )
            })
            .collect();
        out.push_str(&format!("  {row} p99.9 ÷ p50: {}\n", tails.join(", ")));
    }
    out
}

// ===== child: one row in this process =====

fn child(args: &Args, row: &str) -> Result<()> {
    let url = args.url.clone().context("--child-row needs --url")?;
    let ca_pem = match &args.ca_cert {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let target = ChildTarget { url, ca_pem };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let per_client = args.requests.div_ceil(args.clients);
    let mut row = runtime.block_on(async {
        match row {
            "https-pool" => row_pool(args, &target, per_client).await,
            "raw-h2" => row_raw_h2(args, &target, per_client).await,
            "raw-h2-fifo" => row_raw_h2_fifo(args, &target, per_client).await,
            "raw-hyper" => row_raw_hyper(args, &target, per_client).await,
            "raw-h1" => row_raw_h1(args, &target, per_client).await,
            "hyper-util-shared" => row_hyper_util_shared(args, &target, per_client).await,
            "reqwest" => row_reqwest(args, &target, per_client).await,
            "hyper-util-per-worker" => row_hyper_util_per_worker(args, &target, per_client).await,
            other => bail!("unknown row {other:?}"),
        }
    })?;
    row.peak_rss_kib = peak_rss_kib();
    drop(runtime);
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &row)?;
    stdout.flush()?;
    Ok(())
}

struct ChildTarget {
    url: String,
    ca_pem: Option<String>,
}

/// Peak resident set of this process, from `/proc/self/status` (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU of this process so far (all threads), from `/proc/self/stat`, in clock
/// ticks of 1/100 s (Linux's USER_HZ on every mainstream architecture).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

const TICK_US: f64 = 10_000.0;

/// Runs `per_client` requests on each of `clients` workers, all starting together; `send`
/// gets the worker index.
async fn drive<F, Fut>(
    row: &str,
    name: String,
    args: &Args,
    per_client: usize,
    send: F,
) -> Result<Row>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let clients = args.clients;
    let warm_up = args.warm_up;
    // With a warm-up, this task waits at the barrier too, and the clock starts when every
    // worker has warmed up; without one, it starts before the workers are spawned, as it
    // always did (so runs stay comparable with earlier captures).
    let barrier = Arc::new(Barrier::new(clients + usize::from(warm_up > 0)));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut cpu_before = cpu_ticks();
    let mut started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let send = send.clone();
            let barrier = Arc::clone(&barrier);
            let errors = Arc::clone(&errors);
            let first_error = Arc::clone(&first_error);
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_client);
                for _ in 0..warm_up {
                    if let Err(e) = send(w).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| format!("warm-up: {e:#}"));
                    }
                }
                barrier.wait().await;
                for _ in 0..per_client {
                    let t = Instant::now();
                    match send(w).await {
                        Ok(()) => samples.push(t.elapsed()),
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                samples
            })
        })
        .collect();
    if warm_up > 0 {
        barrier.wait().await;
        cpu_before = cpu_ticks();
        started = Instant::now();
    }
    let mut all = Vec::with_capacity(clients);
    for w in workers {
        all.push(w.await?);
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_ticks();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for samples in all {
        for s in samples {
            histogram.saturating_record(u64::try_from(s.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }
    let ok = histogram.len();
    let cpu_us_per_req = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if ok > 0 => Some((a - b) as f64 * TICK_US / ok as f64),
        _ => None,
    };
    let errors = errors.load(Ordering::Relaxed);
    let note = match first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => format!("first error: {e}"),
        None => String::new(),
    };
    Ok(Row {
        row: row.to_owned(),
        client: name,
        ran: true,
        req_per_sec: Some(ok as f64 / elapsed.as_secs_f64()),
        p50_us: (ok > 0).then(|| histogram.value_at_quantile(0.5) as f64),
        p99_us: (ok > 0).then(|| histogram.value_at_quantile(0.99) as f64),
        p999_us: (ok > 0).then(|| histogram.value_at_quantile(0.999) as f64),
        cpu_us_per_req,
        sockets_opened: None,
        errors,
        peak_rss_kib: None,
        note,
    })
}

fn tls_config(target: &ChildTarget) -> Result<rustls::ClientConfig> {
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

/// A GET for the target; every row gets the same pre-parsed URI, so no row pays for URL
/// parsing the others skip (reqwest parses its `&str` itself, as its users' calls do).
fn get(url: &http::Uri) -> Result<http::Request<Empty<Bytes>>> {
    Ok(http::Request::get(url.clone()).body(Empty::new())?)
}

// ===== rows =====

async fn row_pool(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let mut builder = ConnectionPoolManager::builder()
        .max_connections_per_origin(args.connections)
        .max_waiters_per_origin(args.clients.max(1024));
    if let Some(pem) = &target.ca_pem {
        builder = builder.tls_extra_ca_pem(pem.clone());
    }
    let pool = builder.build()?;
    let url: http::Uri = target.url.parse()?;
    let mut row = drive(
        "https-pool",
        client_name("https-pool", args.connections),
        args,
        per_client,
        {
            let pool = pool.clone();
            move |_| {
                let pool = pool.clone();
                let url = url.clone();
                async move {
                    let response = pool.request(get(&url)?).await?;
                    response.into_body().collect().await?;
                    Ok(())
                }
            }
        },
    )
    .await?;
    let stats = pool.stats();
    row.sockets_opened = Some(stats.connections_opened);
    let sep = if row.note.is_empty() { "" } else { "; " };
    row.note = format!(
        "{}{sep}{} connections opened, {} leases reused, {} retried",
        row.note, stats.connections_opened, stats.leases_reused, stats.requests_retried
    );
    Ok(row)
}

type HyperUtilClient = LegacyClient<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

fn hyper_util_client(target: &ChildTarget) -> Result<HyperUtilClient> {
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

async fn row_hyper_util_shared(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let client = hyper_util_client(target)?;
    let url: http::Uri = target.url.parse()?;
    drive(
        "hyper-util-shared",
        client_name("hyper-util-shared", args.connections),
        args,
        per_client,
        move |_| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let response = client.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await
}

async fn row_reqwest(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = &target.ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    let client = builder.build()?;
    let url: Arc<str> = Arc::from(target.url.as_str());
    drive(
        "reqwest",
        client_name("reqwest", args.connections),
        args,
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

async fn row_hyper_util_per_worker(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let clients: Arc<Vec<HyperUtilClient>> = Arc::new(
        (0..args.clients)
            .map(|_| hyper_util_client(target))
            .collect::<Result<_>>()?,
    );
    let url: http::Uri = target.url.parse()?;
    drive(
        "hyper-util-per-worker",
        client_name("hyper-util-per-worker", args.connections),
        args,
        per_client,
        move |w| {
            let client = clients[w].clone();
            let url = url.clone();
            async move {
                let response = client.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await
}

/// `n` TLS connections to the target that negotiated `alpn` (offered alone).
async fn dial(
    target: &ChildTarget,
    n: usize,
    alpn: &[u8],
) -> Result<Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let uri: http::Uri = target.url.parse()?;
    // `[::1]` is a URL's spelling; connecting and the TLS name want the bare address.
    let host = uri
        .host()
        .context("URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let mut config = tls_config(target)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let name = pki_types::ServerName::try_from(host.clone())?;
        let stream = tls.connect(name, tcp).await?;
        if stream.get_ref().1.alpn_protocol() != Some(alpn) {
            bail!(
                "the server did not negotiate {} (this row speaks nothing else)",
                String::from_utf8_lossy(alpn)
            );
        }
        streams.push(stream);
    }
    Ok(streams)
}

async fn row_raw_hyper(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let mut senders = Vec::with_capacity(args.connections);
    for stream in dial(target, args.connections, b"h2").await? {
        let (sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let senders = Arc::new(senders);
    let next = Arc::new(AtomicUsize::new(0));
    let url: http::Uri = target.url.parse()?;
    let mut row = drive(
        "raw-hyper",
        client_name("raw-hyper", args.connections),
        args,
        per_client,
        move |_| {
            let i = next.fetch_add(1, Ordering::Relaxed) % senders.len();
            let mut sender = senders[i].clone();
            let url = url.clone();
            async move {
                let response = sender.send_request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await?;
    row.note = "connections dialed before the timed run".to_owned();
    Ok(row)
}

/// The HTTP/1.1 ceiling: K hyper `conn::http1` connections behind a tokio `Semaphore` (FIFO,
/// a freed permit handed straight to the longest waiter) and a stack of idle senders: the
/// least a hand-written keep-alive pool does, with no dialing, health or accounting.
async fn row_raw_h1(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let mut idle = Vec::with_capacity(args.connections);
    for stream in dial(target, args.connections, b"http/1.1").await? {
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        idle.push(sender);
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(idle.len()));
    let idle = Arc::new(std::sync::Mutex::new(idle));
    let url: http::Uri = target.url.parse()?;
    let authority = url.authority().context("URL has no authority")?.to_string();
    let path = url.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut row = drive(
        "raw-h1",
        client_name("raw-h1", args.connections),
        args,
        per_client,
        move |_| {
            let permits = Arc::clone(&permits);
            let idle = Arc::clone(&idle);
            // What hyper's pooled clients send: origin-form and a Host header.
            let request = http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .body(Empty::new());
            async move {
                let _permit = permits.acquire().await?;
                let lock = || idle.lock().unwrap_or_else(|p| p.into_inner());
                let mut sender = lock().pop().context("no idle connection under a permit")?;
                sender.ready().await?;
                let response = sender.send_request(request?).await?;
                anyhow::ensure!(response.status().is_success(), "{}", response.status());
                response.into_body().collect().await?;
                lock().push(sender);
                Ok(())
            }
        },
    )
    .await?;
    row.note = "connections dialed before the timed run".to_owned();
    Ok(row)
}

/// The ceiling: the h2 crate driven directly, as the pool does, with nothing around it.
/// Callers past a connection's stream limit wait inside h2 (its pending-open queue), so a
/// freed stream starts the next request from the connection's task, without waking anyone.
async fn row_raw_h2(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let senders = Arc::new(raw_h2_senders(target, args.connections).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let url: http::Uri = target.url.parse()?;
    let mut row = drive(
        "raw-h2",
        client_name("raw-h2", args.connections),
        args,
        per_client,
        move |_| {
            let i = next.fetch_add(1, Ordering::Relaxed) % senders.len();
            raw_h2_get(senders[i].clone(), url.clone())
        },
    )
    .await?;
    row.note = "connections dialed before the timed run".to_owned();
    Ok(row)
}

/// The same raw h2 connections with FIFO waiting in front: a tokio `Semaphore` per connection
/// with as many permits as the server's SETTINGS_MAX_CONCURRENT_STREAMS, callers assigned
/// round-robin. No stream waits inside h2; a caller past the limit waits for a permit and is
/// woken to send, as a pool's waiter is. Beside raw-h2 it shows what first-come-first-served
/// waiting costs when nothing else is around it.
async fn row_raw_h2_fifo(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let url: http::Uri = target.url.parse()?;
    let mut gated = Vec::with_capacity(args.connections);
    for sender in raw_h2_senders(target, args.connections).await? {
        // One request first, so the server's SETTINGS have arrived.
        raw_h2_get(sender.clone(), url.clone()).await?;
        let limit = sender
            .current_max_send_streams()
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        gated.push((sender, Arc::new(tokio::sync::Semaphore::new(limit))));
    }
    let gated = Arc::new(gated);
    let next = Arc::new(AtomicUsize::new(0));
    let mut row = drive(
        "raw-h2-fifo",
        client_name("raw-h2-fifo", args.connections),
        args,
        per_client,
        move |_| {
            let (sender, permits) = &gated[next.fetch_add(1, Ordering::Relaxed) % gated.len()];
            let (sender, permits, url) = (sender.clone(), Arc::clone(permits), url.clone());
            async move {
                let _permit = permits.acquire_owned().await?;
                raw_h2_get(sender, url).await
            }
        },
    )
    .await?;
    row.note = "connections dialed, and one request sent on each, before the timed run".to_owned();
    Ok(row)
}

/// `n` h2 connections to the target, each driven by a task of its own.
async fn raw_h2_senders(
    target: &ChildTarget,
    n: usize,
) -> Result<Vec<h2::client::SendRequest<Bytes>>> {
    let mut senders = Vec::with_capacity(n);
    for stream in dial(target, n, b"h2").await? {
        let (sender, conn) = h2::client::handshake(stream).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        senders.push(sender);
    }
    Ok(senders)
}

/// One GET on `sender`, its body read to the end.
async fn raw_h2_get(sender: h2::client::SendRequest<Bytes>, url: http::Uri) -> Result<()> {
    let mut sender = sender.ready().await?;
    let request = http::Request::get(url).body(())?;
    let (response, _) = sender.send_request(request, true)?;
    let mut body = response.await?.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        body.flow_control().release_capacity(chunk.len())?;
    }
    body.trailers().await?;
    Ok(())
}

/// The protocol the target picks by ALPN when offered h2 and http/1.1 (`None` for a cleartext
/// URL or no ALPN).
fn negotiated_alpn(url: &str, ca_file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    let uri: http::Uri = url.parse()?;
    if uri.scheme_str() != Some("https") {
        return Ok(None);
    }
    let ca_pem = match ca_file {
        Some(p) => Some(std::fs::read_to_string(p)?),
        None => None,
    };
    let config = tls_config(&ChildTarget {
        url: url.to_owned(),
        ca_pem,
    })?;
    // `[::1]` is a URL's spelling; connecting and the TLS name want the bare address.
    let host = uri
        .host()
        .context("URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let mut tcp = std::net::TcpStream::connect((host.as_str(), port))?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(std::time::Duration::from_secs(5)))?;
    let name = pki_types::ServerName::try_from(host)?;
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name)?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)?;
    }
    Ok(tls.alpn_protocol().map(<[u8]>::to_vec))
}

/// h2load on the same server and load: -c K connections, -m streams each, -n requests (or,
/// against an HTTP/1.1-only server, `--h1` with one request in flight per connection, as the
/// HTTP/1.1 clients do). Its CPU comes from the shell's `times` (children's user + system),
/// its percentiles from its per-request log (column 3, µs).
fn row_h2load(args: &Args, target: &Target, total: usize, http1: bool) -> Result<Row> {
    let available = Command::new("h2load")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        bail!("h2load is not installed (Debian: nghttp2-client)");
    }
    let streams = if http1 {
        1
    } else {
        args.clients.div_ceil(args.connections)
    };
    let log = std::env::temp_dir().join(format!("pool_bench-{}-h2load.log", std::process::id()));
    let accepted_before = target.accepted();
    let script = format!(
        "h2load {}-n {total} -c {} -m {streams} --log-file={} '{}' && times",
        if http1 { "--h1 " } else { "" },
        args.connections,
        log.display(),
        target.url
    );
    let out = Command::new("bash").args(["-c", &script]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "h2load failed: {}",
            err.lines().next().unwrap_or("no output")
        );
    }
    let rps = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .context("h2load printed no req/s")?;
    let counts = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("h2load printed no request counts")?;
    let count = |suffix: &str| -> Result<u64> {
        counts
            .split(", ")
            .find(|p| p.ends_with(suffix))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("h2load printed no {suffix} count"))
    };
    // "failed" includes "errored" (h2load's manual).
    let failed = count("failed")?;
    let succeeded = count("succeeded")?;
    // `times` prints the shell's and then its children's user and system time.
    let cpu = text
        .lines()
        .rev()
        .find(|l| l.contains('m') && l.ends_with('s'))
        .and_then(|l| {
            let parts: Vec<f64> = l.split_whitespace().filter_map(parse_times).collect();
            (parts.len() == 2).then(|| parts[0] + parts[1])
        });
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    if let Ok(lines) = std::fs::read_to_string(&log) {
        for line in lines.lines() {
            if let Some(us) = line
                .split('\t')
                .nth(2)
                .and_then(|c| c.trim().parse::<u64>().ok())
            {
                histogram.saturating_record(us.max(1));
            }
        }
    }
    let _ = std::fs::remove_file(&log);
    let has = !histogram.is_empty();
    Ok(Row {
        row: "h2load".to_owned(),
        client: if http1 {
            client_name("h2load-h1", args.connections)
        } else {
            format!("h2load -c {} -m {streams} (C reference)", args.connections)
        },
        ran: true,
        req_per_sec: Some(rps),
        p50_us: has.then(|| histogram.value_at_quantile(0.5) as f64),
        p99_us: has.then(|| histogram.value_at_quantile(0.99) as f64),
        p999_us: has.then(|| histogram.value_at_quantile(0.999) as f64),
        cpu_us_per_req: cpu
            .filter(|_| succeeded > 0)
            .map(|s| s * 1e6 / succeeded as f64),
        sockets_opened: target.accepted().zip(accepted_before).map(|(a, b)| a - b),
        errors: failed,
        peak_rss_kib: None,
        note: "separate process; connections dialed inside its timed run".to_owned(),
    })
}

/// `1m2.345s` → seconds.
fn parse_times(s: &str) -> Option<f64> {
    let (m, rest) = s.split_once('m')?;
    let secs = rest.strip_suffix('s')?;
    Some(m.parse::<f64>().ok()? * 60.0 + secs.parse::<f64>().ok()?)
}
