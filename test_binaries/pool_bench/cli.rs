//! The command line: the rows there are, the flags, and the name each row prints as.

use std::path::PathBuf;

use clap::Parser;

/// Every row, in the order they run and print.
pub(crate) const ROWS: [&str; 9] = [
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
pub(crate) struct Args {
    /// Concurrent workers. Several counts (`16,128,1024`) measure every row at each, the
    /// counts interleaved within every run, so that a ratio between counts is not a ratio
    /// between two moments of a noisy machine.
    #[arg(long = "clients", value_delimiter = ',', default_value = "64")]
    pub(crate) client_counts: Vec<usize>,
    /// The count of the current measurement (set from `--clients`).
    #[arg(skip)]
    pub(crate) clients: usize,
    /// Total requests per row (split evenly over the workers).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) requests: usize,
    /// Target URL (default: start the embedded HTTPS server on 127.0.0.1).
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Extra trusted CA (PEM file) for --url.
    #[arg(long, value_name = "PEM")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// The embedded server's SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, default_value_t = 250)]
    pub(crate) server_max_streams: u32,
    /// The embedded server's response body size, in bytes (16777216 for 16 MiB; no upper
    /// limit but memory, the server holds one copy).
    #[arg(long, default_value_t = 16)]
    pub(crate) body_bytes: usize,
    /// Round-trip time, in milliseconds, a relay in front of the target adds (half each way):
    /// every row talks to the relay. The target (embedded server or `--url`) must be on a
    /// loopback IP address.
    #[arg(long, value_name = "MS")]
    pub(crate) rtt: Option<u64>,
    /// The embedded server speaks HTTP/1.1 only.
    #[arg(long)]
    pub(crate) server_http1: bool,
    /// Connections for https-pool (its maximum) and for the raw rows.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Untimed requests each worker sends before the timed ones; all workers then start
    /// together, so `--warm-up 1 --requests N×clients` times a burst on warm connections.
    #[arg(long, default_value_t = 0)]
    pub(crate) warm_up: usize,
    /// Runs of every row; the table shows the run with the median req/s, the JSON all runs.
    #[arg(long, default_value_t = 1)]
    pub(crate) runs: usize,
    /// Only these rows (comma-separated): https-pool, raw-h2, raw-h2-fifo, raw-hyper, raw-h1,
    /// hyper-util-shared, reqwest, hyper-util-per-worker, h2load.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Print only the JSON report on stdout; the table goes to stderr.
    #[arg(long)]
    pub(crate) json: bool,
    /// Internal: run this one row in this process and print its JSON.
    #[arg(long, hide = true)]
    pub(crate) child_row: Option<String>,
}

pub(crate) fn client_name(row: &str, k: usize) -> String {
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
