//! The success criteria. Each runs against real sockets and returns a [`CriterionResult`]
//! holding the verdict and every figure it measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Empty};
use https_pool::testkit::{RttRelay, TestServerConfig};
use https_pool::{ConnectionPoolManager, Error, LatencySummary, Origin};
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
pub const NAMES: [&str; 9] = [
    "memory",
    "latency",
    "multiplexing",
    "chaos-herd",
    "chaos-churn",
    "chaos-goaway",
    "scaling",
    "health",
    "priority",
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
}

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

fn micros(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1e6).collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

// ===== memory =====

/// Heap and RSS cost of held handles on a warm pool.
pub async fn memory(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let limit_mib = ctx.thresholds.max_memory_mb;
    let target = format!("< {limit_mib} MiB RSS for 100 held handles");
    let peer = ctx.peer(TestServerConfig::default().max_concurrent_streams(250))?;
    let pool = peer
        .builder()
        .max_connections_per_origin(4)
        .min_connections_per_origin(1)
        .acquire_timeout(Duration::from_secs(10))
        .build()?;
    let warm = pool.prewarm_hosts(&[peer.url.as_str()]).await;
    if let Some(Err(e)) = warm.first().map(|w| &w.result) {
        bail!("prewarm of {} failed: {e}", peer.url);
    }
    settle(&pool).await;
    let origin: Origin = peer.url.parse()?;
    // Exercise the acquire path once so lazily allocated state is not billed to handles.
    for _ in 0..1_000 {
        drop(pool.acquire(&origin).await?);
    }

    let points = ctx.scale.pick(
        vec![0, 100, 250, 500],
        vec![0, 100, 250, 500, 750, 1_000],
        vec![0, 50, 100, 250, 500, 750, 1_000],
    );
    let mut held = Vec::with_capacity(1_000);
    let heap0 = live_bytes();
    let rss0 = rss_bytes();
    let mut sweep = Vec::new();
    let mut at_100 = None;
    let mut stopped_early = None;
    for &n in &points {
        while held.len() < n {
            match pool.acquire(&origin).await {
                Ok(h) => held.push(h),
                Err(e) => {
                    stopped_early = Some(format!("stopped at {} handles: {e}", held.len()));
                    break;
                }
            }
        }
        if held.len() < n {
            break;
        }
        let heap = live_bytes() - heap0;
        let rss = rss_bytes()
            .zip(rss0)
            .map(|(now, before)| now as i64 - before as i64);
        sweep.push((n, heap, rss, pool.stats().open_connections()));
        if n == 100 {
            at_100 = Some((heap, rss));
        }
    }
    drop(held);

    let (heap_100, rss_100) = at_100.context("could not hold 100 handles")?;
    let measured_bytes = rss_100.unwrap_or(heap_100).max(0) as f64;
    let mib = measured_bytes / (1024.0 * 1024.0);
    let mut figures = vec![
        Figure::new("heap delta, 100 handles", heap_100, "bytes"),
        Figure::new(
            "heap per handle (100 held)",
            heap_100 as f64 / 100.0,
            "bytes",
        ),
        Figure::new(
            "RSS delta, 100 handles",
            rss_100.map_or(serde_json::Value::Null, Into::into),
            "bytes",
        ),
        Figure::new(
            "StreamHandle size on the stack",
            std::mem::size_of::<https_pool::StreamHandle>(),
            "bytes",
        ),
    ];
    for (n, heap, rss, conns) in &sweep {
        figures.push(Figure::new(
            format!("sweep: {n} handles → heap / RSS / connections"),
            format!(
                "{heap} / {} / {conns}",
                rss.map_or("n/a".to_owned(), |r| r.to_string())
            ),
            "bytes / bytes / count",
        ));
    }
    let mut notes = vec![
        "Heap is counted by a global allocator wrapper in the harness binary; RSS by \
         memory-stats (page granular, so small deltas read as 0 or 4 KiB steps)."
            .to_owned(),
        "Past 250 handles the sweep also pays for the extra connections the slots need \
         (server max streams 250)."
            .to_owned(),
    ];
    if let Some(s) = stopped_early {
        notes.push(s);
    }
    let chart = Chart {
        stem: "memory",
        title: "Heap and RSS growth vs handles held".to_owned(),
        x_label: "handles held".to_owned(),
        y_label: "KiB above the warm baseline".to_owned(),
        kind: ChartKind::Lines(vec![
            (
                "heap (counting allocator)".to_owned(),
                sweep
                    .iter()
                    .map(|(n, h, _, _)| (*n as f64, *h as f64 / 1024.0))
                    .collect(),
            ),
            (
                "RSS (memory-stats)".to_owned(),
                sweep
                    .iter()
                    .filter_map(|(n, _, r, _)| r.map(|r| (*n as f64, r as f64 / 1024.0)))
                    .collect(),
            ),
        ]),
    };
    Ok(CriterionResult {
        name: "memory",
        target,
        measured: format!(
            "{mib:.3} MiB RSS ({} B heap, {:.1} B/handle)",
            heap_100,
            heap_100 as f64 / 100.0
        ),
        pass: Some(mib < limit_mib),
        notes,
        figures,
        charts: vec![chart],
    })
}

