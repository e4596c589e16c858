//! The `bursty` criterion: bursts of concurrent requests with quiet gaps, with demand-driven
//! warm-up (`demand_window`) on and off.

use super::*;

const STREAMS: u32 = 32;
const BURST: usize = 512;
const MAX_CONNS: usize = 16;

/// One run's figures.
struct Run {
    /// Acquire time of every request of the second and later bursts.
    later_acquires: Vec<Duration>,
    first_burst_p99: Duration,
    sockets: u64,
    failed: usize,
    /// How long after the last burst the pool was down to no connection (`None`: not within
    /// the bound).
    closed_after: Option<Duration>,
}

async fn run(peer: &Peer, bursts: usize, gap: Duration, window: Option<Duration>) -> Result<Run> {
    let idle_timeout = Duration::from_secs(1);
    let pool = peer
        .builder()
        .max_connections_per_origin(MAX_CONNS)
        .idle_timeout(idle_timeout)
        .demand_window(window)
        .build()?;
    let origin: Origin = peer.url.parse()?;
    // One request first, so the server's stream limit is known, as in a running service.
    pool.request(get(&peer.url)?)
        .await?
        .into_body()
        .collect()
        .await?;
    let mut later_acquires = Vec::new();
    let mut first_burst = Vec::new();
    let mut failed = 0;
    for b in 0..bursts {
        let started = Instant::now();
        let tasks: Vec<_> = (0..BURST)
            .map(|i| {
                let pool = pool.clone();
                let origin = origin.clone();
                let path = format!("/burst/{b}/{i}");
                tokio::spawn(async move {
                    let begun = Instant::now();
                    let mut handle = pool.acquire(&origin).await?;
                    let acquired = begun.elapsed();
                    let response = handle.send(get(&path)?).await?;
                    response.into_body().collect().await?;
                    anyhow::Ok(acquired)
                })
            })
            .collect();
        for task in tasks {
            match task.await? {
                Ok(acquired) if b == 0 => first_burst.push(acquired),
                Ok(acquired) => later_acquires.push(acquired),
                Err(_) => failed += 1,
            }
        }
        if b + 1 < bursts {
            tokio::time::sleep(gap.saturating_sub(started.elapsed())).await;
        }
    }
    let sockets = peer
        .sockets_accepted()
        .unwrap_or(pool.stats().connections_opened);
    let quiet = Instant::now();
    let bound = window.unwrap_or_default() + idle_timeout * 4 + Duration::from_secs(2);
    let mut closed_after = None;
    while quiet.elapsed() < bound {
        if pool.stats().open_connections() == 0 {
            closed_after = Some(quiet.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_burst_p99 = LatencySummary::from_histogram(&histogram(&first_burst)?).p99;
    Ok(Run {
        later_acquires,
        first_burst_p99,
        sockets,
        failed,
        closed_after,
    })
}

/// With the option on, later bursts find their connections warm.
pub async fn bursty(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    const BOUND: Duration = Duration::from_millis(1);
    let (bursts, gap) = ctx.scale.pick(
        (3, Duration::from_secs(1)),
        (5, Duration::from_secs(2)),
        (10, Duration::from_secs(2)),
    );
    let window = gap * 5;
    let target = format!(
        "with demand_window on: acquire p99 of the 2nd and later bursts ≤ {} ms, at most \
         {MAX_CONNS} sockets ({BURST} streams / {STREAMS} per connection), and no connection \
         left once the load stops (window + idle_timeout)",
        BOUND.as_millis()
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped("bursty", target, SERVER_CONTROL));
    }
    let config = TestServerConfig::default()
        .max_concurrent_streams(STREAMS)
        .response_delay(Duration::from_millis(100));
    let mut figures = Vec::new();
    let mut results = Vec::new();
    for (label, window) in [("on", Some(window)), ("off", None)] {
        // A server per run, so its accepted-socket count is the run's own.
        let peer = ctx.peer(config.clone())?;
        let r = run(&peer, bursts, gap, window).await?;
        let later = LatencySummary::from_histogram(&histogram(&r.later_acquires)?);
        figures.extend([
            Figure::new(
                format!("{label}: acquire p99, first burst"),
                us(r.first_burst_p99),
                "µs",
            ),
            Figure::new(
                format!("{label}: acquire p50, later bursts"),
                us(later.p50),
                "µs",
            ),
            Figure::new(
                format!("{label}: acquire p99, later bursts"),
                us(later.p99),
                "µs",
            ),
            Figure::new(format!("{label}: sockets opened"), r.sockets, "count"),
            Figure::new(format!("{label}: failed requests"), r.failed, "count"),
            Figure::new(
                format!("{label}: all connections closed after the load, after"),
                r.closed_after.map_or(-1.0, ms),
                "ms",
            ),
        ]);
        results.push((label, later, r));
    }
    let (_, on_later, on) = &results[0];
    let (_, off_later, off) = &results[1];
    let pass = on_later.p99 <= BOUND
        && on.sockets <= MAX_CONNS as u64
        && on.failed == 0
        && on.closed_after.is_some();
    Ok(CriterionResult {
        name: "bursty",
        target,
        measured: format!(
            "on: later-burst acquire p99 {}, {} sockets, closed {}; off: p99 {}, {} sockets",
            human(on_later.p99),
            on.sockets,
            on.closed_after.map_or_else(
                || "not within the bound".to_owned(),
                |d| format!("after {}", human(d))
            ),
            human(off_later.p99),
            off.sockets
        ),
        pass: Some(pass),
        notes: vec![format!(
            "{bursts} bursts of {BURST} concurrent requests, {} s apart, server max streams \
             {STREAMS}, 100 ms per response; pool: {MAX_CONNS} connections max, idle_timeout \
             1 s, max_idle_connections_per_origin 4 (the default), demand_window {} s when on. \
             Acquire time is measured per request inside its task.",
            gap.as_secs(),
            window.as_secs()
        )],
        figures,
        charts: Vec::new(),
    })
}
