//! The `chaos-goaway` criterion: a server that rotates connections with GOAWAY.

use super::*;

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