// ===== latency =====

/// Cold, warm and full-request latency percentiles.
pub async fn latency(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let limit = ctx.thresholds.max_acquire_ms;
    let target = format!("warm acquire p99 < {limit} ms");
    let live = ctx.live();
    let cold_n = if live {
        20
    } else {
        ctx.scale.pick(100, 1_000, 2_000)
    };
    let warm_n = ctx.scale.pick(2_000, 20_000, 100_000);
    let request_n = if live {
        20
    } else {
        ctx.scale.pick(200, 1_000, 5_000)
    };
    let breakdown_n = cold_n.min(100);
    let peer = ctx.peer(TestServerConfig::default())?;
    let origin: Origin = peer.url.parse()?;

    // Cold: a new pool per sample, so each acquire pays DNS + TCP + TLS + HTTP/2.
    let mut cold = Vec::with_capacity(cold_n);
    for _ in 0..cold_n {
        let pool = peer.builder().build()?;
        let start = Instant::now();
        let handle = pool.acquire(&origin).await?;
        cold.push(start.elapsed());
        drop(handle);
        pool.shutdown().await;
    }
    // Where the cold time goes, from prewarm's own per-phase timings.
    let (mut tcp, mut tls, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..breakdown_n {
        let pool = peer.builder().build()?;
        let report = pool.prewarm_hosts(&[peer.url.as_str()]).await;
        if let Some(Ok(w)) = report.first().map(|r| &r.result) {
            tcp.push(w.tcp_connect.unwrap_or_default());
            tls.push(w.tls_handshake.unwrap_or_default());
            total.push(w.elapsed);
        }
        pool.shutdown().await;
    }

    // Warm: one prewarmed pool, acquire + release on an open connection.
    let pool = peer.builder().min_connections_per_origin(1).build()?;
    pool.prewarm_hosts(&[peer.url.as_str()]).await;
    settle(&pool).await;
    let mut warm = Vec::with_capacity(warm_n);
    for _ in 0..warm_n {
        let start = Instant::now();
        let handle = pool.acquire(&origin).await?;
        warm.push(start.elapsed());
        drop(handle);
    }
    // Full request on the warm pool: acquire, GET, read the body.
    let mut full = Vec::with_capacity(request_n);
    let mut failed = 0u64;
    for _ in 0..request_n {
        let start = Instant::now();
        match pool.request(get(&peer.url)?).await {
            Ok(response) => {
                let _ = response.into_body().collect().await;
                full.push(start.elapsed());
            }
            Err(_) => failed += 1,
        }
    }
    let sockets_warm = pool.stats().connections_opened;

    let cold_s = LatencySummary::from_histogram(&histogram(&cold)?);
    let warm_s = LatencySummary::from_histogram(&histogram(&warm)?);
    let full_s = LatencySummary::from_histogram(&histogram(&full)?);
    let (tcp_m, tls_m, total_m) = (median(tcp), median(tls), median(total));
    let mut figures = summary_figures("cold acquire", &cold_s);
    figures.extend(summary_figures("warm acquire", &warm_s));
    figures.extend(summary_figures("warm request (GET + body)", &full_s));
    figures.extend([
        Figure::new("cold: median TCP connect (DNS included)", ms(tcp_m), "ms"),
        Figure::new("cold: median TLS handshake", ms(tls_m), "ms"),
        Figure::new(
            "cold: median HTTP/2 handshake + pool bookkeeping",
            ms(total_m.saturating_sub(tcp_m + tls_m)),
            "ms",
        ),
        Figure::new("cold: median prewarm of one host, total", ms(total_m), "ms"),
        Figure::new("warm requests failed", failed, "count"),
        Figure::new("sockets opened by the warm pool", sockets_warm, "count"),
    ]);
    let network_share = if total_m.is_zero() {
        0.0
    } else {
        (tcp_m + tls_m).as_secs_f64() / total_m.as_secs_f64() * 100.0
    };
    let chart = Chart {
        stem: "latency-cdf",
        title: "Acquisition latency CDF: cold vs warm".to_owned(),
        x_label: "latency (µs, log scale)".to_owned(),
        y_label: "fraction of samples ≤ x".to_owned(),
        kind: ChartKind::Cdf(vec![
            (format!("cold acquire (n={})", cold.len()), micros(&cold)),
            (format!("warm acquire (n={})", warm.len()), micros(&warm)),
            (format!("warm request (n={})", full.len()), micros(&full)),
        ]),
    };
    Ok(CriterionResult {
        name: "latency",
        target,
        measured: format!(
            "warm p99 {} (p50 {}); cold p50 {}; request p50 {}",
            human(warm_s.p99),
            human(warm_s.p50),
            human(cold_s.p50),
            human(full_s.p50)
        ),
        pass: Some(ms(warm_s.p99) < limit && failed == 0),
        notes: vec![format!(
            "Network handshakes (TCP + TLS) are {network_share:.0}% of the median cold \
             connect; the rest is the HTTP/2 handshake and the pool."
        )],
        figures,
        charts: vec![chart],
    })
}

// ===== multiplexing =====

/// 150 concurrent streams over few sockets.
pub async fn multiplexing(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    const STREAMS: usize = 150;
    let server_limit = 100u32;
    let peer = ctx.peer(
        TestServerConfig::default()
            .max_concurrent_streams(server_limit)
            .response_delay(Duration::from_millis(100)),
    )?;
    let pool = peer.builder().max_connections_per_origin(8).build()?;
    let barrier = Arc::new(Barrier::new(STREAMS));
    let tasks: Vec<_> = (0..STREAMS)
        .map(|_| {
            let pool = pool.clone();
            let barrier = Arc::clone(&barrier);
            let url = peer.url.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = pool.request(get(&url)?).await?;
                let ok = response.status().is_success();
                let _ = response.into_body().collect().await;
                anyhow::Ok(ok)
            })
        })
        .collect();
    let mut ok = 0;
    let mut failures = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(true) => ok += 1,
            Ok(false) => failures.push("non-2xx status".to_owned()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let stats = pool.stats();
    let sockets = stats.connections_opened;
    let peer_limit = peer.server_streams.map(|s| s as usize).or_else(|| {
        stats
            .origins
            .iter()
            .flat_map(|o| &o.connections)
            .map(|c| c.max_streams)
            .max()
    });
    let needed = peer_limit.map_or(1, |l| STREAMS.div_ceil(l.max(1))) as u64;
    let bound = ctx.thresholds.max_multiplex_sockets.max(needed);
    let max_per_conn = peer
        .server
        .as_ref()
        .map(|s| s.counters().max_concurrent_per_connection());
    let mut figures = vec![
        Figure::new("streams succeeded", ok, "count"),
        Figure::new("sockets opened (pool)", sockets, "count"),
        Figure::new(
            "server max concurrent streams",
            peer_limit.unwrap_or(0),
            "streams",
        ),
        Figure::new("socket bound applied", bound, "count"),
    ];
    if let Some(accepted) = peer.sockets_accepted() {
        figures.push(Figure::new("sockets accepted (server)", accepted, "count"));
    }
    if let Some(m) = max_per_conn {
        figures.push(Figure::new(
            "most concurrent streams on one connection",
            m,
            "streams",
        ));
    }
    let mut notes = vec![format!(
        "Bound: max({}, ceil(150 / server limit {})) = {bound}.",
        ctx.thresholds.max_multiplex_sockets,
        peer_limit.map_or("unknown".to_owned(), |l| l.to_string())
    )];
    if let Some(first) = failures.first() {
        notes.push(format!("{} failed; first: {first}", failures.len()));
    }
    Ok(CriterionResult {
        name: "multiplexing",
        target: format!("150 concurrent streams, all succeed, ≤ {bound} sockets"),
        measured: format!("{ok}/150 ok over {sockets} sockets"),
        pass: Some(ok == STREAMS && sockets <= bound),
        notes,
        figures,
        charts: Vec::new(),
    })
}

