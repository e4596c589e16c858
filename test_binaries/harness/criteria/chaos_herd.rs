//! The `chaos-herd` criterion: a thundering herd of cold acquires.

use super::*;

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
