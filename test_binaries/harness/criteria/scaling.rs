//! The `scaling` criterion: connections follow the load up and back down.

use super::*;

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
