//! The `chaos-churn` criterion: random connection kills under load.

use super::*;

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
