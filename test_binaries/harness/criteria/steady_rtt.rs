//! The `steady-rtt` criterion: a steady load over a long path to a server that ends every
//! connection after a fixed number of requests with a graceful GOAWAY (nginx's
//! `keepalive_requests`), the pool beside reqwest in the same run. A replacement that is
//! dialed only when the old connection stops taking streams puts a TCP + TLS + HTTP/2 setup on
//! the path of the requests that come then; the pool dials it ahead by time.
//!
//! Against the embedded server the testkit sends the GOAWAYs (`goaway_after`); against a live
//! loopback target (`scripts/steady-rtt-nginx.sh`: nginx with `keepalive_requests 100`) the
//! criterion puts the RTT relay in front of it.

use std::net::SocketAddr;

use https_pool_testkit::RttRelay;

use super::*;

/// Requests the embedded server serves on a connection before its GOAWAY: nginx's
/// `keepalive_requests` as the issue measured it.
const SERVER_BUDGET: u64 = 100;
/// Tasks of the steady load; each sends a GET, waits for the whole response, and sends the
/// next at its next 20 ms tick (at once when the response took longer).
const TASKS: usize = 4;
const TICK: Duration = Duration::from_millis(20);
/// After the pool's first rotation: no request slower than this many round trips...
const MAX_RTT: f64 = 2.0;
/// ...and the 99th percentile within this many.
const P99_RTT: f64 = 1.5;

/// One request of the load: when it started (from the start of the run), how long it took,
/// whether it succeeded.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    took: Duration,
    ok: bool,
}

/// The client under load.
enum Client {
    Pool(ConnectionPoolManager),
    Reqwest(reqwest::Client),
}

impl Client {
    async fn get(&self, url: &str) -> Result<()> {
        match self {
            Client::Pool(pool) => {
                let response = pool.request(get(url)?).await?;
                response.into_body().collect().await?;
            }
            Client::Reqwest(client) => {
                client.get(url).send().await?.bytes().await?;
            }
        }
        Ok(())
    }
}

/// What one client's run saw.
struct Run {
    samples: Vec<Sample>,
    /// When the pool's first connection, ended by the server, had left and another served:
    /// the first rotation, after which the pool knows the server's budget.
    first_rotation: Option<Duration>,
    /// When the pool had learned the server's budget.
    learned: Option<Duration>,
    learned_budget: Option<u64>,
    /// Connections the client opened (embedded: sockets the server accepted; otherwise the
    /// relay's).
    dials: u64,
}

/// The server behind the relay for one client's run.
struct Path {
    // Held for the run: dropping stops them.
    _server: Option<https_pool_testkit::TestServer>,
    relay: RttRelay,
    ca_pem: Option<String>,
}

impl Path {
    fn url(&self) -> String {
        format!("{}/steady", self.relay.url())
    }
}

fn path(ctx: &Ctx<'_>, rtt: Duration) -> Result<Option<Path>> {
    match ctx.target {
        Target::Embedded { .. } => {
            let server = https_pool_testkit::TestServer::start(
                TestServerConfig::default().goaway_after(SERVER_BUDGET),
            )?;
            let relay = RttRelay::start(server.addr(), rtt)?;
            Ok(Some(Path {
                ca_pem: Some(server.ca_pem().to_owned()),
                relay,
                _server: Some(server),
            }))
        }
        Target::Live { urls, ca_pem } => {
            let Some(url) = urls.first() else {
                return Ok(None);
            };
            let uri = http::Uri::try_from(url.as_str())?;
            let Some(addr) = uri.host().and_then(|h| {
                h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .filter(|ip| ip.is_loopback())
                    .map(|ip| SocketAddr::new(ip, uri.port_u16().unwrap_or(443)))
            }) else {
                // The relay only ever forwards to loopback.
                return Ok(None);
            };
            Ok(Some(Path {
                _server: None,
                relay: RttRelay::start(addr, rtt)?,
                ca_pem: ca_pem.clone(),
            }))
        }
    }
}

