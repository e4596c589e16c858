//! The `multiplexing` criterion: 150 concurrent streams over few sockets.

use super::*;

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