// ===== chaos =====

/// 1,000 concurrent acquires on a cold origin. Against a live target the bound comes from the
/// target's own stream limit, read from the connections the pool opened.
pub async fn chaos_herd(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    const HERD: usize = 1_000;
    const STREAMS: u32 = 100;
    const MAX_CONNS: usize = 16;
    let live = ctx.live();
    let peer = ctx.peer(
        TestServerConfig::default()
            .max_concurrent_streams(STREAMS)
            .response_delay(Duration::from_millis(20)),
    )?;
    let pool = peer
        .builder()
        .max_connections_per_origin(MAX_CONNS)
        .max_waiters_per_origin(HERD)
        .build()?;
    let origin: Origin = peer.url.parse()?;
    let path = |i: usize| {
        if live {
            http::Uri::try_from(peer.url.as_str())
                .ok()
                .and_then(|u| u.path_and_query().map(|p| p.as_str().to_owned()))
                .unwrap_or_else(|| "/".to_owned())
        } else {
            format!("/herd/{i}")
        }
    };
    let barrier = Arc::new(Barrier::new(HERD));
    let started = Instant::now();
    let tasks: Vec<_> = (0..HERD)
        .map(|i| {
            let pool = pool.clone();
            let origin = origin.clone();
            let barrier = Arc::clone(&barrier);
            let path = path(i);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut handle = pool.acquire(&origin).await?;
                let response = handle.send(get(&path)?).await?;
                let _ = response.into_body().collect().await;
                anyhow::Ok(())
            })
        })
        .collect();
    let mut failed = Vec::new();
    for t in tasks {
        if let Err(e) = t.await? {
            failed.push(e.to_string());
        }
    }
    let elapsed = started.elapsed();
    let stats = pool.stats();
    // Embedded: what the server accepted. Live: what the pool opened (nothing else dials).
    let sockets = peer.sockets_accepted().unwrap_or(stats.connections_opened);
    let limit = peer.server_streams.map(|s| s as usize).or_else(|| {
        stats
            .origins
            .iter()
            .flat_map(|o| &o.connections)
            .filter(|c| c.peer_settings_received)
            .map(|c| c.max_streams)
            .max()
    });
    let bound = limit.map_or(MAX_CONNS, |l| HERD.div_ceil(l.max(1)).min(MAX_CONNS)) as u64;
    let ok = HERD - failed.len();
    let mut notes = vec![format!(
        "Server max streams {}, pool max connections {MAX_CONNS}: bound ceil(1000 / limit) \
         capped at {MAX_CONNS} = {bound}.",
        limit.map_or_else(|| "unknown".to_owned(), |l| l.to_string())
    )];
    if let Some(f) = failed.first() {
        notes.push(format!("first failure: {f}"));
    }
    Ok(CriterionResult {
        name: "chaos-herd",
        target: format!("1,000 cold acquires all succeed, ≤ {bound} sockets"),
        measured: format!("{ok}/1000 ok, {sockets} sockets"),
        pass: Some(failed.is_empty() && sockets <= bound),
        notes,
        figures: vec![
            Figure::new("acquires succeeded", ok, "count"),
            Figure::new("sockets", sockets, "count"),
            Figure::new(
                "connections opened (pool)",
                stats.connections_opened,
                "count",
            ),
            Figure::new("herd wall time (acquire + request)", ms(elapsed), "ms"),
            Figure::new("time in queue p99", ms(stats.time_in_queue.p99), "ms"),
        ],
        charts: Vec::new(),
    })
}

