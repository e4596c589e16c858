//! The `memory` criterion: what held stream handles cost.

use super::*;

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