/// Runs the steady load through `client` for `length`.
async fn run(client: Client, path: &Path, length: Duration) -> Result<Run> {
    let client = Arc::new(client);
    let url = path.url();
    // Warm: the pool prewarms, as a service does at start; reqwest's first request opens its
    // connection.
    match &*client {
        Client::Pool(pool) => {
            for warmed in pool.prewarm_hosts(&[url.as_str()]).await {
                warmed.result?;
            }
        }
        Client::Reqwest(_) => client.get(&url).await?,
    }
    let accepted_before = path.relay.accepted();
    let started = Instant::now();
    let end = started + length;
    // Watches the pool for its first rotation and the learned budget.
    let watcher = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let (mut first_rotation, mut learned, mut budget) = (None, None, None);
            let mut first_conn: Option<u64> = None;
            let Client::Pool(pool) = &*client else {
                return (None, None, None);
            };
            while Instant::now() < end {
                let stats = pool.stats();
                let origin = stats.origins.first();
                let ids: Vec<u64> = origin
                    .map(|o| o.connections.iter().map(|c| c.id).collect())
                    .unwrap_or_default();
                match first_conn {
                    None => first_conn = ids.first().copied(),
                    Some(first) => {
                        if first_rotation.is_none() && !ids.contains(&first) && !ids.is_empty() {
                            first_rotation = Some(started.elapsed());
                        }
                    }
                }
                if learned.is_none()
                    && let Some(b) = origin.and_then(|o| o.learned_request_budget)
                {
                    learned = Some(started.elapsed());
                    budget = Some(b);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (first_rotation, learned, budget)
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let client = Arc::clone(&client);
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let at = started.elapsed();
                if at >= length {
                    return samples;
                }
                let ok = client.get(&url).await.is_ok();
                samples.push(Sample {
                    at,
                    took: started.elapsed() - at,
                    ok,
                });
            }
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await?);
    }
    let (first_rotation, learned, learned_budget) = watcher.await?;
    samples.sort_by_key(|s| s.at);
    Ok(Run {
        samples,
        first_rotation,
        learned,
        learned_budget,
        dials: path.relay.accepted() - accepted_before,
    })
}

/// Latency figures in round trips over the samples that started at or after `from`.
struct Window {
    requests: usize,
    errors: usize,
    p50: f64,
    p99: f64,
    max: f64,
    over_max: usize,
}

fn window(samples: &[Sample], from: Duration, rtt: Duration) -> Result<Window> {
    let chosen: Vec<&Sample> = samples.iter().filter(|s| s.at >= from).collect();
    let took: Vec<Duration> = chosen.iter().filter(|s| s.ok).map(|s| s.took).collect();
    let h = histogram(&took)?;
    let rtts = |nanos: u64| nanos as f64 / rtt.as_nanos() as f64;
    Ok(Window {
        requests: chosen.len(),
        errors: chosen.iter().filter(|s| !s.ok).count(),
        p50: round2(rtts(h.value_at_quantile(0.5))),
        p99: round2(rtts(h.value_at_quantile(0.99))),
        max: round2(rtts(h.max())),
        over_max: took
            .iter()
            .filter(|t| t.as_secs_f64() > MAX_RTT * rtt.as_secs_f64())
            .count(),
    })
}