/// Acquire/send/drop at full speed while the server kills random connections.
pub async fn chaos_churn(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = "under random connection kills: no leaked slots, typed errors only, no request \
         processed twice"
        .to_owned();
    if ctx.live() {
        return Ok(CriterionResult::skipped(
            "chaos-churn",
            target,
            SERVER_CONTROL,
        ));
    }
    let tasks_n = 32;
    let per_task = ctx.scale.pick(100, 400, 1_500);
    let kills = ctx.scale.pick(20, 60, 200);
    let peer = Arc::new(
        ctx.peer(
            TestServerConfig::default()
                .response_delay(Duration::from_millis(2))
                .track_duplicates(true),
        )?,
    );
    let pool = peer.builder().build()?;
    let origin: Origin = peer.url.parse()?;
    let killer = {
        let peer = Arc::clone(&peer);
        tokio::spawn(async move {
            let mut killed = 0;
            for _ in 0..kills {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if let Some(server) = &peer.server {
                    killed += server.kill_connections(1);
                }
            }
            killed
        })
    };
    let sent = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..tasks_n)
        .map(|_| {
            let pool = pool.clone();
            let origin = origin.clone();
            let sent = Arc::clone(&sent);
            let seq = Arc::clone(&seq);
            tokio::spawn(async move {
                let (mut ok, mut closed, mut other) = (0u64, 0u64, Vec::new());
                for _ in 0..per_task {
                    let mut handle = match pool.acquire(&origin).await {
                        Ok(h) => h,
                        Err(e) => {
                            other.push(e);
                            continue;
                        }
                    };
                    sent.fetch_add(1, Ordering::Relaxed);
                    let path = format!("/churn/{}", seq.fetch_add(1, Ordering::Relaxed));
                    let Ok(request) = get(&path) else { continue };
                    match handle.send(request).await {
                        Ok(r) => {
                            let _ = r.into_body().collect().await;
                            ok += 1;
                        }
                        Err(Error::ConnectionClosed { .. } | Error::Request { .. }) => closed += 1,
                        Err(e) => other.push(e),
                    }
                }
                (ok, closed, other)
            })
        })
        .collect();
    let (mut ok, mut closed, mut other) = (0, 0, Vec::new());
    for w in workers {
        let (o, c, e) = w.await?;
        ok += o;
        closed += c;
        other.extend(e);
    }
    let killed = killer.await?;
    let stats = pool.stats();
    let server = peer.server.as_ref().context("embedded server")?;
    let processed = server.counters().requests();
    let duplicates = server.counters().duplicates();
    let sent = sent.load(Ordering::Relaxed);
    let leaked = stats.handles_outstanding + stats.active_streams() as u64 + stats.waiters() as u64;
    let pass = leaked == 0 && other.is_empty() && duplicates == 0 && processed <= sent;
    let mut notes = vec![
        "Failures are requests cut by a kill: `ConnectionClosed` / `Request` errors, never \
         retried (they may have been processed)."
            .to_owned(),
    ];
    if let Some(e) = other.first() {
        notes.push(format!("{} unexpected errors; first: {e}", other.len()));
    }
    Ok(CriterionResult {
        name: "chaos-churn",
        target,
        measured: format!(
            "{ok} ok, {closed} cut by {killed} kills, {leaked} leaked, {duplicates} duplicates"
        ),
        pass: Some(pass),
        notes,
        figures: vec![
            Figure::new("requests sent", sent, "count"),
            Figure::new("succeeded", ok, "count"),
            Figure::new("failed with ConnectionClosed / Request", closed, "count"),
            Figure::new("other errors", other.len(), "count"),
            Figure::new("connections killed", killed, "count"),
            Figure::new("connections opened", stats.connections_opened, "count"),
            Figure::new("server processed", processed, "count"),
            Figure::new("server saw a path twice", duplicates, "count"),
            Figure::new("leaked handles + active streams + waiters", leaked, "count"),
        ],
        charts: Vec::new(),
    })
}

