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

mod child;
mod cli;
mod h2load;
mod report;
mod rows;
mod runner;

use anyhow::Result;
use clap::Parser;

use cli::{Args, ROWS};

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
        return child::child(&args, row);
    }
    runner::parent(&args)
}