/// Steady load over a long path through a server's per-connection budget.
pub async fn steady_rtt(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let rtt = ctx.path_rtt();
    let budget = match ctx.target {
        Target::Embedded { .. } => format!("GOAWAYs every {SERVER_BUDGET} requests"),
        Target::Live { .. } => "ends connections after a request budget".to_owned(),
    };
    let target = format!(
        "over a {} ms path to a server that {budget}, {TASKS} tasks each sending a GET per {} \
         ms tick: after the pool's first rotation (the server's first GOAWAY), no request \
         slower than {MAX_RTT} RTT and p99 ≤ {P99_RTT} RTT; no request failed",
        rtt.as_millis(),
        TICK.as_millis()
    );
    let length = Duration::from_secs(ctx.scale.pick(5, 6, 10));
    let mut figures = Vec::new();
    let mut table = String::from(
        "| client | requests | failed | dials | p50 | p99 | max | > 2 RTT | after the first \
         rotation: p99 / max / > 2 RTT | once learned: p99 / max / > 2 RTT |\n|---|---:|---:|\
         ---:|---:|---:|---:|---:|---|---|\n",
    );
    let mut headline = None;
    // The pool's marks, to read reqwest's run from the same moments (same server, same load).
    let mut pool_marks = (None, None);
    for (name, is_pool) in [
        ("https-pool (defaults)", true),
        ("reqwest (defaults)", false),
    ] {
        let Some(path) = path(ctx, rtt)? else {
            return Ok(CriterionResult::skipped(
                "steady-rtt",
                target,
                "the RTT relay only forwards to a loopback target",
            ));
        };
        let client = if is_pool {
            let mut builder = ConnectionPoolManager::builder();
            if let Some(pem) = &path.ca_pem {
                builder = builder.tls_extra_ca_pem(pem.clone());
            }
            Client::Pool(builder.build()?)
        } else {
            let mut builder = reqwest::Client::builder().use_rustls_tls();
            if let Some(pem) = &path.ca_pem {
                builder =
                    builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
            }
            Client::Reqwest(builder.build()?)
        };
        let run = run(client, &path, length).await?;
        if is_pool {
            pool_marks = (run.first_rotation, run.learned);
        }
        let (rotated, learned) = pool_marks;
        let all = window(&run.samples, Duration::ZERO, rtt)?;
        let after_rotation = rotated
            .map(|at| window(&run.samples, at, rtt))
            .transpose()?;
        let once_learned = learned
            .map(|at| window(&run.samples, at, rtt))
            .transpose()?;
        let cell = |w: &Option<Window>| {
            w.as_ref().map_or("—".to_owned(), |w| {
                format!("{:.2} / {:.2} / {}", w.p99, w.max, w.over_max)
            })
        };
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
            all.requests,
            all.errors,
            run.dials,
            all.p50,
            all.p99,
            all.max,
            all.over_max,
            cell(&after_rotation),
            cell(&once_learned),
        ));
        let prefix = if is_pool { "pool" } else { "reqwest" };
        figures.push(Figure::new(
            format!("{prefix} requests"),
            all.requests,
            "count",
        ));
        figures.push(Figure::new(format!("{prefix} failed"), all.errors, "count"));
        figures.push(Figure::new(format!("{prefix} dials"), run.dials, "count"));
        figures.push(Figure::new(format!("{prefix} p50"), all.p50, "RTT"));
        figures.push(Figure::new(format!("{prefix} p99"), all.p99, "RTT"));
        figures.push(Figure::new(format!("{prefix} max"), all.max, "RTT"));
        figures.push(Figure::new(
            format!("{prefix} slower than {MAX_RTT} RTT"),
            all.over_max,
            "count",
        ));
        if let Some(w) = &after_rotation {
            figures.push(Figure::new(
                format!("{prefix} p99 after the first rotation"),
                w.p99,
                "RTT",
            ));
            figures.push(Figure::new(
                format!("{prefix} max after the first rotation"),
                w.max,
                "RTT",
            ));
            figures.push(Figure::new(
                format!("{prefix} slower than {MAX_RTT} RTT after the first rotation"),
                w.over_max,
                "count",
            ));
        }
        if is_pool {
            if let Some(budget) = run.learned_budget {
                figures.push(Figure::new("pool learned budget", budget, "requests"));
            }
            let learned = match (&once_learned, run.learned_budget) {
                (Some(w), Some(budget)) => format!(
                    "budget {budget} learned; once learned: p99 {:.2}, max {:.2}, {} slower",
                    w.p99, w.max, w.over_max
                ),
                _ => format!("no budget learned within {} s", length.as_secs()),
            };
            headline = Some(match &after_rotation {
                Some(w) => (
                    w.requests > 0 && all.errors == 0 && w.max <= MAX_RTT && w.p99 <= P99_RTT,
                    format!(
                        "after the first rotation: p99 {:.2} RTT, max {:.2} RTT, {} of {} \
                         slower than {MAX_RTT} RTT; {} failed; {learned}",
                        w.p99, w.max, w.over_max, w.requests, all.errors
                    ),
                ),
                None => (
                    false,
                    format!("no rotation within {} s; {learned}", length.as_secs()),
                ),
            });
        }
    }
    let (pass, measured) = headline.context("the pool ran")?;
    let notes = vec![
        format!(
            "Each client ran {} s on its own server behind its own relay, after warm-up (the \
             pool prewarmed; reqwest sent one request). The windows start where the pool's \
             did: its first rotation (the first connection gone, another serving; from then on \
             each replacement is dialed ahead of the count observed, and a connection that \
             reaches that count takes new requests only when no other has room, so the \
             server's next GOAWAY refuses nothing) and the moment it had learned the budget \
             from two rotations that agree (from then on it drains before the server's \
             GOAWAY). The first GOAWAY refuses the requests in flight past it (nginx does; \
             hyper's graceful shutdown serves them): each is sent again on the replacement. \
             'dials': connections the relay accepted during the run.",
            length.as_secs()
        ),
        table,
    ];
    Ok(CriterionResult {
        name: "steady-rtt",
        target,
        measured,
        pass: Some(pass),
        notes,
        figures,
        charts: Vec::new(),
    })
}
