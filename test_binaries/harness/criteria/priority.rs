//! The `priority` criterion: urgent requests do not queue behind bulk ones.

use super::*;

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
