//! The success-criteria harness shared by the binaries in `test_binaries/`: run options,
//! the peers each criterion runs against, the criteria, and the report writers.
//!
//! Everything runs on a real network stack: the embedded HTTPS server (`https-pool-testkit`) on
//! 127.0.0.1, optionally behind an RTT relay, or live endpoints given with `--target`.

pub mod alloc;
pub mod captured;
pub mod clients;
pub mod criteria;
pub mod machine;
pub mod optimized_pool;
pub mod report;

use std::time::Duration;

use anyhow::{Context, Result};
use https_pool::{ConnectionPoolManager, PoolBuilder};
use https_pool_testkit::{RttRelay, TestServer, TestServerConfig};
use serde::Serialize;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Small counts, for CI.
    Quick,
    /// The default.
    Default,
    /// Larger counts and longer phases, for the final report.
    Full,
}

impl Scale {
    /// Picks a count by scale.
    pub fn pick<T>(self, quick: T, default: T, full: T) -> T {
        match self {
            Scale::Quick => quick,
            Scale::Default => default,
            Scale::Full => full,
        }
    }
}

/// Thresholds; each is overridable on the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// Memory for 100 held handles (RSS delta), MiB.
    pub max_memory_mb: f64,
    /// Warm-pool acquire p99, milliseconds.
    pub max_acquire_ms: f64,
    /// Sockets for 150 concurrent streams (when the server allows ≥ 50 streams).
    pub max_multiplex_sockets: u64,
    /// Failed requests tolerated in the GOAWAY storm.
    pub max_goaway_failures: u64,
}

/// What the criteria run against.
pub enum Target {
    /// The embedded server, one per criterion, optionally behind an RTT relay.
    Embedded {
        /// Added round-trip time, if any.
        rtt: Option<Duration>,
    },
    /// Live endpoints the harness does not control.
    Live {
        /// The URLs.
        urls: Vec<String>,
        /// PEM of an extra trusted CA.
        ca_pem: Option<String>,
    },
}

impl Target {
    /// A short description for the report.
    pub fn describe(&self) -> String {
        match self {
            Target::Embedded { rtt: None } => {
                "embedded HTTPS server (hyper + rustls, h2) on 127.0.0.1".to_owned()
            }
            Target::Embedded { rtt: Some(rtt) } => format!(
                "embedded HTTPS server on 127.0.0.1 behind a loopback relay adding {} ms RTT \
                 (the relay delays bytes both ways; the TCP handshake itself is not delayed)",
                rtt.as_millis()
            ),
            Target::Live { urls, .. } => format!("live endpoint(s): {}", urls.join(", ")),
        }
    }

    /// True for the embedded server.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Target::Embedded { .. })
    }
}

/// A running peer for one criterion: the server (embedded only), an optional relay in front,
/// and the URL clients should use.
pub struct Peer {
    pub server: Option<TestServer>,
    pub relay: Option<RttRelay>,
    pub url: String,
    pub ca_pem: Option<String>,
    /// The server's max concurrent streams, when the harness set it.
    pub server_streams: Option<u32>,
}

impl Peer {
    /// A pool builder that trusts this peer.
    pub fn builder(&self) -> PoolBuilder {
        let mut builder = ConnectionPoolManager::builder();
        if let Some(pem) = &self.ca_pem {
            builder = builder.tls_extra_ca_pem(pem.clone());
        }
        builder
    }

    /// The port of the peer's URL (the embedded server's, or the RTT relay's).
    pub fn port(&self) -> Result<u16> {
        http::Uri::try_from(self.url.as_str())?
            .port_u16()
            .context("the peer URL has no port")
    }

    /// Sockets the embedded server accepted; `None` against a live target.
    pub fn sockets_accepted(&self) -> Option<u64> {
        self.server.as_ref().map(|s| s.counters().accepted())
    }
}

/// Starts an embedded server with `config`, behind a relay when the run has an RTT.
pub fn embedded_peer(config: TestServerConfig, rtt: Option<Duration>) -> Result<Peer> {
    let streams = config.max_concurrent_streams;
    let server = TestServer::start(config).context("starting the embedded HTTPS server")?;
    let relay = match rtt {
        Some(rtt) => Some(RttRelay::start(server.addr(), rtt).context("starting the RTT relay")?),
        None => None,
    };
    let url = relay.as_ref().map_or_else(|| server.url(), RttRelay::url);
    Ok(Peer {
        ca_pem: Some(server.ca_pem().to_owned()),
        server: Some(server),
        relay,
        url,
        server_streams: Some(streams),
    })
}

/// The outcome of one criterion.
#[derive(Debug, Clone, Serialize)]
pub struct CriterionResult {
    /// Short name (`--only` uses it).
    pub name: &'static str,
    /// What passing means.
    pub target: String,
    /// The headline measurement.
    pub measured: String,
    /// `Some(true)` pass, `Some(false)` fail, `None` skipped.
    pub pass: Option<bool>,
    /// Why it was skipped, or notes on how to read it.
    pub notes: Vec<String>,
    /// Every figure, for the JSON report and the detail tables.
    pub figures: Vec<Figure>,
    /// Charts written for this criterion (file names in the report directory).
    #[serde(skip)]
    pub charts: Vec<report::Chart>,
}

impl CriterionResult {
    /// A skipped criterion.
    pub fn skipped(name: &'static str, target: String, why: impl Into<String>) -> Self {
        CriterionResult {
            name,
            target,
            measured: "skipped: live target (needs a server the harness controls)".to_owned(),
            pass: None,
            notes: vec![why.into()],
            figures: Vec::new(),
            charts: Vec::new(),
        }
    }

    /// The verdict word.
    pub fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        }
    }
}

/// One named figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: serde_json::Value,
    pub unit: &'static str,
}

impl Figure {
    pub fn new(
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
        unit: &'static str,
    ) -> Self {
        Figure {
            name: name.into(),
            value: value.into(),
            unit,
        }
    }
}

/// Milliseconds with three decimals, for tables.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A duration for a table cell: µs below a millisecond, ms above.
pub fn human(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    }
}

/// Resident set size right now, bytes (None where the platform does not say).
pub fn rss_bytes() -> Option<u64> {
    memory_stats::memory_stats().map(|m| m.physical_mem as u64)
}
