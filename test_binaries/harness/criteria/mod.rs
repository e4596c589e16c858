//! The success criteria. Each runs against real sockets and returns a [`CriterionResult`]
//! holding the verdict and every figure it measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Empty};
use https_pool::{ConnectionPoolManager, Error, LatencySummary, Origin};
use https_pool_testkit::{RttRelay, TestServerConfig};
use tokio::sync::Barrier;

use super::alloc::live_bytes;
use super::report::{Chart, ChartKind};
use super::rss_bytes;
use super::{CriterionResult, Figure, Peer, Scale, Target, Thresholds, embedded_peer, human, ms};

/// What every criterion gets.
pub struct Ctx<'a> {
    pub target: &'a Target,
    pub scale: Scale,
    pub thresholds: &'a Thresholds,
}

/// Names accepted by `--only` (a criterion runs when its name starts with one of them).
pub const NAMES: [&str; 16] = [
    "memory",
    "latency",
    "multiplexing",
    "chaos-herd",
    "chaos-churn",
    "chaos-goaway",
    "scaling",
    "health",
    "priority",
    "resumption",
    "happy-eyeballs",
    "bursty",
    "coalescing",
    "long-path",
    "hostile",
    "steady-rtt",
];

const SERVER_CONTROL: &str = "needs a server the harness controls (stream limit, kills, GOAWAY, \
                              black-hole); skipped against live targets";

impl Ctx<'_> {
    /// A peer for one criterion: an embedded server with `config` (behind the RTT relay when
    /// set), or the first live target.
    fn peer(&self, config: TestServerConfig) -> Result<Peer> {
        match self.target {
            Target::Embedded { rtt } => embedded_peer(config, *rtt),
            Target::Live { urls, ca_pem } => Ok(Peer {
                server: None,
                relay: None,
                url: urls.first().cloned().context("no --target given")?,
                ca_pem: ca_pem.clone(),
                server_streams: None,
            }),
        }
    }

    fn live(&self) -> bool {
        !self.target.is_embedded()
    }

    /// The round trip the long-path criteria put in front of their embedded servers: `--rtt`,
    /// else [`DEFAULT_RTT`].
    fn path_rtt(&self) -> Duration {
        match self.target {
            Target::Embedded { rtt: Some(rtt) } => *rtt,
            _ => DEFAULT_RTT,
        }
    }
}

/// The long-path criteria's round trip unless `--rtt` gives one: a cross-region path.
const DEFAULT_RTT: Duration = Duration::from_millis(40);

fn get(url: &str) -> Result<Request<Empty<bytes::Bytes>>> {
    Ok(Request::get(url).body(Empty::new())?)
}

/// Waits (bounded) until every open connection has its peer's SETTINGS.
async fn settle(pool: &ConnectionPoolManager) {
    for _ in 0..2_000 {
        let stats = pool.stats();
        if stats
            .origins
            .iter()
            .flat_map(|o| &o.connections)
            .all(|c| c.peer_settings_received)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn histogram(samples: &[Duration]) -> Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    for s in samples {
        h.saturating_record(u64::try_from(s.as_nanos()).unwrap_or(u64::MAX).max(1));
    }
    Ok(h)
}

/// Percentiles in µs: a warm acquire takes well under a millisecond, and a figure in ms would
/// round it away.
fn summary_figures(prefix: &str, s: &LatencySummary) -> Vec<Figure> {
    vec![
        Figure::new(format!("{prefix} samples"), s.count, "count"),
        Figure::new(format!("{prefix} p50"), us(s.p50), "µs"),
        Figure::new(format!("{prefix} p90"), us(s.p90), "µs"),
        Figure::new(format!("{prefix} p99"), us(s.p99), "µs"),
        Figure::new(format!("{prefix} p99.9"), us(s.p999), "µs"),
        Figure::new(format!("{prefix} max"), us(s.max), "µs"),
    ]
}

/// Microseconds, three significant digits.
fn us(d: Duration) -> f64 {
    let v = d.as_secs_f64() * 1e6;
    if v == 0.0 {
        return 0.0;
    }
    let digits = 3 - 1 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// Two decimals, for figures in round trips.
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn micros(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1e6).collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

mod bursty;
mod chaos_churn;
mod chaos_goaway;
mod chaos_herd;
mod coalescing;
mod happy_eyeballs;
mod health;
mod hostile;
mod latency;
mod long_path;
mod memory;
mod multiplexing;
mod priority;
mod resumption;
mod scaling;
mod steady_rtt;

pub use bursty::bursty;
pub use chaos_churn::chaos_churn;
pub use chaos_goaway::chaos_goaway;
pub use chaos_herd::chaos_herd;
pub use coalescing::coalescing;
pub use happy_eyeballs::happy_eyeballs;
pub use health::health;
pub use hostile::hostile;
pub use latency::latency;
pub use long_path::long_path;
pub use memory::memory;
pub use multiplexing::multiplexing;
pub use priority::priority;
pub use resumption::resumption;
pub use scaling::scaling;
pub use steady_rtt::steady_rtt;
