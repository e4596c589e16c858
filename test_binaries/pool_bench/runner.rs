//! The parent process: the target (the embedded server or `--url`, behind the relay with
//! `--rtt`), a child process for every row of every run, and the median of the runs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use https_pool_harness::machine;
use https_pool_testkit::{Alpn, RttRelay, TestServer, TestServerConfig};

use crate::cli::{Args, ROWS};
use crate::h2load::{negotiated_alpn, row_h2load};
use crate::report::{self, Config};
use crate::rows::Row;

pub(crate) struct Target {
    /// What the rows request: the target's own URL, or the relay's when `--rtt` is set.
    pub(crate) url: String,
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
    pub(crate) fn accepted(&self) -> Option<u64> {
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

pub(crate) fn parent(args: &Args) -> Result<()> {
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
    report::print(&config, &cells, &medians, &runs, args.json)
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