/// Graceful server rotation (GOAWAY every 50 requests per connection) under load.
pub async fn chaos_goaway(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = format!(
        "GOAWAY every 50 requests under 64 workers: ≤ {} failed, none processed twice, no leaks",
        ctx.thresholds.max_goaway_failures
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped(
            "chaos-goaway",
            target,
            SERVER_CONTROL,
        ));
    }
    let workers_n = 64u64;
    let total = ctx.scale.pick(5_000u64, 20_000, 50_000);
    let per_worker = total.div_ceil(workers_n);
    let peer = ctx.peer(
        TestServerConfig::default()
            .goaway_after(50)
            .track_duplicates(true),
    )?;
    let pool = peer.builder().build()?;
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..workers_n)
        .map(|w| {
            let pool = pool.clone();
            let url = peer.url.clone();
            let ok = Arc::clone(&ok);
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..per_worker {
                    let Ok(request) = get(&format!("{url}/goaway/{w}/{i}")) else {
                        continue;
                    };
                    match pool.request(request).await {
                        Ok(r) => {
                            let _ = r.into_body().collect().await;
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => errors.push(e),
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await?);
    }
    let elapsed = started.elapsed();
    let ok = ok.load(Ordering::Relaxed);
    let stats = pool.stats();
    let server = peer.server.as_ref().context("embedded server")?;
    let duplicates = server.counters().duplicates();
    let untyped = errors
        .iter()
        .filter(|e| !matches!(e, Error::ConnectionClosed { .. }))
        .count();
    let sent = ok + errors.len() as u64;
    let failed_pct = errors.len() as f64 / sent.max(1) as f64 * 100.0;
    let pass = duplicates == 0
        && untyped == 0
        && errors.len() as u64 <= ctx.thresholds.max_goaway_failures
        && stats.handles_outstanding == 0;
    let learned = stats
        .origins
        .first()
        .and_then(|o| o.learned_request_budget)
        .map_or_else(|| "none".to_owned(), |b| b.to_string());
    Ok(CriterionResult {
        name: "chaos-goaway",
        target,
        measured: format!(
            "{ok}/{sent} ok, {} failed ({failed_pct:.3}%), {} retried, {duplicates} \
             duplicates, learned budget {learned}",
            errors.len(),
            stats.requests_retried
        ),
        pass: Some(pass),
        notes: vec![
            "Retried (src/retry.rs): requests whose stream h2 never opened, refused with \
             REFUSED_STREAM, or failed by the GOAWAY above its last-stream-id, which h2 reports \
             only for streams the server did not process. A retry goes where it will be among \
             the requests the next connection's server takes. Nothing else is retried, so a \
             failure here is a request that may have been processed."
                .to_owned(),
            "The pool learns the server's per-connection limit from two agreeing rotations and \
             then drains each connection a tenth before it, so the server stops sending GOAWAY \
             under load and retries become rare."
                .to_owned(),
        ],
        figures: vec![
            Figure::new("requests", sent, "count"),
            Figure::new("succeeded", ok, "count"),
            Figure::new("failed (ConnectionClosed)", errors.len(), "count"),
            Figure::new(
                "retried (provably unprocessed)",
                stats.requests_retried,
                "count",
            ),
            Figure::new("server processed a path twice", duplicates, "count"),
            Figure::new(
                "GOAWAYs sent by the server",
                server.counters().goaways_sent.load(Ordering::Relaxed),
                "count",
            ),
            Figure::new("connections opened", stats.connections_opened, "count"),
            Figure::new(
                "learned request budget (0: none)",
                stats
                    .origins
                    .first()
                    .and_then(|o| o.learned_request_budget)
                    .unwrap_or(0),
                "requests",
            ),
            Figure::new(
                "throughput",
                (sent as f64 / elapsed.as_secs_f64()).round(),
                "req/s",
            ),
        ],
        charts: Vec::new(),
    })
}

// ===== scaling =====

/// Load ramps 1 → 100 → 1 concurrent against a 10-stream server.
pub async fn scaling(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    const STREAMS: u32 = 10;
    const MAX_CONNS: usize = 10;
    const WARM_MIN: usize = 1;
    let levels = [1usize, 10, 25, 50, 100, 50, 25, 10, 1];
    let needed_peak = 100usize.div_ceil(STREAMS as usize).min(MAX_CONNS);
    let target = format!(
        "connections rise to {needed_peak} (≤ {MAX_CONNS}) under load and fall back to \
         {WARM_MIN} after the idle timeout"
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped("scaling", target, SERVER_CONTROL));
    }
    let step = ctx.scale.pick(
        Duration::from_millis(300),
        Duration::from_millis(800),
        Duration::from_secs(2),
    );
    let idle_timeout = ctx.scale.pick(
        Duration::from_millis(500),
        Duration::from_secs(1),
        Duration::from_secs(2),
    );
    let peer = ctx.peer(
        TestServerConfig::default()
            .max_concurrent_streams(STREAMS)
            .response_delay(Duration::from_millis(20)),
    )?;
    let pool = peer
        .builder()
        .max_connections_per_origin(MAX_CONNS)
        .min_connections_per_origin(WARM_MIN)
        .idle_timeout(idle_timeout)
        .max_waiters_per_origin(4_096)
        .build()?;
    pool.prewarm_hosts(&[peer.url.as_str()]).await;

    let level = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Sampler: connections and active streams every 25 ms.
    let sampler = {
        let pool = pool.clone();
        let level = Arc::clone(&level);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while stop.load(Ordering::Relaxed) == 0 {
                let s = pool.stats();
                samples.push((
                    started.elapsed().as_secs_f64(),
                    s.open_connections(),
                    s.active_streams(),
                    level.load(Ordering::Relaxed),
                ));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            samples
        })
    };
    // Closed-loop workers: worker k runs while the level is above k.
    let max_level = *levels.iter().max().unwrap_or(&1);
    let failures = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..max_level)
        .map(|k| {
            let pool = pool.clone();
            let url = peer.url.clone();
            let level = Arc::clone(&level);
            let stop = Arc::clone(&stop);
            let failures = Arc::clone(&failures);
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                while stop.load(Ordering::Relaxed) == 0 {
                    if level.load(Ordering::Relaxed) <= k {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    let Ok(request) = get(&url) else { continue };
                    match pool.request(request).await {
                        Ok(r) => {
                            let _ = r.into_body().collect().await;
                        }
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut peak_during = Vec::new();
    for &l in &levels {
        level.store(l, Ordering::Relaxed);
        let mut peak = 0;
        let until = Instant::now() + step;
        while Instant::now() < until {
            peak = peak.max(pool.stats().open_connections());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peak_during.push((l, peak));
    }
    level.store(0, Ordering::Relaxed);
    let ramp_end = started.elapsed();
    // Bounded wait for the idle sweep to bring the pool back to its warm minimum.
    let settle_by = Instant::now() + idle_timeout * 4 + Duration::from_secs(2);
    while Instant::now() < settle_by && pool.stats().open_connections() > WARM_MIN {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let settled_after = started.elapsed().saturating_sub(ramp_end);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(1, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let samples = sampler.await?;
    let final_conns = pool.stats().open_connections();
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let opened = pool.stats().connections_opened;
    let failures = failures.load(Ordering::Relaxed);
    let pass = peak == needed_peak && peak <= MAX_CONNS && final_conns == WARM_MIN && failures == 0;
    let mut figures = vec![
        Figure::new("peak open connections", peak, "count"),
        Figure::new("connections after idle timeout", final_conns, "count"),
        Figure::new("connections opened in total", opened, "count"),
        Figure::new("requests", requests.load(Ordering::Relaxed), "count"),
        Figure::new("failed requests", failures, "count"),
        Figure::new("idle timeout", ms(idle_timeout), "ms"),
        Figure::new(
            "back to warm minimum after the ramp",
            ms(settled_after),
            "ms",
        ),
    ];
    for (l, p) in &peak_during {
        figures.push(Figure::new(
            format!("step at {l} concurrent: peak connections"),
            *p,
            "count",
        ));
    }
    let chart = Chart {
        stem: "scaling",
        title: format!("Connections over time, load 1→100→1, server max streams {STREAMS}"),
        x_label: "seconds".to_owned(),
        y_label: "count".to_owned(),
        kind: ChartKind::Lines(vec![
            (
                "open connections".to_owned(),
                samples.iter().map(|s| (s.0, s.1 as f64)).collect(),
            ),
            (
                "concurrent load / 10".to_owned(),
                samples.iter().map(|s| (s.0, s.3 as f64 / 10.0)).collect(),
            ),
            (
                "active streams / 10".to_owned(),
                samples.iter().map(|s| (s.0, s.2 as f64 / 10.0)).collect(),
            ),
        ]),
    };
    Ok(CriterionResult {
        name: "scaling",
        target,
        measured: format!("peak {peak}, after idle {final_conns}, {failures} failed"),
        pass: Some(pass),
        notes: vec![format!(
            "Each load level held {} ms; server response delay 20 ms.",
            step.as_millis()
        )],
        figures,
        charts: vec![chart],
    })
}

// ===== health =====

/// A silent path is detected by PING timeout and the connection replaced.
pub async fn health(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = "black-holed connection evicted by PING timeout; next request succeeds on a \
                  new connection"
        .to_owned();
    if ctx.live() {
        return Ok(CriterionResult::skipped("health", target, SERVER_CONTROL));
    }
    let interval = Duration::from_millis(200);
    let timeout = Duration::from_millis(300);
    let peer = ctx.peer(TestServerConfig::default())?;
    // A black-hole relay in front of whatever the run uses (server or RTT relay).
    let upstream = match (&peer.relay, &peer.server) {
        (Some(relay), _) => relay.addr(),
        (None, Some(server)) => server.addr(),
        (None, None) => bail!("no embedded server"),
    };
    let hole = RttRelay::start(upstream, Duration::ZERO)?;
    let pool = peer
        .builder()
        .http2_keep_alive_interval(interval)
        .http2_keep_alive_timeout(timeout)
        .build()?;
    let url = hole.url();
    let origin: Origin = url.parse()?;
    let first = pool.acquire(&origin).await?;
    let first_id = first.connection_id();
    drop(first);
    hole.set_black_hole(true);
    let silenced = Instant::now();
    let bound = Instant::now() + Duration::from_secs(10);
    while Instant::now() < bound && pool.stats().open_connections() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let detected = pool.stats().open_connections() == 0;
    let detection = silenced.elapsed();
    hole.set_black_hole(false);
    let mut handle = pool.acquire(&origin).await?;
    let second_id = handle.connection_id();
    let response = handle.send(get("/after-black-hole")?).await;
    let ok = response.as_ref().is_ok_and(|r| r.status().is_success());
    let pass = detected && ok && second_id != first_id;
    Ok(CriterionResult {
        name: "health",
        target,
        measured: format!(
            "evicted after {}; next request {} on connection {second_id} (was {first_id})",
            human(detection),
            if ok { "ok" } else { "failed" }
        ),
        pass: Some(pass),
        notes: vec![format!(
            "PING interval {} ms, timeout {} ms; the relay drops bytes both ways while silent.",
            interval.as_millis(),
            timeout.as_millis()
        )],
        figures: vec![
            Figure::new("silent connection evicted", detected, "bool"),
            Figure::new("time from silence to eviction", ms(detection), "ms"),
            Figure::new("next request succeeded", ok, "bool"),
            Figure::new("relay connections accepted", hole.accepted(), "count"),
        ],
        charts: Vec::new(),
    })
}

// ===== priority =====

/// Urgent requests do not queue behind bulk ones: one connection of 8 streams, 256 bulk
/// workers at urgency 6 keep it saturated, one foreground worker sends at urgency 1.
pub async fn priority(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    const BULK: usize = 256;
    const STREAMS: u32 = 8;
    let aging = https_pool::PoolConfig::default().priority_aging;
    let target = format!(
        "256 bulk workers (urgency 6) saturate 8 streams: urgent (urgency 1) time in queue \
         p99 ≤ bulk p99 / 10; no bulk request queued past the aging bound ({aging:?}) + one \
         service time"
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped("priority", target, SERVER_CONTROL));
    }
    let service = Duration::from_millis(5);
    let peer = ctx.peer(
        TestServerConfig::default()
            .max_concurrent_streams(STREAMS)
            .response_delay(service),
    )?;
    let pool = peer
        .builder()
        .max_connections_per_origin(1)
        .max_waiters_per_origin(BULK + 16)
        .build()?;
    let run_for = ctx.scale.pick(
        Duration::from_secs(2),
        Duration::from_secs(5),
        Duration::from_secs(10),
    );
    let until = Instant::now() + run_for;
    let send = |pool: ConnectionPoolManager, url: String, urgency: u8| async move {
        let mut times = Vec::new();
        let mut failed = 0u64;
        let priority = https_pool::Priority::new(urgency)?;
        while Instant::now() < until {
            let mut request = get(&url)?;
            request.extensions_mut().insert(priority);
            let started = Instant::now();
            match pool.request(request).await {
                Ok(r) => {
                    let _ = r.into_body().collect().await;
                    times.push(started.elapsed());
                }
                Err(_) => failed += 1,
            }
        }
        anyhow::Ok((times, failed))
    };
    let bulk: Vec<_> = (0..BULK)
        .map(|_| tokio::spawn(send(pool.clone(), peer.url.clone(), 6)))
        .collect();
    // The urgent worker starts once the bulk load has filled the queue.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let urgent = tokio::spawn(send(pool.clone(), peer.url.clone(), 1));
    let (urgent_times, urgent_failed) = urgent.await??;
    let mut failed = urgent_failed;
    for b in bulk {
        failed += b.await??.1;
    }
    let stats = pool.stats();
    let bulk_q = stats.time_in_queue_by_urgency[6];
    let urgent_q = stats.time_in_queue_by_urgency[1];
    // One service time: what an urgent request takes end to end at its median (it queues
    // for the next freed slot only).
    let service_time = median(urgent_times.clone());
    let ratio_ok = urgent_q.p99.saturating_mul(10) <= bulk_q.p99;
    let aging_ok = bulk_q.max <= aging + service_time;
    let pass = ratio_ok && aging_ok && failed == 0 && urgent_q.count > 0;
    Ok(CriterionResult {
        name: "priority",
        target,
        measured: format!(
            "time in queue p50/p99: urgent {} / {}, bulk {} / {}; bulk max {}; {failed} failed",
            human(urgent_q.p50),
            human(urgent_q.p99),
            human(bulk_q.p50),
            human(bulk_q.p99),
            human(bulk_q.max),
        ),
        pass: Some(pass),
        notes: vec![format!(
            "One connection (pool max 1), server max streams {STREAMS}, {service:?} response \
             delay, {run_for:?} of load. Service time (the urgent requests' median round \
             trip): {}. Time in queue from the pool's per-urgency stats.",
            human(service_time)
        )],
        figures: vec![
            Figure::new("urgent requests", urgent_times.len(), "count"),
            Figure::new("urgent time in queue p50", us(urgent_q.p50), "µs"),
            Figure::new("urgent time in queue p99", us(urgent_q.p99), "µs"),
            Figure::new("bulk requests", bulk_q.count, "count"),
            Figure::new("bulk time in queue p50", us(bulk_q.p50), "µs"),
            Figure::new("bulk time in queue p99", us(bulk_q.p99), "µs"),
            Figure::new("bulk time in queue max", us(bulk_q.max), "µs"),
            Figure::new("service time (urgent median)", us(service_time), "µs"),
            Figure::new("failed", failed, "count"),
        ],
        charts: Vec::new(),
    })
}
