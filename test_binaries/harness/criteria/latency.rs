//! The `latency` criterion: warm and cold acquire, and a warm request.

use super::*;

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
